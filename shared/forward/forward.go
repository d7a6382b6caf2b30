// Package forward validates a request to send through LivePerson's mTLS gateway and
// sends it. The HTTP route (API Gateway) and the queue (SQS) both end up here, so a rule
// such as the allow-list or the stop-flag default holds whichever way a request came.
package forward

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/lpmtls/lpmtls/shared/allowlist"
	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/headers"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/session"
)

// Gateway is the LivePerson call this package needs; *lp.Client satisfies it.
type Gateway interface {
	Forward(ctx context.Context, auth lp.Auth, r *lp.ForwardRequest) (*lp.ForwardResponse, error)
}

// Sessions hands out a bearer and retries once after a 401; *session.Manager satisfies it.
type Sessions interface {
	Do(ctx context.Context, fn func(ctx context.Context, s session.Session) error) error
}

// Policy holds the rules every forward obeys.
type Policy struct {
	DefaultServiceName string
	// AllowedURLs is FORWARD_ALLOWED_URLS as config parsed it; empty means any https URL.
	AllowedURLs  allowlist.List
	MaxBodyBytes int
}

// Input is a forward as the caller expressed it, before validation.
type Input struct {
	Method                string
	URL                   string
	ServiceName           string
	AuthorizationOverride string
	// StopIfCertificateNotFound is nil when the caller did not say; the default is true
	// so lpmtls never becomes an open plain-TLS proxy.
	StopIfCertificateNotFound *bool
	Header                    http.Header
	Body                      []byte
	// BodyReader and BodyLength replace Body for a body decoded while it is sent (see
	// lp.ForwardRequest).
	BodyReader func() io.Reader
	BodyLength int64
}

// allowedMethods are the methods LivePerson documents for the mTLS gateway. PATCH, HEAD
// and OPTIONS are not documented: the gateway may refuse them with an answer of its own
// that lpmtls could not tell from the target's (a HEAD answer has no body to tell by),
// so they are refused here, where the refusal can say it is lpmtls's.
var allowedMethods = map[string]bool{
	http.MethodGet: true, http.MethodPost: true, http.MethodPut: true, http.MethodDelete: true,
}

// AllowedMethods lists allowedMethods for the Allow header and messages.
const AllowedMethods = "GET, POST, PUT, DELETE"

// droppedHeaders describe the hop to lpmtls (API Gateway, SigV4, proxies), not the call
// to the target: the Authorization here is the caller's SigV4, and a caller who needs an
// Authorization at the target says so with LP-authorization-override. Hop-by-hop
// headers, Content-Length and the gateway's own are lp.Client.Forward's to drop, for
// every caller.
var droppedHeaders = []string{"Authorization", "Host", "Forwarded", "Via"}

var droppedPrefixes = []string{"X-Amz-", "X-Amzn-", "X-Forwarded-", "Lp-"}

// Validate checks an Input against the policy and turns it into the request LivePerson
// receives. Every failure is an *apierr.Error with a 4xx that says what is wrong.
func (p Policy) Validate(in Input) (*lp.ForwardRequest, error) {
	method := strings.ToUpper(strings.TrimSpace(in.Method))
	if method == "" {
		method = http.MethodPost
	}
	if !allowedMethods[method] {
		e := apierr.Input(http.StatusMethodNotAllowed, apierr.CodeMethodNotAllowed,
			"method %q cannot be forwarded: LivePerson's mTLS gateway documents %s only", method, AllowedMethods)
		e.Allow = AllowedMethods
		return nil, e
	}
	if strings.TrimSpace(in.URL) == "" {
		return nil, apierr.Input(http.StatusBadRequest, apierr.CodeMissingForwardURL,
			"the LP-forward-url header (or the message's url) is required: the absolute https URL of the target")
	}
	if err := p.checkTargetURL(in.URL); err != nil {
		return nil, err
	}
	size := int64(len(in.Body))
	if in.BodyReader != nil {
		size = in.BodyLength
	}
	if p.MaxBodyBytes > 0 && size > int64(p.MaxBodyBytes) {
		return nil, apierr.Input(http.StatusRequestEntityTooLarge, apierr.CodeBodyTooLarge,
			"the body is %d bytes; the limit is %d", size, p.MaxBodyBytes)
	}
	service := strings.TrimSpace(in.ServiceName)
	if service == "" {
		service = p.DefaultServiceName
	}
	if !lp.ValidServiceName(service) {
		return nil, apierr.Input(http.StatusBadRequest, apierr.CodeInvalidHeader,
			"LP-service-name must be 1 to 100 letters, digits, '_', '-' or '.'")
	}
	header := endToEnd(in.Header)
	if err := checkHeaders(header, in.AuthorizationOverride); err != nil {
		return nil, err
	}
	if err := checkHeaderSizes(header, map[string]string{
		HeaderForwardURL: in.URL, HeaderServiceName: service, HeaderAuthOverride: in.AuthorizationOverride,
	}); err != nil {
		return nil, err
	}
	stop := true
	if in.StopIfCertificateNotFound != nil {
		stop = *in.StopIfCertificateNotFound
	}
	return &lp.ForwardRequest{
		Method:                    method,
		URL:                       in.URL,
		ServiceName:               service,
		AuthorizationOverride:     in.AuthorizationOverride,
		StopIfCertificateNotFound: stop,
		Header:                    header,
		Body:                      in.Body,
		BodyReader:                in.BodyReader,
		BodyLength:                in.BodyLength,
	}, nil
}

// ParseBool reads the LP-stop-if-certificate-not-found header: absent is nil.
func ParseBool(name, v string) (*bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return nil, nil
	case "true":
		t := true
		return &t, nil
	case "false":
		f := false
		return &f, nil
	}
	return nil, apierr.Input(http.StatusBadRequest, apierr.CodeInvalidHeader, "%s must be true or false", name)
}

// checkTargetURL applies allowlist's form rules (the URL is sent as given, so it must
// read one way only) and then the allow-list itself.
func (p Policy) checkTargetURL(raw string) error {
	t, err := allowlist.CheckTarget(raw)
	if err != nil {
		return apierr.Input(http.StatusBadRequest, apierr.CodeInvalidForwardURL, "the target URL %s", err.Error())
	}
	if p.AllowedURLs.Allows(t) {
		return nil
	}
	return apierr.Input(http.StatusForbidden, apierr.CodeURLNotAllowed, "the target URL is not in FORWARD_ALLOWED_URLS")
}

// checkHeaders refuses what would split or smuggle a header on the way to LivePerson:
// a name that is not an HTTP token, or a value with a control character (CR, LF, NUL,
// ...; a tab is allowed). Every header value lpmtls sends is checked here, so a refusal
// is the caller's 400 and never a half-built call.
func checkHeaders(h http.Header, override string) error {
	for k, vs := range h {
		if !headers.ValidName(k) {
			return apierr.Input(http.StatusBadRequest, apierr.CodeInvalidHeader,
				"a header name is not an HTTP token (letters, digits and !#$%%&'*+-.^_`|~)")
		}
		for _, v := range vs {
			if !headers.ValidValue(v) {
				return apierr.Input(http.StatusBadRequest, apierr.CodeInvalidHeader,
					"header %s has a control character (CR, LF, NUL, ...) in its value", k)
			}
		}
	}
	if !headers.ValidValue(override) {
		return apierr.Input(http.StatusBadRequest, apierr.CodeInvalidHeader,
			"LP-authorization-override must be a single line without control characters")
	}
	return nil
}

// checkHeaderSizes holds what LivePerson would receive to headers.MaxValueBytes per
// value and headers.MaxListBytes in all: the caller's headers and the gateway's own
// (lp), whose values the caller chose. Messages name the header, never its value.
func checkHeaderSizes(h http.Header, lp map[string]string) error {
	total := 0
	check := func(name, v string) error {
		if len(v) > headers.MaxValueBytes {
			return apierr.Input(http.StatusRequestHeaderFieldsTooLarge, apierr.CodeHeadersTooLarge,
				"header %s is %d bytes; a forwarded header value may be at most %d bytes", name, len(v), headers.MaxValueBytes)
		}
		total += headers.FieldSize(name, v)
		return nil
	}
	for name, v := range lp {
		if v == "" {
			continue
		}
		if err := check(name, v); err != nil {
			return err
		}
	}
	for k, vs := range h {
		for _, v := range vs {
			if err := check(k, v); err != nil {
				return err
			}
		}
	}
	if total > headers.MaxListBytes {
		return apierr.Input(http.StatusRequestHeaderFieldsTooLarge, apierr.CodeHeadersTooLarge,
			"the forwarded headers come to %d bytes (name + value + 32 per header, as HTTP/2 counts them); the limit is %d bytes: send fewer or shorter headers",
			total, headers.MaxListBytes)
	}
	return nil
}

// endToEnd is the caller's headers, canonically keyed, without droppedHeaders.
func endToEnd(in http.Header) http.Header {
	out := make(http.Header, len(in))
	for k, v := range in {
		out[http.CanonicalHeaderKey(k)] = v
	}
	for _, k := range droppedHeaders {
		delete(out, k)
	}
	for k := range out {
		for _, p := range droppedPrefixes {
			if strings.HasPrefix(k, p) {
				delete(out, k)
			}
		}
	}
	return out
}

// Service sends validated requests through LivePerson.
type Service struct {
	Gateway  Gateway
	Sessions Sessions
	Policy   Policy
	Logger   *slog.Logger
}

// Send forwards req with the current bearer; after a 401 the session layer logs in
// again and Send runs once more, which is safe because the body is a replayable slice.
func (s *Service) Send(ctx context.Context, req *lp.ForwardRequest) (*lp.ForwardResponse, error) {
	var resp *lp.ForwardResponse
	var last session.Session
	err := s.Sessions.Do(ctx, func(ctx context.Context, sess session.Session) error {
		t0 := time.Now()
		r, err := s.Gateway.Forward(ctx, sess.Auth, req)
		recordGateway(ctx, time.Since(t0)) // LivePerson's part, for GatewayLatency
		resp, last = r, sess
		return err
	})
	if last.Source != "" {
		// Once per forward: the bearer of its last attempt (a login after a 401).
		recordSession(ctx, last)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// logAttrs describes a forward without its query string, which may carry secrets. The
// slice has room for the outcome's attributes; LogAttrs takes it without boxing each.
func logAttrs(req *lp.ForwardRequest, start time.Time) []slog.Attr {
	return append(make([]slog.Attr, 0, 8),
		slog.String("method", req.Method), slog.String("target", obs.URL(req.URL)),
		slog.String("serviceName", req.ServiceName), slog.Int64("bodyBytes", req.BodySize()),
		slog.Float64("elapsedMs", float64(time.Since(start).Microseconds())/1000),
	)
}
