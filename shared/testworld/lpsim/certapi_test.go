package lpsim_test

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
)

const p12Password = "p12-Qw9!sim-upload"

func uploadBody(t *testing.T, file []byte, meta string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", "client.p12")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(file)
	if err := mw.WriteField("certificate", meta); err != nil {
		t.Fatal(err)
	}
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

func upload(t *testing.T, s *lpsim.Sim, c *http.Client, bearer, method string, file []byte, meta string) answer {
	t.Helper()
	ct, body := uploadBody(t, file, meta)
	h := http.Header{"Authorization": {"Bearer " + bearer}, "Content-Type": {ct}}
	return do(t, c, method, s.CSDSURL()+"/mtls/account/"+acct+"/certificates/by-file", h, body)
}

type certObj struct {
	ID             json.Number
	Name, Status   string
	SiteID         string
	Deleted        bool
	ExpirationDate json.RawMessage
}

func listCerts(t *testing.T, s *lpsim.Sim, c *http.Client, bearer string) []certObj {
	t.Helper()
	a := do(t, c, "GET", s.CSDSURL()+"/mtls/account/"+acct+"/certificates", fwdHeader(bearer, "", ""), nil)
	var out []certObj
	if err := json.Unmarshal(a.body, &out); a.status != 200 || err != nil {
		t.Fatalf("list: %d %s", a.status, a.body)
	}
	return out
}

func activate(t *testing.T, s *lpsim.Sim, c *http.Client, bearer, id, query, service, url string) answer {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"serviceName": service, "url": url})
	h := fwdHeader(bearer, "", "")
	h.Set("Content-Type", "application/json")
	return do(t, c, "POST", s.CSDSURL()+"/mtls/account/"+acct+"/certificates/activate/"+id+query, h, b)
}

func forwardCN(t *testing.T, s *lpsim.Sim, c *http.Client, bearer, service, target string) (int, string) {
	t.Helper()
	h := fwdHeader(bearer, target, service)
	h.Set("LP-stop-if-certificate-not-found", "true")
	a := do(t, c, "GET", "https://"+s.Host()+"/mtls/account/"+acct, h, nil)
	return a.status, a.header.Get("X-Echo-Client-Cn")
}

func TestCertificateUploadActivateForward(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	notAfter := time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second)
	file, leaf, err := s.ClientP12(lpsim.ClientCert{CommonName: "brand-hooks-2026", NotAfter: notAfter}, p12Password)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.CommonName != "brand-hooks-2026" || !leaf.NotAfter.Equal(notAfter.UTC()) {
		t.Fatalf("leaf %v %v", leaf.Subject, leaf.NotAfter)
	}
	a := upload(t, s, c, bearer, "POST", file, `{"name":"brand-hooks","password":"`+p12Password+`"}`)
	if a.status != http.StatusCreated {
		t.Fatalf("upload: %d %s", a.status, a.body)
	}
	if bytes.Contains(a.body, []byte(p12Password)) {
		t.Error("answer echoes the password")
	}
	var saved struct {
		Saved  []certObj `json:"successfulySavedCertificates"`
		Failed []certObj `json:"failedSaveToVaultCertificates"`
	}
	if err := json.Unmarshal(a.body, &saved); err != nil || len(saved.Saved) != 1 || saved.Failed == nil {
		t.Fatalf("upload answer %s", a.body)
	}
	got := saved.Saved[0]
	if got.Name != "brand-hooks" || got.Status != "Available" || got.SiteID != acct ||
		string(got.ExpirationDate) != strconv.FormatInt(notAfter.UnixMilli(), 10) {
		t.Errorf("saved %+v %s", got, got.ExpirationDate)
	}
	id := got.ID.String()

	target := s.TargetURL("/hooks/brand?x=1")
	if st, _ := forwardCN(t, s, c, bearer, "WEBHOOKS", target); st != 500 {
		t.Fatalf("forward before activation: %d, want the no-certificate 500", st)
	}
	a = activate(t, s, c, bearer, id, "?isValidateUrlEnabled=true", "WEBHOOKS", target)
	if a.status != http.StatusCreated {
		t.Fatalf("activate: %d %s", a.status, a.body)
	}
	var m struct {
		ID                           json.Number
		URL, ServiceID, SiteID, Name string
		CertificationID              string
		Enable, Deleted              bool
	}
	if err := json.Unmarshal(a.body, &m); err != nil || m.URL != target || m.ServiceID != "2" || m.CertificationID != id ||
		!m.Enable || m.Deleted || m.SiteID != acct || m.Name == "" {
		t.Fatalf("mapping object %s", a.body)
	}
	if cn := s.Counts(); cn.TargetRequests != 1 {
		t.Errorf("URL validation should call the target once, counts %+v", cn)
	}
	if st, cn := forwardCN(t, s, c, bearer, "WEBHOOKS", target); st != 200 || cn != "brand-hooks-2026" {
		t.Fatalf("forward: %d CN %q", st, cn)
	}
	check := do(t, c, "POST", s.CSDSURL()+"/api/account/"+acct+"/checks/serviceUrlMappings", fwdHeader(bearer, "", ""),
		[]byte(`[{"serviceName":"WEBHOOKS","url":"`+target+`"}]`))
	if !bytes.Contains(check.body, []byte(`"exist":true`)) {
		t.Errorf("mapping check %s", check.body)
	}

	// Replace keeps the id and the mapping, and switches the certificate the target sees.
	renewed, _, err := s.ClientP12(lpsim.ClientCert{CommonName: "brand-hooks-2027", NotAfter: notAfter.AddDate(1, 0, 0)}, "other-pw")
	if err != nil {
		t.Fatal(err)
	}
	a = upload(t, s, c, bearer, "PUT", renewed, `{"id":`+id+`,"name":"brand-hooks","password":"other-pw"}`)
	if a.status != http.StatusOK {
		t.Fatalf("replace: %d %s", a.status, a.body)
	}
	if st, cn := forwardCN(t, s, c, bearer, "WEBHOOKS", target); st != 200 || cn != "brand-hooks-2027" {
		t.Fatalf("forward after replace: %d CN %q", st, cn)
	}
	certs := listCerts(t, s, c, bearer)
	if len(certs) != 1 || certs[0].ID.String() != id {
		t.Fatalf("list after replace %+v", certs)
	}

	// Refusals.
	for _, tc := range []struct {
		name, query, service, url string
		status                    int
	}{
		{"duplicate triplet", "", "WEBHOOKS", target, 400},
		{"unknown service", "", "NOPE", s.TargetURL("/other"), 400},
		{"relative url", "", "WEBHOOKS", "/x", 400},
		{"unreachable with validation", "?isValidateUrlEnabled=TRUE", "IDP", "https://127.0.0.1:1/dead", 424},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a := activate(t, s, c, bearer, id, tc.query, tc.service, tc.url); a.status != tc.status {
				t.Errorf("%d %s", a.status, a.body)
			}
		})
	}
	if a := activate(t, s, c, bearer, "7009999999", "", "IDP", target); a.status != 404 {
		t.Errorf("unknown certificate: %d", a.status)
	}
}

func TestCertificateUploadRefusals(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	good, _, err := s.ClientP12(lpsim.ClientCert{CommonName: "x"}, p12Password)
	if err != nil {
		t.Fatal(err)
	}
	weak, _, err := s.ClientP12(lpsim.ClientCert{CommonName: "x", Key: lpsim.KeyRSA1024}, p12Password)
	if err != nil {
		t.Fatal(err)
	}
	meta := func(name, pw string) string { return `{"name":"` + name + `","password":"` + pw + `"}` }
	if a := upload(t, s, c, bearer, "POST", good, meta("taken", p12Password)); a.status != 201 {
		t.Fatalf("seed upload %d %s", a.status, a.body)
	}
	tests := []struct {
		name, method string
		bearer       string
		file         []byte
		meta         string
		status       int
		mention      string
	}{
		{"wrong password", "POST", bearer, good, meta("a", "wrong-one"), 400, "password"},
		{"not a p12", "POST", bearer, []byte("hello"), meta("a", p12Password), 400, "PKCS#12"},
		{"weak key", "POST", bearer, weak, meta("a", p12Password), 400, "2048"},
		{"no name", "POST", bearer, good, `{"password":"` + p12Password + `"}`, 400, "name"},
		{"no password", "POST", bearer, good, `{"name":"a"}`, 400, "password"},
		{"bad json", "POST", bearer, good, `{`, 400, "JSON"},
		{"duplicate name", "POST", bearer, good, meta("taken", p12Password), 409, "already exists"},
		{"no bearer", "POST", "nope", good, meta("a", p12Password), 401, ""},
		{"replace without id", "PUT", bearer, good, meta("taken", p12Password), 400, "id"},
		{"replace unknown id", "PUT", bearer, good, `{"id":123,"password":"` + p12Password + `"}`, 404, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := upload(t, s, c, tt.bearer, tt.method, tt.file, tt.meta)
			if a.status != tt.status || !strings.Contains(string(a.body), tt.mention) {
				t.Fatalf("%d %s", a.status, a.body)
			}
			if bytes.Contains(a.body, []byte(p12Password)) || bytes.Contains(a.body, []byte("wrong-one")) {
				t.Errorf("answer carries a password: %s", a.body)
			}
		})
	}
	if n := len(s.Certificates()); n != 1 {
		t.Errorf("refused uploads stored something: %d certificates", n)
	}
	// Not multipart at all.
	h := fwdHeader(bearer, "", "")
	h.Set("Content-Type", "application/json")
	if a := do(t, c, "POST", s.CSDSURL()+"/mtls/account/"+acct+"/certificates/by-file", h, []byte(`{}`)); a.status != 400 {
		t.Errorf("json body: %d", a.status)
	}
}

func TestCertificateExpiryFormats(t *testing.T) {
	notAfter := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		format lpsim.ExpiryFormat
		want   string
	}{
		{"", strconv.FormatInt(notAfter.UnixMilli(), 10)},
		{lpsim.ExpiryEpochMillis, strconv.FormatInt(notAfter.UnixMilli(), 10)},
		{lpsim.ExpiryEpochMillisString, `"` + strconv.FormatInt(notAfter.UnixMilli(), 10) + `"`},
		{lpsim.ExpiryRFC3339, `"2031-05-06T07:08:09Z"`},
		{lpsim.ExpiryNull, `null`},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			s := start(t, lpsim.Options{ExpiryFormat: tt.format})
			c := client(t, s)
			bearer, _ := login(t, s, c)
			if _, err := s.SeedCertificate(lpsim.SeedCertificate{Name: "seeded", NotAfter: notAfter}); err != nil {
				t.Fatal(err)
			}
			got := listCerts(t, s, c, bearer)
			if len(got) != 1 || string(got[0].ExpirationDate) != tt.want {
				t.Fatalf("%+v, want expirationDate %s", got, tt.want)
			}
		})
	}
}

func TestSeedCertificate(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	soon := time.Now().Add(10 * 24 * time.Hour)
	id, err := s.SeedCertificate(lpsim.SeedCertificate{Name: "soon", NotAfter: soon})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SeedCertificate(lpsim.SeedCertificate{Name: "broken", Status: lpsim.StatusUnavailable}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SeedCertificate(lpsim.SeedCertificate{Name: "expired", NotAfter: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// Seeding a name again replaces it in place.
	if id2, _ := s.SeedCertificate(lpsim.SeedCertificate{Name: "soon", NotAfter: soon}); id2 != id {
		t.Errorf("reseed id %s, want %s", id2, id)
	}
	got := listCerts(t, s, c, bearer)
	want := map[string]string{"soon": "Available", "broken": "UnAvailable", "expired": "UnAvailable"}
	if len(got) != 3 {
		t.Fatalf("%+v", got)
	}
	for _, g := range got {
		if want[g.Name] != g.Status {
			t.Errorf("%s status %s, want %s", g.Name, g.Status, want[g.Name])
		}
	}
	// A seeded certificate can be activated and is presented on forwards.
	target := s.TargetURL("/seeded")
	if a := activate(t, s, c, bearer, id, "", "IDP", target); a.status != 201 {
		t.Fatalf("activate seeded: %d %s", a.status, a.body)
	}
	if st, cn := forwardCN(t, s, c, bearer, "IDP", target); st != 200 || cn != "soon" {
		t.Fatalf("forward: %d %q", st, cn)
	}
}

func TestMappingObjects(t *testing.T) {
	s := start(t, lpsim.Options{RequireIfMatch: true})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	one, _ := s.SeedCertificate(lpsim.SeedCertificate{Name: "one"})
	two, _ := s.SeedCertificate(lpsim.SeedCertificate{Name: "two"})
	base := s.CSDSURL() + "/api/account/" + acct + "/configuration/ac-common/mtls"
	h := fwdHeader(bearer, "", "")
	h.Set("Content-Type", "application/json")
	target := s.TargetURL("/ac?x=1")
	obj := func(cert, name, url string) map[string]any {
		return map[string]any{"certificationId": cert, "serviceId": "2", "enable": true, "url": url,
			"siteId": acct, "name": name, "deleted": false}
	}
	body, _ := json.Marshal([]any{obj(one, "hooks-1", target)})
	a := do(t, c, "POST", base+"?v=3.0", h, body)
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	var created []struct {
		ID              json.Number
		CertificationID string
	}
	if err := json.Unmarshal(a.body, &created); err != nil || len(created) != 1 || created[0].CertificationID != one {
		t.Fatalf("created %s", a.body)
	}
	mid := created[0].ID.String()
	if st, cn := forwardCN(t, s, c, bearer, "WEBHOOKS", target); st != 200 || cn != "one" {
		t.Fatalf("forward: %d %q", st, cn)
	}
	for _, tc := range []struct {
		name string
		body any
		want int
	}{
		{"duplicate name", []any{obj(two, "hooks-1", s.TargetURL("/other"))}, 400},
		{"duplicate triplet", []any{obj(two, "hooks-2", target)}, 400},
		{"unknown certificate", []any{obj("123", "hooks-3", s.TargetURL("/o"))}, 400},
		{"object not array", obj(two, "hooks-4", s.TargetURL("/p")), 400},
		{"batch repeats itself", []any{obj(two, "d", s.TargetURL("/q")), obj(two, "d", s.TargetURL("/r"))}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := json.Marshal(tc.body)
			if a := do(t, c, "POST", base+"?v=3.0", h, b); a.status != tc.want {
				t.Errorf("%d %s", a.status, a.body)
			}
		})
	}
	if n := len(s.Mappings()); n != 1 {
		t.Fatalf("refused creates stored mappings: %d", n)
	}

	// Read gives the revision; a PUT without If-Match or with a stale one is refused.
	a = do(t, c, "GET", base+"/"+mid+"?v=3.0", h, nil)
	rev := a.header.Get("ac-revision")
	if a.status != 200 || rev == "" || a.header.Get("ETag") == "" {
		t.Fatalf("get: %d %v %s", a.status, a.header, a.body)
	}
	repoint, _ := json.Marshal(obj(two, "hooks-1", target))
	if a := do(t, c, "PUT", base+"/"+mid+"?v=3.0", h, repoint); a.status != 428 {
		t.Errorf("put without If-Match: %d", a.status)
	}
	stale := h.Clone()
	stale.Set("If-Match", "999")
	if a := do(t, c, "PUT", base+"/"+mid+"?v=3.0", stale, repoint); a.status != 409 {
		t.Errorf("put with a stale revision: %d", a.status)
	}
	fresh := h.Clone()
	fresh.Set("If-Match", rev)
	if a := do(t, c, "PUT", base+"/"+mid+"?v=3.0", fresh, repoint); a.status != 200 {
		t.Fatalf("put: %d %s", a.status, a.body)
	}
	if st, cn := forwardCN(t, s, c, bearer, "WEBHOOKS", target); st != 200 || cn != "two" {
		t.Fatalf("forward after repoint: %d %q", st, cn)
	}
	a = do(t, c, "GET", base+"?v=3.0", h, nil)
	if a.status != 200 || !strings.Contains(string(a.body), `"certificationId":"`+two+`"`) {
		t.Fatalf("list: %d %s", a.status, a.body)
	}
	fresh.Set("If-Match", a.header.Get("ETag"))
	if a := do(t, c, "DELETE", base+"/"+mid+"?v=3.0", fresh, nil); a.status != 200 {
		t.Fatalf("delete: %d %s", a.status, a.body)
	}
	if st, _ := forwardCN(t, s, c, bearer, "WEBHOOKS", target); st != 500 {
		t.Errorf("forward after delete: %d", st)
	}
	if a := do(t, c, "GET", base+"/"+mid, h, nil); a.status != 404 {
		t.Errorf("get deleted: %d", a.status)
	}
	a = do(t, c, "GET", base, h, nil)
	if string(bytes.TrimSpace(a.body)) != "[]" {
		t.Errorf("list after delete %s", a.body)
	}
	if cn := s.Counts(); cn.MappingObjects < 10 {
		t.Errorf("counts %+v", cn)
	}
}

func TestCertificateFaultsAndAuth(t *testing.T) {
	s := start(t, lpsim.Options{})
	c := client(t, s)
	bearer, _ := login(t, s, c)
	for _, op := range []string{"certificates", "upload", "activate", "mtlsconfig"} {
		s.Inject(lpsim.Fault{Op: op, Status: 429, RetryAfter: "3"})
	}
	urls := map[string]string{
		"certificates": s.CSDSURL() + "/mtls/account/" + acct + "/certificates",
		"activate":     s.CSDSURL() + "/mtls/account/" + acct + "/certificates/activate/1",
		"mtlsconfig":   s.CSDSURL() + "/api/account/" + acct + "/configuration/ac-common/mtls",
	}
	methods := map[string]string{"certificates": "GET", "activate": "POST", "mtlsconfig": "GET"}
	for op, u := range urls {
		a := do(t, c, methods[op], u, fwdHeader(bearer, "", ""), nil)
		if a.status != 429 || a.header.Get("Retry-After") != "3" {
			t.Errorf("%s: %d %v", op, a.status, a.header)
		}
		if a := do(t, c, methods[op], u, fwdHeader("bad", "", ""), nil); a.status != 401 || a.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s without a good bearer: %d", op, a.status)
		}
	}
	if a := upload(t, s, c, bearer, "POST", []byte("x"), "{}"); a.status != 429 {
		t.Errorf("upload fault: %d", a.status)
	}
}
