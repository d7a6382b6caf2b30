package health

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// run starts the mapping bootstrap, sends one scheduled event, stops the process (so its
// output is complete) and returns the result, the EMF documents it wrote (the account's
// and one per certificate of known expiry) and its whole output.
func run(t *testing.T, env *testenv.Env, event any, extraEnv ...string) (payload []byte, fnErr string, docs runDocs, logs string) {
	t.Helper()
	f := env.Start(t, "mapping", extraEnv...)
	res := f.InvokeResult(t, event)
	logs = f.FinalLogs()
	if res.Error != nil {
		fnErr = res.Error.ErrorMessage
	}
	docs = splitDocs(t, logs)
	if docs.account.AWS.Timestamp <= 0 {
		t.Fatalf("EMF metadata: %+v", docs.account.AWS)
	}
	return res.Payload, fnErr, docs, logs
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
	payload, fnErr, docs, _ := run(t, env, event, targetsEnv(t, targets[0]), "METRICS_NAMESPACE=brand-lpmtls")
	doc := docs.account
	if fnErr != "" {
		t.Fatalf("function error: %s", fnErr)
	}
	if n := env.Sim.Counts().Mappings - before.Mappings; n != 1 {
		t.Fatalf("%d mapping calls for one check, want 1", n)
	}
	acct := env.Sim.AccountID()
	doc.check(t, "brand-lpmtls", [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}}, map[string]float64{
		MetricConfigured: 1, MetricMissing: 1, MetricFailed: 0, MetricExpiringSoon: 0, MetricUnavailable: 0, MetricExpiryUnknown: 0})
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
	payload, fnErr, docs, _ := run(t, env, event, targetsEnv(t, mapped))
	if fnErr != "" {
		t.Fatalf("function error: %s", fnErr)
	}
	if n := env.Sim.Counts().Mappings - before.Mappings; n != 1 {
		t.Fatalf("%d mapping calls, want 1", n)
	}
	docs.account.check(t, "lpmtls", [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}}, map[string]float64{
		MetricConfigured: 1, MetricMissing: 0, MetricFailed: 0, MetricExpiringSoon: 0, MetricUnavailable: 0, MetricExpiryUnknown: 0})
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
	env.Sim.Inject(lpsim.Fault{Op: "certificates", Status: 503, Times: 5})
	before := env.Sim.Counts()
	// Lambda filtering application logs at ERROR must still let the metric line through.
	payload, fnErr, docs, _ := run(t, env, event, "AWS_LAMBDA_LOG_LEVEL=ERROR")
	doc := docs.account
	if fnErr != "" {
		t.Fatalf("LivePerson being down must not be an invocation error, got %s", fnErr)
	}
	if doc.Root["level"] != "ERROR" {
		t.Fatalf("metric line level %v, want ERROR", doc.Root["level"])
	}
	if n := env.Sim.Counts(); n.Mappings-before.Mappings != 1 || n.CertificateLists-before.CertificateLists != 1 {
		t.Fatalf("%d mapping calls, %d certificate lists; want 1 each", n.Mappings-before.Mappings, n.CertificateLists-before.CertificateLists)
	}
	// The account is known from the credentials: the failure is reported under it too.
	doc.check(t, "lpmtls", [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}}, map[string]float64{MetricFailed: 1})
	if doc.Root[DimensionAccount] != env.Sim.AccountID() || len(docs.certs) != 0 {
		t.Fatalf("AccountId %v, %d certificate documents", doc.Root[DimensionAccount], len(docs.certs))
	}
	var sum Summary
	if err := json.Unmarshal(payload, &sum); err != nil {
		t.Fatal(err)
	}
	if !sum.Failed || sum.Error == nil || sum.Error.Code != "gateway_error" || sum.Checked != 2 || len(sum.Results) != 0 ||
		sum.AccountID != env.Sim.AccountID() || sum.Certificates == nil || !sum.Certificates.Failed {
		t.Fatalf("summary %s", payload)
	}
}

// TestScheduledCheckWithoutTargets is the default deploy (HEALTHCHECK_TARGETS empty,
// schedule input {}): the run checks every enabled mapping LivePerson lists, in one
// mapping call. A list LivePerson does not serve or refuses leaves the expiry watch
// alone, with one log line and HealthCheckFailed 0; LivePerson being down is a failure.
func TestScheduledCheckWithoutTargets(t *testing.T) {
	cases := []struct {
		name         string
		fault        *lpsim.Fault
		wantMappings int // mapping-check calls
		wantFailed   float64
		wantSkipped  bool
		wantCounts   bool // MappingsConfigured/MappingsMissing written
	}{
		{name: "enabled mappings listed", wantMappings: 1, wantCounts: true},
		{name: "list refused", fault: &lpsim.Fault{Op: "mtlsconfig", Status: 403, Times: 5}, wantSkipped: true},
		{name: "list not served", fault: &lpsim.Fault{Op: "mtlsconfig", Status: 404, Times: 5}, wantSkipped: true},
		{name: "LivePerson down", fault: &lpsim.Fault{Op: "mtlsconfig", Status: 503, Times: 5}, wantFailed: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := testenv.New(t)
			// A second enabled mapping, so "every listed mapping" is more than one.
			other := env.Sim.TargetURL("/also/mapped")
			env.Sim.AddMapping(testenv.ServiceName, other)
			if c.fault != nil {
				env.Sim.Inject(*c.fault)
			}
			before := env.Sim.Counts()
			payload, fnErr, docs, logs := run(t, env, map[string]any{}, "AWS_LAMBDA_FUNCTION_NAME=stack-a-mapping")
			if fnErr != "" {
				t.Fatalf("function error: %s", fnErr)
			}
			n := env.Sim.Counts()
			if n.Mappings-before.Mappings != c.wantMappings || n.CertificateLists-before.CertificateLists != 1 {
				t.Fatalf("%d mapping calls, %d certificate lists; want %d and 1",
					n.Mappings-before.Mappings, n.CertificateLists-before.CertificateLists, c.wantMappings)
			}
			want := map[string]float64{MetricFailed: c.wantFailed, MetricExpiringSoon: 0, MetricUnavailable: 0, MetricExpiryUnknown: 0}
			if c.wantCounts {
				want[MetricConfigured], want[MetricMissing] = 2, 0
			}
			docs.account.check(t, "lpmtls", [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}}, want)
			if docs.account.Root[DimensionFunction] != "stack-a-mapping" {
				t.Fatalf("FunctionName %v", docs.account.Root[DimensionFunction])
			}
			var sum Summary
			if err := json.Unmarshal(payload, &sum); err != nil {
				t.Fatal(err)
			}
			if sum.Source != SourceListed || (sum.Skipped != "") != c.wantSkipped || sum.Failed != (c.wantFailed == 1) {
				t.Fatalf("summary %s", payload)
			}
			if c.wantCounts {
				got := map[string]bool{}
				for _, r := range sum.Results {
					got[r.URL] = r.Configured
				}
				if sum.Checked != 2 || !got[env.MappedURL] || !got[other] {
					t.Fatalf("results %+v", sum.Results)
				}
			}
			if skips := strings.Count(logs, "mapping health check skipped"); skips != map[bool]int{true: 1}[c.wantSkipped] {
				t.Fatalf("%d skip lines:\n%s", skips, logs)
			}
		})
	}
}

// TestScheduledRunWatchesCertificateExpiry: the simulator holds a certificate 10 days
// from expiry and one it reports UnAvailable; the scheduled run's EMF says so, per
// certificate and for the account, and no credential reaches the output.
func TestScheduledRunWatchesCertificateExpiry(t *testing.T) {
	env := testenv.New(t)
	acct := env.Sim.AccountID()
	notAfter := time.Now().Add(10 * day)
	soonID, err := env.Sim.SeedCertificate(lpsim.SeedCertificate{Name: "brand-hooks-2026", NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Sim.SeedCertificate(lpsim.SeedCertificate{Name: "brand-broken", NotAfter: time.Now().Add(200 * day), Status: lpsim.StatusUnavailable}); err != nil {
		t.Fatal(err)
	}
	mapped := lp.Mapping{ServiceName: testenv.ServiceName, URL: env.MappedURL}
	before := env.Sim.Counts()
	payload, fnErr, docs, logs := run(t, env, map[string]any{}, targetsEnv(t, mapped))
	if fnErr != "" {
		t.Fatalf("function error: %s", fnErr)
	}
	if n := env.Sim.Counts().CertificateLists - before.CertificateLists; n != 1 {
		t.Fatalf("%d certificate lists, want 1", n)
	}
	docs.account.check(t, "lpmtls", [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}}, map[string]float64{
		MetricConfigured: 1, MetricMissing: 0, MetricFailed: 0, MetricExpiringSoon: 1, MetricUnavailable: 1, MetricExpiryUnknown: 0})
	if docs.account.Root[DimensionAccount] != acct {
		t.Fatalf("AccountId %v", docs.account.Root[DimensionAccount])
	}
	if d := docs.days(t, "brand-hooks-2026"); math.Abs(d-10) > 0.02 {
		t.Fatalf("%s = %v, want about 10", MetricDaysToExpiry, d)
	}
	soon := docs.certs["brand-hooks-2026"]
	if soon.Root[DimensionAccount] != acct || soon.Root["certificateId"] != soonID || soon.Root["status"] != lpsim.StatusAvailable {
		t.Fatalf("certificate document %v", soon.Root)
	}
	if _, ok := docs.certs["brand-broken"]; !ok || len(docs.certs) != 3 {
		t.Fatalf("certificate documents for %v; want the simulator's own, brand-hooks-2026 and brand-broken", keys(docs.certs))
	}

	var sum Summary
	if err := json.Unmarshal(payload, &sum); err != nil {
		t.Fatal(err)
	}
	cs := sum.Certificates
	if cs == nil || cs.Listed != 3 || cs.ExpiringSoon != 1 || cs.Unavailable != 1 || cs.WarningDays != 30 {
		t.Fatalf("summary %s", payload)
	}
	for _, it := range cs.Items {
		if it.Name == "brand-hooks-2026" && (!it.ExpiringSoon || it.ExpiresAt == nil || it.ExpiresAt.Unix() != notAfter.Unix()) {
			t.Fatalf("item %+v, want expiry %s", it, notAfter)
		}
	}
	bearer := storedBearer(t, env)
	for name, secret := range map[string]string{"password": testenv.Password, "bearer": bearer} {
		if strings.Contains(logs, secret) || strings.Contains(string(payload), secret) {
			t.Errorf("%s appears in the output", name)
		}
	}
}

// TestScheduledRunWarningWindow: CERT_EXPIRY_WARNING_DAYS sets the window, and 0 turns
// the watch off (no list call, no certificate metrics); a bad value fails at init.
func TestScheduledRunWarningWindow(t *testing.T) {
	env := testenv.New(t)
	if _, err := env.Sim.SeedCertificate(lpsim.SeedCertificate{Name: "brand-hooks-2026", NotAfter: time.Now().Add(10 * day)}); err != nil {
		t.Fatal(err)
	}
	mapped := lp.Mapping{ServiceName: testenv.ServiceName, URL: env.MappedURL}

	_, fnErr, docs, _ := run(t, env, map[string]any{}, targetsEnv(t, mapped), "CERT_EXPIRY_WARNING_DAYS=7")
	if fnErr != "" {
		t.Fatal(fnErr)
	}
	if docs.account.Root[MetricExpiringSoon] != 0.0 || docs.account.Root["certExpiryWarningDays"] != 7.0 || len(docs.certs) != 2 {
		t.Fatalf("7-day window: %v", docs.account.Root)
	}

	before := env.Sim.Counts()
	_, fnErr, docs, _ = run(t, env, map[string]any{}, targetsEnv(t, mapped), "CERT_EXPIRY_WARNING_DAYS=0")
	if fnErr != "" {
		t.Fatal(fnErr)
	}
	if n := env.Sim.Counts().CertificateLists - before.CertificateLists; n != 0 || len(docs.certs) != 0 {
		t.Fatalf("watch off: %d lists, %d certificate documents", n, len(docs.certs))
	}
	docs.account.check(t, "lpmtls", [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}},
		map[string]float64{MetricConfigured: 1, MetricMissing: 0, MetricFailed: 0})

	out := testenv.StartFailing(t, testenv.Build(t, "mapping"), env.FunctionEnv("CERT_EXPIRY_WARNING_DAYS=thirty"))
	if !strings.Contains(out, "CERT_EXPIRY_WARNING_DAYS") {
		t.Fatalf("init output %q does not name the variable", out)
	}
}

// storedBearer is the bearer the function cached in SSM.
func storedBearer(t *testing.T, env *testenv.Env) string {
	t.Helper()
	raw, _, _ := env.AWS.Parameter(testenv.Prefix + "/token")
	var tok struct {
		Bearer string `json:"bearer"`
	}
	if err := json.Unmarshal([]byte(raw), &tok); err != nil || tok.Bearer == "" {
		t.Fatalf("token parameter %q: %v", raw, err)
	}
	return tok.Bearer
}
