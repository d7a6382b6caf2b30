package apigw

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// IntegrationTimeout is how long an HTTP API waits for its Lambda integration (30 s, a
// hard limit of HTTP APIs). Work still running after it is answered by API Gateway with
// its own 503, not by us.
const IntegrationTimeout = 30 * time.Second

// budgetMargin leaves time to write our own timeout answer before API Gateway gives up.
const budgetMargin = 500 * time.Millisecond

// WithDeadline bounds ctx by what API Gateway will wait for this request: from when it
// received the request (requestContext.timeEpoch) when that is plausible, and from now
// in any case, and by the invocation's own deadline, each less a margin to write the
// answer: a slow upstream then ends in our JSON 504 rather than API Gateway's bare 503 or
// Lambda's timeout. A stale timeEpoch (a sample or replayed event) is ignored.
func WithDeadline(ctx context.Context, e *events.APIGatewayV2HTTPRequest, now time.Time) (context.Context, context.CancelFunc) {
	deadline := now.Add(IntegrationTimeout - budgetMargin)
	if ms := e.RequestContext.TimeEpoch; ms > 0 {
		received := time.UnixMilli(ms)
		if age := now.Sub(received); age >= 0 && age < IntegrationTimeout {
			deadline = received.Add(IntegrationTimeout - budgetMargin)
		}
	}
	// The function itself is stopped at its own deadline: answer before that too.
	if d, ok := ctx.Deadline(); ok && d.Add(-budgetMargin).Before(deadline) {
		deadline = d.Add(-budgetMargin)
	}
	return context.WithDeadline(ctx, deadline)
}
