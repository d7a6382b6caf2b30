package bench

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/testworld/runtimeapi"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// BenchmarkColdStart starts the built bootstrap (this machine's architecture, built
// like the Lambda one: CGO_ENABLED=0, -tags lambda.norpc, -trimpath) under the test
// Runtime API b.N times and measures process start to the first "next invocation"
// request: init only, no invocation, so no network. ns/op is the median.
func BenchmarkColdStart(b *testing.B) {
	env := testenv.New(b)
	for _, fn := range []string{"forward", "mapping"} {
		b.Run(fn, func(b *testing.B) {
			bin := testenv.Build(b, fn)
			fenv := env.FunctionEnv("AWS_LAMBDA_LOG_LEVEL=INFO")
			var d durations
			for b.Loop() {
				p, err := runtimeapi.StartProcess(bin, fenv, io.Discard)
				if err != nil {
					b.Fatal(err)
				}
				select {
				case <-p.Ready():
				case <-p.Exited():
					b.Fatalf("%s exited during init: %v", fn, p.ExitErr())
				case <-time.After(30 * time.Second):
					p.Stop()
					b.Fatalf("%s did not become ready", fn)
				}
				d = append(d, p.ReadyAt().Sub(p.Started))
				p.Stop()
			}
			b.ReportMetric(float64(d.pct(0.5)), "ns/op")
			b.ReportMetric(ms(d.pct(0.5)), "init-p50-ms")
			b.ReportMetric(ms(d.max()), "init-max-ms")
		})
	}
}

// BenchmarkBinarySize builds each function exactly as `make build` does for Lambda
// (linux/arm64, no cgo, lambda.norpc, trimpath, stripped: -s implies -w since Go 1.22)
// and reports the size of bootstrap. The build runs once per process; the loop only
// reports.
func BenchmarkBinarySize(b *testing.B) {
	for _, fn := range []string{"forward", "mapping"} {
		b.Run(fn, func(b *testing.B) {
			bin := testenv.BuildPackage(b, "./functions/"+fn,
				"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "GOFLAGS=-tags=lambda.norpc -trimpath -ldflags=-s")
			st, err := os.Stat(bin)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
			}
			b.ReportMetric(float64(st.Size())/1e6, "MB")
			b.ReportMetric(float64(st.Size())/(1<<20), "MiB")
		})
	}
}

// BenchmarkWarmInvoke runs b.N warm invocations (1 KiB JSON body, mapped target)
// through the built forward bootstrap and the Runtime API, then reads the process's
// resident memory: with -benchtime 1000x, rss-MB is "RSS after 1,000 warm
// invocations". ns/op is an end-to-end warm invocation on loopback (Runtime API,
// JSON, handler, simulator).
func BenchmarkWarmInvoke(b *testing.B) {
	env := testenv.New(b)
	f := env.Start(b, "forward", "AWS_LAMBDA_LOG_LEVEL=WARN")
	body := make([]byte, 1024)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	ev := forwardEvent(b, env.MappedURL, []byte(`{"k":"`+string(body[:1024-8])+`"}`), "application/json", "")
	payload, err := json.Marshal(ev)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	invoke := func() {
		res, err := f.Process.Invoke(ctx, payload, 30*time.Second)
		if err != nil || res.Error != nil || !strings.Contains(string(res.Payload), `"statusCode":200`) {
			b.Fatalf("invoke: %v %+v %.300s", err, res.Error, res.Payload)
		}
	}
	invoke()
	for b.Loop() {
		invoke()
	}
	b.StopTimer()
	u, err := f.Process.Usage()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(u.RSSKB)/1024, "rss-MB")
	b.ReportMetric(float64(u.PeakRSSKB)/1024, "hwm-MB")
}
