package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/certificates"
	"github.com/lpmtls/lpmtls/shared/health"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/testworld/emfdoc"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

const cliP12Password = "p12-e2e-Vb3!keep-this-private"

// cliWorld is the simulator and AWS fakes, the built lpmtls CLI and forward bootstrap,
// and a directory holding mtls.yaml and the p12 files.
type cliWorld struct {
	t    *testing.T
	env  *testenv.Env
	bin  string
	dir  string
	cfg  string
	p12s [][]byte
	out  []string // every output of the CLI, scanned for secrets at the end
}

func newCLIWorld(t *testing.T) *cliWorld {
	w := &cliWorld{t: t, env: testenv.New(t), bin: testenv.BuildPackage(t, "./cmd/lpmtls", "CGO_ENABLED=0"), dir: t.TempDir()}
	w.cfg = filepath.Join(w.dir, "mtls.yaml")
	if err := os.MkdirAll(filepath.Join(w.dir, "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

// writeP12 puts a fresh client certificate (signed by the simulator's CA, so the
// target accepts it) at certs/<name>.p12.
func (w *cliWorld) writeP12(name, cn string, notAfter time.Time) {
	w.t.Helper()
	data, leaf, err := w.env.Sim.ClientP12(lpsim.ClientCert{CommonName: cn, NotAfter: notAfter}, cliP12Password)
	if err != nil {
		w.t.Fatal(err)
	}
	if leaf.Subject.CommonName != cn {
		w.t.Fatalf("leaf CN %q", leaf.Subject.CommonName)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "certs", name+".p12"), data, 0o600); err != nil {
		w.t.Fatal(err)
	}
	w.p12s = append(w.p12s, data)
}

func (w *cliWorld) writeConfig(body string) {
	w.t.Helper()
	if err := os.WriteFile(w.cfg, []byte(body), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// lpmtls runs the built CLI with the functions' own environment (LP_SECRET_ID in the
// Secrets Manager fake, the SSM token cache, SSL_CERT_FILE trusting the simulator).
func (w *cliWorld) lpmtls(password string, args ...string) (int, string, string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.bin, args...) // killed by PID if it outlives ctx
	cmd.Env = append(w.env.FunctionEnv(), "PATH="+os.Getenv("PATH"), "HOME="+w.dir, "HOOKS_P12_PASSWORD="+password)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	w.t.Logf("lpmtls %v: %v", args, time.Since(start))
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	w.out = append(w.out, stdout.String(), stderr.String())
	return code, stdout.String(), stderr.String()
}

func (w *cliWorld) mustApply(want string) string {
	w.t.Helper()
	code, out, errOut := w.lpmtls(cliP12Password, "apply", "-f", w.cfg)
	if code != 0 || !strings.Contains(out, want) {
		w.t.Fatalf("apply: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	return out
}

const cliConfig = `version: 1
certificates:
  - name: brand-hooks
    p12: certs/hooks.p12
    passwordEnv: HOOKS_P12_PASSWORD
mappings:
  - service: WEBHOOKS
    url: TARGET
    certificate: brand-hooks
    validateUrl: true
`

func TestCLIApplyThenForward(t *testing.T) {
	w := newCLIWorld(t)
	target := w.env.Sim.TargetURL("/hooks/brand?x=1")
	w.writeP12("hooks", "brand-hooks-2026", time.Now().AddDate(0, 6, 0))
	w.writeConfig(strings.Replace(cliConfig, "TARGET", target, 1))
	fwd := w.env.Start(t, "forward")
	forwardCN := func() string {
		t.Helper()
		r := fwd.InvokeHTTP(t, forwardEvent(t, target))
		if r.StatusCode != 200 {
			t.Fatalf("forward: %d %s\nlogs:\n%s", r.StatusCode, r.Body, fwd.Logs())
		}
		return lower(r.Headers)["x-echo-client-cn"]
	}

	w.env.Sim.ResetCounts()
	w.mustApply("Applied 2 change(s)")
	c := w.env.Sim.Counts()
	if c.CertificateUploads != 1 || c.Activations != 1 || c.CertificateLists != 1 || c.MappingObjects != 1 {
		t.Errorf("first apply's calls: %+v", c)
	}
	if cn := forwardCN(); cn != "brand-hooks-2026" {
		t.Fatalf("target saw client certificate CN %q, want the uploaded one", cn)
	}

	// A second apply changes nothing, in two reads.
	w.env.Sim.ResetCounts()
	w.mustApply("No changes")
	if c := w.env.Sim.Counts(); c.CertificateUploads+c.CertificateReplaces+c.Activations != 0 || c.CertificateLists != 1 || c.MappingObjects != 1 {
		t.Errorf("second apply's calls: %+v", c)
	}

	// The renewed certificate replaces the old one in place; the target sees its CN.
	w.writeP12("hooks", "brand-hooks-2027", time.Now().AddDate(1, 6, 0))
	code, plan, _ := w.lpmtls(cliP12Password, "plan", "-f", w.cfg)
	if code != 0 || !strings.Contains(plan, "~ replace certificate brand-hooks") {
		t.Fatalf("plan after renewal: %d %s", code, plan)
	}
	w.mustApply("Applied 1 change(s)")
	if cn := forwardCN(); cn != "brand-hooks-2027" {
		t.Fatalf("after the renewal the target saw CN %q", cn)
	}
	w.mustApply("No changes")

	// The imperative commands agree.
	code, list, _ := w.lpmtls("", "certs", "list", "-o", "json")
	var certs []struct {
		Name     string
		DaysLeft *int
	}
	if err := json.Unmarshal([]byte(list), &certs); code != 0 || err != nil {
		t.Fatalf("certs list: %d %s", code, list)
	}
	found := false
	for _, c := range certs {
		found = found || (c.Name == "brand-hooks" && c.DaysLeft != nil && *c.DaysLeft > 500)
	}
	if !found {
		t.Errorf("certs list: %s", list)
	}
	if code, out, errOut := w.lpmtls("", "mappings", "check", "-f", w.cfg); code != 0 || !strings.Contains(out, "yes") {
		t.Errorf("mappings check: %d %s %s", code, out, errOut)
	}

	w.scan(fwd.FinalLogs())
}

func TestCLIRefusesBadInputWithNothingHalfDone(t *testing.T) {
	w := newCLIWorld(t)
	target := w.env.Sim.TargetURL("/hooks/brand?x=1")
	cfg := strings.Replace(cliConfig, "TARGET", target, 1)
	w.writeConfig(cfg)
	before := len(w.env.Sim.Certificates())
	beforeMaps := len(w.env.Sim.Mappings())
	tests := []struct {
		name, password, mention string
		setup                   func()
	}{
		{"bad p12", cliP12Password, "not a PKCS#12", func() {
			os.WriteFile(filepath.Join(w.dir, "certs", "hooks.p12"), []byte("-not a p12-"), 0o600)
		}},
		{"wrong password", "wrong-password", "the password does not open the p12 file", func() {
			w.writeP12("hooks", "brand-hooks", time.Now().AddDate(1, 0, 0))
		}},
		{"unknown certificate name", cliP12Password, `certificate "brand-nobody" is neither declared`, func() {
			w.writeP12("hooks", "brand-hooks", time.Now().AddDate(1, 0, 0))
			w.writeConfig(cfg + "  - service: WEBHOOKS\n    url: " + target + "&second=1\n    certificate: brand-nobody\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.writeConfig(cfg)
			tt.setup()
			code, out, errOut := w.lpmtls(tt.password, "apply", "-f", w.cfg)
			if code != 1 || !strings.Contains(errOut, tt.mention) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || out != "" {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			if !strings.Contains(errOut, "nothing was changed") && !strings.Contains(errOut, "check ") && !strings.Contains(errOut, "export ") {
				t.Errorf("the error does not say what to do: %s", errOut)
			}
			if len(w.env.Sim.Certificates()) != before || len(w.env.Sim.Mappings()) != beforeMaps {
				t.Fatalf("something was changed: %+v %+v", w.env.Sim.Certificates(), w.env.Sim.Mappings())
			}
		})
	}
	code, _, errOut := w.lpmtls("", "mappings", "activate", "--certificate", "brand-nobody", "--service", "WEBHOOKS", "--url", target)
	if code != 1 || !strings.Contains(errOut, `certificate "brand-nobody"`) || len(w.env.Sim.Mappings()) != beforeMaps {
		t.Errorf("activate an unknown certificate: %d %s", code, errOut)
	}
	w.scan("")
}

// scan fails on a password, the bearer or p12 bytes (raw, base64 or hex) in any output
// of the CLI or in logs.
func (w *cliWorld) scan(logs string) {
	w.t.Helper()
	all := strings.Join(append(w.out, logs), "\n")
	secrets := map[string]string{"LivePerson password": testenv.Password, "p12 password": cliP12Password, "wrong p12 password": "wrong-password"}
	if raw, _, ok := w.env.AWS.Parameter(testenv.Prefix + "/token"); ok {
		var tok struct{ Bearer string }
		if json.Unmarshal([]byte(raw), &tok) == nil && tok.Bearer != "" {
			secrets["bearer"] = tok.Bearer
		}
	}
	if _, ok := secrets["bearer"]; !ok {
		w.t.Error("no bearer in the token cache to scan for")
	}
	for name, s := range secrets {
		if strings.Contains(all, s) {
			w.t.Errorf("%s appears in the output", name)
		}
	}
	for i, data := range w.p12s {
		b64, hx := base64.StdEncoding.EncodeToString(data), hex.EncodeToString(data)
		for off := 0; off+48 <= len(b64); off += 200 {
			if strings.Contains(all, b64[off:off+24]) || strings.Contains(all, hx[off:off+32]) {
				w.t.Errorf("bytes of p12 %d appear in the output", i)
				break
			}
		}
	}
}

// TestCLIApplyRecordsExpiryForTheWatch: LivePerson lists the certificate with
// expirationDate null, as its documentation shows. apply, with the functions'
// LP_CACHE_PARAMETER_PREFIX, records the p12's expiry and fingerprint in SSM (a String,
// no key material); the built mapping bootstrap's scheduled run then reports the
// certificate's CertificateDaysToExpiry from that record, and counts the certificate
// lpmtls never applied in CertificatesExpiryUnknown. certs list shows the record too.
func TestCLIApplyRecordsExpiryForTheWatch(t *testing.T) {
	w := newCLIWorld(t)
	w.env.Sim.SetExpiryFormat(lpsim.ExpiryNull)
	target := w.env.Sim.TargetURL("/hooks/brand?x=1")
	notAfter := time.Now().Add(20 * 24 * time.Hour).Truncate(time.Second)
	w.writeP12("hooks", "brand-hooks-2026", notAfter)
	w.writeConfig(strings.Replace(cliConfig, "TARGET", target, 1))
	out := w.mustApply("Applied 2 change(s)")
	if !strings.Contains(out, "Recorded the expiry of 1 certificate(s)") {
		t.Fatalf("apply does not say it recorded the expiry:\n%s", out)
	}

	acct := w.env.Sim.AccountID()
	name := testenv.Prefix + "/" + acct + "/certificates/brand-hooks"
	raw, typ, ok := w.env.AWS.Parameter(name)
	if !ok || typ != "String" {
		t.Fatalf("no String parameter %s (type %q)", name, typ)
	}
	var rec certificates.Record
	if err := json.Unmarshal([]byte(raw), &rec); err != nil || !rec.NotAfter.Equal(notAfter) || len(rec.Fingerprint) != 64 {
		t.Fatalf("record %s: %v", raw, err)
	}
	var id string
	for _, c := range w.env.Sim.Certificates() {
		if c.Name == "brand-hooks" {
			id = c.ID
		}
	}
	if string(rec.ID) != id {
		t.Fatalf("record id %s, certificate id %s", rec.ID, id)
	}
	w.env.AWS.ResetCalls()
	w.mustApply("No changes")
	if n := w.env.AWS.Calls()["AmazonSSM.PutParameter"]; n != 0 {
		t.Errorf("a second apply rewrote the record (%d puts)", n)
	}

	code, list, _ := w.lpmtls("", "certs", "list", "-o", "json")
	if code != 0 || !strings.Contains(list, `"expirySource": "ssm-record"`) {
		t.Fatalf("certs list: %d %s", code, list)
	}

	m := w.env.Start(t, "mapping", "HEALTHCHECK_TARGETS="+mustJSON(t, []lp.Mapping{{ServiceName: "WEBHOOKS", URL: target}}))
	res := m.InvokeResult(t, map[string]any{})
	logs := m.FinalLogs()
	if res.Error != nil {
		t.Fatalf("scheduled run: %v\n%s", res.Error, logs)
	}
	days, unknown := -1.0, -1.0
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"_aws"`) {
			continue
		}
		d, err := emfdoc.Parse([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		if d.Root[health.DimensionCertificate] == "brand-hooks" {
			days = d.Sum(health.MetricDaysToExpiry)
		}
		if v, ok := d.Root[health.MetricExpiryUnknown].(float64); ok {
			unknown = v
		}
	}
	want := time.Until(notAfter).Hours() / 24
	if math.Abs(days-want) > 0.05 {
		t.Fatalf("%s of brand-hooks = %v, want about %.2f\n%s", health.MetricDaysToExpiry, days, want, logs)
	}
	// The simulator's own mapped certificate was never applied by lpmtls.
	if unknown != 1 {
		t.Fatalf("%s = %v, want 1\n%s", health.MetricExpiryUnknown, unknown, logs)
	}
	w.scan(logs)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCLIVersion: the built CLI names the module version and the VCS revision the Go
// toolchain stamped into it (go version -m reads the same build information; a build
// with -buildvcs=false or outside a checkout has no revision, and says so).
func TestCLIVersion(t *testing.T) {
	w := newCLIWorld(t)
	code, out, errOut := w.lpmtls("", "--version")
	if code != 0 || errOut != "" || !strings.HasPrefix(out, "lpmtls ") {
		t.Fatalf("exit %d %q %q", code, out, errOut)
	}
	meta, err := exec.Command("go", "version", "-m", w.bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "revision unknown"
	for _, line := range strings.Split(string(meta), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision=") {
			want = "revision " + strings.TrimPrefix(f[1], "vcs.revision=")
		}
	}
	if !strings.Contains(out, want) {
		t.Fatalf("%q does not say %q; go version -m:\n%s", out, want, meta)
	}
}
