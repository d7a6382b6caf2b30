package bench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/lpmtls/lpmtls/shared/awsfake"
	"github.com/lpmtls/lpmtls/shared/forward"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/lpsim"
	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/paramstore"
	"github.com/lpmtls/lpmtls/shared/secrets"
	"github.com/lpmtls/lpmtls/shared/session"
	"github.com/lpmtls/lpmtls/shared/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

// world is one simulator plus the AWS fakes, with the same user, secret and mapping as
// testenv.New, but with simulator options of our choosing (a streaming target for the
// memory benchmark, a slow login for the storm).
type world struct {
	sim    *lpsim.Sim
	aws    *awsfake.Server
	sm     *secretsmanager.Client
	ssm    *ssm.Client
	store  *paramstore.Store
	mapped string
	logger *slog.Logger
}

func newWorld(b testing.TB, o lpsim.Options) *world {
	b.Helper()
	sim, err := lpsim.Start(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sim.Close)
	fake, err := awsfake.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fake.Close)
	sim.AddUser(testenv.Username, testenv.Password)
	w := &world{sim: sim, aws: fake, mapped: sim.TargetURL("/hooks/in?x=1")}
	sim.AddMapping(testenv.ServiceName, w.mapped)
	fake.PutSecret(testenv.SecretID, `{"accountId":"`+sim.AccountID()+`","username":"`+testenv.Username+`","password":"`+testenv.Password+`"}`)
	cfg, err := fake.AWSConfig(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	w.sm = secretsmanager.NewFromConfig(cfg)
	w.ssm = ssm.NewFromConfig(cfg)
	w.store = paramstore.New(w.ssm, "")
	// Production logs one JSON line per forward at INFO; writing it to io.Discard keeps
	// the formatting cost in the figures without flooding the output.
	w.logger = obs.NewLogger(io.Discard, slog.LevelInfo)
	return w
}

// instance is one Lambda execution environment's worth of state: its own transport
// (so its own connections and TLS handshakes), LivePerson client and session manager.
type instance struct {
	hc  *http.Client
	lp  *lp.Client
	mgr *session.Manager
	svc *forward.Service
}

// httpClient is the production client, trusting the simulator's CA. SSL_CERT_FILE
// cannot be changed once the process has loaded the system pool, hence RootCAs.
func (w *world) httpClient() *http.Client {
	hc := lp.NewHTTPClient()
	hc.Transport.(*http.Transport).TLSClientConfig.RootCAs = w.sim.CAPool()
	return hc
}

func (w *world) newInstance(store session.ParameterStore) *instance {
	hc := w.httpClient()
	c := lp.New(lp.Options{HTTPClient: hc, CSDSURL: w.sim.CSDSURL()})
	mgr := session.New(session.Options{
		LP:          c,
		Credentials: secrets.NewSource(w.sm, testenv.SecretID),
		Store:       store,
		Prefix:      testenv.Prefix,
		IsExists:    func(err error) bool { return errors.Is(err, paramstore.ErrExists) },
		Logger:      w.logger,
	})
	return &instance{hc: hc, lp: c, mgr: mgr, svc: &forward.Service{
		Gateway:  c,
		Sessions: mgr,
		Policy:   forward.Policy{DefaultServiceName: testenv.ServiceName, MaxBodyBytes: 6291456},
		Logger:   w.logger,
	}}
}

func (in *instance) close() { in.hc.CloseIdleConnections() }

// clearSSM removes the shared token, domains and lease: the account as a first-ever
// cold start sees it.
func (w *world) clearSSM(b testing.TB) {
	b.Helper()
	ctx := context.Background()
	for _, leaf := range []string{"token", "domains", "lease"} {
		if err := w.store.Delete(ctx, testenv.Prefix+"/"+w.sim.AccountID()+"/"+leaf); err != nil {
			b.Fatal(err)
		}
	}
}

// forwardEvent is the events/forward.json sample aimed at the mapped target with body.
func forwardEvent(b testing.TB, target string, body []byte, contentType string, base64Body string) *events.APIGatewayV2HTTPRequest {
	b.Helper()
	e := testenv.HTTPEvent(b, "forward.json")
	testenv.SetHeader(&e, "lp-forward-url", target)
	testenv.SetHeader(&e, "content-type", contentType)
	testenv.SetHeader(&e, "lp-stop-if-certificate-not-found", "true")
	delete(e.Headers, "content-length")
	if base64Body != "" {
		e.Body, e.IsBase64Encoded = base64Body, true
	} else {
		e.Body, e.IsBase64Encoded = string(body), false
	}
	return &e
}

// countingStore wraps the shared tier to count calls and round trips: a round trip
// is a stretch of time with at least one call in flight, i.e. what the caller waits
// for. The session's two concurrent Gets are one round trip.
//
// latency is added to every call, as SSM's own latency would be, so that calls issued
// together overlap even when the loopback fake answers before the second one starts.
type countingStore struct {
	session.ParameterStore
	latency   time.Duration
	mu        sync.Mutex
	inflight  int
	calls     int
	trips     int
	leaseWins int // Put of a lease with overwrite=false that succeeded
}

func (c *countingStore) begin() {
	c.mu.Lock()
	c.calls++
	if c.inflight == 0 {
		c.trips++
	}
	c.inflight++
	c.mu.Unlock()
	if c.latency > 0 {
		time.Sleep(c.latency) // simulated service latency, not synchronisation
	}
}

func (c *countingStore) end() { c.mu.Lock(); c.inflight--; c.mu.Unlock() }

func (c *countingStore) snapshot() (calls, trips int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, c.trips
}

func (c *countingStore) Get(ctx context.Context, name string) (string, bool, error) {
	c.begin()
	defer c.end()
	return c.ParameterStore.Get(ctx, name)
}

func (c *countingStore) Put(ctx context.Context, name, value string, secure, overwrite bool) error {
	c.begin()
	defer c.end()
	err := c.ParameterStore.Put(ctx, name, value, secure, overwrite)
	if err == nil && strings.HasSuffix(name, "/lease") {
		c.mu.Lock()
		c.leaseWins++
		c.mu.Unlock()
	}
	return err
}

func (c *countingStore) Delete(ctx context.Context, name string) error {
	c.begin()
	defer c.end()
	return c.ParameterStore.Delete(ctx, name)
}

// durations collects per-op latencies for percentiles.
type durations []time.Duration

func (d durations) pct(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (d durations) max() time.Duration {
	var m time.Duration
	for _, v := range d {
		m = max(m, v)
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// awsCalls splits the fake's counters by service.
func awsCalls(s *awsfake.Server) (ssmCalls, smCalls int) {
	for k, v := range s.Calls() {
		switch {
		case len(k) > 10 && k[:10] == "AmazonSSM.":
			ssmCalls += v
		case len(k) > 15 && k[:15] == "secretsmanager.":
			smCalls += v
		}
	}
	return ssmCalls, smCalls
}
