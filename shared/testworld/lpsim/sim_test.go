package lpsim_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
)

const acct = "90412233"

func start(t *testing.T, o lpsim.Options) *lpsim.Sim {
	t.Helper()
	if o.AccountID == "" {
		o.AccountID = acct
	}
	s, err := lpsim.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func client(t *testing.T, s *lpsim.Sim) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CAPool()}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	// Redirects are the gateway's answer under test, never to be followed.
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, c *http.Client, method, u string, h http.Header, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func login(t *testing.T, s *lpsim.Sim, c *http.Client) (bearer string, a answer) {
	t.Helper()
	s.AddUser("admin", "pw")
	a = do(t, c, "POST", s.CSDSURL()+"/api/account/"+acct+"/login?v=1.3",
		http.Header{"Content-Type": {"application/json"}}, []byte(`{"username":"admin","password":"pw"}`))
	if a.status != 200 {
		t.Fatalf("login: %d %s", a.status, a.body)
	}
	var body struct{ Bearer string }
	if err := json.Unmarshal(a.body, &body); err != nil {
		t.Fatal(err)
	}
	return body.Bearer, a
}

func fwdHeader(bearer, target, service string) http.Header {
	h := http.Header{"Authorization": {"Bearer " + bearer}, "Lp-Forward-Url": {target}}
	if service != "" {
		h.Set("LP-service-name", service)
	}
	return h
}

func TestCSDS(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	for _, tc := range []struct {
		name, path string
		want       int
	}{
		{"api", "/api/account/" + acct + "/service/baseURI.json?version=1.0", 4},
		{"csdr", "/csdr/account/" + acct + "/service/baseURI.json?version=1.0", 4},
		{"unknown account", "/api/account/1/service/baseURI.json?version=1.0", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, c, "GET", s.CSDSURL()+tc.path, nil, nil)
			if a.status != 200 {
				t.Fatalf("status %d", a.status)
			}
			var got struct {
				BaseURIs []map[string]string `json:"baseURIs"`
			}
			if err := json.Unmarshal(a.body, &got); err != nil || got.BaseURIs == nil {
				t.Fatalf("body %s (%v)", a.body, err)
			}
			if len(got.BaseURIs) != tc.want {
				t.Fatalf("got %d services: %s", len(got.BaseURIs), a.body)
			}
			seen := map[string]bool{}
			for _, b := range got.BaseURIs {
				if b["account"] != acct || b["baseURI"] != s.Host() {
					t.Errorf("entry %v", b)
				}
				seen[b["service"]] = true
			}
			for _, svc := range []string{"agentVep", "mtlsGateway", "sentinel", "accountConfigReadWrite"} {
				if tc.want > 0 && !seen[svc] {
					t.Errorf("missing %s", svc)
				}
			}
		})
	}
	if got := s.Counts().CSDS; got != 3 {
		t.Errorf("CSDS count %d", got)
	}
}

func TestHTTP2(t *testing.T) {
	s := start(t, lpsim.Options{})
	resp, err := client(t, s).Get(s.CSDSURL() + "/api/account/" + acct + "/service/baseURI.json?version=1.0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("proto %s, want HTTP/2", resp.Proto)
	}
}

var wrapper = regexp.MustCompile(`^\{"error":\{.*"internalCode":\d+.*\}\}$`)

func checkWrapper(t *testing.T, a answer, status string) {
	t.Helper()
	var w struct {
		Error struct {
			Time, Message, ResponseStatus string
			InternalCode                  *int
		}
	}
	if err := json.Unmarshal(a.body, &w); err != nil || !wrapper.Match(a.body) {
		t.Fatalf("not the login error wrapper: %s", a.body)
	}
	if w.Error.Time == "" || w.Error.Message == "" || w.Error.InternalCode == nil || w.Error.ResponseStatus != status {
		t.Errorf("wrapper fields: %+v", w.Error)
	}
}

func TestLogin(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, a := login(t, s, c)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(bearer) {
		t.Errorf("bearer is not 64 hex chars")
	}
	var body struct {
		CSRF, Wsuk, SessionTTl string
		Config                 map[string]any
		CSDS                   struct{ BaseURIs []any } `json:"csdsCollectionResponse"`
		AccountData            map[string]any
	}
	if err := json.Unmarshal(a.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.SessionTTl != "28800000" || body.CSRF == "" || body.Wsuk == "" || body.Config["loginName"] != "admin" ||
		len(body.CSDS.BaseURIs) != 4 || body.AccountData["agentGroupsData"] == nil {
		t.Errorf("login body: %s", a.body)
	}
	ck := a.header.Get("Set-Cookie")
	if !strings.HasPrefix(ck, "Session_id=") || !strings.Contains(ck, "Secure") || !strings.Contains(ck, "HttpOnly") {
		t.Errorf("cookie %q", ck)
	}

	loginURL := s.CSDSURL() + "/api/account/%s/login%s"
	for _, tc := range []struct {
		name, account, query, body string
		status                     int
		respStatus                 string
	}{
		{"bad password", acct, "?v=1.3", `{"username":"admin","password":"nope"}`, 401, "UNAUTHORIZED"},
		{"unknown user", acct, "?v=1.3", `{"username":"x","password":"pw"}`, 401, "UNAUTHORIZED"},
		{"unknown account", "1", "?v=1.3", `{"username":"admin","password":"pw"}`, 401, "UNAUTHORIZED"},
		{"missing v", acct, "", `{"username":"admin","password":"pw"}`, 400, "BAD_REQUEST"},
		{"bad body", acct, "?v=1.3", `[`, 400, "BAD_REQUEST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := strings.Replace(strings.Replace(loginURL, "%s", tc.account, 1), "%s", tc.query, 1)
			a := do(t, c, "POST", u, http.Header{"Content-Type": {"application/json"}}, []byte(tc.body))
			if a.status != tc.status {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			checkWrapper(t, a, tc.respStatus)
			if strings.Contains(string(a.body), "pw") {
				t.Error("error body leaks the password")
			}
		})
	}

	t.Run("429 fault", func(t *testing.T) {
		s.Inject(lpsim.Fault{Op: "login", Status: 429, RetryAfter: "5"})
		a := do(t, c, "POST", s.CSDSURL()+"/api/account/"+acct+"/login?v=1.3", nil, []byte(`{"username":"admin","password":"pw"}`))
		if a.status != 429 || a.header.Get("Retry-After") != "5" {
			t.Fatalf("got %d Retry-After=%q", a.status, a.header.Get("Retry-After"))
		}
		checkWrapper(t, a, "TOO_MANY_REQUESTS")
		// The fault was used once: the next login works.
		if _, a := login(t, s, c); a.status != 200 {
			t.Fatal(a.status)
		}
	})
}

func TestRefreshLogout(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, a := login(t, s, c)
	var body struct{ CSRF string }
	_ = json.Unmarshal(a.body, &body)
	cookie := strings.SplitN(a.header.Get("Set-Cookie"), ";", 2)[0]
	base := s.CSDSURL() + "/api/account/" + acct
	h := http.Header{"Cookie": {cookie}, "Content-Type": {"application/json"}}

	if a := do(t, c, "POST", base+"/refresh?v=1.3", h, []byte(`{"csrf":"wrong"}`)); a.status != 401 {
		t.Fatalf("bad csrf: %d", a.status)
	} else {
		checkWrapper(t, a, "UNAUTHORIZED")
	}
	if a := do(t, c, "POST", base+"/refresh?v=1.3", h, []byte(`{"csrf":"`+body.CSRF+`"}`)); a.status != 200 || len(a.body) != 0 ||
		!strings.HasPrefix(a.header.Get("Set-Cookie"), "Session_id=") {
		t.Fatalf("refresh: %d %q", a.status, a.body)
	}
	s.Inject(lpsim.Fault{Op: "refresh", Status: 500})
	if a := do(t, c, "POST", base+"/refresh?v=1.3", h, []byte(`{"csrf":"`+body.CSRF+`"}`)); a.status != 500 {
		t.Fatalf("refresh fault: %d", a.status)
	} else {
		checkWrapper(t, a, "INTERNAL_SERVER_ERROR")
	}
	if a := do(t, c, "POST", base+"/logout", h, []byte(`{"csrf":"`+body.CSRF+`"}`)); a.status != 200 {
		t.Fatalf("logout: %d", a.status)
	}
	// Logged out: the bearer and the session are gone.
	if a := do(t, c, "POST", base+"/checks/serviceUrlMappings", fwdHeader(bearer, "", ""), []byte(`[]`)); a.status != 401 {
		t.Errorf("bearer after logout: %d", a.status)
	}
	if a := do(t, c, "POST", base+"/refresh", h, []byte(`{"csrf":"`+body.CSRF+`"}`)); a.status != 401 {
		t.Errorf("refresh after logout: %d", a.status)
	}
	if got := s.Counts().Refreshes; got != 4 {
		t.Errorf("Refreshes %d", got)
	}
}

func oauthToken(t *testing.T, s *lpsim.Sim, c *http.Client, v, id, secret string) answer {
	t.Helper()
	form := url.Values{"client_id": {id}, "client_secret": {secret}}
	return do(t, c, "POST", s.CSDSURL()+"/sentinel/api/account/"+acct+"/app/token?v="+v+"&grant_type=client_credentials",
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, []byte(form.Encode()))
}

func TestOAuth2(t *testing.T) {
	s := start(t, lpsim.Options{OAuth2TTL: 30 * time.Minute})
	c := client(t, s)
	s.AddOAuthClient("cid", "csecret")
	for _, v := range []string{"1.0", "2.0"} {
		a := oauthToken(t, s, c, v, "cid", "csecret")
		if a.status != 200 {
			t.Fatalf("v%s: %d %s", v, a.status, a.body)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			ExpiresIn   int64  `json:"expires_in"`
		}
		if err := json.Unmarshal(a.body, &tok); err != nil {
			t.Fatal(err)
		}
		if tok.TokenType != "Bearer" || tok.ExpiresIn != 1800 {
			t.Errorf("token %+v", tok)
		}
		parts := strings.Split(tok.AccessToken, ".")
		if len(parts) != 3 {
			t.Fatalf("not a JWT")
		}
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims struct{ Exp, Iat int64 }
		if err := json.Unmarshal(raw, &claims); err != nil || claims.Exp-claims.Iat != 1800 {
			t.Errorf("claims %s", raw)
		}
		// The JWT is a valid gateway bearer.
		if a := do(t, c, "POST", s.CSDSURL()+"/api/account/"+acct+"/checks/serviceUrlMappings",
			fwdHeader(tok.AccessToken, "", ""), []byte(`[]`)); a.status != 200 {
			t.Errorf("mapping with JWT: %d", a.status)
		}
	}
	a := oauthToken(t, s, c, "1.0", "cid", "wrong")
	var e struct{ Error string }
	if _ = json.Unmarshal(a.body, &e); a.status != 401 || e.Error != "invalid_client" {
		t.Errorf("bad client: %d %s", a.status, a.body)
	}
	if strings.Contains(string(a.body), "wrong") {
		t.Error("body leaks the secret")
	}
}

func TestMappingCheck(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	mapped := s.TargetURL("/hooks?x=1")
	s.AddMapping("WEBHOOKS", mapped)
	u := s.CSDSURL() + "/api/account/" + acct + "/checks/serviceUrlMappings"
	in, _ := json.Marshal([]map[string]string{
		{"serviceName": "WEBHOOKS", "url": mapped},
		{"serviceName": "WEBHOOKS", "url": mapped + "&y=2"}, // exact match only
		{"serviceName": "IDP", "url": mapped},
	})
	a := do(t, c, "POST", u, fwdHeader(bearer, "", ""), in)
	var got []struct {
		ServiceName, URL string
		Exist            bool
	}
	if err := json.Unmarshal(a.body, &got); err != nil || a.status != 200 || len(got) != 3 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if !got[0].Exist || got[1].Exist || got[2].Exist || got[0].URL != mapped {
		t.Errorf("exist flags: %+v", got)
	}
	for _, tc := range []struct {
		name   string
		h      http.Header
		body   string
		status int
	}{
		{"no token", http.Header{}, `[]`, 401},
		{"unknown token", fwdHeader("deadbeef", "", ""), `[]`, 401},
		{"object body", fwdHeader(bearer, "", ""), `{"serviceName":"x"}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, c, "POST", u, tc.h, []byte(tc.body))
			if a.status != tc.status {
				t.Fatalf("%d %s", a.status, a.body)
			}
			if tc.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestForwardMTLS(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	target := s.TargetURL("/hooks/in?x=1&y=%2F")
	s.AddMapping("WEBHOOKS", target)
	body := []byte{0, 1, 2, 0xff, 0xfe, '\n', '{', '}'}
	h := fwdHeader(bearer, target, "WEBHOOKS")
	h.Set("LP-authorization-override", "Basic dXNlcjpwYXNz")
	h.Set("LP-stop-if-certificate-not-found", "true")
	h.Set("Content-Type", "application/octet-stream")
	h["X-Foo"] = []string{"one", "two"}
	a := do(t, c, "PUT", "https://"+s.Host()+"/mtls/account/"+acct, h, body)
	if a.status != 200 {
		t.Fatalf("%d %s %v", a.status, a.body, a.header)
	}
	want := map[string]string{
		"X-Echo-Client-Cn":     "WEBHOOKS",
		"X-Echo-Method":        "PUT",
		"X-Echo-Path":          "/hooks/in?x=1&y=%2F",
		"X-Echo-Authorization": "Basic dXNlcjpwYXNz",
		"Content-Type":         "application/octet-stream",
	}
	for k, v := range want {
		if got := a.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := a.header.Values("X-Echo-Header-X-Foo"); len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Errorf("X-Foo echo %q", got)
	}
	for k := range a.header {
		if strings.HasPrefix(strings.ToLower(k), "x-echo-header-lp-") {
			t.Errorf("LP header reached the target: %s", k)
		}
	}
	if !bytes.Equal(a.body, body) {
		t.Errorf("body %x, want %x", a.body, body)
	}
	cn := s.Counts()
	if cn.MTLSForwards != 1 || cn.PlainTLSForwards != 0 || cn.Forwards != 1 || cn.TargetRequests != 1 {
		t.Errorf("counts %+v", cn)
	}
}

func TestForwardStatusPassthrough(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	for _, st := range []int{201, 302, 404, 503} {
		target := s.TargetURL("/s?status=" + strconv.Itoa(st))
		s.AddMapping("IDP", target)
		a := do(t, c, "POST", "https://"+s.Host()+"/mtls/account/"+acct, fwdHeader(bearer, target, "IDP"), []byte("x"))
		if a.status != st || a.header.Get("LP-message-from-transport") != "" {
			t.Errorf("status %d, want %d", a.status, st)
		}
	}
}

func TestForwardNoMapping(t *testing.T) {
	for _, st := range []int{0, 400, 500} {
		want := st
		if want == 0 {
			want = 500
		}
		t.Run(http.StatusText(want), func(t *testing.T) {
			s := start(t, lpsim.Options{NoCertStatus: st})
			c := client(t, s)
			bearer, _ := login(t, s, c)
			h := fwdHeader(bearer, s.TargetURL("/x"), "WEBHOOKS")
			h.Set("LP-stop-if-certificate-not-found", "true")
			a := do(t, c, "POST", "https://"+s.Host()+"/mtls/account/"+acct, h, []byte("{}"))
			if a.status != want || !strings.Contains(strings.ToLower(string(a.body)), "certificate mapping") {
				t.Fatalf("%d %s", a.status, a.body)
			}
			if cn := s.Counts(); cn.TargetRequests != 0 || cn.MTLSForwards+cn.PlainTLSForwards != 0 {
				t.Errorf("forwarded anyway: %+v", cn)
			}
		})
	}
}

func TestForwardPlainTLSRejected(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	for _, flag := range []string{"", "false"} {
		h := fwdHeader(bearer, s.TargetURL("/x"), "WEBHOOKS")
		if flag != "" {
			h.Set("LP-stop-if-certificate-not-found", flag)
		}
		a := do(t, c, "POST", "https://"+s.Host()+"/mtls/account/"+acct, h, []byte("{}"))
		if a.status != http.StatusFailedDependency {
			t.Fatalf("flag %q: %d %s", flag, a.status, a.body)
		}
		if a.header.Get("LP-message-from-transport") == "" || !strings.Contains(a.header.Get("LP-error-from-transport"), s.TargetURL("/x")) {
			t.Errorf("transport headers: %v", a.header)
		}
	}
	if cn := s.Counts(); cn.PlainTLSForwards != 2 || cn.TargetRequests != 0 || cn.TargetTLSHandshakes != 0 {
		t.Errorf("counts %+v", cn)
	}
}

func TestForwardTargetDropsConnection(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	// A target that hangs up on every connection. The test keeps the listener, so the
	// port cannot be taken by anyone else meanwhile, as a just-closed one could.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	dead := "https://" + ln.Addr().String() + "/x"
	s.AddMapping("IDP", dead)
	a := do(t, c, "GET", "https://"+s.Host()+"/mtls/account/"+acct, fwdHeader(bearer, dead, "IDP"), nil)
	if a.status != 424 || a.header.Get("LP-error-from-transport") == "" {
		t.Fatalf("%d %v", a.status, a.header)
	}
}

func TestForwardRequestErrors(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	gw := "https://" + s.Host() + "/mtls/account/"
	for _, tc := range []struct {
		name, method, account string
		h                     http.Header
		status                int
	}{
		{"no bearer", "GET", acct, http.Header{"Lp-Forward-Url": {s.TargetURL("/")}}, 401},
		{"other account", "GET", "1", fwdHeader(bearer, s.TargetURL("/"), ""), 401},
		{"no forward url", "GET", acct, http.Header{"Authorization": {"Bearer " + bearer}}, 400},
		{"relative forward url", "GET", acct, fwdHeader(bearer, "/x", ""), 400},
		{"method", "OPTIONS", acct, fwdHeader(bearer, s.TargetURL("/"), ""), 405},
		{"undocumented patch", "PATCH", acct, fwdHeader(bearer, s.TargetURL("/"), ""), 405},
		{"undocumented head", "HEAD", acct, fwdHeader(bearer, s.TargetURL("/"), ""), 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, c, tc.method, gw+tc.account, tc.h, nil)
			if a.status != tc.status {
				t.Fatalf("%d %s", a.status, a.body)
			}
			if tc.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate")
			}
		})
	}
}

func TestRevokeTokens(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	target := s.TargetURL("/x")
	s.AddMapping("IDP", target)
	gw := "https://" + s.Host() + "/mtls/account/" + acct
	if a := do(t, c, "GET", gw, fwdHeader(bearer, target, "IDP"), nil); a.status != 200 {
		t.Fatal(a.status)
	}
	s.RevokeTokens()
	if a := do(t, c, "GET", gw, fwdHeader(bearer, target, "IDP"), nil); a.status != 401 || a.header.Get("WWW-Authenticate") == "" {
		t.Errorf("forward after revoke: %d", a.status)
	}
	if a := do(t, c, "POST", s.CSDSURL()+"/api/account/"+acct+"/checks/serviceUrlMappings", fwdHeader(bearer, "", ""), []byte("[]")); a.status != 401 {
		t.Errorf("mapping after revoke: %d", a.status)
	}
}

func TestExpiredToken(t *testing.T) {
	s := start(t, lpsim.Options{SessionTTL: time.Nanosecond})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	if a := do(t, c, "POST", s.CSDSURL()+"/api/account/"+acct+"/checks/serviceUrlMappings", fwdHeader(bearer, "", ""), []byte("[]")); a.status != 401 {
		t.Errorf("expired bearer: %d", a.status)
	}
}

func TestConnectionReuse(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	target := s.TargetURL("/x")
	s.AddMapping("IDP", target)
	s.ResetCounts()
	for range 10 {
		if a := do(t, c, "POST", "https://"+s.Host()+"/mtls/account/"+acct, fwdHeader(bearer, target, "IDP"), []byte("x")); a.status != 200 {
			t.Fatal(a.status)
		}
	}
	want := lpsim.Counts{Forwards: 10, MTLSForwards: 10, TargetRequests: 10, GatewayTLSHandshakes: 0, TargetTLSHandshakes: 1}
	if got := s.Counts(); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	// A fresh client means a new gateway handshake.
	fresh := client(t, s)
	do(t, fresh, "GET", s.CSDSURL()+"/api/account/"+acct+"/service/baseURI.json", nil, nil)
	if got := s.Counts().GatewayTLSHandshakes; got != 1 {
		t.Errorf("GatewayTLSHandshakes %d", got)
	}
}

func TestGatewayHandshakes(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c) // first handshake
	target := s.TargetURL("/x")
	s.AddMapping("IDP", target)
	for range 10 {
		do(t, c, "POST", "https://"+s.Host()+"/mtls/account/"+acct, fwdHeader(bearer, target, "IDP"), []byte("x"))
	}
	if got := s.Counts(); got.GatewayTLSHandshakes != 1 || got.Forwards != 10 {
		t.Errorf("counts %+v", got)
	}
}

func TestSlowFaultHonoursCancel(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	for _, op := range []struct{ name, method, path string }{
		{"csds", "GET", "/api/account/" + acct + "/service/baseURI.json"},
		{"forward", "POST", "/mtls/account/" + acct},
	} {
		t.Run(op.name, func(t *testing.T) {
			s.Inject(lpsim.Fault{Op: op.name, Status: 500, Delay: time.Hour})
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, op.method, s.CSDSURL()+op.path, nil)
			_, err := c.Do(req)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err %v", err)
			}
			s.WaitIdle() // hangs (test timeout) if the handler ignored the disconnect
		})
	}
}

func TestSlowNormalAnswer(t *testing.T) {
	s := start(t, lpsim.Options{})
	s.Inject(lpsim.Fault{Op: "csds", Delay: time.Millisecond})
	a := do(t, client(t, s), "GET", s.CSDSURL()+"/api/account/"+acct+"/service/baseURI.json", nil, nil)
	if a.status != 200 || !strings.Contains(string(a.body), "mtlsGateway") {
		t.Errorf("%d %s", a.status, a.body)
	}
}

func TestFaults(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	target := s.TargetURL("/x")
	s.AddMapping("IDP", target)
	gw := "https://" + s.Host() + "/mtls/account/" + acct
	s.Inject(lpsim.Fault{Op: "forward", Status: 503, Times: 2, RetryAfter: "1"})
	s.Inject(lpsim.Fault{Op: "forward", Status: 424})
	s.Inject(lpsim.Fault{Op: "forward", Status: 429, Header: http.Header{"X-Extra": {"yes"}}, Body: "slow down"})
	s.Inject(lpsim.Fault{Op: "target", Status: 502})
	check := []func(answer) bool{
		func(a answer) bool { return a.status == 503 && a.header.Get("Retry-After") == "1" },
		func(a answer) bool { return a.status == 503 },
		func(a answer) bool {
			return a.status == 424 && a.header.Get("LP-message-from-transport") != "" && a.header.Get("LP-error-from-transport") != ""
		},
		func(a answer) bool {
			return a.status == 429 && a.header.Get("X-Extra") == "yes" && string(a.body) == "slow down"
		},
		func(a answer) bool { return a.status == 502 && a.header.Get("X-Echo-Method") == "" }, // target fault
		func(a answer) bool { return a.status == 200 },
	}
	for i, ok := range check {
		if a := do(t, c, "GET", gw, fwdHeader(bearer, target, "IDP"), nil); !ok(a) {
			t.Errorf("call %d: %d %v %s", i, a.status, a.header, a.body)
		}
	}
	s.Inject(lpsim.Fault{Op: "mapping", Status: 401})
	if a := do(t, c, "POST", s.CSDSURL()+"/api/account/"+acct+"/checks/serviceUrlMappings", fwdHeader(bearer, "", ""), []byte("[]")); a.status != 401 || a.header.Get("WWW-Authenticate") == "" {
		t.Errorf("mapping fault %d %v", a.status, a.header)
	}
	s.AddOAuthClient("id", "sec")
	s.Inject(lpsim.Fault{Op: "oauth2", Status: 503})
	if a := oauthToken(t, s, c, "2.0", "id", "sec"); a.status != 503 || !strings.Contains(string(a.body), `"error":"temporarily_unavailable"`) {
		t.Errorf("oauth2 fault %d %s", a.status, a.body)
	}
}

func TestSetCookiesPreserved(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	target := s.TargetURL("/cookies")
	s.AddMapping("IDP", target)
	a := do(t, c, "GET", "https://"+s.Host()+"/mtls/account/"+acct, fwdHeader(bearer, target, "IDP"), nil)
	got := a.header.Values("Set-Cookie")
	if len(got) != 3 || !strings.Contains(got[1], "Expires=Wed, 21 Oct 2037 07:28:00 GMT") {
		t.Errorf("Set-Cookie %q", got)
	}
}

func TestTargetRequiresClientCert(t *testing.T) {
	s := start(t, lpsim.Options{})
	if _, err := client(t, s).Get(s.TargetURL("/x")); err == nil {
		t.Fatal("direct call without client cert succeeded")
	}
	// With TLS 1.3 the refusal arrives as an alert on the first read.
	conn, err := tls.Dial("tcp", strings.TrimPrefix(s.TargetURL(""), "https://"), &tls.Config{RootCAs: s.CAPool()})
	if err == nil {
		defer conn.Close()
		_, err = conn.Read(make([]byte, 1))
	}
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("handshake without client cert: %v", err)
	}
	if cn := s.Counts(); cn.TargetRequests != 0 || cn.TargetTLSHandshakes != 0 {
		t.Errorf("counts %+v", cn)
	}
}

func TestCustomTargetAndCAFile(t *testing.T) {
	s := start(t, lpsim.Options{TargetHandler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/elsewhere")
		w.WriteHeader(http.StatusFound)
	})})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	target := s.TargetURL("/x")
	s.AddMapping("IDP", target)
	a := do(t, c, "GET", "https://"+s.Host()+"/mtls/account/"+acct, fwdHeader(bearer, target, "IDP"), nil)
	if a.status != 302 || a.header.Get("Location") != "/elsewhere" {
		t.Errorf("redirect must not be followed: %d %v", a.status, a.header)
	}
	path := t.TempDir() + "/ca.pem"
	if err := s.WriteCAFile(path); err != nil {
		t.Fatal(err)
	}
}

// A target that resets mid-request is, to the gateway, a failed outbound call: 424 with
// the transport headers; the next call goes through.
func TestTargetResetFault(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	target := s.TargetURL("/x")
	s.AddMapping("IDP", target)
	gw := "https://" + s.Host() + "/mtls/account/" + acct
	s.Inject(lpsim.Fault{Op: "target", Reset: true})
	if a := do(t, c, "POST", gw, fwdHeader(bearer, target, "IDP"), []byte("x")); a.status != 424 || a.header.Get("LP-error-from-transport") == "" {
		t.Fatalf("reset target: %d %v %s", a.status, a.header, a.body)
	}
	if a := do(t, c, "POST", gw, fwdHeader(bearer, target, "IDP"), []byte("x")); a.status != 200 || string(a.body) != "x" {
		t.Fatalf("after the reset: %d %s", a.status, a.body)
	}
	if n := s.Counts().TargetRequests; n != 2 {
		t.Fatalf("target requests %d, want 2", n)
	}
}
