package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/apigw"
	"github.com/lpmtls/lpmtls/shared/obs"
)

// Caller-facing headers of the HTTP route (LivePerson's own names).
const (
	HeaderForwardURL   = "LP-forward-url"
	HeaderServiceName  = "LP-service-name"
	HeaderAuthOverride = "LP-authorization-override"
	HeaderStopIfNoCert = "LP-stop-if-certificate-not-found"
)

// HandleHTTP serves ANY /forward (see Reply) with aws-lambda-go's response type.
func (s *Service) HandleHTTP(ctx context.Context, e *events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	r := s.Reply(ctx, e)
	return r.Event()
}

// Reply serves ANY /forward. The target's answer comes back untouched; every answer
// lpmtls makes itself is the JSON error shape with LP-Error-Source. Nothing reads e
// after Reply returns, so e.Body may share the invocation payload's memory
// (lambdaevent.DecodeHTTP).
func (s *Service) Reply(ctx context.Context, e *events.APIGatewayV2HTTPRequest) apigw.Reply {
	start := time.Now()
	ctx, cancel := apigw.WithDeadline(ctx, e, start)
	defer cancel()
	log := obs.Logger(ctx, s.logger())
	ev, stream, streamLen, release, err := largeBodyAside(e)
	defer release()
	var in *apigw.Request
	if err == nil {
		in, err = apigw.FromV2(ev)
	}
	if err != nil {
		return recordHTTPError(ctx, apierr.Input(http.StatusBadRequest, apierr.CodeInvalidBody, "the request body is not valid base64"))
	}
	stop, err := ParseBool(HeaderStopIfNoCert, in.Header.Get(HeaderStopIfNoCert))
	if err != nil {
		return recordHTTPError(ctx, apierr.From(err))
	}
	req, err := s.Policy.Validate(Input{
		Method:                    in.Method,
		URL:                       in.Header.Get(HeaderForwardURL),
		ServiceName:               in.Header.Get(HeaderServiceName),
		AuthorizationOverride:     in.Header.Get(HeaderAuthOverride),
		StopIfCertificateNotFound: stop,
		Header:                    in.Header,
		Body:                      in.Body,
		BodyReader:                stream,
		BodyLength:                streamLen,
	})
	if err != nil {
		ae := apierr.From(err)
		log.Info("forward rejected", "status", ae.Status, "code", ae.Code, "reason", ae.Message)
		return recordHTTPError(ctx, ae)
	}
	resp, err := s.Send(ctx, req)
	if err != nil {
		ae := apierr.From(err)
		log.LogAttrs(ctx, slog.LevelWarn, "forward failed", append(logAttrs(req, start),
			slog.Int("status", ae.Status), slog.String("code", ae.Code), slog.String("error", err.Error()))...)
		return recordHTTPError(ctx, ae)
	}
	attrs := logAttrs(req, start)
	if len(req.Body) >= largeBody {
		// A large plain-text request body is spent. Collect it before the response is
		// encoded, so a large request and a large response do not peak together in
		// memory (a few milliseconds against a body that took far longer to transfer).
		req.Body, in = nil, nil
		runtime.GC()
	}
	out := apigw.ToReply(&apigw.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: resp.Body})
	if size := responseSize(&out); size > MaxResponseBytes {
		// Lambda would refuse the response and API Gateway would answer a bare 502;
		// say what happened instead.
		ae := &apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeResponseTooLarge, Source: apierr.SourceLPMTLS,
			Message: fmt.Sprintf("the target answered %d with a response of %d bytes as JSON; a Lambda response is limited to %d", resp.StatusCode, size, MaxResponseBytes)}
		log.LogAttrs(ctx, slog.LevelWarn, "forward response too large", append(attrs, slog.Int("status", resp.StatusCode), slog.Int("responseBytes", len(resp.Body)))...)
		return recordHTTPError(ctx, ae)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "forwarded", append(attrs, slog.Int("status", resp.StatusCode), slog.Int("responseBytes", len(resp.Body)))...)
	RecordOutcome(ctx, OutcomeDelivered, "")
	return out
}

// largeBody is the request size from which HandleHTTP streams a base64 body to the
// gateway (decoding it as it goes) and frees a plain one before encoding the response.
const largeBody = 1 << 20

// largeBodyAside keeps a large base64 body out of the decoded request: it returns a
// copy of the event without its body, and a reader that decodes the original body on
// each attempt (the replay after a re-login included). Smaller bodies are decoded as
// usual. The base64 text is held by the event anyway; a decoded copy would add its size.
//
// The caller runs stop before it returns: from then on the readers fail instead of
// reading the event's body, which net/http might otherwise still do (it closes a request
// body in its own time) after the payload's buffer went to the next invocation.
func largeBodyAside(e *events.APIGatewayV2HTTPRequest) (_ *events.APIGatewayV2HTTPRequest, open func() io.Reader, n int64, release func(), _ error) {
	if !e.IsBase64Encoded || len(e.Body) < largeBody {
		return e, nil, 0, func() {}, nil
	}
	decoded, n, err := apigw.BodyStream(e.Body)
	if err != nil {
		return nil, nil, 0, func() {}, err
	}
	g := &bodyGuard{}
	bodiless := *e
	bodiless.Body, bodiless.IsBase64Encoded = "", false
	return &bodiless, func() io.Reader { return &guardedReader{g: g, r: decoded()} }, n, g.stop, nil
}

// bodyGuard ends the reads of an event's body; a read in progress finishes first.
type bodyGuard struct {
	mu   sync.Mutex
	done bool
}

func (g *bodyGuard) stop() {
	g.mu.Lock()
	g.done = true
	g.mu.Unlock()
}

var errBodyGone = errors.New("forward: the request body was read after its invocation ended")

type guardedReader struct {
	g *bodyGuard
	r io.Reader
}

func (r *guardedReader) Read(p []byte) (int, error) {
	r.g.mu.Lock()
	defer r.g.mu.Unlock()
	if r.g.done {
		return 0, errBodyGone
	}
	return r.r.Read(p)
}

// MaxResponseBytes is the synchronous Lambda response limit (6 MB) less room for what
// the runtime adds around the payload.
const MaxResponseBytes = 6*1024*1024 - 4*1024

// responseSize is the size of the response as JSON, counted without building it: the
// body and every header and cookie as escaped JSON strings (HTML characters counted as
// escaped, the worst case), plus the fixed field names.
func responseSize(r *apigw.Reply) int {
	n := 128 + r.BodyLen() + 2
	if !r.Base64 {
		// Escaping at most sextuples a byte (\u00XX): for a body that fits even then,
		// that bound is enough, and the common small answer skips a byte-by-byte walk.
		if n = 128 + 6*len(r.Body) + 2; n > MaxResponseBytes/2 {
			n = 128 + jsonStringLen(unsafe.String(unsafe.SliceData(r.Body), len(r.Body)))
		}
	}
	for k, v := range r.Headers {
		n += jsonStringLen(k) + jsonStringLen(v) + 2
	}
	for _, c := range r.Cookies {
		n += jsonStringLen(c) + 1
	}
	return n
}

func jsonStringLen(s string) int {
	n := 2
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			n += 2
		case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
			n += 6
		case r == utf8.RuneError:
			n += 3
		default:
			n += utf8.RuneLen(r)
		}
	}
	return n
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}
