package lp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/p12"
)

const testP12Password = "p12-S3CRET-5150"

// testP12 is a self-signed client certificate as a p12; the fake server does not check it.
func testP12(t testing.TB, notAfter time.Time) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "brand-hooks"},
		NotBefore: notAfter.AddDate(-1, 0, 0), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	b, err := p12.Encode(key, leaf, nil, testP12Password)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUploadRequestAndExpiryFromP12(t *testing.T) {
	notAfter := time.Date(2027, 3, 4, 5, 6, 7, 0, time.UTC)
	file := testP12(t, notAfter)
	var meta map[string]any
	var gotFile []byte
	var method string
	f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
		method = r.Method
		_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p)
			switch p.FormName() {
			case "file":
				gotFile = b
				if p.Header.Get("Content-Type") != "application/x-pkcs12" || p.FileName() != "brand-hooks-2025.p12" {
					t.Errorf("file part header %v", p.Header)
				}
			case "certificate":
				if p.Header.Get("Content-Type") != "application/json" {
					t.Errorf("certificate part header %v", p.Header)
				}
				_ = json.Unmarshal(b, &meta)
			}
		}
		if r.URL.Path != "/mtls/account/90412233/certificates/by-file" {
			t.Errorf("path %s", r.URL.Path)
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(fixture(t, "upload_ok_null_expiry.json"))
	})
	up := CertificateUpload{Name: "brand-hooks-2025", Password: testP12Password, P12: file}
	got, err := f.c.UploadCertificate(context.Background(), f.auth("90412233"), up)
	if err != nil {
		t.Fatal(err)
	}
	if method != http.MethodPost || string(gotFile) != string(file) || meta["name"] != "brand-hooks-2025" ||
		meta["password"] != testP12Password || meta["id"] != nil {
		t.Errorf("request %s meta %v file %d bytes", method, meta, len(gotFile))
	}
	if got.ID != "7001002003" || !got.ExpiresAt.Equal(notAfter) {
		t.Errorf("certificate %+v: expiry must come from the p12 when LivePerson sends null", got)
	}

	got, err = f.c.ReplaceCertificate(context.Background(), f.auth("90412233"), "7001002003", up)
	if err != nil {
		t.Fatal(err)
	}
	if method != http.MethodPut || meta["id"] != float64(7001002003) {
		t.Errorf("replace sent %s %v", method, meta)
	}
}

func TestUploadRefusals(t *testing.T) {
	good := testP12(t, time.Now().AddDate(1, 0, 0))
	tests := []struct {
		name    string
		status  int
		body    string
		fixture string
		up      CertificateUpload
		kind    Kind
		noCall  bool
		mention string
	}{
		{name: "wrong password", up: CertificateUpload{Name: "a", Password: "nope", P12: good}, kind: KindBadRequest, noCall: true, mention: "password"},
		{name: "not a p12", up: CertificateUpload{Name: "a", Password: testP12Password, P12: []byte("junk")}, kind: KindBadRequest, noCall: true, mention: "PKCS#12"},
		{name: "no name", up: CertificateUpload{Password: testP12Password, P12: good}, kind: KindBadRequest, noCall: true},
		{name: "duplicate", status: 409, body: `{"code":409,"message":"a certificate named \"a\" already exists"}`, kind: KindBadRequest, mention: "already exists"},
		{name: "echoes password", status: 400, body: `{"message":"bad password ` + testP12Password + `"}`, kind: KindBadRequest},
		{name: "unauthorized", status: 401, body: `{}`, kind: KindAuth},
		{name: "throttled", status: 429, kind: KindThrottled},
		{name: "server", status: 502, kind: KindGateway},
		{name: "vault failed", status: 201, fixture: "upload_vault_failed.json", kind: KindGateway, mention: "vault"},
		{name: "unreadable", status: 201, body: `[]`, kind: KindGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
				calls++
				body := tt.body
				if tt.fixture != "" {
					body = string(fixture(t, tt.fixture))
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, body)
			})
			up := tt.up
			if up.P12 == nil && up.Name == "" {
				up = CertificateUpload{Name: "a", Password: testP12Password, P12: good}
			}
			_, err := f.c.UploadCertificate(context.Background(), f.auth("90412233"), up)
			if KindOf(err) != tt.kind {
				t.Fatalf("err %v, want kind %v", err, tt.kind)
			}
			if tt.noCall && calls != 0 {
				t.Errorf("a bad p12 reached LivePerson")
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
			e := err.(*Error)
			for _, secret := range []string{testP12Password, testBearer} {
				if strings.Contains(e.Error(), secret) || strings.Contains(string(e.Body), secret) {
					t.Errorf("error carries a secret: %v / %s", e, e.Body)
				}
			}
		})
	}
}

func TestActivate(t *testing.T) {
	for _, inBody := range []bool{false, true} {
		var gotURL string
		var gotBody map[string]any
		f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
			gotURL = r.URL.String()
			_ = json.NewDecoder(r.Body).Decode(&gotBody)
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write(fixture(t, "activate_ok.json"))
		}, func(o *Options) { o.ActivateFlagInBody = inBody })
		m, err := f.c.ActivateCertificate(context.Background(), f.auth("90412233"), "7001002003",
			Activation{ServiceName: "WEBHOOKS", URL: "https://api.brand.example/hooks/in?x=1", ValidateURL: true})

		if err != nil {
			t.Fatal(err)
		}
		want := MappingObject{ID: "8100200300", URL: "https://api.brand.example/hooks/in?x=1", Enable: true, ServiceID: "2",
			SiteID: "90412233", Name: "hooks-mapping-1", CertificationID: "7001002003"}
		if m != want {
			t.Errorf("mapping %+v", m)
		}
		wantURL := "/mtls/account/90412233/certificates/activate/7001002003?isValidateUrlEnabled=true"
		if inBody {
			wantURL = "/mtls/account/90412233/certificates/activate/7001002003"
			if gotBody["isValidateUrlEnabled"] != true {
				t.Errorf("body %v", gotBody)
			}
		} else if _, ok := gotBody["isValidateUrlEnabled"]; ok {
			t.Errorf("flag in the body too: %v", gotBody)
		}
		if gotURL != wantURL || gotBody["serviceName"] != "WEBHOOKS" {
			t.Errorf("request %s %v", gotURL, gotBody)
		}
	}
	f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("LP-message-from-transport", "failed")
		w.WriteHeader(http.StatusFailedDependency)
		_, _ = io.WriteString(w, `{"message":"could not reach https://api.brand.example/hooks/in?x=1"}`)
	})
	_, err := f.c.ActivateCertificate(context.Background(), f.auth("90412233"), "1",
		Activation{ServiceName: "WEBHOOKS", URL: "https://api.brand.example/hooks/in?x=1", ValidateURL: true})

	if KindOf(err) != KindTarget || strings.Contains(err.Error(), "x=1") {
		t.Errorf("424: %v", err)
	}
}

func TestMappingObjectsCalls(t *testing.T) {
	var got []*http.Request
	var bodies []string
	f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r)
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		w.Header().Set("ac-revision", "42")
		switch r.Method {
		case http.MethodGet:
			_, _ = w.Write(fixture(t, "mapping_objects_ok.json"))
		case http.MethodPost:
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, "["+string(fixture(t, "activate_ok.json"))+"]")
		case http.MethodPut:
			_, _ = w.Write(fixture(t, "activate_ok.json"))
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	ctx := context.Background()
	list, rev, err := f.c.ListMappingObjects(ctx, f.auth("90412233"))
	if err != nil {
		t.Fatal(err)
	}
	if rev != "42" || len(list) != 2 || list[1].ServiceID != "1" || list[1].CertificationID != "7001002004" || list[1].ID != "8100200301" {
		t.Fatalf("list %+v rev %q", list, rev)
	}
	obj := MappingObject{CertificationID: "7001002003", ServiceID: "2", Enable: true, URL: "https://api.brand.example/hooks/in?x=1",
		SiteID: "90412233", Name: "hooks-mapping-1"}
	created, err := f.c.CreateMappingObjects(ctx, f.auth("90412233"), []MappingObject{obj})
	if err != nil || len(created) != 1 || created[0].ID != "8100200300" {
		t.Fatalf("create %+v %v", created, err)
	}
	obj.ID = "8100200300"
	if _, err := f.c.UpdateMappingObject(ctx, f.auth("90412233"), obj, rev); err != nil {
		t.Fatal(err)
	}
	if err := f.c.DeleteMappingObject(ctx, f.auth("90412233"), "8100200300", rev); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GET /api/account/90412233/configuration/ac-common/mtls?v=3.0",
		"POST /api/account/90412233/configuration/ac-common/mtls?v=3.0",
		"PUT /api/account/90412233/configuration/ac-common/mtls/8100200300?v=3.0",
		"DELETE /api/account/90412233/configuration/ac-common/mtls/8100200300?v=3.0",
	}
	for i, r := range got {
		if s := r.Method + " " + r.URL.String(); s != want[i] {
			t.Errorf("call %d = %s, want %s", i, s, want[i])
		}
	}
	if got[2].Header.Get("If-Match") != "42" || got[3].Header.Get("If-Match") != "42" || got[1].Header.Get("If-Match") != "" {
		t.Errorf("If-Match not sent as expected")
	}
	// The documented create body: an array, ids as strings, no id.
	if bodies[1] != `[{"deleted":false,"url":"https://api.brand.example/hooks/in?x=1","enable":true,"serviceId":"2","siteId":"90412233","name":"hooks-mapping-1","certificationId":"7001002003"}]` {
		t.Errorf("create body %s", bodies[1])
	}

	// Path and version are configurable (UNCONFIRMED beyond create).
	f2 := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.String() != "/custom/90412233/mtls" {
			t.Errorf("url %s", r.URL)
		}
		_, _ = io.WriteString(w, `[]`)
	}, func(o *Options) { o.MappingObjectsPath = "/custom/{accountId}/mtls/"; o.MappingObjectsVersion = "-" })
	if _, _, err := f2.c.ListMappingObjects(ctx, f2.auth("90412233")); err != nil {
		t.Fatal(err)
	}
}

func TestServiceIDs(t *testing.T) {
	c := New(Options{})
	if id, ok := c.ServiceID("webhooks"); !ok || id != "2" || c.ServiceName("1") != "IDP" || c.ServiceName("9") != "" {
		t.Errorf("default table: %q %v %q", id, ok, c.ServiceName("1"))
	}
	c = New(Options{ServiceIDs: map[string]string{"Custom": "7"}})
	if id, ok := c.ServiceID("CUSTOM"); !ok || id != "7" {
		t.Errorf("custom table: %q %v", id, ok)
	}
	if _, ok := c.ServiceID("WEBHOOKS"); ok {
		t.Error("a configured table replaces the default")
	}
}
