// Package session owns the LivePerson Bearer and the account's CSDS domains for one
// Lambda environment: a warm in-memory copy, a shared copy in SSM Parameter Store so
// that a cold environment can reuse the token another one obtained, and the logins
// and discoveries behind them (deduplicated in-process with singleflight and across
// processes with a short lease parameter).
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/lpmtls/lpmtls/shared/lp"
)

// LivePerson is the part of *lp.Client the session needs.
type LivePerson interface {
	Discover(ctx context.Context, accountID string) (lp.Domains, error)
	Login(ctx context.Context, d lp.Domains, cred lp.Credentials) (lp.Token, error)
}

// CredentialSource yields the brand's credentials (secrets.Source, secrets.Static).
type CredentialSource interface {
	Credentials(ctx context.Context) (lp.Credentials, error)
}

// ParameterStore is the shared tier (paramstore.Store). Put with overwrite=false on an
// existing name must return an error recognised by Options.IsExists.
type ParameterStore interface {
	Get(ctx context.Context, name string) (value string, found bool, err error)
	Put(ctx context.Context, name, value string, secure, overwrite bool) error
	Delete(ctx context.Context, name string) error
}

// ErrParameterExists is what the default Options.IsExists recognises. The real store
// has its own sentinel; the wiring passes an IsExists for it so this package does not
// import the AWS-facing one.
var ErrParameterExists = errors.New("session: parameter already exists")

// Options configure a Manager. LP and Credentials are required.
type Options struct {
	LP          LivePerson
	Credentials CredentialSource
	// Store is the shared tier; nil keeps everything in memory.
	Store ParameterStore
	// Prefix roots the parameters: {Prefix}/{accountId}/token (SecureString, JSON
	// lp.Token), {Prefix}/{accountId}/domains (String, JSON {domains, fetchedAt}),
	// {Prefix}/{accountId}/lease (String "<holder> <expiry unix ms>").
	Prefix string
	// RefreshMargin: a token expiring within this margin is replaced. Default 5m.
	RefreshMargin time.Duration
	// DomainsTTL: how long discovered domains are trusted. Default 10m.
	DomainsTTL time.Duration
	// LeaseTTL bounds how long a process holds the login lease and how long others
	// wait for its token. Default 5s.
	LeaseTTL time.Duration
	// IsExists recognises the store's "already exists" error.
	// Default: errors.Is(err, ErrParameterExists).
	IsExists func(error) bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// OnToken is called whenever a bearer enters memory (e.g. to register it with the
	// log redactor). It must be cheap and must not call back into the Manager.
	OnToken func(bearer string)
}

// Session is what a caller needs for one LivePerson call. Domains is shared with the
// Manager: read it, never modify it.
type Session struct {
	AccountID string
	Bearer    string
	Domains   lp.Domains
}

// Stats are cumulative counters, for tests and benchmarks.
type Stats struct {
	Logins       int64
	SecretReads  int64
	StoreGets    int64
	StorePuts    int64
	StoreDeletes int64
	CSDSCalls    int64
	MemoryHits   int64
}

// snapshot is the warm tier. It is immutable once published so that the hot path is
// one atomic load and two time comparisons.
type snapshot struct {
	sess      Session
	hasToken  bool
	expiresAt time.Time // the token's real expiry
	refreshAt time.Time // after this the token is replaced
	// domainsUntil is when the domains must be looked up again (zero: none held).
	domainsUntil time.Time
}

// Manager hands out sessions. It is safe for concurrent use; create one per process.
type Manager struct {
	o      Options
	snap   atomic.Pointer[snapshot]
	sf     singleflight.Group
	holder string // identifies this process in the lease value

	mu       sync.Mutex // guards cred, credOK, rejected and snapshot replacement
	cred     lp.Credentials
	credOK   bool
	rejected string // last bearer the gateway refused; never taken back from the store

	// after is the timer used while waiting for another process's token; tests
	// replace it to drive the wait without sleeping.
	after func(time.Duration) <-chan time.Time

	logins, secretReads, storeGets, storePuts, storeDeletes, csdsCalls, memoryHits atomic.Int64
}

// New returns a Manager. It does no I/O: the first Get does.
func New(o Options) *Manager {
	if o.RefreshMargin <= 0 {
		o.RefreshMargin = 5 * time.Minute
	}
	if o.DomainsTTL <= 0 {
		o.DomainsTTL = 10 * time.Minute
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 5 * time.Second
	}
	if o.IsExists == nil {
		o.IsExists = func(err error) bool { return errors.Is(err, ErrParameterExists) }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Prefix = strings.TrimRight(o.Prefix, "/")
	return &Manager{o: o, holder: newHolderID(), after: time.After}
}

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	return Stats{
		Logins:       m.logins.Load(),
		SecretReads:  m.secretReads.Load(),
		StoreGets:    m.storeGets.Load(),
		StorePuts:    m.storePuts.Load(),
		StoreDeletes: m.storeDeletes.Load(),
		CSDSCalls:    m.csdsCalls.Load(),
		MemoryHits:   m.memoryHits.Load(),
	}
}

// Get returns a session with a usable bearer and fresh (or, when CSDS is down, the
// last known) domains.
func (m *Manager) Get(ctx context.Context) (Session, error) {
	if s, ok := m.warm(m.o.Now()); ok {
		m.memoryHits.Add(1)
		return s.sess, nil
	}
	ch := m.sf.DoChan("session", func() (any, error) {
		// The shared work must not die when the first caller gives up while others still
		// wait, but it keeps that caller's deadline so it cannot outlive the invocation.
		sctx := context.WithoutCancel(ctx)
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			sctx, cancel = context.WithDeadline(sctx, dl)
			defer cancel()
		}
		return m.refresh(sctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Session{}, r.Err
		}
		return r.Val.(Session), nil
	case <-ctx.Done():
		return Session{}, &lp.Error{Kind: lp.KindTimeout, Op: "session", Err: ctx.Err()}
	}
}

func (m *Manager) warm(now time.Time) (*snapshot, bool) {
	s := m.snap.Load()
	if s != nil && s.hasToken && now.Before(s.refreshAt) && now.Before(s.domainsUntil) {
		return s, true
	}
	return s, false
}

// Do runs fn with a session. When fn fails with a gateway 401 the bearer is
// invalidated in both tiers and fn runs exactly once more with a new one; fn must be
// replayable. Any other error, and a second 401, is returned as is.
func (m *Manager) Do(ctx context.Context, fn func(ctx context.Context, s Session) error) error {
	s, err := m.Get(ctx)
	if err != nil {
		return err
	}
	err = fn(ctx, s)
	if !isUnauthorized(err) {
		return err
	}
	m.o.Logger.WarnContext(ctx, "liveperson rejected the bearer; logging in again", "account", s.AccountID)
	m.Invalidate(ctx, s.Bearer)
	s, err = m.Get(ctx)
	if err != nil {
		return err
	}
	return fn(ctx, s)
}

func isUnauthorized(err error) bool {
	var e *lp.Error
	return errors.As(err, &e) && e.Kind == lp.KindAuth && e.Status == 401
}

// Invalidate forgets bearer because the gateway rejected it. Memory is cleared only
// if it still holds that bearer (a concurrent caller may already have a newer one),
// and the store copy is deleted only if it still holds it too (Get then Delete: a
// racing writer between the two is possible but costs at most one extra login).
func (m *Manager) Invalidate(ctx context.Context, bearer string) {
	if bearer == "" {
		return
	}
	m.mu.Lock()
	m.rejected = bearer
	if s := m.snap.Load(); s != nil && s.hasToken && s.sess.Bearer == bearer {
		n := *s
		n.sess.Bearer, n.hasToken, n.expiresAt, n.refreshAt = "", false, time.Time{}, time.Time{}
		m.snap.Store(&n)
	}
	acct, ok := m.cred.AccountID, m.credOK
	m.mu.Unlock()

	if m.o.Store == nil || !ok {
		return
	}
	name := m.param(acct, "token")
	tok, found, err := m.storeGetToken(ctx, name)
	if err != nil || !found || tok.Bearer != bearer {
		return
	}
	if err := m.storeDelete(ctx, name); err != nil {
		m.warnStore(ctx, "delete", name, err)
	}
}

// refresh is the cold path, run by one goroutine at a time.
func (m *Manager) refresh(ctx context.Context) (Session, error) {
	cred, err := m.credentials(ctx)
	if err != nil {
		return Session{}, err
	}
	acct := cred.AccountID
	now := m.o.Now()
	cur, ok := m.warm(now)
	if ok {
		return cur.sess, nil // another flight finished while this one was queued
	}
	needDomains := cur == nil || !now.Before(cur.domainsUntil)
	needToken := cur == nil || !cur.hasToken || !now.Before(cur.refreshAt)

	// One round trip for both shared copies: a cold environment that finds a token
	// in the store pays the store latency once.
	var (
		storedTok     lp.Token
		tokFound      bool
		storedDom     storedDomains
		domFound      bool
		tokErr, domEr error
	)
	if m.o.Store != nil {
		var g errgroup.Group
		if needToken {
			g.Go(func() error {
				storedTok, tokFound, tokErr = m.storeGetToken(ctx, m.param(acct, "token"))
				return nil
			})
		}
		if needDomains {
			g.Go(func() error {
				storedDom, domFound, domEr = m.storeGetDomains(ctx, m.param(acct, "domains"))
				return nil
			})
		}
		_ = g.Wait()
		if tokErr != nil {
			m.warnStore(ctx, "get", m.param(acct, "token"), tokErr)
		}
		if domEr != nil {
			m.warnStore(ctx, "get", m.param(acct, "domains"), domEr)
		}
	}

	domains := lp.Domains(nil)
	if cur != nil {
		domains = cur.sess.Domains
	}
	if needDomains {
		var stale lp.Domains
		if cur != nil && cur.sess.Domains != nil {
			stale = cur.sess.Domains
		}
		if domFound && len(storedDom.Domains) > 0 {
			if now.Before(storedDom.FetchedAt.Add(m.o.DomainsTTL)) {
				m.setDomains(acct, storedDom.Domains, storedDom.FetchedAt.Add(m.o.DomainsTTL))
				domains, needDomains = storedDom.Domains, false
			} else if stale == nil {
				stale = storedDom.Domains
			}
		}
		if needDomains {
			domains, err = m.discover(ctx, acct, stale, now)
			if err != nil {
				return Session{}, err
			}
		}
	}

	if needToken {
		if tokFound && m.usable(storedTok, now) {
			m.setToken(acct, storedTok, now)
		} else {
			tok, err := m.obtainToken(ctx, acct, domains)
			if err != nil {
				return Session{}, err
			}
			m.setToken(acct, tok, m.o.Now())
		}
	}
	s := m.snap.Load()
	if s == nil || !s.hasToken {
		// Invalidate raced with this flight and dropped what it just set.
		return Session{}, &lp.Error{Kind: lp.KindAuth, Op: "session", Message: "bearer invalidated while it was being obtained"}
	}
	return s.sess, nil
}

// usable says whether a token read from the store may be used: outside the refresh
// margin and not the bearer the gateway just refused.
func (m *Manager) usable(t lp.Token, now time.Time) bool {
	if t.Bearer == "" || !now.Before(t.ExpiresAt.Add(-m.o.RefreshMargin)) {
		return false
	}
	m.mu.Lock()
	rejected := m.rejected
	m.mu.Unlock()
	return t.Bearer != rejected
}

// credentials returns the credentials read once per process.
func (m *Manager) credentials(ctx context.Context) (lp.Credentials, error) {
	m.mu.Lock()
	c, ok := m.cred, m.credOK
	m.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := m.readSecret(ctx)
	if err != nil {
		return lp.Credentials{}, err
	}
	if c.AccountID == "" {
		return lp.Credentials{}, errors.New("session: credentials carry no account id")
	}
	m.mu.Lock()
	m.cred, m.credOK = c, true
	m.mu.Unlock()
	return c, nil
}

func (m *Manager) readSecret(ctx context.Context) (lp.Credentials, error) {
	m.secretReads.Add(1)
	c, err := m.o.Credentials.Credentials(ctx)
	if err != nil {
		return lp.Credentials{}, fmt.Errorf("session: read credentials: %w", err)
	}
	return c, nil
}

// discover asks CSDS and publishes the answer; when CSDS fails it falls back to stale
// domains (which rarely move) and tries CSDS again after a tenth of DomainsTTL.
func (m *Manager) discover(ctx context.Context, acct string, stale lp.Domains, now time.Time) (lp.Domains, error) {
	m.csdsCalls.Add(1)
	d, err := m.o.LP.Discover(ctx, acct)
	if err == nil && len(d) == 0 {
		err = &lp.Error{Kind: lp.KindDiscovery, Op: "csds", Message: "CSDS returned no domains"}
	}
	if err != nil {
		if stale != nil {
			m.o.Logger.WarnContext(ctx, "CSDS failed; using cached domains", "account", acct, "err", err)
			m.setDomains(acct, stale, now.Add(m.o.DomainsTTL/10))
			return stale, nil
		}
		if k := lp.KindOf(err); k != lp.KindDiscovery && k != lp.KindTimeout {
			err = &lp.Error{Kind: lp.KindDiscovery, Op: "csds", Message: "CSDS lookup failed and no domains are cached", Err: err}
		}
		return nil, err
	}
	m.setDomains(acct, d, now.Add(m.o.DomainsTTL))
	if m.o.Store != nil {
		name := m.param(acct, "domains")
		if err := m.storePut(ctx, name, encodeDomains(d, now), false, true); err != nil {
			m.warnStore(ctx, "put", name, err)
		}
	}
	return d, nil
}

// login logs in, re-reading the secret once when LivePerson refuses the credentials
// so that a rotated password is picked up without a restart.
func (m *Manager) login(ctx context.Context, d lp.Domains) (lp.Token, error) {
	m.mu.Lock()
	cred := m.cred
	m.mu.Unlock()
	m.logins.Add(1)
	tok, err := m.o.LP.Login(ctx, d, cred)
	if lp.KindOf(err) != lp.KindAuth {
		return tok, err
	}
	fresh, rerr := m.readSecret(ctx)
	switch {
	case rerr != nil:
		m.o.Logger.WarnContext(ctx, "login refused and the secret could not be re-read", "account", cred.AccountID, "err", rerr)
		return lp.Token{}, err
	case fresh == cred:
		return lp.Token{}, err
	case fresh.AccountID != cred.AccountID:
		m.o.Logger.WarnContext(ctx, "login refused and the secret now names another account; restart to switch", "account", cred.AccountID)
		return lp.Token{}, err
	}
	m.o.Logger.InfoContext(ctx, "credentials changed in the secret; logging in with them", "account", cred.AccountID)
	m.mu.Lock()
	m.cred = fresh
	m.mu.Unlock()
	m.logins.Add(1)
	return m.o.LP.Login(ctx, d, fresh)
}

func (m *Manager) setDomains(acct string, d lp.Domains, until time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := snapshot{}
	if s := m.snap.Load(); s != nil {
		n = *s
	}
	n.sess.AccountID, n.sess.Domains = acct, d
	n.domainsUntil = until
	m.snap.Store(&n)
}

func (m *Manager) setToken(acct string, t lp.Token, now time.Time) {
	// A token that lives shorter than twice the margin would be "expiring" at once;
	// refresh such a token halfway through its life instead.
	margin := m.o.RefreshMargin
	if life := t.ExpiresAt.Sub(now); life < 2*margin {
		margin = life / 2
	}
	m.mu.Lock()
	n := snapshot{}
	if s := m.snap.Load(); s != nil {
		n = *s
	}
	n.sess.AccountID, n.sess.Bearer = acct, t.Bearer
	n.hasToken, n.expiresAt, n.refreshAt = true, t.ExpiresAt, t.ExpiresAt.Add(-margin)
	m.snap.Store(&n)
	m.mu.Unlock()
	if m.o.OnToken != nil {
		m.o.OnToken(t.Bearer)
	}
}

func (m *Manager) param(acct, leaf string) string {
	return m.o.Prefix + "/" + acct + "/" + leaf
}

// warnStore reports a store failure; the request carries on with memory and LP.
// Store errors name parameters, never values.
func (m *Manager) warnStore(ctx context.Context, op, name string, err error) {
	m.o.Logger.WarnContext(ctx, "parameter store unavailable; continuing without it", "op", op, "parameter", name, "err", err)
}
