package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
)

// storedDomains is the JSON kept in {Prefix}/domains. FetchedAt travels with the
// domains so every environment ages them from the same discovery.
type storedDomains struct {
	Domains   lp.Domains `json:"domains"`
	FetchedAt time.Time  `json:"fetchedAt"`
	Account   string     `json:"account"`
}

func encodeDomains(acct string, d lp.Domains, at time.Time) string {
	b, _ := json.Marshal(storedDomains{Domains: d, FetchedAt: at.UTC(), Account: acct})
	return string(b)
}

// storeShare is the part of the time left that one store call may take. The store is a
// cache: a slow one (SSM answering after half the deadline) must be given up early
// enough that LivePerson can still be asked directly.
const storeShare = 4

// slowStoreKey marks the context of one refresh with a flag that the first store call
// cut short by its share sets: the refresh's later reads and writes are then skipped,
// since a store that just timed out would most likely eat their share too. Deletes are
// still tried (bounded the same way): they release a lease others may be waiting on.
type slowStoreKey struct{}

// errStoreSkipped is what a skipped store call returns; callers warn and carry on.
var errStoreSkipped = errors.New("session: parameter store skipped: a call timed out earlier in this refresh")

func withSlowStoreFlag(ctx context.Context) context.Context {
	return context.WithValue(ctx, slowStoreKey{}, new(atomic.Bool))
}

// storeCall runs call bounded by storeShare of ctx's remaining (real) time.
func storeCall(ctx context.Context, skippable bool, call func(context.Context) error) error {
	slow, _ := ctx.Value(slowStoreKey{}).(*atomic.Bool)
	if skippable && slow != nil && slow.Load() {
		return errStoreSkipped
	}
	cctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, time.Until(dl)/storeShare)
		defer cancel()
	}
	err := call(cctx)
	if err != nil && slow != nil && ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
		slow.Store(true)
	}
	return err
}

func (m *Manager) storeGet(ctx context.Context, name string) (v string, found bool, err error) {
	err = storeCall(ctx, true, func(ctx context.Context) error {
		m.storeGets.Add(1)
		var e error
		v, found, e = m.o.Store.Get(ctx, name)
		return e
	})
	return v, found, err
}

func (m *Manager) storeGetMany(ctx context.Context, names []string) (vals map[string]string, err error) {
	err = storeCall(ctx, true, func(ctx context.Context) error {
		m.storeGets.Add(1)
		var e error
		vals, e = m.o.Store.GetMany(ctx, names)
		return e
	})
	return vals, err
}

func (m *Manager) storePut(ctx context.Context, name, value string, secure, overwrite bool) error {
	return storeCall(ctx, true, func(ctx context.Context) error {
		m.storePuts.Add(1)
		return m.o.Store.Put(ctx, name, value, secure, overwrite)
	})
}

func (m *Manager) storeDelete(ctx context.Context, name string) error {
	return storeCall(ctx, false, func(ctx context.Context) error {
		m.storeDeletes.Add(1)
		return m.o.Store.Delete(ctx, name)
	})
}

// storeGetToken reads acct's shared token (see parseToken).
func (m *Manager) storeGetToken(ctx context.Context, acct, name string) (storedToken, bool, error) {
	v, found, err := m.storeGet(ctx, name)
	if err != nil || !found {
		return storedToken{}, false, err
	}
	t, ok := m.parseToken(ctx, acct, name, v)
	return t, ok, nil
}

// parseToken reads a token value. One that does not parse is reported as not found
// (and logged): it will be overwritten by the next login. So is another account's
// (the secret changed accounts, or two deployments share the prefix).
func (m *Manager) parseToken(ctx context.Context, acct, name, v string) (storedToken, bool) {
	var t storedToken
	if err := json.Unmarshal([]byte(v), &t); err != nil || t.Bearer == "" {
		// The value is secret: say only that it is malformed.
		m.o.Logger.WarnContext(ctx, "ignoring malformed token parameter", "parameter", name)
		return storedToken{}, false
	}
	if t.Account != acct {
		m.o.Logger.InfoContext(ctx, "ignoring cached token of another account", "parameter", name, "account", acct, "cachedAccount", t.Account)
		return storedToken{}, false
	}
	return t, true
}

// parseDomains reads a domains value, as parseToken does a token.
func (m *Manager) parseDomains(ctx context.Context, acct, name, v string) (storedDomains, bool) {
	var d storedDomains
	if err := json.Unmarshal([]byte(v), &d); err != nil {
		m.o.Logger.WarnContext(ctx, "ignoring malformed domains parameter", "parameter", name, "err", err)
		return storedDomains{}, false
	}
	if d.Account != acct {
		m.o.Logger.InfoContext(ctx, "ignoring cached domains of another account", "parameter", name, "account", acct, "cachedAccount", d.Account)
		return storedDomains{}, false
	}
	return d, true
}

// maxElections bounds how often obtainToken goes back to the lease election after a
// holder vanished without publishing a token.
const maxElections = 3

// obtainToken gets a new token by logging in, coordinating with other processes
// through the lease so that a burst of cold starts logs in once: the lease winner
// logs in and publishes; the others poll the token parameter and, when the lease
// disappears without a token (the holder's login failed), stand for election again.
// When the holder's login was refused or throttled it leaves a marker in the lease
// instead, and the others hold back their own logins until it expires.
// All waiting together, store calls included, ends at one wall-clock deadline: LeaseTTL
// or half of the time left on ctx, whichever comes first. Past that, or after
// maxElections, a process logs in itself. fromStore says the token was read from the
// store (a peer's) rather than obtained by this process's login.
func (m *Manager) obtainToken(ctx context.Context, acct string, d lp.Domains) (tok storedToken, fromStore bool, err error) {
	if m.o.Store == nil {
		tok, err = m.login(ctx, d)
		return tok, false, err
	}
	e := m.newElection(ctx, acct, d)
	wctx, cancel := context.WithDeadline(ctx, e.deadline)
	defer cancel()
	for round := range maxElections {
		if round > 0 && !m.wallNow().Before(e.deadline) {
			break
		}
		if o, done := m.electionRound(ctx, wctx, e); done {
			return o.tok, o.fromStore, o.err
		}
	}
	m.o.Logger.WarnContext(ctx, "login lease changed hands without a token several times or for too long; logging in", "account", acct)
	o := m.loginAndPublish(ctx, e, "")
	return o.tok, o.fromStore, o.err
}

// election is one obtainToken's coordination through the lease.
type election struct {
	acct                 string
	d                    lp.Domains
	leaseName, tokenName string
	// deadline bounds real time spent waiting (slow store calls count); budget counts
	// the pauses, so the wait also ends when the clock does not move (tests).
	deadline time.Time
	budget   time.Duration
}

// newElection gives the waiting LeaseTTL or half of the time left on ctx, whichever is
// shorter.
func (m *Manager) newElection(ctx context.Context, acct string, d lp.Domains) *election {
	budget := m.o.LeaseTTL
	start := m.wallNow()
	if dl, ok := ctx.Deadline(); ok {
		if half := dl.Sub(start) / 2; half < budget {
			budget = half
		}
	}
	return &election{
		acct: acct, d: d,
		leaseName: m.param(leafLease), tokenName: m.param(leafToken),
		deadline: start.Add(budget), budget: budget,
	}
}

// obtained is how obtainToken ends: a token, a peer's from the store or this process's
// login, or the login's error.
type obtained struct {
	tok       storedToken
	fromStore bool
	err       error
}

// electionRound stands for the lease once. done is false when its holder vanished
// without publishing a token: the election is open again. ctx bounds the lease writes
// and the login, wctx (ctx within the election's deadline) the waiting reads.
func (m *Manager) electionRound(ctx, wctx context.Context, e *election) (o obtained, done bool) {
	now := m.o.Now()
	value := m.holder + " " + strconv.FormatInt(now.Add(m.o.LeaseTTL).UnixMilli(), 10)
	err := m.storePut(ctx, e.leaseName, value, false, false)
	switch {
	case err == nil:
		return m.leaseWon(ctx, wctx, e), true
	case !m.o.IsExists(err):
		m.warnStore(ctx, "put", e.leaseName, err)
		return m.loginAndPublish(ctx, e, ""), true
	}
	held, found, gerr := m.storeGet(wctx, e.leaseName)
	switch {
	case gerr != nil:
		m.warnStore(ctx, "get", e.leaseName, gerr)
		return m.loginAndPublish(ctx, e, ""), true
	case !found:
		// The holder finished between our Put and Get: its token should be there; if
		// not, its login failed and the election is open again.
		if t, ok := m.peerToken(wctx, e.acct, e.tokenName); ok {
			return obtained{tok: t, fromStore: true}, true
		}
		return obtained{}, false
	}
	return m.leaseHeld(ctx, wctx, e, held, now, value)
}

// leaseWon: this process holds the lease. An instance may have published its token and
// released its lease between our token read and the lease Put: one more read saves a
// login in a cold-start storm.
func (m *Manager) leaseWon(ctx, wctx context.Context, e *election) obtained {
	if t, ok := m.peerToken(wctx, e.acct, e.tokenName); ok {
		m.releaseLease(ctx, e.leaseName)
		return obtained{tok: t, fromStore: true}
	}
	return m.loginAndPublish(ctx, e, e.leaseName)
}

// leaseHeld deals with the lease another process holds (held is its value): while it
// is live, wait for the holder's token; while it marks a refusal, hold back; once it is
// stale, take it over (writing value) and log in.
func (m *Manager) leaseHeld(ctx, wctx context.Context, e *election, held string, now time.Time, value string) (o obtained, done bool) {
	l, ok := parseLease(held)
	if ok && now.Before(l.expiry) && l.refused == lp.KindUnknown {
		t, res, refused := m.waitForToken(wctx, e.acct, e.tokenName, e.leaseName, &e.budget, l.expiry.Sub(now))
		switch res {
		case waitGotToken:
			return obtained{tok: t, fromStore: true}, true
		case waitLeaseGone:
			return obtained{}, false
		case waitRefused:
			l, now = refused, m.o.Now()
		default:
			m.o.Logger.WarnContext(ctx, "login lease holder published no token in time; logging in", "account", e.acct)
			return m.loginAndPublish(ctx, e, ""), true
		}
	}
	if ok && now.Before(l.expiry) && l.refused != lp.KindUnknown && !m.secretJustRead() {
		// A peer's login with these credentials was just refused. Unless this process
		// has just found new ones in the secret, logging in would only be refused too.
		return obtained{err: m.holdBack(ctx, e.acct, l, now)}, true
	}
	// Stale (its holder died or froze, or a refusal's backoff is over), or our
	// credentials are new: take it over. Two processes doing this at once both log
	// in, which is the pre-lease behaviour, not an error.
	if err := m.storePut(ctx, e.leaseName, value, false, true); err != nil {
		m.warnStore(ctx, "put", e.leaseName, err)
		return m.loginAndPublish(ctx, e, ""), true
	}
	return m.loginAndPublish(ctx, e, e.leaseName), true
}

// peerToken reads a usable token another process published.
func (m *Manager) peerToken(ctx context.Context, acct, name string) (storedToken, bool) {
	t, found, err := m.storeGetToken(ctx, acct, name)
	return t, err == nil && found && m.usable(t, m.o.Now())
}

// secretJustRead says whether the login gate has just found new credentials in the
// secret.
func (m *Manager) secretJustRead() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.secretFresh
}

// loginAndPublish is publishLogin for the election; leaseName is the lease to release,
// "" when this process does not hold it.
func (m *Manager) loginAndPublish(ctx context.Context, e *election, leaseName string) obtained {
	tok, err := m.publishLogin(ctx, e.acct, e.d, e.tokenName, leaseName)
	return obtained{tok: tok, err: err}
}

// holdBack adopts a peer's refusal marker: no login from this process either until the
// marker expires, and the refusal's kind answered at once.
func (m *Manager) holdBack(ctx context.Context, acct string, l lease, now time.Time) error {
	e := &lp.Error{Kind: l.refused, Op: "login", Message: "another instance's login was just refused; not retrying before its backoff ends"}
	b := &loginBlock{until: l.expiry, err: e, recheck: l.refused != lp.KindThrottled}
	if l.refused == lp.KindThrottled {
		e.Status = 429
		e.RetryAfter = l.expiry.Sub(now)
	}
	m.mu.Lock()
	m.block = b
	m.mu.Unlock()
	m.o.Logger.WarnContext(ctx, "a peer's login was refused; no login before its backoff ends", "account", acct, "until", l.expiry, "kind", l.refused.String())
	return e
}

// publishLogin logs in, stores the token (SecureString) and releases the lease if
// this process holds it. The token is written before the lease is deleted so that
// pollers never see "no lease, no token" after a successful login. The delete does not
// check the holder: if our lease was taken over as stale, deleting the newer one costs
// at most a login.
func (m *Manager) publishLogin(ctx context.Context, acct string, d lp.Domains, tokenName, leaseName string) (storedToken, error) {
	tok, err := m.login(ctx, d)
	if err == nil {
		tok.Account = acct
		b, _ := json.Marshal(tok)
		if perr := m.storePut(ctx, tokenName, string(b), true, true); perr != nil {
			m.warnStore(ctx, "put", tokenName, perr)
		}
	}
	if leaseName == "" {
		return tok, err
	}
	if !m.markRefused(ctx, leaseName, err) {
		// Released even when the login failed, so others need not wait out the TTL.
		m.releaseLease(ctx, leaseName)
	}
	return tok, err
}

// markRefused turns our lease into a refusal marker when LivePerson refused or
// throttled the login, so that the other processes hold back too instead of electing
// a new holder that logs in with the same credentials. It expires with our own backoff
// (at most AuthFailureBackoff). It reports whether the marker was written.
func (m *Manager) markRefused(ctx context.Context, leaseName string, err error) bool {
	k := lp.KindOf(err)
	if err == nil || (k != lp.KindAuth && k != lp.KindBlocked && k != lp.KindThrottled) {
		return false
	}
	m.mu.Lock()
	b := m.block
	m.mu.Unlock()
	now := m.o.Now()
	if b == nil || !now.Before(b.until) {
		return false
	}
	until := b.until
	if limit := now.Add(m.o.AuthFailureBackoff); limit.Before(until) {
		until = limit
	}
	value := m.holder + " " + strconv.FormatInt(until.UnixMilli(), 10) + " refused " + k.String()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.o.LeaseTTL)
	defer cancel()
	if perr := m.storePut(dctx, leaseName, value, false, true); perr != nil {
		m.warnStore(ctx, "put", leaseName, perr)
		return false
	}
	return true
}

// releaseLease deletes our lease even when ctx is done (others would otherwise wait
// out its TTL), but no longer than a lease lives: a stalled call must not keep the
// refresh, and with it every caller, waiting.
func (m *Manager) releaseLease(ctx context.Context, leaseName string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.o.LeaseTTL)
	defer cancel()
	if err := m.storeDelete(dctx, leaseName); err != nil {
		m.warnStore(ctx, "delete", leaseName, err)
	}
}

type waitResult int

const (
	waitTimedOut waitResult = iota
	waitGotToken
	waitLeaseGone
	waitRefused // the holder's login was refused: the lease is returned
)

// waitForToken polls the token parameter with growing pauses until a usable token
// appears, the lease disappears without one (or turns into a refusal marker), or the
// wait runs out: at ctx's deadline, or once the pauses add up to leaseLeft or what is
// left of *budget, which they consume (so the loop ends even with a frozen clock).
func (m *Manager) waitForToken(ctx context.Context, acct, tokenName, leaseName string, budget *time.Duration, leaseLeft time.Duration) (storedToken, waitResult, lease) {
	limit := min(*budget, leaseLeft)
	var waited time.Duration
	defer func() { *budget -= waited }()
	deadline := m.wallNow().Add(leaseLeft)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	// Doubling from a short first pause keeps each pause at about half the time waited
	// so far, so a waiter sees the token within about one login round trip of it being
	// published. Past the first polls a waiter makes about 7 GetParameter calls a second
	// (the token at every poll, the lease at every other), so a few dozen waiters reach
	// SSM's default throughput (40 per second per account and Region, shared with every
	// other caller); throttled reads only prolong the wait (see below).
	const first, maxPause = 25 * time.Millisecond, 200 * time.Millisecond
	pause := first
	for poll := 0; ; poll++ {
		pause = max(min(pause, limit-waited, deadline.Sub(m.wallNow())), 0)
		if pause > 0 {
			select {
			case <-m.after(pause):
			case <-ctx.Done():
				return storedToken{}, waitTimedOut, lease{}
			}
		}
		waited += pause
		if !m.wallNow().Before(deadline) {
			return storedToken{}, waitTimedOut, lease{}
		}
		t, found, err := m.storeGetToken(ctx, acct, tokenName)
		switch {
		case ctx.Err() != nil:
			return storedToken{}, waitTimedOut, lease{}
		case err != nil:
			// Throttling is likely in a storm (the SDK has already retried): keep
			// waiting rather than add a login to the storm.
			m.warnStore(ctx, "get", tokenName, err)
		case found && m.usable(t, m.o.Now()):
			return t, waitGotToken, lease{}
		case poll%2 == 0:
			// No usable token yet: if the lease is gone too, its holder gave up (a
			// failed login releases the lease without publishing a token); if it is a
			// refusal marker, the holder's login was refused.
			v, held, lerr := m.storeGet(ctx, leaseName)
			if lerr == nil {
				l, ok := parseLease(v)
				switch {
				case !held:
					return storedToken{}, waitLeaseGone, lease{}
				case ok && l.refused != lp.KindUnknown && m.o.Now().Before(l.expiry):
					return storedToken{}, waitRefused, l
				case ok && l.refused != lp.KindUnknown:
					return storedToken{}, waitLeaseGone, lease{} // a stale marker: re-elect
				}
			}
		}
		if waited >= limit || !m.wallNow().Before(deadline) {
			return storedToken{}, waitTimedOut, lease{}
		}
		pause = min(pause*2, maxPause)
	}
}

// lease is a parsed lease value: "<holder> <expiry unix ms>", or a refusal marker
// "<holder> <expiry unix ms> refused <kind>" left by a holder whose login LivePerson
// refused or throttled (refused is then KindAuth, KindBlocked or KindThrottled).
type lease struct {
	expiry  time.Time
	refused lp.Kind
}

func parseLease(v string) (lease, bool) {
	f := strings.Fields(v)
	if len(f) != 2 && len(f) != 4 {
		return lease{}, false
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return lease{}, false
	}
	l := lease{expiry: time.UnixMilli(n)}
	if len(f) == 4 {
		if f[2] != "refused" {
			return lease{}, false
		}
		switch f[3] {
		case lp.KindAuth.String():
			l.refused = lp.KindAuth
		case lp.KindBlocked.String():
			l.refused = lp.KindBlocked
		case lp.KindThrottled.String():
			l.refused = lp.KindThrottled
		default:
			return lease{}, false
		}
	}
	return l, true
}

func newHolderID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("pid-%d", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}
