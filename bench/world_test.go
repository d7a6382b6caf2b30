package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/lpmtls/lpmtls/shared/config"
	"github.com/lpmtls/lpmtls/shared/forward"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/paramstore"
	"github.com/lpmtls/lpmtls/shared/session"
	"github.com/lpmtls/lpmtls/shared/testworld/awsfake"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
	"github.com/lpmtls/lpmtls/shared/wiring"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// world is testenv's world (simulator, AWS fakes, login secret, mapping) with simulator
// options of our choosing (a streaming target for the memory benchmark, a slow login
// for the storm), and the configuration a deployed function would load from it.
type world struct {
	env    *testenv.Env
	sim    *lpsim.Sim
	aws    *awsfake.Server
	cfg    *config.Config
	store  *paramstore.Store // direct access to the shared tier, for clearSSM
	mapped string
	logger *slog.Logger
}

func newWorld(b testing.TB, o lpsim.Options) *world {
	b.Helper()
	env := testenv.NewWith(b, o)
	vars := map[string]string{}
	for _, kv := range env.FunctionEnv() {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		b.Fatal(err)
	}
	return &world{
		env: env, sim: env.Sim, aws: env.AWS, cfg: cfg, mapped: env.MappedURL,
		store: paramstore.New(ssm.NewFromConfig(env.AWSConfig), ""),
		// Production logs one JSON line per forward at INFO; writing it to io.Discard
		// keeps the formatting cost in the figures without flooding the output.
		logger: obs.NewLogger(io.Discard, slog.LevelInfo),
	}
}

// instance is one Lambda execution environment's worth of state, built by wiring.Build
// as the function mains build it: its own transport (so its own connections and TLS
// handshakes), LivePerson client and session manager.
type instance struct {
	hc  *http.Client
	lp  *lp.Client
	mgr *session.Manager
	svc *forward.Service
}

// newInstance builds an instance whose AWS calls go through c (nil: straight to the
// fakes). Every instance's SSM calls reach the same fake, as every Lambda environment's
// reach the same account.
func (w *world) newInstance(b testing.TB, c *countingSSM) *instance {
	b.Helper()
	awsCfg := w.env.AWSConfig
	if c != nil {
		awsCfg.HTTPClient = c
	}
	hc := w.sim.HTTPClient()
	d, err := wiring.Build(context.Background(), w.cfg, wiring.Options{
		Logger: w.logger, HTTPClient: hc, AWS: &awsCfg, OnLogin: forward.RecordLogin})
	if err != nil {
		b.Fatal(err)
	}
	return &instance{hc: hc, lp: d.LP, mgr: d.Sessions, svc: forward.NewService(w.cfg, d.LP, d.Sessions, w.logger)}
}

func (in *instance) close() { in.hc.CloseIdleConnections() }

// clearSSM removes the shared token, domains and lease: the account as a first-ever
// cold start sees it.
func (w *world) clearSSM(b testing.TB) {
	b.Helper()
	ctx := context.Background()
	for _, leaf := range []string{"token", "domains", "lease"} {
		if err := w.store.Delete(ctx, testenv.Prefix+"/"+leaf); err != nil {
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

// countingSSM sits under the AWS SDK of the instances it is given to and counts their
// SSM calls and round trips: a round trip is a stretch of time with at least one call
// in flight, i.e. what the caller waits for. The session's two concurrent Gets are one
// round trip. Other services pass through uncounted.
//
// latency is added to every SSM call, as SSM's own latency would be, so that calls
// issued together overlap even when the loopback fake answers before the second one
// starts.
type countingSSM struct {
	next    aws.HTTPClient
	latency time.Duration
	// every counts the calls of every AWS service (Secrets Manager too), not only SSM's.
	every     bool
	mu        sync.Mutex
	inflight  int
	calls     int
	trips     int
	leaseWins int // PutParameter of a lease with Overwrite false that succeeded
}

func newCountingSSM(latency time.Duration) *countingSSM {
	return &countingSSM{next: awshttp.NewBuildableClient(), latency: latency}
}

func (c *countingSSM) Do(req *http.Request) (*http.Response, error) {
	target := req.Header.Get("X-Amz-Target")
	if !c.every && !strings.HasPrefix(target, "AmazonSSM.") {
		return c.next.Do(req)
	}
	var put struct {
		Name      string
		Overwrite bool
	}
	if target == "AmazonSSM.PutParameter" && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		_ = json.Unmarshal(body, &put)
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	c.begin()
	defer c.end()
	resp, err := c.next.Do(req)
	if err == nil && resp.StatusCode == http.StatusOK && strings.HasSuffix(put.Name, "/lease") && !put.Overwrite {
		c.mu.Lock()
		c.leaseWins++
		c.mu.Unlock()
	}
	return resp, err
}

func (c *countingSSM) begin() {
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

func (c *countingSSM) end() { c.mu.Lock(); c.inflight--; c.mu.Unlock() }

func (c *countingSSM) snapshot() (calls, trips int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, c.trips
}

func (c *countingSSM) leases() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaseWins
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
