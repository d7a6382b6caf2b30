package forward

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/session"
)

// BenchmarkForwardedLine is the warm path's log line: the request's logger derived from
// the Lambda context, then "forwarded" through the redacting handler.
func BenchmarkForwardedLine(b *testing.B) {
	obs.RegisterSecret("bench-secret-value-1")
	base := obs.NewLogger(io.Discard, slog.LevelInfo)
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd"})
	req := &lp.ForwardRequest{Method: "POST", URL: "https://api.brand.example/hooks/in?x=1", ServiceName: "asyncMessagingEnt", Body: make([]byte, 1024)}
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		log := obs.Logger(ctx, base)
		log.LogAttrs(ctx, slog.LevelInfo, "forwarded", append(logAttrs(req, start), slog.Int("status", 200), slog.Int("responseBytes", 1024))...)
	}
}

// BenchmarkMetricsEnd is the warm path's EMF document: one delivered HTTP forward.
func BenchmarkMetricsEnd(b *testing.B) {
	m := &Metrics{FunctionName: "lpmtls-forward", Out: obs.NewBatch(io.Discard)}
	b.ReportAllocs()
	for b.Loop() {
		ctx, inv := m.Begin(context.Background())
		recordSession(ctx, session.Session{Source: session.SourceMemory, Auth: lp.Auth{AccountID: "90412233"}})
		recordGateway(ctx, 3*time.Millisecond)
		RecordOutcome(ctx, OutcomeDelivered, "")
		m.End(ctx, inv, "http")
	}
}
