package mtlsconf

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any file is either refused with an error, or accepted with every rule of
// the format holding.
func FuzzParse(f *testing.F) {
	for _, p := range []string{filepath.Join("testdata", "full.yaml"), filepath.Join("..", "..", "examples", "mtls.yaml")} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("version: 1\ncertificates: [{name: a, p12: a.p12, passwordEnv: A}]\nmappings: [{service: IDP, url: 'https://x/', certificate: a}]\n"))
	f.Add([]byte("version: 1\n---\nversion: 2\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		file, err := Parse("mtls.yaml", raw)
		if err != nil {
			return
		}
		if file.Version != 1 || (len(file.Certificates) == 0 && len(file.Mappings) == 0) {
			t.Fatalf("accepted %q as %+v", raw, file)
		}
		if p := file.validate(&walker{lines: map[string]int{}}); len(p) != 0 {
			t.Fatalf("accepted %q with problems %v", raw, p)
		}
		names := map[string]bool{}
		for _, c := range file.Certificates {
			if names[c.Name] || !envNameRE.MatchString(c.PasswordEnv) || c.P12 == "" {
				t.Fatalf("accepted %+v", c)
			}
			names[c.Name] = true
		}
		keys := map[string]bool{}
		for _, m := range file.Mappings {
			if keys[m.Key()] || m.Certificate == "" {
				t.Fatalf("accepted %+v", m)
			}
			keys[m.Key()] = true
		}
	})
}
