// Package config reads every setting from environment variables and validates them all
// at once, so a misconfigured function fails at init with one message listing every
// problem instead of one per deploy.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lpmtls/lpmtls/shared/allowlist"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/obs"
)

// Config holds every setting. Zero values never reach callers: Load fills defaults.
type Config struct {
	SecretID string // LP_SECRET_ID

	// Static credentials (LP_ACCOUNT_ID, LP_USERNAME, LP_PASSWORD, LP_CLIENT_ID,
	// LP_CLIENT_SECRET): the local/dev alternative to LP_SECRET_ID.
	AccountID, Username, Password, ClientID, ClientSecret string

	CSDSURL       string // LP_CSDS_URL, trailing "/" removed
	CachePrefix   string // LP_CACHE_PARAMETER_PREFIX
	CacheKMSKeyID string // LP_CACHE_KMS_KEY_ID

	RefreshMargin   time.Duration // LP_TOKEN_REFRESH_MARGIN
	DefaultTokenTTL time.Duration // LP_TOKEN_DEFAULT_TTL
	DomainsTTL      time.Duration // LP_DOMAINS_TTL
	LoginLeaseTTL   time.Duration // LP_LOGIN_LEASE_TTL

	MappingService string // LP_MAPPING_SERVICE
	MappingPath    string // LP_MAPPING_PATH, contains {accountId}
	OAuth2Version  string // LP_OAUTH2_VERSION
	ServiceName    string // LP_SERVICE_NAME

	AllowedURLs        allowlist.List // FORWARD_ALLOWED_URLS, parsed once here
	MaxBodyBytes       int            // FORWARD_MAX_BODY_BYTES
	ForwardConcurrency int            // FORWARD_CONCURRENCY

	ResultsQueueURL    string // RESULTS_QUEUE_URL
	DeadLetterQueueURL string // DLQ_URL

	HealthcheckTargets string // HEALTHCHECK_TARGETS, raw JSON
	// HealthcheckMappings is HealthcheckTargets parsed (nil when unset).
	HealthcheckMappings []lp.Mapping

	// CertExpiryWarningDays is CERT_EXPIRY_WARNING_DAYS: a certificate expiring within
	// this many days counts as expiring soon in the scheduled run; 0 turns the
	// certificate list (and its metrics) off.
	CertExpiryWarningDays int

	MetricsNamespace string     // METRICS_NAMESPACE
	LogLevel         slog.Level // AWS_LAMBDA_LOG_LEVEL

	// MTLS configures the certificate and mapping-object calls (LP_MAPPING_OBJECTS_*,
	// LP_SERVICE_IDS, LP_ACTIVATE_FLAG_IN_BODY).
	MTLS MTLSConfig
}

// Defaults.
const (
	DefaultCSDSURL        = "https://adminlogin.liveperson.net"
	DefaultRefreshMargin  = 5 * time.Minute
	DefaultTokenTTL       = 30 * time.Minute
	DefaultDomainsTTL     = 10 * time.Minute
	DefaultLoginLeaseTTL  = 5 * time.Second
	DefaultMappingService = lp.ServiceMTLSGateway
	DefaultMappingPath    = "/api/account/{accountId}/checks/serviceUrlMappings"
	DefaultOAuth2Version  = lp.DefaultOAuth2Version // "2.0"
	DefaultServiceName    = "WEBHOOKS"
	// DefaultMaxBodyBytes is the largest body that reaches the function whatever its
	// content type: a binary body travels base64-encoded (4 bytes for every 3) in the
	// event, so (6,291,456 - 65,536) / 4 * 3 = 4,669,440 bytes. A text body travels as
	// is and could be larger; one limit for both keeps the rule simple to state.
	DefaultMaxBodyBytes       = (LambdaRequestBytes - EventEnvelopeBytes) / 4 * 3
	DefaultForwardConcurrency = 10
	DefaultMetricsNamespace   = "lpmtls"
	DefaultCertExpiryWarning  = 30 // days
	MaxCertExpiryWarning      = 365
	MaxForwardConcurrency     = 100
	MaxHealthcheckTargets     = 100
)

// AWS's limits on a synchronous invocation, which bound what a forward can carry.
const (
	// LambdaRequestBytes is the most a synchronous invocation's request (the whole JSON
	// event) may hold; Lambda refuses a larger one before the function runs.
	LambdaRequestBytes = 6291456
	// LambdaResponseBytes is the most a function's response may hold (100 bytes more
	// than a request, as Lambda's own error message says).
	LambdaResponseBytes = 6291556
	// EventEnvelopeBytes is the room kept for the HTTP API payload 2.0 event around the
	// body. API Gateway allows 10,240 bytes of request line and headers together; the
	// event holds the path and query twice (raw and parsed) and the headers once, each
	// possibly JSON-escaped, plus the request context (IAM caller included): under 64 KiB.
	EventEnvelopeBytes = 64 << 10
)

// Problem is one invalid variable. Reason never contains a secret's value.
type Problem struct {
	Var    string
	Reason string
}

// Error lists every problem found by Load.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteByte('s')
	}
	b.WriteString("): ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Var + ": " + p.Reason)
	}
	return b.String()
}

// Vars returns the names of the offending variables, in the order found.
func (e *Error) Vars() []string {
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p.Var
	}
	return out
}

type loader struct {
	getenv   func(string) string
	problems []Problem
}

func (l *loader) fail(v, format string, args ...any) {
	l.problems = append(l.problems, Problem{Var: v, Reason: fmt.Sprintf(format, args...)})
}

// str returns the trimmed value or def when unset/blank.
func (l *loader) str(v, def string) string {
	if s := strings.TrimSpace(l.getenv(v)); s != "" {
		return s
	}
	return def
}

func (l *loader) duration(v string, def time.Duration) time.Duration {
	s := l.str(v, "")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		l.fail(v, "%q is not a Go duration (e.g. 5m, 30s)", s)
		return def
	}
	if d <= 0 {
		l.fail(v, "must be positive, got %s", d)
		return def
	}
	return d
}

func (l *loader) integer(v string, def, lo, hi int) int {
	s := l.str(v, "")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		l.fail(v, "%q is not an integer", s)
		return def
	}
	if n < lo || n > hi {
		if hi == math.MaxInt {
			l.fail(v, "must be at least %d, got %d", lo, n)
		} else {
			l.fail(v, "must be between %d and %d, got %d", lo, hi, n)
		}
		return def
	}
	return n
}

// checkURL validates without echoing the value: URLs can carry userinfo.
func checkURL(raw string, httpsOnly bool) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "is not a valid URL"
	case httpsOnly && u.Scheme != "https":
		return "must be an absolute https:// URL"
	case !httpsOnly && u.Scheme != "https" && u.Scheme != "http":
		return "must be an absolute http(s):// URL"
	case u.Host == "":
		return "must be an absolute URL with a host"
	case u.User != nil:
		return "must not contain user information"
	}
	return ""
}

var ssmNameChars = regexp.MustCompile(`^[a-zA-Z0-9_.\-/]+$`)

// Load reads and validates every variable. On failure the error is an *Error listing
// every problem.
func Load(getenv func(string) string) (*Config, error) {
	l := &loader{getenv: getenv}
	c := &Config{}
	l.credentials(c)
	l.csds(c)
	l.tokenCache(c)
	l.tokenLifetimes(c)
	l.mappingCheck(c)
	l.mtls(c)
	l.serviceName(c)
	l.forward(c)
	l.queues(c)
	l.scheduledRun(c)
	l.observability(c)

	// Problems are reported in a stable order whatever the steps' order was.
	sortProblems(l.problems)
	if len(l.problems) > 0 {
		return nil, &Error{Problems: l.problems}
	}
	return c, nil
}

// csds reads the CSDS base URL, where every LivePerson domain is looked up.
func (l *loader) csds(c *Config) {
	c.CSDSURL = strings.TrimRight(l.str("LP_CSDS_URL", DefaultCSDSURL), "/")
	if msg := checkURL(c.CSDSURL, true); msg != "" {
		l.fail("LP_CSDS_URL", "%s", msg)
	} else if u, _ := url.Parse(c.CSDSURL); u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		l.fail("LP_CSDS_URL", "must not have a query or fragment")
	}
}

// tokenCache reads where the bearer is cached in SSM and the key that encrypts it.
func (l *loader) tokenCache(c *Config) {
	c.CachePrefix = l.str("LP_CACHE_PARAMETER_PREFIX", "")
	if p := c.CachePrefix; p != "" {
		if msg := checkSSMPrefix(p); msg != "" {
			l.fail("LP_CACHE_PARAMETER_PREFIX", "%s", msg)
		}
	}
	c.CacheKMSKeyID = l.str("LP_CACHE_KMS_KEY_ID", "")
}

// checkSSMPrefix says why p cannot begin an SSM parameter name ("" when it can).
func checkSSMPrefix(p string) string {
	first, _, _ := strings.Cut(strings.ToLower(strings.TrimPrefix(p, "/")), "/")
	switch {
	case !strings.HasPrefix(p, "/"):
		return "must start with /"
	case len(p) > 1 && strings.HasSuffix(p, "/"), p == "/":
		return "must not end with /"
	case !ssmNameChars.MatchString(p):
		return "may only contain letters, digits and _ . - /"
	case strings.Contains(p, "//"):
		return "must not contain an empty path segment (//)"
	case strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm"):
		return "must not begin with aws or ssm (reserved by SSM)"
	case len(p) > 900:
		return "is too long for SSM parameter names (max 900 here)"
	}
	return ""
}

// tokenLifetimes reads how long tokens, domains and the login lease last.
func (l *loader) tokenLifetimes(c *Config) {
	c.RefreshMargin = l.duration("LP_TOKEN_REFRESH_MARGIN", DefaultRefreshMargin)
	c.DefaultTokenTTL = l.duration("LP_TOKEN_DEFAULT_TTL", DefaultTokenTTL)
	if c.RefreshMargin >= c.DefaultTokenTTL {
		// Otherwise every token without an explicit expiry looks stale at once.
		l.fail("LP_TOKEN_REFRESH_MARGIN", "must be shorter than LP_TOKEN_DEFAULT_TTL (%s >= %s)", c.RefreshMargin, c.DefaultTokenTTL)
	}
	c.DomainsTTL = l.duration("LP_DOMAINS_TTL", DefaultDomainsTTL)
	c.LoginLeaseTTL = l.duration("LP_LOGIN_LEASE_TTL", DefaultLoginLeaseTTL)
}

// mappingCheck reads where the gateway's service URL mappings are checked.
func (l *loader) mappingCheck(c *Config) {
	c.MappingService = l.str("LP_MAPPING_SERVICE", DefaultMappingService)
	c.MappingPath = l.str("LP_MAPPING_PATH", DefaultMappingPath)
	if !strings.HasPrefix(c.MappingPath, "/") || !strings.Contains(c.MappingPath, "{accountId}") {
		l.fail("LP_MAPPING_PATH", "must start with / and contain {accountId}")
	}
	c.OAuth2Version = l.str("LP_OAUTH2_VERSION", DefaultOAuth2Version)
}

// serviceName reads the gateway service a forward uses when it names none.
func (l *loader) serviceName(c *Config) {
	c.ServiceName = l.str("LP_SERVICE_NAME", DefaultServiceName)
	if !lp.ValidServiceName(c.ServiceName) {
		// Checked here as well as per request: a bad default would fail every forward
		// that names no service.
		l.fail("LP_SERVICE_NAME", "must be 1 to 100 letters, digits, '_', '-' or '.'")
	}
}

// forward reads what a forward may reach and how much it may carry.
func (l *loader) forward(c *Config) {
	l.allowedURLs(c)
	c.MaxBodyBytes = l.integer("FORWARD_MAX_BODY_BYTES", DefaultMaxBodyBytes, 1, math.MaxInt)
	c.ForwardConcurrency = l.integer("FORWARD_CONCURRENCY", DefaultForwardConcurrency, 1, MaxForwardConcurrency)
}

// allowedURLs parses the forward allow-list once, checking every entry.
func (l *loader) allowedURLs(c *Config) {
	raw := l.str("FORWARD_ALLOWED_URLS", "")
	if raw == "" {
		return
	}
	for i, p := range strings.Split(raw, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if msg := checkURL(p, true); msg != "" {
			l.fail("FORWARD_ALLOWED_URLS", "entry %d %s", i+1, msg)
			continue
		}
		// The same form rules as a target, so an entry can only name what a target
		// can match.
		e, err := allowlist.ParseEntry(p)
		if err != nil {
			l.fail("FORWARD_ALLOWED_URLS", "entry %d %s", i+1, err.Error())
			continue
		}
		c.AllowedURLs = append(c.AllowedURLs, e)
	}
}

// queues reads the SQS queues a batch writes its results and failures to.
func (l *loader) queues(c *Config) {
	c.ResultsQueueURL = l.queueURL("RESULTS_QUEUE_URL")
	c.DeadLetterQueueURL = l.queueURL("DLQ_URL")
}

func (l *loader) queueURL(v string) string {
	u := l.str(v, "")
	if u != "" {
		if msg := checkURL(u, false); msg != "" {
			l.fail(v, "%s", msg)
		}
	}
	return u
}

// scheduledRun reads what the scheduled check looks at.
func (l *loader) scheduledRun(c *Config) {
	c.HealthcheckTargets = l.str("HEALTHCHECK_TARGETS", "")
	if c.HealthcheckTargets != "" {
		c.HealthcheckMappings = l.healthcheck(c.HealthcheckTargets)
	}
	c.CertExpiryWarningDays = l.integer("CERT_EXPIRY_WARNING_DAYS", DefaultCertExpiryWarning, 0, MaxCertExpiryWarning)
}

// observability reads the metrics namespace and the log level.
func (l *loader) observability(c *Config) {
	c.MetricsNamespace = l.str("METRICS_NAMESPACE", DefaultMetricsNamespace)
	if strings.HasPrefix(c.MetricsNamespace, "AWS/") || len(c.MetricsNamespace) > 255 {
		l.fail("METRICS_NAMESPACE", "must be at most 255 characters and not start with AWS/")
	}
	if s := l.str("AWS_LAMBDA_LOG_LEVEL", ""); s != "" {
		if _, ok := obs.ParseLevel(s); !ok {
			l.fail("AWS_LAMBDA_LOG_LEVEL", "%q is not one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL", s)
		}
	}
	c.LogLevel = obs.LevelFromEnv(l.getenv)
}

// order is the reporting order of variables.
var order = []string{
	"LP_SECRET_ID", "LP_ACCOUNT_ID", "LP_USERNAME", "LP_PASSWORD", "LP_CLIENT_ID", "LP_CLIENT_SECRET",
	"LP_CSDS_URL", "LP_CACHE_PARAMETER_PREFIX", "LP_CACHE_KMS_KEY_ID",
	"LP_TOKEN_REFRESH_MARGIN", "LP_TOKEN_DEFAULT_TTL", "LP_DOMAINS_TTL", "LP_LOGIN_LEASE_TTL",
	"LP_MAPPING_SERVICE", "LP_MAPPING_PATH", "LP_OAUTH2_VERSION",
	"LP_MAPPING_OBJECTS_PATH", "LP_MAPPING_OBJECTS_VERSION", "LP_SERVICE_IDS", "LP_ACTIVATE_FLAG_IN_BODY", "LP_SERVICE_NAME",
	"FORWARD_ALLOWED_URLS", "FORWARD_MAX_BODY_BYTES", "FORWARD_CONCURRENCY",
	"RESULTS_QUEUE_URL", "DLQ_URL", "HEALTHCHECK_TARGETS", "CERT_EXPIRY_WARNING_DAYS", "METRICS_NAMESPACE", "AWS_LAMBDA_LOG_LEVEL",
}

func sortProblems(ps []Problem) {
	rank := func(v string) int {
		for i, o := range order {
			if o == v {
				return i
			}
		}
		return len(order)
	}
	// Stable insertion sort: lists are tiny and entries for one variable keep their order.
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && rank(ps[j].Var) < rank(ps[j-1].Var); j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

// credentials checks that at most one source is configured and that it is complete.
// Secret values are read untrimmed (a password may legitimately end in a space) and
// never appear in a Reason.
func (l *loader) credentials(c *Config) {
	c.SecretID = l.str("LP_SECRET_ID", "")
	c.AccountID = l.str("LP_ACCOUNT_ID", "")
	c.Username = l.str("LP_USERNAME", "")
	c.Password = l.getenv("LP_PASSWORD")
	c.ClientID = l.str("LP_CLIENT_ID", "")
	c.ClientSecret = l.getenv("LP_CLIENT_SECRET")

	login := c.Username != "" || c.Password != ""
	oauth := c.ClientID != "" || c.ClientSecret != ""
	static := c.AccountID != "" || login || oauth

	if c.SecretID != "" && static {
		l.fail("LP_SECRET_ID", "set together with static credentials (LP_ACCOUNT_ID/LP_USERNAME/LP_PASSWORD/LP_CLIENT_ID/LP_CLIENT_SECRET): use exactly one source")
		return
	}
	if !static {
		return
	}
	if c.AccountID == "" {
		l.fail("LP_ACCOUNT_ID", "required with static credentials")
	} else if !validAccountID(c.AccountID) {
		l.fail("LP_ACCOUNT_ID", "must contain only letters and digits")
	}
	switch {
	case login && oauth:
		l.fail("LP_CLIENT_ID", "set together with LP_USERNAME/LP_PASSWORD: use either login or OAuth2 credentials")
	case login:
		if c.Username == "" {
			l.fail("LP_USERNAME", "required with LP_PASSWORD")
		}
		if c.Password == "" {
			l.fail("LP_PASSWORD", "required with LP_USERNAME")
		}
	case oauth:
		if c.ClientID == "" {
			l.fail("LP_CLIENT_ID", "required with LP_CLIENT_SECRET")
		}
		if c.ClientSecret == "" {
			l.fail("LP_CLIENT_SECRET", "required with LP_CLIENT_ID")
		}
	default:
		l.fail("LP_ACCOUNT_ID", "needs LP_USERNAME+LP_PASSWORD or LP_CLIENT_ID+LP_CLIENT_SECRET")
	}
}

func validAccountID(s string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return false
		}
	}
	return len(s) <= 64
}

func (l *loader) healthcheck(raw string) []lp.Mapping {
	const v = "HEALTHCHECK_TARGETS"
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.DisallowUnknownFields() // a misspelt key would otherwise check an empty serviceName
	var ms []lp.Mapping
	if err := dec.Decode(&ms); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) || strings.Contains(err.Error(), "unknown field") {
			l.fail(v, "must be a JSON array of {\"serviceName\",\"url\"} objects: %v", err)
		} else {
			l.fail(v, "is not valid JSON: %v", err)
		}
		return nil
	}
	if dec.More() {
		l.fail(v, "has trailing data after the JSON array")
		return nil
	}
	if ms == nil {
		l.fail(v, "must be a JSON array, not null")
		return nil
	}
	if len(ms) < 1 || len(ms) > MaxHealthcheckTargets {
		l.fail(v, "must have between 1 and %d items, got %d", MaxHealthcheckTargets, len(ms))
	}
	for i, m := range ms {
		if strings.TrimSpace(m.ServiceName) == "" {
			l.fail(v, "item %d: serviceName is required", i+1)
		}
		if m.URL == "" {
			l.fail(v, "item %d: url is required", i+1)
		} else if msg := checkURL(m.URL, true); msg != "" {
			l.fail(v, "item %d: url %s", i+1, msg)
		}
	}
	return ms
}

// HasCredentials reports whether any credential source is configured; the local runner
// uses it to choose sandbox mode.
func (c *Config) HasCredentials() bool {
	if c.SecretID != "" {
		return true
	}
	_, ok := c.StaticCredentials()
	return ok
}

// ErrNoCredentials is returned by RequireCredentials.
var ErrNoCredentials = errors.New("config: no LivePerson credentials: set LP_SECRET_ID, or LP_ACCOUNT_ID with LP_USERNAME+LP_PASSWORD or LP_CLIENT_ID+LP_CLIENT_SECRET")

// RequireCredentials fails when no credential source is configured, as the Lambda
// functions need one.
func (c *Config) RequireCredentials() error {
	if !c.HasCredentials() {
		return ErrNoCredentials
	}
	return nil
}

// StaticCredentials returns the credentials given directly in the environment, when
// that is the configured source (Load has checked they are complete).
func (c *Config) StaticCredentials() (lp.Credentials, bool) {
	if c.AccountID == "" {
		return lp.Credentials{}, false
	}
	switch {
	case c.Username != "" && c.Password != "":
		return lp.Credentials{AccountID: c.AccountID, Username: c.Username, Password: c.Password}, true
	case c.ClientID != "" && c.ClientSecret != "":
		return lp.Credentials{AccountID: c.AccountID, ClientID: c.ClientID, ClientSecret: c.ClientSecret}, true
	}
	return lp.Credentials{}, false
}
