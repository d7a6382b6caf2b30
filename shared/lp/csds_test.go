package lp

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestDiscover(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string // {{HOST}} is replaced by the server's host:port
		wantKind Kind   // KindUnknown means success
		wantMsg  string
		mapping  string // Options.MappingService, when set
	}{
		{name: "happy", status: 200, body: string(fixture(t, "csds_ok.json"))},
		{name: "happy with UTF-8 BOM", status: 200, body: string(fixture(t, "csds_ok_bom.json"))},
		{name: "non-2xx with BOM", status: 503, body: "\xEF\xBB\xBF" + `{"message":"down for maintenance"}`, wantKind: KindDiscovery, wantMsg: "HTTP 503: down for maintenance"},
		{name: "empty", status: 200, body: string(fixture(t, "csds_empty.json")), wantKind: KindDiscovery, wantMsg: "no services"},
		{name: "absent", status: 200, body: string(fixture(t, "csds_absent.json")), wantKind: KindDiscovery, wantMsg: "no baseURIs"},
		{name: "not json", status: 200, body: "<html>", wantKind: KindDiscovery, wantMsg: "not the expected JSON"},
		{name: "non-2xx", status: 503, body: `{"message":"down for maintenance"}`, wantKind: KindDiscovery, wantMsg: "HTTP 503: down for maintenance"},
		{name: "404", status: 404, body: "", wantKind: KindDiscovery, wantMsg: "HTTP 404"},
		{name: "scheme in needed host", status: 200, body: `{"baseURIs":[{"service":"mtlsGateway","baseURI":"https://a.example"}]}`, wantKind: KindDiscovery, wantMsg: "mtlsGateway is not a host"},
		{name: "path in needed host", status: 200, body: `{"baseURIs":[{"service":"agentVep","baseURI":"a.example/x"}]}`, wantKind: KindDiscovery, wantMsg: "agentVep"},
		{name: "whitespace in needed host", status: 200, body: `{"baseURIs":[{"service":"sentinel","baseURI":"a .example"}]}`, wantKind: KindDiscovery, wantMsg: "sentinel"},
		{name: "userinfo in needed host", status: 200, body: `{"baseURIs":[{"service":"sentinel","baseURI":"u@a.example"}]}`, wantKind: KindDiscovery, wantMsg: "sentinel"},
		{name: "only unusable unrelated", status: 200, body: `{"baseURIs":[{"service":"other","baseURI":"http://x/y"}]}`, wantKind: KindDiscovery, wantMsg: "no usable"},
		{name: "no mtlsGateway", status: 200, body: `{"baseURIs":[{"service":"agentVep","baseURI":"a.example"},{"service":"sentinel","baseURI":"a.example"}]}`, wantKind: KindDiscovery, wantMsg: "lists no mtlsGateway"},
		{name: "no login service", status: 200, body: `{"baseURIs":[{"service":"mtlsGateway","baseURI":"a.example"},{"service":"sentinel","baseURI":"a.example"}]}`, wantKind: KindDiscovery, wantMsg: "lists no agentVep"},
		{name: "no mapping service", status: 200, mapping: "mtlsMapping", body: string(fixture(t, "csds_ok.json")), wantKind: KindDiscovery, wantMsg: "lists no mtlsMapping"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got *http.Request
			var f *fakeLP
			f = newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
				got = r.Clone(context.Background())
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(strings.ReplaceAll(tc.body, "{{HOST}}", f.host)))
			})
			c := f.c
			if tc.mapping != "" {
				o := f.c.opts
				o.MappingService = tc.mapping
				c = New(o)
			}
			d, err := c.Discover(context.Background(), "90412233", AuthLogin)
			if got == nil {
				t.Fatal("CSDS was not called")
			}
			if got.Method != http.MethodGet || got.URL.Path != "/api/account/90412233/service/baseURI.json" ||
				got.URL.RawQuery != "version=1.0" {
				t.Errorf("request = %s %s", got.Method, got.URL)
			}
			if got.Header.Get("Accept") != "application/json" || got.Header.Get("Authorization") != "" {
				t.Errorf("headers = %v", got.Header)
			}
			if tc.wantKind == KindUnknown {
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range []string{ServiceAgentVep, ServiceMTLSGateway, ServiceSentinel, ServiceAccountConfigReadWrite} {
					if d[s] != f.host {
						t.Errorf("d[%s] = %q, want %q", s, d[s], f.host)
					}
				}
				if _, ok := d["someLegacyThing"]; ok {
					t.Error("an unusable baseURI of an unrelated service was kept")
				}
				return
			}
			e := asError(t, err)
			if e.Kind != tc.wantKind || e.Op != "csds" || !strings.Contains(e.Message, tc.wantMsg) {
				t.Errorf("err = %+v, want kind %v with %q", e, tc.wantKind, tc.wantMsg)
			}
			if !errors.Is(err, ErrDiscovery) {
				t.Error("errors.Is(err, ErrDiscovery) = false")
			}
		})
	}
}

func TestDiscoverEscapesAccount(t *testing.T) {
	var raw string
	f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
		raw = r.URL.EscapedPath()
		_, _ = w.Write([]byte(`{"baseURIs":[]}`))
	})
	_, _ = f.c.Discover(context.Background(), "a/b?c", AuthLogin)
	if raw != "/api/account/a%2Fb%3Fc/service/baseURI.json" {
		t.Errorf("path = %q", raw)
	}
}

func TestValidHost(t *testing.T) {
	for h, want := range map[string]bool{
		"va.agentvep.liveperson.net": true, "127.0.0.1:8443": true, "[::1]:443": true,
		"": false, "https://x": false, "x/y": false, "x y": false, "x\n": false, "u@x": false,
		"x?y": false, "x#y": false, ":443": false, "x:port": false, `x\y`: false,
	} {
		if got := validHost(h); got != want {
			t.Errorf("validHost(%q) = %v, want %v", h, got, want)
		}
	}
}

// A CSDS URL that cannot make a request is a discovery failure, not a panic.
func TestDiscoverUnbuildableRequest(t *testing.T) {
	c := New(Options{CSDSURL: "https://bad host.example"})
	_, err := c.Discover(context.Background(), "1", AuthLogin)
	if e := asError(t, err); e.Kind != KindDiscovery || e.Op != "csds" {
		t.Fatalf("err = %+v, want a csds discovery failure", e)
	}
}
