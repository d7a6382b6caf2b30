package session

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/paramstore"
	"github.com/lpmtls/lpmtls/shared/secrets"
	"github.com/lpmtls/lpmtls/shared/testworld/awsfake"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// A cold start reads the secret and the shared copies at once: each read waits until
// the other has started, so reading them one after the other runs into the deadline.
func TestColdStartReadsSecretAndCacheAtOnce(t *testing.T) {
	e := newEnv(t)
	e.plantIssuedToken("stored-bearer-s3cr3t", e.clock.Now(), e.clock.Now().Add(time.Hour))
	e.plantDomains(e.clock.Now())
	var secretStarted, storeStarted sync.WaitGroup
	secretStarted.Add(1)
	storeStarted.Add(1)
	waitFor := func(ctx context.Context, wg *sync.WaitGroup) error {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return errors.New("the other read did not start while this one was in flight")
		}
	}
	var once sync.Once
	e.secrets.onRead = func(ctx context.Context) error {
		secretStarted.Done()
		return waitFor(ctx, &storeStarted)
	}
	e.store.onGet = func(ctx context.Context, _ string) {
		once.Do(func() {
			storeStarted.Done()
			_ = waitFor(ctx, &secretStarted)
		})
	}
	m := e.manager()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := m.Get(ctx)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if s.Bearer != "stored-bearer-s3cr3t" || s.Source != SourceStore {
		t.Errorf("session = %+v, want the stored bearer", s)
	}
	if st := m.Stats(); st.SecretReads != 1 || st.StoreGets != 1 || st.Logins != 0 || st.CSDSCalls != 0 {
		t.Errorf("stats = %+v, want one secret read and one store read, nothing else", st)
	}
}

// The names of the shared copies leave the account out; a copy of another account (the
// secret was switched, or two deployments share a prefix) is a miss, and is replaced.
func TestCachedCopiesOfAnotherAccountAreMisses(t *testing.T) {
	e := newEnv(t)
	e.stored = append(e.stored, "other-account-bearer-s3cr3t")
	now := e.clock.Now()
	e.store.set(tokenParam, `{"bearer":"other-account-bearer-s3cr3t","expiresAt":"`+now.Add(time.Hour).Format(time.RFC3339Nano)+`","account":"777"}`, true)
	e.store.set(domParam, encodeDomains("777", lp.Domains{lp.ServiceMTLSGateway: "elsewhere.example", lp.ServiceAgentVep: "elsewhere.example"}, now), false)
	m := e.manager()
	s := mustGet(t, m)
	if s.Bearer == "other-account-bearer-s3cr3t" || s.Domains[lp.ServiceMTLSGateway] != testDomains[lp.ServiceMTLSGateway] {
		t.Fatalf("session = %+v: another account's copies were used", s)
	}
	if st := m.Stats(); st.Logins != 1 || st.CSDSCalls != 1 {
		t.Errorf("stats = %+v, want one login and one CSDS lookup", st)
	}
	tok, _ := e.store.get(tokenParam)
	dom, _ := e.store.get(domParam)
	if !strings.Contains(tok.value, `"account":"`+acct+`"`) || !strings.Contains(dom.value, `"account":"`+acct+`"`) {
		t.Errorf("the copies were not replaced with this account's: token %v, domains %q", strings.Contains(tok.value, acct), dom.value)
	}
}

// A failed CSDS lookup with nothing to fall back on is answered from memory for
// DiscoveryBackoff and then asked again; nothing of it reaches the store.
func TestFailedDiscoveryRememberedBriefly(t *testing.T) {
	missing := &lp.Error{Kind: lp.KindDiscovery, Op: "csds", Status: 200, Message: "CSDS lists no mtlsGateway for this account"}
	tests := []struct {
		name     string
		err      error
		backoff  time.Duration // Options.DiscoveryBackoff, 0 = default
		wantWait time.Duration
		remember bool
	}{
		{name: "service missing", err: missing, wantWait: 5 * time.Second, remember: true},
		{name: "option", err: missing, backoff: time.Second, wantWait: time.Second, remember: true},
		{name: "CSDS 503 with Retry-After", err: &lp.Error{Kind: lp.KindDiscovery, Op: "csds", Status: 503, RetryAfter: 20 * time.Second}, wantWait: 20 * time.Second, remember: true},
		{name: "Retry-After capped", err: &lp.Error{Kind: lp.KindDiscovery, Op: "csds", Status: 503, RetryAfter: time.Hour}, wantWait: time.Minute, remember: true},
		{name: "network failure", err: &lp.Error{Kind: lp.KindNetwork, Op: "csds", Message: "connection refused"}},
		{name: "timeout", err: &lp.Error{Kind: lp.KindTimeout, Op: "csds"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.lp.discoverErr = tc.err
			m := e.manager(func(o *Options) { o.DiscoveryBackoff = tc.backoff })
			if _, err := m.Get(context.Background()); !errors.Is(err, lp.ErrDiscovery) && lp.KindOf(err) != lp.KindTimeout {
				t.Fatalf("err = %v, want a discovery failure", err)
			}
			if _, ok := e.store.get(domParam); ok {
				t.Fatal("a failed lookup left domains in the store")
			}
			e.lp.mu.Lock()
			e.lp.discoverErr = nil // CSDS whole again
			e.lp.mu.Unlock()
			if !tc.remember {
				mustGet(t, m)
				if st := m.Stats(); st.CSDSCalls != 2 {
					t.Errorf("CSDS calls = %d, want 2: a failure on the way is not remembered", st.CSDSCalls)
				}
				return
			}
			e.clock.Advance(tc.wantWait - time.Millisecond)
			_, err := m.Get(context.Background())
			if lp.KindOf(err) != lp.KindOf(tc.err) && !errors.Is(err, lp.ErrDiscovery) {
				t.Fatalf("inside the backoff: err = %v, want the remembered failure", err)
			}
			if st := m.Stats(); st.CSDSCalls != 1 || st.Logins != 0 {
				t.Fatalf("inside the backoff: %+v, want 1 CSDS call and no login", st)
			}
			e.clock.Advance(time.Millisecond)
			s := mustGet(t, m)
			if st := m.Stats(); st.CSDSCalls != 2 || s.Domains[lp.ServiceMTLSGateway] == "" {
				t.Errorf("after the backoff: %+v, domains %v", st, s.Domains)
			}
			if _, ok := e.store.get(domParam); !ok {
				t.Error("the whole answer was not stored")
			}
		})
	}
}

// Through the real client, the simulator and SSM: a CSDS answer without mtlsGateway is
// a discovery failure naming it, cached in neither tier, so a second (cold) instance
// sharing SSM asks CSDS itself, and the first recovers once CSDS is whole and the
// backoff is over, with CSDS asked once per instance meanwhile.
func TestCSDSMissingServiceNotCached(t *testing.T) {
	env := testenv.New(t)
	env.UseLoginSecret()
	env.Sim.SetCSDSOmitted(lp.ServiceMTLSGateway)
	c := &clock{t: time.Now()}
	store := paramstore.New(ssm.NewFromConfig(env.AWSConfig), "")
	newManager := func() *Manager {
		return New(Options{
			LP:          lp.New(lp.Options{HTTPClient: env.Sim.HTTPClient(), CSDSURL: env.Sim.CSDSURL()}),
			Credentials: secrets.NewSource(secretsmanager.NewFromConfig(env.AWSConfig), testenv.SecretID),
			Store:       store,
			Prefix:      testenv.Prefix,
			IsExists:    func(err error) bool { return errors.Is(err, paramstore.ErrExists) },
			Now:         c.Now,
			Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	}
	ctx := context.Background()
	domainsParam := testenv.Prefix + "/domains"
	first := newManager()
	for i := range 3 {
		_, err := first.Get(ctx)
		if !errors.Is(err, lp.ErrDiscovery) || !strings.Contains(err.Error(), lp.ServiceMTLSGateway) {
			t.Fatalf("Get %d: %v, want a discovery failure naming %s", i, err, lp.ServiceMTLSGateway)
		}
	}
	if _, _, ok := env.AWS.Parameter(domainsParam); ok {
		t.Fatal("the incomplete list reached SSM")
	}
	if n := env.Sim.Counts().CSDS; n != 1 {
		t.Fatalf("%d CSDS calls for 3 requests inside the backoff, want 1", n)
	}
	second := newManager()
	if _, err := second.Get(ctx); !errors.Is(err, lp.ErrDiscovery) {
		t.Fatalf("second instance: %v", err)
	}
	if n := env.Sim.Counts().CSDS; n != 2 {
		t.Fatalf("%d CSDS calls, want the second instance's own lookup", n)
	}

	env.Sim.SetCSDSOmitted()
	if _, err := first.Get(ctx); !errors.Is(err, lp.ErrDiscovery) {
		t.Fatalf("inside the backoff, CSDS whole: %v, want the remembered failure", err)
	}
	c.Advance(maxDiscoveryBackoff)
	s, err := first.Get(ctx)
	if err != nil || s.Domains[lp.ServiceMTLSGateway] == "" {
		t.Fatalf("after the backoff: %v, domains %v", err, s.Domains)
	}
	if v, _, ok := env.AWS.Parameter(domainsParam); !ok || !strings.Contains(v, lp.ServiceMTLSGateway) {
		t.Fatalf("SSM domains after recovery: %q", v)
	}
	if n := env.Sim.Counts().CSDS; n != 3 {
		t.Errorf("%d CSDS calls, want 3", n)
	}
	// The second instance, still in its backoff, takes the whole list from SSM.
	if s, err := second.Get(ctx); err != nil || s.Domains[lp.ServiceMTLSGateway] == "" {
		t.Errorf("second instance after recovery: %v", err)
	}
	if calls := env.AWS.Calls(); calls[awsfake.SSM+"GetParameters"] == 0 {
		t.Errorf("no GetParameters call: %v", calls)
	}
}
