package session

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
)

func mustGet(t *testing.T, m *Manager) Session {
	t.Helper()
	s, err := m.Get(context.Background())
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return s
}

func TestWarmPathMakesNoCalls(t *testing.T) {
	e := newEnv(t)
	m := e.manager()
	first := mustGet(t, m)
	before := m.Stats()
	logins, discovers := e.lp.counts()
	gets, puts := e.store.gets, e.store.puts

	for range 50 {
		if s := mustGet(t, m); s.Bearer != first.Bearer || s.AccountID != acct || s.Domains[lp.ServiceMTLSGateway] == "" {
			t.Fatalf("warm session = %+v, want %+v", s, first)
		}
	}
	after := m.Stats()
	want := before
	want.MemoryHits += 50
	if after != want {
		t.Errorf("stats after warm Gets = %+v, want %+v", after, want)
	}
	l2, d2 := e.lp.counts()
	if l2 != logins || d2 != discovers || e.store.gets != gets || e.store.puts != puts || e.secrets.count() != 1 {
		t.Errorf("warm path touched a dependency: logins %d→%d csds %d→%d gets %d→%d puts %d→%d secret reads %d",
			logins, l2, discovers, d2, gets, e.store.gets, puts, e.store.puts, e.secrets.count())
	}
	if logins != 1 {
		t.Errorf("logins = %d, want 1", logins)
	}
}

func TestColdWithStoredValidToken(t *testing.T) {
	e := newEnv(t)
	e.plantToken("stored-bearer-s3cr3t", e.clock.Now().Add(time.Hour))
	e.plantDomains(e.clock.Now().Add(-time.Minute))
	m := e.manager()

	s := mustGet(t, m)
	if s.Bearer != "stored-bearer-s3cr3t" {
		t.Errorf("bearer = %q, want the stored one", s.Bearer)
	}
	st := m.Stats()
	if st.Logins != 0 || st.StoreGets != 1 || st.CSDSCalls != 0 || st.StorePuts != 0 || st.SecretReads != 1 {
		t.Errorf("stats = %+v, want 0 logins, 1 store get (token and domains together), nothing else but one secret read", st)
	}
	if len(e.onTok) != 1 || e.onTok[0] != s.Bearer {
		t.Errorf("OnToken calls = %d, want 1 with the stored bearer", len(e.onTok))
	}
}

func TestStoredTokenRefreshDecision(t *testing.T) {
	for _, tc := range []struct {
		name       string
		expiresIn  time.Duration
		wantLogins int64
	}{
		{"valid", time.Hour, 0},
		{"within margin", 2 * time.Minute, 1},
		{"expired", -time.Minute, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.plantToken("stored-bearer-s3cr3t", e.clock.Now().Add(tc.expiresIn))
			e.plantDomains(e.clock.Now())
			m := e.manager()
			s := mustGet(t, m)
			if got := m.Stats().Logins; got != tc.wantLogins {
				t.Errorf("logins = %d, want %d", got, tc.wantLogins)
			}
			if tc.wantLogins > 0 && s.Bearer == "stored-bearer-s3cr3t" {
				t.Errorf("got the stale stored bearer")
			}
		})
	}
}

func TestTokenRefreshedWhenMemoryCopyEntersMargin(t *testing.T) {
	e := newEnv(t)
	m := e.manager(func(o *Options) { o.Store = nil; o.DomainsTTL = 2 * time.Hour })
	first := mustGet(t, m)
	e.clock.Advance(54 * time.Minute) // 6m left: still outside the 5m margin
	if s := mustGet(t, m); s.Bearer != first.Bearer {
		t.Fatalf("token replaced too early")
	}
	e.clock.Advance(2 * time.Minute) // 4m left
	if s := mustGet(t, m); s.Bearer == first.Bearer {
		t.Fatalf("token within the margin was not replaced")
	}
	if got := m.Stats().Logins; got != 2 {
		t.Errorf("logins = %d, want 2", got)
	}
}

func TestConcurrentColdGetsLogInOnce(t *testing.T) {
	for _, withStore := range []bool{false, true} {
		name := "memory"
		if withStore {
			name = "store"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.lp.loginStarted = make(chan struct{}, 10)
			e.lp.release = make(chan struct{})
			m := e.manager(func(o *Options) {
				if !withStore {
					o.Store = nil
				}
			})
			var wg sync.WaitGroup
			errs := make(chan error, 50)
			for range 50 {
				wg.Go(func() {
					if _, err := m.Get(context.Background()); err != nil {
						errs <- err
					}
				})
			}
			<-e.lp.loginStarted
			close(e.lp.release)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if logins, csds := e.lp.counts(); logins != 1 || csds != 1 {
				t.Errorf("logins = %d, csds calls = %d, want 1 and 1", logins, csds)
			}
		})
	}
}

// Two processes sharing one store: A wins the lease and logs in (held on a channel);
// B loses, waits, and picks up A's token. The wait is driven by the test, not a clock.
func TestLeaseTwoManagersOneLogin(t *testing.T) {
	e := newEnv(t)
	e.lp.loginStarted = make(chan struct{}, 1)
	e.lp.release = make(chan struct{})
	a := e.manager()
	b := e.manager()
	waiting := make(chan time.Duration, 1)
	fire := make(chan time.Time, 1)
	b.after = func(d time.Duration) <-chan time.Time { waiting <- d; return fire }

	// t.Fatal must run on the test goroutine: the Gets hand their results back.
	type got struct {
		s   Session
		err error
	}
	get := func(m *Manager, done chan<- got) {
		s, err := m.Get(context.Background())
		done <- got{s, err}
	}
	aDone := make(chan got, 1)
	go get(a, aDone)
	<-e.lp.loginStarted // A holds the lease and is logging in

	bDone := make(chan got, 1)
	go get(b, bDone)
	if d := <-waiting; d <= 0 || d > 5*time.Second {
		t.Errorf("first pause = %v", d)
	}
	close(e.lp.release)
	ra := <-aDone
	if ra.err != nil {
		t.Fatalf("A: Get: %v", ra.err)
	}
	sa := ra.s
	if _, ok := e.store.get(leaseParam); ok {
		t.Errorf("lease still present after the winner published its token")
	}
	fire <- time.Time{}
	rb := <-bDone
	if rb.err != nil {
		t.Fatalf("B: Get: %v", rb.err)
	}
	sb := rb.s

	if sa.Bearer != sb.Bearer {
		t.Errorf("B did not reuse A's bearer")
	}
	if logins, _ := e.lp.counts(); logins != 1 {
		t.Errorf("logins = %d, want 1", logins)
	}
	if st := b.Stats(); st.Logins != 0 {
		t.Errorf("B logged in %d times", st.Logins)
	}
}

func TestLeaseHolderSilentLoserLogsInWithinTTL(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	e.store.set(leaseParam, "other "+itoa(now.Add(time.Minute).UnixMilli()), false)
	m := e.manager()
	var total time.Duration
	var pauses int
	m.after = func(d time.Duration) <-chan time.Time {
		total += d
		pauses++
		ch := make(chan time.Time, 1)
		ch <- time.Time{}
		return ch
	}
	s := mustGet(t, m)
	if s.Bearer == "" {
		t.Fatal("no bearer")
	}
	if total > 5*time.Second || pauses < 2 {
		t.Errorf("waited %v over %d pauses, want several pauses totalling at most LeaseTTL", total, pauses)
	}
	if got := m.Stats().Logins; got != 1 {
		t.Errorf("logins = %d, want 1", got)
	}
	if p, ok := e.store.get(leaseParam); !ok || !strings.HasPrefix(p.value, "other ") {
		t.Errorf("loser touched the holder's lease: %+v %v", p, ok)
	}
}

func TestStaleLeaseTakenOver(t *testing.T) {
	e := newEnv(t)
	e.store.set(leaseParam, "dead-holder 1000", false)
	m := e.manager() // any wait fails the test
	mustGet(t, m)
	if got := m.Stats().Logins; got != 1 {
		t.Errorf("logins = %d, want 1", got)
	}
	if _, ok := e.store.get(leaseParam); ok {
		t.Errorf("lease not released")
	}
	if !contains(e.store.deleted, leaseParam) {
		t.Errorf("lease was never deleted: %v", e.store.deleted)
	}
}

func TestParameterKindsAndSecureToken(t *testing.T) {
	e := newEnv(t)
	m := e.manager()
	s := mustGet(t, m)
	tok, ok := e.store.get(tokenParam)
	if !ok || !tok.secure || !strings.Contains(tok.value, s.Bearer) {
		t.Errorf("token parameter = %+v (found %v), want SecureString holding the bearer", tok.secure, ok)
	}
	dom, ok := e.store.get(domParam)
	if !ok || dom.secure || !strings.Contains(dom.value, "va-a.mtls.example") || !strings.Contains(dom.value, "fetchedAt") {
		t.Errorf("domains parameter = %+v (found %v)", dom, ok)
	}
}

func TestStoreDownStillWorks(t *testing.T) {
	e := newEnv(t)
	e.store.setFail(errors.New("dial tcp 127.0.0.1:1: connection refused"))
	m := e.manager()
	s := mustGet(t, m)
	if s.Bearer == "" {
		t.Fatal("no bearer")
	}
	if got := m.Stats().Logins; got != 1 {
		t.Errorf("logins = %d, want 1", got)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "parameter store unavailable") {
		t.Errorf("no store warning logged:\n%s", logs)
	}
	// Invalidate with the store down must not panic or fail.
	m.Invalidate(context.Background(), s.Bearer)
	if s2 := mustGet(t, m); s2.Bearer == s.Bearer {
		t.Errorf("invalidated bearer reused")
	}
}

// A store that answers after the deadline (SSM slow) costs a quarter of the time left,
// not the whole invocation, and only once per refresh: the login goes straight to
// LivePerson in time.
func TestSlowStoreLeavesTimeForLivePerson(t *testing.T) {
	e := newEnv(t)
	e.store.stall = true
	m := e.manager()
	// Without the per-call bound the first store read alone takes the whole deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := m.Get(ctx)
	if err != nil || s.Bearer == "" {
		t.Fatalf("a stalled store took the whole deadline: %v\n%s", err, e.logs.String())
	}
	// The one read of token and domains timed out; the refresh skipped the store after it.
	if st := m.Stats(); st.Logins != 1 || st.StoreGets != 1 || st.StorePuts != 0 {
		t.Errorf("stats %+v, want 1 login, 1 store read and no write", st)
	}
	// The next refresh tries the store again.
	e.store.stall = false
	m.Invalidate(context.Background(), s.Bearer)
	if _, err := m.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.StorePuts == 0 {
		t.Errorf("the store is never tried again: %+v", st)
	}
}

func TestCSDSDown(t *testing.T) {
	csdsErr := &lp.Error{Kind: lp.KindGateway, Op: "csds", Status: 503, Message: "unavailable"}
	t.Run("stale domains in memory", func(t *testing.T) {
		e := newEnv(t)
		m := e.manager()
		mustGet(t, m)
		e.clock.Advance(11 * time.Minute) // domains stale, token still valid
		e.lp.discoverErr = csdsErr
		s := mustGet(t, m)
		if s.Domains[lp.ServiceMTLSGateway] != "va-a.mtls.example" {
			t.Errorf("domains = %v", s.Domains)
		}
		if !strings.Contains(e.logs.String(), "using cached domains") {
			t.Errorf("no warning logged")
		}
		// The fallback is kept for a while: the next Get is warm.
		before := m.Stats().CSDSCalls
		mustGet(t, m)
		if m.Stats().CSDSCalls != before {
			t.Errorf("CSDS asked again at once")
		}
	})
	t.Run("stale domains in store", func(t *testing.T) {
		e := newEnv(t)
		e.plantDomains(e.clock.Now().Add(-24 * time.Hour))
		e.lp.discoverErr = csdsErr
		m := e.manager()
		s := mustGet(t, m)
		if s.Domains[lp.ServiceMTLSGateway] != "va-a.mtls.example" || s.Bearer == "" {
			t.Errorf("session = %+v", s)
		}
	})
	t.Run("nothing cached", func(t *testing.T) {
		e := newEnv(t)
		e.lp.discoverErr = csdsErr
		m := e.manager()
		_, err := m.Get(context.Background())
		if !errors.Is(err, lp.ErrDiscovery) {
			t.Fatalf("err = %v, want KindDiscovery", err)
		}
		if got := m.Stats().Logins; got != 0 {
			t.Errorf("logins = %d, want 0", got)
		}
	})
}

func TestDomainsFromStoreWhenFresh(t *testing.T) {
	e := newEnv(t)
	e.plantDomains(e.clock.Now().Add(-9 * time.Minute))
	m := e.manager()
	mustGet(t, m)
	if st := m.Stats(); st.CSDSCalls != 0 || st.Logins != 1 {
		t.Errorf("stats = %+v, want no CSDS call and one login", st)
	}
	// They age from their discovery time, not from when this process read them.
	e.clock.Advance(2 * time.Minute)
	mustGet(t, m)
	if got := m.Stats().CSDSCalls; got != 1 {
		t.Errorf("CSDS calls = %d, want 1 once the stored domains aged out", got)
	}
}

var unauthorized = &lp.Error{Kind: lp.KindAuth, Op: "forward", Status: 401, Message: "bearer rejected"}

func TestDoRetriesOnceOn401AndInvalidatesBothTiers(t *testing.T) {
	e := newEnv(t)
	m := e.manager()
	first := mustGet(t, m)
	var seen []string
	err := m.Do(context.Background(), func(ctx context.Context, s Session) error {
		seen = append(seen, s.Bearer)
		if len(seen) == 1 {
			return unauthorized
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if len(seen) != 2 || seen[0] != first.Bearer || seen[1] == first.Bearer {
		t.Fatalf("fn saw %d calls, fresh bearer on retry: %v", len(seen), len(seen) == 2 && seen[1] != first.Bearer)
	}
	if !contains(e.store.deleted, tokenParam) {
		t.Errorf("stored token not deleted: %v", e.store.deleted)
	}
	if got := m.Stats().Logins; got != 2 {
		t.Errorf("logins = %d, want 2", got)
	}
	if p, _ := e.store.get(tokenParam); !strings.Contains(p.value, seen[1]) {
		t.Errorf("store does not hold the new bearer")
	}
	if s := mustGet(t, m); s.Bearer != seen[1] {
		t.Errorf("memory does not hold the new bearer")
	}
}

func TestDoErrors(t *testing.T) {
	forbidden := &lp.Error{Kind: lp.KindAuth, Op: "forward", Status: 403}
	target := &lp.Error{Kind: lp.KindTarget, Op: "forward", Status: 424}
	for _, tc := range []struct {
		name       string
		errs       []error
		wantCalls  int
		wantErr    error
		wantLogins int64
	}{
		{"two 401s", []error{unauthorized, unauthorized}, 2, unauthorized, 2},
		{"403 not retried", []error{forbidden}, 1, forbidden, 1},
		{"other error as is", []error{target}, 1, target, 1},
		{"success", []error{nil}, 1, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			m := e.manager()
			calls := 0
			err := m.Do(context.Background(), func(ctx context.Context, s Session) error {
				calls++
				return tc.errs[min(calls, len(tc.errs))-1]
			})
			if err != tc.wantErr {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if calls != tc.wantCalls {
				t.Errorf("fn calls = %d, want %d", calls, tc.wantCalls)
			}
			if got := m.Stats().Logins; got != tc.wantLogins {
				t.Errorf("logins = %d, want %d", got, tc.wantLogins)
			}
		})
	}
}

func TestInvalidateOnlyDropsThatBearer(t *testing.T) {
	e := newEnv(t)
	m := e.manager()
	s := mustGet(t, m)
	m.Invalidate(context.Background(), "some-older-bearer")
	if s2 := mustGet(t, m); s2.Bearer != s.Bearer {
		t.Errorf("current bearer dropped by an invalidation of another one")
	}
	if _, ok := e.store.get(tokenParam); !ok {
		t.Errorf("stored token deleted by an invalidation of another one")
	}
	if got := m.Stats().Logins; got != 1 {
		t.Errorf("logins = %d, want 1", got)
	}
}

func TestInvalidatedBearerNotTakenBackFromStore(t *testing.T) {
	e := newEnv(t)
	m := e.manager()
	s := mustGet(t, m)
	e.store.setFail(errors.New("throttled")) // the delete fails...
	m.Invalidate(context.Background(), s.Bearer)
	e.store.setFail(nil) // ...so the store still has it when the next Get looks
	if s2 := mustGet(t, m); s2.Bearer == s.Bearer {
		t.Errorf("rejected bearer reused from the store")
	}
}

func TestCredentialRotation(t *testing.T) {
	t.Run("secret changed", func(t *testing.T) {
		e := newEnv(t)
		e.lp.password = newPass
		e.secrets.creds = append(e.secrets.creds, lp.Credentials{AccountID: acct, Username: "svc", Password: newPass})
		m := e.manager()
		s := mustGet(t, m)
		if s.Bearer == "" {
			t.Fatal("no bearer")
		}
		if st := m.Stats(); st.Logins != 2 || st.SecretReads != 2 {
			t.Errorf("stats = %+v, want 2 logins and 2 secret reads", st)
		}
		// The new credentials stay in memory for later logins.
		m.Invalidate(context.Background(), s.Bearer)
		mustGet(t, m)
		if st := m.Stats(); st.Logins != 3 || st.SecretReads != 2 {
			t.Errorf("after re-login stats = %+v, want 3 logins and 2 secret reads", st)
		}
	})
	t.Run("secret unchanged", func(t *testing.T) {
		e := newEnv(t)
		e.lp.password = newPass
		m := e.manager()
		_, err := m.Get(context.Background())
		var le *lp.Error
		if !errors.As(err, &le) || le.Kind != lp.KindAuth || le.Op != "login" {
			t.Fatalf("err = %v, want the login auth error", err)
		}
		if st := m.Stats(); st.Logins != 1 || st.SecretReads != 2 {
			t.Errorf("stats = %+v, want 1 login and 2 secret reads", st)
		}
		// The lease is left as a refusal marker so that peers do not log in again.
		if p, ok := e.store.get(leaseParam); !ok || !strings.HasSuffix(p.value, " refused auth") {
			t.Errorf("lease = %q (present %v), want a refusal marker", p.value, ok)
		}
	})
}

func TestOnTokenCalledForEveryNewBearer(t *testing.T) {
	e := newEnv(t)
	m := e.manager()
	s1 := mustGet(t, m)
	mustGet(t, m)
	m.Invalidate(context.Background(), s1.Bearer)
	s2 := mustGet(t, m)
	if len(e.onTok) != 2 || e.onTok[0] != s1.Bearer || e.onTok[1] != s2.Bearer {
		t.Errorf("OnToken saw %d bearers, want the 2 issued", len(e.onTok))
	}
}

func BenchmarkGetWarm(b *testing.B) {
	c := &clock{t: time.Now()}
	m := New(Options{
		LP:          &fakeLP{clock: c, password: oldPass, domains: testDomains},
		Credentials: &fakeSecrets{creds: []lp.Credentials{{AccountID: acct, Password: oldPass}}},
	})
	ctx := context.Background()
	if _, err := m.Get(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Get(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// The first caller giving up must not fail the others waiting on the same login.
func TestFirstCallerCancelDoesNotFailOthers(t *testing.T) {
	e := newEnv(t)
	e.lp.loginStarted = make(chan struct{}, 1)
	e.lp.release = make(chan struct{})
	m := e.manager(func(o *Options) { o.Store = nil })
	ctx1, cancel1 := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := m.Get(ctx1); first <- err }()
	<-e.lp.loginStarted
	second := make(chan error, 1)
	go func() { _, err := m.Get(context.Background()); second <- err }()
	cancel1()
	if err := <-first; lp.KindOf(err) != lp.KindTimeout {
		t.Fatalf("first caller: %v", err)
	}
	close(e.lp.release)
	if err := <-second; err != nil {
		t.Fatalf("second caller failed with the first one's cancellation: %v", err)
	}
	if logins, _ := e.lp.counts(); logins != 1 {
		t.Fatalf("logins %d", logins)
	}
}

// Source says where each Get found its bearer, and OnLogin sees every login with the
// context of the call that needed it (the forward metrics count both per invocation).
func TestSourceAndOnLogin(t *testing.T) {
	type key struct{}
	var loginCtx []any
	withHook := func(o *Options) {
		o.OnLogin = func(ctx context.Context) { loginCtx = append(loginCtx, ctx.Value(key{})) }
	}
	ctx := context.WithValue(context.Background(), key{}, "invocation-1")

	e := newEnv(t)
	m := e.manager(withHook)
	for i, want := range []TokenSource{SourceLogin, SourceMemory, SourceMemory} {
		s, err := m.Get(ctx)
		if err != nil || s.Source != want {
			t.Fatalf("Get %d: source %q err %v, want %q", i, s.Source, err, want)
		}
	}
	if len(loginCtx) != 1 || loginCtx[0] != "invocation-1" {
		t.Fatalf("OnLogin calls %v, want one with the caller's context", loginCtx)
	}

	stored := newEnv(t)
	stored.plantToken("stored-bearer-s3cr3t", stored.clock.Now().Add(time.Hour))
	m = stored.manager(withHook)
	if s := mustGet(t, m); s.Source != SourceStore {
		t.Fatalf("cold start with a stored token: source %q", s.Source)
	}
	if s := mustGet(t, m); s.Source != SourceMemory {
		t.Fatalf("then: source %q", s.Source)
	}
	if len(loginCtx) != 1 {
		t.Fatalf("a stored token made %d logins", len(loginCtx)-1)
	}
}
