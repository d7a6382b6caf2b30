package lp

import (
	"bytes"
	"context"
	"fmt"
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
		req.Body = io.NopCloser(r.BodyReader())
		req.ContentLength = r.BodyLength
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(r.BodyReader()), nil }
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
	kind, failed := forwardKind(resp)
	if failed {
		e := c.responseError(op, resp)
		e.Kind = kind
		switch {
		case kind == KindGateway && resp.StatusCode == http.StatusInternalServerError &&
			r.StopIfCertificateNotFound && mentionsMapping(e.Body):
			e.Kind = KindNoCertificate
		case kind == KindThrottled:
			e.RetryAfter = retryAfter(resp.Header, c.now())
		}
		return nil, forwardError(e, resp.Header, auth.Bearer, r)
	}

	body, err := readWhole(resp.Body, resp.ContentLength)
	_ = resp.Body.Close()
	if err != nil {
		return nil, transportError(ctx, op, err)
	}
	if resp.StatusCode == http.StatusBadRequest && r.StopIfCertificateNotFound && mentionsMapping(body) {
		e := &Error{Kind: KindNoCertificate, Op: op, Status: resp.StatusCode,
			Header: errorHeader(resp.Header), Body: clipBody(body)}
		return nil, forwardError(e, resp.Header, auth.Bearer, r)
	}
	headers.StripHopByHop(resp.Header)
	return &ForwardResponse{StatusCode: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// forwardError sets the message and removes everything secret from e: the bearer, the
// override, and the target URL's query (the transport headers echo the URL).
func forwardError(e *Error, h http.Header, bearer string, r *ForwardRequest) *Error {
	e.Message = forwardMessage(e, h)
	return redactURL(scrub(e, bearer, r.AuthorizationOverride), r.URL)
}

// forwardKind classifies a gateway answer from status and headers alone; order matters.
//
// The gateway relays the target's own status, so most codes are ambiguous; the rules
// lean towards passing the target's answer through untouched:
//   - transport headers or 424: the gateway says the call to the target failed.
//   - 401/403: read as the gateway refusing our bearer, though a target can answer them
//     too. The session layer then logs in once more and retries; a 401 that persists is
//     reported as an auth failure. Telling the two apart would need a marker the gateway
//     does not document, so the rule (always KindAuth) stands.
//   - 429: the gateway's throttle (a target's 429 is rare and means the same to us).
//   - 400: LivePerson's own client reads it as "no mTLS mapping" when the stop flag is
//     set, but a target answers 400 for its own reasons far more often. So it is not a
//     failure here; Forward reads the body and calls it KindNoCertificate only when the
//     stop flag was set and the body talks about certificates/mappings.
//   - 5xx: KindGateway; a 500 is refined to KindNoCertificate by the same body test
//     (the docs say the gateway answers 500 when the stop flag finds no certificate).
func forwardKind(resp *http.Response) (Kind, bool) {
	st := resp.StatusCode
	switch {
	// Presence counts, even with an empty value; net/http canonicalises received names.
	case len(resp.Header[hdrMsgFromTransport]) > 0 || len(resp.Header[hdrErrFromTransport]) > 0 ||
		st == http.StatusFailedDependency:
		return KindTarget, true
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		return KindAuth, true
	case st == http.StatusTooManyRequests:
		return KindThrottled, true
	case st >= 500:
		return KindGateway, true
	}
	return KindUnknown, false
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
			return fmt.Sprintf("target call failed (HTTP %d)", e.Status)
		}
		return clip("target call failed: " + strings.Join(parts, "; "))
	case KindAuth:
		return joinMessage(fmt.Sprintf("gateway refused the credentials (HTTP %d)", e.Status), lpMessage(e.Body))
	case KindThrottled:
		return "gateway throttled the call"
	case KindNoCertificate:
		return joinMessage(fmt.Sprintf("no certificate mapping for this account, service and URL (HTTP %d)", e.Status), lpMessage(e.Body))
	default:
		return joinMessage(fmt.Sprintf("gateway answered HTTP %d", e.Status), lpMessage(e.Body))
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
