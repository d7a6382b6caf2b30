package lp

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testPairs = []Mapping{
	{ServiceName: "WEBHOOKS", URL: "https://api.brand.example/hooks/in?x=1"},
	{ServiceName: "IDP", URL: "https://idp.brand.example/oauth/token"},
}

func TestCheckMappings(t *testing.T) {
	want := []MappingResult{
		{ServiceName: "WEBHOOKS", URL: "https://api.brand.example/hooks/in?x=1", Exist: true},
		{ServiceName: "IDP", URL: "https://idp.brand.example/oauth/token", Exist: false},
	}
	// All three answer shapes mean the same: "exist", "exist" after a UTF-8 BOM, and the
	// global v2 form's "doExist".
	for _, fx := range []string{"mapping_ok.json", "mapping_ok_bom.json", "mapping_doexist.json"} {
		t.Run(fx, func(t *testing.T) {
			var gotReq *http.Request
			var gotBody []byte
			f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
				gotReq = r
				gotBody, _ = io.ReadAll(r.Body)
				_, _ = w.Write(fixture(t, fx))
			})
			got, err := f.c.CheckMappings(context.Background(), f.auth("9041/2233"), testPairs)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("results = %+v", got)
			}
			if gotReq.Method != http.MethodPost || gotReq.URL.EscapedPath() != "/api/account/9041%2F2233/checks/serviceUrlMappings" {
				t.Errorf("request = %s %s", gotReq.Method, gotReq.URL.EscapedPath())
			}
			if gotReq.Header.Get("Authorization") != "Bearer "+testBearer || gotReq.Header.Get("Content-Type") != "application/json" {
				t.Errorf("headers = %v", gotReq.Header)
			}
			var sent []map[string]string
			if err := json.Unmarshal(gotBody, &sent); err != nil || len(sent) != 2 || len(sent[0]) != 2 ||
				sent[0]["serviceName"] != "WEBHOOKS" || sent[0]["url"] != testPairs[0].URL {
				t.Errorf("body = %s", gotBody)
			}
		})
	}
}

func TestMappingResultUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    MappingResult
		wantErr bool
	}{
		{"exist", `{"serviceName":"S","url":"https://u/","exist":true}`, MappingResult{"S", "https://u/", true}, false},
		{"doExist", `{"serviceName":"S","url":"https://u/","accountId":"1","doExist":true}`, MappingResult{"S", "https://u/", true}, false},
		{"doExist false", `{"serviceName":"S","url":"https://u/","doExist":false}`, MappingResult{"S", "https://u/", false}, false},
		{"exist wins over doExist", `{"serviceName":"S","exist":false,"doExist":true}`, MappingResult{ServiceName: "S"}, false},
		{"neither", `{"serviceName":"S"}`, MappingResult{ServiceName: "S"}, false},
		{"null leaves the value", `null`, MappingResult{ServiceName: "kept"}, false},
		{"wrong type", `{"doExist":"yes"}`, MappingResult{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := MappingResult{}
			if tc.in == "null" {
				got.ServiceName = "kept"
			}
			err := json.Unmarshal([]byte(tc.in), &got)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCheckMappingsOptions(t *testing.T) {
	var path string
	f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		_, _ = w.Write([]byte(`[]`))
	}, func(o *Options) {
		o.MappingService = ServiceAccountConfigReadWrite
		o.MappingPath = "/custom/{accountId}/map"
	})
	if _, err := f.c.CheckMappings(context.Background(), f.auth("42"), testPairs); err != nil {
		t.Fatal(err)
	}
	if path != "/custom/42/map" {
		t.Errorf("path = %q", path)
	}
	// No pairs: nothing to ask, and the gateway's rate budget is spared.
	path = ""
	res, err := f.c.CheckMappings(context.Background(), f.auth("42"), nil)
	if err != nil || len(res) != 0 || path != "" {
		t.Errorf("empty pairs: %v %v, called %q", res, err, path)
	}
	_, err = f.c.CheckMappings(context.Background(), Auth{Domains: Domains{}, AccountID: "42", Bearer: testBearer}, testPairs)
	if KindOf(err) != KindDiscovery {
		t.Errorf("missing service: %v", err)
	}
}

func TestCheckMappingsErrors(t *testing.T) {
	tests := []struct {
		name      string
		h         http.HandlerFunc
		wantKind  Kind
		wantRetry time.Duration
		wantMsg   string
	}{
		{"401", answer(401, fixture(t, "error_wrapper.json")), KindAuth, 0, "Bad credentials"},
		{"403", answer(403, nil), KindAuth, 0, "HTTP 403"},
		{"400 with WWW-Authenticate", answer(400, nil, "WWW-Authenticate", `Bearer error="invalid_token"`), KindAuth, 0, "HTTP 400"},
		{"429", answer(429, nil, "Retry-After", "3"), KindThrottled, 3 * time.Second, ""},
		{"429 without Retry-After", answer(429, nil), KindThrottled, 0, ""},
		{"500", answer(500, []byte(`{"message":"boom"}`)), KindGateway, 0, "boom"},
		{"503", answer(503, nil), KindGateway, 0, "HTTP 503"},
		{"400", answer(400, []byte(`{"message":"bad pairs"}`)), KindBadRequest, 0, "bad pairs"},
		{"404", answer(404, nil), KindBadRequest, 0, "HTTP 404"},
		{"200 unparseable", answer(200, []byte(`{"not":"an array"}`)), KindGateway, 0, "not a JSON array"},
		{"200 null", answer(200, []byte(`null`)), KindGateway, 0, "not a JSON array"},
		{"echoes bearer", answer(401, []byte(`{"message":"token `+testBearer+` rejected"}`), "X-Echo", testBearer), KindAuth, 0, "[redacted]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeLP(t, tc.h)
			_, err := f.c.CheckMappings(context.Background(), f.auth("90412233"), testPairs)
			e := asError(t, err)
			if e.Kind != tc.wantKind || e.RetryAfter != tc.wantRetry || e.Op != "mapping" || e.Status == 0 {
				t.Errorf("err = %+v; want kind %v retry %v", e, tc.wantKind, tc.wantRetry)
			}
			if !strings.Contains(e.Message, tc.wantMsg) {
				t.Errorf("message %q lacks %q", e.Message, tc.wantMsg)
			}
			assertNoSecrets(t, err)
		})
	}
}

func TestValidServiceName(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"WEBHOOKS", true}, {"idp_2.v-1", true}, {strings.Repeat("a", 100), true},
		{"", false}, {strings.Repeat("a", 101), false}, {"WEB HOOKS", false}, {"a/b", false},
		{"Ümlaut", false}, {"a\r\nb", false}, {"a:b", false},
	} {
		if got := ValidServiceName(tt.name); got != tt.want {
			t.Errorf("ValidServiceName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
