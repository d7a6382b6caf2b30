package mtlsconf

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The file's format, in the documented key names. The walker below checks a parsed
// YAML tree against it and builds the File, so that every problem of a file is
// reported at once, each with its line, in the words of the documentation rather than
// in Go's (yaml.v3's strict decoding stops at the first problem and names Go types).
var (
	topKeys     = []string{"version", "accountId", "certificates", "mappings"}
	certKeys    = []string{"name", "p12", "passwordEnv"}
	mappingKeys = []string{"service", "url", "certificate", "validateUrl"}
)

// walker collects problems and the line of each element, by path
// ("certificates[0]", "certificates[0].name").
type walker struct {
	problems []string
	lines    map[string]int
	// bad holds the paths of elements of the wrong type: the rules about their value
	// would only repeat the problem.
	bad map[string]bool
}

// fail reports that the element at path has the wrong type.
func (w *walker) fail(path string, line int, format string, args ...any) {
	if w.bad == nil {
		w.bad = map[string]bool{}
	}
	w.bad[path] = true
	w.add(line, format, args...)
}

// isBad reports whether path or an element holding it has the wrong type.
func (w *walker) isBad(path string) bool {
	if w.bad["the file"] {
		return true
	}
	for p := path; p != ""; {
		if w.bad[p] {
			return true
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return false
}

func (w *walker) add(line int, format string, args ...any) {
	w.problems = append(w.problems, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
}

// decodeFile parses raw and walks it. A YAML syntax error is the only problem reported
// alone: nothing after it can be read.
func decodeFile(raw []byte) (*File, *walker, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, errEmpty
		}
		return nil, nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	w := &walker{lines: map[string]int{}}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		w.add(extra.Line, "a second YAML document (after ---): the file holds one configuration")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil, errEmpty
		}
		root = root.Content[0]
	}
	f := &File{}
	w.mapping(root, "the file", topKeys, func(key string, v *yaml.Node) {
		switch key {
		case "version":
			f.Version = w.integer(v, "version")
		case "accountId":
			f.AccountID = w.str(v, "accountId")
		case "certificates":
			w.list(v, "certificates", "a list of certificates (- name: …, p12: …, passwordEnv: …)", func(i int, item *yaml.Node) {
				f.Certificates = append(f.Certificates, w.certSpec(item, fmt.Sprintf("certificates[%d]", i)))
			})
		case "mappings":
			w.list(v, "mappings", "a list of mappings (- service: …, url: …, certificate: …)", func(i int, item *yaml.Node) {
				f.Mappings = append(f.Mappings, w.mappingSpec(item, fmt.Sprintf("mappings[%d]", i)))
			})
		}
	})
	return f, w, nil
}

func (w *walker) certSpec(item *yaml.Node, at string) CertSpec {
	var c CertSpec
	w.mapping(item, at, certKeys, func(key string, v *yaml.Node) {
		switch key {
		case "name":
			c.Name = w.str(v, at+".name")
		case "p12":
			c.P12 = w.str(v, at+".p12")
		case "passwordEnv":
			c.PasswordEnv = w.str(v, at+".passwordEnv")
		}
	})
	return c
}

func (w *walker) mappingSpec(item *yaml.Node, at string) MappingSpec {
	var m MappingSpec
	w.mapping(item, at, mappingKeys, func(key string, v *yaml.Node) {
		switch key {
		case "service":
			m.Service = w.str(v, at+".service")
		case "url":
			m.URL = w.str(v, at+".url")
		case "certificate":
			m.Certificate = w.str(v, at+".certificate")
		case "validateUrl":
			m.ValidateURL = w.boolean(v, at+".validateUrl")
		}
	})
	return m
}

var errEmpty = errors.New("is empty")

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// kindName is a node's kind in the documentation's words.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping (key: value)"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!null":
		return "empty"
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return n.Value
	}
	return strconv.Quote(n.Value)
}

// mapping checks that n is a mapping of known keys, each at most once, and calls each
// for every known key's value.
func (w *walker) mapping(n *yaml.Node, at string, known []string, each func(key string, v *yaml.Node)) {
	n = resolve(n)
	w.lines[at] = n.Line
	if n.Kind != yaml.MappingNode {
		w.fail(at, n.Line, "%s must be a mapping with the keys %s, not %s", at, strings.Join(known, ", "), kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		key := k.Value
		if k.Kind != yaml.ScalarNode {
			w.add(k.Line, "%s: a key must be one of %s", at, strings.Join(known, ", "))
			continue
		}
		if first, dup := seen[key]; dup {
			w.add(k.Line, "%s: %s is given twice (first on line %d)", strings.Replace(at, "the file", "top level", 1), key, first)
			continue
		}
		seen[key] = k.Line
		if !slices.Contains(known, key) {
			where := at + ": "
			if at == "the file" {
				where = "top level: "
			}
			msg := fmt.Sprintf("%sunknown key %q (the keys are %s)", where, key, strings.Join(known, ", "))
			if s := closest(key, known); s != "" {
				msg += "; did you mean " + s + "?"
			}
			if strings.EqualFold(key, "password") || strings.EqualFold(key, "pasword") {
				msg += " (the file never holds a password: passwordEnv names the variable that does)"
			}
			w.add(k.Line, "%s", msg)
			continue
		}
		path := at + "." + key
		if at == "the file" {
			path = key
		}
		w.lines[path] = k.Line
		each(key, v)
	}
}

func (w *walker) list(n *yaml.Node, at, what string, each func(i int, item *yaml.Node)) {
	n = resolve(n)
	w.lines[at] = n.Line
	if isNull(n) {
		return // "mappings:" with nothing under it declares none
	}
	if n.Kind != yaml.SequenceNode {
		w.fail(at, n.Line, "%s must be %s, not %s", at, what, kindName(n))
		return
	}
	for i, item := range n.Content {
		each(i, item)
	}
}

// str reads a scalar as text; a number such as an account id is its digits. Empty is "".
func (w *walker) str(n *yaml.Node, at string) string {
	n = resolve(n)
	if isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		w.fail(at, n.Line, "%s must be a single value, not %s", at, kindName(n))
		return ""
	}
	return n.Value
}

func (w *walker) integer(n *yaml.Node, at string) int {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		if v, err := strconv.Atoi(n.Value); err == nil {
			return v
		}
	}
	w.fail(at, n.Line, "%s must be a whole number, not %s", at, kindName(n))
	return 0
}

func (w *walker) boolean(n *yaml.Node, at string) bool {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	}
	w.fail(at, n.Line, "%s must be true or false, not %s", at, kindName(n))
	return false
}

// line is where path is in the file: the element itself, else its nearest parent.
func (w *walker) line(path string) int {
	for p := path; p != ""; {
		if l, ok := w.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 1
}

// closest is the known key a misspelt one most likely meant: same letters ignoring
// case, a prefix of it, or at most two edits away.
func closest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		lk, lkey := strings.ToLower(k), strings.ToLower(key)
		d := editDistance(lkey, lk)
		if len(lkey) >= 3 { // a misspelt start of a longer key: pasword for passwordEnv
			pre := min(editDistance(lkey, lk[:min(len(lk), len(lkey))]), editDistance(lkey, lk[:min(len(lk), len(lkey)+1)]))
			d = min(d, pre+1)
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// sortByLine orders problems by their line, keeping the order within a line.
func sortByLine(problems []string) {
	lineOf := func(p string) int {
		n, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(p, ":", 2)[0], "line "))
		return n
	}
	sort.SliceStable(problems, func(i, j int) bool { return lineOf(problems[i]) < lineOf(problems[j]) })
}
