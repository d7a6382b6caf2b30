// Package mtlsconf is certificates and mappings as code: it reads a declarative file
// (mtls.yaml), compares it with what LivePerson holds, and makes LivePerson match.
// Certificates are uploaded or replaced, mappings created or repointed; nothing is
// ever deleted. Every step is idempotent and the plan is recomputed from LivePerson's
// state on each run, so a run that stopped part-way is finished by the next one.
package mtlsconf

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/lpmtls/lpmtls/shared/p12"
)

// File is the declarative configuration.
type File struct {
	// Version is the format version; 1.
	Version int `yaml:"version"`
	// AccountID, when set, must be the account of the credentials: a guard against
	// applying one brand's file to another's account.
	AccountID    string        `yaml:"accountId"`
	Certificates []CertSpec    `yaml:"certificates"`
	Mappings     []MappingSpec `yaml:"mappings"`

	// Path is where the file was read from; p12 paths are relative to its directory.
	Path string `yaml:"-"`
}

// CertSpec declares one certificate: a name in LivePerson and the p12 file behind it.
type CertSpec struct {
	Name string `yaml:"name"`
	// P12 is the file's path, relative to the configuration file.
	P12 string `yaml:"p12"`
	// PasswordEnv names the environment variable holding the p12's password. The file
	// never holds a password.
	PasswordEnv string `yaml:"passwordEnv"`
}

// MappingSpec declares (service, url) → certificate.
type MappingSpec struct {
	Service string `yaml:"service"`
	// URL is matched exactly by LivePerson, query string included.
	URL string `yaml:"url"`
	// Certificate is a name declared above, or one already in the account.
	Certificate string `yaml:"certificate"`
	// ValidateURL asks LivePerson to call the URL with the certificate when it creates
	// the mapping (it refuses the mapping when that call fails).
	ValidateURL bool `yaml:"validateUrl"`
}

// Key is the mapping's identity in LivePerson: one certificate per (service, url).
func (m MappingSpec) Key() string { return m.Service + " " + m.URL }

// MaxFileSize bounds the configuration file.
const MaxFileSize = 1 << 20

var (
	certNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	envNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	serviceRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)
)

// Load reads and validates a file. Every problem is reported at once.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if len(raw) > MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxFileSize)
	}
	return Parse(path, raw)
}

// Parse decodes and validates file contents read from path. Every problem is reported
// at once, each with its line.
func Parse(path string, raw []byte) (*File, error) {
	f, w, err := decodeFile(raw)
	if errors.Is(err, errEmpty) {
		return nil, fmt.Errorf("%s is empty", path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s is not valid YAML: %w", path, err)
	}
	f.Path = path
	problems := append(w.problems, f.validate(w)...)
	if len(problems) > 0 {
		sortByLine(problems)
		return nil, &FileError{Path: path, Problems: problems}
	}
	return f, nil
}

// FileError lists every problem of a file.
type FileError struct {
	Path     string
	Problems []string
}

func (e *FileError) Error() string {
	return fmt.Sprintf("%s: %s", e.Path, strings.Join(e.Problems, "; "))
}

// validate checks the rules beyond the format; w gives the lines.
func (f *File) validate(w *walker) []string {
	var p []string
	add := func(path, format string, args ...any) {
		if !w.isBad(path) {
			p = append(p, fmt.Sprintf("line %d: ", w.line(path))+fmt.Sprintf(format, args...))
		}
	}
	if f.Version != 1 {
		add("version", "version must be 1")
	}
	if len(f.Certificates) == 0 && len(f.Mappings) == 0 && !w.isBad("certificates") && !w.isBad("mappings") {
		add("certificates", "declares no certificates and no mappings")
	}
	names := map[string]bool{}
	for i, c := range f.Certificates {
		at := fmt.Sprintf("certificates[%d]", i)
		switch {
		case c.Name == "":
			add(at+".name", "%s: name is required", at)
		case !certNameRE.MatchString(c.Name):
			add(at+".name", "%s: name %q must be 1-128 letters, digits, _ . - (starting with a letter or digit)", at, c.Name)
		case names[c.Name]:
			add(at+".name", "%s: name %q is declared twice", at, c.Name)
		}
		names[c.Name] = true
		if c.P12 == "" {
			add(at+".p12", "%s: p12 (the file's path) is required", at)
		}
		switch {
		case c.PasswordEnv == "":
			add(at+".passwordEnv", "%s: passwordEnv (the environment variable holding the p12 password) is required", at)
		case !envNameRE.MatchString(c.PasswordEnv):
			add(at+".passwordEnv", "%s: passwordEnv must be an environment variable name, not a password", at)
		}
	}
	keys := map[string]bool{}
	for i, m := range f.Mappings {
		at := fmt.Sprintf("mappings[%d]", i)
		if !serviceRE.MatchString(m.Service) {
			add(at+".service", "%s: service must be a service name such as WEBHOOKS or IDP", at)
		}
		if u, err := url.Parse(m.URL); err != nil || u.Scheme != "https" || u.Host == "" {
			add(at+".url", "%s: url must be an absolute https URL", at)
		}
		if m.Certificate == "" {
			add(at+".certificate", "%s: certificate is required", at)
		}
		if keys[m.Key()] {
			add(at, "%s: service %s and this url are mapped twice (LivePerson allows one certificate per service and url)", at, m.Service)
		}
		keys[m.Key()] = true
	}
	return p
}

// LocalCert is a declared certificate with its p12 opened.
type LocalCert struct {
	Spec CertSpec
	// Path is the resolved p12 path.
	Path     string
	Data     []byte
	Password string
	Bundle   *p12.Bundle
	// Fingerprint is the SHA-256 of the leaf certificate (public data, safe to store).
	Fingerprint string
}

// NotAfter is the certificate's expiry.
func (l *LocalCert) NotAfter() time.Time { return l.Bundle.NotAfter() }

// OpenCertificates reads every declared p12 with the password from its variable.
// Every problem is reported at once, and nothing is sent anywhere before this succeeds.
func (f *File) OpenCertificates(lookupEnv func(string) (string, bool)) ([]*LocalCert, error) {
	var out []*LocalCert
	var problems []string
	for _, spec := range f.Certificates {
		lc, err := OpenCertificate(spec, filepath.Dir(f.Path), lookupEnv)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		out = append(out, lc)
	}
	if len(problems) > 0 {
		return nil, &FileError{Path: f.Path, Problems: problems}
	}
	return out, nil
}

// OpenCertificate reads one p12 (relative paths against dir).
// lookupEnv is os.LookupEnv in production: an empty password is legal, an unset
// variable is not.
func OpenCertificate(spec CertSpec, dir string, lookupEnv func(string) (string, bool)) (*LocalCert, error) {
	path := spec.P12
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	password, ok := lookupEnv(spec.PasswordEnv)
	if !ok {
		return nil, fmt.Errorf("certificate %s: environment variable %s (its p12 password) is not set", spec.Name, spec.PasswordEnv)
	}
	data, err := readP12(path)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", spec.Name, err)
	}
	b, err := p12.Open(data, password)
	if err != nil {
		hint := ""
		if errors.Is(err, p12.ErrPassword) {
			hint = " (check " + spec.PasswordEnv + ")"
		}
		return nil, fmt.Errorf("certificate %s: %s: %w%s", spec.Name, path, err, hint)
	}
	sum := sha256.Sum256(b.Leaf.Raw)
	return &LocalCert{Spec: spec, Path: path, Data: data, Password: password, Bundle: b, Fingerprint: hex.EncodeToString(sum[:])}, nil
}

func readP12(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the p12 file %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, p12.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the p12 file %s: %w", path, err)
	}
	return data, nil
}
