package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/cli"
	"github.com/lpmtls/lpmtls/shared/mtlsconf"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
)

const (
	user     = "cli-admin"
	password = "pw-cli-Zk4!never-print-me"
	p12Pass  = "p12-cli-Hq7!never-print-me"
)

type world struct {
	t      *testing.T
	sim    *lpsim.Sim
	dir    string
	caFile string
	env    map[string]string
	p12s   map[string][]byte
}

func newWorld(t *testing.T, o lpsim.Options) *world {
	t.Helper()
	sim, err := lpsim.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	sim.AddUser(user, password)
	w := &world{t: t, sim: sim, dir: t.TempDir(), p12s: map[string][]byte{}}
	w.caFile = filepath.Join(w.dir, "ca.pem")
	if err := sim.WriteCAFile(w.caFile); err != nil {
		t.Fatal(err)
	}
	w.env = map[string]string{
		"LP_ACCOUNT_ID": sim.AccountID(), "LP_USERNAME": user, "LP_PASSWORD": password,
		"LP_CSDS_URL": sim.CSDSURL(), "HOOKS_P12_PASSWORD": p12Pass,
	}
	return w
}

// p12 writes a client certificate as certs/<file>.
func (w *world) p12(file, cn string, notAfter time.Time, opts ...lpsim.KeyType) string {
	w.t.Helper()
	cc := lpsim.ClientCert{CommonName: cn, NotAfter: notAfter}
	if len(opts) > 0 {
		cc.Key = opts[0]
	}
	data, _, err := w.sim.ClientP12(cc, p12Pass)
	if err != nil {
		w.t.Fatal(err)
	}
	path := filepath.Join(w.dir, "certs", file)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		w.t.Fatal(err)
	}
	w.p12s[file] = data
	return path
}

func (w *world) file(body string) string {
	w.t.Helper()
	path := filepath.Join(w.dir, "mtls.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return path
}

type result struct {
	code           int
	stdout, stderr string
}

func (w *world) run(args ...string) result {
	w.t.Helper()
	var out, errb bytes.Buffer
	fast := mtlsconf.Retry{ThrottleFloor: time.Millisecond, MaxThrottled: 2, ServerPauses: []time.Duration{time.Millisecond},
		Sleep: func(context.Context, time.Duration) error { return nil }}
	env := cli.Env{Stdout: &out, Stderr: &errb, Retry: &fast,
		Getenv:    func(k string) string { return w.env[k] },
		LookupEnv: func(k string) (string, bool) { v, ok := w.env[k]; return v, ok },
	}
	code := cli.Main(context.Background(), append(args, "--ca-file", w.caFile), env)
	r := result{code, out.String(), errb.String()}
	w.scan(r.stdout + r.stderr)
	return r
}

// scan fails on any secret in output: passwords, the bearer, p12 bytes in any encoding.
func (w *world) scan(s string) {
	w.t.Helper()
	for _, secret := range []string{password, p12Pass} {
		if strings.Contains(s, secret) {
			w.t.Fatalf("output carries a password:\n%s", s)
		}
	}
	for name, data := range w.p12s {
		for _, frag := range []string{base64.StdEncoding.EncodeToString(data)[40:72], hex.EncodeToString(data)[80:120], string(data[40:72])} {
			if strings.Contains(s, frag) {
				w.t.Fatalf("output carries bytes of %s:\n%s", name, s)
			}
		}
	}
	if strings.Contains(strings.ToLower(s), "bearer ") {
		w.t.Fatalf("output mentions a bearer:\n%s", s)
	}
}

const sample = `version: 1
certificates:
  - name: brand-hooks
    p12: certs/hooks.p12
    passwordEnv: HOOKS_P12_PASSWORD
mappings:
  - service: WEBHOOKS
    url: %s
    certificate: brand-hooks
`

func TestApplyIdempotentAndReplace(t *testing.T) {
	for _, format := range []lpsim.ExpiryFormat{lpsim.ExpiryEpochMillis, lpsim.ExpiryRFC3339, lpsim.ExpiryNull} {
		t.Run(string(format), func(t *testing.T) {
			w := newWorld(t, lpsim.Options{ExpiryFormat: format})
			target := w.sim.TargetURL("/hooks/in?x=1")
			w.p12("hooks.p12", "brand-hooks-v1", time.Now().AddDate(0, 6, 0))
			cfg := w.file(strings.Replace(sample, "%s", target, 1))

			r := w.run("plan", "-f", cfg)
			if r.code != 0 || !strings.Contains(r.stdout, "+ upload certificate brand-hooks") || !strings.Contains(r.stdout, "+ create mapping WEBHOOKS") {
				t.Fatalf("plan: %+v", r)
			}
			if len(w.sim.Certificates()) != 0 {
				t.Fatal("plan changed something")
			}
			r = w.run("apply", "-f", cfg)
			if r.code != 0 || !strings.Contains(r.stdout, "Applied 2 change(s)") {
				t.Fatalf("apply: %+v", r)
			}
			certs, maps := w.sim.Certificates(), w.sim.Mappings()
			if len(certs) != 1 || certs[0].CommonName != "brand-hooks-v1" || len(maps) != 1 || maps[0].CertificateID != certs[0].ID {
				t.Fatalf("after apply: %+v %+v", certs, maps)
			}
			before := w.sim.Counts()
			r = w.run("apply", "-f", cfg)
			if r.code != 0 || !strings.Contains(r.stdout, "No changes") {
				t.Fatalf("second apply: %+v", r)
			}
			after := w.sim.Counts()
			if after.CertificateUploads != before.CertificateUploads || after.CertificateReplaces != before.CertificateReplaces ||
				after.Activations != before.Activations || after.MappingObjects != before.MappingObjects+1 {
				t.Errorf("second apply made changes: %+v -> %+v", before, after)
			}

			// A renewed certificate under the same name replaces in place.
			w.p12("hooks.p12", "brand-hooks-v2", time.Now().AddDate(1, 0, 0))
			r = w.run("plan", "-f", cfg)
			if r.code != 0 || !strings.Contains(r.stdout, "~ replace certificate brand-hooks") || !strings.Contains(r.stdout, "= mapping WEBHOOKS") {
				t.Fatalf("plan after renewal: %+v", r)
			}
			r = w.run("apply", "-f", cfg)
			if r.code != 0 {
				t.Fatalf("apply renewal: %+v", r)
			}
			if c := w.sim.Certificates(); len(c) != 1 || c[0].CommonName != "brand-hooks-v2" || c[0].ID != certs[0].ID {
				t.Fatalf("after renewal: %+v", c)
			}
			if r := w.run("apply", "-f", cfg); r.code != 0 || !strings.Contains(r.stdout, "No changes") {
				t.Fatalf("apply after renewal: %+v", r)
			}
		})
	}
}

func TestApplyRefusesBadInputBeforeAnyChange(t *testing.T) {
	w := newWorld(t, lpsim.Options{})
	target := w.sim.TargetURL("/hooks/in?x=1")
	good := strings.Replace(sample, "%s", target, 1)
	tests := []struct {
		name    string
		setup   func()
		file    string
		mention string
	}{
		{"wrong password", func() {
			w.p12("hooks.p12", "x", time.Now().AddDate(1, 0, 0))
			w.env["HOOKS_P12_PASSWORD"] = "not-the-password"
		}, good, "password does not open"},
		{"bad p12", func() {
			os.WriteFile(filepath.Join(w.dir, "certs", "hooks.p12"), []byte("this is not a p12"), 0o600)
		}, good, "not a PKCS#12"},
		{"weak key", func() { w.p12("hooks.p12", "x", time.Now().AddDate(1, 0, 0), lpsim.KeyRSA1024) }, good, "2048"},
		{"expired", func() { w.p12("hooks.p12", "x", time.Now().Add(-time.Hour)) }, good, "expired"},
		{"password variable unset", func() {
			w.p12("hooks.p12", "x", time.Now().AddDate(1, 0, 0))
			delete(w.env, "HOOKS_P12_PASSWORD")
		}, good, "HOOKS_P12_PASSWORD"},
		{"unknown certificate name", nil, good + `  - service: IDP
    url: https://idp.example/token
    certificate: nobody
`, `certificate "nobody" is neither declared`},
		{"unknown service", nil, strings.Replace(good, "service: WEBHOOKS", "service: NOPE", 1), "unknown service"},
		{"other account", nil, "accountId: \"123\"\n" + good, "account 123"},
		{"misspelt key", nil, strings.Replace(good, "passwordEnv", "password", 1), "password"},
		{"password in the file", nil, strings.Replace(good, "HOOKS_P12_PASSWORD", "s3cr3t pass", 1), "not a password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.env["HOOKS_P12_PASSWORD"] = p12Pass
			w.p12("hooks.p12", "x", time.Now().AddDate(1, 0, 0))
			if tt.setup != nil {
				tt.setup()
			}
			cfg := w.file(tt.file)
			for _, cmd := range []string{"plan", "apply"} {
				r := w.run(cmd, "-f", cfg)
				if r.code != 1 || !strings.Contains(r.stderr, tt.mention) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
					t.Fatalf("%s: %+v", cmd, r)
				}
			}
			if n := len(w.sim.Certificates()) + len(w.sim.Mappings()); n != 0 {
				t.Fatalf("something was changed: %+v %+v", w.sim.Certificates(), w.sim.Mappings())
			}
		})
	}
}

func TestApplyStopsPartWayAndRerunFinishes(t *testing.T) {
	w := newWorld(t, lpsim.Options{})
	target := w.sim.TargetURL("/hooks/in?x=1")
	w.p12("hooks.p12", "brand-hooks", time.Now().AddDate(1, 0, 0))
	cfg := w.file(strings.Replace(sample, "%s", target, 1))
	w.sim.Inject(lpsim.Fault{Op: "activate", Status: 503})
	r := w.run("apply", "-f", cfg)
	if r.code != 1 || !strings.Contains(r.stdout, "+ upload certificate brand-hooks") ||
		!strings.Contains(r.stderr, "create mapping WEBHOOKS") || !strings.Contains(r.stderr, "done before it: upload certificate brand-hooks (id ") ||
		!strings.Contains(r.stderr, "not done: nothing") || !strings.Contains(r.stderr, "Running apply again finishes the job") {
		t.Fatalf("partial apply: %+v", r)
	}
	if len(w.sim.Certificates()) != 1 || len(w.sim.Mappings()) != 0 {
		t.Fatalf("state after partial apply: %+v %+v", w.sim.Certificates(), w.sim.Mappings())
	}
	r = w.run("apply", "-f", cfg, "--verbose") // the call log is scanned for secrets too
	if r.code != 0 || strings.Contains(r.stdout, "upload certificate") || !strings.Contains(r.stdout, "+ create mapping WEBHOOKS") ||
		!strings.Contains(r.stderr, `msg="liveperson call" call="certificate activate"`) {
		t.Fatalf("rerun: %+v", r)
	}
	if len(w.sim.Mappings()) != 1 {
		t.Fatalf("mapping not created: %+v", w.sim.Mappings())
	}
}

func TestApplyRepointsAndRetriesThrottling(t *testing.T) {
	w := newWorld(t, lpsim.Options{RequireIfMatch: true})
	target := w.sim.TargetURL("/hooks/in?x=1")
	w.sim.AddMapping("WEBHOOKS", target) // mapped by hand to another certificate
	w.p12("hooks.p12", "brand-hooks", time.Now().AddDate(1, 0, 0))
	cfg := w.file(strings.Replace(sample, "%s", target, 1))
	w.sim.Inject(lpsim.Fault{Op: "certificates", Status: 429, RetryAfter: "1"})
	w.sim.Inject(lpsim.Fault{Op: "mtlsconfig", Status: 502})
	r := w.run("apply", "-f", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "~ repoint mapping WEBHOOKS") || !strings.Contains(r.stdout, "it points at certificate lpsim-WEBHOOKS") {
		t.Fatalf("apply: %+v", r)
	}
	m := w.sim.Mappings()
	var hooks string
	for _, c := range w.sim.Certificates() {
		if c.Name == "brand-hooks" {
			hooks = c.ID
		}
	}
	if len(m) != 1 || m[0].CertificateID != hooks {
		t.Fatalf("mapping %+v, want certificate %s", m, hooks)
	}
	if r := w.run("apply", "-f", cfg); r.code != 0 || !strings.Contains(r.stdout, "No changes") {
		t.Fatalf("second apply: %+v", r)
	}
}

func TestImperativeCommands(t *testing.T) {
	w := newWorld(t, lpsim.Options{})
	file := w.p12("a.p12", "brand-a-v1", time.Now().Add(10*24*time.Hour+time.Hour))
	target := w.sim.TargetURL("/a")

	r := w.run("certs", "upload", "--name", "brand-a", "--p12", file, "--password-env", "HOOKS_P12_PASSWORD")
	if r.code != 0 || !strings.Contains(r.stdout, "uploaded certificate brand-a") || !strings.Contains(r.stdout, "10 days left") {
		t.Fatalf("upload: %+v", r)
	}
	if r := w.run("certs", "upload", "--name", "brand-a", "--p12", file, "--password-env", "HOOKS_P12_PASSWORD"); r.code != 1 ||
		!strings.Contains(r.stderr, "certs replace") {
		t.Fatalf("second upload: %+v", r)
	}
	if r := w.run("certs", "upload", "--name", "x", "--p12", file); r.code != 2 || !strings.Contains(r.stderr, "--password-env") {
		t.Fatalf("no terminal, no variable: %+v", r)
	}
	if r := w.run("certs", "replace", "--name", "nobody", "--p12", file, "--password-env", "HOOKS_P12_PASSWORD"); r.code != 1 ||
		!strings.Contains(r.stderr, "no certificate named nobody") {
		t.Fatalf("replace unknown: %+v", r)
	}
	r = w.run("certs", "list", "-o", "json")
	var list []struct {
		Name, ID, Status string
		DaysLeft         *int
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); r.code != 0 || err != nil || len(list) != 1 || list[0].DaysLeft == nil || *list[0].DaysLeft != 10 {
		t.Fatalf("list json: %+v %v", r, err)
	}
	r = w.run("certs", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "NAME") || !strings.Contains(r.stdout, "brand-a") || !strings.Contains(r.stdout, "Available") {
		t.Fatalf("list: %+v", r)
	}

	if r := w.run("mappings", "check", "--pair", "WEBHOOKS="+target); r.code != 1 || !strings.Contains(r.stdout, "no") ||
		!strings.Contains(r.stderr, "1 of 1 pair(s)") {
		t.Fatalf("check before: %+v", r)
	}
	if r := w.run("mappings", "activate", "--certificate", "nobody", "--service", "WEBHOOKS", "--url", target); r.code != 1 ||
		!strings.Contains(r.stderr, `certificate "nobody"`) {
		t.Fatalf("activate unknown certificate: %+v", r)
	}
	if r := w.run("mappings", "activate", "--certificate", "brand-a", "--service", "WEBHOOKS", "--url", target, "--validate-url"); r.code != 0 ||
		!strings.Contains(r.stdout, "create mapping WEBHOOKS") {
		t.Fatalf("activate: %+v", r)
	}
	if r := w.run("mappings", "activate", "--certificate", "brand-a", "--service", "WEBHOOKS", "--url", target); r.code != 0 ||
		!strings.Contains(r.stdout, "already mapped") {
		t.Fatalf("activate again: %+v", r)
	}
	r = w.run("mappings", "check", "--service", "WEBHOOKS", "--url", target, "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"allConfigured": true`) {
		t.Fatalf("check after: %+v", r)
	}

	renewed := w.p12("a2.p12", "brand-a-v2", time.Now().AddDate(1, 0, 0))
	if r := w.run("certs", "replace", "--name", "brand-a", "--p12", renewed, "--password-env", "HOOKS_P12_PASSWORD"); r.code != 0 ||
		!strings.Contains(r.stdout, "replaced certificate brand-a") {
		t.Fatalf("replace: %+v", r)
	}
	if c := w.sim.Certificates(); len(c) != 1 || c[0].CommonName != "brand-a-v2" {
		t.Fatalf("after replace %+v", c)
	}
}

func TestUsage(t *testing.T) {
	w := newWorld(t, lpsim.Options{})
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--help"}, 0, "Commands:"},
		{[]string{"help", "apply"}, 0, "Usage: lpmtls apply"},
		{[]string{"apply", "--help"}, 0, "-state"},
		{[]string{"certs", "--help"}, 0, "certs upload"},
		{[]string{"mappings", "check", "-h"}, 0, "--pair"},
		{[]string{"nope"}, 2, ""},
		{[]string{"apply"}, 2, ""},
		{[]string{"apply", "-f", "x", "extra"}, 2, ""},
		{[]string{"certs", "list", "-o", "xml"}, 2, ""},
		{[]string{"certs", "list", "--bogus"}, 2, ""},
		{[]string{"mappings", "check", "--pair", "nourl"}, 2, ""},
		{[]string{"mappings", "check", "--pair", "WEBHOOKS=http://plain"}, 2, ""},
	} {
		r := w.run(tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout, tc.out) {
			t.Errorf("%v: %+v", tc.args, r)
		}
		if tc.code == 2 && (!strings.Contains(r.stderr, "--help") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0) {
			t.Errorf("%v: usage errors are one line that points at --help: %q", tc.args, r.stderr)
		}
	}
	delete(w.env, "LP_PASSWORD")
	if r := w.run("certs", "list"); r.code != 1 || !strings.Contains(r.stderr, "LP_PASSWORD") {
		t.Errorf("incomplete credentials: %+v", r)
	}
}

func TestMappingObjectsPathHint(t *testing.T) {
	w := newWorld(t, lpsim.Options{})
	w.env["LP_MAPPING_OBJECTS_PATH"] = "/api/account/{accountId}/nowhere"
	w.p12("hooks.p12", "x", time.Now().AddDate(1, 0, 0))
	cfg := w.file(strings.Replace(sample, "%s", w.sim.TargetURL("/h"), 1))
	r := w.run("plan", "-f", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, "LP_MAPPING_OBJECTS_PATH") {
		t.Fatalf("%+v", r)
	}
}

func TestCertsListFillsUnreportedExpiryFromState(t *testing.T) {
	w := newWorld(t, lpsim.Options{ExpiryFormat: lpsim.ExpiryNull})
	w.p12("hooks.p12", "brand-hooks", time.Now().Add(45*24*time.Hour+time.Hour))
	cfg := w.file(strings.Replace(sample, "%s", w.sim.TargetURL("/h"), 1))
	if r := w.run("apply", "-f", cfg); r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	if r := w.run("certs", "list"); r.code != 0 || !strings.Contains(r.stdout, "unknown") {
		t.Fatalf("without a state file: %+v", r)
	}
	r := w.run("certs", "list", "-f", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "+  45") || !strings.Contains(r.stdout, "read from the p12") {
		t.Fatalf("with the state file: %+v", r)
	}
	r = w.run("certs", "list", "-f", cfg, "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"expirySource": "state-file"`) || !strings.Contains(r.stdout, `"daysLeft": 45`) {
		t.Fatalf("json: %+v", r)
	}
}

// TestUsageForAMissingCommandIsAnError: lpmtls alone, or a group without its command,
// prints the usage on stderr (nothing on stdout) and exits 2; asked-for help stays on
// stdout with exit 0.
func TestUsageForAMissingCommandIsAnError(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout bool // the usage on stdout, else on stderr
	}{
		{nil, 2, false},
		{[]string{"certs"}, 2, false},
		{[]string{"mappings"}, 2, false},
		{[]string{"--help"}, 0, true},
		{[]string{"certs", "--help"}, 0, true},
	} {
		var out, errb bytes.Buffer
		code := cli.Main(context.Background(), tc.args, cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
		got, other := errb.String(), out.String()
		if tc.stdout {
			got, other = other, got
		}
		if code != tc.code || !strings.Contains(got, "Usage: lpmtls") || other != "" {
			t.Errorf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", tc.args, code, out.String(), errb.String())
		}
	}
}

// TestVersionFlag: --version prints one line naming the module version and exits 0.
func TestVersionFlag(t *testing.T) {
	for _, arg := range []string{"--version", "-version", "version"} {
		var out, errb bytes.Buffer
		code := cli.Main(context.Background(), []string{arg}, cli.Env{Stdout: &out, Stderr: &errb})
		if code != 0 || !strings.HasPrefix(out.String(), "lpmtls ") || !strings.Contains(out.String(), "revision") ||
			strings.Count(out.String(), "\n") != 1 || errb.Len() != 0 {
			t.Errorf("%s: exit %d %q %q", arg, code, out.String(), errb.String())
		}
	}
}

// TestPlanDetailedExitCode: plan exits 0 whether or not changes are pending; with
// --detailed-exitcode it exits 2 while changes are pending, 0 once there are none, and
// 1 on an error.
func TestPlanDetailedExitCode(t *testing.T) {
	w := newWorld(t, lpsim.Options{})
	w.p12("hooks.p12", "brand-hooks", time.Now().AddDate(1, 0, 0))
	cfg := w.file(strings.Replace(sample, "%s", w.sim.TargetURL("/h"), 1))
	if r := w.run("plan", "-f", cfg); r.code != 0 || !strings.Contains(r.stdout, "Plan for account") {
		t.Fatalf("plan: %+v", r)
	}
	if r := w.run("plan", "-f", cfg, "--detailed-exitcode"); r.code != 2 || !strings.Contains(r.stdout, "Plan for account") || r.stderr != "" {
		t.Fatalf("plan --detailed-exitcode with changes pending: %+v", r)
	}
	if r := w.run("apply", "-f", cfg); r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	if r := w.run("plan", "-f", cfg, "--detailed-exitcode"); r.code != 0 || !strings.Contains(r.stdout, "No changes") {
		t.Fatalf("plan --detailed-exitcode with no changes: %+v", r)
	}
	if r := w.run("plan", "-f", filepath.Join(w.dir, "missing.yaml"), "--detailed-exitcode"); r.code != 1 {
		t.Fatalf("plan --detailed-exitcode on an error: %+v", r)
	}
	if r := w.run("apply", "-f", cfg, "--detailed-exitcode"); r.code != 2 {
		t.Fatalf("apply takes no --detailed-exitcode: %+v", r)
	}
}

// TestNetworkFailureNamesHostAndCause: with LivePerson unreachable, the one-line error
// names the host and the cause, and the hint fits the cause (not "check the account").
func TestNetworkFailureNamesHostAndCause(t *testing.T) {
	w := newWorld(t, lpsim.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, tc := range []struct{ csds, says, hint string }{
		{"https://" + addr, "connection to " + addr + " refused", "nothing answers at that host and port"},
		{"https://csds.lpmtls-test.invalid", "cannot resolve csds.lpmtls-test.invalid (DNS)", "does not resolve"},
	} {
		w.env["LP_CSDS_URL"] = tc.csds
		r := w.run("certs", "list", "--verbose")
		if r.code != 1 || !strings.Contains(r.stderr, tc.says) || !strings.Contains(r.stderr, tc.hint) || strings.Contains(r.stderr, "LP_ACCOUNT_ID") {
			t.Errorf("%s: %+v", tc.csds, r)
		}
	}
}
