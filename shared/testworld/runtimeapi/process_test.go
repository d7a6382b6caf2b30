package runtimeapi_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/testworld/runtimeapi"
)

// helperEnv makes the test binary, started as a bootstrap, take one invocation and
// never answer it: a runtime stuck mid-invocation, to be killed.
const helperEnv = "RUNTIMEAPI_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "hang" {
		resp, err := http.Get("http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/next")
		if err != nil {
			os.Exit(2)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		select {} // holds the invocation until killed
	}
	os.Exit(m.Run())
}

// startHanging runs this test binary as a bootstrap that takes one invocation and never
// answers it; it is stopped by PID in cleanup.
func startHanging(t *testing.T) *runtimeapi.Process {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := runtimeapi.StartProcess(bin, []string{helperEnv + "=hang"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// A runtime killed mid-invocation fails that invocation with Lambda's
// Runtime.ExitError instead of leaving the invoker waiting.
func TestKilledMidInvocationFailsIt(t *testing.T) {
	p := startHanging(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type out struct {
		res runtimeapi.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := p.Invoke(ctx, []byte(`{}`), 20*time.Second)
		done <- out{res, err}
	}()
	<-p.Ready()
	// The helper polls once; killing it after the invocation is handed over is what
	// matters, and the pending map is only filled once it is.
	for p.InFlight() == 0 {
		select {
		case o := <-done:
			t.Fatalf("invocation ended before the kill: %+v", o)
		case <-time.After(5 * time.Millisecond): // polling pace
		}
	}
	p.Kill()
	o := <-done
	if o.err != nil || o.res.Error == nil || o.res.Error.ErrorType != "Runtime.ExitError" ||
		!strings.Contains(o.res.Error.ErrorMessage, "signal: killed") {
		t.Fatalf("got %+v %v", o.res.Error, o.err)
	}
}

// Usage reads a live process's memory and descriptors from /proc.
func TestUsage(t *testing.T) {
	p := startHanging(t)
	<-p.Ready()
	u, err := p.Usage()
	if err != nil {
		t.Fatal(err)
	}
	// A Go process holds stdin/stdout/stderr and its poll connection at least, and some
	// megabytes of memory; the peak is never below the current size.
	if u.FDs < 3 || u.RSSKB < 1024 || u.PeakRSSKB < u.RSSKB {
		t.Errorf("usage = %+v", u)
	}
}
