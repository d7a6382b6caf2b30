package allowlist

import (
	"strings"
	"testing"

	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

const origin = "https://127.0.0.1:8443"

// Every URL-shaped attempt of the shared table is refused here already: either its form
// (400 rows) or the list (403 rows). Header rows are shared/forward's.
func TestBypassTable(t *testing.T) {
	b := testenv.LoadBypass(t, origin)
	list, err := Parse(b.Allowed)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range b.Refused {
		if a.Code == "invalid_header" {
			continue
		}
		t.Run(a.Name, func(t *testing.T) {
			tg, err := CheckTarget(a.URL)
			switch a.Code {
			case "invalid_forward_url":
				if err == nil {
					t.Fatalf("form accepted: %+v", tg)
				}
			case "url_not_allowed":
				if err != nil {
					t.Fatalf("form refused (%v); the row expects the list to refuse it", err)
				}
				if list.Allows(tg) {
					t.Fatalf("allowed: %+v", tg)
				}
			default:
				t.Fatalf("unexpected code %s", a.Code)
			}
		})
	}
	for _, u := range b.Accepted {
		tg, err := CheckTarget(u)
		if err != nil || !list.Allows(tg) {
			t.Errorf("%s: refused (%v)", u, err)
		}
	}
}

func TestCheckTargetParts(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want Target
	}{
		{"https://a.example", Target{Host: "a.example", Port: "443"}},
		{"https://a.example?x=1", Target{Host: "a.example", Port: "443", RawQuery: "x=1"}},
		{"https://a.example:8443/p/q?x=%2F", Target{Host: "a.example", Port: "8443", Path: "/p/q", RawQuery: "x=%2F"}},
		{"https://[2001:db8::1]:9/p", Target{Host: "[2001:db8::1]", Port: "9", Path: "/p"}},
		{"https://10.0.0.1/", Target{Host: "10.0.0.1", Port: "443", Path: "/"}},
		{"https://xn--bcher-kva.example/a%20b", Target{Host: "xn--bcher-kva.example", Port: "443", Path: "/a%20b"}},
	} {
		got, err := CheckTarget(c.raw)
		if err != nil || got != c.want {
			t.Errorf("%s: %+v %v, want %+v", c.raw, got, err, c.want)
		}
	}
}

// The reasons say what is wrong without the URL, whose query may carry a token.
func TestReasonsNeverEchoTheURL(t *testing.T) {
	for _, raw := range []string{
		"https://u:secret-token@a.example/", "https://a.example/%zz?token=secret-token",
		"https://A.example/?token=secret-token", "https://a.example/../?token=secret-token",
	} {
		_, err := CheckTarget(raw)
		if err == nil || strings.Contains(err.Error(), "secret-token") || strings.Contains(err.Error(), "a.example") {
			t.Errorf("%s: %v", raw, err)
		}
	}
}

func TestEntries(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want Entry
		bad  bool
	}{
		{raw: " HTTPS://Hooks.Example.com/In/ ", want: Entry{Host: "hooks.example.com", Port: "443", Path: "/In/"}},
		{raw: "https://a.example:443", want: Entry{Host: "a.example", Port: "443"}},
		{raw: "https://a.example/in?x=1", bad: true},
		{raw: "https://a.example/in/../x", bad: true},
		{raw: "https://a.example./", bad: true},
		{raw: "https://u@a.example/", bad: true},
		{raw: "http://a.example/", bad: true},
	} {
		got, err := ParseEntry(c.raw)
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("%q: %+v %v", c.raw, got, err)
		}
	}
	if _, err := Parse([]string{"https://ok.example/", "https://bad.example/?q"}); err == nil || !strings.HasPrefix(err.Error(), "entry 2 ") {
		t.Fatalf("Parse: %v", err)
	}
}

func TestPathBoundary(t *testing.T) {
	for _, c := range []struct {
		path, prefix string
		want         bool
	}{
		{"/hooks", "/hooks", true}, {"/hooks/in", "/hooks", true}, {"/hooksevil", "/hooks", false},
		{"/hooks/", "/hooks/", true}, {"/hooks", "/hooks/", false}, {"/Hooks/in", "/hooks/", false},
		{"", "", true}, {"", "/", true}, {"/x", "", true}, {"", "/hooks", false},
	} {
		if got := under(c.path, c.prefix); got != c.want {
			t.Errorf("under(%q, %q) = %v", c.path, c.prefix, got)
		}
	}
	if (List{}).Allows(Target{Host: "any.example", Port: "443"}) != true {
		t.Fatal("an empty list must allow every well-formed target")
	}
}
