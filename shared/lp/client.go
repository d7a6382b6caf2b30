package lp

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lpmtls/lpmtls/shared/headers"
)

// Options configure a Client. Zero values take the documented defaults.
type Options struct {
	// HTTPClient is the process-wide client; nil means NewHTTPClient(). Its Transport,
	// and so its keep-alive pool, is shared; its Jar and CheckRedirect are not used.
	HTTPClient *http.Client
	// CSDSURL is the CSDS base URL, default "https://adminlogin.liveperson.net".
	CSDSURL string
	// MappingService is the CSDS service hosting the mapping check, default
	// ServiceMTLSGateway: LivePerson's docs give the check's URL as https://{domain}/...
	// without naming the CSDS service, and the mTLS gateway's is the likely one.
	MappingService string
	// MappingPath is the mapping check path; "{accountId}" is replaced by the path-escaped
	// account. Default "/api/account/{accountId}/checks/serviceUrlMappings".
	MappingPath string
	// OAuth2Version is the sentinel token endpoint's "v" query value, default "2.0": the
	// docs say v1 tokens are only for the Connector API, and LivePerson's own client asks
	// for 2.0.
	OAuth2Version string
	// DefaultTokenTTL is used when LivePerson's answer carries no lifetime, default 30m.
	DefaultTokenTTL time.Duration
	// UserAgent is sent on every call, default "lpmtls"; a forward carries the caller's
	// own User-Agent instead when it has exactly one.
	UserAgent string
	// MappingObjectsService is the CSDS service of the ac-common mapping objects,
	// default ServiceAccountConfigReadWrite (documented).
	MappingObjectsService string
	// MappingObjectsPath is their collection; "{accountId}" is replaced by the
	// path-escaped account and one object is the path plus "/{id}" (UNCONFIRMED beyond
	// the documented create). Default DefaultMappingObjectsPath.
	MappingObjectsPath string
	// MappingObjectsVersion is the "v" query value of those calls, default "3.0"; "-"
	// sends none.
	MappingObjectsVersion string
	// ServiceIDs maps a service name to the serviceId of a mapping object; default
	// DefaultServiceIDs. Names are compared without case.
	ServiceIDs map[string]string
	// ActivateFlagInBody sends activate's isValidateUrlEnabled in the JSON body instead
	// of the query: LivePerson lists it among path parameters, which is UNCONFIRMED.
	ActivateFlagInBody bool
}

// Defaults, exported so wiring code and docs can name them.
const (
	DefaultCSDSURL       = "https://adminlogin.liveperson.net"
	DefaultMappingPath   = "/api/account/{accountId}/checks/serviceUrlMappings"
	DefaultOAuth2Version = "2.0"
	DefaultTokenTTL      = 30 * time.Minute
	DefaultUserAgent     = "lpmtls"
	// DefaultMappingObjectsPath is the documented create path of the mapping objects.
	DefaultMappingObjectsPath    = "/api/account/{accountId}/configuration/ac-common/mtls"
	DefaultMappingObjectsVersion = "3.0"
	loginThrottleFloor           = 5 * time.Second // LivePerson: retry a throttled login no sooner than 5 s
	maxErrorBody                 = 64 << 10
	maxDrain                     = 256 << 10 // beyond this, closing the connection is cheaper than reading
	maxAPIBody                   = 4 << 20   // CSDS, login and mapping answers are a few KiB
	maxMessageLen                = 512
	maxLPMessageLen              = 200 // what an answer's body may add to a message
	defaultMaxIdlePerHost        = 32
	defaultIdleConnTimeout       = 90 * time.Second
)

// Client speaks to LivePerson. It is safe for concurrent use and holds no per-account
// state: domains and tokens belong to the caller (the session layer caches them).
type Client struct {
	hc   *http.Client
	opts Options
	now  func() time.Time
}

// New returns a Client. The caller's http.Client is shallow-copied so that redirects are
// never followed (a proxy must return a target's 3xx as-is, and a login must not re-post a
// password elsewhere) and no cookie jar collects targets' cookies across requests.
func New(o Options) *Client {
	if o.HTTPClient == nil {
		o.HTTPClient = NewHTTPClient()
	}
	if o.CSDSURL == "" {
		o.CSDSURL = DefaultCSDSURL
	}
	o.CSDSURL = strings.TrimRight(o.CSDSURL, "/")
	if o.MappingService == "" {
		o.MappingService = ServiceMTLSGateway
	}
	if o.MappingPath == "" {
		o.MappingPath = DefaultMappingPath
	}
	if o.OAuth2Version == "" {
		o.OAuth2Version = DefaultOAuth2Version
	}
	if o.DefaultTokenTTL <= 0 {
		o.DefaultTokenTTL = DefaultTokenTTL
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.MappingObjectsService == "" {
		o.MappingObjectsService = ServiceAccountConfigReadWrite
	}
	if o.MappingObjectsPath == "" {
		o.MappingObjectsPath = DefaultMappingObjectsPath
	}
	o.MappingObjectsPath = strings.TrimRight(o.MappingObjectsPath, "/")
	if o.MappingObjectsVersion == "" {
		o.MappingObjectsVersion = DefaultMappingObjectsVersion
	}
	ids := make(map[string]string, len(DefaultServiceIDs))
	src := o.ServiceIDs
	if len(src) == 0 {
		src = DefaultServiceIDs
	}
	for k, v := range src {
		ids[strings.ToUpper(k)] = v
	}
	o.ServiceIDs = ids
	hc := *o.HTTPClient
	hc.CheckRedirect = noRedirect
	hc.Jar = nil
	return &Client{hc: &hc, opts: o, now: time.Now}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// NewHTTPClient builds the one client a process should share. It has no overall Timeout:
// each call is bounded by its context, which carries the invocation deadline. Compression
// is disabled so response bytes are relayed exactly as the target sent them.
func NewHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: dialer.DialContext,
		// RootCAs nil means the system pool, which honours SSL_CERT_FILE.
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true, // a custom TLSClientConfig otherwise turns HTTP/2 off
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   defaultMaxIdlePerHost,
		IdleConnTimeout:       defaultIdleConnTimeout,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		DisableCompression:    true,
	}
	return &http.Client{Transport: tr, CheckRedirect: noRedirect}
}

// newRequest builds a request with the headers every LivePerson call carries.
func (c *Client) newRequest(ctx context.Context, op, method, rawURL string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if len(body) > 0 {
		// *bytes.Reader lets net/http set ContentLength and GetBody, so the body can be
		// replayed on a retried connection.
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, &Error{Kind: KindBadRequest, Op: op, Message: "cannot build request: " + causeText(err), Err: err}
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	return req, nil
}

// do sends req and turns a transport failure into an *Error.
func (c *Client) do(op string, req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, transportError(req.Context(), op, err)
	}
	return resp, nil
}

// apiCall is one request to a LivePerson JSON API (CSDS, login, oauth2, mapping check).
type apiCall struct {
	op, method, url string
	contentType     string // the body's; "" with no body
	bearer          string // sent as Authorization: Bearer when set
	body            []byte
	header          http.Header  // extra request headers (If-Match)
	answerHeader    *http.Header // when set, receives the 2xx answer's header
	// reject completes the error for a non-2xx answer: e has Op, Status, a bounded Body
	// and the loggable headers; h is the answer's full header. It sets Kind and Message
	// and returns the error to report (scrubbed of the call's secrets).
	reject func(e *Error, h http.Header) *Error
}

// call sends a and returns the status and whole body of its 2xx answer. Every failure
// is an *Error: the request could not be built (KindBadRequest), the transport failed
// (KindTimeout, KindNetwork), the answer was not 2xx (a.reject's) or too large
// (KindGateway).
func (c *Client) call(ctx context.Context, a apiCall) (int, []byte, error) {
	req, err := c.newRequest(ctx, a.op, a.method, a.url, a.body)
	if err != nil {
		return 0, nil, err
	}
	if a.contentType != "" {
		req.Header.Set("Content-Type", a.contentType)
	}
	if a.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+a.bearer)
	}
	req.Header.Set("Accept", "application/json")
	for k, vs := range a.header {
		req.Header[k] = vs
	}
	resp, err := c.do(a.op, req)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, nil, a.reject(c.responseError(a.op, resp), resp.Header)
	}
	if a.answerHeader != nil {
		*a.answerHeader = resp.Header.Clone()
	}
	raw, err := readAPIBody(ctx, a.op, resp)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, raw, nil
}

// transportError classifies a failure that produced no (complete) answer.
// The message names the host and the cause (classify).
func transportError(ctx context.Context, op string, err error) *Error {
	cause, msg := classify(ctx, err)
	kind := KindNetwork
	if cause == CauseTimeout {
		kind = KindTimeout
	}
	if k, ok := clientRefusal(err); ok && cause != CauseTimeout {
		// Not a transport failure at all: nothing left, so it carries no cause.
		return &Error{Kind: k, Op: op, Message: "lpmtls's HTTP client refused to send the request: " + causeText(err), Err: err}
	}
	return &Error{Kind: kind, Op: op, Message: msg, Err: err, cause: cause}
}

// clientRefusal recognises a request that net/http refused before a byte of it left:
// the fault is in what lpmtls asked it to send, not in LivePerson or the network. Its
// header and field errors are unexported, so their fixed texts are matched; a body that
// could not be read is marked by bodyReader.
func clientRefusal(err error) (Kind, bool) {
	var be *bodyError
	if errors.As(err, &be) {
		return KindUnsent, true
	}
	msg := causeText(err)
	switch {
	case strings.Contains(msg, "http2: request header list larger than peer's advertised limit"):
		return KindHeadersTooLarge, true
	case strings.Contains(msg, "invalid header field"), // net/http and http2, name or value
		strings.Contains(msg, "http2: invalid pseudo headers"),
		strings.Contains(msg, "net/http: can't write control character"),
		strings.Contains(msg, "http: ContentLength=") && strings.Contains(msg, "with Body length"),
		strings.Contains(msg, "unsupported protocol scheme"):
		return KindUnsent, true
	}
	return KindUnknown, false
}

// bodyError is a failure of the request body's own reader, as opposed to the network.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// bodyReader marks its reader's failures as bodyError, so that transportError can tell
// a body lpmtls could not produce from a connection that broke while sending it.
type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &bodyError{err}
	}
	return n, err
}

// causeText is the error without url.Error's "Post <url>:" prefix: short and URL-free.
func causeText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return clip(err.Error())
}

// responseError reads a bounded part of a non-success answer and returns the common
// fields; the caller sets Kind and Message. The body is drained and closed.
func (c *Client) responseError(op string, resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	discardAndClose(resp.Body)
	return &Error{
		Op:     op,
		Status: resp.StatusCode,
		Header: errorHeader(resp.Header),
		Body:   body,
	}
}

// readAPIBody reads a small JSON answer whole and closes it.
func readAPIBody(ctx context.Context, op string, resp *http.Response) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody+1))
	discardAndClose(resp.Body)
	if err != nil {
		return nil, transportError(ctx, op, err)
	}
	if len(body) > maxAPIBody {
		return nil, &Error{Kind: KindGateway, Op: op, Status: resp.StatusCode, Message: "answer too large"}
	}
	return trimBOM(body), nil
}

// utf8BOM is legal at the start of a JSON text sent by some servers, but encoding/json
// rejects it.
var utf8BOM = []byte("\xEF\xBB\xBF")

// trimBOM must run on every LivePerson answer before it is decoded.
func trimBOM(b []byte) []byte { return bytes.TrimPrefix(b, utf8BOM) }

// discardAndClose lets the transport reuse the connection when the rest is small.
func discardAndClose(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, maxDrain))
	_ = rc.Close()
}

// statusKind is the shared table for LivePerson's own APIs (login, oauth2, mapping).
func statusKind(status int) Kind {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return KindAuth
	case status == http.StatusTooManyRequests:
		return KindThrottled
	case status == http.StatusUnavailableForLegalReasons:
		return KindBlocked
	case status >= 500:
		return KindGateway
	case status >= 400:
		return KindBadRequest
	default: // 1xx/3xx: nothing LivePerson documents; treat as an unreadable answer
		return KindGateway
	}
}

// retryAfter reads Retry-After as delta-seconds or an HTTP-date; 0 when absent or bad.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > 86400*365 {
			n = 86400 * 365
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// lpMessage extracts LivePerson's explanation from an error body: the Login Service
// wrapper {"error":{message,internalCode,responseStatus}}, a top-level message and
// internalCode, or an OAuth2 {"error":"...","error_description":"..."}. A body that is
// not JSON (a load balancer's HTML page, plain text) gives its <title> or first line.
// The result is at most ~200 characters; callers still scrub it of request secrets.
// "" when there is nothing useful.
func lpMessage(body []byte) string {
	body = bytes.TrimSpace(trimBOM(body))
	if len(body) == 0 {
		return ""
	}
	switch body[0] {
	case '{':
		return clipTo(jsonMessage(body), maxLPMessageLen)
	case '[', '"':
		return "" // JSON of no known shape: nothing readable to add
	case '<':
		return clipTo(htmlTitle(body), maxLPMessageLen)
	}
	line, _, _ := bytes.Cut(body[:min(len(body), 4*maxLPMessageLen)], []byte("\n"))
	if bytes.IndexByte(line, 0) >= 0 {
		return "" // binary
	}
	return clipTo(strings.Join(strings.Fields(strings.ToValidUTF8(string(line), "")), " "), maxLPMessageLen)
}

func jsonMessage(body []byte) string {
	var doc struct {
		Error            json.RawMessage `json:"error"`
		ErrorDescription string          `json:"error_description"`
		Message          string          `json:"message"`
		InternalCode     json.RawMessage `json:"internalCode"`
		ResponseStatus   string          `json:"responseStatus"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	msg, code, status := doc.Message, doc.InternalCode, doc.ResponseStatus
	if e := bytes.TrimSpace(doc.Error); len(e) > 0 {
		switch e[0] {
		case '{':
			var w struct {
				Message        string          `json:"message"`
				InternalCode   json.RawMessage `json:"internalCode"`
				ResponseStatus string          `json:"responseStatus"`
			}
			if json.Unmarshal(e, &w) == nil {
				if w.Message != "" {
					msg = w.Message
				}
				if len(w.InternalCode) > 0 {
					code = w.InternalCode
				}
				if w.ResponseStatus != "" {
					status = w.ResponseStatus
				}
			}
		case '"':
			var s string
			if json.Unmarshal(e, &s) == nil && s != "" {
				msg = s
				if doc.ErrorDescription != "" {
					msg = s + ": " + doc.ErrorDescription
				}
			}
		}
	}
	var extra []string
	if c := strings.Trim(string(bytes.TrimSpace(code)), `"`); c != "" && c != "null" {
		extra = append(extra, "internalCode "+clipTo(c, 40))
	}
	if status != "" {
		extra = append(extra, clipTo(status, 40))
	}
	if len(extra) > 0 {
		if msg != "" {
			msg += " "
		}
		msg += "(" + strings.Join(extra, ", ") + ")"
	}
	return msg
}

// htmlTitle returns the text of an HTML page's <title> ("502 Bad Gateway"), "" when none.
// The rest of the page is markup and noise, and may echo the request.
func htmlTitle(body []byte) string {
	head := body[:min(len(body), maxErrorBody)]
	lower := bytes.ToLower(head)
	i := bytes.Index(lower, []byte("<title"))
	if i < 0 {
		return ""
	}
	j := bytes.IndexByte(lower[i:], '>')
	if j < 0 {
		return ""
	}
	start := i + j + 1
	end := bytes.Index(lower[start:], []byte("</title"))
	if end < 0 {
		return ""
	}
	return strings.Join(strings.Fields(string(head[start:start+end])), " ")
}

// clip bounds a message and removes control characters so it is safe in a log line.
func clip(s string) string { return clipTo(s, maxMessageLen) }

func clipTo(s string, n int) string {
	if len(s) > n {
		// Cut on a rune boundary so the message stays valid UTF-8.
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// scrub removes secrets from every text field of e: LivePerson could echo a value, and
// a caller may log Message, Error() or Body.
func scrub(e *Error, secrets ...string) *Error {
	for _, s := range secrets {
		if s != "" {
			replaceAll(e, s, "[redacted]")
		}
	}
	return e
}

// redactURL replaces the target URL in every text field of e with scheme://host/path,
// and any leftover copy of its query with [redacted]: a query string (or userinfo) may
// carry the target's secrets, and the gateway's transport headers echo "message + URL".
func redactURL(e *Error, rawURL string) *Error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return scrub(e, rawURL) // unparsable: hide it whole
	}
	safe := u.Scheme + "://" + u.Host + u.EscapedPath()
	if rawURL != safe {
		replaceAll(e, rawURL, safe)
	}
	// A transport message may also show the URL without its fragment, or decoded.
	if u.Fragment != "" || u.RawFragment != "" {
		if i := strings.IndexByte(rawURL, '#'); i > 0 && rawURL[:i] != safe {
			replaceAll(e, rawURL[:i], safe)
		}
	}
	if u.User != nil {
		scrub(e, u.User.String())
	}
	for _, q := range []string{u.RawQuery, u.Query().Encode()} {
		if dq, err := url.QueryUnescape(q); err == nil && dq != q {
			scrubQuery(e, dq)
		}
		scrubQuery(e, q)
	}
	return e
}

// scrubQuery hides a query string. A very short one ("?1") would match ordinary text
// ("HTTP 401"), so it is hidden only where it follows a '?'.
func scrubQuery(e *Error, q string) {
	switch {
	case q == "":
	case len(q) < 4:
		replaceAll(e, "?"+q, "?[redacted]")
	default:
		replaceAll(e, q, "[redacted]")
	}
}

// replaceAll replaces old with repl in every text field of e.
func replaceAll(e *Error, old, repl string) {
	e.Message = strings.ReplaceAll(e.Message, old, repl)
	if bytes.Contains(e.Body, []byte(old)) {
		e.Body = bytes.ReplaceAll(e.Body, []byte(old), []byte(repl))
	}
	for k, vs := range e.Header {
		for i, v := range vs {
			if strings.Contains(v, old) {
				e.Header[k][i] = strings.ReplaceAll(v, old, repl)
			}
		}
	}
}

// joinMessage prefixes LivePerson's own explanation with what we were doing.
func joinMessage(prefix, lp string) string {
	if lp == "" {
		return prefix
	}
	return prefix + ": " + lp
}

// errorHeader is the answer's headers fit to keep in an Error: no hop-by-hop headers and
// no Set-Cookie, since an Error may be logged and cookies are credentials.
func errorHeader(h http.Header) http.Header {
	out := h.Clone()
	if out == nil {
		return nil
	}
	headers.StripHopByHop(out)
	delete(out, "Set-Cookie")
	return out
}

// validHost accepts host or host:port only, so "https://"+host cannot grow a path,
// userinfo or a second scheme.
func validHost(h string) bool {
	if h == "" || strings.ContainsAny(h, "/\\?#@%") {
		return false
	}
	for i := 0; i < len(h); i++ {
		if h[i] <= ' ' || h[i] == 0x7f {
			return false
		}
	}
	u, err := url.Parse("https://" + h)
	return err == nil && u.Host == h && u.Hostname() != "" && u.Path == "" && u.User == nil
}

func badRequest(op, msg string) *Error {
	return &Error{Kind: KindBadRequest, Op: op, Message: msg}
}
