package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
)

// A target that answers 401 itself looks like a gateway that refuses the bearer. Each
// step is one Do: its fn answers errs in turn (the last repeats); advance runs first.
func TestDoReloginLimitedPerInterval(t *testing.T) {
	type step struct {
		advance    time.Duration
		errs       []error
		wantCalls  int
		wantLogins int64 // cumulative; the first Get logs in once
	}
	always401 := []error{unauthorized}
	ok, reloginOK := []error{nil}, []error{unauthorized, nil}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"target's own 401: one re-login per interval", []step{
			{0, always401, 2, 2},
			{0, always401, 1, 2},
			{29 * time.Second, always401, 1, 2},
			{time.Second, always401, 2, 3}, // the re-login is 30s old
			{0, always401, 1, 3},
		}},
		{"revoked again after the new bearer worked", []step{
			{0, reloginOK, 2, 2}, // as e2e: revocation after a normal login
			{0, always401, 2, 3}, // the new bearer was accepted, then refused: one retry
			{0, always401, 1, 3}, // two re-logins this interval already
		}},
		{"mixed traffic: at most two re-logins per interval", []step{
			{0, always401, 2, 2},
			{0, ok, 1, 2},
			{0, always401, 2, 3},
			{0, ok, 1, 3},
			{0, always401, 1, 3},
			{0, ok, 1, 3},
			{0, always401, 1, 3},
			{30 * time.Second, always401, 2, 4},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			m := e.manager()
			mustGet(t, m)
			for i, st := range tc.steps {
				e.clock.Advance(st.advance)
				calls := 0
				err := m.Do(context.Background(), func(ctx context.Context, s Session) error {
					calls++
					return st.errs[min(calls, len(st.errs))-1]
				})
				if want := st.errs[min(calls, len(st.errs))-1]; err != want {
					t.Errorf("step %d: err = %v, want %v", i, err, want)
				}
				if calls != st.wantCalls {
					t.Errorf("step %d: fn calls = %d, want %d", i, calls, st.wantCalls)
				}
				if got := m.Stats().Logins; got != st.wantLogins {
					t.Errorf("step %d: logins = %d, want %d", i, got, st.wantLogins)
				}
			}
			// Every bearer reaches OnToken once; refused retries add none.
			if logins := int(m.Stats().Logins); len(e.onTok) != logins {
				t.Errorf("OnToken calls = %d, want one per login (%d)", len(e.onTok), logins)
			}
			if n, want := count(e.store.deleted, tokenParam), int(m.Stats().Logins)-1; n != want {
				t.Errorf("stored token deleted %d times, want %d", n, want)
			}
		})
	}
}

func TestDoReloginIntervalOption(t *testing.T) {
	e := newEnv(t)
	m := e.manager(func(o *Options) { o.ReloginInterval = 2 * time.Minute })
	do := func() int {
		calls := 0
		_ = m.Do(context.Background(), func(context.Context, Session) error { calls++; return unauthorized })
		return calls
	}
	do()
	e.clock.Advance(time.Minute)
	if c := do(); c != 1 {
		t.Errorf("fn calls within the interval = %d, want 1", c)
	}
	e.clock.Advance(time.Minute)
	if c := do(); c != 2 {
		t.Errorf("fn calls after the interval = %d, want 2", c)
	}
}

func (s *fakeSecrets) set(c ...lp.Credentials) {
	s.mu.Lock()
	s.creds, s.reads = c, 0
	s.mu.Unlock()
}

func TestLoginBackoff(t *testing.T) {
	throttled := func(ra time.Duration) error {
		return &lp.Error{Kind: lp.KindThrottled, Op: "login", Status: 429, RetryAfter: ra}
	}
	blocked := &lp.Error{Kind: lp.KindBlocked, Op: "login", Status: 451}
	network := &lp.Error{Kind: lp.KindNetwork, Op: "login", Err: errors.New("connection reset")}
	for _, tc := range []struct {
		name     string
		loginErr error // nil: a wrong password
		block    time.Duration
		kind     lp.Kind
		// secret reads by the first Get, and the one extra re-read a refusal allows
		firstReads, recheck int
	}{
		{"wrong password", nil, 30 * time.Second, lp.KindAuth, 2, 1},
		{"blocked user", blocked, 30 * time.Second, lp.KindBlocked, 1, 1},
		{"throttled without Retry-After", throttled(0), 5 * time.Second, lp.KindThrottled, 1, 0},
		{"throttled with a short Retry-After", throttled(2 * time.Second), 5 * time.Second, lp.KindThrottled, 1, 0},
		{"throttled with a long Retry-After", throttled(12 * time.Second), 12 * time.Second, lp.KindThrottled, 1, 0},
		{"network error: no backoff", network, 0, lp.KindNetwork, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.loginErr != nil {
				e.lp.loginErr = tc.loginErr
			} else {
				e.lp.password = newPass
			}
			m := e.manager()
			get := func() error {
				_, err := m.Get(context.Background())
				if k := lp.KindOf(err); k != tc.kind {
					t.Fatalf("err = %v, want kind %v", err, tc.kind)
				}
				return err
			}
			get()
			logins := m.Stats().Logins
			if st := m.Stats(); st.SecretReads != int64(tc.firstReads) {
				t.Fatalf("secret reads after the first login = %d, want %d", st.SecretReads, tc.firstReads)
			}
			if tc.block == 0 {
				get()
				if got := m.Stats().Logins; got != logins+1 {
					t.Errorf("logins = %d, want a new attempt (%d)", got, logins+1)
				}
				return
			}
			for range 5 {
				err := get()
				if tc.kind == lp.KindThrottled {
					var le *lp.Error
					errors.As(err, &le)
					if le.RetryAfter <= 0 || le.RetryAfter > tc.block {
						t.Errorf("RetryAfter = %v, want the time left of %v", le.RetryAfter, tc.block)
					}
				}
			}
			e.clock.Advance(tc.block - time.Nanosecond)
			get()
			st := m.Stats()
			if st.Logins != logins {
				t.Errorf("logins while held back = %d, want %d", st.Logins, logins)
			}
			if want := int64(tc.firstReads + tc.recheck); st.SecretReads != want {
				t.Errorf("secret reads while held back = %d, want %d", st.SecretReads, want)
			}
			e.clock.Advance(time.Nanosecond)
			get()
			if got := m.Stats().Logins; got <= logins {
				t.Errorf("no login once the backoff ended")
			}
		})
	}
}

func TestLoginBackoffPicksUpRotatedSecret(t *testing.T) {
	e := newEnv(t)
	e.lp.password = newPass
	m := e.manager(func(o *Options) { o.AuthFailureBackoff = time.Hour })
	if _, err := m.Get(context.Background()); lp.KindOf(err) != lp.KindAuth {
		t.Fatalf("err = %v, want auth", err)
	}
	// The secret is rotated while logins are held back. The refused login has just
	// re-read it, so the next request does not; one in the second half of the window
	// re-reads it once and logs in with it, without a second re-read.
	e.secrets.set(lp.Credentials{AccountID: acct, Username: "svc", Password: newPass})
	e.clock.Advance(30*time.Minute - time.Nanosecond)
	if _, err := m.Get(context.Background()); lp.KindOf(err) != lp.KindAuth {
		t.Fatalf("err = %v, want auth", err)
	}
	if st := m.Stats(); st.SecretReads != 2 {
		t.Errorf("secret reads in the first half of the window = %d, want 2", st.SecretReads)
	}
	e.clock.Advance(time.Nanosecond)
	if s := mustGet(t, m); s.Bearer == "" {
		t.Fatal("no bearer")
	}
	if st := m.Stats(); st.Logins != 2 || st.SecretReads != 3 {
		t.Errorf("stats = %+v, want 2 logins and 3 secret reads", st)
	}

	// Refused again and the secret unchanged: one re-read per window, no login.
	e2 := newEnv(t)
	e2.lp.password = newPass
	m2 := e2.manager()
	for i := range 4 {
		if i == 2 {
			e2.clock.Advance(15 * time.Second)
		}
		if _, err := m2.Get(context.Background()); lp.KindOf(err) != lp.KindAuth {
			t.Fatalf("err = %v", err)
		}
	}
	if st := m2.Stats(); st.Logins != 1 || st.SecretReads != 3 {
		t.Errorf("stats = %+v, want 1 login and 3 secret reads", st)
	}
	// A rotation after the window's re-read waits for the window to end.
	e2.secrets.set(lp.Credentials{AccountID: acct, Username: "svc", Password: newPass})
	if _, err := m2.Get(context.Background()); lp.KindOf(err) != lp.KindAuth {
		t.Fatalf("err = %v", err)
	}
	e2.clock.Advance(15 * time.Second)
	if s := mustGet(t, m2); s.Bearer == "" {
		t.Fatal("no bearer")
	}
}

// A peer's token in the store is still taken while logins are held back.
func TestLoginBackoffStillReadsStore(t *testing.T) {
	e := newEnv(t)
	e.lp.loginErr = &lp.Error{Kind: lp.KindThrottled, Op: "login", Status: 429}
	m := e.manager()
	if _, err := m.Get(context.Background()); lp.KindOf(err) != lp.KindThrottled {
		t.Fatalf("err = %v", err)
	}
	e.plantToken("peer-bearer-s3cr3t", e.clock.Now().Add(time.Hour))
	if s := mustGet(t, m); s.Bearer != "peer-bearer-s3cr3t" {
		t.Errorf("bearer = %q, want the peer's", s.Bearer)
	}
	if got := m.Stats().Logins; got != 1 {
		t.Errorf("logins = %d, want 1", got)
	}
}

// The lease holder's login failed: it released the lease without a token. The waiter
// stands for election again at once instead of waiting out LeaseTTL.
func TestLeaseReleasedWithoutToken(t *testing.T) {
	for _, published := range []bool{false, true} {
		t.Run(map[bool]string{false: "no token", true: "token published"}[published], func(t *testing.T) {
			e := newEnv(t)
			now := e.clock.Now()
			e.store.set(leaseParam, "other "+itoa(now.Add(time.Minute).UnixMilli()), false)
			m := e.manager()
			pauses := 0
			m.after = func(d time.Duration) <-chan time.Time {
				pauses++
				if published {
					e.plantIssuedToken("peer-bearer-s3cr3t", now, now.Add(time.Hour))
				}
				e.store.remove(leaseParam)
				ch := make(chan time.Time, 1)
				ch <- time.Time{}
				return ch
			}
			s := mustGet(t, m)
			if pauses != 1 {
				t.Errorf("pauses = %d, want 1", pauses)
			}
			wantLogins := int64(1)
			if published {
				wantLogins = 0
				if s.Bearer != "peer-bearer-s3cr3t" {
					t.Errorf("bearer = %q, want the published one", s.Bearer)
				}
			}
			if got := m.Stats().Logins; got != wantLogins {
				t.Errorf("logins = %d, want %d", got, wantLogins)
			}
			if _, ok := e.store.get(leaseParam); ok {
				t.Errorf("lease left behind")
			}
		})
	}
}

// The lease vanishes between our failed Put and our Get of it.
func TestLeaseVanishedBetweenPutAndGet(t *testing.T) {
	for _, tc := range []struct {
		name       string
		publish    bool // the holder published a token
		reappear   bool // another process takes the lease before every Put of ours
		wantLogins int64
		wantPuts   int // our lease Puts with overwrite=false
	}{
		{"token published", true, false, 0, 1},
		{"no token: election again", false, false, 1, 2},
		{"churn: bounded elections", false, true, 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			now := e.clock.Now()
			e.store.set(leaseParam, "other "+itoa(now.Add(time.Minute).UnixMilli()), false)
			puts := 0
			e.store.beforePut = func(name string, overwrite bool) {
				if name == leaseParam && !overwrite {
					puts++
					if tc.reappear {
						e.store.set(leaseParam, "other "+itoa(now.Add(time.Minute).UnixMilli()), false)
					}
				}
			}
			e.store.afterPut = func(name string, overwrite bool, err error) {
				if name == leaseParam && errors.Is(err, ErrParameterExists) {
					if tc.publish {
						e.plantIssuedToken("peer-bearer-s3cr3t", now, now.Add(time.Hour))
					}
					e.store.remove(leaseParam)
				}
			}
			m := e.manager() // any wait fails the test
			s := mustGet(t, m)
			if got := m.Stats().Logins; got != tc.wantLogins {
				t.Errorf("logins = %d, want %d", got, tc.wantLogins)
			}
			if tc.publish && s.Bearer != "peer-bearer-s3cr3t" {
				t.Errorf("bearer = %q, want the published one", s.Bearer)
			}
			if puts != tc.wantPuts {
				t.Errorf("lease Puts = %d, want %d", puts, tc.wantPuts)
			}
		})
	}
}

// One rule decides when a token is replaced, whoever obtained it.
func TestRefreshAtConsistent(t *testing.T) {
	t.Run("stored token with 6m left is replaced 5m before expiry", func(t *testing.T) {
		for _, issued := range []bool{false, true} {
			e := newEnv(t)
			now := e.clock.Now()
			if issued {
				e.plantIssuedToken("stored-bearer-s3cr3t", now.Add(-54*time.Minute), now.Add(6*time.Minute))
			} else {
				e.plantToken("stored-bearer-s3cr3t", now.Add(6*time.Minute))
			}
			e.plantDomains(now)
			m := e.manager()
			if s := mustGet(t, m); s.Bearer != "stored-bearer-s3cr3t" {
				t.Fatalf("stored token not used")
			}
			e.clock.Advance(time.Minute - time.Nanosecond)
			if s := mustGet(t, m); s.Bearer != "stored-bearer-s3cr3t" {
				t.Fatalf("replaced too early")
			}
			e.clock.Advance(time.Nanosecond)
			if s := mustGet(t, m); s.Bearer == "stored-bearer-s3cr3t" {
				t.Errorf("issuedAt known=%v: token used inside the margin", issued)
			}
		}
	})
	t.Run("short-lived token is shared until halfway", func(t *testing.T) {
		e := newEnv(t)
		e.lp.ttl = 8 * time.Minute // less than twice the 5m margin: replaced at 4m
		a := e.manager()
		sa := mustGet(t, a)
		if p, _ := e.store.get(tokenParam); !strings.Contains(p.value, `"issuedAt"`) {
			t.Errorf("stored token carries no issuedAt")
		}
		e.clock.Advance(4*time.Minute - time.Nanosecond)
		b := e.manager()
		if sb := mustGet(t, b); sb.Bearer != sa.Bearer || b.Stats().Logins != 0 {
			t.Errorf("peer refused a token the issuer still uses (logins %d)", b.Stats().Logins)
		}
		if s := mustGet(t, a); s.Bearer != sa.Bearer {
			t.Errorf("issuer replaced its token early")
		}
		e.clock.Advance(time.Nanosecond)
		if s := mustGet(t, a); s.Bearer == sa.Bearer {
			t.Errorf("issuer kept its token past halfway")
		}
	})
	t.Run("token living less than the margin reaches lease waiters", func(t *testing.T) {
		e := newEnv(t)
		now := e.clock.Now()
		e.store.set(leaseParam, "other "+itoa(now.Add(time.Minute).UnixMilli()), false)
		m := e.manager()
		m.after = func(time.Duration) <-chan time.Time {
			e.plantIssuedToken("peer-bearer-s3cr3t", now, now.Add(4*time.Minute))
			ch := make(chan time.Time, 1)
			ch <- time.Time{}
			return ch
		}
		if s := mustGet(t, m); s.Bearer != "peer-bearer-s3cr3t" || m.Stats().Logins != 0 {
			t.Errorf("waiter did not take the short-lived token (logins %d)", m.Stats().Logins)
		}
	})
}

// Do's retry joins a flight that was only refreshing domains when Invalidate drops the
// bearer: the flight must come back with a new bearer, not an error.
func TestRefreshObtainsTokenInvalidatedMidFlight(t *testing.T) {
	e := newEnv(t)
	m := e.manager()
	first := mustGet(t, m)
	e.clock.Advance(11 * time.Minute) // domains stale, token still good
	e.lp.mu.Lock()
	e.lp.discoverStarted = make(chan struct{}, 1)
	e.lp.discoverRelease = make(chan struct{})
	e.lp.mu.Unlock()
	type got struct {
		s   Session
		err error
	}
	done := make(chan got, 1)
	go func() { s, err := m.Get(context.Background()); done <- got{s, err} }()
	<-e.lp.discoverStarted
	m.Invalidate(context.Background(), first.Bearer)
	close(e.lp.discoverRelease)
	r := <-done
	if r.err != nil {
		t.Fatalf("Get: %v", r.err)
	}
	if r.s.Bearer == "" || r.s.Bearer == first.Bearer {
		t.Errorf("flight returned the invalidated bearer or none")
	}
	if got := m.Stats().Logins; got != 2 {
		t.Errorf("logins = %d, want 2", got)
	}
}

// Work that outlives its caller's cancellation still has a deadline.
func TestDetachedWorkIsBounded(t *testing.T) {
	e := newEnv(t)
	var getBounded, deleteBounded, deleted bool
	e.store.onGet = func(ctx context.Context, name string) {
		if name == tokenParam {
			_, getBounded = ctx.Deadline()
		}
	}
	e.store.onDelete = func(ctx context.Context, name string) {
		if name == leaseParam {
			deleted = true
			dl, ok := ctx.Deadline()
			deleteBounded = ok && time.Until(dl) <= 5*time.Second
		}
	}
	m := e.manager()
	mustGet(t, m) // no deadline on the caller's context
	if !getBounded {
		t.Errorf("shared refresh runs without a deadline")
	}
	if !deleted || !deleteBounded {
		t.Errorf("lease delete (ran %v) not bounded by LeaseTTL", deleted)
	}
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}
