package apigw

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

func TestWithDeadline(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	budget := IntegrationTimeout - budgetMargin
	cases := []struct {
		name     string
		epoch    time.Time
		invoke   time.Duration // the invocation's own deadline from now; 0 = none
		wantFrom time.Time
	}{
		{"received just now", now, 0, now},
		{"received 3 s ago (cold start)", now.Add(-3 * time.Second), 0, now.Add(-3 * time.Second)},
		{"no timeEpoch", time.Time{}, 0, now},
		{"stale sample event", now.Add(-48 * time.Hour), 0, now},
		{"clock skew into the future", now.Add(time.Minute), 0, now},
		{"shorter function timeout wins", now, 5 * time.Second, now.Add(5*time.Second - budgetMargin - budget)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &events.APIGatewayV2HTTPRequest{}
			if !c.epoch.IsZero() {
				e.RequestContext.TimeEpoch = c.epoch.UnixMilli()
			}
			parent := context.Background()
			if c.invoke > 0 {
				var cancel context.CancelFunc
				parent, cancel = context.WithDeadline(parent, now.Add(c.invoke))
				defer cancel()
			}
			ctx, cancel := WithDeadline(parent, e, now)
			defer cancel()
			got, ok := ctx.Deadline()
			if want := c.wantFrom.Add(budget); !ok || !got.Equal(want) {
				t.Fatalf("deadline %v, want %v", got, want)
			}
		})
	}
}
