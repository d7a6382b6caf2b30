package health_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lpmtls/lpmtls/shared/health"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/lpsim"
	"github.com/lpmtls/lpmtls/shared/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// metricDoc is the part of an EMF line the alarms depend on.
type metricDoc struct {
	AWS struct {
		Timestamp         int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
	values map[string]any
}

// run starts the mapping bootstrap, sends one scheduled event, stops the process (so its
// output is complete) and returns the result and the single EMF document it wrote.
func run(t *testing.T, env *testenv.Env, event any, extraEnv ...string) (payload []byte, fnErr string, doc metricDoc) {
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
	if err := json.Unmarshal([]byte(found[0]), &doc); err != nil {
		t.Fatalf("EMF line: %v\n%s", err, found[0])
	}
	if err := json.Unmarshal([]byte(found[0]), &doc.values); err != nil {
		t.Fatal(err)
	}
	if len(doc.AWS.CloudWatchMetrics) != 1 || doc.AWS.Timestamp <= 0 {
		t.Fatalf("EMF metadata: %s", found[0])
	}
	return res.Payload, fnErr, doc
}

// check asserts the namespace, dimension sets and exact metric values of doc.
func (doc metricDoc) check(t *testing.T, namespace string, dims [][]string, want map[string]float64) {
	t.Helper()
	cw := doc.AWS.CloudWatchMetrics[0]
	if cw.Namespace != namespace || !reflect.DeepEqual(cw.Dimensions, dims) {
		t.Fatalf("namespace %q dimensions %v, want %q %v", cw.Namespace, cw.Dimensions, namespace, dims)
	}
	got := map[string]float64{}
	for _, m := range cw.Metrics {
		v, ok := doc.values[m.Name].(float64)
		if !ok || m.Unit != "Count" {
			t.Fatalf("metric %s: value %v unit %q", m.Name, doc.values[m.Name], m.Unit)
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
	var in health.Input
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
	doc.check(t, "brand-lpmtls", [][]string{{health.DimensionAccount}, {}},
		map[string]float64{health.MetricConfigured: 1, health.MetricMissing: 1, health.MetricFailed: 0})
	if doc.values[health.DimensionAccount] != acct {
		t.Fatalf("AccountId %v, want %s", doc.values[health.DimensionAccount], acct)
	}
	var sum health.Summary
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
	doc.check(t, "lpmtls", [][]string{{health.DimensionAccount}, {}},
		map[string]float64{health.MetricConfigured: 1, health.MetricMissing: 0, health.MetricFailed: 0})
	var sum health.Summary
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
	if doc.values["level"] != "ERROR" {
		t.Fatalf("metric line level %v, want ERROR", doc.values["level"])
	}
	if n := env.Sim.Counts().Mappings - before.Mappings; n != 1 {
		t.Fatalf("%d mapping calls, want 1", n)
	}
	doc.check(t, "lpmtls", [][]string{{}}, map[string]float64{health.MetricFailed: 1})
	var sum health.Summary
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
	doc.check(t, "lpmtls", [][]string{{}}, map[string]float64{health.MetricFailed: 1})
}
