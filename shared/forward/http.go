package forward

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"time"
	"unicode/utf8"

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

// HandleHTTP serves ANY /forward. The target's answer comes back untouched; every
// answer lpmtls makes itself is the JSON error shape with LP-Error-Source.
func (s *Service) HandleHTTP(ctx context.Context, e *events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	start := time.Now()
	ctx, cancel := apigw.WithDeadline(ctx, e, start)
	defer cancel()
	log := obs.Logger(ctx, s.logger())
	ev, stream, streamLen, err := largeBodyAside(e)
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
		log.Warn("forward failed", append(logAttrs(req, start), "status", ae.Status, "code", ae.Code, "error", err.Error())...)
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
	out := apigw.ToV2(&apigw.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: resp.Body})
	if size := responseSize(out); size > MaxResponseBytes {
		// Lambda would refuse the response and API Gateway would answer a bare 502;
		// say what happened instead.
		ae := &apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeResponseTooLarge, Source: apierr.SourceLPMTLS,
			Message: fmt.Sprintf("the target answered %d with a response of %d bytes as JSON; a Lambda response is limited to %d", resp.StatusCode, size, MaxResponseBytes)}
		log.Warn("forward response too large", append(attrs, "status", resp.StatusCode, "responseBytes", len(resp.Body))...)
		return recordHTTPError(ctx, ae)
	}
	log.Info("forwarded", append(attrs, "status", resp.StatusCode, "responseBytes", len(resp.Body))...)
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
func largeBodyAside(e *events.APIGatewayV2HTTPRequest) (*events.APIGatewayV2HTTPRequest, func() io.Reader, int64, error) {
	if !e.IsBase64Encoded || len(e.Body) < largeBody {
		return e, nil, 0, nil
	}
	open, n, err := apigw.BodyStream(e.Body)
	if err != nil {
		return nil, nil, 0, err
	}
	bodiless := *e
	bodiless.Body, bodiless.IsBase64Encoded = "", false
	return &bodiless, open, n, nil
}

// MaxResponseBytes is the synchronous Lambda response limit (6 MB) less room for what
// the runtime adds around the payload.
const MaxResponseBytes = 6*1024*1024 - 4*1024

// responseSize is the size of the response as JSON, counted without building it: the
// body and every header and cookie as escaped JSON strings (HTML characters counted as
// escaped, the worst case), plus the fixed field names.
func responseSize(r events.APIGatewayV2HTTPResponse) int {
	// Escaping at most sextuples a byte (\u00XX): for a body that fits even then, that
	// bound is enough, and the common small answer skips a byte-by-byte walk.
	n := 128 + 6*len(r.Body) + 2
	if n > MaxResponseBytes/2 {
		n = 128 + jsonStringLen(r.Body)
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
