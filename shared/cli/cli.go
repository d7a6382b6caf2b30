// Package cli is the lpmtls command line: certificates and mappings by command, and
// declaratively from a file (plan, apply). cmd/lpmtls only wires it to the process.
package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/lpmtls/lpmtls/shared/certificates"
	"github.com/lpmtls/lpmtls/shared/config"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/mtlsconf"
	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/wiring"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	// ExitChanges is plan --detailed-exitcode's "changes pending" (as Terraform's).
	ExitChanges = 2
)

// quietExit ends a command with a code and nothing more on stderr: what it had to say
// is on stdout already.
type quietExit struct{ code int }

func (e *quietExit) Error() string { return fmt.Sprintf("exit %d", e.code) }

// Env is the process as the commands see it.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	LookupEnv      func(string) (string, bool)
	// StderrTerminal turns on the progress lines.
	StderrTerminal bool
	// ReadPassword prompts on the terminal without echo; nil when there is none.
	ReadPassword func(prompt string) (string, error)
	Now          func() time.Time
	// Retry overrides mtlsconf.DefaultRetry (tests).
	Retry *mtlsconf.Retry
}

// usageError is a command line mistake: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// command is one leaf of the command tree.
type command struct {
	path    string // "certs list"
	summary string
	usage   string // the arguments line
	help    string // more text
	flags   func(fs *flag.FlagSet) func(ctx context.Context, r *runner) error
}

// commands is every command, in the order the overview lists them. Each flags function
// lives beside the command's code (certs.go, mappings.go, declarative.go).
var commands = []*command{
	{
		path: "certs list", summary: "list the account's certificates with their expiry",
		usage: "[-o table|json] [-f mtls.yaml | --state PATH]",
		help: "Days left is counted from now to the expiry LivePerson reports. Where it reports none, the\n" +
			"expiry apply read from the p12 is shown: from its record in SSM (marked *) when\n" +
			"LP_CACHE_PARAMETER_PREFIX is set, else from the state file named by -f (the one beside that\n" +
			"file) or --state (marked +); otherwise \"unknown\".",
		flags: certsListFlags,
	},
	{
		path: "certs upload", summary: "upload a p12 as a new certificate",
		usage: uploadUsage, help: uploadHelp, flags: certsUploadFlags(false),
	},
	{
		path: "certs replace", summary: "replace an existing certificate's p12 (same id, mappings keep working)",
		usage: uploadUsage, help: uploadHelp, flags: certsUploadFlags(true),
	},
	{
		path: "mappings check", summary: "ask LivePerson whether (service, url) pairs have a certificate",
		usage: "(--pair SERVICE=URL ... | --service S --url URL | -f FILE) [-o table|json]",
		help: "FILE is an lpmtls configuration (its mappings are checked) or a JSON array of\n" +
			"{\"serviceName\",\"url\"} objects. Exits 1 when a pair has no mapping. LivePerson's runtime\n" +
			"caches configuration for about 5 minutes, so a mapping made just now may not show yet.",
		flags: mappingsCheckFlags,
	},
	{
		path: "mappings activate", summary: "map (service, url) to a certificate, or repoint an existing mapping",
		usage: "--certificate NAME --service S --url URL [--validate-url]",
		help:  "The URL is matched exactly by LivePerson, query string included. Running it again is harmless.",
		flags: mappingsActivateFlags,
	},
	{
		path: "plan", summary: "show what apply would change to make LivePerson match the file",
		usage: declarativeUsage,
		help: "Reads the file, opens every p12 with the password from its variable, reads the account's\n" +
			"certificates and mappings (two calls) and prints the steps. Nothing is changed. Exits 0\n" +
			"whether or not changes are pending; with --detailed-exitcode, 0 means no changes, 2 changes\n" +
			"pending, 1 an error (as Terraform's plan).",
		flags: declarativeFlags(false),
	},
	{
		path: "apply", summary: "make LivePerson match the file: upload or replace certificates, create or repoint mappings",
		usage: declarativeUsage,
		help: "Runs the steps plan shows, certificates first, and stops at the first failure, saying what\n" +
			"was done and what was not; running it again finishes the job. A second apply changes nothing.\n" +
			"Nothing is ever deleted. The state file records what was uploaded (ids and SHA-256 of the\n" +
			"certificates, no secret); it is only needed where LivePerson does not report expiry dates.\n" +
			"With LP_CACHE_PARAMETER_PREFIX set, each certificate's expiry and fingerprint is also\n" +
			"recorded in SSM under that prefix, where the scheduled expiry watch reads it.",
		flags: declarativeFlags(true),
	},
}

// Shared by the two commands of a pair.
const (
	uploadUsage = "--name NAME --p12 FILE [--password-env VAR]"
	uploadHelp  = "The password is read from the environment variable --password-env names, or asked for on the\n" +
		"terminal; it is never a flag value. The p12 is opened locally first, so a wrong password or an\n" +
		"unusable file fails before anything is sent."
	declarativeUsage = "-f mtls.yaml [--state PATH]"
)

func find(args []string) (*command, []string) {
	for n := 2; n >= 1; n-- {
		if len(args) < n {
			continue
		}
		path := strings.Join(args[:n], " ")
		for _, c := range commands {
			if c.path == path {
				return c, args[n:]
			}
		}
	}
	return nil, args
}

// Main runs the command line args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.LookupEnv == nil {
		env.LookupEnv = os.LookupEnv
	}
	// Asked-for help goes to stdout; usage shown because a command is missing is an
	// error, on stderr with exit 2, so that a script piping stdout notices.
	if len(args) == 0 {
		printOverview(env.Stderr)
		return ExitUsage
	}
	if args[0] == "--version" || args[0] == "-version" || args[0] == "version" {
		bi, ok := debug.ReadBuildInfo()
		fmt.Fprintln(env.Stdout, versionLine(bi, ok))
		return ExitOK
	}
	if isHelp(args[0]) {
		if len(args) > 1 {
			if c, _ := find(args[1:]); c != nil {
				printHelp(env.Stdout, c, nil)
				return ExitOK
			}
		}
		printOverview(env.Stdout)
		return ExitOK
	}
	c, rest := find(args)
	if c == nil {
		if group := groupOf(args[0]); group != "" && (len(args) == 1 || isHelp(args[1])) {
			if len(args) == 1 {
				printGroup(env.Stderr, group)
				return ExitUsage
			}
			printGroup(env.Stdout, group)
			return ExitOK
		}
		fmt.Fprintf(env.Stderr, "lpmtls: unknown command %q; run lpmtls --help for the list\n", strings.Join(args[:min(2, len(args))], " "))
		return ExitUsage
	}
	fs := flag.NewFlagSet("lpmtls "+c.path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	r := &runner{env: env}
	r.commonFlags(fs)
	run := c.flags(fs)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(env.Stdout, c, fs)
			return ExitOK
		}
		fmt.Fprintf(env.Stderr, "lpmtls %s: %v; run lpmtls %s --help\n", c.path, err, c.path)
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "lpmtls %s: unexpected argument %q; run lpmtls %s --help\n", c.path, fs.Arg(0), c.path)
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := run(ctx, r)
	r.close()
	if err == nil {
		return ExitOK
	}
	var qe *quietExit
	if errors.As(err, &qe) {
		return qe.code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(env.Stderr, "lpmtls %s: %s; run lpmtls %s --help\n", c.path, ue.msg, c.path)
		return ExitUsage
	}
	fmt.Fprintf(env.Stderr, "lpmtls %s: %s\n", c.path, oneLine(explain(err)))
	return ExitFailure
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" || a == "help" }

func groupOf(word string) string {
	for _, c := range commands {
		if g, _, ok := strings.Cut(c.path, " "); ok && g == word {
			return g
		}
	}
	return ""
}

func printOverview(w io.Writer) {
	fmt.Fprintln(w, "lpmtls manages LivePerson mTLS certificates and mappings.")
	fmt.Fprintln(w, "")
	fmt.Fprintln(w, "Usage: lpmtls <command> [flags]")
	fmt.Fprintln(w, "")
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-20s %s\n", c.path, c.summary)
	}
	fmt.Fprintln(w, "")
	fmt.Fprintln(w, "Credentials come from the environment, as for the Lambda functions: LP_SECRET_ID (a")
	fmt.Fprintln(w, "Secrets Manager secret), or LP_ACCOUNT_ID with LP_USERNAME+LP_PASSWORD or")
	fmt.Fprintln(w, "LP_CLIENT_ID+LP_CLIENT_SECRET; LP_CSDS_URL points at another CSDS (the sandbox).")
	fmt.Fprintln(w, "Run lpmtls <command> --help for a command's flags; lpmtls --version says which build this is.")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 failure, 2 usage (plan --detailed-exitcode: 2 when changes are pending).")
}

// versionLine is the module version and the VCS revision the binary was built from, as
// the Go toolchain stamped them; a build outside a checkout has no revision.
func versionLine(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return "lpmtls: no build information in this binary"
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	set := map[string]string{}
	for _, s := range bi.Settings {
		set[s.Key] = s.Value
	}
	rev := set["vcs.revision"]
	if rev == "" {
		rev = "unknown (built outside a checkout)"
	}
	line := fmt.Sprintf("lpmtls %s, revision %s", version, rev)
	if t := set["vcs.time"]; t != "" {
		line += " of " + t
	}
	if set["vcs.modified"] == "true" {
		line += ", with uncommitted changes"
	}
	return line + ", " + bi.GoVersion
}

func printGroup(w io.Writer, group string) {
	fmt.Fprintf(w, "Usage: lpmtls %s <command> [flags]\n\nCommands:\n", group)
	for _, c := range commands {
		if strings.HasPrefix(c.path, group+" ") {
			fmt.Fprintf(w, "  %-20s %s\n", c.path, c.summary)
		}
	}
}

func printHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: lpmtls %s %s\n\n%s\n", c.path, c.usage, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", c.help)
	}
	if fs == nil {
		fs = flag.NewFlagSet(c.path, flag.ContinueOnError)
		(&runner{}).commonFlags(fs)
		c.flags(fs)
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// runner holds what a command needs beyond its flags.
type runner struct {
	env     Env
	caFile  string
	timeout time.Duration
	verbose bool

	cfg    *config.Config
	lp     *lp.Client
	remote *mtlsconf.Remote
	hc     *http.Client
	// records is where apply records expiries for the scheduled watch; nil without
	// LP_CACHE_PARAMETER_PREFIX.
	records *certificates.Records
}

func (r *runner) commonFlags(fs *flag.FlagSet) {
	fs.StringVar(&r.caFile, "ca-file", "", "PEM `file` of extra CAs to trust for LivePerson, e.g. the sandbox CA that make run prints (SSL_CERT_FILE works too)")
	fs.DurationVar(&r.timeout, "timeout", 5*time.Minute, "give up after this long")
	fs.BoolVar(&r.verbose, "verbose", false, "log LivePerson calls on stderr (secrets are redacted)")
}

// connect builds the client and session from the environment, exactly as the
// functions do (shared/config, shared/wiring).
func (r *runner) connect(ctx context.Context) (*mtlsconf.Remote, error) {
	if r.remote != nil {
		return r.remote, nil
	}
	cfg, err := config.Load(r.env.Getenv)
	if err == nil {
		err = cfg.RequireCredentials()
	}
	if err != nil {
		return nil, err
	}
	r.hc = lp.NewHTTPClient()
	if r.caFile != "" {
		pem, err := os.ReadFile(r.caFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read --ca-file: %w", errors.Unwrap(err))
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", r.caFile)
		}
		r.hc.Transport.(*http.Transport).TLSClientConfig.RootCAs = pool
	}
	// Retries are worth a line on a terminal; every call only with --verbose.
	level := slog.LevelInfo
	if r.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(obs.NewRedactingHandler(slog.NewTextHandler(r.env.Stderr, &slog.HandlerOptions{Level: level})))
	deps, err := wiring.Build(ctx, cfg, wiring.Options{Logger: logger, HTTPClient: r.hc})
	if err != nil {
		return nil, err
	}
	retry := mtlsconf.DefaultRetry
	if r.env.Retry != nil {
		retry = *r.env.Retry
	}
	r.cfg, r.lp = cfg, deps.LP
	r.records = certificates.NewRecords(deps.Params, cfg.CachePrefix)
	r.remote = &mtlsconf.Remote{LP: deps.LP, Sessions: deps.Sessions, Retry: retry, Logger: logger}
	return r.remote, nil
}

func (r *runner) close() {
	if r.hc != nil {
		r.hc.CloseIdleConnections()
	}
}

// knownServices lists the service names the client maps to ids.
func (r *runner) knownServices() []string {
	src := r.cfg.MTLS.ServiceIDs
	if len(src) == 0 {
		src = lp.DefaultServiceIDs
	}
	var out []string
	for k := range src {
		out = append(out, strings.ToUpper(k))
	}
	sort.Strings(out)
	return out
}

// progress prints "… step" on a terminal before a step is sent.
func (r *runner) progress(format string, args ...any) {
	if r.env.StderrTerminal {
		fmt.Fprintf(r.env.Stderr, "… "+format+"\n", args...)
	}
}

// password reads a p12 password from the named variable, or prompts for it.
func (r *runner) password(envVar, file string) (string, error) {
	if envVar != "" {
		v, ok := r.env.LookupEnv(envVar)
		if !ok {
			return "", fmt.Errorf("environment variable %s (the p12 password) is not set", envVar)
		}
		return v, nil
	}
	if r.env.ReadPassword == nil {
		return "", usagef("no terminal to ask for the p12 password: give --password-env VAR naming a variable that holds it")
	}
	pw, err := r.env.ReadPassword("Password for " + file + ": ")
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return pw, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
