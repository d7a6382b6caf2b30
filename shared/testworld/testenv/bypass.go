package testenv

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bypass is the table of allow-list and header bypass attempts in
// shared/allowlist/testdata/bypass.json. shared/allowlist, shared/forward and the
// end-to-end tests all read it, so every layer is held to one list.
type Bypass struct {
	// Allowed is FORWARD_ALLOWED_URLS for the table; Accepted are URLs it must let through.
	Allowed  []string        `json:"allowed"`
	Accepted []string        `json:"accepted"`
	Refused  []BypassAttempt `json:"refused"`
}

// BypassAttempt is one forward that must be refused with Status and Code.
type BypassAttempt struct {
	Name        string            `json:"name"`
	URL         string            `json:"url"`
	Headers     map[string]string `json:"headers"`
	Override    string            `json:"override"`
	ServiceName string            `json:"serviceName"`
	Status      int               `json:"status"`
	Code        string            `json:"code"`
}

// LoadBypass reads the table with {origin} and {port} filled in from origin, which must
// be https://127.0.0.1:port: a test passes its own target's, so that an attempt that got
// through would really arrive somewhere.
func LoadBypass(t testing.TB, origin string) *Bypass {
	t.Helper()
	port, ok := strings.CutPrefix(origin, "https://127.0.0.1:")
	if !ok || port == "" || strings.Contains(port, "/") {
		t.Fatalf("LoadBypass: origin %q is not https://127.0.0.1:port", origin)
	}
	raw, err := os.ReadFile(filepath.Join(RepoRoot(t), "shared", "allowlist", "testdata", "bypass.json"))
	if err != nil {
		t.Fatal(err)
	}
	var b Bypass
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	fill := strings.NewReplacer("{origin}", origin, "{port}", port).Replace
	for i := range b.Allowed {
		b.Allowed[i] = fill(b.Allowed[i])
	}
	for i := range b.Accepted {
		b.Accepted[i] = fill(b.Accepted[i])
	}
	for i := range b.Refused {
		b.Refused[i].URL = fill(b.Refused[i].URL)
	}
	return &b
}
