package bench

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/queue"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
)

// BenchmarkSQSBatch sends a batch of 10 forward messages through queue.Processor.Handle
// with a warm session; the target holds the first message to arrive back by 100 ms and
// the nine others by 20 ms (simulator faults), so the sum is 280 ms. "concurrent" is the processor's default; "sequential" (Concurrency 1) is the
// sum for comparison. batch-x-slowest is the batch time over the time of the slow
// message alone (a batch of one with the same delay): about 1 means the batch takes as
// long as its slowest message.
func BenchmarkSQSBatch(b *testing.B) {
	const slowDelay, otherDelay = 100 * time.Millisecond, 20 * time.Millisecond
	w := newWorld(b, lpsim.Options{})
	inst := w.newInstance(b, nil)
	b.Cleanup(inst.close)
	ctx := context.Background()
	if _, err := inst.mgr.Get(ctx); err != nil {
		b.Fatal(err)
	}
	batch := func(n int) *events.SQSEvent {
		e := &events.SQSEvent{}
		for i := range n {
			body, _ := json.Marshal(map[string]any{
				"id": "m" + strconv.Itoa(i), "method": "POST", "url": w.mapped,
				"headers": map[string]string{"Content-Type": "application/json"},
				"body":    `{"n":` + strconv.Itoa(i) + `}`,
			})
			e.Records = append(e.Records, events.SQSMessage{
				MessageId: "msg-" + strconv.Itoa(i), Body: string(body),
				EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:lpmtls-forward",
				Attributes:     map[string]string{"ApproximateReceiveCount": "1"},
			})
		}
		return e
	}
	run := func(b *testing.B, p *queue.Processor, e *events.SQSEvent) time.Duration {
		w.sim.Inject(lpsim.Fault{Op: "target", Delay: slowDelay})
		if n := len(e.Records) - 1; n > 0 {
			w.sim.Inject(lpsim.Fault{Op: "target", Delay: otherDelay, Times: n})
		}
		t0 := time.Now()
		resp, err := p.Handle(ctx, e)
		d := time.Since(t0)
		if err != nil || len(resp.BatchItemFailures) != 0 {
			b.Fatalf("batch: %v %+v", err, resp.BatchItemFailures)
		}
		return d
	}
	newProc := func(conc int) *queue.Processor {
		return &queue.Processor{Sender: inst.svc, Policy: inst.svc.Policy, Concurrency: conc, Logger: w.logger}
	}
	var lone durations
	for range 3 {
		lone = append(lone, run(b, newProc(0), batch(1)))
	}
	slowest := lone.pct(0.5)
	for _, c := range []struct {
		name string
		conc int
	}{{"concurrent", 0}, {"sequential", 1}} {
		b.Run(c.name, func(b *testing.B) {
			p, e := newProc(c.conc), batch(10)
			var d durations
			for b.Loop() {
				d = append(d, run(b, p, e))
			}
			b.ReportMetric(ms(d.pct(0.5)), "batch-ms")
			b.ReportMetric(ms(slowest), "slowest-ms")
			b.ReportMetric(ms(slowDelay+9*otherDelay), "sum-of-delays-ms")
			b.ReportMetric(float64(d.pct(0.5))/float64(slowest), "batch-x-slowest")
		})
	}
}
