// Package testenv assembles, for tests and benchmarks, the world a built function runs
// in: the LivePerson simulator, the AWS fakes with the credentials secret, and the real
// bootstrap binaries under a Runtime API server. It exists so every end-to-end test
// builds the same world the same way.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/lpmtls/lpmtls/shared/testworld/awsfake"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/runtimeapi"
)

// Credentials the simulator accepts; long and distinctive so a log scan finds any leak.
const (
	Username     = "mtls-admin"
	Password     = "pw-Zq8!correct-horse-battery-staple"
	ClientID     = "client-4f0d9a"
	ClientSecret = "cs-9Xk2-very-secret-client-secret"
	SecretID     = "lpmtls/test/liveperson"
	Prefix       = "/lpmtls/test"
	ServiceName  = "WEBHOOKS"
)

// Env is one test world.
type Env struct {
	Sim *lpsim.Sim
	AWS *awsfake.Server
	// AWSConfig reaches AWS (the fake) without reading the environment.
	AWSConfig aws.Config
	CAFile    string
	// MappedURL is a target URL with a certificate mapped for ServiceName.
	MappedURL string
}

// New is NewWith default simulator options.
func New(t testing.TB) *Env {
	t.Helper()
	return NewWith(t, lpsim.Options{})
}

// NewWith starts the simulator with o (user and OAuth client added, one mapping) and
// the AWS fakes holding a login secret; everything stops at cleanup.
func NewWith(t testing.TB, o lpsim.Options) *Env {
	t.Helper()
	sim, err := lpsim.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	fake, cfg := AWS(t)
	sim.AddUser(Username, Password)
	sim.AddOAuthClient(ClientID, ClientSecret)
	e := &Env{Sim: sim, AWS: fake, AWSConfig: cfg, CAFile: filepath.Join(t.TempDir(), "ca.pem"), MappedURL: sim.TargetURL("/hooks/in?x=1")}
	if err := sim.WriteCAFile(e.CAFile); err != nil {
		t.Fatal(err)
	}
	sim.AddMapping(ServiceName, e.MappedURL)
	e.UseLoginSecret()
	return e
}

// AWS starts the Secrets Manager and SSM fake, stops it at cleanup, and returns it with
// an SDK config pointed at it that ignores the environment (AWS_PROFILE and the like).
func AWS(t testing.TB) (*awsfake.Server, aws.Config) {
	t.Helper()
	fake, err := awsfake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	return fake, fake.AWSConfig()
}

// UseLoginSecret stores a username/password secret.
func (e *Env) UseLoginSecret() {
	e.AWS.PutSecret(SecretID, `{"accountId":"`+e.Sim.AccountID()+`","username":"`+Username+`","password":"`+Password+`"}`)
}

// UseOAuthSecret stores a client-credentials secret.
func (e *Env) UseOAuthSecret() {
	e.AWS.PutSecret(SecretID, `{"accountId":"`+e.Sim.AccountID()+`","clientId":"`+ClientID+`","clientSecret":"`+ClientSecret+`"}`)
}

// FunctionEnv is the environment of a deployed function, pointed at the fakes; extra
// entries (KEY=VALUE) come last and so win.
func (e *Env) FunctionEnv(extra ...string) []string {
	env := append(e.AWS.Env(),
		"LP_SECRET_ID="+SecretID,
		"LP_CSDS_URL="+e.Sim.CSDSURL(),
		"LP_CACHE_PARAMETER_PREFIX="+Prefix,
		"LP_SERVICE_NAME="+ServiceName,
		"SSL_CERT_FILE="+e.CAFile,
		"AWS_LAMBDA_LOG_LEVEL=DEBUG",
	)
	return append(env, extra...)
}

// Function is one running bootstrap.
type Function struct {
	*runtimeapi.Process
	logs *LockedBuffer
}

// Logs is everything the process wrote so far. Output travels through a pipe, so a line
// written just before an invocation returned may not be here yet: use FinalLogs to read
// everything.
func (f *Function) Logs() string { return f.logs.String() }

// FinalLogs stops the process, which drains its output, and returns all of it.
func (f *Function) FinalLogs() string {
	f.Stop()
	return f.logs.String()
}

// Start builds (once per test binary) and runs functions/<name>.
func (e *Env) Start(t testing.TB, name string, extra ...string) *Function {
	t.Helper()
	return StartBinary(t, Build(t, name), e.FunctionEnv(extra...))
}

// StartBinary runs a built bootstrap with env and stops it, by PID, at cleanup.
func StartBinary(t testing.TB, bin string, env []string) *Function {
	t.Helper()
	logs := &LockedBuffer{}
	p, err := runtimeapi.StartProcess(bin, env, logs)
	if err != nil {
		t.Fatal(err)
	}
	f := &Function{Process: p, logs: logs}
	t.Cleanup(p.Stop)
	select {
	case <-p.Ready():
	case <-p.Exited():
		t.Fatalf("%s exited during init: %v\n%s", bin, p.ExitErr(), logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not become ready\n%s", bin, logs.String())
	}
	return f
}

// Invoke sends payload (any JSON-marshalable event) and returns the raw answer; a
// function error fails the test.
func (f *Function) Invoke(t testing.TB, event any) []byte {
	t.Helper()
	res := f.InvokeResult(t, event)
	if res.Error != nil {
		t.Fatalf("function error %s: %s\nlogs:\n%s", res.Error.ErrorType, res.Error.ErrorMessage, f.Logs())
	}
	return res.Payload
}

// InvokeResult is Invoke without judging the outcome.
func (f *Function) InvokeResult(t testing.TB, event any) runtimeapi.Result {
	t.Helper()
	return f.InvokeWithin(t, event, 30*time.Second)
}

// InvokeWithin invokes with the given function timeout (the deadline the function sees).
func (f *Function) InvokeWithin(t testing.TB, event any, timeout time.Duration) runtimeapi.Result {
	t.Helper()
	payload, ok := event.([]byte)
	if !ok {
		var err error
		if payload, err = json.Marshal(event); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := f.Process.Invoke(ctx, payload, timeout)
	if err != nil {
		t.Fatalf("invoke: %v\nlogs:\n%s", err, f.Logs())
	}
	return res
}

// InvokeHTTP sends an API Gateway HTTP API event.
func (f *Function) InvokeHTTP(t testing.TB, e events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	var r events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(f.Invoke(t, e), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// Build compiles functions/<name> for this machine as the Lambda build does for arm64
// (no cgo, lambda.norpc, trimpath), once per test binary.
func Build(t testing.TB, name string) string {
	t.Helper()
	return BuildPackage(t, "./functions/"+name, "CGO_ENABLED=0", "GOFLAGS=-tags=lambda.norpc -trimpath")
}

type buildResult struct {
	once sync.Once
	bin  string
	out  []byte
	err  error
}

var (
	buildMu  sync.Mutex
	builtDir string
	builds   = map[string]*buildResult{}
)

// BuildPackage runs `go build` of pkg (an import path, or ./path from the repository
// root) with env (KEY=VALUE, after the test's own environment, so they win; build flags
// go in GOFLAGS) and returns the binary. Each pkg+env is built once per test binary;
// distinct ones build in parallel. The binary is named bootstrap in a directory named
// after the package, as Lambda lays it out: runtimeapi takes the function name from
// that directory. Call Main (or Cleanup) from TestMain to remove the binaries.
func BuildPackage(t testing.TB, pkg string, env ...string) string {
	t.Helper()
	key := pkg + "\x00" + strings.Join(env, "\x00")
	buildMu.Lock()
	if builtDir == "" {
		dir, err := os.MkdirTemp("", "lpmtls-bin-")
		if err != nil {
			buildMu.Unlock()
			t.Fatal(err)
		}
		builtDir = dir
	}
	r, ok := builds[key]
	if !ok {
		r = &buildResult{bin: filepath.Join(builtDir, strconv.Itoa(len(builds)), filepath.Base(pkg), "bootstrap")}
		builds[key] = r
	}
	buildMu.Unlock()

	root := RepoRoot(t)
	r.once.Do(func() {
		cmd := exec.Command(goTool(), "build", "-o", r.bin, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), env...)
		r.out, r.err = cmd.CombinedOutput()
	})
	if r.err != nil {
		t.Fatalf("go build %s (%s): %v\n%s", pkg, strings.Join(env, " "), r.err, r.out)
	}
	return r.bin
}

// goTool is $GOROOT/bin/go when GOROOT names a toolchain, else go from PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// Cleanup removes built binaries; call it from TestMain after m.Run (Main does).
func Cleanup() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if builtDir != "" {
		os.RemoveAll(builtDir)
		builtDir = ""
		builds = map[string]*buildResult{}
	}
}

// RepoRoot is the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// HTTPEvent loads events/<name> (the samples `sam local invoke` uses) so tests and
// samples cannot drift apart.
func HTTPEvent(t testing.TB, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(RepoRoot(t), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var e events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// SetHeader replaces a header of a v2 event (names are lower case there).
func SetHeader(e *events.APIGatewayV2HTTPRequest, name, value string) {
	if e.Headers == nil {
		e.Headers = map[string]string{}
	}
	e.Headers[strings.ToLower(name)] = value
}

// LockedBuffer collects output written from several goroutines (a process's stdout
// and stderr, concurrent loggers). The zero value is ready to use.
type LockedBuffer struct {
	// Limit, when positive, bounds what is kept: a write that would take the buffer past
	// it drops everything before it first, so a long-running process cannot grow memory
	// without limit.
	Limit int

	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Limit > 0 && l.b.Len()+len(p) > l.Limit {
		l.b.Reset()
		l.b.WriteString("[earlier output dropped]\n")
	}
	return l.b.Write(p)
}

// String is everything kept so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartFailing runs a bootstrap that is expected to fail during init and returns what
// it wrote; it fails the test if the process becomes ready instead.
func StartFailing(t testing.TB, bin string, env []string) string {
	t.Helper()
	logs := &LockedBuffer{}
	p, err := runtimeapi.StartProcess(bin, env, logs)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	select {
	case <-p.Exited():
		if p.ExitErr() == nil {
			t.Fatalf("%s exited 0 during init", bin)
		}
	case <-p.Ready():
		t.Fatalf("%s became ready despite a bad configuration\n%s", bin, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s neither failed nor became ready", bin)
	}
	return logs.String()
}

// Main runs a package's tests and removes the binaries Build and BuildPackage made;
// call it from TestMain in every package that builds.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}
