package bench

import (
	"context"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/testworld/awsfake"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
)

// coldInvokeDelay is what the fake adds to every AWS call (SSM and Secrets Manager) in
// BenchmarkColdInvoke: far above loopback's own latency, so the invocation's time in
// units of it counts the AWS round trips the invocation waited for.
const coldInvokeDelay = 100 * time.Millisecond

// BenchmarkColdInvoke is the first invocation of a new instance (manager, client and
// transport, as a new Lambda environment has), with every AWS call held back by
// coldInvokeDelay at the fake. warm-cache: the token and domains another instance left
// in SSM; first-ever: nothing in SSM. It reports the AWS calls (aws-calls/op), the AWS
// round trips the invocation waited for (aws-rt/op: stretches with a call in flight;
// calls issued together are one), the most calls in flight at once (aws-inflight-max)
// and the invocation's latency in units of the delay (first-invoke-x-delay): ≈ 1 when
// the cold start costs one AWS round trip.
func BenchmarkColdInvoke(b *testing.B) {
	w := newWorld(b, lpsim.Options{})
	ctx := context.Background()
	ev := forwardEvent(b, w.mapped, []byte(`{"event":"ping"}`), "application/json", "")
	counter := newCountingSSM(0)
	counter.every = true
	invoke := func(b *testing.B, in *instance) {
		if r := in.svc.HandleHTTP(ctx, ev); r.StatusCode != 200 {
			b.Fatalf("status %d %s", r.StatusCode, r.Body)
		}
	}
	for _, tc := range []struct {
		name  string
		clear bool // nothing in SSM: a first-ever cold start
	}{{"warm-cache", false}, {"first-ever", true}} {
		b.Run(tc.name, func(b *testing.B) {
			seed := w.newInstance(b, nil)
			invoke(b, seed)
			seed.close()
			var calls, trips, inflight int
			var d durations
			for b.Loop() {
				b.StopTimer()
				if tc.clear {
					w.clearSSM(b)
				}
				in := w.newInstance(b, counter)
				c0, t0 := counter.snapshot()
				w.aws.ResetCalls()
				w.aws.SetDelay(awsfake.SSM, coldInvokeDelay)
				w.aws.SetDelay(awsfake.SecretsManager, coldInvokeDelay)
				b.StartTimer()
				start := time.Now()
				invoke(b, in)
				d = append(d, time.Since(start))
				b.StopTimer()
				w.aws.SetDelay(awsfake.SSM, 0)
				w.aws.SetDelay(awsfake.SecretsManager, 0)
				c1, t1 := counter.snapshot()
				calls += c1 - c0
				trips += t1 - t0
				inflight = max(inflight, w.aws.MaxInFlight())
				in.close()
				b.StartTimer()
			}
			n := float64(b.N)
			b.ReportMetric(float64(calls)/n, "aws-calls/op")
			b.ReportMetric(float64(trips)/n, "aws-rt/op")
			b.ReportMetric(float64(inflight), "aws-inflight-max")
			b.ReportMetric(float64(d.pct(0.5))/float64(coldInvokeDelay), "first-invoke-x-delay")
		})
	}
}
