package localapi

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/lpmtls/lpmtls/shared/config"
	"github.com/lpmtls/lpmtls/shared/obs"
)

// DefaultAddr is where `make run` listens unless told otherwise.
const DefaultAddr = "127.0.0.1:3000"

// ShutdownGrace is how long in-flight requests get to finish after Ctrl-C.
const ShutdownGrace = 10 * time.Second

// StartOptions configure Start and Run.
type StartOptions struct {
	Addr    string              // default DefaultAddr
	Timeout time.Duration       // invocation deadline, default DefaultTimeout
	Getenv  func(string) string // the function configuration; default os.Getenv
	// Logger defaults to the functions' JSON logger on LogOutput (default os.Stderr).
	Logger    *slog.Logger
	LogOutput io.Writer
}

// AddrFromEnv is the default listen address: LPMTLS_LOCAL_ADDR, else 127.0.0.1:$PORT,
// else DefaultAddr.
func AddrFromEnv(getenv func(string) string) string {
	if a := strings.TrimSpace(getenv("LPMTLS_LOCAL_ADDR")); a != "" {
		return a
	}
	if p := strings.TrimSpace(getenv("PORT")); p != "" {
		return "127.0.0.1:" + p
	}
	return DefaultAddr
}

// ParseArgs reads the command line of cmd/local (-addr, -timeout), with defaults from
// the environment (LPMTLS_LOCAL_ADDR or PORT, LPMTLS_LOCAL_TIMEOUT). Usage and errors
// go to usage. -h gives flag.ErrHelp.
func ParseArgs(args []string, getenv func(string) string, usage io.Writer) (StartOptions, error) {
	o := StartOptions{Getenv: getenv}
	timeout := DefaultTimeout
	if s := strings.TrimSpace(getenv("LPMTLS_LOCAL_TIMEOUT")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("LPMTLS_LOCAL_TIMEOUT: %q is not a positive Go duration (e.g. 30s)", s)
		}
		timeout = d
	}
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&o.Addr, "addr", AddrFromEnv(getenv), "listen address (env LPMTLS_LOCAL_ADDR, or PORT for 127.0.0.1:$PORT)")
	fs.DurationVar(&o.Timeout, "timeout", timeout, "invocation deadline, as a Lambda timeout (env LPMTLS_LOCAL_TIMEOUT)")
	fs.Usage = func() {
		fmt.Fprintln(usage, "Usage: local [-addr host:port] [-timeout 30s]")
		fmt.Fprintln(usage, "Runs POST /mapping and ANY /forward locally; with no LivePerson credentials in the")
		fmt.Fprintln(usage, "environment it starts a sandbox with a simulated LivePerson and mTLS target.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if o.Timeout <= 0 {
		return o, errors.New("-timeout must be positive")
	}
	return o, nil
}

// AddrInUseError says the listen address is taken.
type AddrInUseError struct {
	Addr string
	Err  error
}

func (e *AddrInUseError) Error() string {
	return e.Addr + " is in use; set -addr or LPMTLS_LOCAL_ADDR"
}

func (e *AddrInUseError) Unwrap() error { return e.Err }

// Server is a running local API.
type Server struct {
	app    *App
	srv    *http.Server
	addr   string
	logger *slog.Logger
	errc   chan error
}

// Start loads the configuration, listens, wires the functions (starting the sandbox when
// no credentials are configured) and serves in the background. The configuration is
// checked first, then the address, so neither problem leaves a simulator running.
func Start(ctx context.Context, o StartOptions) (*Server, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	logger := o.Logger
	if logger == nil {
		out := o.LogOutput
		if out == nil {
			out = os.Stderr
		}
		logger = obs.NewLogger(out, cfg.LogLevel)
	}
	addr := o.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, &AddrInUseError{Addr: addr, Err: err}
		}
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	app, err := NewApp(ctx, cfg, AppOptions{Logger: logger, Timeout: o.Timeout})
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{
		app:    app,
		addr:   ln.Addr().String(),
		logger: logger,
		errc:   make(chan error, 1),
		srv: &http.Server{
			Handler:           app.Handler,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.errc <- err
	}()
	logger.Info("local API listening", "addr", s.addr, "mode", app.Mode, "routes", app.Handler.Routes())
	return s, nil
}

// URL is the base URL of the local API.
func (s *Server) URL() string { return "http://" + s.addr }

// App is what the server runs.
func (s *Server) App() *App { return s.app }

// Done delivers the error that stopped serving (nil after Shutdown).
func (s *Server) Done() <-chan error { return s.errc }

// Banner is the start-up text: the address, the mode and the example curl commands.
func (s *Server) Banner() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lpmtls local API listening on %s (mode: %s", s.URL(), s.app.Mode)
	if s.app.Mode == ModeSandbox {
		fmt.Fprintf(&b, ", simulated LivePerson account %s", s.app.Sim.AccountID())
	}
	fmt.Fprintf(&b, ")\nroutes: %s\n", strings.Join(s.app.Handler.Routes(), ", "))
	for _, e := range s.app.Examples() {
		fmt.Fprintf(&b, "\n# %s\n%s\n", e.Comment, e.Curl(s.URL()))
	}
	if s.app.Kit != nil {
		b.WriteString(s.app.Kit.banner(s.app))
	}
	b.WriteString("\nCtrl-C stops the server.\n")
	return b.String()
}

// Shutdown stops accepting requests, lets in-flight ones finish until ctx ends (then
// cuts them), and stops the simulator.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	s.app.Close()
	return err
}

// Run is the whole of `make run`: Start, print the banner to stdout, serve until ctx is
// cancelled (Ctrl-C), then shut down cleanly.
func Run(ctx context.Context, o StartOptions, stdout io.Writer) error {
	s, err := Start(ctx, o)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(stdout, s.Banner()); err != nil {
		s.Shutdown(context.Background())
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
		s.logger.Info("shutting down")
	case serveErr = <-s.errc:
		s.logger.Error("local API stopped serving", "error", serveErr)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownGrace)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		s.logger.Warn("in-flight requests were cut short", "error", err)
	}
	if serveErr != nil {
		return fmt.Errorf("serving: %w", serveErr)
	}
	s.logger.Info("stopped")
	return nil
}
