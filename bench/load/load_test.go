// Package load is the load run of RELIABILITY.md (`make load`, not part of `make test`):
// four forward bootstraps sharing one SSM fake take 5,000 forwards at concurrency 50,
// 1 KiB and 256 KiB bodies, while the simulator throttles 5% of gateway calls, fails 2%
// with a 5xx and revokes every bearer once. It asserts zero wrong answers, bounded
// logins, no fd or memory growth and no secret in any log, and prints a table.
//
// Concurrency is realised the way one Lambda execution environment allows it: each
// bootstrap runs under its own Runtime API server, which hands it one invocation at a
// time; 50 callers share the four environments round-robin, so up to four invocations
// execute at once and the others wait in their server's queue (in AWS, Lambda would
// start more environments instead). Latencies are measured at the caller and so
// include that queueing.
package load

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/runtimeapi"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	instances   = 4
	requests    = 5000
	concurrency = 50
	warmups     = 200
	smallBody   = 1 << 10
	largeBody   = 256 << 10
	throttlepct = 5
	serverPct   = 2
	// Faults are injected only among the first faultWindow jobs, so every one of them is
	// met by a later forward and the counts of error answers are exact.
	faultWindow = requests - 200
	seed        = 20261202
)

// job is one forward: its event and the answer it must get when no fault meets it.
type job struct {
	payload []byte
	want    []byte // the target's echo: the request body
	binary  bool
}

type outcome struct {
	code    string // "" for the target's echo
	latency time.Duration
	wrong   string // why the answer was wrong, if it was
}

func TestLoad(t *testing.T) {
	if os.Getenv("LPMTLS_LOAD") == "" {
		t.Skip("the load run is `make load` (LPMTLS_LOAD=1)")
	}
	env := testenv.New(t)
	url := env.Sim.TargetURL("/files/upload")
	env.Sim.AddMapping(testenv.ServiceName, url)
	fns := make([]*testenv.Function, instances)
	for i := range fns {
		fns[i] = env.Start(t, "forward", "AWS_LAMBDA_LOG_LEVEL=INFO")
	}

	small, large := makeJob(t, env, smallBody, false), makeJob(t, env, largeBody, true)
	pick := func(i int) job {
		if i%2 == 0 {
			return small
		}
		return large
	}

	// Warm-up: every instance logs in (or finds the token), opens its connections and
	// grows its heap for both body sizes; its RSS and fds afterwards are the warm level.
	run(t, fns, warmups, pick, nil)
	warmRSS, warmFDs := make([]int64, instances), make([]int, instances)
	for i, f := range fns {
		u := usage(t, f.Process)
		warmRSS[i], warmFDs[i] = u.RSSKB, u.FDs
	}
	loginsWarm := env.Sim.Counts().Logins
	bearers := []string{storedBearer(t, env)}

	// Which jobs meet which fault, fixed by the seed.
	r := mrand.New(mrand.NewPCG(seed, seed))
	order := r.Perm(faultWindow)
	nThrottle, nServer := requests*throttlepct/100, requests*serverPct/100
	fault := map[int]lpsim.Fault{}
	for _, i := range order[:nThrottle] {
		fault[i] = lpsim.Fault{Op: "forward", Status: 429, RetryAfter: "1"}
	}
	for _, i := range order[nThrottle : nThrottle+nServer] {
		fault[i] = lpsim.Fault{Op: "forward", Status: 503}
	}
	var loginsAtRevoke int
	before := func(i int) {
		if f, ok := fault[i]; ok {
			env.Sim.Inject(f)
		}
		if i == requests/2 {
			loginsAtRevoke = env.Sim.Counts().Logins
			env.Sim.RevokeTokens()
		}
	}
	start := time.Now()
	outs := run(t, fns, requests, pick, before)
	elapsed := time.Since(start)
	loginsAfter := env.Sim.Counts().Logins
	bearers = append(bearers, storedBearer(t, env))

	// Zero wrong answers, and exactly one error answer per injected fault.
	codes := map[string]int{}
	var lat []time.Duration
	for i, o := range outs {
		if o.wrong != "" {
			t.Errorf("request %d: wrong answer: %s", i, o.wrong)
		}
		codes[o.code]++
		lat = append(lat, o.latency)
	}
	if codes["liveperson_throttled"] != nThrottle || codes["gateway_error"] != nServer || codes[""] != requests-nThrottle-nServer {
		t.Errorf("answers by code %v, want %d liveperson_throttled, %d gateway_error, the rest echoes", codes, nThrottle, nServer)
	}
	// Logins: the revocation costs each instance at most two.
	revokeLogins := loginsAfter - loginsAtRevoke
	if revokeLogins > 2*instances {
		t.Errorf("%d logins after one revocation, want at most %d (2 per instance)", revokeLogins, 2*instances)
	}
	if loginsAtRevoke != loginsWarm {
		t.Errorf("%d logins before the revocation, after warm-up %d: the fault run logged in without cause", loginsAtRevoke, loginsWarm)
	}

	// The warm level again: no fd leak, memory back where it was.
	type inst struct {
		warmRSS, afterRSS, peakRSS int64
		warmFDs, afterFDs          int
	}
	per := make([]inst, instances)
	var peak int64
	for i, f := range fns {
		u := usage(t, f.Process)
		per[i] = inst{warmRSS[i], u.RSSKB, u.PeakRSSKB, warmFDs[i], u.FDs}
		peak = max(peak, per[i].peakRSS)
		if per[i].afterFDs > per[i].warmFDs+2 {
			t.Errorf("instance %d: %d open fds after the run, %d warm", i+1, per[i].afterFDs, per[i].warmFDs)
		}
		// The heap is sized by the largest body in flight, which the warm-up already had;
		// what the run adds beyond a quarter is growth a leak would show.
		if per[i].afterRSS > per[i].warmRSS+per[i].warmRSS/4 {
			t.Errorf("instance %d: RSS %d kB after the run, %d kB warm", i+1, per[i].afterRSS, per[i].warmRSS)
		}
	}

	// No secret in any log.
	secrets := append([]string{testenv.Password, "dXNlcjpwYXNz", "abc123"}, bearers...)
	for i, f := range fns {
		logs := f.FinalLogs()
		for _, s := range secrets {
			if s != "" && strings.Contains(logs, s) {
				t.Errorf("instance %d: a secret (%.6s…) is in the logs", i+1, s)
			}
		}
		if n := strings.Count(logs, `"message":"forwarded"`) + strings.Count(logs, `"message":"forward failed"`); n < 100 {
			t.Errorf("instance %d: only %d request log lines: the scan would prove nothing", i+1, n)
		}
	}

	// The table.
	var b strings.Builder
	slices.Sort(lat)
	fmt.Fprintf(&b, "| metric | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| requests | %d (%d × 1 KiB JSON, %d × 256 KiB binary), concurrency %d over %d instances |\n", requests, requests/2, requests/2, concurrency, instances)
	fmt.Fprintf(&b, "| wall time | %.1f s (%.0f req/s) |\n", elapsed.Seconds(), float64(requests)/elapsed.Seconds())
	fmt.Fprintf(&b, "| target's exact echo | %d |\n", codes[""])
	keys := make([]string, 0, len(codes))
	for k := range codes {
		if k != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "| error `%s` | %d |\n", k, codes[k])
	}
	wrong := 0
	for _, o := range outs {
		if o.wrong != "" {
			wrong++
		}
	}
	fmt.Fprintf(&b, "| wrong answers | %d |\n", wrong)
	fmt.Fprintf(&b, "| latency p50 / p99 / max (at the caller, queueing included) | %.1f / %.1f / %.1f ms |\n", ms(pct(lat, 0.5)), ms(pct(lat, 0.99)), ms(lat[len(lat)-1]))
	fmt.Fprintf(&b, "| logins: warm-up / after the revocation | %d / %d |\n", loginsWarm, revokeLogins)
	fmt.Fprintf(&b, "| peak RSS (largest instance, VmHWM) | %.1f MB |\n", float64(peak)/1024)
	fmt.Fprintf(&b, "\n| instance | RSS warm → after (MB) | peak RSS (MB) | open fds warm → after |\n|---|---|---|---|\n")
	for i, p := range per {
		fmt.Fprintf(&b, "| %d | %.1f → %.1f | %.1f | %d → %d |\n", i+1, float64(p.warmRSS)/1024, float64(p.afterRSS)/1024, float64(p.peakRSS)/1024, p.warmFDs, p.afterFDs)
	}
	fmt.Print("\n" + b.String())
	if out := os.Getenv("LPMTLS_LOAD_OUT"); out != "" && !t.Failed() {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// run sends n forwards from concurrency callers, jobs 2k and 2k+1 (one of each body
// size) to instance k mod instances; before, when set, runs as job i is handed out.
func run(t *testing.T, fns []*testenv.Function, n int, pick func(int) job, before func(int)) []outcome {
	t.Helper()
	outs := make([]outcome, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				outs[i] = send(fns[(i/2)%len(fns)], pick(i))
			}
		}()
	}
	for i := range n {
		if before != nil {
			before(i)
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return outs
}

func send(f *testenv.Function, j job) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	res, err := f.Process.Invoke(ctx, j.payload, 30*time.Second)
	o := outcome{latency: time.Since(start)}
	switch {
	case err != nil:
		o.wrong = "invoke: " + err.Error()
		return o
	case res.Error != nil:
		o.wrong = "function error " + res.Error.ErrorType + ": " + res.Error.ErrorMessage
		return o
	}
	var r events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(res.Payload, &r); err != nil {
		o.wrong = "answer is not an API Gateway response"
		return o
	}
	if src := r.Headers["LP-Error-Source"]; src != "" {
		var b apierr.Body
		_ = json.Unmarshal([]byte(r.Body), &b)
		o.code = b.Error.Code
		switch {
		case o.code == "liveperson_throttled" && r.StatusCode == 429 && src == "liveperson" && r.Headers["Retry-After"] == "1":
		case o.code == "gateway_error" && r.StatusCode == 502 && src == "liveperson":
		default:
			o.wrong = fmt.Sprintf("error %d %s from %s: %.200s", r.StatusCode, o.code, src, r.Body)
		}
		return o
	}
	body := []byte(r.Body)
	if j.binary {
		var err error
		if !r.IsBase64Encoded {
			o.wrong = "binary echo not base64"
			return o
		}
		if body, err = base64.StdEncoding.DecodeString(r.Body); err != nil {
			o.wrong = "bad base64"
			return o
		}
	}
	if r.StatusCode != 200 || !bytes.Equal(body, j.want) || r.Headers["X-Echo-Client-Cn"] != testenv.ServiceName {
		o.wrong = fmt.Sprintf("status %d, %d bytes, client CN %q: not the target's echo", r.StatusCode, len(body), r.Headers["X-Echo-Client-Cn"])
	}
	return o
}

// makeJob is the forward-binary.json sample (binary) or forward.json (JSON text)
// carrying size bytes to the mapped echo target.
func makeJob(t *testing.T, env *testenv.Env, size int, binary bool) job {
	t.Helper()
	var e events.APIGatewayV2HTTPRequest
	body := make([]byte, size)
	if binary {
		if _, err := rand.Read(body); err != nil {
			t.Fatal(err)
		}
		e = testenv.HTTPEvent(t, "forward-binary.json")
		testenv.SetHeader(&e, "lp-forward-url", env.Sim.TargetURL("/files/upload"))
		e.Body, e.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	} else {
		copy(body, `{"k":"`)
		for i := 6; i < size-2; i++ {
			body[i] = 'a' + byte(i%26)
		}
		copy(body[size-2:], `"}`)
		e = testenv.HTTPEvent(t, "forward.json")
		testenv.SetHeader(&e, "lp-forward-url", env.MappedURL)
		delete(e.Headers, "content-length")
		e.Body = string(body)
	}
	p, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return job{payload: p, want: body, binary: binary}
}

func storedBearer(t *testing.T, env *testenv.Env) string {
	t.Helper()
	v, _, ok := env.AWS.Parameter(testenv.Prefix + "/token")
	if !ok {
		return ""
	}
	var tok struct {
		Bearer string `json:"bearer"`
	}
	_ = json.Unmarshal([]byte(v), &tok)
	return tok.Bearer
}

func usage(t *testing.T, p *runtimeapi.Process) runtimeapi.Usage {
	t.Helper()
	u, err := p.Usage()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func pct(sorted []time.Duration, p float64) time.Duration {
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
