package queue

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lpmtls/lpmtls/shared/allowlist"
	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/forward"
)

var testPolicy = forward.Policy{
	DefaultServiceName: "WEBHOOKS",
	AllowedURLs:        allowlist.MustParse("https://hooks.example.com"),
	MaxBodyBytes:       1 << 20,
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// validate is the whole path from a message body to a gateway request.
func validate(body string) (*Message, error) {
	m, err := Parse(body)
	if err != nil {
		return nil, err
	}
	in, err := m.Input()
	if err != nil {
		return m, err
	}
	_, err = testPolicy.Validate(in)
	return m, err
}

func TestParseAndValidate(t *testing.T) {
	for _, tc := range []struct {
		file     string
		code     string // "" = valid
		status   int
		contains []string // in the error message
	}{
		{file: "full.json"},
		{file: "minimal.json"},
		{file: "base64.json"},
		{file: "unknown_fields.json", code: apierr.CodeInvalidRequest, status: 400, contains: []string{`"Body"`, `"stopIfCertificateNotfound"`}},
		{file: "malformed.json", code: apierr.CodeInvalidJSON, status: 400},
		{file: "null.json", code: apierr.CodeInvalidJSON, status: 400},
		{file: "array.json", code: apierr.CodeInvalidJSON, status: 400},
		{file: "wrong_type.json", code: apierr.CodeInvalidRequest, status: 400, contains: []string{"isBase64Encoded"}},
		{file: "header_number.json", code: apierr.CodeInvalidRequest, status: 400, contains: []string{"X-Count"}},
		{file: "bad_base64.json", code: apierr.CodeInvalidBody, status: 400},
		{file: "missing_url.json", code: apierr.CodeMissingForwardURL, status: 400},
		{file: "http_url.json", code: apierr.CodeInvalidForwardURL, status: 400},
		{file: "not_allowed.json", code: apierr.CodeURLNotAllowed, status: 403},
		{file: "bad_method.json", code: apierr.CodeMethodNotAllowed, status: 405},
		{file: "bad_service.json", code: apierr.CodeInvalidHeader, status: 400},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := validate(fixture(t, tc.file))
			if tc.code == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ae *apierr.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an *apierr.Error", err)
			}
			if ae.Code != tc.code || ae.Status != tc.status || ae.Transient {
				t.Fatalf("got %d %s transient=%v (%s), want %d %s permanent", ae.Status, ae.Code, ae.Transient, ae.Message, tc.status, tc.code)
			}
			for _, c := range tc.contains {
				if !strings.Contains(ae.Message, c) {
					t.Errorf("message %q does not name %s", ae.Message, c)
				}
			}
			if out, _ := Classify(nil, err); out != forward.OutcomePermanent {
				t.Errorf("outcome %s, want permanent", out)
			}
		})
	}
}

func TestMessageFields(t *testing.T) {
	m, err := Parse(fixture(t, "full.json"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := m.Input()
	if err != nil {
		t.Fatal(err)
	}
	req, err := testPolicy.Validate(in)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "order-42" || req.Method != http.MethodPost || req.ServiceName != "WEBHOOKS" ||
		!req.StopIfCertificateNotFound || req.AuthorizationOverride != "Bearer sekrit-override-123" ||
		string(req.Body) != `{"event":"ping"}` || req.URL != "https://hooks.example.com/in?x=1" {
		t.Fatalf("unexpected request %+v", req)
	}
	if got := req.Header.Values("X-Trace"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("X-Trace = %q", got)
	}
	if req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type = %q", req.Header.Get("Content-Type"))
	}

	// Defaults are the HTTP route's: POST, the default service, stop flag true.
	m, _ = Parse(fixture(t, "minimal.json"))
	in, _ = m.Input()
	req, err = testPolicy.Validate(in)
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != http.MethodPost || req.ServiceName != "WEBHOOKS" || !req.StopIfCertificateNotFound {
		t.Fatalf("defaults not applied: %+v", req)
	}

	m, _ = Parse(fixture(t, "base64.json"))
	in, _ = m.Input()
	req, _ = testPolicy.Validate(in)
	if string(req.Body) != "\x00\x01\x02\xff" || req.StopIfCertificateNotFound {
		t.Fatalf("base64 body or explicit false lost: %q %v", req.Body, req.StopIfCertificateNotFound)
	}
}

func TestHeadersRoundTrip(t *testing.T) {
	b, err := Headers{"A": {"1"}, "B": {"2", "3"}}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"A":"1","B":["2","3"]}` {
		t.Fatalf("got %s", b)
	}
}
