package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
)

// With a slow store the wait for a silent holder still ends at LeaseTTL of real time:
// store calls count, not only the pauses. The wall clock is a fake that every Get and
// every pause advances.
func TestLeaseWaitBoundedInWallTime(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	e.store.set(leaseParam, "other "+itoa(now.Add(time.Minute).UnixMilli()), false)
	wall := &clock{t: time.Now()}
	const getLatency, ttl = 100 * time.Millisecond, time.Second
	gets := map[string]int{}
	e.store.onGet = func(_ context.Context, name string) {
		wall.Advance(getLatency)
		e.store.mu.Lock()
		gets[name]++
		e.store.mu.Unlock()
	}
	m := e.manager(func(o *Options) { o.LeaseTTL = ttl })
	m.wallNow = wall.Now
	m.after = func(d time.Duration) <-chan time.Time {
		wall.Advance(d)
		ch := make(chan time.Time, 1)
		ch <- time.Time{}
		return ch
	}
	start := wall.Now()
	if s := mustGet(t, m); s.Bearer == "" {
		t.Fatal("no bearer")
	}
	// Before the wait: the token and domains reads; after its deadline: at most one Get
	// in flight.
	if took := wall.Now().Sub(start); took > ttl+3*getLatency {
		t.Errorf("Get took %v of wall time, want at most LeaseTTL plus three store reads", took)
	}
	if got := m.Stats().Logins; got != 1 {
		t.Errorf("logins = %d, want 1", got)
	}
	e.store.mu.Lock()
	tok, lease := gets[tokenParam], gets[leaseParam]
	e.store.mu.Unlock()
	// One lease read after the failed Put, then one every other poll.
	if polls := tok - 1; lease > 1+(polls+1)/2 {
		t.Errorf("lease reads = %d for %d token polls, want one every other poll", lease, polls)
	}
}

// The lease is read at every other poll only.
func TestLeaseWaitReadsLeaseEveryOtherPoll(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	e.store.set(leaseParam, "other "+itoa(now.Add(time.Minute).UnixMilli()), false)
	gets := map[string]int{}
	e.store.onGet = func(_ context.Context, name string) {
		e.store.mu.Lock()
		gets[name]++
		e.store.mu.Unlock()
	}
	m := e.manager()
	pauses := 0
	m.after = func(time.Duration) <-chan time.Time {
		pauses++
		ch := make(chan time.Time, 1)
		ch <- time.Time{}
		return ch
	}
	mustGet(t, m)
	// Token: the first read plus one per poll; lease: one after the failed Put plus one
	// every other poll, starting with the first.
	if want := 1 + pauses; gets[tokenParam] != want {
		t.Errorf("token reads = %d, want %d", gets[tokenParam], want)
	}
	if want := 1 + (pauses+1)/2; gets[leaseParam] != want {
		t.Errorf("lease reads = %d over %d polls, want %d", gets[leaseParam], pauses, want)
	}
}

// Two managers share a store; the holder's login is refused (or throttled): it leaves
// a refusal marker, and the waiter answers the same kind of error without logging in,
// now and until the marker expires.
func TestLeaseHolderRefusedWaiterDoesNotLogIn(t *testing.T) {
	for _, tc := range []struct {
		name     string
		loginErr error // nil: a wrong password
		kind     lp.Kind
	}{
		{"wrong password", nil, lp.KindAuth},
		{"blocked", &lp.Error{Kind: lp.KindBlocked, Op: "login", Status: 451}, lp.KindBlocked},
		{"throttled", &lp.Error{Kind: lp.KindThrottled, Op: "login", Status: 429, RetryAfter: 8 * time.Second}, lp.KindThrottled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.loginErr != nil {
				e.lp.loginErr = tc.loginErr
			} else {
				e.lp.password = newPass
			}
			e.lp.loginStarted = make(chan struct{}, 1)
			e.lp.release = make(chan struct{})
			a, b := e.manager(), e.manager()
			waiting := make(chan time.Duration, 1)
			fire := make(chan time.Time, 1)
			b.after = func(d time.Duration) <-chan time.Time { waiting <- d; return fire }

			aDone, bDone := make(chan error, 1), make(chan error, 1)
			go func() { _, err := a.Get(context.Background()); aDone <- err }()
			<-e.lp.loginStarted // A holds the lease and is logging in
			go func() { _, err := b.Get(context.Background()); bDone <- err }()
			<-waiting
			close(e.lp.release)
			if err := <-aDone; lp.KindOf(err) != tc.kind {
				t.Fatalf("A: err = %v, want %v", err, tc.kind)
			}
			p, ok := e.store.get(leaseParam)
			if !ok || !strings.HasSuffix(p.value, " refused "+tc.kind.String()) {
				t.Fatalf("lease = %q (present %v), want a refusal marker", p.value, ok)
			}
			fire <- time.Time{}
			err := <-bDone
			if lp.KindOf(err) != tc.kind {
				t.Fatalf("B: err = %v, want %v", err, tc.kind)
			}
			if tc.kind == lp.KindThrottled {
				var le *lp.Error
				if !errors.As(err, &le) || le.RetryAfter <= 0 || le.RetryAfter > 8*time.Second {
					t.Errorf("B: RetryAfter = %v, want the marker's time left", le.RetryAfter)
				}
			}
			// B holds back on its own now: no store round trip to the lease, no login.
			if _, err := b.Get(context.Background()); lp.KindOf(err) != tc.kind {
				t.Errorf("B again: err = %v, want %v", err, tc.kind)
			}
			if got := b.Stats().Logins; got != 0 {
				t.Errorf("B logged in %d times", got)
			}
			// A fresh instance reads the marker and holds back too (any wait fails).
			c := e.manager()
			if _, err := c.Get(context.Background()); lp.KindOf(err) != tc.kind {
				t.Errorf("C: err = %v, want %v", err, tc.kind)
			}
			if logins, _ := e.lp.counts(); logins != 1 {
				t.Errorf("logins = %d, want only the holder's", logins)
			}
		})
	}
}

// A refusal marker is honoured until it expires; then it is a stale lease.
func TestRefusalMarkerExpiry(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	e.store.set(leaseParam, "other "+itoa(now.Add(10*time.Second).UnixMilli())+" refused auth", false)
	m := e.manager() // any wait fails the test
	if _, err := m.Get(context.Background()); lp.KindOf(err) != lp.KindAuth {
		t.Fatalf("err = %v, want auth", err)
	}
	if got := m.Stats().Logins; got != 0 {
		t.Fatalf("logins = %d under a live marker", got)
	}
	e.clock.Advance(10 * time.Second)
	if s := mustGet(t, m); s.Bearer == "" {
		t.Fatal("no bearer")
	}
	if got := m.Stats().Logins; got != 1 {
		t.Errorf("logins = %d, want 1 once the marker expired", got)
	}
	if _, ok := e.store.get(leaseParam); ok {
		t.Errorf("lease left behind")
	}
}

// New credentials in the secret override a peer's refusal marker.
func TestRefusalMarkerYieldsToRotatedSecret(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	e.store.set(leaseParam, "other "+itoa(now.Add(30*time.Second).UnixMilli())+" refused auth", false)
	m := e.manager()
	if _, err := m.Get(context.Background()); lp.KindOf(err) != lp.KindAuth {
		t.Fatalf("err = %v, want auth", err)
	}
	e.secrets.set(lp.Credentials{AccountID: acct, Username: "svc", Password: newPass})
	e.lp.mu.Lock()
	e.lp.password = newPass
	e.lp.mu.Unlock()
	e.clock.Advance(15 * time.Second) // second half of the window: the secret is re-read
	if s := mustGet(t, m); s.Bearer == "" {
		t.Fatal("no bearer")
	}
	if st := m.Stats(); st.Logins != 1 || st.SecretReads != 2 {
		t.Errorf("stats = %+v, want 1 login and 2 secret reads", st)
	}
}

func TestParseLease(t *testing.T) {
	for _, tc := range []struct {
		v       string
		ok      bool
		ms      int64
		refused lp.Kind
	}{
		{"holder 1700000000000", true, 1700000000000, lp.KindUnknown},
		{" holder 1700000000000\n", true, 1700000000000, lp.KindUnknown},
		{"holder 1700000000000 refused auth", true, 1700000000000, lp.KindAuth},
		{"holder 1700000000000 refused blocked", true, 1700000000000, lp.KindBlocked},
		{"holder 1700000000000 refused throttled", true, 1700000000000, lp.KindThrottled},
		{"holder 1700000000000 refused gateway_error", false, 0, 0},
		{"holder 1700000000000 later auth", false, 0, 0},
		{"holder 1700000000000 refused", false, 0, 0},
		{"holder", false, 0, 0},
		{"holder soon", false, 0, 0},
	} {
		l, ok := parseLease(tc.v)
		if ok != tc.ok || (ok && (l.expiry.UnixMilli() != tc.ms || l.refused != tc.refused)) {
			t.Errorf("parseLease(%q) = %+v, %v", tc.v, l, ok)
		}
	}
}

// A peer's token read from the store while this process held the lease is dropped if
// the gateway rejected it in the meantime, as a token read at the start is.
func TestRejectedBearerFromLeaseRoundNotKept(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	const peer = "peer-bearer-s3cr3t"
	var m *Manager
	planted, invalidated := false, false
	e.store.afterPut = func(name string, overwrite bool, err error) {
		if name == leaseParam && !overwrite && err == nil && !planted {
			planted = true // a peer published just before our lease Put
			e.plantIssuedToken(peer, now, now.Add(time.Hour))
		}
	}
	e.store.onDelete = func(ctx context.Context, name string) {
		if name == leaseParam && planted && !invalidated {
			invalidated = true // the gateway refuses it while we release the lease
			m.Invalidate(ctx, peer)
		}
	}
	m = e.manager()
	s := mustGet(t, m)
	if !invalidated {
		t.Fatal("scenario did not run")
	}
	if s.Bearer == peer {
		t.Errorf("rejected bearer kept in memory")
	}
	if got := m.Stats().Logins; got != 1 {
		t.Errorf("logins = %d, want 1", got)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range e.onTok {
		if b == peer {
			t.Errorf("rejected bearer passed to OnToken")
		}
	}
}
