package e2e

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

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
