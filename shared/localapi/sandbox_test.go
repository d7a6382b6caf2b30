package localapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/mapping"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestMain removes the binary TestCommand builds.
func TestMain(m *testing.M) { testenv.Main(m) }

// startSandbox runs the local API in-process in sandbox mode on a kernel-chosen port.
func startSandbox(t *testing.T) (*Server, *testenv.LockedBuffer) {
	t.Helper()
	logs := &testenv.LockedBuffer{}
	s, err := Start(context.Background(), StartOptions{Addr: "127.0.0.1:0", Getenv: mapEnv(nil), LogOutput: logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		if err := <-s.Done(); err != nil {
			t.Error(err)
		}
		// The generated sandbox password never reaches the logs.
		if pw := s.App().Config.Password; pw == "" || strings.Contains(logs.String(), pw) {
			t.Errorf("sandbox password missing or logged")
		}
	})
	if s.App().Mode != ModeSandbox {
		t.Fatalf("mode %s", s.App().Mode)
	}
	return s, logs
}

// localClient talks to the local API only: no proxy, whatever the environment says.
func localClient(t *testing.T) *http.Client {
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// printedRequests parses the curl lines of a banner.
func printedRequests(t *testing.T, banner string) []*http.Request {
	t.Helper()
	var reqs []*http.Request
	for _, line := range strings.Split(banner, "\n") {
		if !strings.HasPrefix(line, "curl ") {
			continue
		}
		req, err := parseCurl(line)
		if err != nil {
			t.Fatalf("%v in %s", err, line)
		}
		reqs = append(reqs, req)
	}
	if len(reqs) != 2 {
		t.Fatalf("banner has %d curl commands, want 2:\n%s", len(reqs), banner)
	}
	return reqs
}

// checkPrinted runs the banner's two requests (forward, then mapping) and checks what
// the banner promises: the forward went through mTLS to the echo target, and the mapping
// check shows one configured and one missing pair.
func checkPrinted(t *testing.T, c *http.Client, banner string) {
	t.Helper()
	reqs := printedRequests(t, banner)

	resp, body := do(t, c, reqs[0])
	if resp.StatusCode != 200 || string(body) != `{"hello":"mtls"}` {
		t.Fatalf("forward: %d %s", resp.StatusCode, body)
	}
	if cn := resp.Header.Get("X-Echo-Client-Cn"); cn != "WEBHOOKS" {
		t.Fatalf("forward: X-Echo-Client-Cn %q (the target saw no mapped client certificate)", cn)
	}
	if resp.Header.Get("X-Echo-Path") != "/hooks/in?x=1" {
		t.Fatalf("forward: target path %q", resp.Header.Get("X-Echo-Path"))
	}

	resp, body = do(t, c, reqs[1])
	if resp.StatusCode != 200 {
		t.Fatalf("mapping: %d %s", resp.StatusCode, body)
	}
	var res mapping.Result
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if res.AccountID != SandboxAccountID || len(res.Mappings) != 2 || !res.Mappings[0].Configured ||
		res.Mappings[1].Configured || res.AllConfigured {
		t.Fatalf("mapping: %s", body)
	}
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestSandboxPrintedRequests(t *testing.T) {
	s, _ := startSandbox(t)
	banner := s.Banner()
	if !strings.Contains(banner, "listening on "+s.URL()) || !strings.Contains(banner, "mode: sandbox") {
		t.Fatalf("banner:\n%s", banner)
	}
	for _, e := range s.App().Examples() {
		if !strings.Contains(banner, e.Curl(s.URL())+"\n") {
			t.Fatalf("banner lacks %s", e.Curl(s.URL()))
		}
	}
	checkPrinted(t, localClient(t), banner)
}

func TestSandboxRoutes(t *testing.T) {
	s, _ := startSandbox(t)
	sim := s.App().Sim
	c := localClient(t)
	forwardTo := func(method, target, contentType string, body []byte) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, s.URL()+"/forward", bytes.NewReader(body))
		req.Header.Set("LP-forward-url", target)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return do(t, c, req)
	}

	t.Run("unknown route", func(t *testing.T) {
		resp, body := do(t, c, mustRequest(t, "GET", s.URL()+"/nope", nil))
		if resp.StatusCode != 404 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		checkError(t, resp, body, "not_found")
	})

	t.Run("binary body round trip", func(t *testing.T) {
		target := sim.TargetURL("/bin")
		sim.AddMapping("WEBHOOKS", target)
		payload := make([]byte, 64<<10)
		_, _ = rand.Read(payload)
		for _, ct := range []string{"application/octet-stream", ""} {
			resp, body := forwardTo("PUT", target, ct, payload)
			if resp.StatusCode != 200 || !bytes.Equal(body, payload) {
				t.Fatalf("content type %q: %d, %d bytes back, equal=%v", ct, resp.StatusCode, len(body), bytes.Equal(body, payload))
			}
			if resp.Header.Get("X-Echo-Method") != "PUT" {
				t.Fatalf("method at target %q", resp.Header.Get("X-Echo-Method"))
			}
		}
	})

	t.Run("cookies come back as separate Set-Cookie headers", func(t *testing.T) {
		target := sim.TargetURL("/cookies")
		sim.AddMapping("WEBHOOKS", target)
		resp, body := forwardTo("GET", target, "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		want := []string{
			"a=1; Path=/; Secure; HttpOnly",
			"b=2; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
			"c=3; Path=/cookies; SameSite=Strict",
		}
		if got := resp.Header.Values("Set-Cookie"); !reflect.DeepEqual(got, want) {
			t.Fatalf("Set-Cookie %q", got)
		}
	})

	t.Run("unmapped target is refused", func(t *testing.T) {
		resp, body := forwardTo("POST", s.App().UnmappedURL, "application/json", []byte(`{}`))
		if resp.StatusCode != 502 || resp.Header.Get("LP-Error-Source") != "liveperson" {
			t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
		}
	})
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestStartErrors(t *testing.T) {
	t.Run("busy port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		_, err = Start(context.Background(), StartOptions{Addr: ln.Addr().String(), Getenv: mapEnv(nil), Logger: discardLogger()})
		var inUse *AddrInUseError
		if !errors.As(err, &inUse) || !errors.Is(err, syscall.EADDRINUSE) ||
			err.Error() != ln.Addr().String()+" is in use; set -addr or LPMTLS_LOCAL_ADDR" {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("bad configuration", func(t *testing.T) {
		_, err := Start(context.Background(), StartOptions{Addr: "127.0.0.1:0", Logger: discardLogger(),
			Getenv: mapEnv(map[string]string{"LP_ACCOUNT_ID": "90412233", "LP_PASSWORD": "not-shown-anywhere"})})
		if err == nil || !strings.Contains(err.Error(), "invalid configuration") || strings.Contains(err.Error(), "not-shown-anywhere") {
			t.Fatalf("err %v", err)
		}
	})
}

// parseCurl reads the curl lines Example.Curl prints: single-quoted words, -X, -H, -d
// and the URL; -sS is ignored.
func parseCurl(line string) (*http.Request, error) {
	words, err := shellWords(line)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 || words[0] != "curl" {
		return nil, errors.New("not a curl command")
	}
	method, url, body := "GET", "", ""
	var headers [][2]string
	for i := 1; i < len(words); i++ {
		w := words[i]
		next := func() (string, error) {
			if i+1 >= len(words) {
				return "", fmt.Errorf("%s needs a value", w)
			}
			i++
			return words[i], nil
		}
		switch {
		case w == "-sS":
		case w == "-X" || w == "-H" || w == "-d":
			v, err := next()
			if err != nil {
				return nil, err
			}
			switch w {
			case "-X":
				method = v
			case "-H":
				k, val, ok := strings.Cut(v, ": ")
				if !ok {
					return nil, fmt.Errorf("header %q", v)
				}
				headers = append(headers, [2]string{k, val})
			case "-d":
				body = v
			}
		case strings.HasPrefix(w, "-"):
			return nil, fmt.Errorf("unknown option %s", w)
		default:
			url = w
		}
	}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	for _, h := range headers {
		req.Header.Add(h[0], h[1])
	}
	return req, nil
}

func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quoted:
			if ch == '\'' {
				quoted = false
			} else {
				cur.WriteByte(ch)
			}
		case ch == '\'':
			quoted, inWord = true, true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// commandTimeout bounds every wait on the built command, so a hang fails the test with
// what the command printed instead of running into the global test timeout.
const commandTimeout = 30 * time.Second

// TestCommand runs the built cmd/local as `make run` would.
func TestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := testenv.BuildPackage(t, "./cmd/local")

	t.Run("serves the printed requests and stops on SIGTERM", func(t *testing.T) {
		cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
		cmd.Env = cleanEnv()
		var stderr testenv.LockedBuffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := false
		t.Cleanup(func() {
			if !exited {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
		lines := make(chan string)
		stop := make(chan struct{})
		t.Cleanup(func() { close(stop) })
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				select {
				case lines <- sc.Text():
				case <-stop:
					return
				}
			}
		}()
		// The banner is one write ending with the Ctrl-C line.
		var banner strings.Builder
		listening := false
		deadline := time.After(commandTimeout)
	banner:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break banner
				}
				banner.WriteString(line + "\n")
				listening = listening || strings.Contains(line, "listening on http://127.0.0.1:")
				if strings.HasPrefix(line, "Ctrl-C") {
					break banner
				}
			case <-deadline:
				t.Fatalf("no complete banner within %v; stdout:\n%s\nstderr:\n%s", commandTimeout, banner.String(), stderr.String())
			}
		}
		if !listening {
			t.Fatalf("no listening line; stdout:\n%s\nstderr:\n%s", banner.String(), stderr.String())
		}
		checkPrinted(t, localClient(t), banner.String())

		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		deadline = time.After(commandTimeout)
	drain: // to EOF before Wait
		for {
			select {
			case _, ok := <-lines:
				if !ok {
					break drain
				}
			case <-deadline:
				t.Fatalf("still running %v after SIGTERM; stderr:\n%s", commandTimeout, stderr.String())
			}
		}
		err = cmd.Wait()
		exited = true
		if err != nil {
			t.Fatalf("exit: %v\nstderr:\n%s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), `"message":"stopped"`) {
			t.Fatalf("no clean stop logged:\n%s", stderr.String())
		}
	})

	t.Run("busy port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		out, code := runToEnd(t, bin, cleanEnv(), "-addr", ln.Addr().String())
		if code == 0 || !strings.Contains(out, ln.Addr().String()+" is in use; set -addr or LPMTLS_LOCAL_ADDR") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})

	t.Run("bad configuration", func(t *testing.T) {
		out, code := runToEnd(t, bin, append(cleanEnv(), "LP_TOKEN_DEFAULT_TTL=soon"), "-addr", "127.0.0.1:0")
		if code == 0 || !strings.Contains(out, "invalid configuration") || !strings.Contains(out, "LP_TOKEN_DEFAULT_TTL") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
}

// runToEnd runs a command that should exit by itself, killing it after commandTimeout;
// its output is kept up to 1 MiB.
func runToEnd(t *testing.T, bin string, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	out := &testenv.LockedBuffer{Limit: 1 << 20}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second // a child holding the pipe cannot stall Wait
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not exit within %v; output:\n%s", bin, args, commandTimeout, out.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// cleanEnv drops what would take the command out of sandbox mode or off its address.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "LP_") || strings.HasPrefix(k, "LPMTLS_") || strings.HasPrefix(k, "FORWARD_") ||
			strings.HasPrefix(k, "HEALTHCHECK_") || k == "PORT" || k == "AWS_LAMBDA_LOG_LEVEL" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func TestLivePersonMode(t *testing.T) {
	logs := &testenv.LockedBuffer{}
	s, err := Start(context.Background(), StartOptions{Addr: "127.0.0.1:0", LogOutput: logs,
		Getenv: mapEnv(map[string]string{"LP_ACCOUNT_ID": "123", "LP_CLIENT_ID": "id", "LP_CLIENT_SECRET": "secret-value-xyz"})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	if s.App().Mode != ModeLivePerson || s.App().Sim != nil {
		t.Fatalf("mode %s", s.App().Mode)
	}
	if b := s.Banner(); !strings.Contains(b, "mode: liveperson") || !strings.Contains(b, "target.example.com") || strings.Contains(b, "secret-value-xyz") {
		t.Fatalf("banner:\n%s", b)
	}
	if l := logs.String(); !strings.Contains(l, `"mode":"liveperson"`) || strings.Contains(l, "secret-value-xyz") {
		t.Fatalf("logs:\n%s", l)
	}
}
