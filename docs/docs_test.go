// Package docs holds no code: its tests keep the documentation true to the tree. Every
// relative link and anchor must resolve, the template parameter table must match
// template.yaml, and the package map must name every package under shared/.
package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"gopkg.in/yaml.v3"
)

// repoRoot is the parent of this package's directory, where `go test` runs it.
const repoRoot = ".."

// documents are the files whose links are checked, relative to the repository root.
func documents(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md found")
	}
	files := []string{"README.md", "BENCHMARKS.md", "RELIABILITY.md"}
	for _, d := range docs {
		rel, err := filepath.Rel(repoRoot, d)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.ToSlash(rel))
	}
	return files
}

func read(t *testing.T, rel string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

var (
	fence       = regexp.MustCompile("^\\s*(```|~~~)")
	codeSpan    = regexp.MustCompile("`+[^`]*`+")
	inlineLink  = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	refLink     = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*(\S+)`)
	htmlAnchor  = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
	atxHeading  = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	headingLink = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	hasScheme   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// prose returns the lines of a markdown document outside fenced code blocks.
func prose(doc string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if fence.MatchString(line) {
			in = !in
			continue
		}
		if !in {
			out = append(out, line)
		}
	}
	return out
}

// slug is GitHub's anchor for a heading: lower case, every character that is not a
// letter, digit, space, hyphen or underscore dropped, spaces turned into hyphens.
func slug(heading string) string {
	heading = headingLink.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors lists every anchor a document offers: heading slugs (a repeated slug gets -1,
// -2, … as on GitHub) and explicit HTML anchors.
func anchors(doc string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, line := range prose(doc) {
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			out[m[1]] = true
		}
		m := atxHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		s := slug(m[2])
		if n := seen[s]; n > 0 {
			out[s+"-"+strconv.Itoa(n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

// links lists the link targets of a document, leaving out code.
func links(doc string) []string {
	var out []string
	for _, line := range prose(doc) {
		line = codeSpan.ReplaceAllString(line, "code")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
		if m := refLink.FindStringSubmatch(line); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

func TestSlug(t *testing.T) {
	for _, tc := range []struct{ heading, want string }{
		{"Quick start", "quick-start"},
		{"The `lpmtls` CLI", "the-lpmtls-cli"},
		{"Certificates and mappings as code (`mtls.yaml`)", "certificates-and-mappings-as-code-mtlsyaml"},
		{"`POST /mapping`", "post-mapping"},
		{"`ANY /forward`", "any-forward"},
		{"From sandbox to production", "from-sandbox-to-production"},
		{"1. Certificates — and mappings", "1-certificates--and-mappings"},
		{"Local API (`make run`)", "local-api-make-run"},
		{"Alarms [and](x.md) notifications", "alarms-and-notifications"},
		{"LP_SECRET_ID and cache_prefix", "lp_secret_id-and-cache_prefix"},
	} {
		if got := slug(tc.heading); got != tc.want {
			t.Errorf("slug(%q) = %q, want %q", tc.heading, got, tc.want)
		}
	}
}

func TestAnchorsNumberRepeatedHeadings(t *testing.T) {
	got := anchors("# A\n## Logs\n```\n## Logs\n```\n### Logs\n<a name=\"x-y\"></a>\n")
	for _, want := range []string{"a", "logs", "logs-1", "x-y"} {
		if !got[want] {
			t.Errorf("anchor %q missing from %v", want, got)
		}
	}
	if got["logs-2"] {
		t.Error("a heading inside a code fence counted")
	}
}

// TestLinksResolve: every relative link of the documentation names a file of the tree,
// and every #anchor a heading of the document it points into.
func TestLinksResolve(t *testing.T) {
	cache := map[string]map[string]bool{}
	for _, file := range documents(t) {
		t.Run(file, func(t *testing.T) {
			doc := read(t, file)
			if file == "README.md" && len(links(doc)) == 0 {
				t.Error("README.md has no links: the parser missed them")
			}
			for _, link := range links(doc) {
				if hasScheme.MatchString(link) {
					continue
				}
				target, anchor, _ := strings.Cut(link, "#")
				rel := file
				if target != "" {
					rel = filepath.ToSlash(filepath.Join(filepath.Dir(file), target))
					if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(rel))); err != nil {
						t.Errorf("%s: link %q: %s does not exist", file, link, rel)
						continue
					}
				}
				if anchor == "" {
					continue
				}
				if !strings.HasSuffix(rel, ".md") {
					t.Errorf("%s: link %q: an anchor into a file that is not markdown", file, link)
					continue
				}
				if cache[rel] == nil {
					cache[rel] = anchors(read(t, rel))
				}
				if !cache[rel][anchor] {
					t.Errorf("%s: link %q: %s has no heading with anchor #%s", file, link, rel, anchor)
				}
			}
		})
	}
}

// TestNoInternalMarkers: the README and docs/ speak to a reader, not to whoever edits
// them: no HTML comment markers, no references to work items.
func TestNoInternalMarkers(t *testing.T) {
	internal := regexp.MustCompile(`(?i)<!--|\bissue \d|\bthis round\b|\bthe reference marks\b|\bTODO\b|\bUNCONFIRMED\b`)
	for _, file := range documents(t) {
		if file == "RELIABILITY.md" || file == "BENCHMARKS.md" {
			continue // generated tables live between splice markers there
		}
		for i, line := range strings.Split(read(t, file), "\n") {
			if m := internal.FindString(line); m != "" {
				t.Errorf("%s:%d: %q", file, i+1, m)
			}
		}
	}
}

// templateParameter is what the parameter table states about one parameter.
type templateParameter struct {
	Type           string   `yaml:"Type"`
	Default        *string  `yaml:"Default"`
	AllowedValues  []string `yaml:"AllowedValues"`
	AllowedPattern string   `yaml:"AllowedPattern"`
	MinValue       *string  `yaml:"MinValue"`
	MaxValue       *string  `yaml:"MaxValue"`
}

// defaultCell is how the table writes a parameter's default.
func (p templateParameter) defaultCell() string {
	switch {
	case p.Default == nil:
		return "(required)"
	case *p.Default == "":
		return `""`
	default:
		return "`" + *p.Default + "`"
	}
}

// allowedCell is how the table writes what a parameter accepts: its AllowedValues, its
// range, its pattern (a | escaped, as a table cell needs), or — when anything goes.
func (p templateParameter) allowedCell() string {
	var parts []string
	if len(p.AllowedValues) > 0 {
		vals := make([]string, len(p.AllowedValues))
		for i, v := range p.AllowedValues {
			vals[i] = "`" + v + "`"
		}
		parts = append(parts, strings.Join(vals, ", "))
	}
	switch {
	case p.MinValue != nil && p.MaxValue != nil:
		parts = append(parts, *p.MinValue+"–"+*p.MaxValue)
	case p.MinValue != nil:
		parts = append(parts, "≥ "+*p.MinValue)
	case p.MaxValue != nil:
		parts = append(parts, "≤ "+*p.MaxValue)
	}
	if p.AllowedPattern != "" {
		parts = append(parts, "`"+strings.ReplaceAll(p.AllowedPattern, "|", `\|`)+"`")
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, "; ")
}

var paramRow = regexp.MustCompile("^\\|\\s*`([A-Za-z0-9]+)`\\s*\\|")

// splitRow splits a markdown table row into its cells, keeping escaped pipes in a cell.
func splitRow(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimSuffix(strings.TrimPrefix(row, "|"), "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(row); i++ {
		if row[i] == '\\' && i+1 < len(row) && row[i+1] == '|' {
			cur.WriteString(`\|`)
			i++
			continue
		}
		if row[i] == '|' {
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
			continue
		}
		cur.WriteByte(row[i])
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

// TestParameterTableMatchesTemplate: docs/configuration.md's parameter table names every
// parameter of template.yaml, once, with its default and what it accepts, and no other.
func TestParameterTableMatchesTemplate(t *testing.T) {
	var tmpl struct {
		Parameters map[string]templateParameter `yaml:"Parameters"`
	}
	// The short-form intrinsics (!Ref, !Sub …) elsewhere in the template decode as plain
	// values here; only Parameters is read.
	if err := yaml.Unmarshal([]byte(read(t, "template.yaml")), &tmpl); err != nil {
		t.Fatal(err)
	}
	if len(tmpl.Parameters) == 0 {
		t.Fatal("template.yaml has no Parameters")
	}

	const section = "## Template parameters"
	doc := read(t, "docs/configuration.md")
	_, table, ok := strings.Cut(doc, "\n"+section+"\n")
	if !ok {
		t.Fatalf("docs/configuration.md has no %q section", section)
	}
	if next := strings.Index(table, "\n## "); next >= 0 {
		table = table[:next]
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(table, "\n") {
		m := paramRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if _, dup := rows[m[1]]; dup {
			t.Errorf("parameter %s has two rows", m[1])
		}
		rows[m[1]] = splitRow(line)
	}

	names := make([]string, 0, len(tmpl.Parameters))
	for name := range tmpl.Parameters {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := tmpl.Parameters[name]
		cells, ok := rows[name]
		if !ok {
			t.Errorf("%s is in template.yaml but not in the table of docs/configuration.md: add the row\n| `%s` | %s | %s | … |",
				name, name, p.defaultCell(), p.allowedCell())
			continue
		}
		if len(cells) != 4 {
			t.Errorf("%s: row has %d cells, want 4 (parameter, default, allowed, meaning)", name, len(cells))
			continue
		}
		if cells[1] != p.defaultCell() {
			t.Errorf("%s: table default %s, template.yaml says %s", name, cells[1], p.defaultCell())
		}
		if cells[2] != p.allowedCell() {
			t.Errorf("%s: table allows %s, template.yaml says %s", name, cells[2], p.allowedCell())
		}
		if cells[3] == "" {
			t.Errorf("%s: no meaning given", name)
		}
	}
	for name := range rows {
		if _, ok := tmpl.Parameters[name]; !ok {
			t.Errorf("the table of docs/configuration.md has %s, which template.yaml lacks", name)
		}
	}
}

// TestPackageMapNamesEveryPackage: docs/development.md names every package directory
// under shared/, and every shared/ path the documentation names exists.
func TestPackageMapNamesEveryPackage(t *testing.T) {
	dev := read(t, "docs/development.md")
	err := filepath.WalkDir(filepath.Join(repoRoot, "shared"), func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == "testdata" {
			return filepath.SkipDir
		}
		goFiles, err := filepath.Glob(filepath.Join(path, "*.go"))
		if err != nil || len(goFiles) == 0 {
			return err
		}
		rel, err := filepath.Rel(repoRoot, path)
		if err != nil {
			return err
		}
		if name := "`" + filepath.ToSlash(rel) + "`"; !strings.Contains(dev, name) {
			t.Errorf("docs/development.md does not name the package %s", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	sharedPath := regexp.MustCompile("`(shared/[a-z0-9/]*[a-z0-9])`")
	for _, file := range documents(t) {
		for _, m := range sharedPath.FindAllStringSubmatch(read(t, file), -1) {
			if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(m[1]))); err != nil {
				t.Errorf("%s names %s, which does not exist", file, m[1])
			}
		}
	}
}

// Example_allowedCell shows the cell formats the table uses.
func Example_allowedCell() {
	lo, hi := "1", "100"
	fmt.Println(templateParameter{MinValue: &lo, MaxValue: &hi}.allowedCell())
	fmt.Println(templateParameter{AllowedValues: []string{"true", "false"}}.allowedCell())
	fmt.Println(templateParameter{AllowedPattern: "^$|^arn:.+$"}.allowedCell())
	// Output:
	// 1–100
	// `true`, `false`
	// `^$\|^arn:.+$`
}
