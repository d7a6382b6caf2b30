package forward

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/session"
	"github.com/lpmtls/lpmtls/shared/testworld/emfdoc"
	"github.com/lpmtls/lpmtls/shared/testworld/memsession"
)

type fakeGateway struct {
	answer func() (*lp.ForwardResponse, error)
}

func (g fakeGateway) Forward(context.Context, lp.Auth, *lp.ForwardRequest) (*lp.ForwardResponse, error) {
	return g.answer()
}

func TestOutcomeOf(t *testing.T) {
	for _, c := range []struct {
		ae   *apierr.Error
		want Outcome
	}{
		{nil, OutcomeDelivered},
		{apierr.Input(400, apierr.CodeMissingForwardURL, "x"), OutcomeClientError},
		{apierr.Input(403, apierr.CodeURLNotAllowed, "x"), OutcomeClientError},
		{apierr.From(&lp.Error{Kind: lp.KindThrottled, Status: 429}), OutcomeTransient},
		{apierr.From(&lp.Error{Kind: lp.KindAuth, Status: 401}), OutcomePermanent},
		{apierr.From(&lp.Error{Kind: lp.KindNoCertificate, Status: 500}), OutcomePermanent},
		{apierr.From(context.DeadlineExceeded), OutcomeTransient},
		{&apierr.Error{Status: 502, Code: apierr.CodeResponseTooLarge, Source: apierr.SourceLPMTLS}, OutcomePermanent},
	} {
		if got := OutcomeOf(c.ae); got != c.want {
			t.Errorf("%v: %s, want %s", c.ae, got, c.want)
		}
	}
}

// docsOf parses every EMF line written and returns the series → summed value.
func docsOf(t *testing.T, out string) (int, map[string]float64) {
	t.Helper()
	got := map[string]float64{}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		d, err := emfdoc.Parse([]byte(l))
		if err != nil {
			t.Fatalf("%v\n%s", err, l)
		}
		if d.Root["level"] != "INFO" || d.Root["timestamp"] == nil {
			t.Fatalf("line not labelled for Lambda's log filter: %s", l)
		}
		for _, s := range d.Series() {
			if s.Name == MetricLatency || s.Name == MetricGatewayLatency {
				if s.Unit != "Milliseconds" {
					t.Fatalf("%s unit %q", s.Name, s.Unit)
				}
				got[s.Key()]++ // presence: the value is a duration
				continue
			}
			got[s.Key()] += d.Sum(s.Name)
		}
	}
	return len(lines), got
}

func TestHTTPMetrics(t *testing.T) {
	const fn = "stack-forward"
	key := func(metric string, dims ...string) string {
		return emfdoc.Series{Namespace: "lpmtls", Name: metric, Dimensions: pairs(append([]string{DimensionFunction, fn}, dims...))}.Key()
	}
	ok := func() (*lp.ForwardResponse, error) {
		return &lp.ForwardResponse{StatusCode: 200, Body: []byte("ok")}, nil
	}
	base := func(outcome Outcome, extra map[string]float64) map[string]float64 {
		m := map[string]float64{
			key(MetricLatency): 1, key(MetricLogins): 0,
			key(MetricForwards, DimensionOutcome, string(outcome)): 1, key(MetricForwards): 1,
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, c := range []struct {
		name   string
		url    string
		answer func() (*lp.ForwardResponse, error)
		source session.TokenSource
		want   map[string]float64
	}{
		{"delivered", "https://api.brand.example/x", ok, session.SourceMemory, base(OutcomeDelivered, map[string]float64{
			key(MetricGatewayLatency): 1, key(MetricTokenSource, DimensionSource, "memory"): 1})},
		{"client error", "", ok, session.SourceMemory, base(OutcomeClientError, map[string]float64{
			key(MetricErrors, DimensionErrorCode, apierr.CodeMissingForwardURL): 1})},
		{"auth failed after a re-login", "https://api.brand.example/x",
			func() (*lp.ForwardResponse, error) { return nil, &lp.Error{Kind: lp.KindAuth, Status: 401} }, session.SourceStore,
			base(OutcomePermanent, map[string]float64{
				key(MetricLogins): 1, key(MetricGatewayLatency): 1,
				key(MetricErrors, DimensionErrorCode, "liveperson_auth_failed"): 1,
				key(MetricTokenSource, DimensionSource, "login"):                1})},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			m := &Metrics{FunctionName: fn, Out: &out, Now: time.Now}
			svc := &Service{Gateway: fakeGateway{c.answer}, Sessions: &memsession.Sessions{
				Auth: lp.Auth{AccountID: "90412233", Bearer: "b", Domains: lp.Domains{}}, Source: c.source, Relogin: RecordLogin},
				Policy: Policy{DefaultServiceName: "WEBHOOKS"}, Logger: slog.New(slog.DiscardHandler)}
			e := &events.APIGatewayV2HTTPRequest{Headers: map[string]string{}, Body: "{}"}
			e.RequestContext.HTTP.Method = http.MethodPost
			if c.url != "" {
				e.Headers["lp-forward-url"] = c.url
			}
			m.HTTP(svc.HandleHTTP)(context.Background(), e)
			n, got := docsOf(t, out.String())
			if n != 1 {
				t.Fatalf("want one document per HTTP invocation, got %d:\n%s", n, out.String())
			}
			if len(got) != len(c.want) {
				t.Errorf("series %v\nwant %v", got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v\n%s", k, got[k], v, out.String())
				}
			}
		})
	}
}

// A batch aggregates its messages: documents only multiply with distinct dimension
// values, and the totals are the batch's.
func TestBatchDocuments(t *testing.T) {
	m := &Metrics{Namespace: "ns", FunctionName: "f"}
	ctx, inv := m.Begin(context.Background())
	for range 7 {
		RecordOutcome(ctx, OutcomeDelivered, "")
	}
	RecordError(ctx, apierr.From(&lp.Error{Kind: lp.KindThrottled, Status: 429}))
	RecordError(ctx, apierr.From(&lp.Error{Kind: lp.KindThrottled, Status: 429}))
	RecordError(ctx, apierr.Input(400, apierr.CodeInvalidJSON, "x"))
	RecordLogin(ctx)
	for i := range 9 {
		src := session.SourceMemory
		if i == 0 {
			src = session.SourceLogin
		}
		recordGateway(ctx, time.Millisecond)
		recordSession(ctx, session.Session{Auth: lp.Auth{AccountID: "1"}, Source: src})
	}
	var out bytes.Buffer
	for _, d := range m.Documents(inv, "sqs") {
		if err := d.Write(&out); err != nil {
			t.Fatal(err)
		}
	}
	n, got := docsOf(t, out.String())
	if n != 3 {
		t.Fatalf("want 3 documents (3 outcome/code groups), got %d", n)
	}
	k := func(metric string, dims ...string) string {
		return emfdoc.Series{Namespace: "ns", Name: metric, Dimensions: pairs(append([]string{DimensionFunction, "f"}, dims...))}.Key()
	}
	for key, want := range map[string]float64{
		k(MetricForwards): 10, k(MetricForwards, DimensionOutcome, string(OutcomeDelivered)): 7,
		k(MetricForwards, DimensionOutcome, string(OutcomeTransient)): 2, k(MetricForwards, DimensionOutcome, string(OutcomeClientError)): 1,
		k(MetricErrors, DimensionErrorCode, "liveperson_throttled"): 2, k(MetricErrors, DimensionErrorCode, apierr.CodeInvalidJSON): 1,
		k(MetricLogins): 1, k(MetricLatency): 1, k(MetricGatewayLatency): 1,
		k(MetricTokenSource, DimensionSource, "memory"): 8, k(MetricTokenSource, DimensionSource, "login"): 1,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	if !strings.Contains(out.String(), `"GatewayLatency":[1,1,1,1,1,1,1,1,1]`) {
		t.Errorf("gateway latencies not one sample per attempt:\n%s", out.String())
	}
}

func pairs(kv []string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}
