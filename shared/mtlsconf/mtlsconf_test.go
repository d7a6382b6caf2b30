package mtlsconf

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/p12"
	"github.com/lpmtls/lpmtls/shared/testworld/memsession"
)

func TestParse(t *testing.T) {
	f, err := Load(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.AccountID != "90412233" || len(f.Certificates) != 1 || len(f.Mappings) != 2 || !f.Mappings[0].ValidateURL ||
		f.Certificates[0].PasswordEnv != "HOOKS_P12_PASSWORD" {
		t.Fatalf("%+v", f)
	}
	const ok = "version: 1\ncertificates:\n  - {name: a, p12: a.p12, passwordEnv: A}\n"
	tests := []struct{ name, body, want string }{
		{"empty", "", "is empty"},
		{"no version", "certificates:\n  - {name: a, p12: a.p12, passwordEnv: A}\n", "version must be 1"},
		{"unknown key", ok + "extra: 1\n", `line 4: top level: unknown key "extra" (the keys are version, accountId, certificates, mappings)`},
		{"password key", "version: 1\ncertificates:\n  - {name: a, p12: a.p12, password: x}\n", `line 3: certificates[0]: unknown key "password"`},
		{"password as env name", "version: 1\ncertificates:\n  - {name: a, p12: a.p12, passwordEnv: 'hunter 2!'}\n", "not a password"},
		{"duplicate name", ok + "  - {name: a, p12: b.p12, passwordEnv: B}\n", "declared twice"},
		{"bad name", "version: 1\ncertificates:\n  - {name: '-x', p12: a.p12, passwordEnv: A}\n", "must be 1-128"},
		{"no p12", "version: 1\ncertificates:\n  - {name: a, passwordEnv: A}\n", "p12 (the file's path) is required"},
		{"nothing declared", "version: 1\n", "declares no certificates"},
		{"http url", ok + "mappings:\n  - {service: WEBHOOKS, url: 'http://x.example/', certificate: a}\n", "absolute https"},
		{"duplicate mapping", ok + "mappings:\n  - {service: IDP, url: 'https://x.example/', certificate: a}\n  - {service: IDP, url: 'https://x.example/', certificate: a}\n", "mapped twice"},
		{"bad service", ok + "mappings:\n  - {service: 'a b', url: 'https://x.example/', certificate: a}\n", "service must be"},
		{"no certificate", ok + "mappings:\n  - {service: IDP, url: 'https://x.example/'}\n", "certificate is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("mtls.yaml", []byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}

// TestParseReportsEveryProblem: a file is checked whole against the documented format,
// and every problem is named with its line, in the format's words (never a Go type).
func TestParseReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name, body string
		want       []string // in this order
	}{
		{"typo in a key", "version: 1\ncertificates:\n  - name: a\n    p12: a.p12\n    pasword: A_PW\n",
			[]string{`line 3: certificates[0]: passwordEnv (the environment variable holding the p12 password) is required`,
				`line 5: certificates[0]: unknown key "pasword" (the keys are name, p12, passwordEnv); did you mean passwordEnv?`}},
		{"certificates as a mapping", "version: 1\ncertificates: {}\n",
			[]string{`line 2: certificates must be a list of certificates (- name: …, p12: …, passwordEnv: …), not a mapping (key: value)`}},
		{"many at once", "version: two\naccountId: 90412233\ncertificates:\n  - name: a\n    p12: [x]\n    passwordEnv: A\n" +
			"mappings:\n  - service: IDP\n    url: https://x.example/\n    certificate: a\n    validateUrl: yes please\n    sevice: IDP\n  - just a string\n",
			[]string{`line 1: version must be a whole number, not "two"`,
				`line 5: certificates[0].p12 must be a single value, not a list`,
				`line 11: mappings[0].validateUrl must be true or false, not "yes please"`,
				`line 12: mappings[0]: unknown key "sevice" (the keys are service, url, certificate, validateUrl); did you mean service?`,
				`line 13: mappings[1] must be a mapping with the keys service, url, certificate, validateUrl, not "just a string"`}},
		{"key twice", "version: 1\nversion: 1\ncertificates:\n  - {name: a, p12: a.p12, passwordEnv: A}\n",
			[]string{`line 2: top level: version is given twice (first on line 1)`}},
		{"a second document", "version: 1\ncertificates:\n  - {name: a, p12: a.p12, passwordEnv: A}\n---\nversion: 2\n",
			[]string{`line 4: a second YAML document`}},
		{"not a mapping at all", "- a\n- b\n", []string{`line 1: the file must be a mapping with the keys version, accountId, certificates, mappings, not a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("mtls.yaml", []byte(tt.body))
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("err %v, want a FileError", err)
			}
			if len(fe.Problems) != len(tt.want) {
				t.Fatalf("problems:\n%s\nwant %d", strings.Join(fe.Problems, "\n"), len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(fe.Problems[i], w) {
					t.Errorf("problem %d: %q, want it to start %q", i, fe.Problems[i], w)
				}
			}
			if strings.Contains(err.Error(), "mtlsconf.") || strings.Contains(err.Error(), "!!") || strings.Contains(err.Error(), "unmarshal") {
				t.Errorf("Go's words in %v", err)
			}
		})
	}
}

const pw = "p12-unit-Wq2"

func writeP12(t *testing.T, dir string, notAfter time.Time) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "unit"},
		NotBefore: notAfter.AddDate(-2, 0, 0), NotAfter: notAfter}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	leaf, _ := x509.ParseCertificate(der)
	data, err := p12.Encode(key, leaf, nil, pw)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "a.p12")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestOpenCertificates(t *testing.T) {
	dir := t.TempDir()
	writeP12(t, dir, time.Now().AddDate(1, 0, 0))
	f := &File{Path: filepath.Join(dir, "mtls.yaml"), Certificates: []CertSpec{{Name: "a", P12: "a.p12", PasswordEnv: "A"}}}
	if lc, err := f.OpenCertificates(env(map[string]string{"A": pw})); err != nil || len(lc) != 1 || len(lc[0].Fingerprint) != 64 {
		t.Fatalf("%v %v", lc, err)
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		spec CertSpec
		want string
	}{
		{"unset", nil, CertSpec{Name: "a", P12: "a.p12", PasswordEnv: "A"}, "A (its p12 password) is not set"},
		{"wrong", map[string]string{"A": "x"}, CertSpec{Name: "a", P12: "a.p12", PasswordEnv: "A"}, "check A"},
		{"missing file", map[string]string{"A": pw}, CertSpec{Name: "a", P12: "nope.p12", PasswordEnv: "A"}, "cannot read the p12 file"},
	} {
		f.Certificates = []CertSpec{tt.spec}
		_, err := f.OpenCertificates(env(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), pw) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestSameExpiry(t *testing.T) {
	local := time.Date(2027, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tt := range []struct {
		remote time.Time
		same   bool
	}{
		{local, true},
		{local.Add(400 * time.Millisecond), true},
		{time.Date(2027, 3, 4, 0, 0, 0, 0, time.UTC), true}, // a date only
		{time.Date(2027, 3, 5, 0, 0, 0, 0, time.UTC), false},
		{local.Add(time.Hour), false},
		{local.AddDate(1, 0, 0), false},
	} {
		if got := sameExpiry(tt.remote, local); got != tt.same {
			t.Errorf("sameExpiry(%v) = %v", tt.remote, got)
		}
	}
}

func TestMakePlanCertificates(t *testing.T) {
	dir := t.TempDir()
	notAfter := time.Now().AddDate(1, 0, 0).Truncate(time.Second).UTC()
	writeP12(t, dir, notAfter)
	f := &File{Path: filepath.Join(dir, "mtls.yaml"), Certificates: []CertSpec{{Name: "a", P12: "a.p12", PasswordEnv: "A"}}}
	local, err := f.OpenCertificates(env(map[string]string{"A": pw}))
	if err != nil {
		t.Fatal(err)
	}
	fp := local[0].Fingerprint
	cert := func(exp time.Time, status string) []lp.Certificate {
		return []lp.Certificate{{ID: "7", Name: "a", Status: status, ExpiresAt: exp}}
	}
	rec := func(id, fp string) *StateFile {
		return &StateFile{Records: []StateRecord{{AccountID: "1", Name: "a", ID: id, Fingerprint: fp}}}
	}
	tests := []struct {
		name   string
		remote []lp.Certificate
		state  *StateFile
		want   Action
		reason string
	}{
		{"new", nil, &StateFile{}, ActionUpload, ""},
		{"same expiry", cert(notAfter, "Available"), &StateFile{}, "", ""},
		{"other expiry", cert(notAfter.AddDate(-1, 0, 0), "Available"), &StateFile{}, ActionReplace, "LivePerson's copy expires"},
		{"unknown expiry, no record", cert(time.Time{}, "Available"), &StateFile{}, ActionReplace, "does not report its expiry"},
		{"unknown expiry, same record", cert(time.Time{}, "Available"), rec("7", fp), "", ""},
		{"unknown expiry, other fingerprint", cert(time.Time{}, "Available"), rec("7", "beef"), ActionReplace, "another certificate"},
		{"unknown expiry, record of an old id", cert(time.Time{}, "Available"), rec("6", fp), ActionReplace, "does not report"},
		{"unavailable", cert(notAfter, "UnAvailable"), &StateFile{}, ActionReplace, "status UnAvailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := MakePlan(Input{File: f, Local: local, Remote: &State{AccountID: "1", Certificates: tt.remote}, State: tt.state,
				ServiceID: func(string) (string, bool) { return "2", true }, Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if !p.Empty() || len(p.Unchanged) != 1 {
					t.Fatalf("steps %+v", p.Steps)
				}
				return
			}
			if len(p.Steps) != 1 || p.Steps[0].Action != tt.want || !strings.Contains(p.Steps[0].Reason, tt.reason) {
				t.Fatalf("steps %+v", p.Steps)
			}
		})
	}
}

func TestMakePlanMappings(t *testing.T) {
	certs := []lp.Certificate{{ID: "7", Name: "a", Status: "Available"}, {ID: "8", Name: "b", Status: "Available"}}
	sid := func(n string) (string, bool) {
		id, ok := map[string]string{"WEBHOOKS": "2", "IDP": "1"}[n]
		return id, ok
	}
	const u = "https://x.example/h?x=1"
	tests := []struct {
		name     string
		mappings []lp.MappingObject
		spec     MappingSpec
		want     Action
		reason   string
		problem  string
	}{
		{"create", nil, MappingSpec{Service: "WEBHOOKS", URL: u, Certificate: "a"}, ActionCreate, "", ""},
		{"in sync", []lp.MappingObject{{ID: "m", ServiceID: "2", URL: u, CertificationID: "7", Enable: true}}, MappingSpec{Service: "WEBHOOKS", URL: u, Certificate: "a"}, "", "", ""},
		{"other certificate", []lp.MappingObject{{ID: "m", ServiceID: "2", URL: u, CertificationID: "8", Enable: true}}, MappingSpec{Service: "WEBHOOKS", URL: u, Certificate: "a"}, ActionRepoint, "points at certificate b (id 8)", ""},
		{"disabled", []lp.MappingObject{{ID: "m", ServiceID: "2", URL: u, CertificationID: "7"}}, MappingSpec{Service: "WEBHOOKS", URL: u, Certificate: "a"}, ActionRepoint, "disabled", ""},
		{"deleted one ignored", []lp.MappingObject{{ID: "m", ServiceID: "2", URL: u, CertificationID: "7", Enable: true, Deleted: true}}, MappingSpec{Service: "WEBHOOKS", URL: u, Certificate: "a"}, ActionCreate, "", ""},
		{"other service", []lp.MappingObject{{ID: "m", ServiceID: "1", URL: u, CertificationID: "7", Enable: true}}, MappingSpec{Service: "WEBHOOKS", URL: u, Certificate: "a"}, ActionCreate, "", ""},
		{"unknown service", nil, MappingSpec{Service: "FOO", URL: u, Certificate: "a"}, "", "", "unknown service"},
		{"unknown certificate", nil, MappingSpec{Service: "IDP", URL: u, Certificate: "zz"}, "", "", "neither declared"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &File{Path: "mtls.yaml", Mappings: []MappingSpec{tt.spec}}
			p, err := MakePlan(Input{File: f, Remote: &State{AccountID: "1", Certificates: certs, Mappings: tt.mappings},
				State: &StateFile{}, ServiceID: sid, KnownServices: []string{"IDP", "WEBHOOKS"}, Now: time.Now()})
			if tt.problem != "" {
				var pe *PlanError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.problem) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if !p.Empty() {
					t.Fatalf("steps %+v", p.Steps)
				}
				return
			}
			if len(p.Steps) != 1 || p.Steps[0].Action != tt.want || !strings.Contains(p.Steps[0].Reason, tt.reason) {
				t.Fatalf("steps %+v", p.Steps)
			}
		})
	}
	_, err := MakePlan(Input{File: &File{Path: "m.yaml", AccountID: "2"}, Remote: &State{AccountID: "1"}, State: &StateFile{}})
	if err == nil || !strings.Contains(err.Error(), "for account 2") {
		t.Errorf("account guard: %v", err)
	}
}

func TestStateFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".lpmtls-state.json")
	st, err := ReadState(path)
	if err != nil || len(st.Records) != 0 {
		t.Fatalf("missing file: %+v %v", st, err)
	}
	st.Put(StateRecord{AccountID: "1", Name: "b", ID: "8", Fingerprint: "bb"})
	st.Put(StateRecord{AccountID: "1", Name: "a", ID: "7", Fingerprint: "aa"})
	st.Put(StateRecord{AccountID: "1", Name: "b", ID: "8", Fingerprint: "cc"})
	if err := st.Write(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadState(path)
	if err != nil || len(back.Records) != 2 || back.Records[0].Name != "a" || back.Lookup("1", "b").Fingerprint != "cc" || back.Lookup("2", "a") != nil {
		t.Fatalf("%+v %v", back, err)
	}
	os.WriteFile(path, []byte("{"), 0o600)
	if _, err := ReadState(path); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("corrupt state: %v", err)
	}
}

// fakeLP fails ListCertificates with the queued errors, then succeeds.
type fakeLP struct {
	LivePerson
	errs  []error
	calls int
}

func (f *fakeLP) ListCertificates(context.Context, lp.Auth) ([]lp.Certificate, error) {
	f.calls++
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	return []lp.Certificate{}, nil
}

func (f *fakeLP) UploadCertificate(context.Context, lp.Auth, lp.CertificateUpload) (lp.Certificate, error) {
	f.calls++
	return lp.Certificate{}, &lp.Error{Kind: lp.KindGateway, Status: 502}
}

var oneSession = &memsession.Sessions{Auth: lp.Auth{AccountID: "1", Bearer: "b"}}

func TestRetryPolicy(t *testing.T) {
	var waits []time.Duration
	retry := Retry{ThrottleFloor: time.Second, MaxThrottled: 2, ServerPauses: []time.Duration{5 * time.Second, 10 * time.Second},
		Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	throttled := func(ra time.Duration) error { return &lp.Error{Kind: lp.KindThrottled, Status: 429, RetryAfter: ra} }
	tests := []struct {
		name  string
		errs  []error
		ok    bool
		waits []time.Duration
	}{
		{"ok", nil, true, nil},
		{"throttled, Retry-After kept above the floor", []error{throttled(3 * time.Second), throttled(0)}, true, []time.Duration{3 * time.Second, time.Second}},
		{"throttled too often", []error{throttled(0), throttled(0), throttled(0)}, false, []time.Duration{time.Second, time.Second}},
		{"server errors", []error{&lp.Error{Kind: lp.KindGateway, Status: 503}, &lp.Error{Kind: lp.KindNetwork}}, true, []time.Duration{5 * time.Second, 10 * time.Second}},
		{"rejected is final", []error{&lp.Error{Kind: lp.KindBadRequest, Status: 400}}, false, nil},
		{"auth is final", []error{&lp.Error{Kind: lp.KindAuth, Status: 403}}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			waits = nil
			f := &fakeLP{errs: tt.errs}
			r := &Remote{LP: f, Sessions: oneSession, Retry: retry}
			_, _, err := r.Certificates(context.Background())
			if (err == nil) != tt.ok || len(waits) != len(tt.waits) {
				t.Fatalf("err %v waits %v", err, waits)
			}
			for i := range waits {
				if waits[i] != tt.waits[i] {
					t.Errorf("waits %v, want %v", waits, tt.waits)
				}
			}
			if r.Calls != f.calls {
				t.Errorf("Calls %d, made %d", r.Calls, f.calls)
			}
		})
	}
	// A create is not repeated after a server error: it may have happened.
	f := &fakeLP{}
	r := &Remote{LP: f, Sessions: oneSession, Retry: retry}
	if _, err := r.Upload(context.Background(), lp.CertificateUpload{}); err == nil || f.calls != 1 {
		t.Errorf("upload after 502: %v, %d calls", err, f.calls)
	}
}

// TestExample keeps the sample in the repository valid.
func TestExample(t *testing.T) {
	f, err := Load(filepath.Join("..", "..", "examples", "mtls.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Certificates) != 2 || len(f.Mappings) != 3 {
		t.Fatalf("%+v", f)
	}
}
