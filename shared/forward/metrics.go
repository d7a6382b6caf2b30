package forward

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/apigw"
	"github.com/lpmtls/lpmtls/shared/metrics"
	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/session"
)

// Metric and dimension names of the forward function, spelt once for the code, the
// tests and the template's dashboard and alarms.
const (
	MetricForwards       = "Forwards"
	MetricErrors         = "ForwardErrors"
	MetricLatency        = "ForwardLatency"
	MetricGatewayLatency = "GatewayLatency"
	MetricLogins         = "Logins"
	MetricTokenSource    = "TokenSource"

	DimensionFunction  = metrics.DimensionFunction
	DimensionOutcome   = "Outcome"
	DimensionErrorCode = "ErrorCode"
	DimensionSource    = "Source"

	DefaultNamespace = "lpmtls"
)

// Outcome is what became of one forward: the value of the Outcome dimension, and the
// queue's verdict on a message.
type Outcome string

const (
	// OutcomeDelivered: the target answered and its answer went back (HTTP) or the
	// message left the queue (SQS).
	OutcomeDelivered Outcome = "delivered"
	// OutcomeTransient: an upstream or lpmtls failure worth another attempt (SQS: a
	// batch item failure).
	OutcomeTransient Outcome = "transient"
	// OutcomePermanent: LivePerson or the target refused in a way no retry cures (SQS:
	// dead-lettered with the reason, then deleted).
	OutcomePermanent Outcome = "permanent"
	// OutcomeClientError: the request itself was invalid (a 4xx from lpmtls).
	OutcomeClientError Outcome = "client_error"
)

// OutcomeOf classifies a forward's failure (nil: delivered). The HTTP route and the
// queue share it so the same failure counts the same way on both.
func OutcomeOf(ae *apierr.Error) Outcome {
	switch {
	case ae == nil:
		return OutcomeDelivered
	case ae.Source == apierr.SourceLPMTLS && ae.Status >= 400 && ae.Status < 500:
		return OutcomeClientError
	case ae.Transient:
		return OutcomeTransient
	}
	return OutcomePermanent
}

// Invocation collects one invocation's forward metrics. It is safe for concurrent use
// (an SQS batch forwards its messages in parallel).
type Invocation struct {
	start   time.Time
	mu      sync.Mutex
	counts  []outcomeCount
	gateway []float64 // ms per gateway attempt
	logins  int
	sources []sourceCount
	account string
}

type outcomeCount struct {
	outcome Outcome
	code    string
	n       int
}

type sourceCount struct {
	source session.TokenSource
	n      int
}

type invocationKey struct{}

// InvocationFrom returns the invocation ctx belongs to, or nil.
func InvocationFrom(ctx context.Context) *Invocation {
	inv, _ := ctx.Value(invocationKey{}).(*Invocation)
	return inv
}

// RecordOutcome counts one forward's outcome and, for a failure, its error code.
func RecordOutcome(ctx context.Context, outcome Outcome, code string) {
	inv := InvocationFrom(ctx)
	if inv == nil {
		return
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	for i := range inv.counts {
		if c := &inv.counts[i]; c.outcome == outcome && c.code == code {
			c.n++
			return
		}
	}
	inv.counts = append(inv.counts, outcomeCount{outcome, code, 1})
}

// RecordError counts a failed forward by its apierr classification.
func RecordError(ctx context.Context, ae *apierr.Error) {
	RecordOutcome(ctx, OutcomeOf(ae), ae.Code)
}

// RecordLogin counts a login to LivePerson made for this invocation.
func RecordLogin(ctx context.Context) {
	if inv := InvocationFrom(ctx); inv != nil {
		inv.mu.Lock()
		inv.logins++
		inv.mu.Unlock()
	}
}

func recordGateway(ctx context.Context, d time.Duration) {
	if inv := InvocationFrom(ctx); inv != nil {
		inv.mu.Lock()
		if len(inv.gateway) < metrics.MaxValues {
			inv.gateway = append(inv.gateway, float64(d.Microseconds())/1000)
		}
		inv.mu.Unlock()
	}
}

func recordSession(ctx context.Context, sess session.Session) {
	inv := InvocationFrom(ctx)
	if inv == nil {
		return
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.account = sess.AccountID
	for i := range inv.sources {
		if inv.sources[i].source == sess.Source {
			inv.sources[i].n++
			return
		}
	}
	inv.sources = append(inv.sources, sourceCount{sess.Source, 1})
}

// Metrics writes one EMF document per invocation of the forward function (more only
// when an SQS batch's messages differ in outcome, error code or token source: a
// document holds one value per dimension).
type Metrics struct {
	Namespace    string // default DefaultNamespace
	FunctionName string // the FunctionName dimension (AWS_LAMBDA_FUNCTION_NAME)
	Out          io.Writer
	Logger       *slog.Logger
	// LogLevel is the level Lambda filters application logs at: the metric line is
	// labelled at least this level so the filter never drops it.
	LogLevel slog.Level
	Now      func() time.Time
}

// Begin starts collecting an invocation's metrics. When Out is an *obs.Batch (the
// logger's stream too), it holds the invocation's log lines until End.
func (m *Metrics) Begin(ctx context.Context) (context.Context, *Invocation) {
	inv := &Invocation{start: m.now()}
	if b, ok := m.Out.(*obs.Batch); ok {
		b.Hold()
	}
	return context.WithValue(ctx, invocationKey{}, inv), inv
}

// wrap runs h between Begin and End; a panicking h still lets its held log lines out.
func wrap[R any](m *Metrics, ctx context.Context, trigger string, h func(context.Context) R) R {
	ctx, inv := m.Begin(ctx)
	ended := false
	defer func() {
		if b, ok := m.Out.(*obs.Batch); ok && !ended {
			_ = b.Release(nil)
		}
	}()
	r := h(ctx)
	ended = true
	m.End(ctx, inv, trigger)
	return r
}

// HTTP wraps the HTTP handler.
func (m *Metrics) HTTP(h func(context.Context, *events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse) func(context.Context, *events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	return func(ctx context.Context, e *events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
		return wrap(m, ctx, "http", func(ctx context.Context) events.APIGatewayV2HTTPResponse { return h(ctx, e) })
	}
}

// Reply wraps the HTTP handler that answers with an apigw.Reply.
func (m *Metrics) Reply(h func(context.Context, *events.APIGatewayV2HTTPRequest) apigw.Reply) func(context.Context, *events.APIGatewayV2HTTPRequest) apigw.Reply {
	return func(ctx context.Context, e *events.APIGatewayV2HTTPRequest) apigw.Reply {
		return wrap(m, ctx, "http", func(ctx context.Context) apigw.Reply { return h(ctx, e) })
	}
}

// SQS wraps the SQS batch handler.
func (m *Metrics) SQS(h func(context.Context, *events.SQSEvent) (events.SQSEventResponse, error)) func(context.Context, *events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, e *events.SQSEvent) (events.SQSEventResponse, error) {
		type result struct {
			r   events.SQSEventResponse
			err error
		}
		res := wrap(m, ctx, "sqs", func(ctx context.Context) result {
			r, err := h(ctx, e)
			return result{r, err}
		})
		return res.r, res.err
	}
}

// End writes the invocation's documents in one Write, after the log lines Begin held
// when Out is an *obs.Batch. A metric that cannot be written is logged, never failing
// the forward it describes.
func (m *Metrics) End(ctx context.Context, inv *Invocation, trigger string) {
	sc := scratches.Get().(*scratch)
	defer func() {
		if cap(sc.buf) <= 64<<10 {
			scratches.Put(sc)
		}
	}()
	sc.docs = m.documents(sc.docs[:0], inv, trigger)
	b := sc.buf[:0]
	var err error
	for _, d := range sc.docs {
		if b, err = d.AppendJSON(b); err != nil {
			break
		}
		b = append(b, '\n')
	}
	sc.buf = b
	if batch, ok := m.Out.(*obs.Batch); ok {
		if werr := batch.Release(b); err == nil {
			err = werr
		}
	} else if err == nil {
		out := m.Out
		if out == nil {
			out = os.Stdout
		}
		_, err = out.Write(b)
	}
	if err != nil {
		obs.Logger(ctx, m.logger()).Error("writing forward metrics failed", "error", err.Error())
	}
}

// scratch is what End renders an invocation with: the documents, their maps and metric
// slices and the output buffer, kept from one invocation to the next so the warm path
// allocates none of them.
type scratch struct {
	docs []metrics.EMF
	buf  []byte
}

var scratches = sync.Pool{New: func() any { return &scratch{buf: make([]byte, 0, 1024)} }}

// The documents' dimension sets never change; AppendJSON only reads them.
var (
	setsFunction = [][]string{{DimensionFunction}}
	// Also under FunctionName alone: the total the error-rate alarm divides by.
	setsOutcome   = [][]string{{DimensionFunction, DimensionOutcome}, {DimensionFunction}}
	setsErrorCode = [][]string{{DimensionFunction, DimensionErrorCode}}
	setsSource    = [][]string{{DimensionFunction, DimensionSource}}
)

// Documents renders an invocation. The first document carries the invocation's own
// metrics (latency, gateway latencies, logins); each carries at most one outcome/error
// code group and one token-source group, so an HTTP invocation is always one document.
func (m *Metrics) Documents(inv *Invocation, trigger string) []metrics.EMF {
	return m.documents(nil, inv, trigger)
}

// documents appends the invocation's documents to docs, reusing the maps and metric
// slices it finds in docs' spare capacity.
func (m *Metrics) documents(docs []metrics.EMF, inv *Invocation, trigger string) []metrics.EMF {
	now := m.now()
	inv.mu.Lock()
	defer inv.mu.Unlock()
	n := max(1, len(inv.counts), len(inv.sources))
	docs = slices.Grow(docs, n)[:n]
	for i := range docs {
		d := &docs[i]
		dims, props, ms := d.Dimensions, d.Properties, d.Metrics[:0]
		if dims == nil {
			dims, props = make(map[string]string, 4), make(map[string]any, 6)
		}
		clear(dims)
		clear(props)
		dims[DimensionFunction] = m.FunctionName
		// level and timestamp are for Lambda's log-level filter, which ignores the
		// level of a line without a valid RFC 3339 timestamp.
		props["level"] = metrics.LineLevel(m.LogLevel)
		props["timestamp"] = now.UTC().Format(time.RFC3339Nano)
		props["message"] = "forward metrics"
		props["trigger"] = trigger
		if inv.account != "" {
			props["account"] = inv.account
		}
		if i == 0 {
			ms = append(ms,
				metrics.Metric{Name: MetricLatency, Unit: "Milliseconds", Value: float64(now.Sub(inv.start).Microseconds()) / 1000},
				metrics.Metric{Name: MetricLogins, Unit: "Count", Value: float64(inv.logins)})
			if len(inv.gateway) > 0 {
				ms = append(ms, metrics.Metric{Name: MetricGatewayLatency, Unit: "Milliseconds", Values: inv.gateway})
			}
		}
		if i < len(inv.counts) {
			c := inv.counts[i]
			dims[DimensionOutcome] = string(c.outcome)
			ms = append(ms, metrics.Metric{Name: MetricForwards, Unit: "Count", Value: float64(c.n), DimensionSets: setsOutcome})
			if c.code != "" {
				dims[DimensionErrorCode] = c.code
				ms = append(ms, metrics.Metric{Name: MetricErrors, Unit: "Count", Value: float64(c.n), DimensionSets: setsErrorCode})
			}
		}
		if i < len(inv.sources) {
			s := inv.sources[i]
			dims[DimensionSource] = string(s.source)
			ms = append(ms, metrics.Metric{Name: MetricTokenSource, Unit: "Count", Value: float64(s.n), DimensionSets: setsSource})
		}
		*d = metrics.EMF{Namespace: m.namespace(), Timestamp: now, DimensionSets: setsFunction, Dimensions: dims, Properties: props, Metrics: ms}
	}
	return docs
}

func (m *Metrics) namespace() string {
	if m.Namespace != "" {
		return m.Namespace
	}
	return DefaultNamespace
}

func (m *Metrics) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Metrics) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

// recordHTTPError counts a failed HTTP forward and renders its answer.
func recordHTTPError(ctx context.Context, ae *apierr.Error) apigw.Reply {
	RecordError(ctx, ae)
	return apigw.ReplyOf(ae.HTTPResponse())
}
