// Package apigw translates API Gateway HTTP API (payload format 2.0) events to plain HTTP
// values and back. It knows nothing of what the request is for: handlers glue it to the
// rest of the system.
package apigw

import (
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/headers"
)

// Request is an HTTP API v2 event reduced to what an HTTP handler needs.
type Request struct {
	Method   string
	Path     string // the raw (still escaped) path as API Gateway received it
	RawQuery string
	Query    url.Values
	// Header has canonical keys. API Gateway joins repeated headers with commas; such a
	// value is kept as one entry, which RFC 9110 makes equivalent for list headers.
	// Cookies, which v2 moves to a separate array, are rejoined into one Cookie header.
	Header    http.Header
	Body      []byte
	RequestID string
	SourceIP  string
}

// FromV2 converts an HTTP API v2 event. The only failure is a body flagged as base64
// that does not decode, which the caller should answer with 400. Hop-by-hop headers are
// kept: call headers.StripHopByHop before forwarding them.
func FromV2(e *events.APIGatewayV2HTTPRequest) (*Request, error) {
	r := &Request{
		Method:    e.RequestContext.HTTP.Method,
		Path:      e.RawPath,
		RawQuery:  e.RawQueryString,
		RequestID: e.RequestContext.RequestID,
		SourceIP:  e.RequestContext.HTTP.SourceIP,
		Header:    make(http.Header, len(e.Headers)+1),
	}
	if r.Path == "" {
		r.Path = e.RequestContext.HTTP.Path
	}
	// A malformed pair is skipped rather than failing the request: ParseQuery keeps the
	// well-formed ones, which is what net/http's Request.URL.Query() does too.
	r.Query, _ = url.ParseQuery(e.RawQueryString)

	for k, v := range e.Headers {
		r.Header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	if len(e.Cookies) > 0 {
		// The array is authoritative: v2 removes the cookie header when it fills it.
		r.Header["Cookie"] = []string{strings.Join(e.Cookies, "; ")}
	}

	b, err := DecodeBody(e.Body, e.IsBase64Encoded)
	if err != nil {
		return nil, fmt.Errorf("apigw: request body is flagged base64 but does not decode: %w", err)
	}
	r.Body = b
	return r, nil
}

// Response is what a handler answers before it becomes an HTTP API v2 response.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// ToV2 converts a response. r.Header is not modified.
//
// HTTP API v2 has no multi-value response headers, so repeated headers are comma-joined,
// except Set-Cookie, whose values may contain commas (Expires) and go to Cookies intact.
// Hop-by-hop headers and Content-Length are dropped: API Gateway owns the connection and
// computes the length of what it actually sends.
func ToV2(r *Response) events.APIGatewayV2HTTPResponse {
	reply := ToReply(r)
	return reply.Event()
}

// v2Headers applies ToV2's header rules; out is never nil.
func v2Headers(h http.Header) (out map[string]string, cookies []string) {
	out = make(map[string]string, len(h))
	named := headers.ConnectionListed(h)
	for k, v := range h {
		if len(v) == 0 {
			continue
		}
		switch {
		case strings.EqualFold(k, "Set-Cookie"):
			cookies = append(cookies, v...)
			continue
		case strings.EqualFold(k, "Content-Length"), headers.HopByHop(k):
			continue
		}
		if named[http.CanonicalHeaderKey(k)] {
			continue
		}
		ck := http.CanonicalHeaderKey(k)
		if prev, ok := out[ck]; ok {
			// Two spellings of one key in a hand-built map: merge rather than lose one.
			out[ck] = prev + ", " + strings.Join(v, ", ")
		} else {
			out[ck] = strings.Join(v, ", ")
		}
	}
	return out, cookies
}

// EncodeBody is API Gateway's rule for a body in a JSON event or response: a string when
// the Content-Type is textual and the bytes are valid UTF-8, since JSON encoding would
// replace invalid sequences; base64 otherwise. An empty body is "".
func EncodeBody(contentType string, body []byte) (s string, isBase64 bool) {
	if len(body) == 0 {
		return "", false
	}
	if textBody(contentType, body) {
		return string(body), false
	}
	return encodeBase64(body), true
}

// textBody is EncodeBody's choice: true for a body that can travel as a JSON string.
func textBody(contentType string, body []byte) bool {
	return isTextual(contentType) && utf8.Valid(body)
}

// DecodeBody reverses EncodeBody. An empty plain body is nil; the only failure is a body
// flagged base64 that does not decode.
func DecodeBody(s string, isBase64 bool) ([]byte, error) {
	if isBase64 {
		return decodeBase64(s)
	}
	if s == "" {
		return nil, nil
	}
	return []byte(s), nil
}

func headerGet(h http.Header, key string) string {
	if v := h.Get(key); v != "" {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// isTextual reports whether a Content-Type names a text format that can travel in JSON
// as a string; a missing Content-Type counts as binary.
func isTextual(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		// Tolerate malformed parameters: the type before ';' is still meaningful.
		mt, _, _ = strings.Cut(contentType, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	if strings.HasPrefix(mt, "text/") ||
		strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") ||
		strings.HasSuffix(mt, "+yaml") || strings.Contains(mt, "javascript") ||
		strings.Contains(mt, "ecmascript") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/x-www-form-urlencoded",
		"application/graphql", "application/yaml", "application/x-yaml",
		"application/x-ndjson", "application/jsonl", "application/csv",
		"application/x-sh", "application/sql", "application/toml":
		return true
	}
	return false
}

// decodeBase64 allocates exactly one buffer of the decoded size. base64.DecodeString
// would first copy the whole input into a []byte; Decode only reads src, so viewing the
// string's bytes in place is safe.
func decodeBase64(s string) ([]byte, error) {
	if s == "" {
		return []byte{}, nil
	}
	src := unsafe.Slice(unsafe.StringData(s), len(s))
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(dst, src)
	if err != nil {
		return nil, err
	}
	return dst[:n], nil
}

// encodeBase64 allocates exactly one buffer of the encoded size and hands it over as the
// string: EncodeToString would allocate twice (buffer, then string copy). The buffer is
// never written again after the conversion.
func encodeBase64(b []byte) string {
	dst := make([]byte, base64.StdEncoding.EncodedLen(len(b)))
	base64.StdEncoding.Encode(dst, b)
	return unsafe.String(unsafe.SliceData(dst), len(dst))
}

// BodyStream is the alternative to DecodeBody for a large base64 body: it checks that s
// decodes and measures it without keeping the result, and returns a func that decodes
// it afresh on every call. The decoded body then never sits in memory whole.
func BodyStream(s string) (open func() io.Reader, n int64, err error) {
	open = func() io.Reader { return newB64Reader(s) }
	if strings.ContainsAny(s, "\r\n") {
		// Line-wrapped base64 (API Gateway sends none): the standard decoder copes with
		// it, at a lower speed.
		open = func() io.Reader { return base64.NewDecoder(base64.StdEncoding, strings.NewReader(s)) }
	}
	n, err = io.Copy(io.Discard, open())
	if err != nil {
		return nil, 0, err
	}
	return open, n, nil
}

// b64Chunk is how much base64 text b64Reader decodes at a time (a multiple of 4).
const b64Chunk = 64 << 10

// b64Reader decodes unwrapped base64 in large chunks; base64.NewDecoder decodes at most
// 768 bytes per Read, which makes a gateway upload of megabytes thousands of writes.
type b64Reader struct {
	s   string
	buf []byte
	out []byte
	err error
}

func newB64Reader(s string) *b64Reader { return &b64Reader{s: s} }

func (r *b64Reader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.s == "" {
			return 0, io.EOF
		}
		chunk := r.s
		if len(chunk) > b64Chunk {
			chunk = chunk[:b64Chunk]
		}
		r.s = r.s[len(chunk):]
		if r.buf == nil {
			r.buf = make([]byte, base64.StdEncoding.DecodedLen(b64Chunk))
		}
		m, err := base64.StdEncoding.Decode(r.buf, unsafe.Slice(unsafe.StringData(chunk), len(chunk)))
		r.out, r.err = r.buf[:m], err
		if err != nil {
			r.out = nil
		}
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}
