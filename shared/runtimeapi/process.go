package runtimeapi

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Process is a bootstrap binary running under its own Runtime API server, as one Lambda
// execution environment.
type Process struct {
	*Server
	Cmd     *exec.Cmd
	Started time.Time
	exited  chan struct{}
	waitErr error
}

// StartProcess runs bin with env (plus AWS_LAMBDA_RUNTIME_API and the usual Lambda
// variables) and its stdout/stderr going to logs. Stop it with Stop.
func StartProcess(bin string, env []string, logs io.Writer) (*Process, error) {
	srv, err := Start()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append([]string{
		"AWS_LAMBDA_RUNTIME_API=" + srv.Addr(),
		"AWS_LAMBDA_FUNCTION_NAME=" + filepath.Base(filepath.Dir(bin)),
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.TempDir(),
	}, env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	p := &Process{Server: srv, Cmd: cmd, exited: make(chan struct{})}
	p.Started = time.Now()
	if err := cmd.Start(); err != nil {
		srv.Close()
		return nil, err
	}
	go func() {
		p.waitErr = cmd.Wait()
		reason := "exited without providing a reason"
		if p.waitErr != nil {
			reason = p.waitErr.Error()
		}
		srv.failPending(reason)
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed when the process ends.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr is the process's exit status once Exited is closed.
func (p *Process) ExitErr() error { <-p.exited; return p.waitErr }

// Kill ends the process at once, as a crash or a frozen-then-reaped sandbox would.
func (p *Process) Kill() {
	if p.Cmd.Process != nil {
		_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.exited
}

// Stop ends the process by PID (SIGTERM, then SIGKILL after 5 s) and closes the
// server; safe to call twice. How the process ended is ExitErr.
func (p *Process) Stop() {
	select {
	case <-p.exited:
	default:
		if p.Cmd.Process != nil {
			_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.Kill()
		}
	}
	p.Server.Close()
}
