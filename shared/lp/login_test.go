package lp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

var (
	loginCred  = Credentials{AccountID: "90412233", Username: "mtls-admin", Password: testPassword}
	oauth2Cred = Credentials{AccountID: "90412233", ClientID: "client-1", ClientSecret: testClientSecret}
)

func TestLoginSuccess(t *testing.T) {
	tests := []struct {
		fixture string
		wantTTL time.Duration
	}{
		{"login_ok_string_ttl.json", 8 * time.Hour},
		{"login_ok_string_ttl_bom.json", 8 * time.Hour},
		{"login_ok_number_ttl.json", time.Hour},
		{"login_ok_no_ttl.json", 17 * time.Minute}, // DefaultTokenTTL below
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			var gotReq *http.Request
			var gotBody []byte
			f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
				gotReq = r
				gotBody, _ = io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(fixture(t, tc.fixture))
			}, func(o *Options) { o.DefaultTokenTTL = 17 * time.Minute })
			tok, err := f.c.Login(context.Background(), f.d, loginCred)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Bearer != "bearer-from-login-0001" || !tok.ExpiresAt.Equal(fixedNow.Add(tc.wantTTL)) {
				t.Errorf("token = %+v, want expiry %v", tok, fixedNow.Add(tc.wantTTL))
			}
			if gotReq.Method != http.MethodPost || gotReq.URL.Path != "/api/account/90412233/login" || gotReq.URL.RawQuery != "v=1.3" {
				t.Errorf("request = %s %s", gotReq.Method, gotReq.URL)
			}
			if gotReq.Header.Get("Content-Type") != "application/json" || gotReq.Header.Get("Accept") != "application/json" {
				t.Errorf("headers = %v", gotReq.Header)
			}
			var body map[string]string
			if err := json.Unmarshal(gotBody, &body); err != nil || len(body) != 2 ||
				body["username"] != "mtls-admin" || body["password"] != testPassword {
				t.Errorf("body = %s", gotBody)
			}
		})
	}
}

func jwtWith(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc([]byte(claims)) + ".c2ln"
}

func TestOAuth2Success(t *testing.T) {
	exp := fixedNow.Add(45 * time.Minute).Unix()
	tests := []struct {
		name     string
		answer   string
		wantExp  time.Time
		wantBear string
	}{
		{"expires_in", `{"access_token":"tok-a","token_type":"Bearer","expires_in":3600}`, fixedNow.Add(time.Hour), "tok-a"},
		{"UTF-8 BOM", "\xEF\xBB\xBF" + `{"access_token":"tok-a","token_type":"Bearer","expires_in":3600}`, fixedNow.Add(time.Hour), "tok-a"},
		{"expires_in string", `{"access_token":"tok-a","token_type":"Bearer","expires_in":"120"}`, fixedNow.Add(2 * time.Minute), "tok-a"},
		{"jwt exp", fmt.Sprintf(`{"access_token":%q,"token_type":"Bearer"}`, jwtWith(fmt.Sprintf(`{"sub":"x","exp":%d}`, exp))), time.Unix(exp, 0), jwtWith(fmt.Sprintf(`{"sub":"x","exp":%d}`, exp))},
		{"jwt exp in the past", fmt.Sprintf(`{"access_token":%q}`, jwtWith(`{"exp":1000}`)), fixedNow.Add(DefaultTokenTTL), jwtWith(`{"exp":1000}`)},
		{"neither", `{"access_token":"opaque","token_type":"bearer"}`, fixedNow.Add(DefaultTokenTTL), "opaque"},
		{"other token_type still a bearer", `{"access_token":"opaque","token_type":"MAC"}`, fixedNow.Add(DefaultTokenTTL), "opaque"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var gotReq *http.Request
			var form url.Values
			f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
				gotReq = r
				b, _ := io.ReadAll(r.Body)
				form, _ = url.ParseQuery(string(b))
				_, _ = w.Write([]byte(tc.answer))
			})
			tok, err := f.c.Login(context.Background(), f.d, oauth2Cred)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Bearer != tc.wantBear || !tok.ExpiresAt.Equal(tc.wantExp) {
				t.Errorf("token = %+v, want expiry %v", tok, tc.wantExp)
			}
			if gotReq.Method != http.MethodPost || gotReq.URL.Path != "/sentinel/api/account/90412233/app/token" ||
				gotReq.URL.Query().Get("v") != "2.0" || gotReq.URL.Query().Get("grant_type") != "client_credentials" {
				t.Errorf("request = %s %s", gotReq.Method, gotReq.URL)
			}
			if gotReq.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
				t.Errorf("content type = %q", gotReq.Header.Get("Content-Type"))
			}
			if len(form) != 2 || form.Get("client_id") != "client-1" || form.Get("client_secret") != testClientSecret {
				t.Errorf("form = %v", form)
			}
		})
	}
}

func TestLoginErrors(t *testing.T) {
	httpDate := fixedNow.Add(90 * time.Second).Format(http.TimeFormat)
	type row struct {
		name      string
		cred      Credentials
		h         http.HandlerFunc
		wantKind  Kind
		wantRetry time.Duration
		wantMsg   string
	}
	var tests []row
	for _, cred := range []Credentials{loginCred, oauth2Cred} {
		m := string(cred.Method())
		tests = append(tests,
			row{m + " 401 wrapper", cred, answer(401, fixture(t, "error_wrapper.json")), KindAuth, 0, "Bad credentials for user (internalCode 10, UNAUTHORIZED)"},
			row{m + " 403", cred, answer(403, nil), KindAuth, 0, "HTTP 403"},
			row{m + " 451", cred, answer(451, fixture(t, "error_wrapper.json")), KindBlocked, 0, "Bad credentials"},
			row{m + " 500", cred, answer(500, fixture(t, "error_toplevel.json")), KindGateway, 0, "Too many login attempts (internalCode 25)"},
			row{m + " 502 html", cred, answer(502, []byte("<html>bad gateway</html>")), KindGateway, 0, "HTTP 502"},
			row{m + " 400", cred, answer(400, fixture(t, "error_toplevel.json")), KindBadRequest, 0, "internalCode 25"},
			row{m + " 302", cred, answer(302, nil, "Location", "https://elsewhere.example/"), KindGateway, 0, "HTTP 302"},
			row{m + " 200 unparseable", cred, answer(200, []byte("<html>")), KindGateway, 0, ""},
			row{m + " 429 seconds", cred, answer(429, nil, "Retry-After", "7"), KindThrottled, 7 * time.Second, ""},
			row{m + " 429 http-date", cred, answer(429, nil, "Retry-After", httpDate), KindThrottled, 90 * time.Second, ""},
		)
	}
	tests = append(tests,
		row{"login 200 no bearer", loginCred, answer(200, fixture(t, "login_no_bearer.json")), KindGateway, 0, "no bearer"},
		row{"login 429 without Retry-After waits 5s", loginCred, answer(429, fixture(t, "error_toplevel.json")), KindThrottled, 5 * time.Second, ""},
		row{"login 429 Retry-After below LivePerson's 5s floor", loginCred, answer(429, nil, "Retry-After", "1"), KindThrottled, 5 * time.Second, ""},
		row{"oauth2 429 without Retry-After", oauth2Cred, answer(429, nil), KindThrottled, 0, ""},
		row{"oauth2 200 no access_token", oauth2Cred, answer(200, []byte(`{"token_type":"Bearer"}`)), KindGateway, 0, "no access_token"},
		row{"oauth2 400 invalid_client", oauth2Cred, answer(400, fixture(t, "oauth_invalid_client.json")), KindAuth, 0, "invalid_client: client authentication failed"},
		row{"oauth2 400 invalid_client with BOM", oauth2Cred, answer(400, fixture(t, "oauth_invalid_client_bom.json")), KindAuth, 0, "invalid_client: client authentication failed"},
		row{"login 401 wrapper with BOM", loginCred, answer(401, fixture(t, "error_wrapper_bom.json")), KindAuth, 0, "Bad credentials for user (internalCode 10, UNAUTHORIZED)"},
		row{"login 502 load balancer page", loginCred, answer(502, fixture(t, "error_lb.html")), KindGateway, 0, "HTTP 502: 502 Bad Gateway"},
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeLP(t, tc.h)
			_, err := f.c.Login(context.Background(), f.d, tc.cred)
			e := asError(t, err)
			if e.Kind != tc.wantKind || e.RetryAfter != tc.wantRetry || e.Op != string(tc.cred.Method()) {
				t.Errorf("err = %+v; want kind %v retry %v", e, tc.wantKind, tc.wantRetry)
			}
			if !strings.Contains(e.Message, tc.wantMsg) {
				t.Errorf("message %q lacks %q", e.Message, tc.wantMsg)
			}
			if e.Status == 0 {
				t.Error("status not set")
			}
			assertNoSecrets(t, err)
		})
	}
}

func TestLoginNeedsDomainsAndCredentials(t *testing.T) {
	c := New(Options{})
	_, err := c.Login(context.Background(), Domains{}, loginCred)
	if KindOf(err) != KindDiscovery {
		t.Errorf("missing agentVep: %v", err)
	}
	_, err = c.Login(context.Background(), Domains{ServiceSentinel: "x"}, Credentials{AccountID: "1", ClientID: "a"})
	if KindOf(err) != KindBadRequest {
		t.Errorf("no client secret: %v", err)
	}
}

func TestJSONNumberAndJWT(t *testing.T) {
	for raw, want := range map[string]float64{`"28800000"`: 28800000, `28800000`: 28800000, `" 5 "`: 5, `1.5e3`: 1500} {
		if got, ok := jsonNumber(json.RawMessage(raw)); !ok || got != want {
			t.Errorf("jsonNumber(%s) = %v, %v", raw, got, ok)
		}
	}
	for _, raw := range []string{``, `null`, `"abc"`, `{}`, `""`} {
		if _, ok := jsonNumber(json.RawMessage(raw)); ok {
			t.Errorf("jsonNumber(%s) accepted", raw)
		}
	}
	for _, tok := range []string{"opaque", "a.b", "a.!!!.c", jwtWith(`{"sub":"x"}`), jwtWith(`{"exp":"soon"}`), jwtWith(`[1]`)} {
		if _, ok := jwtExpiry(tok); ok {
			t.Errorf("jwtExpiry(%q) accepted", tok)
		}
	}
	if got, ok := jwtExpiry(jwtWith(`{"exp":1800000000}`)); !ok || got.Unix() != 1800000000 {
		t.Errorf("jwtExpiry = %v, %v", got, ok)
	}
}

func TestOAuth2VersionConfigurable(t *testing.T) {
	tests := []struct{ opt, want string }{{"", DefaultOAuth2Version}, {"1.0", "1.0"}, {"2.0", "2.0"}}
	if DefaultOAuth2Version != "2.0" {
		t.Errorf("DefaultOAuth2Version = %q; the docs reserve v1 for the Connector API", DefaultOAuth2Version)
	}
	for _, tc := range tests {
		t.Run("option "+tc.opt, func(t *testing.T) {
			var v string
			f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
				v = r.URL.Query().Get("v")
				_, _ = w.Write([]byte(`{"access_token":"tok"}`))
			}, func(o *Options) { o.OAuth2Version = tc.opt })
			if _, err := f.c.Login(context.Background(), f.d, oauth2Cred); err != nil {
				t.Fatal(err)
			}
			if v != tc.want {
				t.Errorf("v = %q, want %q", v, tc.want)
			}
		})
	}
}
