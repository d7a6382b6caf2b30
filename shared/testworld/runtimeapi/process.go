package runtimeapi

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// Usage is what the kernel says a running process holds: resident memory now and at
// its peak (kB, from /proc/PID/status) and open file descriptors. Leak checks compare
// it before and after a load; benchmarks report it.
type Usage struct {
	RSSKB, PeakRSSKB int64
	FDs              int
}

// Usage reads the process's Usage from /proc (Linux only).
func (p *Process) Usage() (Usage, error) {
	dir := "/proc/" + strconv.Itoa(p.Cmd.Process.Pid)
	raw, err := os.ReadFile(dir + "/status")
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	fields := map[string]*int64{"VmRSS": &u.RSSKB, "VmHWM": &u.PeakRSSKB}
	for line := range strings.Lines(string(raw)) {
		name, v, ok := strings.Cut(line, ":")
		if dst := fields[name]; ok && dst != nil {
			if *dst, err = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err != nil {
				return Usage{}, fmt.Errorf("%s in %s/status: %w", name, dir, err)
			}
			delete(fields, name)
		}
	}
	if len(fields) > 0 {
		return Usage{}, fmt.Errorf("%s/status lacks VmRSS or VmHWM", dir)
	}
	ents, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return Usage{}, err
	}
	u.FDs = len(ents)
	return u, nil
}
