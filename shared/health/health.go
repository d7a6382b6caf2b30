// Package health runs the scheduled check: one batched LivePerson mapping call for the
// scheduled or configured targets (else every enabled mapping LivePerson lists for the
// account) and, beside it, one certificate list for the expiry watch; one log line per
// target and per certificate, and CloudWatch Embedded Metric Format documents that the
// alarms watch.
package health

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/certificates"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/mapping"
	"github.com/lpmtls/lpmtls/shared/metrics"
	"github.com/lpmtls/lpmtls/shared/obs"
)

// Metric names and the dimensions, spelt once for the code, tests and template.
const (
	MetricConfigured  = "MappingsConfigured"
	MetricMissing     = "MappingsMissing"
	MetricFailed      = "HealthCheckFailed"
	DimensionAccount  = "AccountId"
	DimensionFunction = metrics.DimensionFunction
	DefaultNamespace  = "lpmtls"
)

// Where a run's targets came from (Summary.Source and the log lines).
const (
	SourceInput      = "schedule input"
	SourceConfigured = "HEALTHCHECK_TARGETS"
	SourceListed     = "LivePerson mapping objects"
)

// emitMargin is kept back from the invocation deadline so that a LivePerson call cut by
// the deadline still leaves time to write the metric: a check that times out must
// still raise HealthCheckFailed rather than leave a gap.
const emitMargin = 500 * time.Millisecond

// MappingChecker is the one call the check needs; *mapping.Service satisfies it.
type MappingChecker interface {
	Check(ctx context.Context, siteID string, pairs []lp.Mapping) (*mapping.Result, error)
}

// MappingLister lists the account's enabled mappings as pairs, and the serviceIds it
// could not name; *mapping.Objects satisfies it.
type MappingLister interface {
	Enabled(ctx context.Context) (pairs []lp.Mapping, unnamed []string, err error)
}

// Checker runs a health check per scheduled invocation.
type Checker struct {
	Mapping MappingChecker
	// Listed names the targets when neither the schedule's input nor Targets do: every
	// enabled mapping object LivePerson lists for the account, so a default deploy checks
	// what the brand has set up. nil makes a run without targets a configuration error.
	Listed MappingLister
	// FunctionName is a dimension of every metric (AWS_LAMBDA_FUNCTION_NAME): unique per
	// stack, so two stacks in one account and region never share a series or an alarm.
	FunctionName string
	// Certificates, when set, lists the account's certificates on every run, beside the
	// mapping check (the expiry watch); nil turns the watch off.
	Certificates CertificateLister
	// WarningDays is the expiry watch's window (CERT_EXPIRY_WARNING_DAYS); default
	// DefaultWarningDays.
	WarningDays int
	// AccountID names the account when LivePerson could not be asked (it is known from
	// the credentials), so a failure is reported under the account like a success; nil,
	// or "" before the credentials were read, leaves only the dimension-less metric.
	AccountID func() string
	// Targets are checked when the schedule's input names none (HEALTHCHECK_TARGETS).
	Targets   []lp.Mapping
	Namespace string    // default DefaultNamespace
	Out       io.Writer // EMF lines; default os.Stdout, which Lambda ships to CloudWatch Logs
	Logger    *slog.Logger
	// LogLevel is the level Lambda filters application logs at (AWS_LAMBDA_LOG_LEVEL).
	// With the JSON log format Lambda drops lines below it, and reads a line without a
	// level as INFO: the metric line is labelled at least this level so it is never
	// filtered away (a lost HealthCheckFailed would look like a check that never ran).
	LogLevel slog.Level
	Now      func() time.Time
}

// ErrorInfo is the error member of a Summary.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Summary is what a scheduled invocation returns (visible in the Lambda console and to
// a test invoke). Checked counts the targets the check covered whatever its outcome;
// Configured and Missing are 0 when Failed (the mapping check's failure), since
// LivePerson gave no answer. Certificates is the expiry watch's part, absent when the
// watch is off; it fails on its own.
type Summary struct {
	AccountID string `json:"accountId"`
	// Source says where the targets came from (SourceInput, SourceConfigured, SourceListed).
	Source string `json:"source,omitempty"`
	// Skipped says why the mapping check did not run although nothing failed: LivePerson
	// lists no enabled mapping for the account, or does not let these credentials read
	// the list. The expiry watch runs alone then.
	Skipped      string              `json:"skipped,omitempty"`
	Checked      int                 `json:"checked"`
	Configured   int                 `json:"configured"`
	Missing      int                 `json:"missing"`
	Failed       bool                `json:"failed"`
	Error        *ErrorInfo          `json:"error"`
	Results      []mapping.Item      `json:"results"`
	Certificates *CertificateSummary `json:"certificates,omitempty"`
}

// Handle is the Router's Schedule handler.
//
// The mapping check and the certificate list run concurrently and independently: one
// failing neither stops the other nor hides its metrics, and either failing raises
// HealthCheckFailed. When LivePerson cannot be asked, Handle returns a Summary with
// Failed=true (or Certificates.Failed) and no error: the HealthCheckFailed metric is the
// signal, the next scheduled run is the retry, and an invocation error would only make
// Lambda's asynchronous retries ask a struggling, rate-limited gateway twice more.
// Errors are returned only when the mapping check cannot mean anything (no targets and
// no Listed, invalid input or targets): retrying would not help, and the function's
// Errors metric and failure destination should show a misconfiguration; the certificate
// list still runs then. The metric documents are written in every case.
//
// Without targets the run checks the mappings LivePerson lists (Listed). A list that is
// not served or refused to these credentials is no failure of LivePerson: the mapping
// check is skipped with one log line and HealthCheckFailed stays 0.
func (c *Checker) Handle(ctx context.Context, input json.RawMessage) (any, error) {
	log := obs.Logger(ctx, c.logger())
	targets, source, terr := c.targets(input)

	checkCtx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		checkCtx, cancel = context.WithDeadline(ctx, dl.Add(-emitMargin))
		defer cancel()
	}
	var (
		g          errgroup.Group // no shared context: one call failing must not cancel the other
		res        *mapping.Result
		merr       error
		skip       *skipped
		certs      *certificates.Result
		cerr       error
		now        = c.now()
		warnWindow = c.warningDays()
	)
	if terr == nil {
		g.Go(func() error {
			if source == SourceListed {
				if targets, skip, merr = c.listTargets(checkCtx, log); merr != nil || skip != nil {
					return nil
				}
			}
			res, merr = c.check(checkCtx, targets)
			return nil
		})
	}
	if c.Certificates != nil {
		g.Go(func() error {
			certs, cerr = c.Certificates.List(checkCtx)
			return nil
		})
	}
	_ = g.Wait() // the goroutines report through merr and cerr
	sum := Summary{Source: source, Checked: len(targets), Results: []mapping.Item{}}

	switch {
	case terr != nil:
		ae := apierr.From(terr)
		sum.Failed, sum.Error = true, &ErrorInfo{Code: ae.Code, Message: ae.Message}
		log.Error("mapping health check not run", "code", ae.Code, "reason", ae.Message)
	case merr != nil:
		ae := apierr.From(merr)
		sum.Failed, sum.Error = true, &ErrorInfo{Code: ae.Code, Message: ae.Message}
		log.Error("mapping health check failed: LivePerson could not be asked",
			"targets", len(targets), "source", source, "code", ae.Code, "error", merr.Error())
	case skip != nil:
		sum.Skipped = skip.reason
		alone := "; the certificate expiry watch runs alone"
		if c.Certificates == nil {
			alone = "; the certificate expiry watch is off, so the run checks nothing"
		}
		log.Log(ctx, skip.level, "mapping health check skipped: "+skip.reason+alone,
			append([]any{"source", source}, skip.attrs...)...)
	default:
		sum.AccountID, sum.Results = res.AccountID, res.Mappings
		for _, it := range res.Mappings {
			level := slog.LevelInfo
			if it.Configured {
				sum.Configured++
			} else {
				sum.Missing++
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "mapping health check target", "account", res.AccountID,
				"serviceName", it.ServiceName, "url", obs.URL(it.URL), "configured", it.Configured)
		}
		log.Info("mapping health check done", "account", res.AccountID, "source", source,
			"checked", sum.Checked, "mappingsConfigured", sum.Configured, "mappingsMissing", sum.Missing)
	}

	if c.Certificates != nil {
		if cerr != nil {
			ae := apierr.From(cerr)
			sum.Certificates = &CertificateSummary{WarningDays: warnWindow, Failed: true,
				Error: &ErrorInfo{Code: ae.Code, Message: ae.Message}, Items: []CertificateItem{}}
			log.Error("certificate expiry check failed: LivePerson could not be asked",
				"code", ae.Code, "error", cerr.Error())
		} else {
			if sum.AccountID == "" {
				sum.AccountID = certs.AccountID
			}
			sum.Certificates = assessCertificates(certs, now, warnWindow)
			c.logCertificates(ctx, log, certs, sum.Certificates)
		}
	}
	if sum.AccountID == "" && c.AccountID != nil {
		sum.AccountID = c.AccountID()
	}

	if werr := c.emit(sum); werr != nil {
		// The summary still says what happened; a metric that cannot be written is a bug
		// the function's Errors metric must show.
		log.Error("writing health metrics failed", "error", werr.Error())
		if terr == nil {
			return nil, fmt.Errorf("health: writing metrics: %w", werr)
		}
	}
	if terr != nil {
		return nil, terr
	}
	return sum, nil
}

// Document is the account's EMF document for a summary. Every document carries
// HealthCheckFailed (1 when the mapping check or the certificate list could not be
// done) so its alarm can treat missing data as "the check did not run". The mapping
// counts are omitted when the mapping check failed, and the certificate counts when the
// list failed, because a 0 would claim nothing is wrong; the part that succeeded keeps
// its metrics. The metrics go under the account and under no dimension at all: the
// account is unknown when the credentials could not even be read, and one
// dimension-less alarm then covers every case.
func (c *Checker) Document(s Summary) EMF { return c.document(s, c.now()) }

func (c *Checker) document(s Summary, now time.Time) EMF {
	d := c.baseDocument(now, "mapping health metrics")
	d.DimensionSets = [][]string{{DimensionFunction}}
	d.Properties["checked"] = s.Checked
	if s.Source != "" {
		d.Properties["source"] = s.Source
	}
	if s.AccountID != "" {
		d.Dimensions[DimensionAccount] = s.AccountID
		d.DimensionSets = [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}}
	}
	failed := s.Failed
	if s.Skipped != "" {
		d.Properties["skipped"] = s.Skipped
	} else if !s.Failed {
		d.Metrics = append(d.Metrics,
			Metric{Name: MetricConfigured, Unit: "Count", Value: float64(s.Configured)},
			Metric{Name: MetricMissing, Unit: "Count", Value: float64(s.Missing)})
	} else if s.Error != nil {
		d.Properties["errorCode"] = s.Error.Code
	}
	if cs := s.Certificates; cs != nil {
		d.Properties["certExpiryWarningDays"] = cs.WarningDays
		if cs.Failed {
			failed = true
			if cs.Error != nil {
				d.Properties["certificatesErrorCode"] = cs.Error.Code
			}
		} else {
			d.Metrics = append(d.Metrics,
				Metric{Name: MetricExpiringSoon, Unit: "Count", Value: float64(cs.ExpiringSoon)},
				Metric{Name: MetricUnavailable, Unit: "Count", Value: float64(cs.Unavailable)},
				Metric{Name: MetricExpiryUnknown, Unit: "Count", Value: float64(cs.ExpiryUnknown)})
			d.Properties["certificates"] = cs.Listed
		}
	}
	value := 0.0
	if failed {
		value = 1
	}
	d.Metrics = append(d.Metrics, Metric{Name: MetricFailed, Unit: "Count", Value: value})
	return d
}

// baseDocument has what every document of a run shares. level and timestamp are for
// Lambda's log-level filter, which ignores the level of a line without a valid RFC 3339
// timestamp; message is for people reading.
func (c *Checker) baseDocument(now time.Time, message string) EMF {
	return EMF{
		Namespace:  c.namespace(),
		Timestamp:  now,
		Dimensions: map[string]string{DimensionFunction: c.FunctionName},
		Properties: map[string]any{
			"level":     c.metricLevel(),
			"timestamp": now.UTC().Format(time.RFC3339Nano),
			"message":   message,
		},
	}
}

// emit writes the account's document, then one per certificate of known expiry, all
// with one timestamp.
func (c *Checker) emit(s Summary) error {
	out := c.Out
	if out == nil {
		out = os.Stdout
	}
	now := c.now()
	if err := c.document(s, now).Write(out); err != nil {
		return err
	}
	for _, d := range c.certificateDocuments(s, now) {
		if err := d.Write(out); err != nil {
			return err
		}
	}
	return nil
}

// Input is what a schedule may pass. Anything else that is not an EventBridge event is
// refused, so a misspelt key cannot silently fall back to the configured targets.
type Input struct {
	Targets []lp.Mapping `json:"targets"`
}

// targets picks the targets for one invocation and names where they came from.
func (c *Checker) targets(input json.RawMessage) ([]lp.Mapping, string, error) {
	pairs, given, err := ParseInput(input)
	if err != nil {
		return nil, "", err
	}
	source := SourceInput
	if !given {
		pairs, source = c.Targets, SourceConfigured
		if len(pairs) == 0 && c.Listed != nil {
			return nil, SourceListed, nil
		}
		if len(pairs) == 0 {
			return nil, "", apierr.Input(http.StatusBadRequest, apierr.CodeInvalidRequest,
				"no health-check targets: set HEALTHCHECK_TARGETS or give the schedule an input "+
					`{"targets":[{"serviceName":"…","url":"https://…"}]}`)
		}
	}
	if err := ValidateTargets(pairs); err != nil {
		ae := apierr.From(err)
		ae.Message = source + ": " + ae.Message
		return nil, "", ae
	}
	return pairs, source, nil
}

// skipped is why a run's mapping check did not run although nothing failed.
type skipped struct {
	reason string
	level  slog.Level
	attrs  []any
}

// listTargets reads the enabled mappings LivePerson lists. An error means LivePerson could
// not be asked; a list it does not serve or refuses to these credentials, or one with
// nothing to check, is a skip.
func (c *Checker) listTargets(ctx context.Context, log *slog.Logger) ([]lp.Mapping, *skipped, error) {
	pairs, unnamed, err := c.Listed.Enabled(ctx)
	if err != nil {
		var le *lp.Error
		if errors.As(err, &le) && listRefused(le) {
			return nil, &skipped{reason: "the account's mapping objects cannot be read", level: slog.LevelWarn,
				attrs: []any{"status", le.Status, "code", apierr.From(err).Code, "error", err.Error()}}, nil
		}
		return nil, nil, err
	}
	var valid []lp.Mapping
	invalid := 0
	for _, p := range pairs {
		if mapping.ValidatePairs([]lp.Mapping{p}) != nil {
			invalid++
			continue
		}
		valid = append(valid, p)
	}
	if len(unnamed) > 0 || invalid > 0 {
		// The check asks by service name and takes https URLs only.
		log.Warn("mapping objects left out of the health check", "unknownServiceIds", unnamed,
			"notHTTPS", invalid, "hint", "LP_SERVICE_IDS names the serviceIds")
	}
	if len(valid) == 0 {
		return nil, &skipped{reason: "LivePerson lists no enabled mapping object to check", level: slog.LevelInfo,
			attrs: []any{"listed", len(pairs) + len(unnamed)}}, nil
	}
	return valid, nil, nil
}

// listRefused: LivePerson answered the list call, but does not serve it here (404, 405,
// 501) or does not let these credentials read it (403, after the session's fresh login).
// LivePerson itself could be asked, so the run is no failure.
func listRefused(e *lp.Error) bool {
	switch e.Status {
	case http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return e.Op == lp.OpMappingObjects
	}
	return false
}

// check asks about targets in batches of mapping.MaxPairs: one call for any list a
// schedule or HEALTHCHECK_TARGETS can hold, and as many as a long LivePerson list needs.
func (c *Checker) check(ctx context.Context, targets []lp.Mapping) (*mapping.Result, error) {
	var all *mapping.Result
	for start := 0; start < len(targets); start += mapping.MaxPairs {
		r, err := c.Mapping.Check(ctx, "", targets[start:min(start+mapping.MaxPairs, len(targets))])
		if err != nil {
			return nil, err
		}
		if all == nil {
			all = r
			continue
		}
		all.Mappings = append(all.Mappings, r.Mappings...)
		all.AllConfigured = all.AllConfigured && r.AllConfigured
	}
	return all, nil
}

// ParseInput reads a scheduled invocation's payload. given is false when the payload
// names no targets ({} or an EventBridge "Scheduled Event"), meaning "use the configured
// ones"; an explicit "targets" must be a non-empty array.
func ParseInput(input json.RawMessage) (pairs []lp.Mapping, given bool, err error) {
	bad := func(format string, args ...any) ([]lp.Mapping, bool, error) {
		return nil, false, apierr.Input(http.StatusBadRequest, apierr.CodeInvalidJSON, format, args...)
	}
	trimmed := bytes.TrimSpace(input)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, false, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &members); err != nil {
		return bad("the schedule input must be a JSON object: %v", err)
	}
	if _, ok := members["targets"]; !ok {
		if isEventBridgeEvent(members) || len(members) == 0 {
			return nil, false, nil
		}
		keys := make([]string, 0, len(members))
		for k := range members {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return bad(`the schedule input has unknown member(s) %s; expected {"targets":[{"serviceName","url"}]} or {}`,
			strings.Join(keys, ", "))
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	var in Input
	if err := dec.Decode(&in); err != nil {
		return bad(`the schedule input must be {"targets":[{"serviceName","url"}]}: %v`, err)
	}
	if len(in.Targets) == 0 {
		return bad(`the schedule input's "targets" is empty; omit it to check HEALTHCHECK_TARGETS`)
	}
	return in.Targets, true, nil
}

// isEventBridgeEvent recognises an EventBridge rule's "Scheduled Event" (or any other
// EventBridge event), whose members say nothing about what to check.
func isEventBridgeEvent(m map[string]json.RawMessage) bool {
	_, dt := m["detail-type"]
	_, src := m["source"]
	return dt && src
}

// ValidateTargets applies the mapping route's rules and names every invalid target,
// so one look at the error fixes the whole list.
func ValidateTargets(pairs []lp.Mapping) error {
	if len(pairs) == 0 || len(pairs) > mapping.MaxPairs {
		return mapping.ValidatePairs(pairs) // its message states the bounds
	}
	var problems []string
	for i, p := range pairs {
		if err := mapping.ValidatePairs([]lp.Mapping{p}); err != nil {
			reason := apierr.From(err).Message
			reason = strings.TrimPrefix(reason, "item 0: ")
			problems = append(problems, fmt.Sprintf("target %d (serviceName %q, url %q): %s", i+1, p.ServiceName, obs.URL(p.URL), reason))
		}
	}
	if len(problems) > 0 {
		return apierr.Input(http.StatusBadRequest, apierr.CodeInvalidRequest,
			"invalid health-check targets: %s", strings.Join(problems, "; "))
	}
	return nil
}

// metricLevel is INFO, or the filter level when that is higher.
func (c *Checker) metricLevel() string {
	switch {
	case c.LogLevel > slog.LevelError:
		return "FATAL"
	case c.LogLevel > slog.LevelWarn:
		return "ERROR"
	case c.LogLevel > slog.LevelInfo:
		return "WARN"
	}
	return "INFO"
}

func (c *Checker) namespace() string {
	if c.Namespace != "" {
		return c.Namespace
	}
	return DefaultNamespace
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Checker) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}
