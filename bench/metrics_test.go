package bench

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/forward"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/session"
	"github.com/lpmtls/lpmtls/shared/testworld/memsession"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// memGateway answers every forward with the request body, in memory: with no network
// in the way, the cost of the metrics is not lost in the noise of a round trip.
type memGateway struct{}

func (memGateway) Forward(_ context.Context, _ lp.Auth, r *lp.ForwardRequest) (*lp.ForwardResponse, error) {
	return &lp.ForwardResponse{StatusCode: 200, Header: map[string][]string{"Content-Type": {"application/json"}}, Body: r.Body}, nil
}

// BenchmarkForwardMetrics is the warm-path cost of the forward metrics: the HTTP
// handler (in-memory gateway and session, production logger to io.Discard) with and
// without the metrics wrapper, alternated, at 1 KiB and 64 KiB bodies. "discard" writes
// the EMF line to io.Discard: the cost of collecting and rendering it. "pipe" writes it
// to a pipe read by another process, as Lambda's stdout is: plus the write(2).
// overhead-p50-ns is the difference of the medians; extra-allocs/op and extra-B/op the
// difference in allocations per call.
func BenchmarkForwardMetrics(b *testing.B) {
	// Lambda's stdout is a pipe read by another process: cat to /dev/null here.
	cat := exec.Command("cat")
	w, err := cat.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cat.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		w.Close() // cat ends at EOF
		if err := cat.Wait(); err != nil {
			_ = cat.Process.Kill()
		}
	})
	sessions := &memsession.Sessions{Auth: lp.Auth{AccountID: "90412233", Bearer: "b", Domains: lp.Domains{}}, Source: session.SourceMemory}
	svc := &forward.Service{Gateway: memGateway{}, Sessions: sessions, Policy: forward.Policy{DefaultServiceName: testenv.ServiceName},
		Logger: obs.NewLogger(io.Discard, slog.LevelInfo)}
	ctx := context.Background()
	for _, c := range []struct {
		out  string
		size int
	}{{"discard", 1 << 10}, {"discard", 64 << 10}, {"pipe", 1 << 10}, {"pipe", 64 << 10}} {
		size := c.size
		m := &forward.Metrics{FunctionName: "lpmtls-forward", Out: io.Discard, Logger: svc.Logger}
		if c.out == "pipe" {
			m.Out = w
		}
		bare, metered := svc.HandleHTTP, m.HTTP(svc.HandleHTTP)
		body := bytes.Repeat([]byte("x"), size)
		ev := forwardEvent(b, "https://api.brand.example/hooks/in?x=1", body, "application/json", "")
		b.Run(c.out+"-"+strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			check := func(resp events.APIGatewayV2HTTPResponse) {
				if resp.StatusCode != 200 || len(resp.Body) != size {
					b.Fatalf("status %d, %d bytes", resp.StatusCode, len(resp.Body))
				}
			}
			// Allocations apart from the timing: reading the allocator's statistics
			// stops the world, which would disturb the times.
			allocs := func(h func(context.Context, *events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse) (float64, float64) {
				const n = 200
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				a0, b0 := ms.Mallocs, ms.TotalAlloc
				for range n {
					check(h(ctx, ev))
				}
				runtime.ReadMemStats(&ms)
				return float64(ms.Mallocs-a0) / n, float64(ms.TotalAlloc-b0) / n
			}
			ab, bb := allocs(bare)
			am, bm := allocs(metered)
			b.ReportAllocs()
			var db, dm durations
			i := 0
			for b.Loop() {
				first, second, df, ds := bare, metered, &db, &dm
				if i%2 == 1 {
					first, second, df, ds = metered, bare, &dm, &db
				}
				t0 := time.Now()
				r1 := first(ctx, ev)
				t1 := time.Now()
				r2 := second(ctx, ev)
				t2 := time.Now()
				*df, *ds = append(*df, t1.Sub(t0)), append(*ds, t2.Sub(t1))
				check(r1)
				check(r2)
				i++
			}
			b.ReportMetric(float64(dm.pct(0.5)-db.pct(0.5)), "overhead-p50-ns")
			b.ReportMetric(float64(dm.pct(0.99)-db.pct(0.99)), "overhead-p99-ns")
			b.ReportMetric(float64(db.pct(0.5)), "bare-p50-ns")
			b.ReportMetric(am-ab, "extra-allocs/op")
			b.ReportMetric(bm-bb, "extra-B/op")
		})
	}
}
