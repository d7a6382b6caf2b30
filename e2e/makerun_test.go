package e2e

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// `make run` stopped with Ctrl-C: the terminal sends SIGINT to the whole foreground
// process group (make, its shell, the server). The server shuts down and exits 0, so
// make reports no "Error" line; make itself ends as any interrupted command does.
func TestMakeRunStopsCleanlyOnInterrupt(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	cmd := exec.Command("make", "--no-print-directory", "run", "ARGS=-addr 127.0.0.1:0")
	cmd.Dir = testenv.RepoRoot(t)
	for _, kv := range os.Environ() {
		// Sandbox mode whatever the developer's shell holds.
		if !strings.HasPrefix(kv, "LP_") && !strings.HasPrefix(kv, "LPMTLS_") && !strings.HasPrefix(kv, "MAKEFLAGS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	var log strings.Builder
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "Ctrl-C stops the server") {
			break
		}
	}
	if !strings.Contains(log.String(), "Ctrl-C stops the server") {
		_ = cmd.Wait()
		t.Fatalf("the server did not start:\n%s", log.String())
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	interrupted := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT
	if err != nil && !interrupted {
		t.Fatalf("make ended with %v:\n%s", err, log.String())
	}
	if strings.Contains(log.String(), "make: ***") || !strings.Contains(log.String(), `"message":"stopped"`) {
		t.Fatalf("not a clean stop:\n%s", log.String())
	}
}
