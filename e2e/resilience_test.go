package e2e

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// logLines parses the JSON lines a function wrote.
func logLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func TestRequestLogCarriesRequestID(t *testing.T) {
	env := testenv.New(t)
	f := env.Start(t, "forward")
	res := f.InvokeResult(t, forwardEvent(t, env.MappedURL))
	for _, l := range logLines(t, f.FinalLogs()) {
		if l["message"] == "forwarded" {
			if l["requestId"] != res.RequestID || l["level"] != "INFO" || l["status"] != float64(200) {
				t.Fatalf("log line %v, request %s", l, res.RequestID)
			}
			return
		}
	}
	t.Fatalf("no 'forwarded' line in:\n%s", f.Logs())
}

func TestSecretRotation(t *testing.T) {
	env := testenv.New(t)
	f := env.Start(t, "forward")
	ev := forwardEvent(t, env.MappedURL)
	f.InvokeHTTP(t, ev)
	// The brand rotates the password: LivePerson and the secret change, the warm
	// instance still holds the old password and a token that LivePerson now refuses.
	const rotated = "pw-rotated-Qm3-second-generation"
	env.Sim.AddUser(testenv.Username, rotated)
	env.AWS.PutSecret(testenv.SecretID, `{"accountId":"`+env.Sim.AccountID()+`","username":"`+testenv.Username+`","password":"`+rotated+`"}`)
	env.Sim.RevokeTokens()
	env.Sim.ResetCounts()
	env.AWS.ResetCalls()
	if r := f.InvokeHTTP(t, ev); r.StatusCode != 200 {
		t.Fatalf("after rotation: %d %s\n%s", r.StatusCode, r.Body, f.Logs())
	}
	if c := env.Sim.Counts(); c.Logins != 2 {
		t.Fatalf("want a refused login with the old password, then one with the new: %+v", c)
	}
	if got := env.AWS.Calls()["secretsmanager.GetSecretValue"]; got != 1 {
		t.Fatalf("secret re-read %d times", got)
	}
	if strings.Contains(f.FinalLogs(), rotated) {
		t.Fatal("rotated password in the logs")
	}
}

func TestSSMUnavailableIsNotFatal(t *testing.T) {
	env := testenv.New(t)
	// Every SSM call fails (with the SDK's own retries); Secrets Manager still works.
	for _, op := range []string{"AmazonSSM.GetParameter", "AmazonSSM.PutParameter", "AmazonSSM.DeleteParameter"} {
		env.AWS.FailNext(op, 1000, 500, "InternalServerError")
	}
	f := env.Start(t, "forward")
	if r := f.InvokeHTTP(t, forwardEvent(t, env.MappedURL)); r.StatusCode != 200 {
		t.Fatalf("status %d %s", r.StatusCode, r.Body)
	}
	if c := env.Sim.Counts(); c.Logins != 1 {
		t.Fatalf("counts %+v", c)
	}
	var warned bool
	for _, l := range logLines(t, f.FinalLogs()) {
		warned = warned || l["level"] == "WARN"
	}
	if !warned {
		t.Fatalf("no warning about SSM:\n%s", f.Logs())
	}
}

func TestCSDSDownWithCachedDomains(t *testing.T) {
	env := testenv.New(t)
	first := env.Start(t, "forward")
	ev := forwardEvent(t, env.MappedURL)
	first.InvokeHTTP(t, ev)
	first.Stop()
	// A cold instance finds token and domains in SSM; CSDS being down does not matter.
	env.Sim.Inject(lpsim.Fault{Op: "csds", Status: 503, Times: 100})
	env.Sim.ResetCounts()
	second := env.Start(t, "forward")
	if r := second.InvokeHTTP(t, ev); r.StatusCode != 200 {
		t.Fatalf("status %d %s", r.StatusCode, r.Body)
	}
	if c := env.Sim.Counts(); c.CSDS != 0 || c.Logins != 0 {
		t.Fatalf("counts %+v", c)
	}
}

func TestBadConfigurationFailsInitWithEveryProblem(t *testing.T) {
	env := testenv.New(t)
	bin := testenv.Build(t, "forward")
	p := testenv.StartFailing(t, bin, env.FunctionEnv("LP_CSDS_URL=http://insecure.example", "FORWARD_CONCURRENCY=0", "LP_TOKEN_REFRESH_MARGIN=soon"))
	for _, v := range []string{"LP_CSDS_URL", "FORWARD_CONCURRENCY", "LP_TOKEN_REFRESH_MARGIN"} {
		if !strings.Contains(p, v) {
			t.Errorf("init error does not name %s:\n%s", v, p)
		}
	}
}

// A CSDS answer without mtlsGateway fails the forward with 502 discovery_failed naming
// it and is cached nowhere: the instance answers from the remembered failure for the
// backoff (a tenth of LP_DOMAINS_TTL here) without asking CSDS, a second cold instance
// sharing SSM asks CSDS itself instead of inheriting a bad list, and once CSDS is whole
// the next forward after the backoff succeeds.
func TestCSDSMissingServiceNotCached(t *testing.T) {
	const ttl, backoff = 20 * time.Second, 2 * time.Second // backoff: a tenth of ttl
	env := testenv.New(t)
	env.Sim.SetCSDSOmitted("mtlsGateway")
	first := env.Start(t, "forward", "LP_DOMAINS_TTL="+ttl.String())
	ev := forwardEvent(t, env.MappedURL)
	start := time.Now()
	var failedBy time.Time // the remembered failure ends by failedBy+backoff
	for i := range 2 {
		r := first.InvokeHTTP(t, ev)
		if r.StatusCode != 502 || code(t, r) != "discovery_failed" || !strings.Contains(r.Body, "mtlsGateway") {
			t.Fatalf("forward %d: %d %s, want 502 discovery_failed naming mtlsGateway", i, r.StatusCode, r.Body)
		}
		if i == 0 {
			failedBy = time.Now()
		}
	}
	// One lookup per backoff at most, however slow the machine made the two invocations.
	if n, most := env.Sim.Counts().CSDS, 1+int(time.Since(start)/backoff); n > most {
		t.Fatalf("%d CSDS calls, want at most %d", n, most)
	}
	domains := testenv.Prefix + "/domains"
	if _, _, ok := env.AWS.Parameter(domains); ok {
		t.Fatal("the incomplete list reached SSM")
	}
	before := env.Sim.Counts().CSDS
	second := env.Start(t, "forward", "LP_DOMAINS_TTL="+ttl.String())
	if r := second.InvokeHTTP(t, ev); r.StatusCode != 502 || code(t, r) != "discovery_failed" {
		t.Fatalf("second instance: %d %s", r.StatusCode, r.Body)
	}
	if n := env.Sim.Counts().CSDS; n != before+1 {
		t.Fatalf("second instance made %d CSDS calls, want its own 1", n-before)
	}

	env.Sim.SetCSDSOmitted()
	// The backoff is the behaviour under test: the instance must not ask CSDS before it
	// ends, so the test lets it run out.
	<-time.After(time.Until(failedBy.Add(backoff)))
	if r := first.InvokeHTTP(t, ev); r.StatusCode != 200 {
		t.Fatalf("after CSDS recovered: %d %s", r.StatusCode, r.Body)
	}
	if v, _, ok := env.AWS.Parameter(domains); !ok || !strings.Contains(v, "mtlsGateway") {
		t.Fatalf("SSM domains after recovery: %q", v)
	}
}
