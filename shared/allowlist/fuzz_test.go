package allowlist

import (
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// FuzzAllows holds the matcher to an independent, deliberately paranoid reading: when
// an entry allows a target, net/url must read the target the same way (host, port, no
// user information, path, query), and the path must stay under the entry's prefix
// however a server decodes it (up to three rounds of percent-decoding, '\' read as '/',
// dot segments resolved). Any URL CheckTarget accepts must also be a valid entry.
func FuzzAllows(f *testing.F) {
	b := testenv.LoadBypass(f, origin)
	for _, a := range b.Refused {
		for _, e := range b.Allowed {
			f.Add(a.URL, e)
		}
	}
	for _, u := range b.Accepted {
		f.Add(u, b.Allowed[0])
	}
	f.Fuzz(func(t *testing.T, target, entry string) {
		tg, err := CheckTarget(target)
		if err != nil {
			return
		}
		u, err := url.Parse(target)
		if err != nil {
			t.Fatalf("accepted, but net/url refuses it: %v", err)
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		host := strings.TrimSuffix(strings.TrimPrefix(tg.Host, "["), "]")
		if u.Scheme != "https" || u.User != nil || u.Hostname() != host || port != tg.Port || u.RawQuery != tg.RawQuery || u.Fragment != "" || u.Opaque != "" {
			t.Fatalf("net/url reads %q as %#v, CheckTarget as %+v", target, u, tg)
		}
		if dp, err := url.PathUnescape(tg.Path); err != nil || dp != u.Path {
			t.Fatalf("path %q decodes to %q, net/url says %q", tg.Path, dp, u.Path)
		}
		if !strings.Contains(target, "?") {
			if e, err := ParseEntry(target); err != nil || e.Host != tg.Host || e.Port != tg.Port || e.Path != tg.Path {
				t.Fatalf("accepted target is not an entry: %+v %v", e, err)
			}
		}
		e, err := ParseEntry(entry)
		if err != nil || !e.Allows(tg) {
			return
		}
		if !strings.EqualFold(e.Host, host) && e.Host != tg.Host {
			t.Fatalf("host %q allowed by %q", tg.Host, e.Host)
		}
		if !paranoidUnder(tg.Path, e.Path) {
			t.Fatalf("%q escapes %q under some decoding", tg.Path, e.Path)
		}
	})
}

// paranoidUnder decodes and resolves p the ways servers have been seen to, and checks
// every reading stays under prefix.
func paranoidUnder(p, prefix string) bool {
	readings := []string{p}
	cur := p
	for i := 0; i < 3; i++ {
		d, err := url.PathUnescape(cur)
		if err != nil || d == cur {
			break
		}
		cur = d
		readings = append(readings, cur)
	}
	for _, r := range readings {
		for _, s := range []string{r, strings.ReplaceAll(r, `\`, "/")} {
			clean := path.Clean("/" + s)
			if s == "" {
				clean = ""
			}
			pre := prefix
			if pre != "" && pre != "/" {
				pre = path.Clean(prefix)
			}
			if !under(clean, pre) && !under(clean+"/", pre+"/") {
				return false
			}
		}
	}
	return true
}
