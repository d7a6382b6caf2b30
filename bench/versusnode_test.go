package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/runtimeapi"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// The comparison with a brand's own handler: lpmtls's forward bootstrap against bench/node, the
// Node.js 22 handler a brand would write instead, both under the Runtime API against
// the same simulated gateway.

// contender is one side of the comparison: a bootstrap and the environment it runs with.
type contender struct {
	name string
	bin  string
	env  []string
}

// contenders are lpmtls as the template deploys it (deployedEnv, INFO logs) and the
// Node handler, whose fetch trusts the simulator's CA through NODE_EXTRA_CA_CERTS as a
// Lambda would trust a private CA. node is testenv.Node's binary.
func contenders(t testing.TB, env *testenv.Env, node string) (lpmtls, nodejs contender) {
	t.Helper()
	lpmtls = contender{"lpmtls", testenv.Build(t, "forward"), env.FunctionEnv(append([]string{"AWS_LAMBDA_LOG_LEVEL=INFO"}, deployedEnv...)...)}
	nodejs = contender{"node", filepath.Join(testenv.RepoRoot(t), "bench", "node", "bootstrap.sh"),
		env.FunctionEnv("AWS_LAMBDA_LOG_LEVEL=INFO", "NODE="+node, "NODE_EXTRA_CA_CERTS="+env.CAFile)}
	return lpmtls, nodejs
}

// needNode is testenv.Node's binary, or a skip that says how to get it: the comparison
// needs `npm ci`, which `make test` runs first.
func needNode(t testing.TB) string {
	t.Helper()
	node := testenv.Node(t)
	if node == "" {
		t.Skipf("no Node 22 binary (%v) below the repository root: run `npm ci` there (make deps) to compare with the Node handler", testenv.NodeBins())
	}
	return node
}

// TestNodeHandler holds the Node handler to what the comparison assumes of it: it
// forwards through the gateway with the mapped certificate and returns the target's
// answer (status, headers, body), logs in once per execution environment, and logs in
// again when the gateway refuses its bearer. The steps run in order on one process.
func TestNodeHandler(t *testing.T) {
	node := needNode(t)
	env := testenv.New(t)
	_, nodejs := contenders(t, env, node)
	f := testenv.StartBinary(t, nodejs.bin, nodejs.env)
	for _, step := range []struct {
		name       string
		before     func()
		wantLogins int
	}{
		{name: "cold: secret, CSDS, login, forward", wantLogins: 1},
		{name: "warm: the cached bearer", wantLogins: 0},
		{name: "revoked bearer: one login again after the 401", before: env.Sim.RevokeTokens, wantLogins: 1},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before()
			}
			logins := env.Sim.Counts().Logins
			body := []byte(`{"event":"ping","step":"` + step.name + `"}`)
			r := f.InvokeHTTP(t, *forwardEvent(t, env.MappedURL, body, "application/json", ""))
			got, err := base64.StdEncoding.DecodeString(r.Body)
			if r.StatusCode != http.StatusOK || !r.IsBase64Encoded || err != nil || !bytes.Equal(got, body) {
				t.Fatalf("answer %d base64=%v %q (%v), want 200 with the body echoed\nlogs:\n%s", r.StatusCode, r.IsBase64Encoded, r.Body, err, f.Logs())
			}
			if r.Headers["x-echo-method"] != http.MethodPost || r.Headers["x-echo-client-cn"] == "" || r.Headers["content-type"] != "application/json" {
				t.Errorf("the target's headers did not come back as a forward through the mapping gives them: %v", r.Headers)
			}
			if n := env.Sim.Counts().Logins - logins; n != step.wantLogins {
				t.Errorf("%d logins, want %d", n, step.wantLogins)
			}
		})
	}
}

// BenchmarkVersusNode measures lpmtls against the Node handler, interleaved in one run,
// with the figures of the Node.js comparison table in BENCHMARKS.md:
//
//   - cold: per iteration a new lpmtls process on an empty SSM cache (the first-ever cold
//     start, its worst case), one with the cache in SSM (every later one), and a new Node
//     process, in rotating order: init (process start to the first invocation/next) and
//     the first invocation (1 KiB), medians.
//   - warm/<size>: one process of each, and per iteration one invocation of each and one
//     direct call to the gateway (the same headers, bearer and body, from Go) in rotating
//     order, with binary bodies of 1 KiB, 64 KiB and 1 MiB (base64 in the event and the
//     answer, as API Gateway carries them). added-p50/p90 is the invocation's percentile
//     less the direct call's: what the function adds over calling the gateway yourself.
//     rss-MB is each process's resident memory after the size's invocations.
//
// ratio < 1 means lpmtls is the faster. Run it with -benchtime 200x (warm) and 10x
// (cold): `make bench` does.
func BenchmarkVersusNode(b *testing.B) {
	node := needNode(b)
	// The simulator's own echo target, which reads the whole body before it answers: the
	// streaming echo of the other benchmarks answers while the body still arrives, which
	// the simulated gateway's HTTP/1.1 side (Node's fetch speaks HTTP/1.1, lpmtls HTTP/2)
	// cuts off.
	w := newWorld(b, lpsim.Options{})
	lpmtls, nodejs := contenders(b, w.env, node)

	b.Run("cold", func(b *testing.B) {
		payload := versusPayload(b, w.mapped, 1<<10)
		type coldSide struct {
			name    string
			c       contender
			prepare func()
			init    durations
			first   durations
		}
		sides := []*coldSide{
			{name: "lpmtls", c: lpmtls, prepare: func() { w.clearSSM(b) }},
			{name: "lpmtls-cached", c: lpmtls},
			{name: "node", c: nodejs},
		}
		i := 0
		for b.Loop() {
			for k := range sides {
				s := sides[(i+k)%len(sides)]
				if s.prepare != nil {
					s.prepare()
				}
				f := testenv.StartBinary(b, s.c.bin, s.c.env)
				t0 := time.Now()
				res, err := f.Process.Invoke(context.Background(), payload, 30*time.Second)
				s.first = append(s.first, time.Since(t0))
				s.init = append(s.init, f.ReadyAt().Sub(f.Started))
				checkVersus(b, s.name, res.Payload, res.Error, err, 1<<10, f)
				f.Stop()
			}
			i++
		}
		for _, s := range sides {
			b.ReportMetric(ms(s.init.pct(0.5)), s.name+"-init-ms")
			b.ReportMetric(ms(s.first.pct(0.5)), s.name+"-first-ms")
		}
		b.ReportMetric(ms(sides[0].init.pct(0.5))/ms(sides[2].init.pct(0.5)), "init-ratio")
		b.ReportMetric(ms(sides[0].first.pct(0.5))/ms(sides[2].first.pct(0.5)), "first-ratio")
	})

	b.Run("warm", func(b *testing.B) {
		fl := testenv.StartBinary(b, lpmtls.bin, lpmtls.env)
		fn := testenv.StartBinary(b, nodejs.bin, nodejs.env)
		direct := newDirect(b, w)
		for _, size := range []struct {
			name string
			n    int
		}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}} {
			body := make([]byte, size.n)
			_, _ = rand.Read(body)
			payload := versusPayload(b, w.mapped, size.n, body...)
			ctx := context.Background()
			invoke := func(name string, f *testenv.Function) func() {
				return func() {
					res, err := f.Process.Invoke(ctx, payload, 30*time.Second)
					checkVersus(b, name, res.Payload, res.Error, err, size.n, f)
				}
			}
			calls := []func(){func() { direct.call(b, body) }, invoke("lpmtls", fl), invoke("node", fn)}
			// Connections, sessions and Node's JIT warm before the clock starts, as a
			// warm execution environment's are.
			for range 20 {
				for _, c := range calls {
					c()
				}
			}
			b.Run(size.name, func(b *testing.B) {
				d := make([]durations, len(calls))
				i := 0
				for b.Loop() {
					for k := range calls {
						j := (i + k) % len(calls)
						t0 := time.Now()
						calls[j]()
						d[j] = append(d[j], time.Since(t0))
					}
					i++
				}
				b.StopTimer()
				added := func(j int, p float64) float64 { return ms(d[j].pct(p) - d[0].pct(p)) }
				b.ReportMetric(ms(d[0].pct(0.5)), "direct-p50-ms")
				b.ReportMetric(added(1, 0.5), "lpmtls-added-p50-ms")
				b.ReportMetric(added(1, 0.9), "lpmtls-added-p90-ms")
				b.ReportMetric(added(2, 0.5), "node-added-p50-ms")
				b.ReportMetric(added(2, 0.9), "node-added-p90-ms")
				b.ReportMetric(added(1, 0.5)/added(2, 0.5), "ratio-p50")
				b.ReportMetric(added(1, 0.9)/added(2, 0.9), "ratio-p90")
				for _, p := range []struct {
					name string
					f    *testenv.Function
				}{{"lpmtls", fl}, {"node", fn}} {
					u, err := p.f.Process.Usage()
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(u.RSSKB)/1024, p.name+"-rss-MB")
				}
			})
		}
	})
}

// versusPayload is the forward event for a size-byte binary body (random unless body is
// given), base64 as API Gateway delivers binary bodies.
func versusPayload(b testing.TB, target string, size int, body ...byte) []byte {
	b.Helper()
	if body == nil {
		body = make([]byte, size)
		_, _ = rand.Read(body)
	}
	payload, err := json.Marshal(forwardEvent(b, target, nil, "application/octet-stream", base64.StdEncoding.EncodeToString(body)))
	if err != nil {
		b.Fatal(err)
	}
	return payload
}

// checkVersus fails the benchmark unless an invocation answered 200 with the echoed
// body's base64: a comparison of errors would be worthless. Both answers begin with
// statusCode (lpmtls's encoder and Node's JSON.stringify keep field order).
func checkVersus(b testing.TB, name string, payload []byte, fnErr *runtimeapi.ErrorPayload, err error, size int, f *testenv.Function) {
	b.Helper()
	if err != nil || fnErr != nil ||
		!bytes.Contains(payload[:min(len(payload), 100)], []byte(`"statusCode":200`)) ||
		len(payload) < base64.StdEncoding.EncodedLen(size) {
		b.Fatalf("%s: %v %+v %.300s\nlogs:\n%.2000s", name, err, fnErr, payload, f.Logs())
	}
}

// direct is the call a brand could make without any function: the same request to
// the gateway from Go with a warm connection and session.
type direct struct {
	hc     *http.Client
	url    string
	header http.Header
}

func newDirect(b *testing.B, w *world) *direct {
	b.Helper()
	inst := w.newInstance(b, nil)
	b.Cleanup(inst.close)
	sess, err := inst.mgr.Get(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	d := &direct{hc: w.sim.HTTPClient(), url: "https://" + sess.Domains[lp.ServiceMTLSGateway] + "/mtls/account/" + sess.AccountID, header: http.Header{}}
	b.Cleanup(d.hc.CloseIdleConnections)
	ev := forwardEvent(b, w.mapped, nil, "application/octet-stream", "x")
	for k, v := range ev.Headers {
		switch strings.ToLower(k) {
		case "host", "content-length", "forwarded", "via":
		default:
			d.header.Set(k, v)
		}
	}
	d.header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	d.header.Set("Authorization", "Bearer "+sess.Bearer)
	d.header.Set("Lp-Service-Name", testenv.ServiceName)
	return d
}

func (d *direct) call(b testing.TB, body []byte) {
	req, err := http.NewRequest(http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header = d.header.Clone()
	resp, err := d.hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || n != int64(len(body)) {
		b.Fatalf("direct: %d, %d bytes, %v", resp.StatusCode, n, err)
	}
}
