package headers

import (
	"net/http"
	"reflect"
	"testing"
)

func TestHopByHop(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"Connection", true}, {"connection", true}, {"Proxy-Connection", true},
		{"Keep-Alive", true}, {"Proxy-Authenticate", true}, {"Proxy-Authorization", true},
		{"TE", true}, {"Te", true}, {"Trailer", true}, {"transfer-encoding", true},
		{"Upgrade", true},
		{"Authorization", false}, {"Content-Length", false}, {"Trailers", false}, {"", false},
	} {
		if got := HopByHop(tt.name); got != tt.want {
			t.Errorf("HopByHop(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestConnectionListed(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    http.Header
		want map[string]bool
	}{
		{"none", http.Header{"Content-Type": {"text/plain"}}, nil},
		{"empty entries", http.Header{"Connection": {" , ,"}}, nil},
		{"several values and lists", http.Header{"Connection": {"close, x-private", "Foo"}},
			map[string]bool{"Close": true, "X-Private": true, "Foo": true}},
		{"non-canonical key", http.Header{"connection": {"x-a"}}, map[string]bool{"X-A": true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := ConnectionListed(tt.h); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Named = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStripHopByHop(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in, out http.Header
	}{
		{
			name: "everything hop-by-hop",
			in: http.Header{
				"Connection":          {"close, x-private", "Foo"},
				"X-Private":           {"1"},
				"Foo":                 {"2"},
				"Keep-Alive":          {"timeout=5"},
				"Proxy-Authorization": {"Basic abc"},
				"Proxy-Authenticate":  {"Basic"},
				"Proxy-Connection":    {"keep-alive"},
				"Te":                  {"trailers"},
				"Trailer":             {"X"},
				"Transfer-Encoding":   {"chunked"},
				"Upgrade":             {"websocket"},
				"transfer-encoding":   {"chunked"}, // hand-built, non-canonical
				"Content-Type":        {"text/plain"},
				"Authorization":       {"Bearer x"},
			},
			out: http.Header{"Content-Type": {"text/plain"}, "Authorization": {"Bearer x"}},
		},
		{
			name: "named under a non-canonical key",
			in:   http.Header{"connection": {"X-Conn-Only"}, "x-conn-only": {"1"}, "X-Keep": {"k"}},
			out:  http.Header{"X-Keep": {"k"}},
		},
		{
			name: "nothing to strip",
			in:   http.Header{"Cookie": {"a=1"}},
			out:  http.Header{"Cookie": {"a=1"}},
		},
		{name: "nil", in: nil, out: nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			StripHopByHop(tt.in)
			if !reflect.DeepEqual(tt.in, tt.out) {
				t.Errorf("got %v, want %v", tt.in, tt.out)
			}
		})
	}
}
