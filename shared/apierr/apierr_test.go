package apierr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
)

func TestFrom(t *testing.T) {
	cases := []struct {
		name      string
		err       error
		status    int
		code      string
		source    string
		transient bool
	}{
		{"input", Input(400, CodeInvalidJSON, "bad"), 400, CodeInvalidJSON, SourceLPMTLS, false},
		{"auth", &lp.Error{Kind: lp.KindAuth, Op: "login", Status: 401}, 502, "liveperson_auth_failed", SourceLivePerson, false},
		{"throttled", &lp.Error{Kind: lp.KindThrottled, Status: 429, RetryAfter: 5 * time.Second}, 429, "liveperson_throttled", SourceLivePerson, true},
		{"no cert", &lp.Error{Kind: lp.KindNoCertificate, Status: 500}, 502, "no_certificate_mapping", SourceLivePerson, false},
		{"target", &lp.Error{Kind: lp.KindTarget, Status: 424}, 502, "target_failed", SourceLivePerson, true},
		{"gateway", &lp.Error{Kind: lp.KindGateway, Status: 503}, 502, "gateway_error", SourceLivePerson, true},
		{"timeout", &lp.Error{Kind: lp.KindTimeout}, 504, "timeout", SourceLivePerson, true},
		{"wrapped lp", fmt.Errorf("x: %w", &lp.Error{Kind: lp.KindBlocked, Status: 451}), 502, "liveperson_blocked", SourceLivePerson, false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), 504, "timeout", SourceLPMTLS, true},
		{"other", errors.New("secret missing"), 500, "internal_error", SourceLPMTLS, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := From(c.err)
			if e.Status != c.status || e.Code != c.code || e.Source != c.source || e.Transient != c.transient {
				t.Fatalf("got %+v", e)
			}
		})
	}
}

// A login answered 5xx shares gateway_error with the gateway's own 5xx, but its message
// says the request never left.
func TestLoginFailureMessage(t *testing.T) {
	for _, op := range []string{"login", "oauth2"} {
		e := From(&lp.Error{Kind: lp.KindGateway, Op: op, Status: 503})
		if e.Code != "gateway_error" || !strings.Contains(e.Message, "login failed, so the request was not sent") {
			t.Fatalf("%s: %+v", op, e)
		}
	}
	if e := From(&lp.Error{Kind: lp.KindGateway, Op: "forward", Status: 503}); strings.Contains(e.Message, "login") {
		t.Fatalf("forward: %+v", e)
	}
}

func TestHTTPResponse(t *testing.T) {
	le := &lp.Error{Kind: lp.KindThrottled, Status: 429, RetryAfter: 1500 * time.Millisecond}
	r := From(le).HTTPResponse()
	if r.StatusCode != 429 || r.Headers["Retry-After"] != "2" || r.Headers["LP-Error-Source"] != SourceLivePerson {
		t.Fatalf("got %+v", r)
	}
	var b Body
	if err := json.Unmarshal([]byte(r.Body), &b); err != nil || b.Error.Code != "liveperson_throttled" || b.Error.Message == "" {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	te := &lp.Error{Kind: lp.KindTarget, Status: 424, Header: http.Header{"Lp-Message-From-Transport": {"connect refused"}}}
	r = From(te).HTTPResponse()
	if r.Headers["LP-message-from-transport"] != "connect refused" {
		t.Fatalf("transport header not relayed: %+v", r.Headers)
	}
}

func TestHTTPResponseBody(t *testing.T) {
	for _, tt := range []struct {
		name string
		e    *Error
	}{
		{"liveperson, quoted message", &Error{Status: http.StatusTooManyRequests, Code: "throttled", Message: `slow "down"`, Source: SourceLivePerson}},
		{"lpmtls", Input(400, CodeInvalidRequest, "x")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.e.HTTPResponse()
			if resp.StatusCode != tt.e.Status || resp.IsBase64Encoded {
				t.Errorf("status %d base64 %v", resp.StatusCode, resp.IsBase64Encoded)
			}
			if resp.Headers["Content-Type"] != "application/json" || resp.Headers["LP-Error-Source"] != tt.e.Source {
				t.Errorf("headers %v", resp.Headers)
			}
			var body map[string]map[string]string
			if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
				t.Fatal(err)
			}
			want := map[string]map[string]string{"error": {"code": tt.e.Code, "message": tt.e.Message}}
			if !reflect.DeepEqual(body, want) {
				t.Errorf("body %v, want %v", body, want)
			}
			if _, ok := resp.Headers["Retry-After"]; ok {
				t.Errorf("Retry-After without a pause: %v", resp.Headers)
			}
		})
	}
}

// The status is said once, whether or not LivePerson's message already names it.
func TestStatusSaidOnce(t *testing.T) {
	for _, msg := range []string{
		"no certificate mapping for this account, service and URL (HTTP 500): No certificate mapping found",
		"no certificate mapping for this account, service and URL: No certificate mapping found",
		"",
	} {
		e := From(&lp.Error{Kind: lp.KindNoCertificate, Op: "forward", Status: 500, Message: msg})
		if n := strings.Count(e.Message, "HTTP 500"); n != 1 {
			t.Errorf("%q says HTTP 500 %d times", e.Message, n)
		}
	}
}

func TestClientRefusalsAreLPMTLSs(t *testing.T) {
	for _, tc := range []struct {
		kind   lp.Kind
		status int
		code   string
	}{
		{lp.KindHeadersTooLarge, 431, CodeHeadersTooLarge},
		{lp.KindUnsent, 500, "request_not_sent"},
	} {
		e := From(&lp.Error{Kind: tc.kind, Op: "forward", Message: "lpmtls's HTTP client refused to send the request"})
		if e.Status != tc.status || e.Code != tc.code || e.Source != SourceLPMTLS || e.Transient {
			t.Errorf("%v: got %+v", tc.kind, e)
		}
	}
}
