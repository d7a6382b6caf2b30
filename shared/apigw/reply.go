package apigw

import (
	"encoding/base64"
	"slices"
	"strconv"
	"unsafe"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/jsonstr"
)

// Reply is an HTTP API v2 response whose body is still the handler's bytes. AppendJSON
// writes it as the function's answer in one pass, a binary body's base64 straight into
// the output: no base64 string, no encoder buffer, no copy of either.
type Reply struct {
	StatusCode int
	Headers    map[string]string
	Cookies    []string
	Body       []byte
	// Base64 says Body is binary: it goes out base64-encoded, with isBase64Encoded set.
	Base64 bool
	// encoded says Body already is base64 text (a Reply made from an event response).
	encoded bool
}

// ToReply converts a response by ToV2's rules, keeping the body as it is.
func ToReply(r *Response) Reply {
	out := Reply{StatusCode: r.StatusCode}
	out.Headers, out.Cookies = v2Headers(r.Header)
	out.Body = r.Body
	if len(r.Body) > 0 {
		out.Base64 = !textBody(headerGet(r.Header, "Content-Type"), r.Body)
	}
	return out
}

// ReplyOf wraps a handler's event response; the body is not copied.
func ReplyOf(e events.APIGatewayV2HTTPResponse) Reply {
	return Reply{StatusCode: e.StatusCode, Headers: e.Headers, Cookies: e.Cookies,
		Body: unsafe.Slice(unsafe.StringData(e.Body), len(e.Body)), Base64: e.IsBase64Encoded, encoded: e.IsBase64Encoded}
}

// Event is the reply as aws-lambda-go's type, the body encoded as AppendJSON would.
func (r *Reply) Event() events.APIGatewayV2HTTPResponse {
	e := events.APIGatewayV2HTTPResponse{StatusCode: r.StatusCode, Headers: r.Headers, Cookies: r.Cookies, IsBase64Encoded: r.Base64}
	switch {
	case r.Base64 && !r.encoded:
		e.Body = encodeBase64(r.Body)
	case len(r.Body) > 0:
		e.Body = string(r.Body)
	}
	return e
}

// BodyLen is the length of the body as it goes out (its base64 for a binary body).
func (r *Reply) BodyLen() int {
	if r.Base64 && !r.encoded {
		return base64.StdEncoding.EncodedLen(len(r.Body))
	}
	return len(r.Body)
}

// AppendJSON appends the reply as the JSON document Lambda returns to API Gateway.
// Headers are written in sorted order; the body comes last so the buffer grows for it
// at most once, to its exact size when it is base64.
func (r *Reply) AppendJSON(dst []byte) []byte {
	hint := 96 + r.BodyLen()
	for k, v := range r.Headers {
		hint += len(k) + len(v) + 6
	}
	for _, c := range r.Cookies {
		hint += len(c) + 3
	}
	b := append(slices.Grow(dst, hint), `{"statusCode":`...)
	b = strconv.AppendInt(b, int64(r.StatusCode), 10)
	if r.Headers != nil {
		b = append(b, `,"headers":{`...)
		keys := make([]string, 0, len(r.Headers))
		for k := range r.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonstr.Append(b, k)
			b = append(b, ':')
			b = jsonstr.Append(b, r.Headers[k])
		}
		b = append(b, '}')
	}
	if r.Cookies != nil {
		b = append(b, `,"cookies":[`...)
		for i, c := range r.Cookies {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonstr.Append(b, c)
		}
		b = append(b, ']')
	}
	if r.Base64 {
		b = append(b, `,"isBase64Encoded":true`...)
	}
	b = append(b, `,"body":`...)
	if !r.Base64 || r.encoded {
		b = slices.Grow(b, len(r.Body)+3)
		b = jsonstr.Append(b, r.Body)
		return append(b, '}')
	}
	n := base64.StdEncoding.EncodedLen(len(r.Body))
	b = slices.Grow(b, n+3)
	b = append(b, '"')
	base64.StdEncoding.Encode(b[len(b):len(b)+n], r.Body)
	b = b[:len(b)+n]
	return append(b, '"', '}')
}
