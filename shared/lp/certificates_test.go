package lp

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func TestListCertificates(t *testing.T) {
	var gotReq *http.Request
	f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
		gotReq = r
		_, _ = w.Write(fixture(t, "certificates_ok.json"))
	})
	got, err := f.c.ListCertificates(context.Background(), f.auth("90412233"))
	if err != nil {
		t.Fatal(err)
	}
	if gotReq.Method != http.MethodGet || gotReq.URL.Path != "/mtls/account/90412233/certificates" ||
		gotReq.Header.Get("Authorization") != "Bearer "+testBearer {
		t.Errorf("request = %s %s %v", gotReq.Method, gotReq.URL.Path, gotReq.Header)
	}
	want := []struct {
		id, name  string
		available bool
		expires   time.Time
	}{
		{"7001002003", "brand-hooks-2025", true, time.Time{}},
		{"7001002004", "brand-idp", true, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"7001002005", "brand-old", false, time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d certificates (deleted ones must be left out): %+v", len(got), got)
	}
	for i, w := range want {
		c := got[i]
		if string(c.ID) != w.id || c.Name != w.name || c.Available() != w.available || !c.ExpiresAt.Equal(w.expires) {
			t.Errorf("cert %d = %+v, want %+v", i, c, w)
		}
	}
}

func TestListCertificatesErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		hdr    []string
		kind   Kind
	}{
		{"unauthorized", 401, `{"error":{"message":"bad token ` + testBearer + `","internalCode":10}}`, nil, KindAuth},
		{"www-authenticate", 400, `{}`, []string{"WWW-Authenticate", "Bearer"}, KindAuth},
		{"throttled", 429, ``, []string{"Retry-After", "7"}, KindThrottled},
		{"server error", 503, `<html><title>503 Service Unavailable</title></html>`, nil, KindGateway},
		{"not an array", 200, `{"certificates":[]}`, nil, KindGateway},
		{"bad id", 200, `[{"id":{"x":1}}]`, nil, KindGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeLP(t, answer(tt.status, []byte(tt.body), tt.hdr...))
			_, err := f.c.ListCertificates(context.Background(), f.auth("90412233"))
			e := asError(t, err)
			if e.Kind != tt.kind || e.Op != "certificates" {
				t.Errorf("kind = %v op = %q (%v)", e.Kind, e.Op, err)
			}
			if tt.kind == KindThrottled && e.RetryAfter != 7*time.Second {
				t.Errorf("RetryAfter = %v", e.RetryAfter)
			}
			assertNoSecrets(t, err)
		})
	}
}

func TestParseExpiry(t *testing.T) {
	jan := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1798761600000", jan, true},
		{"1798761600", jan, true},
		{"1.7987616e12", jan, true},
		{"2027-01-01T00:00:00Z", jan, true},
		{"2027-01-01T02:00:00+02:00", jan, true},
		{"2027-01-01T00:00:00", jan, true},
		{"2027-01-01 00:00:00", jan, true},
		{"2027-01-01", jan, true},
		{"", time.Time{}, false},
		{"0", time.Time{}, false},
		{"-5", time.Time{}, false},
		{"Jan 1, 2027", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseExpiry(tt.in)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCertificateJSONRoundTrip(t *testing.T) {
	for _, in := range []string{
		`{"id":1,"deleted":false,"name":"a","displayName":"","siteId":"","status":"Available","expirationDate":"2027-01-01T00:00:00Z"}`,
		`{"id":"x-1","deleted":false,"name":"a","displayName":"","siteId":"","status":"","expirationDate":null}`,
		`{"id":2,"deleted":false,"name":"a","displayName":"","siteId":"","status":"","expirationDate":"someday"}`,
	} {
		var c Certificate
		if err := json.Unmarshal([]byte(in), &c); err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(c)
		if err != nil || string(out) != in {
			t.Errorf("round trip of %s = %s, %v", in, out, err)
		}
	}
}
