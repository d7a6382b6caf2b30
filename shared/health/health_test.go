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
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/mapping"
	"github.com/lpmtls/lpmtls/shared/obs"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseInput(t *testing.T) {
	cases := []struct {
		name    string
		input   string
		given   int // number of targets given; -1 means "use the configured ones"
		errCode string
		errHas  string
	}{
		{"empty object", `{}`, -1, "", ""},
		{"no payload", ``, -1, "", ""},
		{"null", `null`, -1, "", ""},
		{"eventbridge scheduled event", readFile(t, "testdata/scheduled-event.json"), -1, "", ""},
		{"schedule sample", readFile(t, "../../events/schedule.json"), 2, "", ""},
		{"one target", `{"targets":[{"serviceName":"S","url":"https://a.example/"}]}`, 1, "", ""},
		{"empty targets", `{"targets":[]}`, 0, apierr.CodeInvalidJSON, "empty"},
		{"null targets", `{"targets":null}`, 0, apierr.CodeInvalidJSON, "empty"},
		{"targets not an array", `{"targets":{"serviceName":"S"}}`, 0, apierr.CodeInvalidJSON, "targets"},
		{"misspelt target key", `{"targets":[{"service":"S","url":"https://a.example/"}]}`, 0, apierr.CodeInvalidJSON, "service"},
		{"extra member beside targets", `{"targets":[{"serviceName":"S","url":"https://a.example/"}],"x":1}`, 0, apierr.CodeInvalidJSON, "x"},
		{"misspelt targets", `{"target":[{"serviceName":"S","url":"https://a.example/"}]}`, 0, apierr.CodeInvalidJSON, "target"},
		{"array", `[{"serviceName":"S","url":"https://a.example/"}]`, 0, apierr.CodeInvalidJSON, "object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pairs, given, err := ParseInput(json.RawMessage(c.input))
			if c.errCode != "" {
				var ae *apierr.Error
				if !errors.As(err, &ae) || ae.Code != c.errCode || !strings.Contains(ae.Message, c.errHas) {
					t.Fatalf("got %v, want %s mentioning %q", err, c.errCode, c.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.given < 0 {
				if given || pairs != nil {
					t.Fatalf("want configured targets, got given=%v %v", given, pairs)
				}
				return
			}
			if !given || len(pairs) != c.given {
				t.Fatalf("got given=%v %v", given, pairs)
			}
		})
	}
}

func TestValidateTargetsNamesEveryBadOne(t *testing.T) {
	err := ValidateTargets([]lp.Mapping{
		{ServiceName: "OK", URL: "https://ok.example/"},
		{ServiceName: "PLAIN", URL: "http://plain.example/"},
		{ServiceName: " ", URL: "https://blank.example/"},
	})
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Code != apierr.CodeInvalidRequest {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"target 2", "http://plain.example/", "target 3", "serviceName is required"} {
		if !strings.Contains(ae.Message, want) {
			t.Fatalf("message %q lacks %q", ae.Message, want)
		}
	}
	if strings.Contains(ae.Message, "ok.example") {
		t.Fatalf("a valid target is named: %q", ae.Message)
	}
}

// fakeMapping answers like mapping.Service: configured when the URL is in ok.
type fakeMapping struct {
	ok    map[string]bool
	err   error
	calls [][]lp.Mapping
}

func (f *fakeMapping) Check(_ context.Context, siteID string, pairs []lp.Mapping) (*mapping.Result, error) {
	f.calls = append(f.calls, pairs)
	if f.err != nil {
		return nil, f.err
	}
	res := &mapping.Result{AccountID: "90412233", AllConfigured: true}
	for _, p := range pairs {
		res.Mappings = append(res.Mappings, mapping.Item{ServiceName: p.ServiceName, URL: p.URL, Configured: f.ok[p.URL]})
		res.AllConfigured = res.AllConfigured && f.ok[p.URL]
	}
	return res, nil
}

// fakeLister stands for LivePerson's mapping-object list.
type fakeLister struct {
	pairs   []lp.Mapping
	unnamed []string
	err     error
}

func (f *fakeLister) Enabled(context.Context) ([]lp.Mapping, []string, error) {
	return f.pairs, f.unnamed, f.err
}

var (
	good    = lp.Mapping{ServiceName: "WEBHOOKS", URL: "https://good.example/in"}
	missing = lp.Mapping{ServiceName: "WEBHOOKS", URL: "https://missing.example/in"}
)

func TestHandle(t *testing.T) {
	at := time.Date(2026, 11, 24, 12, 5, 0, 0, time.UTC)
	lpDown := &lp.Error{Kind: lp.KindGateway, Op: "mapping", Status: 503, Message: "mapping check answered HTTP 503"}
	listErr := func(status int, kind lp.Kind) error {
		return &lp.Error{Kind: kind, Op: lp.OpMappingObjects, Status: status, Message: "mapping object list answered " + http.StatusText(status)}
	}
	many := make([]lp.Mapping, 150)
	for i := range many {
		many[i] = lp.Mapping{ServiceName: "WEBHOOKS", URL: fmt.Sprintf("https://m%d.example/", i)}
	}
	cases := []struct {
		name       string
		configured []lp.Mapping
		listed     *fakeLister
		input      string
		lpErr      error
		account    string // what Checker.AccountID knows from the credentials
		wantCalls  int
		wantErr    string // invocation error containing this
		wantSum    Summary
		wantDims   [][]string
		wantValues map[string]float64
		absent     []string
	}{
		{
			name: "configured targets, one missing", configured: []lp.Mapping{good, missing}, input: `{}`, wantCalls: 1,
			listed:     &fakeLister{pairs: []lp.Mapping{good}},
			wantSum:    Summary{AccountID: "90412233", Source: SourceConfigured, Checked: 2, Configured: 1, Missing: 1},
			wantDims:   [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}},
			wantValues: map[string]float64{MetricConfigured: 1, MetricMissing: 1, MetricFailed: 0},
		},
		{
			name: "schedule input overrides", configured: []lp.Mapping{missing}, input: `{"targets":[{"serviceName":"WEBHOOKS","url":"https://good.example/in"}]}`, wantCalls: 1,
			wantSum:    Summary{AccountID: "90412233", Source: SourceInput, Checked: 1, Configured: 1},
			wantDims:   [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}},
			wantValues: map[string]float64{MetricConfigured: 1, MetricMissing: 0, MetricFailed: 0},
		},
		{
			name: "liveperson down", configured: []lp.Mapping{good, missing}, input: `{}`, lpErr: lpDown, wantCalls: 1,
			wantSum:    Summary{Source: SourceConfigured, Checked: 2, Failed: true, Error: &ErrorInfo{Code: "gateway_error"}},
			wantDims:   [][]string{{DimensionFunction}},
			wantValues: map[string]float64{MetricFailed: 1},
			absent:     []string{MetricConfigured, MetricMissing, DimensionAccount},
		},
		{
			name: "liveperson down, account known from the credentials", configured: []lp.Mapping{good}, input: `{}`, lpErr: lpDown,
			account: "90412233", wantCalls: 1,
			wantSum:    Summary{AccountID: "90412233", Source: SourceConfigured, Checked: 1, Failed: true, Error: &ErrorInfo{Code: "gateway_error"}},
			wantDims:   [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}},
			wantValues: map[string]float64{MetricFailed: 1},
			absent:     []string{MetricConfigured, MetricMissing},
		},
		{
			name: "deadline", configured: []lp.Mapping{good}, input: `{}`, lpErr: context.DeadlineExceeded, wantCalls: 1,
			wantSum:    Summary{Source: SourceConfigured, Checked: 1, Failed: true, Error: &ErrorInfo{Code: "timeout"}},
			wantDims:   [][]string{{DimensionFunction}},
			wantValues: map[string]float64{MetricFailed: 1},
		},
		{
			name: "no targets anywhere", input: `{}`, wantErr: "no health-check targets",
			wantDims: [][]string{{DimensionFunction}}, wantValues: map[string]float64{MetricFailed: 1}, absent: []string{MetricMissing},
		},
		{
			name: "no targets: LivePerson's enabled mappings", input: `{}`, wantCalls: 1,
			listed:     &fakeLister{pairs: []lp.Mapping{good, missing}},
			wantSum:    Summary{AccountID: "90412233", Source: SourceListed, Checked: 2, Configured: 1, Missing: 1},
			wantDims:   [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}},
			wantValues: map[string]float64{MetricConfigured: 1, MetricMissing: 1, MetricFailed: 0},
		},
		{
			name: "listed: unnamed serviceIds and non-https URLs left out", input: `{}`, wantCalls: 1,
			listed:     &fakeLister{pairs: []lp.Mapping{{ServiceName: "WEBHOOKS", URL: "http://plain.example/"}, good}, unnamed: []string{"9"}},
			wantSum:    Summary{AccountID: "90412233", Source: SourceListed, Checked: 1, Configured: 1},
			wantDims:   [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}},
			wantValues: map[string]float64{MetricConfigured: 1, MetricMissing: 0, MetricFailed: 0},
		},
		{
			name: "listed: more than one call holds", input: `{}`, wantCalls: 2,
			listed:     &fakeLister{pairs: many},
			wantSum:    Summary{AccountID: "90412233", Source: SourceListed, Checked: 150, Missing: 150},
			wantDims:   [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}},
			wantValues: map[string]float64{MetricConfigured: 0, MetricMissing: 150, MetricFailed: 0},
		},
		{
			name: "listed: none enabled", input: `{}`, account: "90412233",
			listed: &fakeLister{},
			wantSum: Summary{AccountID: "90412233", Source: SourceListed,
				Skipped: "LivePerson lists no enabled mapping object to check"},
			wantDims:   [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}},
			wantValues: map[string]float64{MetricFailed: 0},
			absent:     []string{MetricConfigured, MetricMissing},
		},
		{
			name: "listed: refused (403)", input: `{}`, account: "90412233",
			listed:     &fakeLister{err: listErr(403, lp.KindAuth)},
			wantSum:    Summary{AccountID: "90412233", Source: SourceListed, Skipped: "the account's mapping objects cannot be read"},
			wantDims:   [][]string{{DimensionFunction, DimensionAccount}, {DimensionFunction}},
			wantValues: map[string]float64{MetricFailed: 0},
			absent:     []string{MetricConfigured, MetricMissing},
		},
		{
			name: "listed: not served (404)", input: `{}`,
			listed:     &fakeLister{err: listErr(404, lp.KindBadRequest)},
			wantSum:    Summary{Source: SourceListed, Skipped: "the account's mapping objects cannot be read"},
			wantDims:   [][]string{{DimensionFunction}},
			wantValues: map[string]float64{MetricFailed: 0},
			absent:     []string{MetricConfigured, MetricMissing},
		},
		{
			name: "listed: LivePerson down", input: `{}`,
			listed:     &fakeLister{err: listErr(503, lp.KindGateway)},
			wantSum:    Summary{Source: SourceListed, Failed: true, Error: &ErrorInfo{Code: "gateway_error"}},
			wantDims:   [][]string{{DimensionFunction}},
			wantValues: map[string]float64{MetricFailed: 1},
			absent:     []string{MetricConfigured, MetricMissing},
		},
		{
			name: "listed: login refused", input: `{}`,
			listed:     &fakeLister{err: &lp.Error{Kind: lp.KindAuth, Op: "login", Status: 403, Message: "login refused"}},
			wantSum:    Summary{Source: SourceListed, Failed: true, Error: &ErrorInfo{Code: "liveperson_auth_failed"}},
			wantDims:   [][]string{{DimensionFunction}},
			wantValues: map[string]float64{MetricFailed: 1},
		},
		{
			name: "invalid configured target", configured: []lp.Mapping{{ServiceName: "S", URL: "http://x.example/"}}, input: `{}`,
			wantErr:  `HEALTHCHECK_TARGETS: invalid health-check targets: target 1 (serviceName "S", url "http://x.example/")`,
			wantDims: [][]string{{DimensionFunction}}, wantValues: map[string]float64{MetricFailed: 1},
		},
		{
			name: "invalid input", configured: []lp.Mapping{good}, input: `{"targets":[]}`, wantErr: "targets",
			wantDims: [][]string{{DimensionFunction}}, wantValues: map[string]float64{MetricFailed: 1},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := &fakeMapping{ok: map[string]bool{good.URL: true}, err: c.lpErr}
			var out, logs bytes.Buffer
			ch := &Checker{Mapping: fake, Targets: c.configured, Namespace: "brand-lpmtls", Out: &out,
				Logger: obs.NewLogger(&logs, slog.LevelInfo), Now: func() time.Time { return at },
				AccountID: func() string { return c.account }, FunctionName: "stack-a-mapping"}
			if c.listed != nil {
				ch.Listed = c.listed
			}
			got, err := ch.Handle(context.Background(), json.RawMessage(c.input))
			if len(fake.calls) != c.wantCalls {
				t.Fatalf("%d mapping calls, want %d", len(fake.calls), c.wantCalls)
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, c.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				sum := got.(Summary)
				if sum.Error != nil && c.wantSum.Error != nil {
					if sum.Error.Code != c.wantSum.Error.Code || sum.Error.Message == "" {
						t.Fatalf("error %+v", sum.Error)
					}
					c.wantSum.Error = sum.Error
				}
				results := sum.Results
				sum.Results, c.wantSum.Results = nil, nil
				if !reflect.DeepEqual(sum, c.wantSum) {
					t.Fatalf("summary %+v, want %+v", sum, c.wantSum)
				}
				if !c.wantSum.Failed && len(results) != c.wantSum.Checked {
					t.Fatalf("results %+v", results)
				}
				if c.wantSum.Failed && (results == nil || len(results) != 0) {
					t.Fatalf("a failed check must return results [] (not null), got %#v", results)
				}
			}

			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("want one EMF line, got %q", out.String())
			}
			d := parseEMF(t, lines[0])
			cw := d.AWS.CloudWatchMetrics[0]
			if cw.Namespace != "brand-lpmtls" || d.AWS.Timestamp != at.UnixMilli() {
				t.Fatalf("metadata %+v", d.AWS)
			}
			if !reflect.DeepEqual(cw.Dimensions, c.wantDims) || d.Root[DimensionFunction] != "stack-a-mapping" {
				t.Fatalf("dimensions %v (FunctionName %v), want %v", cw.Dimensions, d.Root[DimensionFunction], c.wantDims)
			}
			names := map[string]bool{}
			for _, m := range cw.Metrics {
				if m.Unit != "Count" {
					t.Fatalf("metric %s unit %q", m.Name, m.Unit)
				}
				names[m.Name] = true
			}
			for k, v := range c.wantValues {
				if !names[k] || d.Root[k] != v {
					t.Fatalf("%s = %v (declared %v), want %v", k, d.Root[k], names[k], v)
				}
			}
			if len(names) != len(c.wantValues) {
				t.Fatalf("metrics %v, want exactly %v", names, c.wantValues)
			}
			for _, k := range c.absent {
				if _, ok := d.Root[k]; ok {
					t.Fatalf("%s present: %s", k, lines[0])
				}
			}
			if c.wantSum.AccountID != "" && d.Root[DimensionAccount] != c.wantSum.AccountID {
				t.Fatalf("AccountId %v", d.Root[DimensionAccount])
			}
			if c.wantSum.Skipped != "" {
				// One line says the mapping check was skipped and why.
				if n := strings.Count(logs.String(), "mapping health check skipped: "+c.wantSum.Skipped); n != 1 {
					t.Fatalf("%d skip lines in:\n%s", n, logs.String())
				}
			} else if !c.wantSum.Failed && c.wantErr == "" {
				checkTargetLogs(t, logs.String(), slices.Concat(fake.calls...), fake.ok)
			}
		})
	}
}

// checkTargetLogs finds one structured line per target with its outcome.
func checkTargetLogs(t *testing.T, logs string, targets []lp.Mapping, ok map[string]bool) {
	t.Helper()
	seen := map[lp.Mapping]int{}
	dec := json.NewDecoder(strings.NewReader(logs))
	for {
		var rec struct {
			Message     string `json:"message"`
			ServiceName string `json:"serviceName"`
			URL         string `json:"url"`
			Configured  *bool  `json:"configured"`
		}
		if err := dec.Decode(&rec); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("log is not JSON lines: %v\n%s", err, logs)
		}
		if rec.Message != "mapping health check target" {
			continue
		}
		k := lp.Mapping{ServiceName: rec.ServiceName, URL: rec.URL}
		if rec.Configured == nil || *rec.Configured != ok[rec.URL] {
			t.Fatalf("target %v logged configured=%v", k, rec.Configured)
		}
		seen[k]++
	}
	for _, p := range targets {
		if seen[p] != 1 {
			t.Fatalf("target %v logged %d times\n%s", p, seen[p], logs)
		}
	}
}

func TestMetricLineSurvivesLambdaLogFilter(t *testing.T) {
	cases := []struct {
		filter slog.Level
		want   string
	}{
		{obs.LevelTrace, "INFO"},
		{slog.LevelDebug, "INFO"},
		{slog.LevelInfo, "INFO"},
		{slog.LevelWarn, "WARN"},
		{slog.LevelError, "ERROR"},
		{obs.LevelFatal, "FATAL"},
	}
	at := time.Date(2026, 11, 24, 12, 5, 0, 0, time.UTC)
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			ch := &Checker{LogLevel: c.filter, Now: func() time.Time { return at }}
			b, err := ch.Document(Summary{Failed: true}).MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			d := parseEMF(t, string(b))
			if d.Root["level"] != c.want {
				t.Fatalf("level %v, want %s", d.Root["level"], c.want)
			}
			// Lambda ignores the level of a line without a valid RFC 3339 timestamp.
			ts, _ := d.Root["timestamp"].(string)
			if got, err := time.Parse(time.RFC3339Nano, ts); err != nil || !got.Equal(at) {
				t.Fatalf("timestamp %q: %v", ts, err)
			}
			if lv, ok := obs.ParseLevel(c.want); !ok || lv < c.filter && c.filter >= slog.LevelInfo {
				t.Fatalf("%s would be filtered at %v", c.want, c.filter)
			}
		})
	}
}

// TestQueryStaysOutOfLogs: a target's query string (it may carry a token) reaches
// neither the logs nor an error text, while the summary keeps the full URL.
func TestQueryStaysOutOfLogs(t *testing.T) {
	const secret = "query-secret-77"
	withQuery := lp.Mapping{ServiceName: "WEBHOOKS", URL: "https://good.example/in?token=" + secret}
	fake := &fakeMapping{ok: map[string]bool{withQuery.URL: true}}
	var logs bytes.Buffer
	ch := &Checker{Mapping: fake, Targets: []lp.Mapping{withQuery, missing}, Out: io.Discard, Logger: obs.NewLogger(&logs, slog.LevelInfo)}
	got, err := ch.Handle(context.Background(), json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	sum := got.(Summary)
	if len(sum.Results) != 2 || sum.Results[0].URL != withQuery.URL || !sum.Results[0].Configured {
		t.Fatalf("summary results must keep the full URL: %+v", sum.Results)
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("logs contain the query:\n%s", logs.String())
	}
	checkTargetLogs(t, logs.String(), []lp.Mapping{{ServiceName: "WEBHOOKS", URL: "https://good.example/in?…"}, missing},
		map[string]bool{"https://good.example/in?…": true})

	// An invalid target is named without its query, in the error and in the log.
	logs.Reset()
	bad := lp.Mapping{ServiceName: "S", URL: "http://plain.example/in?key=" + secret}
	ch.Targets = []lp.Mapping{bad}
	_, err = ch.Handle(context.Background(), json.RawMessage(`{}`))
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), `"http://plain.example/in?…"`) {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("logs contain the query:\n%s", logs.String())
	}
	if err := ValidateTargets([]lp.Mapping{bad}); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("ValidateTargets: %v", err)
	}
}
