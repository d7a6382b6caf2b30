package health

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/lpsim"
	"github.com/lpmtls/lpmtls/shared/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// run starts the mapping bootstrap, sends one scheduled event, stops the process (so its
// output is complete) and returns the result and the single EMF document it wrote.
func run(t *testing.T, env *testenv.Env, event any, extraEnv ...string) (payload []byte, fnErr string, doc emfDoc) {
	t.Helper()
	f := env.Start(t, "mapping", extraEnv...)
	res := f.InvokeResult(t, event)
	logs := f.FinalLogs()
	if res.Error != nil {
		fnErr = res.Error.ErrorMessage
	}
	var found []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"_aws"`) {
			found = append(found, line)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one EMF line, got %d\n%s", len(found), f.Logs())
	}
	doc = parseEMF(t, found[0])
	if doc.AWS.Timestamp <= 0 {
		t.Fatalf("EMF metadata: %s", found[0])
	}
	return res.Payload, fnErr, doc
}

// check asserts the namespace, dimension sets and exact metric values of doc.
func (doc emfDoc) check(t *testing.T, namespace string, dims [][]string, want map[string]float64) {
	t.Helper()
	cw := doc.AWS.CloudWatchMetrics[0]
	if cw.Namespace != namespace || !reflect.DeepEqual(cw.Dimensions, dims) {
		t.Fatalf("namespace %q dimensions %v, want %q %v", cw.Namespace, cw.Dimensions, namespace, dims)
	}
	got := map[string]float64{}
	for _, m := range cw.Metrics {
		v, ok := doc.Root[m.Name].(float64)
		if !ok || m.Unit != "Count" {
			t.Fatalf("metric %s: value %v unit %q", m.Name, doc.Root[m.Name], m.Unit)
		}
		got[m.Name] = v
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("metrics %v, want %v", got, want)
	}
}

func targetsEnv(t *testing.T, ms ...lp.Mapping) string {
	b, err := json.Marshal(ms)
	if err != nil {
		t.Fatal(err)
	}
	return "HEALTHCHECK_TARGETS=" + string(b)
}

// scheduleSample is events/schedule.json with its URLs pointed at the simulator: the
// first at the mapped URL, the second at one without a mapping.
func scheduleSample(t *testing.T, env *testenv.Env) (map[string]any, []lp.Mapping) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "events", "schedule.json"))
	if err != nil {
		t.Fatal(err)
	}
	var in Input
	if err := json.Unmarshal(raw, &in); err != nil || len(in.Targets) != 2 {
		t.Fatalf("events/schedule.json: %v %v", err, in)
	}
	in.Targets[0] = lp.Mapping{ServiceName: testenv.ServiceName, URL: env.MappedURL}
	in.Targets[1].URL = env.Sim.TargetURL("/not/mapped")
	return map[string]any{"targets": in.Targets}, in.Targets
}

func TestScheduledCheckReportsMissingMapping(t *testing.T) {
	env := testenv.New(t)
	event, targets := scheduleSample(t, env)
	before := env.Sim.Counts()
	// HEALTHCHECK_TARGETS names only the mapped URL: the schedule's input must win.
	payload, fnErr, doc := run(t, env, event, targetsEnv(t, targets[0]), "METRICS_NAMESPACE=brand-lpmtls")
	if fnErr != "" {
		t.Fatalf("function error: %s", fnErr)
	}
	if n := env.Sim.Counts().Mappings - before.Mappings; n != 1 {
		t.Fatalf("%d mapping calls for one check, want 1", n)
	}
	acct := env.Sim.AccountID()
	doc.check(t, "brand-lpmtls", [][]string{{DimensionAccount}, {}},
		map[string]float64{MetricConfigured: 1, MetricMissing: 1, MetricFailed: 0})
	if doc.Root[DimensionAccount] != acct {
		t.Fatalf("AccountId %v, want %s", doc.Root[DimensionAccount], acct)
	}
	var sum Summary
	if err := json.Unmarshal(payload, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.AccountID != acct || sum.Checked != 2 || sum.Configured != 1 || sum.Missing != 1 || sum.Failed || sum.Error != nil {
		t.Fatalf("summary %s", payload)
	}
	if len(sum.Results) != 2 || !sum.Results[0].Configured || sum.Results[1].Configured || sum.Results[1].URL != targets[1].URL {
		t.Fatalf("results %+v", sum.Results)
	}
}

func TestScheduledEventUsesConfiguredTargets(t *testing.T) {
	env := testenv.New(t)
	event, err := os.ReadFile("testdata/scheduled-event.json")
	if err != nil {
		t.Fatal(err)
	}
	before := env.Sim.Counts()
	mapped := lp.Mapping{ServiceName: testenv.ServiceName, URL: env.MappedURL}
	payload, fnErr, doc := run(t, env, event, targetsEnv(t, mapped))
	if fnErr != "" {
		t.Fatalf("function error: %s", fnErr)
	}
	if n := env.Sim.Counts().Mappings - before.Mappings; n != 1 {
		t.Fatalf("%d mapping calls, want 1", n)
	}
	doc.check(t, "lpmtls", [][]string{{DimensionAccount}, {}},
		map[string]float64{MetricConfigured: 1, MetricMissing: 0, MetricFailed: 0})
	var sum Summary
	if err := json.Unmarshal(payload, &sum); err != nil || sum.Checked != 1 || sum.Missing != 0 {
		t.Fatalf("summary %s: %v", payload, err)
	}
}

func TestScheduledCheckLivePersonDown(t *testing.T) {
	env := testenv.New(t)
	event, _ := scheduleSample(t, env)
	// More faults than calls: a retry, if one were added, would still meet a 503.
	env.Sim.Inject(lpsim.Fault{Op: "mapping", Status: 503, Times: 5})
	before := env.Sim.Counts()
	// Lambda filtering application logs at ERROR must still let the metric line through.
	payload, fnErr, doc := run(t, env, event, "AWS_LAMBDA_LOG_LEVEL=ERROR")
	if fnErr != "" {
		t.Fatalf("LivePerson being down must not be an invocation error, got %s", fnErr)
	}
	if doc.Root["level"] != "ERROR" {
		t.Fatalf("metric line level %v, want ERROR", doc.Root["level"])
	}
	if n := env.Sim.Counts().Mappings - before.Mappings; n != 1 {
		t.Fatalf("%d mapping calls, want 1", n)
	}
	doc.check(t, "lpmtls", [][]string{{}}, map[string]float64{MetricFailed: 1})
	var sum Summary
	if err := json.Unmarshal(payload, &sum); err != nil {
		t.Fatal(err)
	}
	if !sum.Failed || sum.Error == nil || sum.Error.Code != "gateway_error" || sum.Checked != 2 || len(sum.Results) != 0 {
		t.Fatalf("summary %s", payload)
	}
}

func TestScheduledCheckWithoutTargetsFails(t *testing.T) {
	env := testenv.New(t)
	before := env.Sim.Counts()
	_, fnErr, doc := run(t, env, map[string]any{})
	if !strings.Contains(fnErr, "no health-check targets") {
		t.Fatalf("function error %q, want one about missing targets", fnErr)
	}
	if n := env.Sim.Counts(); n.Mappings != before.Mappings || n.Logins != before.Logins {
		t.Fatalf("LivePerson was called: %+v", n)
	}
	doc.check(t, "lpmtls", [][]string{{}}, map[string]float64{MetricFailed: 1})
}
