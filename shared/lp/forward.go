package lp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/lpmtls/lpmtls/shared/headers"
)

// Gateway header names (canonical form; HTTP header names are case-insensitive).
const (
	hdrForwardURL       = "Lp-Forward-Url"
	hdrServiceName      = "Lp-Service-Name"
	hdrAuthOverride     = "Lp-Authorization-Override"
	hdrStopIfNoCert     = "Lp-Stop-If-Certificate-Not-Found"
	hdrMsgFromTransport = "Lp-Message-From-Transport"
	hdrErrFromTransport = "Lp-Error-From-Transport"
)

// maxPrealloc bounds how much a Content-Length may make Forward allocate up front.
const maxPrealloc = 8 << 20

// Forward sends r through the mTLS gateway and returns the target's answer untouched.
// Gateway-originated failures come back as *Error (see the classification below); a
// target's own 2xx/3xx/4xx is a success. Redirects are never followed.
func (c *Client) Forward(ctx context.Context, auth Auth, r *ForwardRequest) (*ForwardResponse, error) {
	const op = "forward"
	if r == nil {
		return nil, badRequest(op, "no request")
	}
	if auth.AccountID == "" {
		return nil, badRequest(op, "account id is empty")
	}
	if r.URL == "" {
		return nil, badRequest(op, "target URL is empty")
	}
	// Values are checked here so that a bad one is the caller's error, not an opaque
	// transport failure; messages name the field, never its value.
	for _, f := range []struct{ name, v string }{
		{"bearer", auth.Bearer}, {"target URL", r.URL}, {"service name", r.ServiceName},
		{"authorization override", r.AuthorizationOverride},
	} {
		if !headers.ValidValue(f.v) {
			return nil, badRequest(op, f.name+" is not a valid header value")
		}
	}
	if auth.Bearer == "" {
		return nil, badRequest(op, "bearer is empty")
	}
	host, err := auth.Domains.Host(ServiceMTLSGateway)
	if err != nil {
		return nil, err
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := c.newRequest(ctx, op, method, "https://"+host+"/mtls/account/"+url.PathEscape(auth.AccountID), r.Body)
	if err != nil {
		return nil, err
	}
	if r.BodyReader != nil && r.BodyLength > 0 {
		req.Body = io.NopCloser(bodyReader{r.BodyReader()})
		req.ContentLength = r.BodyLength
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bodyReader{r.BodyReader()}), nil }
	} else if req.Body != nil && req.Body != http.NoBody {
		body := r.Body
		req.Body = io.NopCloser(bodyReader{bytes.NewReader(body)})
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bodyReader{bytes.NewReader(body)}), nil }
	}
	// The caller's User-Agent is the target's business; ours is only the default.
	if err := copyRequestHeaders(req.Header, r.Header); err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+auth.Bearer)
	req.Header.Set(hdrForwardURL, r.URL)
	if r.ServiceName != "" {
		req.Header.Set(hdrServiceName, r.ServiceName)
	}
	if r.AuthorizationOverride != "" {
		req.Header.Set(hdrAuthOverride, r.AuthorizationOverride)
	}
	// Always explicit: the gateway's default (forward over plain TLS) must never be
	// chosen by omission.
	req.Header.Set(hdrStopIfNoCert, strconv.FormatBool(r.StopIfCertificateNotFound))

	resp, err := c.do(op, req)
	if err != nil {
		return nil, err
	}
	if transportFailed(resp) {
		e := c.responseError(op, resp)
		e.Kind = KindTarget
		return nil, forwardError(e, resp.Header, auth.Bearer, r)
	}

	body, err := readWhole(resp.Body, resp.ContentLength)
	_ = resp.Body.Close()
	if err != nil {
		return nil, transportError(ctx, op, err)
	}
	if e := c.gatewayOwn(ctx, auth, r, resp, body); e != nil {
		return nil, forwardError(e, resp.Header, auth.Bearer, r)
	}
	headers.StripHopByHop(resp.Header)
	return &ForwardResponse{StatusCode: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// transportFailed: the gateway says its call to the target failed (424, or the
// transport headers, whose presence counts even with an empty value; net/http
// canonicalises received names). Nothing of the target's is in such an answer.
func transportFailed(resp *http.Response) bool {
	return len(resp.Header[hdrMsgFromTransport]) > 0 || len(resp.Header[hdrErrFromTransport]) > 0 ||
		resp.StatusCode == http.StatusFailedDependency
}

// gatewayOwn returns the error for an answer that is LivePerson's own, and nil for one
// that is (or cannot be shown not to be) the target's, which then goes back untouched.
//
// The gateway relays the target's status, so the status alone proves nothing:
//   - 401/403: the bearer is believed valid (it was just handed out), so the gateway is
//     asked, with one mapping check for this very service and URL, whether it takes it.
//     Only a refusal there makes the answer the gateway's (KindAuth, with the check's
//     status: a 401 lets the session log in and resend, which is safe since the gateway
//     stopped the request). If the check passes, or fails in a way that proves nothing,
//     the answer is the target's: resending it could act twice.
//   - 429/5xx: LivePerson's own when its body is LivePerson's error wrapper
//     ({"error":{"internalCode":…,"responseStatus":…}} naming this status); a 500 under
//     the stop flag that talks about certificates/mappings is the documented "no
//     certificate" answer. Anything else is the target's, Retry-After and all.
//   - 400: LivePerson's own client reads it as "no mTLS mapping" under the stop flag;
//     only with a body about certificates/mappings, since a target's 400 is far more common.
func (c *Client) gatewayOwn(ctx context.Context, auth Auth, r *ForwardRequest, resp *http.Response, body []byte) *Error {
	st := resp.StatusCode
	e := &Error{Op: "forward", Status: st, Header: errorHeader(resp.Header), Body: clipBody(body)}
	switch {
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		status, refused := c.bearerRefused(ctx, auth, r)
		if !refused {
			return nil
		}
		e.Kind, e.Status = KindAuth, status
	case (st == http.StatusInternalServerError || st == http.StatusBadRequest) &&
		r.StopIfCertificateNotFound && mentionsMapping(body):
		e.Kind = KindNoCertificate
	case st == http.StatusTooManyRequests && lpWrapped(body, st):
		e.Kind, e.RetryAfter = KindThrottled, retryAfter(resp.Header, c.now())
	case st >= 500 && lpWrapped(body, st):
		e.Kind = KindGateway
	default:
		return nil
	}
	return e
}

// bearerRefused asks the gateway whether it takes auth's bearer, with the cheapest
// authenticated call it has: a mapping check of the request's own service and URL. It
// reports the check's status when the gateway refused the bearer; any other outcome
// (accepted, throttled, unreachable) is not a refusal.
func (c *Client) bearerRefused(ctx context.Context, auth Auth, r *ForwardRequest) (int, bool) {
	_, err := c.CheckMappings(ctx, auth, []Mapping{{ServiceName: r.ServiceName, URL: r.URL}})
	var e *Error
	if errors.As(err, &e) && e.Kind == KindAuth {
		return e.Status, true
	}
	return 0, false
}

// lpWrapped says whether body is LivePerson's error wrapper for status:
// {"error":{"time":…,"message":…,"internalCode":…,"responseStatus":"SERVICE_UNAVAILABLE"}},
// the shape its Login Service documents and its Java services share. internalCode must be
// there and responseStatus must spell this very status as Java's HttpStatus does, so a
// target's own {"error":{"message":…}} is not taken for it.
func lpWrapped(body []byte, status int) bool {
	var doc struct {
		Error *struct {
			InternalCode   json.RawMessage `json:"internalCode"`
			ResponseStatus string          `json:"responseStatus"`
		} `json:"error"`
	}
	b := bytes.TrimSpace(trimBOM(body[:min(len(body), maxErrorBody)]))
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &doc) != nil || doc.Error == nil {
		return false
	}
	code := bytes.TrimSpace(doc.Error.InternalCode)
	return len(code) > 0 && string(code) != "null" && doc.Error.ResponseStatus == JavaStatus(status)
}

// JavaStatus spells an HTTP status the way Java's HttpStatus enum does
// ("SERVICE_UNAVAILABLE"), as LivePerson's responseStatus field carries it.
func JavaStatus(status int) string {
	t := http.StatusText(status)
	if t == "" {
		return ""
	}
	return strings.ToUpper(strings.NewReplacer(" ", "_", "-", "_", "'", "").Replace(t))
}

// forwardError sets the message and removes everything secret from e: the bearer, the
// override, and the target URL's query (the transport headers echo the URL).
func forwardError(e *Error, h http.Header, bearer string, r *ForwardRequest) *Error {
	e.Message = forwardMessage(e, h)
	return redactURL(scrub(e, bearer, r.AuthorizationOverride), r.URL)
}

// mentionsMapping is the body test that turns a 400/500 under the stop flag into
// KindNoCertificate. Only the start of the body is looked at: the gateway's own
// explanations are short.
func mentionsMapping(body []byte) bool {
	b := bytes.ToLower(body[:min(len(body), maxErrorBody)])
	for _, w := range []string{"cert", "mapping", "mtls"} {
		if bytes.Contains(b, []byte(w)) {
			return true
		}
	}
	return false
}

func forwardMessage(e *Error, h http.Header) string {
	switch e.Kind {
	case KindTarget:
		var parts []string
		for _, k := range []string{hdrMsgFromTransport, hdrErrFromTransport} {
			for _, v := range h.Values(k) {
				if v = strings.TrimSpace(v); v != "" {
					parts = append(parts, v)
				}
			}
		}
		if len(parts) == 0 {
			return "target call failed"
		}
		return clip("target call failed: " + strings.Join(parts, "; "))
	case KindAuth:
		return joinMessage("gateway refused the bearer (the mapping check refused it too)", lpMessage(e.Body))
	case KindThrottled:
		return joinMessage("gateway throttled the call", lpMessage(e.Body))
	case KindNoCertificate:
		return joinMessage("no certificate mapping for this account, service and URL", lpMessage(e.Body))
	default:
		return joinMessage("gateway failed", lpMessage(e.Body))
	}
}

// copyRequestHeaders copies the caller's end-to-end headers. Authorization and LP-*
// are the gateway's own and are set by Forward alone; Host, Content-Length and
// hop-by-hop headers belong to the connection. A caller's single User-Agent replaces
// the default in dst (appending would leave the default first, and only the first is
// sent); several or an empty one keep the default.
func copyRequestHeaders(dst, src http.Header) error {
	var userAgent []string
	connListed := headers.ConnectionListed(src)
	for k, vs := range src {
		if !headers.ValidName(k) {
			return badRequest("forward", "a header name is not valid")
		}
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if skipRequestHeader(ck) || connListed[ck] {
			continue
		}
		for _, v := range vs {
			if !headers.ValidValue(v) {
				return badRequest("forward", "header "+ck+" has an invalid value")
			}
		}
		if ck == "User-Agent" {
			userAgent = append(userAgent, vs...)
			continue
		}
		dst[ck] = append(dst[ck], vs...)
	}
	if len(userAgent) == 1 && strings.TrimSpace(userAgent[0]) != "" {
		dst["User-Agent"] = userAgent
	}
	return nil
}

func skipRequestHeader(ck string) bool {
	switch ck {
	case "Host", "Content-Length", "Authorization":
		return true
	}
	return headers.HopByHop(ck) || (len(ck) >= 3 && strings.EqualFold(ck[:3], "lp-"))
}

// readWhole reads a body in one allocation when its length is known.
func readWhole(r io.Reader, contentLength int64) ([]byte, error) {
	n := contentLength
	if n < 0 || n > maxPrealloc {
		n = 0
	}
	buf := bytes.NewBuffer(make([]byte, 0, n+bytes.MinRead))
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
