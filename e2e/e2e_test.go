// Package e2e drives the built bootstrap binaries through the Lambda Runtime API, with
// the AWS fakes and the LivePerson simulator behind them, using the events/ samples.
package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/testworld/awsfake"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func forwardEvent(t *testing.T, target string) events.APIGatewayV2HTTPRequest {
	e := testenv.HTTPEvent(t, "forward.json")
	testenv.SetHeader(&e, "lp-forward-url", target)
	return e
}

func TestForwardThroughMTLS(t *testing.T) {
	env := testenv.New(t)
	f := env.Start(t, "forward")
	r := f.InvokeHTTP(t, forwardEvent(t, env.MappedURL))
	if r.StatusCode != 200 {
		t.Fatalf("status %d body %s\nlogs:\n%s", r.StatusCode, r.Body, f.Logs())
	}
	if r.Body != `{"event":"ping"}` || r.IsBase64Encoded {
		t.Fatalf("body %q base64=%v", r.Body, r.IsBase64Encoded)
	}
	h := lower(r.Headers)
	checks := map[string]string{
		"x-echo-method":              "POST",
		"x-echo-path":                "/hooks/in?x=1",
		"x-echo-client-cn":           testenv.ServiceName,
		"x-echo-authorization":       "Basic dXNlcjpwYXNz",
		"x-echo-header-x-custom":     "one,two",
		"x-echo-header-x-request-id": "7f1d2c3b-0001",
		"content-type":               "application/json",
	}
	for k, want := range checks {
		if h[k] != want {
			t.Errorf("header %s = %q, want %q (all: %v)", k, h[k], want, h)
		}
	}
	for k := range h {
		if strings.HasPrefix(k, "x-echo-header-x-amz") || strings.HasPrefix(k, "x-echo-header-x-forwarded") {
			t.Errorf("API Gateway header reached the target: %s", k)
		}
	}
	c := env.Sim.Counts()
	if c.MTLSForwards != 1 || c.PlainTLSForwards != 0 || c.Logins != 1 {
		t.Fatalf("counts %+v", c)
	}
}

func TestWarmInvocationsLogInOnce(t *testing.T) {
	env := testenv.New(t)
	f := env.Start(t, "forward")
	ev := forwardEvent(t, env.MappedURL)
	f.InvokeHTTP(t, ev)
	awsAfterFirst := env.AWS.TotalCalls()
	for i := 0; i < 49; i++ {
		if r := f.InvokeHTTP(t, ev); r.StatusCode != 200 {
			t.Fatalf("invocation %d: %d %s", i, r.StatusCode, r.Body)
		}
	}
	c := env.Sim.Counts()
	if c.Logins != 1 || c.CSDS != 1 || c.Forwards != 50 {
		t.Fatalf("50 warm invocations: %+v", c)
	}
	if got := env.AWS.TotalCalls(); got != awsAfterFirst {
		t.Fatalf("warm invocations made %d AWS calls", got-awsAfterFirst)
	}
	if c.GatewayTLSHandshakes != 1 {
		t.Fatalf("gateway TLS handshakes %d, want 1 (keep-alive)", c.GatewayTLSHandshakes)
	}
	// The token is cached as a SecureString, the domains as a String.
	if _, typ, ok := env.AWS.Parameter(testenv.Prefix + "/token"); !ok || typ != "SecureString" {
		t.Fatalf("token parameter: ok=%v type=%q", ok, typ)
	}
	if _, typ, ok := env.AWS.Parameter(testenv.Prefix + "/domains"); !ok || typ != "String" {
		t.Fatalf("domains parameter: ok=%v type=%q", ok, typ)
	}
}

func TestColdProcessReusesSSMToken(t *testing.T) {
	env := testenv.New(t)
	first := env.Start(t, "forward")
	ev := forwardEvent(t, env.MappedURL)
	first.InvokeHTTP(t, ev)
	first.Stop()
	env.Sim.ResetCounts()
	env.AWS.ResetCalls()

	second := env.Start(t, "forward")
	if r := second.InvokeHTTP(t, ev); r.StatusCode != 200 {
		t.Fatalf("status %d %s", r.StatusCode, r.Body)
	}
	c := env.Sim.Counts()
	if c.Logins != 0 || c.CSDS != 0 {
		t.Fatalf("cold process with SSM token: %+v", c)
	}
	// Two AWS calls, issued together: the secret, and the token and domains in one read.
	calls := env.AWS.Calls()
	if calls["AmazonSSM.GetParameters"] != 1 || calls["secretsmanager.GetSecretValue"] != 1 || env.AWS.TotalCalls() != 2 {
		t.Fatalf("AWS calls %v", calls)
	}
}

// The cold start's two AWS calls are in flight at once: with every AWS call held back,
// the fake sees both waiting together.
func TestColdStartAWSCallsOverlap(t *testing.T) {
	env := testenv.New(t)
	first := env.Start(t, "forward")
	ev := forwardEvent(t, env.MappedURL)
	first.InvokeHTTP(t, ev)
	first.Stop()
	// Calls issued one after the other are never in flight together; the delay makes
	// calls issued together overlap whatever the machine's load.
	const delay = 300 * time.Millisecond
	env.AWS.SetDelay(awsfake.SSM, delay)
	env.AWS.SetDelay(awsfake.SecretsManager, delay)
	env.AWS.ResetCalls()
	second := env.Start(t, "forward")
	if r := second.InvokeHTTP(t, ev); r.StatusCode != 200 {
		t.Fatalf("status %d %s", r.StatusCode, r.Body)
	}
	if n, most := env.AWS.TotalCalls(), env.AWS.MaxInFlight(); n != 2 || most != 2 {
		t.Fatalf("%d AWS calls, at most %d at once; want 2 calls in flight together (%v)", n, most, env.AWS.Calls())
	}
}

func TestReloginAfter401RetriesOnce(t *testing.T) {
	env := testenv.New(t)
	f := env.Start(t, "forward")
	ev := forwardEvent(t, env.MappedURL)
	f.InvokeHTTP(t, ev)
	env.Sim.RevokeTokens()
	env.Sim.ResetCounts()
	r := f.InvokeHTTP(t, ev)
	if r.StatusCode != 200 {
		t.Fatalf("status %d %s", r.StatusCode, r.Body)
	}
	c := env.Sim.Counts()
	if c.Logins != 1 || c.Forwards != 2 || c.TargetRequests != 1 {
		t.Fatalf("after revocation: %+v", c)
	}
	// A gateway that keeps refusing (its mapping check refuses the bearer too) gets
	// exactly one retry, then a clear error.
	env.Sim.ResetCounts()
	env.Sim.Inject(lpsim.Fault{Op: "forward", Status: 401, Times: 5})
	env.Sim.Inject(lpsim.Fault{Op: "mapping", Status: 401, Times: 5})
	r = f.InvokeHTTP(t, ev)
	if r.StatusCode != 502 || code(t, r) != "liveperson_auth_failed" || r.Headers["LP-Error-Source"] != "liveperson" {
		t.Fatalf("status %d %s %v", r.StatusCode, r.Body, r.Headers)
	}
	if c := env.Sim.Counts(); c.Forwards != 2 || c.Mappings != 2 || c.Logins != 1 {
		t.Fatalf("persistent 401: %+v", c)
	}
}

func TestBinaryBodyRoundTrip(t *testing.T) {
	env := testenv.New(t)
	f := env.Start(t, "forward")
	ev, payload := binaryUpload(t, env, 256<<10)
	r := f.InvokeHTTP(t, ev)
	if r.StatusCode != 200 || !r.IsBase64Encoded {
		t.Fatalf("status %d base64=%v body %.200s", r.StatusCode, r.IsBase64Encoded, r.Body)
	}
	got, err := base64.StdEncoding.DecodeString(r.Body)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("binary body changed (err %v, %d bytes back)", err, len(got))
	}
	if lower(r.Headers)["x-echo-method"] != "PUT" {
		t.Fatalf("method: %v", r.Headers)
	}
}

func TestCookiesAndMultiValuedHeaders(t *testing.T) {
	env := testenv.New(t)
	f := env.Start(t, "forward")
	url := env.Sim.TargetURL("/cookies")
	env.Sim.AddMapping(testenv.ServiceName, url)
	r := f.InvokeHTTP(t, forwardEvent(t, url))
	if r.StatusCode != 200 {
		t.Fatalf("status %d %s", r.StatusCode, r.Body)
	}
	if len(r.Cookies) != 3 {
		t.Fatalf("cookies %q", r.Cookies)
	}
	for _, c := range r.Cookies {
		if !strings.Contains(c, "=") {
			t.Fatalf("cookie split apart: %q", r.Cookies)
		}
	}
	if _, ok := lower(r.Headers)["set-cookie"]; ok {
		t.Fatalf("Set-Cookie must travel in cookies, not headers: %v", r.Headers)
	}
	// The caller's cookies reach the target as one Cookie header.
	r = f.InvokeHTTP(t, forwardEvent(t, env.MappedURL))
	if got := lower(r.Headers)["x-echo-header-cookie"]; got != "session=abc123; theme=dark" {
		t.Fatalf("cookie header at target %q (%v)", got, r.Headers)
	}
}

func TestBadInputGetsDocumented4xx(t *testing.T) {
	env := testenv.New(t)
	f := env.Start(t, "forward", "FORWARD_ALLOWED_URLS="+env.Sim.TargetURL("/hooks/"), "FORWARD_MAX_BODY_BYTES=1024")
	cases := []struct {
		name   string
		mutate func(*events.APIGatewayV2HTTPRequest)
		status int
		code   string
	}{
		{"missing forward url", func(e *events.APIGatewayV2HTTPRequest) { delete(e.Headers, "lp-forward-url") }, 400, "missing_forward_url"},
		{"plain http target", func(e *events.APIGatewayV2HTTPRequest) { e.Headers["lp-forward-url"] = "http://api.brand.example/" }, 400, "invalid_forward_url"},
		{"relative target", func(e *events.APIGatewayV2HTTPRequest) { e.Headers["lp-forward-url"] = "/hooks/in" }, 400, "invalid_forward_url"},
		{"not allowed", func(e *events.APIGatewayV2HTTPRequest) { e.Headers["lp-forward-url"] = "https://other.example/hooks/" }, 403, "url_not_allowed"},
		{"too large", func(e *events.APIGatewayV2HTTPRequest) { e.Body = strings.Repeat("x", 1025) }, 413, "body_too_large"},
		{"bad stop flag", func(e *events.APIGatewayV2HTTPRequest) { e.Headers["lp-stop-if-certificate-not-found"] = "maybe" }, 400, "invalid_header"},
		{"bad service name", func(e *events.APIGatewayV2HTTPRequest) { e.Headers["lp-service-name"] = "two words" }, 400, "invalid_header"},
		{"bad base64", func(e *events.APIGatewayV2HTTPRequest) { e.IsBase64Encoded, e.Body = true, "%%%" }, 400, "invalid_body"},
		{"trace", func(e *events.APIGatewayV2HTTPRequest) { e.RequestContext.HTTP.Method = "TRACE" }, 405, "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := forwardEvent(t, env.MappedURL)
			c.mutate(&ev)
			r := f.InvokeHTTP(t, ev)
			if r.StatusCode != c.status || code(t, r) != c.code || r.Headers["LP-Error-Source"] != "lpmtls" {
				t.Fatalf("got %d %s %v", r.StatusCode, r.Body, r.Headers)
			}
		})
	}
	if c := env.Sim.Counts(); c.Forwards != 0 || c.Logins != 0 {
		t.Fatalf("bad input reached LivePerson: %+v", c)
	}

	m := env.Start(t, "mapping")
	mcases := []struct {
		name   string
		body   string
		query  string
		status int
		code   string
	}{
		{"not json", "nope", "", 400, "invalid_json"},
		{"empty list", "[]", "", 400, "invalid_request"},
		{"http url", `[{"serviceName":"S","url":"http://a.example/"}]`, "", 400, "invalid_request"},
		{"other site", `[{"serviceName":"S","url":"https://a.example/"}]`, "siteId=1", 400, "site_id_mismatch"},
	}
	for _, c := range mcases {
		t.Run("mapping "+c.name, func(t *testing.T) {
			ev := testenv.HTTPEvent(t, "mapping.json")
			ev.Body = c.body
			ev.RawQueryString = c.query
			ev.QueryStringParameters = nil
			r := m.InvokeHTTP(t, ev)
			if r.StatusCode != c.status || code(t, r) != c.code || r.Headers["LP-Error-Source"] != "lpmtls" {
				t.Fatalf("got %d %s", r.StatusCode, r.Body)
			}
		})
	}
}

func TestLivePersonFailuresAreDistinguishable(t *testing.T) {
	env := testenv.New(t)
	f := env.Start(t, "forward")
	unmapped := env.Sim.TargetURL("/not-mapped")
	cases := []struct {
		name   string
		fault  *lpsim.Fault
		target string
		status int
		code   string
		header string
	}{
		{"no certificate", nil, unmapped, 502, "no_certificate_mapping", ""},
		{"throttled", &lpsim.Fault{Op: "forward", Status: 429, RetryAfter: "7"}, env.MappedURL, 429, "liveperson_throttled", "Retry-After"},
		{"target failed", &lpsim.Fault{Op: "forward", Status: 424}, env.MappedURL, 502, "target_failed", "LP-message-from-transport"},
		{"gateway down", &lpsim.Fault{Op: "forward", Status: 503}, env.MappedURL, 502, "gateway_error", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.fault != nil {
				env.Sim.Inject(*c.fault)
			}
			r := f.InvokeHTTP(t, forwardEvent(t, c.target))
			if r.StatusCode != c.status || code(t, r) != c.code || r.Headers["LP-Error-Source"] != "liveperson" {
				t.Fatalf("got %d %s %v", r.StatusCode, r.Body, r.Headers)
			}
			if c.header != "" && r.Headers[c.header] == "" {
				t.Fatalf("missing %s: %v", c.header, r.Headers)
			}
		})
	}
	// A target's own 4xx is its answer, passed through untouched.
	r := f.InvokeHTTP(t, forwardEvent(t, env.Sim.TargetURL("/hooks/in?x=1&status=404")))
	env.Sim.AddMapping(testenv.ServiceName, env.Sim.TargetURL("/hooks/in?x=1&status=404"))
	r = f.InvokeHTTP(t, forwardEvent(t, env.Sim.TargetURL("/hooks/in?x=1&status=404")))
	if r.StatusCode != 404 || r.Headers["LP-Error-Source"] != "" {
		t.Fatalf("target 404 not passed through: %d %v", r.StatusCode, r.Headers)
	}
}

func TestMappingRoute(t *testing.T) {
	env := testenv.New(t)
	env.UseOAuthSecret()
	m := env.Start(t, "mapping")
	ev := testenv.HTTPEvent(t, "mapping.json")
	ev.Body = strings.Replace(ev.Body, "https://api.brand.example/hooks/in?x=1", env.MappedURL, 1)
	r := m.InvokeHTTP(t, ev)
	if r.StatusCode != 200 {
		t.Fatalf("status %d %s\n%s", r.StatusCode, r.Body, m.Logs())
	}
	var res struct {
		AccountID string `json:"accountId"`
		Mappings  []struct {
			ServiceName string `json:"serviceName"`
			URL         string `json:"url"`
			Configured  bool   `json:"configured"`
		} `json:"mappings"`
		AllConfigured bool `json:"allConfigured"`
	}
	if err := json.Unmarshal([]byte(r.Body), &res); err != nil {
		t.Fatal(err)
	}
	if res.AccountID != env.Sim.AccountID() || len(res.Mappings) != 2 || !res.Mappings[0].Configured || res.Mappings[1].Configured || res.AllConfigured {
		t.Fatalf("result %+v", res)
	}
	if c := env.Sim.Counts(); c.OAuth2Tokens != 1 || c.Logins != 0 || c.Mappings != 1 {
		t.Fatalf("counts %+v", c)
	}
}

func TestNoSecretInLogs(t *testing.T) {
	env := testenv.New(t)
	f := env.Start(t, "forward")
	ev := forwardEvent(t, env.MappedURL)
	f.InvokeHTTP(t, ev)
	env.Sim.RevokeTokens()
	f.InvokeHTTP(t, ev)
	env.Sim.Inject(lpsim.Fault{Op: "forward", Status: 424})
	f.InvokeHTTP(t, ev)
	bearer, _, _ := env.AWS.Parameter(testenv.Prefix + "/token")
	var tok struct {
		Bearer string `json:"bearer"`
	}
	if err := json.Unmarshal([]byte(bearer), &tok); err != nil || tok.Bearer == "" {
		t.Fatalf("token parameter %q: %v", bearer, err)
	}
	logs := f.FinalLogs()
	if !strings.Contains(logs, "forwarded") {
		t.Fatalf("expected request logs, got:\n%s", logs)
	}
	for name, secret := range map[string]string{
		"password": testenv.Password, "bearer": tok.Bearer,
		"authorization override": "dXNlcjpwYXNz", "cookie": "abc123",
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("%s appears in the logs", name)
		}
	}
}

func code(t *testing.T, r events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	var b apierr.Body
	if err := json.Unmarshal([]byte(r.Body), &b); err != nil {
		t.Fatalf("error body %q: %v", r.Body, err)
	}
	if b.Error.Message == "" {
		t.Fatalf("error without message: %s", r.Body)
	}
	return b.Error.Code
}

func lower(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[strings.ToLower(k)] = v
	}
	return out
}

// A slow gateway ends in lpmtls's JSON 504 before the function's own deadline.
func TestSlowGatewayTimesOutCleanly(t *testing.T) {
	env := testenv.New(t)
	f := env.Start(t, "forward")
	ev := forwardEvent(t, env.MappedURL)
	f.InvokeHTTP(t, ev) // warm: the login is not what times out
	env.Sim.Inject(lpsim.Fault{Op: "forward", Delay: 10 * time.Second})
	res := f.InvokeWithin(t, ev, 2*time.Second)
	var r events.APIGatewayV2HTTPResponse
	if res.Error != nil || json.Unmarshal(res.Payload, &r) != nil {
		t.Fatalf("function did not answer in time: %+v %s", res.Error, res.Payload)
	}
	if r.StatusCode != 504 || code(t, r) != "timeout" {
		t.Fatalf("got %d %s", r.StatusCode, r.Body)
	}
}

// The events/sqs.json sample, pointed at the simulator, is delivered through the
// built binary (no queue calls are needed for a delivered message without a results
// queue); the same message with an unmapped target and no DLQ stays in the queue.
func TestSQSSampleEvent(t *testing.T) {
	env := testenv.New(t)
	f := env.Start(t, "forward")
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "events", "sqs.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		target   string
		failures int
	}{{env.MappedURL, 0}, {env.Sim.TargetURL("/unmapped"), 1}} {
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		body := strings.Replace(ev.Records[0].Body, "https://hooks.example.com/in?x=1", c.target, 1)
		if body == ev.Records[0].Body {
			t.Fatal("sample URL not found in events/sqs.json")
		}
		ev.Records[0].Body = body
		var resp events.SQSEventResponse
		if err := json.Unmarshal(f.Invoke(t, ev), &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.BatchItemFailures) != c.failures {
			t.Fatalf("%s: failures %+v", c.target, resp.BatchItemFailures)
		}
	}
	if c := env.Sim.Counts(); c.TargetRequests != 1 || c.Logins != 1 {
		t.Fatalf("counts %+v", c)
	}
}

// A large base64 body is decoded while it is sent, and still replayed whole when the
// gateway refuses the bearer and the call is retried after a new login.
func TestLargeBinaryBodyStreamedAndReplayed(t *testing.T) {
	env := testenv.New(t)
	f := env.Start(t, "forward")
	ev, payload := binaryUpload(t, env, 3<<20)
	f.InvokeHTTP(t, forwardEvent(t, env.MappedURL)) // log in first, so the revocation bites
	env.Sim.RevokeTokens()
	env.Sim.ResetCounts()
	r := f.InvokeHTTP(t, ev)
	if r.StatusCode != 200 || !r.IsBase64Encoded {
		t.Fatalf("status %d base64=%v body %.200s", r.StatusCode, r.IsBase64Encoded, r.Body)
	}
	got, err := base64.StdEncoding.DecodeString(r.Body)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("body changed (err %v, %d bytes back)", err, len(got))
	}
	if c := env.Sim.Counts(); c.Forwards != 2 || c.Logins != 1 || c.TargetRequests != 1 {
		t.Fatalf("want one refused forward, a login and a replay: %+v", c)
	}
	// Not base64 at all: refused before anything is sent.
	ev.Body = strings.Repeat("%", 2<<20)
	if r := f.InvokeHTTP(t, ev); r.StatusCode != 400 || code(t, r) != "invalid_body" {
		t.Fatalf("bad base64: %d %.200s", r.StatusCode, r.Body)
	}
}

// binaryUpload is the events/forward-binary.json sample carrying size random bytes to a
// mapped echo target.
func binaryUpload(t *testing.T, env *testenv.Env, size int) (events.APIGatewayV2HTTPRequest, []byte) {
	t.Helper()
	payload := make([]byte, size)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	url := env.Sim.TargetURL("/files/upload")
	env.Sim.AddMapping(testenv.ServiceName, url)
	ev := testenv.HTTPEvent(t, "forward-binary.json")
	testenv.SetHeader(&ev, "lp-forward-url", url)
	ev.Body = base64.StdEncoding.EncodeToString(payload)
	return ev, payload
}
