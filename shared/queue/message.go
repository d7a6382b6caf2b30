// Package queue forwards requests that arrive as SQS messages. A message goes through
// the same forward.Policy and forward.Service as the HTTP route, and its outcome is
// decided from the same apierr table, so a request means the same thing whichever way it
// came. What this package adds is the queue's contract: a message leaves the queue only
// once its outcome is safe somewhere (delivered, or in the dead-letter queue).
package queue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/apigw"
	"github.com/lpmtls/lpmtls/shared/forward"
)

// Message is the JSON body of a request message.
type Message struct {
	// ID is the caller's correlation id, echoed in the result.
	ID                    string  `json:"id"`
	Method                string  `json:"method"`
	URL                   string  `json:"url"`
	ServiceName           string  `json:"serviceName"`
	Headers               Headers `json:"headers"`
	Body                  string  `json:"body"`
	IsBase64Encoded       bool    `json:"isBase64Encoded"`
	AuthorizationOverride string  `json:"authorizationOverride"`
	// StopIfCertificateNotFound is nil when absent: forward.Policy applies the default.
	StopIfCertificateNotFound *bool `json:"stopIfCertificateNotFound"`
}

// knownFields are the keys a message may have; anything else is refused so a misspelt
// key ("stopIfCertificateNotfound") cannot silently fall back to a default.
var knownFields = map[string]bool{
	"id": true, "method": true, "url": true, "serviceName": true, "headers": true, "body": true,
	"isBase64Encoded": true, "authorizationOverride": true, "stopIfCertificateNotFound": true,
}

// Headers are header values keyed by name. In JSON a value is a string, or an array of
// strings for a repeated header; a single value is written back as a string.
type Headers map[string][]string

// UnmarshalJSON accepts {"Name":"v"} and {"Name":["v1","v2"]}.
func (h *Headers) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("headers must be an object of strings or arrays of strings")
	}
	out := make(Headers, len(raw))
	for k, v := range raw {
		// encoding/json reads null as "" for a string: a null value or element would
		// become an empty header value nobody sent, so it is refused.
		var s string
		if isString(v) && json.Unmarshal(v, &s) == nil {
			out[k] = append(out[k], s)
			continue
		}
		var elems []json.RawMessage
		if err := json.Unmarshal(v, &elems); err != nil || elems == nil {
			return fmt.Errorf("header %q must be a string or an array of strings", k)
		}
		vs := make([]string, 0, len(elems))
		for _, e := range elems {
			if !isString(e) || json.Unmarshal(e, &s) != nil {
				return fmt.Errorf("header %q must be a string or an array of strings", k)
			}
			vs = append(vs, s)
		}
		out[k] = vs
	}
	*h = out
	return nil
}

func isString(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '"'
}

// MarshalJSON writes a single value as a string and repeated values as an array.
func (h Headers) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(h))
	for k, vs := range h {
		switch len(vs) {
		case 1:
			out[k] = vs[0]
		case 0:
			out[k] = []string{} // [] rather than null, which would not read back
		default:
			out[k] = vs
		}
	}
	return json.Marshal(out)
}

// Parse reads a message body strictly. Every failure is a non-transient *apierr.Error:
// retrying the same bytes cannot make them valid.
func Parse(body string) (*Message, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		return nil, apierr.Input(http.StatusBadRequest, apierr.CodeInvalidJSON,
			"the message body is not a JSON object: %s", jsonReason(err))
	}
	if raw == nil {
		return nil, apierr.Input(http.StatusBadRequest, apierr.CodeInvalidJSON, "the message body is null, not a JSON object")
	}
	var unknown []string
	for k := range raw {
		if !knownFields[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, apierr.Input(http.StatusBadRequest, apierr.CodeInvalidRequest,
			"unknown field(s) in the message: %s", quoteAll(unknown))
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	var m Message
	if err := dec.Decode(&m); err != nil {
		return nil, apierr.Input(http.StatusBadRequest, apierr.CodeInvalidRequest,
			"the message does not match the schema: %s", jsonReason(err))
	}
	return &m, nil
}

// Input turns the message into what forward.Policy validates.
func (m *Message) Input() (forward.Input, error) {
	body, err := apigw.DecodeBody(m.Body, m.IsBase64Encoded)
	if err != nil {
		return forward.Input{}, apierr.Input(http.StatusBadRequest, apierr.CodeInvalidBody,
			"body is not valid base64 although isBase64Encoded is true")
	}
	header := make(http.Header, len(m.Headers))
	for k, vs := range m.Headers {
		ck := http.CanonicalHeaderKey(k)
		header[ck] = append(header[ck], vs...)
	}
	return forward.Input{
		Method:                    m.Method,
		URL:                       m.URL,
		ServiceName:               m.ServiceName,
		AuthorizationOverride:     m.AuthorizationOverride,
		StopIfCertificateNotFound: m.StopIfCertificateNotFound,
		Header:                    header,
		Body:                      body,
	}, nil
}

// jsonReason describes a decoding error by position and type, never by value: a message
// may carry a bearer in authorizationOverride.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s, not %s", te.Field, te.Type.String(), te.Value)
		}
		return fmt.Sprintf("expected %s, found %s", te.Type.String(), te.Value)
	}
	msg := err.Error()
	if strings.Contains(msg, "unexpected end of JSON input") {
		return "unexpected end of JSON input"
	}
	if strings.HasPrefix(msg, "header ") || strings.HasPrefix(msg, "headers ") {
		return msg
	}
	return "invalid JSON"
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
