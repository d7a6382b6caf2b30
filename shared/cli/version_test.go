package cli

import (
	"runtime/debug"
	"testing"
)

func TestVersionLine(t *testing.T) {
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"stamped", &debug.BuildInfo{GoVersion: "go1.24.1", Main: debug.Module{Version: "v1.3.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.time", Value: "2026-11-30T10:00:00Z"},
			{Key: "vcs.modified", Value: "false"}}},
			true, "lpmtls v1.3.0, revision 0123456789abcdef0123456789abcdef01234567 of 2026-11-30T10:00:00Z, go1.24.1"},
		{"dirty checkout", &debug.BuildInfo{GoVersion: "go1.24.1", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}},
			true, "lpmtls (devel), revision abc, with uncommitted changes, go1.24.1"},
		{"outside a checkout", &debug.BuildInfo{GoVersion: "go1.24.1"}, true,
			"lpmtls (devel), revision unknown (built outside a checkout), go1.24.1"},
		{"no build info", nil, false, "lpmtls: no build information in this binary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionLine(tt.bi, tt.ok); got != tt.want {
				t.Fatalf("%q, want %q", got, tt.want)
			}
		})
	}
}
