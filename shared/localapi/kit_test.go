package localapi

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/lpmtls/lpmtls/shared/cli"
)

// exports reads the banner's "export K=V ..." lines as a shell would (values plain or
// single-quoted).
func exports(t *testing.T, banner string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, line := range strings.Split(banner, "\n") {
		rest, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		for rest != "" {
			k, v, ok := strings.Cut(rest, "=")
			if !ok {
				t.Fatalf("bad export line %q", line)
			}
			if strings.HasPrefix(v, "'") {
				end := strings.Index(v[1:], "'")
				env[k], rest = v[1:1+end], strings.TrimPrefix(v[2+end:], " ")
			} else {
				val, more, _ := strings.Cut(v, " ")
				env[k], rest = val, more
			}
		}
	}
	return env
}

func TestSandboxKitAppliesWithTheCLI(t *testing.T) {
	var dir string
	t.Cleanup(func() { // runs after the sandbox's own cleanup has stopped it
		if _, err := os.Stat(dir); dir == "" || !os.IsNotExist(err) {
			t.Errorf("kit directory %q left behind: %v", dir, err)
		}
	})
	s, _ := startSandbox(t)
	kit := s.App().Kit
	dir = kit.Dir
	banner := s.Banner()
	env := exports(t, banner)
	for _, k := range []string{"LP_ACCOUNT_ID", "LP_USERNAME", "LP_PASSWORD", "LP_CSDS_URL", "SSL_CERT_FILE", KitPasswordEnv} {
		if env[k] == "" {
			t.Fatalf("banner does not export %s:\n%s", k, banner)
		}
	}
	if env["SSL_CERT_FILE"] != kit.CAFile || !strings.Contains(banner, "apply -f '"+kit.ConfigFile+"'") {
		t.Fatalf("banner:\n%s", banner)
	}
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		// A process reads SSL_CERT_FILE once, so in-process the CA comes by flag.
		code := cli.Main(context.Background(), append(args, "--ca-file", env["SSL_CERT_FILE"]), cli.Env{
			Stdout: &out, Stderr: &errb,
			Getenv:    func(k string) string { return env[k] },
			LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		})
		return code, out.String() + errb.String()
	}
	if code, out := run("apply", "-f", kit.ConfigFile); code != 0 || !strings.Contains(out, "Applied 2 change(s)") {
		t.Fatalf("apply: %d %s", code, out)
	}
	if code, out := run("apply", "-f", kit.ConfigFile); code != 0 || !strings.Contains(out, "No changes") {
		t.Fatalf("second apply: %d %s", code, out)
	}
	req := mustRequest(t, "POST", s.URL()+"/forward", strings.NewReader(`{}`))
	req.Header.Set("LP-forward-url", kit.URL)
	resp, body := do(t, localClient(t), req)
	if resp.StatusCode != 200 || resp.Header.Get("X-Echo-Client-Cn") != KitCommonName {
		t.Fatalf("forward to the kit's URL: %d %v %s", resp.StatusCode, resp.Header, body)
	}
}
