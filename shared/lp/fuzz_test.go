package lp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/lpmtls/lpmtls/shared/headers"
)

// The parsers of LivePerson's answers, fuzzed through the real client over TLS: the
// simulated service answers each input's status and body. Every answer must end as a
// typed *Error (the kind the status table names, no secret in any field) or as a value
// that agrees with an independent reading of the body.

// cannedLP serves whatever the current fuzz input says. A fuzz worker runs one input at
// a time; the mutex only keeps the race detector honest.
type cannedLP struct {
	mu     sync.Mutex
	status int
	body   []byte
}

func (c *cannedLP) set(status int, body []byte) {
	c.mu.Lock()
	c.status, c.body = status, body
	c.mu.Unlock()
}

func (c *cannedLP) serve(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	status, body := c.status, c.body
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// fuzzStatus maps any int to a final status a server can send (200-599).
func fuzzStatus(n int) int {
	if n < 0 {
		n = -n
	}
	if n >= 200 && n <= 599 {
		return n
	}
	return 200 + n%400
}

func seedAnswers(f *testing.F, status int, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(status, b)
	}
}

func newCanned(f *testing.F) (*cannedLP, *fakeLP) {
	c := &cannedLP{status: 200}
	return c, newFakeLP(f, c.serve)
}

// typedError checks the failure contract and returns the *Error.
func typedError(t *testing.T, err error, secrets ...string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("untyped error %T: %v", err, err)
	}
	for _, s := range secrets {
		if strings.Contains(e.Error(), s) || bytes.Contains(e.Body, []byte(s)) || strings.Contains(e.Message, s) {
			t.Fatalf("secret in error: %v", e)
		}
	}
	return e
}

func FuzzDiscover(f *testing.F) {
	seedAnswers(f, 200, "csds_ok.json", "csds_ok_bom.json", "csds_empty.json", "csds_absent.json")
	seedAnswers(f, 500, "error_toplevel.json", "error_lb.html")
	f.Add(200, []byte(`{"baseURIs":[{"service":"mtlsGateway","account":"1","baseURI":"a.example:443"},{"service":"mtlsGateway","baseURI":"b.example"}]}`))
	f.Add(200, []byte(`{"baseURIs":[{"service":"agentVep","baseURI":"https://x/"}]}`))
	c, lp := newCanned(f)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = fuzzStatus(status)
		c.set(status, body)
		d, err := lp.c.Discover(context.Background(), "90412233", AuthOAuth2)
		if err != nil {
			if e := typedError(t, err); e.Kind != KindDiscovery {
				t.Fatalf("kind %v for HTTP %d: %v", e.Kind, status, e)
			}
			return
		}
		if status > 299 || len(d) == 0 {
			t.Fatalf("HTTP %d accepted as %v", status, d)
		}
		if d[ServiceMTLSGateway] == "" || d[ServiceSentinel] == "" {
			t.Fatalf("accepted without a service lpmtls calls: %v", d)
		}
		// Independent reading: each service maps to the first usable baseURI listed for it.
		var doc struct {
			BaseURIs []struct{ Service, BaseURI string } `json:"baseURIs"`
		}
		if err := json.Unmarshal(trimBOM(body), &doc); err != nil {
			t.Fatalf("accepted an answer encoding/json refuses: %v", err)
		}
		for svc, host := range d {
			if !validHost(host) || svc == "" {
				t.Fatalf("unusable domain %q=%q", svc, host)
			}
			for _, b := range doc.BaseURIs {
				if b.Service == svc && validHost(b.BaseURI) {
					if b.BaseURI != host {
						t.Fatalf("%s: got %q, first usable is %q", svc, host, b.BaseURI)
					}
					break
				}
			}
		}
	})
}

func FuzzLogin(f *testing.F) {
	seedAnswers(f, 200, "login_ok_no_ttl.json", "login_no_bearer.json", "login_ok_number_ttl.json",
		"login_ok_string_ttl.json", "login_ok_string_ttl_bom.json")
	seedAnswers(f, 401, "error_wrapper.json", "error_wrapper_bom.json")
	seedAnswers(f, 429, "error_wrapper.json")
	seedAnswers(f, 502, "error_lb.html")
	f.Add(401, []byte(`{"error":{"message":"bad password `+testPassword+`"}}`))
	c, lp := newCanned(f)
	cred := Credentials{AccountID: "90412233", Username: "u", Password: testPassword}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = fuzzStatus(status)
		c.set(status, body)
		tok, err := lp.c.Login(context.Background(), lp.d, cred)
		if err != nil {
			e := typedError(t, err, testPassword)
			checkAPIKind(t, e, status)
			if e.Kind == KindThrottled && e.RetryAfter < loginThrottleFloor {
				t.Fatalf("throttled login retry after %v", e.RetryAfter)
			}
			return
		}
		var ans struct {
			Bearer string `json:"bearer"`
		}
		if json.Unmarshal(trimBOM(body), &ans) != nil || status > 299 {
			t.Fatalf("HTTP %d %q accepted", status, body)
		}
		checkToken(t, tok, ans.Bearer)
	})
}

func FuzzOAuth2(f *testing.F) {
	f.Add(200, []byte(`{"access_token":"eyJhbGciOiJub25lIn0.eyJleHAiOjE3OTU1MjE2MDB9.","token_type":"Bearer","expires_in":3600}`))
	f.Add(200, []byte(`{"access_token":"t","expires_in":"3600"}`))
	f.Add(200, []byte(`{"token_type":"Bearer"}`))
	seedAnswers(f, 400, "oauth_invalid_client.json", "oauth_invalid_client_bom.json")
	seedAnswers(f, 401, "oauth_invalid_client.json")
	f.Add(400, []byte(`{"error":"invalid_request","error_description":"`+testClientSecret+`"}`))
	c, lp := newCanned(f)
	cred := Credentials{AccountID: "90412233", ClientID: "id", ClientSecret: testClientSecret}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = fuzzStatus(status)
		c.set(status, body)
		tok, err := lp.c.Login(context.Background(), lp.d, cred)
		if err != nil {
			e := typedError(t, err, testClientSecret)
			// RFC 6749's credential errors ("invalid_client") read as auth under any
			// status the table calls a bad request, not only 400.
			if !(statusKind(status) == KindBadRequest && e.Kind == KindAuth && oauthCredentialError(body)) {
				checkAPIKind(t, e, status)
			}
			return
		}
		var ans struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(trimBOM(body), &ans) != nil || status > 299 {
			t.Fatalf("HTTP %d %q accepted", status, body)
		}
		checkToken(t, tok, ans.AccessToken)
	})
}

func FuzzCheckMappings(f *testing.F) {
	seedAnswers(f, 200, "mapping_ok.json", "mapping_ok_bom.json", "mapping_doexist.json")
	seedAnswers(f, 401, "error_toplevel.json")
	f.Add(200, []byte(`[null,{"serviceName":"S","url":"https://a/","exist":true,"doExist":false}]`))
	f.Add(200, []byte(`{"exist":true}`))
	c, lp := newCanned(f)
	pairs := []Mapping{{ServiceName: "WEBHOOKS", URL: "https://api.brand.example/hooks/in?x=1"}}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = fuzzStatus(status)
		c.set(status, body)
		out, err := lp.c.CheckMappings(context.Background(), lp.auth("90412233"), pairs)
		if err != nil {
			checkAPIKind(t, typedError(t, err, testBearer), status)
			return
		}
		var items []json.RawMessage
		if json.Unmarshal(trimBOM(body), &items) != nil || status > 299 || len(items) != len(out) {
			t.Fatalf("HTTP %d %q accepted as %+v", status, body, out)
		}
		// The value round-trips: what we would write is what we read back.
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		var again []MappingResult
		if err := json.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(again, out) {
			t.Fatalf("round trip %+v -> %s -> %+v (%v)", out, b, again, err)
		}
	})
}

// checkAPIKind: a 2xx that cannot be used is KindGateway; other statuses follow statusKind.
func checkAPIKind(t *testing.T, e *Error, status int) {
	t.Helper()
	want := statusKind(status)
	if status <= 299 {
		want = KindGateway
	}
	if e.Kind != want {
		t.Fatalf("HTTP %d: kind %v, want %v (%v)", status, e.Kind, want, e)
	}
}

// checkToken: the bearer is the one in the answer and can be sent as a header.
func checkToken(t *testing.T, tok Token, want string) {
	t.Helper()
	if tok.Bearer == "" || tok.Bearer != want {
		t.Fatalf("bearer %q, answer says %q", tok.Bearer, want)
	}
	if !headers.ValidValue(tok.Bearer) {
		t.Fatalf("bearer %q cannot be sent in an Authorization header", tok.Bearer)
	}
	if !tok.ExpiresAt.After(fixedNow) {
		t.Fatalf("token already expired: %v", tok.ExpiresAt)
	}
}

func FuzzListCertificates(f *testing.F) {
	seedAnswers(f, 200, "certificates_ok.json")
	seedAnswers(f, 401, "error_toplevel.json")
	seedAnswers(f, 503, "error_lb.html")
	f.Add(200, []byte(`[{"id":12,"deleted":true},{"id":"7","status":"Available","expirationDate":"2027-01-02"},null]`))
	f.Add(200, []byte(`[{"id":2,"expirationDate":"1795521600"},{"id":3,"expirationDate":"soon"}]`))
	f.Add(200, []byte(`{"id":1}`))
	c, lp := newCanned(f)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = fuzzStatus(status)
		c.set(status, body)
		out, err := lp.c.ListCertificates(context.Background(), lp.auth("90412233"))
		if err != nil {
			checkAPIKind(t, typedError(t, err, testBearer), status)
			return
		}
		var items []json.RawMessage
		if json.Unmarshal(trimBOM(body), &items) != nil || status > 299 || len(out) > len(items) {
			t.Fatalf("HTTP %d %q accepted as %+v", status, body, out)
		}
		for _, cert := range out {
			if cert.Deleted {
				t.Fatalf("deleted certificate listed: %+v", cert)
			}
		}
		// The list round-trips: what we would write is what we read back.
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatalf("cannot write %+v: %v", out, err)
		}
		var again []Certificate
		if err := json.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(again, out) {
			t.Fatalf("round trip %+v -> %s -> %+v (%v)", out, b, again, err)
		}
	})
}
