package bench

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// BenchmarkAuthCalls counts, per forward invocation, the LivePerson logins and CSDS
// calls, the SSM calls and round trips (a round trip is what the caller waits for: the
// session's two concurrent Gets are one), the Secrets Manager calls and the new TLS
// connections to the gateway host. Cold ops use a new instance (manager, client and
// transport) each time, as a new Lambda environment would. ns/op is the invocation's
// latency on loopback, with 1 ms added to every SSM call (see countingSSM).
func BenchmarkAuthCalls(b *testing.B) {
	w := newWorld(b, lpsim.Options{})
	ctx := context.Background()
	body := []byte(`{"event":"ping"}`)
	ev := forwardEvent(b, w.mapped, body, "application/json", "")
	store := newCountingSSM(time.Millisecond)

	invoke := func(b *testing.B, in *instance) {
		if r := in.svc.HandleHTTP(ctx, ev); r.StatusCode != 200 {
			b.Fatalf("status %d %s", r.StatusCode, r.Body)
		}
	}
	// Leaves a token and domains in SSM.
	seed := w.newInstance(b, store)
	invoke(b, seed)
	seed.close()

	cases := []struct {
		name string
		// prepare runs untimed before each op; it returns the instance to invoke.
		prepare func(b *testing.B) *instance
	}{
		{"warm", nil},
		{"cold-with-ssm-token", func(b *testing.B) *instance { return w.newInstance(b, store) }},
		{"cold-without", func(b *testing.B) *instance { w.clearSSM(b); return w.newInstance(b, store) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var warm *instance
			if c.prepare == nil {
				warm = w.newInstance(b, store)
				defer warm.close()
				invoke(b, warm)
			}
			var logins, csds, tls, ssmCalls, smCalls, storeCalls, trips int
			_ = storeCalls
			for b.Loop() {
				b.StopTimer()
				in := warm
				if c.prepare != nil {
					in = c.prepare(b)
				}
				s0 := w.sim.Counts()
				q0, sm0 := awsCalls(w.aws)
				c0, t0 := store.snapshot()
				b.StartTimer()
				invoke(b, in)
				b.StopTimer()
				s1 := w.sim.Counts()
				q1, sm1 := awsCalls(w.aws)
				c1, t1 := store.snapshot()
				logins += s1.Logins - s0.Logins
				csds += s1.CSDS - s0.CSDS
				tls += s1.GatewayTLSHandshakes - s0.GatewayTLSHandshakes
				ssmCalls += q1 - q0
				smCalls += sm1 - sm0
				storeCalls += c1 - c0
				trips += t1 - t0
				if in != warm {
					in.close()
				}
				b.StartTimer()
			}
			n := float64(b.N)
			b.ReportMetric(float64(logins)/n, "logins/op")
			b.ReportMetric(float64(csds)/n, "csds/op")
			b.ReportMetric(float64(ssmCalls)/n, "ssm/op")
			b.ReportMetric(float64(trips)/n, "ssm-rt/op")
			b.ReportMetric(float64(smCalls)/n, "sm/op")
			b.ReportMetric(float64(tls)/n, "tls/op")
		})
	}
}

// BenchmarkLoginStorm starts 100 cold instances at once (released by closing a
// channel), each with its own manager, client and transport, all sharing one SSM
// store, with nothing in SSM. It reports the logins made per storm and how long the
// slowest instance waited for its session, in milliseconds and in units of one login
// round trip (login-rtt: a lone login on a new connection, median of 5). The
// "login-100ms" variant holds every login back 100 ms, closer to LivePerson's real
// latency than loopback.
func BenchmarkLoginStorm(b *testing.B) {
	for _, v := range []struct {
		name  string
		delay time.Duration
	}{{"loopback", 0}, {"login-100ms", 100 * time.Millisecond}} {
		b.Run(v.name, func(b *testing.B) {
			w := newWorld(b, lpsim.Options{})
			if v.delay > 0 {
				w.sim.Inject(lpsim.Fault{Op: "login", Delay: v.delay, Times: 1 << 30})
			}
			ctx := context.Background()
			rtt := loginRTT(b, w)
			lone := loneCold(b, w)
			const instances = 100
			var logins, csds, ssmCalls, maxLogins int
			var worst, p50, lag durations
			leaseWins := 0
			for b.Loop() {
				b.StopTimer()
				w.clearSSM(b)
				store := newCountingSSM(0)
				insts := make([]*instance, instances)
				for i := range insts {
					insts[i] = w.newInstance(b, store)
				}
				s0 := w.sim.Counts()
				q0, _ := awsCalls(w.aws)
				start := make(chan struct{})
				waits := make(durations, instances)
				var t0 time.Time
				var wg sync.WaitGroup
				for i, in := range insts {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						if _, err := in.mgr.Get(ctx); err != nil {
							b.Error(err)
						}
						waits[i] = time.Since(t0)
					}()
				}
				b.StartTimer()
				t0 = time.Now()
				close(start)
				wg.Wait()
				b.StopTimer()
				s1 := w.sim.Counts()
				q1, _ := awsCalls(w.aws)
				logins += s1.Logins - s0.Logins
				maxLogins = max(maxLogins, s1.Logins-s0.Logins)
				csds += s1.CSDS - s0.CSDS
				ssmCalls += q1 - q0
				leaseWins += store.leases()
				// Lag: from the first instance to have a session (the token exists from
				// then on) to the last one.
				lag = append(lag, waits.max()-waits.pct(0))
				worst = append(worst, waits.max())
				p50 = append(p50, waits.pct(0.5))
				for _, in := range insts {
					in.close()
				}
				b.StartTimer()
			}
			n := float64(b.N)
			b.ReportMetric(float64(logins)/n, "logins")
			b.ReportMetric(float64(maxLogins), "logins-max")
			b.ReportMetric(ms(lone), "lone-cold-ms")
			b.ReportMetric(float64(worst.max()-lone)/float64(rtt), "max-extra-x-login")
			b.ReportMetric(float64(csds)/n, "csds")
			b.ReportMetric(float64(ssmCalls)/n, "ssm-calls")
			b.ReportMetric(ms(worst.max()), "max-wait-ms")
			b.ReportMetric(ms(p50.pct(0.5)), "p50-wait-ms")
			b.ReportMetric(ms(rtt), "login-rtt-ms")
			b.ReportMetric(float64(leaseWins)/n, "lease-wins")
			b.ReportMetric(float64(lag.max())/float64(rtt), "max-lag-x-login")
			b.ReportMetric(float64(worst.max())/float64(rtt), "max-wait-x-login")
		})
	}
}

// loneCold is the median time one cold instance alone, with nothing in SSM, takes to
// get its session: the storm's baseline.
func loneCold(b *testing.B, w *world) time.Duration {
	var d durations
	for range 3 {
		w.clearSSM(b)
		in := w.newInstance(b, nil)
		t0 := time.Now()
		if _, err := in.mgr.Get(context.Background()); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
		in.close()
	}
	return d.pct(0.5)
}

// loginRTT is the median time of a lone login by a new client (new connection, TLS
// handshake included), as one cold instance pays it.
func loginRTT(b *testing.B, w *world) time.Duration {
	ctx := context.Background()
	cred := lp.Credentials{AccountID: w.sim.AccountID(), Username: testenv.Username, Password: testenv.Password}
	var d durations
	for range 5 {
		hc := w.sim.HTTPClient()
		c := lp.New(lp.Options{HTTPClient: hc, CSDSURL: w.sim.CSDSURL()})
		dom, err := c.Discover(ctx, w.sim.AccountID(), cred.Method())
		if err != nil {
			b.Fatal(err)
		}
		hc.CloseIdleConnections()
		t0 := time.Now()
		if _, err := c.Login(ctx, dom, cred); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
		hc.CloseIdleConnections()
	}
	return d.pct(0.5)
}
