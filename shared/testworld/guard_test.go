// The guard keeps the test world out of what ships: it reads the module's import graph
// with `go list -deps` and the imports of every non-test file, and fails naming the
// import chain that breaks a rule.
package testworld_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	testWorld = "shared/testworld"
	// sandbox is the local API, the one product binary that runs the test world (the
	// simulator stands in for LivePerson when no credentials are configured).
	sandbox = "cmd/local"
)

// harness holds the packages that exist to test, whose non-test files may use the test
// world as freely as test files do.
var harness = []string{testWorld, "e2e", "bench"}

// mustStayOut are the roots named in the rule, checked to exist so the guard cannot
// pass by looking at nothing.
var mustStayOut = []string{"functions/forward", "functions/mapping", "cmd/lpmtls"}

func TestTestWorldStaysOutOfProduct(t *testing.T) {
	root, module := moduleRoot(t)
	graph := importGraph(t, root, module)
	for _, p := range append(mustStayOut, sandbox) {
		if _, ok := graph[p]; !ok {
			t.Fatalf("go list did not report %s; the guard would check nothing", p)
		}
	}
	for _, v := range dependencyViolations(graph) {
		t.Error(v)
	}
}

func TestOnlyTestWorldImportsTesting(t *testing.T) {
	root, _ := moduleRoot(t)
	vs, err := testingImports(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Error(v)
	}
}

// TestGuardReports runs the rules on made-up graphs and trees, so a guard that stopped
// catching anything would fail here rather than pass quietly.
func TestGuardReports(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "guard", "graphs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name  string              `json:"name"`
		Graph map[string][]string `json:"graph"`
		Want  []string            `json:"want"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			got := dependencyViolations(tc.Graph)
			if !slices.Equal(got, tc.Want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.Want, "\n"))
			}
		})
	}
	t.Run("testing imports", func(t *testing.T) {
		got, err := testingImports(filepath.Join("testdata", "guard", "tree"))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{`shared/product/helper.go imports "testing"; only _test.go files and shared/testworld may`}
		if !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

// dependencyViolations applies the rule to graph (package → its non-test imports, paths
// relative to the module): no product package may depend on the test world, except
// cmd/local and the packages only it uses. Each message names the shortest chain.
func dependencyViolations(graph map[string][]string) []string {
	importers := map[string][]string{}
	for p, imps := range graph {
		for _, i := range imps {
			importers[i] = append(importers[i], p)
		}
	}
	// Go import graphs have no cycles, so the recursion ends; memo keeps it linear.
	memo := map[string]bool{}
	var onlySandbox func(p string) bool
	onlySandbox = func(p string) bool {
		if p == sandbox {
			return true
		}
		if v, ok := memo[p]; ok {
			return v
		}
		ok := len(importers[p]) > 0
		for _, i := range importers[p] {
			ok = ok && onlySandbox(i)
		}
		memo[p] = ok
		return ok
	}
	var out []string
	for _, p := range sortedKeys(graph) {
		if inAny(p, harness) {
			continue
		}
		chain := chainTo(graph, p, func(q string) bool { return within(q, testWorld) })
		if chain == nil || onlySandbox(p) {
			continue
		}
		msg := fmt.Sprintf("%s depends on the test world: %s", p, strings.Join(chain, " → "))
		var others []string
		for _, i := range importers[p] {
			if !onlySandbox(i) {
				others = append(others, i)
			}
		}
		slices.Sort(others)
		if len(others) > 0 {
			msg += fmt.Sprintf("; it is imported by %s, not by %s alone", strings.Join(others, ", "), sandbox)
		}
		out = append(out, msg+"; only "+sandbox+" and what it alone uses may import "+testWorld)
	}
	return out
}

// chainTo is the shortest import chain from p to a package that matches, or nil.
func chainTo(graph map[string][]string, p string, match func(string) bool) []string {
	prev := map[string]string{p: ""}
	queue := []string{p}
	for len(queue) > 0 {
		q := queue[0]
		queue = queue[1:]
		if q != p && match(q) {
			var chain []string
			for ; q != ""; q = prev[q] {
				chain = append(chain, q)
			}
			slices.Reverse(chain)
			return chain
		}
		imps := slices.Clone(graph[q])
		slices.Sort(imps)
		for _, i := range imps {
			if _, seen := prev[i]; !seen {
				prev[i] = q
				queue = append(queue, i)
			}
		}
	}
	return nil
}

// testingImports lists the non-test .go files under root, outside the test world, that
// import "testing". It parses files rather than asking go list so that files behind any
// build tag count too.
func testingImports(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			// The go tool skips these too; node_modules holds the SQS emulator.
			name := d.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			if within(rel, testWorld) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "testing" {
				out = append(out, fmt.Sprintf("%s imports %q; only _test.go files and %s may", rel, p, testWorld))
			}
		}
		return nil
	})
	return out, err
}

func moduleRoot(t *testing.T) (dir, module string) {
	t.Helper()
	out := goCmd(t, ".", "list", "-m", "-json")
	var m struct{ Path, Dir string }
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m.Dir, m.Path
}

// importGraph is every module package's non-test imports, from `go list -deps`, with
// paths relative to the module (imports outside it are dropped: they cannot lead back).
func importGraph(t *testing.T, root, module string) map[string][]string {
	t.Helper()
	out := goCmd(t, root, "list", "-deps", "-json=ImportPath,Imports", "./...")
	graph := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rel, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			continue
		}
		var imps []string
		for _, i := range p.Imports {
			if r, ok := strings.CutPrefix(i, module+"/"); ok {
				imps = append(imps, r)
			}
		}
		graph[rel] = imps
	}
	return graph
}

func goCmd(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func within(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

func inAny(p string, dirs []string) bool {
	return slices.ContainsFunc(dirs, func(d string) bool { return within(p, d) })
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
