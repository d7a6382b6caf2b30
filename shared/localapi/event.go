package localapi

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/apigw"
)

// Values API Gateway fills that mean nothing locally; fixed so events are reproducible.
const (
	LocalAccountID = "123456789012" // what sam local uses
	LocalAPIID     = "local"
	timeLayout     = "02/Jan/2006:15:04:05 -0700"
)

// Meta is what varies per request and is not in the HTTP request itself.
type Meta struct {
	RequestID string
	TraceID   string // the X-Amzn-Trace-Id value
	Time      time.Time
}

// NewMeta returns a random request id and trace id, and the current time.
func NewMeta() Meta {
	now := time.Now()
	var b [12]byte
	_, _ = rand.Read(b[:])
	return Meta{
		// API Gateway ids look like "Cx1dGhYRoAMEbPw=": base64 of 11 bytes.
		RequestID: base64.StdEncoding.EncodeToString(randBytes(11)),
		TraceID:   "Root=1-" + strconv.FormatInt(now.Unix(), 16) + "-" + hex.EncodeToString(b[:]),
		Time:      now,
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// NewEvent builds the HTTP API payload 2.0 event API Gateway would send for r, whose body
// has already been read into body. routeKey is the matched route ("POST /mapping").
//
// As API Gateway does: header names are lower-cased and repeated headers comma-joined;
// Cookie headers move to the cookies array; repeated query parameters are comma-joined in
// queryStringParameters; a body is base64-encoded unless it is textual UTF-8; the
// x-forwarded-* and x-amzn-trace-id headers are added.
func NewEvent(r *http.Request, body []byte, routeKey string, m Meta) events.APIGatewayV2HTTPRequest {
	host := r.Host
	hostname, port, err := net.SplitHostPort(host)
	if err != nil {
		hostname, port = host, "80"
	}
	sourceIP := r.RemoteAddr
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		sourceIP = h
	}

	headers := make(map[string]string, len(r.Header)+6)
	var cookies []string
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		switch lk {
		case "cookie":
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		case "content-length", "transfer-encoding", "expect":
			// API Gateway buffers the body (answering 100-continue itself) and states
			// its length itself.
			continue
		}
		if prev, ok := headers[lk]; ok {
			headers[lk] = prev + "," + strings.Join(vs, ",")
		} else {
			headers[lk] = strings.Join(vs, ",")
		}
	}
	if host != "" {
		headers["host"] = host
	}
	if len(body) > 0 {
		headers["content-length"] = strconv.Itoa(len(body))
	}
	if xff := headers["x-forwarded-for"]; xff != "" {
		headers["x-forwarded-for"] = xff + ", " + sourceIP
	} else {
		headers["x-forwarded-for"] = sourceIP
	}
	headers["x-forwarded-proto"] = "http"
	headers["x-forwarded-port"] = port
	if m.TraceID != "" {
		headers["x-amzn-trace-id"] = m.TraceID
	}

	var qsp map[string]string
	if r.URL.RawQuery != "" {
		// Malformed pairs are skipped, keeping the well-formed ones.
		q, _ := url.ParseQuery(r.URL.RawQuery)
		if len(q) > 0 {
			qsp = make(map[string]string, len(q))
			for k, vs := range q {
				qsp[k] = strings.Join(vs, ",")
			}
		}
	}

	e := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              routeKey,
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: qsp,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     routeKey,
			AccountID:    LocalAccountID,
			Stage:        "$default",
			RequestID:    m.RequestID,
			APIID:        LocalAPIID,
			DomainName:   hostname,
			DomainPrefix: strings.SplitN(hostname, ".", 2)[0],
			Time:         m.Time.UTC().Format(timeLayout),
			TimeEpoch:    m.Time.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	e.Body, e.IsBase64Encoded = apigw.EncodeBody(r.Header.Get("Content-Type"), body)
	return e
}

// responseProbe tells a missing statusCode from a zero one.
type responseProbe struct {
	StatusCode *int `json:"statusCode"`
}

// WriteResponse writes a function's output as API Gateway would. Output without a
// statusCode is, per payload format 2.0, the body of a 200 JSON answer. Headers are set
// as given (v2 has no multi-value response headers); each cookie becomes its own
// Set-Cookie; a base64 body is decoded. Output API Gateway cannot use is a 500.
func WriteResponse(w http.ResponseWriter, output []byte) {
	var probe responseProbe
	if err := json.Unmarshal(output, &probe); err != nil || probe.StatusCode == nil {
		if !json.Valid(output) {
			writeError(w, http.StatusInternalServerError, apierr.CodeInternal, "the function returned output that is not JSON")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(output)
		return
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(output, &resp); err != nil {
		writeError(w, http.StatusInternalServerError, apierr.CodeInternal, "the function returned a malformed response: "+err.Error())
		return
	}
	body, err := apigw.DecodeBody(resp.Body, resp.IsBase64Encoded)
	if err != nil {
		writeError(w, http.StatusInternalServerError, apierr.CodeInternal, "the function's response body is flagged base64 but does not decode")
		return
	}
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		writeError(w, http.StatusInternalServerError, apierr.CodeInternal, "the function returned status "+strconv.Itoa(resp.StatusCode))
		return
	}
	h := w.Header()
	for k, v := range resp.Headers {
		switch strings.ToLower(k) {
		case "content-length", "transfer-encoding", "connection":
			continue // API Gateway owns the connection and the framing
		}
		h.Set(k, v)
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // no sniffing: the function said nothing
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// writeError answers on the local API's own behalf in lpmtls's error shape.
func writeError(w http.ResponseWriter, status int, code, message string) {
	e := &apierr.Error{Status: status, Code: code, Message: message, Source: apierr.SourceLPMTLS}
	resp := e.HTTPResponse()
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(resp.Body))
}
