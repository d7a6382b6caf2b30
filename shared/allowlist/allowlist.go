// Package allowlist decides which forward targets FORWARD_ALLOWED_URLS permits.
//
// The target URL travels to LivePerson exactly as the caller wrote it (it is part of the
// certificate mapping key), and the gateway parses it with its own URL parser. A check
// on our reading of the URL is therefore only sound when every common parser reads it
// the same way. So instead of rewriting URLs, CheckTarget accepts only URLs in one plain
// form, where host, port and path cannot be read two ways, and refuses the rest with a
// reason: no user information, a lower-case ASCII host (international names in punycode)
// without percent-encoding or a trailing dot, a plain decimal port, and a path without
// dot segments, empty segments, backslashes, percent-encoded '.', '/', '\', '%' or
// control characters, or escapes that are not UTF-8 (overlong forms). Entries are then
// compared part by part: host exactly, port exactly (443 when absent), path as a
// case-sensitive prefix ending on a '/' boundary.
package allowlist

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Target is a forward URL accepted by CheckTarget, split into the parts a match uses.
type Target struct {
	// Host is lower case; an IPv6 literal keeps its brackets.
	Host string
	// Port is the effective port: "443" when the URL names none.
	Port string
	// Path is the escaped path as written ("" when the URL has none).
	Path     string
	RawQuery string
}

const scheme = "https://"

// CheckTarget applies the rules in the package comment to raw. The error says what is
// wrong without repeating the URL (its query may hold a token).
func CheckTarget(raw string) (Target, error) {
	return parse(raw, false)
}

// Entry is one FORWARD_ALLOWED_URLS prefix.
type Entry struct {
	Host, Port, Path string
}

// ParseEntry reads one configured prefix under the target rules, except that the scheme
// and host may be in any case (a configuration is not an attack). An entry has no query
// and no fragment: it names a scheme, host, port and path prefix.
func ParseEntry(raw string) (Entry, error) {
	raw = strings.TrimSpace(raw)
	if strings.Contains(raw, "?") {
		return Entry{}, errors.New("must not have a query (an entry is https://host[:port][/path-prefix])")
	}
	t, err := parse(raw, true)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Host: t.Host, Port: t.Port, Path: t.Path}, nil
}

// Allows reports whether t falls under e.
func (e Entry) Allows(t Target) bool {
	return t.Host == e.Host && t.Port == e.Port && under(t.Path, e.Path)
}

// under is the path rule: a prefix ending in '/' matches what starts with it; any other
// prefix matches itself and what continues it after a '/'. "/hooks" thus allows
// "/hooks", "/hooks/in" and "/hooks?x", never "/hooksevil".
func under(path, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(path, prefix)
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// List is FORWARD_ALLOWED_URLS parsed; empty allows every URL CheckTarget accepts.
type List []Entry

// Parse reads every entry; the error names the first bad one by position (1-based),
// never by value, since an entry could carry credentials.
func Parse(entries []string) (List, error) {
	l := make(List, 0, len(entries))
	for i, raw := range entries {
		e, err := ParseEntry(raw)
		if err != nil {
			return nil, fmt.Errorf("entry %d %w", i+1, err)
		}
		l = append(l, e)
	}
	return l, nil
}

// MustParse is Parse for entries known to be valid, such as a test's literals: it
// panics on a bad one.
func MustParse(entries ...string) List {
	l, err := Parse(entries)
	if err != nil {
		panic("allowlist: " + err.Error())
	}
	return l
}

// Allows reports whether some entry allows t; an empty list allows everything.
func (l List) Allows(t Target) bool {
	if len(l) == 0 {
		return true
	}
	for _, e := range l {
		if e.Allows(t) {
			return true
		}
	}
	return false
}

// parse splits raw by hand rather than with net/url, whose Host is already unescaped
// ("api%2ebrand.example" reads as "api.brand.example") and whose leniency is the very
// ambiguity being excluded. lenient lower-cases scheme and host first (entries only).
func parse(raw string, lenient bool) (Target, error) {
	for i := 0; i < len(raw); i++ {
		switch b := raw[i]; {
		case b <= ' ' || b == 0x7f:
			return Target{}, errors.New("must not contain white space or control characters")
		case b >= 0x80:
			return Target{}, errors.New("must be ASCII: percent-encode other characters in the path and query, and write an international host name in punycode (xn--…)")
		case b == '\\':
			return Target{}, errors.New(`must not contain a backslash`)
		case b == '#':
			return Target{}, errors.New("must not have a fragment")
		}
	}
	if len(raw) < len(scheme) || !strings.EqualFold(raw[:len(scheme)], scheme) {
		return Target{}, errors.New("must be an absolute https:// URL")
	}
	if !lenient && raw[:len(scheme)] != scheme {
		return Target{}, errors.New("must start with https:// in lower case")
	}
	rest := raw[len(scheme):]
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, rest := rest[:end], rest[end:]
	if lenient {
		authority = strings.ToLower(authority)
	}
	host, port, err := checkAuthority(authority)
	if err != nil {
		return Target{}, err
	}
	path, query, _ := strings.Cut(rest, "?")
	if err := checkPath(path); err != nil {
		return Target{}, err
	}
	if err := checkEscapes(query, "query"); err != nil {
		return Target{}, err
	}
	return Target{Host: host, Port: port, Path: path, RawQuery: query}, nil
}

func checkAuthority(a string) (host, port string, err error) {
	switch {
	case a == "":
		return "", "", errors.New("has no host")
	case strings.Contains(a, "@"):
		return "", "", errors.New("must not contain user information (user@host)")
	case strings.Contains(a, "%"):
		return "", "", errors.New("must not percent-encode the host")
	}
	var after string
	if a[0] == '[' {
		i := strings.IndexByte(a, ']')
		if i < 0 {
			return "", "", errors.New("has an unterminated IPv6 literal")
		}
		host, after = a[:i+1], a[i+1:]
		ip := net.ParseIP(host[1 : len(host)-1])
		if ip == nil || !strings.Contains(host, ":") {
			return "", "", errors.New("has an invalid IPv6 literal")
		}
		if host != strings.ToLower(host) {
			return "", "", errors.New("must write the host in lower case")
		}
	} else {
		host, after = a, ""
		if i := strings.IndexByte(a, ':'); i >= 0 {
			host, after = a[:i], a[i:]
		}
		if err := checkHostName(host); err != nil {
			return "", "", err
		}
	}
	port = "443"
	if after != "" {
		if after[0] != ':' {
			return "", "", errors.New("has characters after the host that are not a port")
		}
		p := after[1:]
		n, err := strconv.Atoi(p)
		switch {
		case p == "":
			return "", "", errors.New("has an empty port")
		case err != nil || strings.TrimLeft(p, "0123456789") != "":
			return "", "", errors.New("has a port that is not a decimal number")
		case p[0] == '0' || n < 1 || n > 65535:
			return "", "", errors.New("has a port outside 1-65535 or with a leading zero")
		}
		port = p
	}
	return host, port, nil
}

// checkHostName accepts a lower-case DNS name or a dotted-decimal IPv4 address.
func checkHostName(h string) error {
	switch {
	case h == "":
		return errors.New("has no host")
	case strings.HasSuffix(h, "."):
		return errors.New("must not end the host with a dot")
	case len(h) > 253:
		return errors.New("has a host name longer than 253 characters")
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return errors.New("has an empty or over-long label in the host")
		}
		for i := 0; i < len(l); i++ {
			switch c := l[i]; {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			case c == '-' && i > 0 && i < len(l)-1:
			case c >= 'A' && c <= 'Z':
				return errors.New("must write the host in lower case")
			default:
				return errors.New("has a host that is not a DNS name (letters, digits and inner '-' per label) or an IPv4 address")
			}
		}
	}
	// A numeric last label makes URL parsers read the host as an IPv4 address, in forms
	// (127.1, 0x7f.0.0.1, 2130706433, octal 010.0.0.1) that differ between parsers;
	// only the dotted-decimal form is unambiguous.
	last := labels[len(labels)-1]
	if strings.TrimLeft(last, "0123456789") == "" || strings.HasPrefix(last, "0x") && strings.TrimLeft(last[2:], "0123456789abcdef") == "" {
		ip := net.ParseIP(h)
		if ip == nil || ip.To4() == nil || ip.String() != h {
			return errors.New("has a numeric host that is not a dotted-decimal IPv4 address")
		}
	}
	return nil
}

// checkPath refuses what servers resolve differently: dot segments (also with a ";"
// parameter, which some servers strip before resolving), empty segments, percent-encoded
// separators, dots, '%' (double encoding) or control characters, and escapes that do not
// decode to UTF-8.
func checkPath(p string) error {
	if p == "" {
		return nil
	}
	if strings.Contains(p, "//") {
		return errors.New("must not have an empty path segment (//)")
	}
	if err := checkEscapes(p, "path"); err != nil {
		return err
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			continue
		}
		switch d := unhex(p[i+1])<<4 | unhex(p[i+2]); {
		case d == '.' || d == '/' || d == '\\' || d == '%' || d < 0x20 || d == 0x7f:
			return errors.New(`must not percent-encode '.', '/', '\', '%' or control characters in the path`)
		}
	}
	// Overlong forms such as %c0%ae have been read as '.' by some servers; valid UTF-8
	// has one reading.
	if d, err := url.PathUnescape(p); err != nil || !utf8.ValidString(d) {
		return errors.New("must percent-encode only valid UTF-8 in the path")
	}
	for _, seg := range strings.Split(p[1:], "/") {
		name, _, _ := strings.Cut(seg, ";")
		if name == "." || name == ".." {
			return errors.New("must not have . or .. path segments")
		}
	}
	return nil
}

// checkEscapes requires every '%' to start a two-digit hex escape.
func checkEscapes(s, part string) error {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && (i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2])) {
			return fmt.Errorf("has an invalid percent-escape in the %s", part)
		}
	}
	return nil
}

func ishex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
