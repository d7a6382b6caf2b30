package forward

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/lpmtls/lpmtls/shared/allowlist"
	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/headers"
	"github.com/lpmtls/lpmtls/shared/lp"
)

func ptr(b bool) *bool { return &b }

func TestValidate(t *testing.T) {
	p := Policy{DefaultServiceName: "WEBHOOKS", AllowedURLs: allowlist.MustParse("https://api.brand.example", "https://hooks.example/in/"), MaxBodyBytes: 10}
	cases := []struct {
		name     string
		in       Input
		status   int
		code     string
		wantStop bool
		service  string
	}{
		{"ok defaults", Input{Method: "post", URL: "https://api.brand.example/hooks?x=1"}, 0, "", true, "WEBHOOKS"},
		{"ok explicit", Input{Method: "GET", URL: "https://api.brand.example", ServiceName: "IDP", StopIfCertificateNotFound: ptr(false)}, 0, "", false, "IDP"},
		{"ok trailing slash prefix", Input{Method: "PUT", URL: "https://hooks.example/in/x"}, 0, "", true, "WEBHOOKS"},
		{"missing url", Input{Method: "POST"}, 400, apierr.CodeMissingForwardURL, false, ""},
		{"http url", Input{Method: "POST", URL: "http://api.brand.example/"}, 400, apierr.CodeInvalidForwardURL, false, ""},
		{"relative url", Input{Method: "POST", URL: "/hooks"}, 400, apierr.CodeInvalidForwardURL, false, ""},
		{"fragment", Input{Method: "POST", URL: "https://api.brand.example/a#b"}, 400, apierr.CodeInvalidForwardURL, false, ""},
		{"unparseable", Input{Method: "POST", URL: "https://api.brand.example/%zz"}, 400, apierr.CodeInvalidForwardURL, false, ""},
		{"not allowed host suffix", Input{Method: "POST", URL: "https://api.brand.example.evil.net/"}, 403, apierr.CodeURLNotAllowed, false, ""},
		{"not allowed other", Input{Method: "POST", URL: "https://other.example/"}, 403, apierr.CodeURLNotAllowed, false, ""},
		{"not allowed sibling path", Input{Method: "POST", URL: "https://hooks.example/internal"}, 403, apierr.CodeURLNotAllowed, false, ""},
		{"too large", Input{Method: "POST", URL: "https://api.brand.example/", Body: []byte("01234567890")}, 413, apierr.CodeBodyTooLarge, false, ""},
		{"trace", Input{Method: "TRACE", URL: "https://api.brand.example/"}, 405, apierr.CodeMethodNotAllowed, false, ""},
		{"head undocumented", Input{Method: "HEAD", URL: "https://api.brand.example/"}, 405, apierr.CodeMethodNotAllowed, false, ""},
		{"options undocumented", Input{Method: "OPTIONS", URL: "https://api.brand.example/"}, 405, apierr.CodeMethodNotAllowed, false, ""},
		{"patch undocumented", Input{Method: "PATCH", URL: "https://api.brand.example/"}, 405, apierr.CodeMethodNotAllowed, false, ""},
		{"delete", Input{Method: "delete", URL: "https://api.brand.example/"}, 0, "", true, "WEBHOOKS"},
		{"bad service", Input{Method: "POST", URL: "https://api.brand.example/", ServiceName: "a b"}, 400, apierr.CodeInvalidHeader, false, ""},
		{"override newline", Input{Method: "POST", URL: "https://api.brand.example/", AuthorizationOverride: "a\r\nX: y"}, 400, apierr.CodeInvalidHeader, false, ""},
		{"header of 1 MiB", Input{Method: "POST", URL: "https://api.brand.example/", Header: http.Header{"X-Big": {strings.Repeat("a", 1<<20)}}}, 431, apierr.CodeHeadersTooLarge, false, ""},
		{"header value over the limit", Input{Method: "POST", URL: "https://api.brand.example/", Header: http.Header{"X-Big": {strings.Repeat("a", headers.MaxValueBytes+1)}}}, 431, apierr.CodeHeadersTooLarge, false, ""},
		{"header value at the limit", Input{Method: "POST", URL: "https://api.brand.example/", Header: http.Header{"X-Big": {strings.Repeat("a", headers.MaxValueBytes)}}}, 0, "", true, "WEBHOOKS"},
		{"override over the limit", Input{Method: "POST", URL: "https://api.brand.example/", AuthorizationOverride: "Bearer " + strings.Repeat("a", headers.MaxValueBytes)}, 431, apierr.CodeHeadersTooLarge, false, ""},
		{"headers over the total", Input{Method: "POST", URL: "https://api.brand.example/", Header: http.Header{
			"X-A": {strings.Repeat("a", 6000)}, "X-B": {strings.Repeat("b", 6000)}, "X-C": {strings.Repeat("c", 6000)}}}, 431, apierr.CodeHeadersTooLarge, false, ""},
		{"dropped headers do not count", Input{Method: "POST", URL: "https://api.brand.example/", Header: http.Header{
			"X-Amz-Big": {strings.Repeat("a", 1<<20)}}}, 0, "", true, "WEBHOOKS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := p.Validate(c.in)
			if c.status == 0 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if req.StopIfCertificateNotFound != c.wantStop || req.ServiceName != c.service || req.URL != c.in.URL {
					t.Fatalf("got %+v", req)
				}
				return
			}
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Status != c.status || ae.Code != c.code || ae.Source != apierr.SourceLPMTLS {
				t.Fatalf("got %#v, want %d %s", err, c.status, c.code)
			}
			if allow := ae.HTTPResponse().Headers["Allow"]; (c.status == 405) != (allow == AllowedMethods) {
				t.Fatalf("Allow %q on a %d", allow, c.status)
			}
		})
	}
}

// callerHeaders is what the HTTP route may hand Validate: the target's headers mixed with
// API Gateway's, SigV4's and hop-by-hop ones.
func callerHeaders() http.Header {
	return http.Header{
		"Content-Type":         {"application/json"},
		"Accept":               {"*/*"},
		"X-Custom":             {"a", "b"},
		"Authorization":        {"AWS4-HMAC-SHA256 Credential=..."},
		"X-Amz-Date":           {"x"},
		"x-amz-security-token": {"x"}, // hand-built, non-canonical
		"X-Amzn-Trace-Id":      {"x"},
		"X-Forwarded-For":      {"x"},
		"Forwarded":            {"for=x"},
		"Via":                  {"1.1 x"},
		"Lp-Forward-Url":       {"x"},
		"Connection":           {"keep-alive, X-Drop"},
		"X-Drop":               {"x"},
		"Keep-Alive":           {"timeout=5"},
		"Transfer-Encoding":    {"chunked"},
		"Host":                 {"x"},
		"Cookie":               {"a=1"},
	}
}

func TestValidateFiltersHeaders(t *testing.T) {
	req, err := Policy{DefaultServiceName: "S"}.Validate(Input{URL: "https://t.example/", Header: callerHeaders()})
	if err != nil {
		t.Fatal(err)
	}
	// The API Gateway route's own headers go here; hop-by-hop ones are left to
	// lp.Client.Forward, which drops them for every caller (TestHeadersReachingGateway).
	for k := range req.Header {
		switch k {
		case "Content-Type", "Accept", "X-Custom", "Cookie", "Connection", "X-Drop", "Keep-Alive", "Transfer-Encoding":
		default:
			t.Errorf("kept %s", k)
		}
	}
	if req.Header.Get("Cookie") != "a=1" || req.Header.Get("Content-Type") == "" || req.Header.Get("Accept") == "" || len(req.Header["X-Custom"]) != 2 {
		t.Fatalf("kept %v", req.Header)
	}
	if req.Method != http.MethodPost {
		t.Fatalf("default method %q", req.Method)
	}
}

// Validate and lp.Client.Forward together: only the target's end-to-end headers and the
// gateway's own reach LivePerson.
func TestHeadersReachingGateway(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	req, err := Policy{DefaultServiceName: "S"}.Validate(Input{URL: "https://t.example/", Header: callerHeaders(), Body: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	c := lp.New(lp.Options{HTTPClient: srv.Client()})
	auth := lp.Auth{AccountID: "1", Bearer: "the-bearer", Domains: lp.Domains{lp.ServiceMTLSGateway: srv.Listener.Addr().String()}}
	if _, err := c.Forward(context.Background(), auth, req); err != nil {
		t.Fatal(err)
	}
	h := <-got
	var kept []string
	for k := range h {
		if k == "Accept-Encoding" || k == "Content-Length" || k == "User-Agent" {
			continue // the transport's own
		}
		kept = append(kept, k)
	}
	slices.Sort(kept)
	want := []string{"Accept", "Authorization", "Content-Type", "Cookie",
		"Lp-Forward-Url", "Lp-Service-Name", "Lp-Stop-If-Certificate-Not-Found", "X-Custom"}
	if !slices.Equal(kept, want) {
		t.Fatalf("gateway got %v, want %v", kept, want)
	}
	if h.Get("Authorization") != "Bearer the-bearer" || h.Get("Lp-Forward-Url") != "https://t.example/" {
		t.Fatalf("gateway headers %v", h)
	}
}

func TestParseBool(t *testing.T) {
	for _, c := range []struct {
		in   string
		want *bool
		bad  bool
	}{{"", nil, false}, {"true", ptr(true), false}, {" TRUE ", ptr(true), false}, {"false", ptr(false), false}, {"yes", nil, true}} {
		got, err := ParseBool(HeaderStopIfNoCert, c.in)
		if (err != nil) != c.bad || (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Fatalf("%q: got %v %v", c.in, got, err)
		}
		if c.bad && !strings.Contains(err.Error(), HeaderStopIfNoCert) {
			t.Fatalf("error does not name the header: %v", err)
		}
	}
}
