package health

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/certificates"
	"github.com/lpmtls/lpmtls/shared/config"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/mapping"
	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/testworld/awsfake"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
	"github.com/lpmtls/lpmtls/shared/wiring"
)

const day = 24 * time.Hour

func TestAssessCertificates(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	cert := func(name, status string, expires time.Time) lp.Certificate {
		return lp.Certificate{ID: lp.CertificateID("7001002003"), Name: name, Status: status, ExpiresAt: expires}
	}
	cases := []struct {
		name        string
		cert        lp.Certificate
		window      int
		days        float64 // -1: unknown
		soon, avail bool
		dimension   string
	}{
		{"ten days, inside the window", cert("a", "Available", now.Add(10*day)), 30, 10, true, true, "a"},
		{"outside the window", cert("b", "Available", now.Add(45*day)), 30, 45, false, true, "b"},
		{"on the window's edge counts", cert("c", "Available", now.Add(30*day)), 30, 30, true, true, "c"},
		{"just past the edge does not", cert("d", "Available", now.Add(30*day+time.Minute)), 30, 30, false, true, "d"},
		{"expired", cert("e", "UnAvailable", now.Add(-36*time.Hour)), 30, -1.5, true, false, "e"},
		{"unknown expiry never counts", cert("f", "Available", time.Time{}), 30, -1, false, true, "f"},
		{"unknown expiry, unavailable", cert("g", "UnAvailable", time.Time{}), 30, -1, false, false, "g"},
		{"status compared without case", cert("h", " available ", now.Add(100*day)), 30, 100, false, true, "h"},
		{"narrow window", cert("i", "Available", now.Add(10*day)), 7, 10, false, true, "i"},
		{"fractional days", cert("j", "Available", now.Add(10*day+6*time.Hour)), 30, 10.25, true, true, "j"},
		{"display name when no name", lp.Certificate{ID: "1", DisplayName: "shown", Status: "Available", ExpiresAt: now.Add(day)}, 30, 1, true, true, "shown"},
		{"id when nameless", lp.Certificate{ID: "42", Name: " ", Status: "Available", ExpiresAt: now.Add(day)}, 30, 1, true, true, "id 42"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := assessCertificates(&certificates.Result{Certificates: []lp.Certificate{c.cert}}, now, c.window)
			it := s.Items[0]
			if s.Listed != 1 || s.WarningDays != c.window || it.Name != c.dimension || it.Available != c.avail || it.ExpiringSoon != c.soon {
				t.Fatalf("summary %+v item %+v", s, it)
			}
			if c.days == -1 {
				if it.DaysToExpiry != nil || it.ExpiresAt != nil || s.ExpiryUnknown != 1 {
					t.Fatalf("unknown expiry reported as %v", it.DaysToExpiry)
				}
			} else if it.DaysToExpiry == nil || *it.DaysToExpiry != c.days || s.ExpiryUnknown != 0 {
				t.Fatalf("days %v, want %v", it.DaysToExpiry, c.days)
			}
			if want := b2i(c.soon); s.ExpiringSoon != want {
				t.Fatalf("expiring soon %d, want %d", s.ExpiringSoon, want)
			}
			if want := b2i(!c.avail); s.Unavailable != want {
				t.Fatalf("unavailable %d, want %d", s.Unavailable, want)
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// runDocs are the EMF documents of one run: the account's, and the per-certificate
// ones by CertificateName.
type runDocs struct {
	account emfDoc
	certs   map[string]emfDoc
}

// splitDocs parses every EMF line of out; exactly one must be the account's.
func splitDocs(t *testing.T, out string) runDocs {
	t.Helper()
	r := runDocs{certs: map[string]emfDoc{}}
	accounts := 0
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, `"_aws"`) {
			continue
		}
		d := parseEMF(t, line)
		name, isCert := d.Root[DimensionCertificate].(string)
		if !isCert {
			accounts++
			r.account = d
			continue
		}
		cw := d.AWS.CloudWatchMetrics[0]
		if !reflect.DeepEqual(cw.Dimensions, [][]string{{DimensionFunction, DimensionAccount, DimensionCertificate}}) ||
			len(cw.Metrics) != 1 || cw.Metrics[0].Name != MetricDaysToExpiry {
			t.Fatalf("certificate document %s", line)
		}
		if _, dup := r.certs[name]; dup {
			t.Fatalf("two documents for certificate %q", name)
		}
		r.certs[name] = d
	}
	if accounts != 1 {
		t.Fatalf("want one account document, got %d:\n%s", accounts, out)
	}
	return r
}

// days is the CertificateDaysToExpiry of a certificate document.
func (r runDocs) days(t *testing.T, name string) float64 {
	t.Helper()
	d, ok := r.certs[name]
	if !ok {
		t.Fatalf("no %s document for %q (have %v)", MetricDaysToExpiry, name, keys(r.certs))
	}
	return d.Root[MetricDaysToExpiry].(float64)
}

func keys(m map[string]emfDoc) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// live is the scheduled function's checker as functions/mapping wires it (real
// lp.Client, session, mapping and certificate services) against the simulator, with
// its EMF and log output captured.
type live struct {
	*Checker
	deps      *wiring.Deps
	out, logs *testenv.LockedBuffer
}

func newLive(t testing.TB, env *testenv.Env, vars map[string]string) *live {
	t.Helper()
	all := map[string]string{"LP_CSDS_URL": env.Sim.CSDSURL(), "LP_SERVICE_NAME": testenv.ServiceName}
	for k, v := range vars {
		all[k] = v
	}
	if all["LP_SECRET_ID"] == "" {
		all["LP_ACCOUNT_ID"], all["LP_USERNAME"], all["LP_PASSWORD"] = env.Sim.AccountID(), testenv.Username, testenv.Password
	}
	cfg, err := config.Load(func(k string) string { return all[k] })
	if err != nil {
		t.Fatal(err)
	}
	l := &live{out: &testenv.LockedBuffer{}, logs: &testenv.LockedBuffer{}}
	logger := obs.NewLogger(l.logs, slog.LevelDebug)
	l.deps, err = wiring.Build(context.Background(), cfg, wiring.Options{Logger: logger, HTTPClient: env.Sim.HTTPClient(), AWS: &env.AWSConfig})
	if err != nil {
		t.Fatal(err)
	}
	certs := &certificates.Service{Lister: l.deps.LP, Sessions: l.deps.Sessions,
		Records: certificates.NewRecords(l.deps.Params, cfg.CachePrefix)}
	l.Checker = &Checker{
		Mapping:      &mapping.Service{Checker: l.deps.LP, Sessions: l.deps.Sessions, Logger: logger},
		Certificates: certs,
		WarningDays:  cfg.CertExpiryWarningDays,
		AccountID:    l.deps.AccountID,
		Targets:      []lp.Mapping{{ServiceName: testenv.ServiceName, URL: env.MappedURL}},
		Out:          l.out,
		Logger:       logger,
	}
	return l
}

func (l *live) run(t *testing.T) (Summary, runDocs) {
	t.Helper()
	got, err := l.Handle(context.Background(), json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	return got.(Summary), splitDocs(t, l.out.String())
}

// TestExpiryWatchLive: the simulator holds a certificate 10 days from expiry and one
// it reports UnAvailable, beside the one of its own mapping (valid a year).
func TestExpiryWatchLive(t *testing.T) {
	env := testenv.New(t)
	acct := env.Sim.AccountID()
	if _, err := env.Sim.SeedCertificate(lpsim.SeedCertificate{Name: "brand-hooks-2026", NotAfter: time.Now().Add(10 * day)}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Sim.SeedCertificate(lpsim.SeedCertificate{Name: "brand-broken", NotAfter: time.Now().Add(200 * day), Status: lpsim.StatusUnavailable}); err != nil {
		t.Fatal(err)
	}
	l := newLive(t, env, nil)
	before := env.Sim.Counts()
	sum, docs := l.run(t)

	after := env.Sim.Counts()
	if after.CertificateLists-before.CertificateLists != 1 || after.Mappings-before.Mappings != 1 || after.Logins-before.Logins != 1 {
		t.Fatalf("calls: lists +%d, mapping checks +%d, logins +%d; want one each (the two calls share the login)",
			after.CertificateLists-before.CertificateLists, after.Mappings-before.Mappings, after.Logins-before.Logins)
	}
	docs.account.check(t, DefaultNamespace, [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}}, map[string]float64{
		MetricConfigured: 1, MetricMissing: 0, MetricFailed: 0, MetricExpiringSoon: 1, MetricUnavailable: 1, MetricExpiryUnknown: 0})
	if docs.account.Root[DimensionAccount] != acct || docs.account.Root["certificates"] != 3.0 ||
		docs.account.Root["certExpiryWarningDays"] != 30.0 {
		t.Fatalf("account document %v", docs.account.Root)
	}
	if len(docs.certs) != 3 {
		t.Fatalf("certificate documents for %v, want 3", keys(docs.certs))
	}
	if d := docs.days(t, "brand-hooks-2026"); math.Abs(d-10) > 0.02 {
		t.Fatalf("%s = %v, want about 10", MetricDaysToExpiry, d)
	}
	if d := docs.days(t, "brand-broken"); math.Abs(d-200) > 0.02 {
		t.Fatalf("%s = %v for the unavailable one, want about 200", MetricDaysToExpiry, d)
	}
	for name, d := range docs.certs {
		if d.Root[DimensionAccount] != acct || d.Root["certificateId"] == "" || d.Root["status"] == "" {
			t.Fatalf("%s: %v", name, d.Root)
		}
	}
	cs := sum.Certificates
	if sum.AccountID != acct || sum.Failed || cs == nil || cs.Failed || cs.Listed != 3 || cs.ExpiringSoon != 1 || cs.Unavailable != 1 {
		t.Fatalf("summary %+v certificates %+v", sum, cs)
	}
	logs := l.logs.String()
	for _, want := range []string{`"certificate expiry"`, `"brand-hooks-2026"`, `"expiringSoon":true`, `"certificate expiry check done"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("logs lack %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs+l.out.String(), testenv.Password) {
		t.Fatal("password in the output")
	}
}

// TestExpiryWatchWindow: the window is the configured one.
func TestExpiryWatchWindow(t *testing.T) {
	env := testenv.New(t)
	if _, err := env.Sim.SeedCertificate(lpsim.SeedCertificate{Name: "brand-hooks-2026", NotAfter: time.Now().Add(10 * day)}); err != nil {
		t.Fatal(err)
	}
	l := newLive(t, env, map[string]string{"CERT_EXPIRY_WARNING_DAYS": "7"})
	sum, docs := l.run(t)
	if sum.Certificates.ExpiringSoon != 0 || docs.account.Root[MetricExpiringSoon] != 0.0 || docs.account.Root["certExpiryWarningDays"] != 7.0 {
		t.Fatalf("a certificate 10 days out is not soon in a 7-day window: %+v", sum.Certificates)
	}
}

// TestExpiryWatchUnknownExpiry: LivePerson's own example has "expirationDate": null.
// Such a certificate has no DaysToExpiry data point, is not counted as expiring soon,
// and is named in a warning and counted in the account document.
func TestExpiryWatchUnknownExpiry(t *testing.T) {
	env := testenv.New(t)
	env.Sim.SetExpiryFormat(lpsim.ExpiryNull)
	if _, err := env.Sim.SeedCertificate(lpsim.SeedCertificate{Name: "brand-hooks-2026", NotAfter: time.Now().Add(10 * day)}); err != nil {
		t.Fatal(err)
	}
	l := newLive(t, env, nil)
	sum, docs := l.run(t)
	if len(docs.certs) != 0 {
		t.Fatalf("documents for certificates of unknown expiry: %v", keys(docs.certs))
	}
	docs.account.check(t, DefaultNamespace, [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}}, map[string]float64{
		MetricConfigured: 1, MetricMissing: 0, MetricFailed: 0, MetricExpiringSoon: 0, MetricUnavailable: 0, MetricExpiryUnknown: 2})
	if sum.Certificates.ExpiryUnknown != 2 {
		t.Fatalf("unknown expiry not counted: %v", docs.account.Root)
	}
	var warned bool
	for _, line := range strings.Split(l.logs.String(), "\n") {
		if strings.Contains(line, "certificate expiry unknown") && strings.Contains(line, `"brand-hooks-2026"`) && strings.Contains(line, `"level":"WARN"`) {
			warned = true
		}
	}
	if !warned {
		t.Fatalf("no warning names the certificate:\n%s", l.logs.String())
	}
}

// TestExpiryWatchIndependent: the mapping check and the certificate list each keep
// their metrics when the other fails, and either failing raises HealthCheckFailed under
// the account. With both failing, the account still comes from the credentials.
func TestExpiryWatchIndependent(t *testing.T) {
	cases := []struct {
		name    string
		faults  []string // lpsim ops answering 503
		secret  bool     // credentials from Secrets Manager rather than static
		want    map[string]float64
		absent  []string
		errCode string // property naming the failed part
	}{
		{name: "mapping check down", faults: []string{"mapping"},
			want:   map[string]float64{MetricFailed: 1, MetricExpiringSoon: 1, MetricUnavailable: 0, MetricExpiryUnknown: 0},
			absent: []string{MetricConfigured, MetricMissing}, errCode: "errorCode"},
		{name: "certificate list down", faults: []string{"certificates"},
			want:   map[string]float64{MetricFailed: 1, MetricConfigured: 1, MetricMissing: 0},
			absent: []string{MetricExpiringSoon, MetricUnavailable}, errCode: "certificatesErrorCode"},
		{name: "both down, static credentials", faults: []string{"mapping", "certificates"},
			want:   map[string]float64{MetricFailed: 1},
			absent: []string{MetricConfigured, MetricExpiringSoon}, errCode: "errorCode"},
		{name: "discovery down, secret", faults: []string{"csds"}, secret: true,
			want:   map[string]float64{MetricFailed: 1},
			absent: []string{MetricConfigured, MetricExpiringSoon}, errCode: "certificatesErrorCode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := testenv.New(t)
			acct := env.Sim.AccountID()
			if _, err := env.Sim.SeedCertificate(lpsim.SeedCertificate{Name: "brand-hooks-2026", NotAfter: time.Now().Add(10 * day)}); err != nil {
				t.Fatal(err)
			}
			for _, op := range c.faults {
				env.Sim.Inject(lpsim.Fault{Op: op, Status: 503, Times: 10})
			}
			var vars map[string]string
			if c.secret {
				vars = map[string]string{"LP_SECRET_ID": testenv.SecretID}
			}
			l := newLive(t, env, vars)
			sum, docs := l.run(t)
			docs.account.check(t, DefaultNamespace, [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}}, c.want)
			if docs.account.Root[DimensionAccount] != acct || sum.AccountID != acct {
				t.Fatalf("AccountId %v, summary account %q; want %s", docs.account.Root[DimensionAccount], sum.AccountID, acct)
			}
			for _, k := range c.absent {
				if _, ok := docs.account.Root[k]; ok {
					t.Fatalf("%s present though its part failed", k)
				}
			}
			if code, _ := docs.account.Root[c.errCode].(string); code == "" {
				t.Fatalf("no %s: %v", c.errCode, docs.account.Root)
			}
			certsUp := c.want[MetricExpiringSoon] == 1
			if certsUp != (len(docs.certs) == 2) {
				t.Fatalf("certificate documents %v with the list up=%v", keys(docs.certs), certsUp)
			}
		})
	}
}

// TestFailureWithoutAccount: when not even the credentials could be read, the failure
// is reported without dimensions only (which the alarm watches).
func TestFailureWithoutAccount(t *testing.T) {
	env := testenv.New(t)
	l := newLive(t, env, map[string]string{"LP_SECRET_ID": "lpmtls/test/no-such-secret"})
	sum, docs := l.run(t)
	docs.account.check(t, DefaultNamespace, [][]string{{DimensionFunction}}, map[string]float64{MetricFailed: 1})
	if sum.AccountID != "" || !sum.Failed || !sum.Certificates.Failed || len(docs.certs) != 0 {
		t.Fatalf("summary %+v", sum)
	}
}

// TestExpiryWatchOff: no lister, no certificate list call and no certificate metrics.
func TestExpiryWatchOff(t *testing.T) {
	env := testenv.New(t)
	l := newLive(t, env, nil)
	l.Certificates = nil
	before := env.Sim.Counts()
	sum, docs := l.run(t)
	if n := env.Sim.Counts().CertificateLists - before.CertificateLists; n != 0 || sum.Certificates != nil || len(docs.certs) != 0 {
		t.Fatalf("%d list calls, summary %+v", n, sum.Certificates)
	}
	docs.account.check(t, DefaultNamespace, [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}},
		map[string]float64{MetricConfigured: 1, MetricMissing: 0, MetricFailed: 0})
	if _, ok := docs.account.Root["certExpiryWarningDays"]; ok {
		t.Fatal("watch settings reported while it is off")
	}
}

// TestBadTargetsStillWatchCertificates: a misconfigured target list fails the mapping
// check (an invocation error, as before) but not the expiry watch.
func TestBadTargetsStillWatchCertificates(t *testing.T) {
	env := testenv.New(t)
	if _, err := env.Sim.SeedCertificate(lpsim.SeedCertificate{Name: "brand-hooks-2026", NotAfter: time.Now().Add(10 * day)}); err != nil {
		t.Fatal(err)
	}
	l := newLive(t, env, nil)
	l.Targets = nil
	before := env.Sim.Counts()
	_, err := l.Handle(context.Background(), json.RawMessage(`{}`))
	if err == nil || !strings.Contains(err.Error(), "no health-check targets") {
		t.Fatalf("got %v", err)
	}
	if n := env.Sim.Counts(); n.Mappings != before.Mappings || n.CertificateLists != before.CertificateLists+1 {
		t.Fatalf("calls %+v", n)
	}
	docs := splitDocs(t, l.out.String())
	docs.account.check(t, DefaultNamespace, [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}},
		map[string]float64{MetricFailed: 1, MetricExpiringSoon: 1, MetricUnavailable: 0, MetricExpiryUnknown: 0})
	if docs.days(t, "brand-hooks-2026") > 10 {
		t.Fatal("days")
	}
}

// TestDocumentsRoundTrip: every document of a run is valid EMF with the run's level and
// timestamp, so Lambda's log filter keeps each of them.
func TestDocumentsRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ch := &Checker{LogLevel: slog.LevelError, Now: func() time.Time { return at }}
	sum := Summary{AccountID: "90412233", Checked: 1, Configured: 1,
		Certificates: assessCertificates(&certificates.Result{Certificates: []lp.Certificate{
			{ID: "1", Name: "a", Status: "Available", ExpiresAt: at.Add(10 * day)},
			{ID: "2", Name: "b", Status: "Available"},
		}}, at, 30)}
	var buf bytes.Buffer
	for _, d := range append([]EMF{ch.Document(sum)}, ch.CertificateDocuments(sum)...) {
		if err := d.Write(&buf); err != nil {
			t.Fatal(err)
		}
	}
	docs := splitDocs(t, buf.String())
	if len(docs.certs) != 1 || docs.days(t, "a") != 10 {
		t.Fatalf("documents %v", keys(docs.certs))
	}
	for _, d := range append([]emfDoc{docs.account}, docs.certs["a"]) {
		if d.Root["level"] != "ERROR" || d.Root["timestamp"] != at.Format(time.RFC3339Nano) || d.AWS.Timestamp != at.UnixMilli() {
			t.Fatalf("document %v", d.Root)
		}
	}
	if docs.certs["a"].AWS.CloudWatchMetrics[0].Metrics[0].Unit != "" {
		t.Fatal("days are not a Count")
	}
}

// countingWriter counts what a run writes.
type countingWriter struct{ bytes, lines int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.bytes += len(p)
	w.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// BenchmarkScheduledRun is one warm scheduled run (session cached) against the
// simulator for an account with 100 certificates: the mapping check and the list side
// by side, the assessment and 101 EMF lines.
func BenchmarkScheduledRun(b *testing.B) {
	env := testenv.New(b)
	for i := 0; i < 99; i++ {
		if _, err := env.Sim.SeedCertificate(lpsim.SeedCertificate{Name: "brand-cert-" + strconv.Itoa(i), NotAfter: time.Now().Add(time.Duration(i) * day)}); err != nil {
			b.Fatal(err)
		}
	}
	l := newLive(b, env, nil)
	w := &countingWriter{}
	l.Out = w
	ctx := context.Background()
	if _, err := l.Handle(ctx, json.RawMessage(`{}`)); err != nil {
		b.Fatal(err)
	}
	before := env.Sim.Counts()
	*w = countingWriter{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := l.Handle(ctx, json.RawMessage(`{}`))
		if err != nil || got.(Summary).Certificates.Listed != 100 {
			b.Fatalf("%v %+v", err, got)
		}
	}
	b.StopTimer()
	after := env.Sim.Counts()
	b.ReportMetric(float64(w.bytes)/float64(b.N), "emf-bytes/op")
	b.ReportMetric(float64(w.lines)/float64(b.N), "emf-lines/op")
	b.ReportMetric(float64(after.CertificateLists-before.CertificateLists+after.Mappings-before.Mappings)/float64(b.N), "lp-calls/op")
	b.ReportMetric(float64(after.Logins-before.Logins)/float64(b.N), "logins/op")
}

// TestExpiryWatchUsesRecord: LivePerson reports expirationDate null; the record lpmtls
// apply left in SSM supplies the expiry of a certificate whose id it matches, a record
// of another id (the name deleted and made again) is ignored, and what is known from
// nowhere is counted in CertificatesExpiryUnknown. With SSM down every record is
// unreadable: those certificates count as unknown too, and a warning says why.
func TestExpiryWatchUsesRecord(t *testing.T) {
	for _, ssmDown := range []bool{false, true} {
		t.Run(fmt.Sprintf("ssm down %v", ssmDown), func(t *testing.T) {
			env := testenv.New(t)
			env.Sim.SetExpiryFormat(lpsim.ExpiryNull)
			acct := env.Sim.AccountID()
			notAfter := time.Now().Add(10 * day).Truncate(time.Second)
			seed := func(name string) string {
				id, err := env.Sim.SeedCertificate(lpsim.SeedCertificate{Name: name, NotAfter: notAfter})
				if err != nil {
					t.Fatal(err)
				}
				return id
			}
			record := func(name, id string) {
				raw, _ := json.Marshal(certificates.Record{ID: lp.CertificateID(id), Name: name, Fingerprint: "ab", NotAfter: notAfter})
				env.AWS.SetParameter(testenv.Prefix+"/"+acct+"/certificates/"+name, string(raw), "String")
			}
			record("brand-recorded", seed("brand-recorded"))
			seed("brand-remade")
			record("brand-remade", "999999")
			seed("brand-unrecorded")

			l := newLive(t, env, map[string]string{"LP_CACHE_PARAMETER_PREFIX": testenv.Prefix})
			env.AWS.SetDown(awsfake.SSM, ssmDown)
			sum, docs := l.run(t)
			// The simulator's own mapped certificate has no record either.
			unknown, soon := 3.0, 1.0
			if ssmDown {
				unknown, soon = 4, 0
			}
			docs.account.check(t, DefaultNamespace, [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}}, map[string]float64{
				MetricConfigured: 1, MetricMissing: 0, MetricFailed: 0, MetricExpiringSoon: soon, MetricUnavailable: 0, MetricExpiryUnknown: unknown})
			if ssmDown {
				if len(docs.certs) != 0 || !strings.Contains(l.logs.String(), "records could not be read") {
					t.Fatalf("documents %v; logs:\n%s", keys(docs.certs), l.logs.String())
				}
				return
			}
			if len(docs.certs) != 1 {
				t.Fatalf("documents for %v, want brand-recorded only", keys(docs.certs))
			}
			if d := docs.days(t, "brand-recorded"); math.Abs(d-10) > 0.02 || docs.certs["brand-recorded"].Root["expirySource"] != ExpiryFromRecord {
				t.Fatalf("brand-recorded: %v", docs.certs["brand-recorded"].Root)
			}
			if sum.Certificates.ExpiryUnknown != 3 {
				t.Fatalf("summary %+v", sum.Certificates)
			}
		})
	}
}
