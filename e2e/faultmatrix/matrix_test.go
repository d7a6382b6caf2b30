// Package faultmatrix_test is the fault matrix of RELIABILITY.md: every fault we can
// produce here (rows) against every way lpmtls is invoked (columns), each cell a subtest
// driving the built bootstraps under the Runtime API, with the LivePerson simulator, the
// AWS fakes and fauxqs behind them. The table below is the single source of both the
// assertions and the document: with LPMTLS_RELIABILITY_OUT=FILE (make reliability) the
// test writes the matrix as markdown once every cell has passed.
package faultmatrix_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/testworld/awsfake"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/sqsemu"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

func TestMain(m *testing.M) {
	// The cells spend their time waiting on deadlines, subprocesses and the SQS
	// emulator rather than on the CPU, so they run more at once than the default of
	// GOMAXPROCS; an explicit -parallel still wins.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "8")
	}
	testenv.Main(m)
}

// want is what a cell's caller must see, and what RELIABILITY.md says about it.
type want struct {
	// HTTP: the status and, for an lpmtls error, its code, LP-Error-Source and
	// Retry-After ("" = absent); header must be present.
	status                           int
	code, source, retryAfter, header string
	// fnError: the invocation fails with this function error type instead.
	fnError string
	// Scheduled check: failed and code are the summary's; metric is HealthCheckFailed.
	failed bool
	metric string
	// SQS: n messages; the first batch (delivered, batch item failures, dead-lettered)
	// and where the n end (delivered, dead-lettered); dlqCode is the DLQ reason.
	n       int
	first   [3]int
	final   [2]int
	dlqCode string
	// retried says what is retried, and where.
	retried string
	// check asserts more (counters, a second invocation).
	check func(c *cell, o observed)
	// na: the fault cannot meet this column; the reason is the cell's text.
	na string
}

type row struct {
	name   string
	prime  func(c *cell) // runs before the fault
	inject func(c *cell)
	heal   func(c *cell) // ends the fault (SQS cells then drain the queue)
	// timeout is the invocation timeout under the fault; nil: 30 s.
	timeout func(col column) time.Duration
	// kill, when set, SIGKILLs the process as soon as it reports true.
	kill func(c *cell) bool
	cols [4]want
	// also names the older tests that cover this fault in more depth.
	also string
}

func httpOK(retried string) want { return want{status: 200, retried: retried} }

func httpErr(status int, code, source, retryAfter, retried string) want {
	return want{status: status, code: code, source: source, retryAfter: retryAfter, retried: retried}
}

func schedOK(retried string) want { return want{metric: "0", retried: retried} }

func schedFailed(code, retried string) want {
	return want{failed: true, code: code, metric: "1", retried: retried}
}

func batch(n int, first [3]int, final [2]int, retried string) want {
	return want{n: n, first: first, final: final, retried: retried}
}

func with(w want, check func(c *cell, o observed)) want { w.check = check; return w }

func warm(c *cell) {
	c.t.Helper()
	switch c.col {
	case colForward, colMapping:
		if o := c.runHTTP(normalTimeout, nil); o.status != 200 {
			c.t.Fatalf("warm-up: %+v", o)
		}
	case colSchedule:
		if o := c.runSchedule(normalTimeout, nil); o.fnError != "" || o.sum.Failed {
			c.t.Fatalf("warm-up: %+v", o)
		}
	case colSQS:
		// One message delivered warms the process; it is not one of the cell's.
		if o := c.runSQS(1, normalTimeout, nil, nil); o.final != [2]int{1, 0} {
			c.t.Fatalf("warm-up: %+v", o)
		}
	}
	c.env.Sim.ResetCounts()
	c.env.AWS.ResetCalls()
}

func shortDeadline(col column) time.Duration {
	if col == colSQS {
		return shortSQS
	}
	return shortHTTP
}

func slowSSMDeadline(col column) time.Duration {
	if col == colSQS {
		return slowSSMSQS
	}
	return slowSSMHTTP
}

// noLoginAgain checks that a second invocation inside the login backoff is answered
// the same without logging in again.
func noLoginAgain(c *cell, o observed) {
	c.t.Helper()
	again := c.runHTTP(normalTimeout, nil)
	if again.status != o.status || again.code != o.code {
		c.t.Fatalf("second call in the backoff: %+v, first %+v", again, o)
	}
	if n := c.env.Sim.Counts().Logins; n != 1 {
		c.t.Fatalf("%d logins for two calls inside the backoff, want 1", n)
	}
}

func logins(n int) func(c *cell, o observed) {
	return func(c *cell, o observed) {
		c.t.Helper()
		if got := c.env.Sim.Counts().Logins; got != n {
			c.t.Fatalf("%d logins, want %d", got, n)
		}
	}
}

// notSent: a failed login says nothing was sent, and nothing was.
func notSent(c *cell, o observed) {
	c.t.Helper()
	logins(1)(c, o)
	if n := c.env.Sim.Counts(); n.Forwards+n.Mappings != 0 || !strings.Contains(o.message, "the request was not sent") {
		c.t.Fatalf("message %q, counts %+v", o.message, n)
	}
}

func untouchedTarget(c *cell, o observed) {
	c.t.Helper()
	if n := c.env.Sim.Counts().TargetRequests; n != 0 {
		c.t.Fatalf("%d target requests from the mapping function", n)
	}
}

// freshInstance shows the next environment after a crash serving at once, with the
// token the dead one stored in SSM: no login.
func freshInstance(c *cell, o observed) {
	c.t.Helper()
	c.env.Sim.ClearFaults()
	before := c.env.Sim.Counts().Logins
	c.start()
	switch c.col {
	case colForward, colMapping:
		if o := c.runHTTP(normalTimeout, nil); o.status != 200 {
			c.t.Fatalf("next environment: %+v", o)
		}
	case colSchedule:
		if o := c.runSchedule(normalTimeout, nil); o.fnError != "" || o.sum.Failed {
			c.t.Fatalf("next environment: %+v", o)
		}
	}
	if n := c.env.Sim.Counts().Logins; n != before {
		c.t.Fatalf("the next environment logged in again (%d logins)", n-before)
	}
}

// staleDomains rewrites the cached domains as fetched an hour ago, so the next cold
// process must ask CSDS and, when it fails, fall back to them.
func staleDomains(c *cell) {
	c.t.Helper()
	name := testenv.Prefix + "/domains"
	v, _, ok := c.env.AWS.Parameter(name)
	if !ok {
		c.t.Fatal("no domains cached after the warm-up")
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(v), &d); err != nil {
		c.t.Fatal(err)
	}
	d["fetchedAt"] = time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(d)
	c.env.AWS.SetParameter(name, string(b), "String")
}

const (
	retryCallerHTTP = "not retried by lpmtls; the caller may retry"
	retryNextRun    = "not retried: the summary says failed, HealthCheckFailed=1 raises the alarm, the next scheduled run is the retry (no invocation error, so no Lambda async retries)"
)

var rows = []row{
	{
		name:   "login 5xx",
		inject: func(c *cell) { c.env.Sim.Inject(lpsim.Fault{Op: "login", Status: 503}) },
		cols: [4]want{
			with(httpErr(502, "gateway_error", "liveperson", "", "not retried by lpmtls; the message says the request was not sent, so the caller may retry safely; no login backoff after a 5xx, the next call logs in"), notSent),
			with(httpErr(502, "gateway_error", "liveperson", "", retryCallerHTTP+"; the next call logs in"), notSent),
			batch(3, [3]int{0, 3, 0}, [2]int{3, 0}, "one shared login for the batch fails: all 3 are batch item failures; SQS redelivers after the visibility timeout and the next batch logs in"),
			schedFailed("gateway_error", retryNextRun),
		},
	},
	{
		name:   "login 429 with Retry-After",
		also:   "session TestLoginBackoff",
		inject: func(c *cell) { c.env.Sim.Inject(lpsim.Fault{Op: "login", Status: 429, RetryAfter: "6"}) },
		cols: [4]want{
			with(httpErr(429, "liveperson_throttled", "liveperson", "6", "the caller retries after Retry-After; until then lpmtls answers 429 without logging in (this instance, and every other through the SSM lease marker)"), noLoginAgain),
			with(httpErr(429, "liveperson_throttled", "liveperson", "6", "as forward: the caller retries after Retry-After, no login until then"), noLoginAgain),
			batch(3, [3]int{0, 3, 0}, [2]int{3, 0}, "all 3 batch item failures; redeliveries inside the 6 s backoff fail at once without a login; delivered once it ends"),
			schedFailed("liveperson_throttled", retryNextRun),
		},
	},
	{
		name:   "login 429 without Retry-After",
		inject: func(c *cell) { c.env.Sim.Inject(lpsim.Fault{Op: "login", Status: 429}) },
		cols: [4]want{
			with(httpErr(429, "liveperson_throttled", "liveperson", "5", "Retry-After is LivePerson's login floor of 5 s; no login before it"), noLoginAgain),
			with(httpErr(429, "liveperson_throttled", "liveperson", "5", "as forward"), noLoginAgain),
			batch(3, [3]int{0, 3, 0}, [2]int{3, 0}, "as with Retry-After, with the 5 s floor"),
			schedFailed("liveperson_throttled", retryNextRun),
		},
	},
	{
		name:   "login refused",
		also:   "session TestLoginBackoff, TestLeaseHolderRefusedWaiterDoesNotLogIn",
		inject: func(c *cell) { c.env.Sim.Inject(lpsim.Fault{Op: "login", Status: 401}) },
		cols: [4]want{
			with(httpErr(502, "liveperson_auth_failed", "liveperson", "", "the secret is re-read once (a rotation is picked up); if unchanged, no login for 30 s: later calls get the same 502 at once"), noLoginAgain),
			with(httpErr(502, "liveperson_auth_failed", "liveperson", "", "as forward"), noLoginAgain),
			func() want {
				w := batch(3, [3]int{0, 0, 3}, [2]int{0, 3}, "permanent: dead-lettered at once with the reason (fix the secret, then redrive the DLQ)")
				w.dlqCode = "liveperson_auth_failed"
				return w
			}(),
			schedFailed("liveperson_auth_failed", retryNextRun),
		},
	},
	{
		name:   "CSDS down, cold (nothing cached)",
		also:   "session TestFailedDiscoveryRememberedBriefly",
		inject: func(c *cell) { c.env.Sim.Inject(lpsim.Fault{Op: "csds", Status: 503, Times: 1000}) },
		heal:   func(c *cell) { c.env.Sim.ClearFaults() },
		cols: [4]want{
			httpErr(502, "discovery_failed", "liveperson", "", retryCallerHTTP+"; "+csdsBackoff),
			httpErr(502, "discovery_failed", "liveperson", "", retryCallerHTTP),
			batch(3, [3]int{0, 3, 0}, [2]int{3, 0}, "batch item failures; redelivered until CSDS answers"),
			schedFailed("discovery_failed", retryNextRun),
		},
	},
	{
		name:   "CSDS answers without mtlsGateway",
		also:   "e2e TestCSDSMissingServiceNotCached; session TestCSDSMissingServiceNotCached",
		inject: func(c *cell) { c.env.Sim.SetCSDSOmitted("mtlsGateway") },
		heal:   func(c *cell) { c.env.Sim.SetCSDSOmitted() },
		cols: [4]want{
			with(httpErr(502, "discovery_failed", "liveperson", "", retryCallerHTTP+"; the message names mtlsGateway; the list is cached nowhere (neither memory nor SSM): "+csdsBackoff+", and a new instance asks CSDS itself"), incompleteNotCached),
			with(httpErr(502, "discovery_failed", "liveperson", "", "as forward"), incompleteNotCached),
			with(batch(3, [3]int{0, 3, 0}, [2]int{3, 0}, "batch item failures; redelivered until CSDS is whole again (asked at most once per 5 s meanwhile)"), recoveredDomains),
			with(schedFailed("discovery_failed", retryNextRun+"; nothing cached, so the next run asks CSDS again"), incompleteNotCached),
		},
	},
	{
		name: "CSDS down, warm (domains cached)",
		also: "e2e TestCSDSDownWithCachedDomains (a fresh cache)",
		prime: func(c *cell) {
			warm(c)
			c.procs[0].Stop()
			staleDomains(c)
		},
		inject: func(c *cell) { c.env.Sim.Inject(lpsim.Fault{Op: "csds", Status: 503, Times: 1000}) },
		cols: [4]want{
			with(httpOK("CSDS asked once, fails; the cached domains serve (CSDS asked again after a tenth of LP_DOMAINS_TTL)"), csdsFallback),
			with(httpOK("as forward"), csdsFallback),
			with(batch(3, [3]int{3, 0, 0}, [2]int{3, 0}, "nothing: the cached domains serve"), csdsFallback),
			with(schedOK("nothing: the cached domains serve"), csdsFallback),
		},
	},
	{
		name:   "SSM down",
		also:   "e2e TestSSMUnavailableIsNotFatal",
		inject: func(c *cell) { c.env.AWS.SetDown(awsfake.SSM, true) },
		heal:   func(c *cell) { c.env.AWS.SetDown(awsfake.SSM, false) },
		cols: [4]want{
			with(httpOK("the SDK retries each SSM call; lpmtls then logs in directly and keeps the token in memory (WARN logged)"), logins(1)),
			with(httpOK("as forward"), logins(1)),
			with(batch(3, [3]int{3, 0, 0}, [2]int{3, 0}, "nothing: one direct login for the batch"), logins(1)),
			with(schedOK("nothing: direct login"), logins(1)),
		},
	},
	{
		name: "SSM slow (past half the deadline)",
		also: "session TestSlowStoreLeavesTimeForLivePerson",
		inject: func(c *cell) {
			c.env.AWS.SetDelay(awsfake.SSM, slowSSMDeadline(c.col)*6/10)
		},
		heal:    func(c *cell) { c.env.AWS.SetDelay(awsfake.SSM, 0) },
		timeout: slowSSMDeadline,
		cols: [4]want{
			with(httpOK("the SSM reads are given up at a quarter of the time left and the refresh skips SSM after that; lpmtls logs in directly and answers inside the deadline; the next refresh tries SSM again"), logins(1)),
			with(httpOK("as forward"), logins(1)),
			with(batch(3, [3]int{3, 0, 0}, [2]int{3, 0}, "nothing: SSM given up after a quarter of the time left, one direct login"), logins(1)),
			with(schedOK("nothing"), logins(1)),
		},
	},
	{
		name:   "Secrets Manager down",
		inject: func(c *cell) { c.env.AWS.SetDown(awsfake.SecretsManager, true) },
		heal:   func(c *cell) { c.env.AWS.SetDown(awsfake.SecretsManager, false) },
		cols: [4]want{
			with(httpErr(503, "secrets_unavailable", "lpmtls", "5", "the SDK retries the read; then the caller retries after Retry-After; a cold instance reads the secret on every call until it can (a warm one holds it and is unaffected)"), logins(0)),
			with(httpErr(503, "secrets_unavailable", "lpmtls", "5", "as forward"), logins(0)),
			batch(3, [3]int{0, 3, 0}, [2]int{3, 0}, "batch item failures (secrets_unavailable is transient); delivered once the secret can be read"),
			schedFailed("secrets_unavailable", retryNextRun),
		},
	},
	{
		name:   "Secrets Manager throttling",
		also:   "secrets TestReadFailuresTellCauseApart",
		inject: func(c *cell) { c.env.AWS.SetError(awsfake.SecretsManager, awsfake.ErrThrottling) },
		heal:   func(c *cell) { c.env.AWS.SetError(awsfake.SecretsManager, awsfake.AWSError{}) },
		cols: [4]want{
			with(httpErr(503, "secrets_unavailable", "lpmtls", "5", "the SDK retries the throttled read with backoff; then the caller retries after Retry-After"), logins(0)),
			with(httpErr(503, "secrets_unavailable", "lpmtls", "5", "as forward"), logins(0)),
			batch(3, [3]int{0, 3, 0}, [2]int{3, 0}, "batch item failures, redelivered until the read succeeds"),
			schedFailed("secrets_unavailable", retryNextRun),
		},
	},
	{
		name:   "Secrets Manager access denied (role lacks GetSecretValue)",
		also:   "secrets TestReadFailuresTellCauseApart (also not found, KMS denied, decryption failure)",
		inject: func(c *cell) { c.env.AWS.SetError(awsfake.SecretsManager, awsfake.ErrAccessDenied) },
		heal:   func(c *cell) { c.env.AWS.SetError(awsfake.SecretsManager, awsfake.AWSError{}) },
		cols: [4]want{
			with(httpErr(500, "secret_access_denied", "lpmtls", "", "not retried: a deployment mistake (the message names the missing permission, never the secret); fix the role, then retry"), logins(0)),
			with(httpErr(500, "secret_access_denied", "lpmtls", "", "as forward"), logins(0)),
			func() want {
				w := batch(3, [3]int{0, 0, 3}, [2]int{0, 3}, "permanent: dead-lettered at once with the reason (fix the role, then redrive the DLQ)")
				w.dlqCode = "secret_access_denied"
				return w
			}(),
			schedFailed("secret_access_denied", retryNextRun),
		},
	},
	{
		name:  "secret rotated",
		also:  "e2e TestSecretRotation; session TestCredentialRotation",
		prime: warm,
		inject: func(c *cell) {
			const rotated = "pw-rotated-Qm3-second-generation"
			c.env.Sim.AddUser(testenv.Username, rotated)
			c.env.AWS.PutSecret(testenv.SecretID, `{"accountId":"`+c.env.Sim.AccountID()+`","username":"`+testenv.Username+`","password":"`+rotated+`"}`)
			c.env.Sim.RevokeTokens()
		},
		cols: [4]want{
			with(httpOK("inside the invocation: the gateway's 401 (the mapping check refuses the bearer too) → login with the old password refused → secret re-read → login → forward replayed"), rotatedOnce),
			with(httpOK("as forward"), rotatedOnce),
			with(batch(3, [3]int{3, 0, 0}, [2]int{3, 0}, "inside the invocation, as forward; one secret re-read"), rotatedOnce),
			with(schedOK("inside the invocation, as forward"), rotatedOnce),
		},
	},
	{
		name:   "bearer revoked mid-life",
		also:   "e2e TestReloginAfter401RetriesOnce, TestLargeBinaryBodyStreamedAndReplayed",
		prime:  warm,
		inject: func(c *cell) { c.env.Sim.RevokeTokens() },
		cols: [4]want{
			with(httpOK("inside the invocation: 401 → the mapping check refuses the bearer too, so the gateway stopped the request → token dropped from memory and SSM → one login → the forward replayed once"), reloginOnce(3)),
			with(httpOK("as forward, for the mapping check"), reloginOnce(2)),
			with(batch(3, [3]int{3, 0, 0}, [2]int{3, 0}, "inside the invocation: concurrent 401s share the re-login"), reloginAtMost(2)),
			with(schedOK("inside the invocation, as mapping"), reloginOnce(2)),
		},
	},
	{
		name: "gateway 429",
		also: "e2e TestLivePersonFailuresAreDistinguishable",
		inject: func(c *cell) {
			c.env.Sim.Inject(lpsim.Fault{Op: c.col.gatewayOp(), Status: 429, RetryAfter: "2"})
		},
		cols: [4]want{
			with(httpErr(429, "liveperson_throttled", "liveperson", "2", retryCallerHTTP+" after Retry-After (the gateway allows 10 req/s per IP)"), gatewayCalls(1)),
			with(httpErr(429, "liveperson_throttled", "liveperson", "2", retryCallerHTTP+" after Retry-After"), gatewayCalls(1)),
			batch(3, [3]int{2, 1, 0}, [2]int{3, 0}, "the throttled message is a batch item failure, redelivered after the visibility timeout"),
			schedFailed("liveperson_throttled", retryNextRun),
		},
	},
	{
		name:   "gateway 5xx",
		also:   "e2e TestLivePersonFailuresAreDistinguishable; health TestScheduledCheckLivePersonDown",
		inject: func(c *cell) { c.env.Sim.Inject(lpsim.Fault{Op: c.col.gatewayOp(), Status: 503}) },
		cols: [4]want{
			with(httpErr(502, "gateway_error", "liveperson", "", retryCallerHTTP+" (a 5xx may be the target's own: lpmtls does not repeat a request that may have reached it)"), gatewayCalls(1)),
			with(httpErr(502, "gateway_error", "liveperson", "", retryCallerHTTP), gatewayCalls(1)),
			batch(3, [3]int{2, 1, 0}, [2]int{3, 0}, "batch item failure, redelivered"),
			schedFailed("gateway_error", retryNextRun),
		},
	},
	{
		name:   "gateway 424",
		also:   "e2e TestLivePersonFailuresAreDistinguishable; queue TestMixedBatch",
		inject: func(c *cell) { c.env.Sim.Inject(lpsim.Fault{Op: c.col.gatewayOp(), Status: 424}) },
		cols: [4]want{
			func() want {
				w := httpErr(502, "target_failed", "liveperson", "", retryCallerHTTP+"; LP-message-from-transport / LP-error-from-transport are relayed")
				w.header = "LP-message-from-transport"
				return with(w, gatewayCalls(1))
			}(),
			with(httpErr(502, "liveperson_rejected_request", "liveperson", "", "not retried: the mapping check makes no target call, so LivePerson documents no 424 for it; any 4xx other than 401/403/429 is read as a refused request"), gatewayCalls(1)),
			batch(3, [3]int{2, 1, 0}, [2]int{3, 0}, "target_failed is transient: batch item failure, redelivered"),
			schedFailed("liveperson_rejected_request", retryNextRun),
		},
	},
	{
		name:  "gateway slow past the deadline",
		also:  "e2e TestSlowGatewayTimesOutCleanly",
		prime: warm,
		inject: func(c *cell) {
			c.env.Sim.Inject(lpsim.Fault{Op: c.col.gatewayOp(), Delay: slowFaultDelay})
		},
		timeout: shortDeadline,
		cols: [4]want{
			httpErr(504, "timeout", "liveperson", "", "the call is cut 0.5 s before the invocation deadline (and API Gateway's 30 s) so lpmtls's JSON 504 reaches the caller; "+retryCallerHTTP),
			httpErr(504, "timeout", "liveperson", "", "as forward"),
			batch(3, [3]int{2, 1, 0}, [2]int{3, 0}, "the slow forward is cut 2 s before the deadline and returned as a batch item failure (code deadline); redelivered"),
			schedFailed("timeout", "the check is cut 0.5 s before the deadline so the metric is still written; "+retryNextRun),
		},
	},
	{
		name:    "target slow past the deadline",
		prime:   warm,
		inject:  func(c *cell) { c.env.Sim.Inject(lpsim.Fault{Op: "target", Delay: slowFaultDelay}) },
		timeout: shortDeadline,
		cols: [4]want{
			httpErr(504, "timeout", "liveperson", "", retryCallerHTTP+"; the target may have acted on the request"),
			with(httpOK("nothing: the mapping check makes no target call"), untouchedTarget),
			batch(3, [3]int{2, 1, 0}, [2]int{3, 0}, "batch item failure, redelivered: the target sees that message twice (at-least-once)"),
			with(schedOK("nothing: no target call"), untouchedTarget),
		},
	},
	{
		name:   "target resets the connection",
		inject: func(c *cell) { c.env.Sim.Inject(lpsim.Fault{Op: "target", Reset: true}) },
		cols: [4]want{
			func() want {
				w := httpErr(502, "target_failed", "liveperson", "", retryCallerHTTP+"; the gateway's transport message is relayed")
				w.header = "LP-error-from-transport"
				return w
			}(),
			with(httpOK("nothing: no target call"), untouchedTarget),
			batch(3, [3]int{2, 1, 0}, [2]int{3, 0}, "batch item failure, redelivered"),
			with(schedOK("nothing: no target call"), untouchedTarget),
		},
	},
	{
		name: "target 401 (wrong LP-authorization-override)",
		also: "lp TestForwardTargetAuthAnswerUntouched, TestForwardClassification",
		inject: func(c *cell) {
			c.relayed = 401
			c.env.Sim.Inject(lpsim.Fault{Op: "target", Status: 401, Body: targetRefusal,
				Header: http.Header{"WWW-Authenticate": {`Basic realm="brand"`}}})
		},
		cols: [4]want{
			with(want{status: 401, retried: "not retried: one mapping check shows the gateway takes the bearer, so the 401 is the target's and comes back untouched (body and WWW-Authenticate); the request was sent once and no login followed"}, targetAnsweredOnce(401)),
			with(httpOK("nothing: the mapping check makes no target call"), untouchedTarget),
			with(batch(3, [3]int{3, 0, 0}, [2]int{3, 0}, "nothing: the target's 401 is its answer, published as the result (a 4xx is not retried)"), targetAnsweredOnce(401)),
			with(schedOK("nothing: no target call"), untouchedTarget),
		},
	},
	{
		name: "target 503 with Retry-After and a body",
		also: "lp TestForwardClassification",
		inject: func(c *cell) {
			c.env.Sim.Inject(lpsim.Fault{Op: "target", Status: 503, RetryAfter: "120", Body: targetUnavailable})
		},
		cols: [4]want{
			with(want{status: 503, retryAfter: "120", retried: "not retried by lpmtls: no LivePerson error wrapper, so the 503 is the target's and comes back as sent (status, body, Retry-After); the caller may retry after it"}, targetAnsweredOnce(503)),
			with(httpOK("nothing: the mapping check makes no target call"), untouchedTarget),
			batch(3, [3]int{2, 1, 0}, [2]int{3, 0}, "the target's 503 is a batch item failure (target_status), redelivered and then delivered"),
			with(schedOK("nothing: no target call"), untouchedTarget),
		},
	},
	{
		name: "forwarded header of about 1 MiB (SQS)",
		also: "forward TestValidate; lp TestForwardClientRefusals; queue TestOutcomeTable",
		inject: func(c *cell) {
			c.bigHeader = 1_000_000
		},
		cols: [4]want{
			{na: "API Gateway refuses more than 10 KiB of request headers before lpmtls sees them"},
			{na: "the mapping check forwards no caller headers"},
			with(func() want {
				w := batch(3, [3]int{2, 0, 1}, [2]int{2, 1}, "permanent: 431-class headers_too_large from lpmtls, dead-lettered at once with the reason; LivePerson never sees it")
				w.dlqCode = "headers_too_large"
				return w
			}(), gatewayCalls(2)),
			{na: "a check forwards no caller headers"},
		},
	},
	{
		name: "process killed (SIGKILL) mid-request",
		also: "runtimeapi TestKilledMidInvocationFailsIt",
		inject: func(c *cell) {
			op := "target"
			if c.col == colMapping || c.col == colSchedule {
				op = "mapping"
			}
			c.env.Sim.Inject(lpsim.Fault{Op: op, Delay: slowFaultDelay})
		},
		kill: func(c *cell) bool {
			n := c.env.Sim.Counts()
			if c.col == colMapping || c.col == colSchedule {
				return n.Mappings >= 1
			}
			return n.TargetRequests >= 1
		},
		cols: [4]want{
			with(want{fnError: "Runtime.ExitError", retried: "Lambda reports Runtime.ExitError, API Gateway answers its own 502 {\"message\":\"Internal Server Error\"}; the caller may retry; the next environment serves at once with the SSM token"}, freshInstance),
			with(want{fnError: "Runtime.ExitError", retried: "as forward"}, freshInstance),
			want{fnError: "Runtime.ExitError", n: 1, final: [2]int{1, 0}, retried: "the invocation fails, so the event source mapping deletes nothing: the message reappears after the visibility timeout and the next environment delivers it"},
			with(want{fnError: "Runtime.ExitError", retried: "not retried (the function's asynchronous-invocation settings allow no retries): the event goes to the health-check DLQ (HealthCheckDLQAlarm) and the run writes no metric (HealthCheckFailedAlarm treats missing data as breaching); the next scheduled run checks again"}, freshInstance),
		},
	},
	{
		name:   "process killed (SIGKILL) mid-batch",
		also:   "queue TestCrashLosesNothing; runtimeapi TestKilledMidInvocationFailsIt",
		inject: func(c *cell) { c.env.Sim.Inject(lpsim.Fault{Op: "target", Delay: slowFaultDelay}) },
		kill:   func(c *cell) bool { return c.env.Sim.Counts().TargetRequests >= 10 },
		cols: [4]want{
			{na: "an HTTP invocation carries one request: see mid-request"},
			{na: "an HTTP invocation carries one request: see mid-request"},
			with(want{fnError: "Runtime.ExitError", n: 10, final: [2]int{10, 0}, retried: "nothing is deleted: all 10 reappear; the 9 the target had already answered reach it again (at-least-once, results published twice)"}, duplicates(9)),
			{na: "a check is one batched LivePerson call: see mid-request"},
		},
	},
}

// csdsBackoff is how a failure CSDS answered is retried.
const csdsBackoff = "CSDS is asked again at most once per 5 s per instance (a tenth of LP_DOMAINS_TTL, at most 5 s), the same 502 answered at once meanwhile"

// incompleteNotCached: the incomplete CSDS list reached neither tier. The instance
// answers a second call from the remembered failure without asking CSDS again, and a
// new instance sharing SSM asks CSDS itself.
func incompleteNotCached(c *cell, o observed) {
	c.t.Helper()
	if _, _, ok := c.env.AWS.Parameter(testenv.Prefix + "/domains"); ok {
		c.t.Fatal("the incomplete list reached SSM")
	}
	codeOf := func(o observed) string {
		if o.sum.Error != nil {
			return o.sum.Error.Code
		}
		return o.code
	}
	again := func() string {
		if c.col == colSchedule {
			return codeOf(c.runSchedule(normalTimeout, nil))
		}
		return c.runHTTP(normalTimeout, nil).code
	}
	if code := again(); code != codeOf(o) {
		c.t.Fatalf("second call: %q, want %q", code, codeOf(o))
	}
	if n := c.env.Sim.Counts().CSDS; n != 1 {
		c.t.Fatalf("%d CSDS calls for two calls inside the backoff, want 1", n)
	}
	c.start()
	if code := again(); code != codeOf(o) {
		c.t.Fatalf("new instance: %q, want %q", code, codeOf(o))
	}
	if n := c.env.Sim.Counts().CSDS; n != 2 {
		c.t.Fatalf("%d CSDS calls, want the new instance's own lookup too", n)
	}
}

// recoveredDomains: once CSDS is whole, the whole list is cached.
func recoveredDomains(c *cell, o observed) {
	c.t.Helper()
	if v, _, ok := c.env.AWS.Parameter(testenv.Prefix + "/domains"); !ok || !strings.Contains(v, "mtlsGateway") {
		c.t.Fatalf("domains in SSM after recovery: %q", v)
	}
}

// Target answers with bodies of their own (no LivePerson wrapper).
const (
	targetRefusal     = `{"message":"invalid credentials for this API"}`
	targetUnavailable = `{"status":"down for maintenance","retryInSeconds":120}`
)

// targetAnsweredOnce: the target's status came back as it sent it, and no request was
// sent to it twice.
func targetAnsweredOnce(status int) func(c *cell, o observed) {
	return func(c *cell, o observed) {
		c.t.Helper()
		n := c.env.Sim.Counts()
		if c.col == colForward {
			want := map[int]string{401: targetRefusal, 503: targetUnavailable}[status]
			if o.body != want {
				c.t.Fatalf("body %q, want the target's %q", o.body, want)
			}
			if got := http.Header(mapOf(o.header)).Get("WWW-Authenticate"); status == 401 && got != `Basic realm="brand"` {
				c.t.Fatalf("WWW-Authenticate %q in %v", got, o.header)
			}
			if n.Forwards != 1 || n.TargetRequests != 1 {
				c.t.Fatalf("want the request sent once: %+v", n)
			}
		}
		if c.col == colSQS && n.TargetRequests != 3 {
			c.t.Fatalf("%d target requests for 3 messages: one was sent again", n.TargetRequests)
		}
		if n.Logins != 1 {
			c.t.Fatalf("%d logins, want only the cold start's", n.Logins)
		}
		if status == 401 && n.Mappings != 1 {
			c.t.Fatalf("%d mapping checks, want 1 (the bearer check)", n.Mappings)
		}
	}
}

// mapOf reads an API Gateway header map as an http.Header, whatever the key case.
func mapOf(h map[string]string) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, v := range h {
		ck := http.CanonicalHeaderKey(k)
		out[ck] = append(out[ck], v)
	}
	return out
}

func csdsFallback(c *cell, o observed) {
	c.t.Helper()
	n := c.env.Sim.Counts()
	if n.CSDS < 1 || n.Logins != 0 {
		c.t.Fatalf("want CSDS asked (and failing) and no login: %+v", n)
	}
}

func rotatedOnce(c *cell, o observed) {
	c.t.Helper()
	if n := c.env.Sim.Counts().Logins; n != 2 {
		c.t.Fatalf("%d logins, want the refused old password and the new one", n)
	}
	if n := c.env.AWS.Calls()["secretsmanager.GetSecretValue"]; n != 1 {
		c.t.Fatalf("secret read %d times, want 1", n)
	}
}

func reloginOnce(gatewayCalls int) func(c *cell, o observed) {
	return func(c *cell, o observed) {
		c.t.Helper()
		n := c.env.Sim.Counts()
		if n.Logins != 1 || n.Forwards+n.Mappings != gatewayCalls {
			c.t.Fatalf("want one login and %d gateway calls: %+v", gatewayCalls, n)
		}
	}
}

func reloginAtMost(logins int) func(c *cell, o observed) {
	return func(c *cell, o observed) {
		c.t.Helper()
		if n := c.env.Sim.Counts(); n.Logins < 1 || n.Logins > logins {
			c.t.Fatalf("want 1 to %d logins: %+v", logins, n)
		}
	}
}

func gatewayCalls(want int) func(c *cell, o observed) {
	return func(c *cell, o observed) {
		c.t.Helper()
		if n := c.env.Sim.Counts(); n.Forwards+n.Mappings != want {
			c.t.Fatalf("%d gateway calls, want %d (no retry inside lpmtls)", n.Forwards+n.Mappings, want)
		}
	}
}

func duplicates(want int) func(c *cell, o observed) {
	return func(c *cell, o observed) {
		c.t.Helper()
		// 10 reached the target before the kill (one held there), all 10 again after.
		if n := c.env.Sim.Counts().TargetRequests; n != 10+10 {
			c.t.Fatalf("%d target requests, want 20: %d answered before the kill, then all 10 again", n, want)
		}
	}
}

// secretsIn are the values no log line may carry.
var secretsIn = []string{testenv.Password, "pw-rotated-Qm3-second-generation", testenv.ClientSecret, "dXNlcjpwYXNz", "sekrit-override-123", "abc123"}

func TestFaultMatrix(t *testing.T) {
	emu := sqsemu.Start(t)
	results := &matrixDoc{cells: map[string]string{}}
	root := testenv.RepoRoot(t)
	t.Cleanup(func() {
		if t.Failed() || results.count() != len(rows)*len(columns) {
			return // a failure, or -run chose some cells: nothing to write or compare
		}
		doc := results.markdown()
		if out := os.Getenv("LPMTLS_RELIABILITY_OUT"); out != "" {
			if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
				t.Error(err)
			}
			return
		}
		// RELIABILITY.md must show what this table asserts.
		raw, err := os.ReadFile(filepath.Join(root, "RELIABILITY.md"))
		if err != nil {
			t.Error(err)
			return
		}
		_, rest, ok1 := strings.Cut(string(raw), docBegin+"\n")
		block, _, ok2 := strings.Cut(rest, docEnd)
		if !ok1 || !ok2 || block != doc {
			t.Errorf("RELIABILITY.md's fault matrix is not what the test asserts: run `make reliability`")
		}
	})
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			for _, col := range columns {
				w := r.cols[col]
				t.Run(col.String(), func(t *testing.T) {
					if w.na != "" {
						results.set(r.name, col, "n/a: "+w.na)
						t.Skip("n/a: " + w.na)
					}
					t.Parallel()
					runCell(t, r, col, w, emu)
					results.set(r.name, col, render(col, w))
				})
			}
		})
	}
}

func runCell(t *testing.T, r row, col column, w want, emu *sqsemu.Emulator) {
	c := newCell(t, col, emu)
	if r.prime != nil {
		r.prime(c)
	} else {
		c.proc() // a cold process, started before the fault
	}
	timeout := normalTimeout
	if r.timeout != nil {
		timeout = r.timeout(col)
	}
	var kill func() bool
	if r.kill != nil {
		kill = func() bool { return r.kill(c) }
	}
	r.inject(c)
	rowHeal := func() {
		if r.heal != nil {
			r.heal(c)
		}
	}
	heal := rowHeal
	var o observed
	switch col {
	case colForward, colMapping:
		o = c.runHTTP(timeout, kill)
		checkHTTP(c, w, o)
	case colSchedule:
		o = c.runSchedule(timeout, kill)
		checkSchedule(c, w, o)
	case colSQS:
		if kill != nil {
			// The next environment drains the queue.
			heal = func() { rowHeal(); c.env.Sim.ClearFaults(); c.start() }
		}
		o = c.runSQS(w.n, timeout, kill, heal)
		checkSQS(c, w, o)
	}
	if w.check != nil {
		w.check(c, o)
	}
	rowHeal()
	secrets := secretsIn
	if v, _, ok := c.env.AWS.Parameter(testenv.Prefix + "/token"); ok {
		var tok struct {
			Bearer string `json:"bearer"`
		}
		if json.Unmarshal([]byte(v), &tok) == nil && tok.Bearer != "" {
			secrets = append(secrets[:len(secrets):len(secrets)], tok.Bearer)
		}
	}
	for _, f := range c.procs {
		logs := f.FinalLogs()
		for _, s := range secrets {
			if strings.Contains(logs, s) {
				t.Errorf("a secret (%.6s…) is in the logs", s)
			}
		}
		if col == colSchedule && f == c.procs[len(c.procs)-1] && r.kill == nil {
			if got := metricOf(logs); got != w.metric {
				t.Errorf("HealthCheckFailed %q, want %q", got, w.metric)
			}
		}
	}
	if col == colSchedule && r.kill != nil {
		if got := metricOf(c.procs[0].Logs()); got != "" {
			t.Errorf("the killed run wrote HealthCheckFailed=%s", got)
		}
	}
}

func checkHTTP(c *cell, w want, o observed) {
	c.t.Helper()
	if w.fnError != "" || o.fnError != "" {
		if o.fnError != w.fnError {
			c.t.Fatalf("function error %q, want %q (%+v)", o.fnError, w.fnError, o)
		}
		return
	}
	if o.status != w.status || o.code != w.code || o.source != w.source || o.retryAfter != w.retryAfter {
		c.t.Fatalf("caller sees %d %q source %q Retry-After %q, want %d %q %q %q\nbody %s\n%s",
			o.status, o.code, o.source, o.retryAfter, w.status, w.code, w.source, w.retryAfter, o.body, c.proc().Logs())
	}
	if w.header != "" && o.header[w.header] == "" {
		c.t.Fatalf("header %s missing: %v", w.header, o.header)
	}
	if w.status == 200 {
		switch c.col {
		case colForward:
			if o.body != `{"event":"ping"}` || o.header["X-Echo-Client-Cn"] != testenv.ServiceName {
				c.t.Fatalf("not the target's echo through mTLS: %s %v", o.body, o.header)
			}
		case colMapping:
			if !strings.Contains(o.body, `"allConfigured":true`) {
				c.t.Fatalf("mapping answer %s", o.body)
			}
		}
	}
}

func checkSchedule(c *cell, w want, o observed) {
	c.t.Helper()
	if w.fnError != "" || o.fnError != "" {
		if o.fnError != w.fnError {
			c.t.Fatalf("function error %q, want %q (%+v)", o.fnError, w.fnError, o)
		}
		return
	}
	code := ""
	if o.sum.Error != nil {
		code = o.sum.Error.Code
	}
	if o.sum.Failed != w.failed || code != w.code || o.sum.Checked != 2 {
		c.t.Fatalf("summary failed=%v code %q checked %d, want failed=%v code %q\n%s", o.sum.Failed, code, o.sum.Checked, w.failed, w.code, c.proc().Logs())
	}
	if !w.failed && (o.sum.Configured != 1 || o.sum.Missing != 1) {
		c.t.Fatalf("summary %+v", o.sum)
	}
}

func checkSQS(c *cell, w want, o observed) {
	c.t.Helper()
	if o.fnError != w.fnError || o.first != w.first || o.final != w.final {
		c.t.Fatalf("SQS: function error %q, first batch %v (delivered, failures, DLQ), final %v (delivered, DLQ); want %q %v %v\n%s",
			o.fnError, o.first, o.final, w.fnError, w.first, w.final, c.proc().Logs())
	}
	if w.dlqCode != "" && o.dlqCodes[w.dlqCode] != w.final[1] {
		c.t.Fatalf("DLQ reasons %v, want %d × %s", o.dlqCodes, w.final[1], w.dlqCode)
	}
	if o.dlqCodes["redrive"] > 0 {
		c.t.Fatalf("%d messages redriven to the DLQ without a reason", o.dlqCodes["redrive"])
	}
}

// render is the cell's text in RELIABILITY.md, from the expectation it just passed.
func render(col column, w want) string {
	var sees, lost string
	switch {
	case w.fnError != "":
		sees = "invocation fails (`" + w.fnError + "`)"
	case col == colForward || col == colMapping:
		if w.code == "" {
			sees = fmt.Sprintf("%d, the %s", w.status, map[column]string{colForward: "target's exact answer", colMapping: "mapping answer"}[col])
		} else {
			sees = fmt.Sprintf("%d `%s`, LP-Error-Source: %s", w.status, w.code, w.source)
			if w.retryAfter != "" {
				sees += ", Retry-After: " + w.retryAfter
			}
			if w.header != "" {
				sees += ", " + w.header
			}
		}
	case col == colSchedule:
		if w.failed {
			sees = "summary `failed: true`, error `" + w.code + "`, HealthCheckFailed=1"
		} else {
			sees = "summary `failed: false`, HealthCheckFailed=0"
		}
	}
	if col == colSQS {
		if w.fnError == "" {
			sees = fmt.Sprintf("first batch of %d: %d delivered, %d batch item failure%s, %d to the DLQ", w.n, w.first[0], w.first[1], plural(w.first[1]), w.first[2])
		} else {
			sees += fmt.Sprintf(" with a batch of %d", w.n)
		}
		lost = fmt.Sprintf("<br>**lost:** none — %d/%d delivered, %d/%d in the DLQ", w.final[0], w.n, w.final[1], w.n)
		if w.dlqCode != "" {
			lost += " (`" + w.dlqCode + "`)"
		}
	}
	return "**sees:** " + sees + "<br>**retried:** " + w.retried + lost
}

// The generated matrix sits between these lines of RELIABILITY.md.
const (
	docBegin = "<!-- fault-matrix:begin -->"
	docEnd   = "<!-- fault-matrix:end -->"
)

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

type matrixDoc struct {
	mu    sync.Mutex
	cells map[string]string
}

func (d *matrixDoc) set(rowName string, col column, text string) {
	d.mu.Lock()
	d.cells[rowName+"\x00"+col.String()] = text
	d.mu.Unlock()
}

func (d *matrixDoc) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.cells)
}

func (d *matrixDoc) markdown() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	b.WriteString("| fault |")
	for _, c := range columns {
		b.WriteString(" " + c.title() + " |")
	}
	b.WriteString(" also covered by |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		b.WriteString("| " + r.name + " |")
		for _, c := range columns {
			text, ok := d.cells[r.name+"\x00"+c.String()]
			if !ok {
				text = "NOT RUN"
			}
			b.WriteString(" " + strings.ReplaceAll(text, "|", "\\|") + " |")
		}
		b.WriteString(" " + r.also + " |\n")
	}
	return b.String()
}
