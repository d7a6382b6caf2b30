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

	"golang.org/x/sync/singleflight"

	"github.com/lpmtls/lpmtls/shared/lp"
)

// LivePerson is the part of *lp.Client the session needs. Discover fails when the
// answer lacks a service lpmtls calls with credentials of method.
type LivePerson interface {
	Discover(ctx context.Context, accountID string, method lp.AuthMethod) (lp.Domains, error)
	Login(ctx context.Context, d lp.Domains, cred lp.Credentials) (lp.Token, error)
}

// CredentialSource yields the brand's credentials (secrets.Source, secrets.Static).
type CredentialSource interface {
	Credentials(ctx context.Context) (lp.Credentials, error)
}

// ParameterStore is the shared tier (paramstore.Store). Put with overwrite=false on an
// existing name must return an error recognised by Options.IsExists. GetMany reads up
// to ten names in one call (SSM's GetParameters): the values of the names found.
type ParameterStore interface {
	Get(ctx context.Context, name string) (value string, found bool, err error)
	GetMany(ctx context.Context, names []string) (map[string]string, error)
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
	// Prefix roots the parameters: {Prefix}/token (SecureString, JSON {bearer,
	// expiresAt, issuedAt, account}), {Prefix}/domains (String, JSON {domains,
	// fetchedAt, account}), {Prefix}/lease (String "<holder> <expiry unix ms>", or with
	// " refused <kind>" appended while a refused or throttled login holds every process
	// back). The names leave the account out so that a cold start can read them while
	// it reads the secret that names the account; a copy whose account is not the
	// secret's is a miss. One prefix serves one deployment.
	Prefix string
	// RefreshMargin: a token expiring within this margin is replaced. Default 5m.
	RefreshMargin time.Duration
	// DomainsTTL: how long discovered domains are trusted. Default 10m.
	DomainsTTL time.Duration
	// DiscoveryBackoff: after CSDS answered with an error or without a service lpmtls
	// needs, and no domains are at hand to fall back on, CSDS is not asked again for
	// this long (or its Retry-After, up to a tenth of DomainsTTL); its error is answered
	// meanwhile. Nothing from such an answer is cached. Default: a tenth of
	// DomainsTTL, at most 5s.
	DiscoveryBackoff time.Duration
	// LeaseTTL bounds how long a process holds the login lease and how long others
	// wait for its token. Default 5s.
	LeaseTTL time.Duration
	// ReloginInterval limits Do's re-login after a 401. The 401 is the gateway's (lp
	// confirms a forward's 401 with a mapping check first), but a gateway that refuses
	// a bearer minted moments ago will most likely refuse the next one too, and each
	// attempt is a login. So a 401 on a bearer that such a re-login produced less than
	// this ago is returned as is, unless the gateway accepted that bearer since (it was
	// then revoked) and no other re-login happened in the interval: at most two
	// re-logins per interval. Default 30s.
	ReloginInterval time.Duration
	// AuthFailureBackoff is how long no login is tried after LivePerson refused the
	// credentials (or blocked the user) and the secret held nothing new; the secret is
	// re-read at most once in that time, in its second half. A throttled login waits
	// max(Retry-After, 5s). The lease holder's refusal holds back every process sharing
	// the store (at most this long).
	// Default 30s.
	AuthFailureBackoff time.Duration
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
	// OnLogin is called before every login request to LivePerson, with the context of
	// the call that needed it (e.g. to count logins per invocation). It must be cheap
	// and must not call back into the Manager.
	OnLogin func(ctx context.Context)
}

// Session is what a caller needs for one LivePerson call: Auth is handed to lp.Client
// as it is. Its Domains is shared with the Manager: read it, never modify it.
type Session struct {
	lp.Auth
	// Source is where Get found the bearer for this call.
	Source TokenSource
}

// TokenSource says where a bearer came from.
type TokenSource string

// Token sources, as the forward metrics name them.
const (
	// SourceMemory: the process's warm copy.
	SourceMemory TokenSource = "memory"
	// SourceStore: the shared copy in SSM Parameter Store (another process's login).
	SourceStore TokenSource = "ssm"
	// SourceLogin: a login this call made or waited for.
	SourceLogin TokenSource = "login"
)

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

	mu       sync.Mutex // guards cred, credOK, rejected, block, secretFresh and snapshot replacement
	cred     lp.Credentials
	credOK   bool
	rejected string // last bearer the gateway refused; never taken back from the store
	// block, when set, is a refused or throttled login: until block.until no login is
	// tried and its error is answered instead.
	block *loginBlock
	// secretFresh: the login gate has just re-read the secret, so login need not.
	secretFresh bool
	// discBlock, when set, is a failed CSDS lookup: until discBlock.until CSDS is not
	// asked and its error is answered instead.
	discBlock *discoveryBlock

	// forced is the last bearer Do obtained by a re-login after a 401.
	forced atomic.Pointer[forcedLogin]

	// after is the timer used while waiting for another process's token; tests
	// replace it to drive the wait without sleeping.
	after func(time.Duration) <-chan time.Time
	// wallNow is the real clock that bounds that wait (Options.Now may be frozen in
	// tests, and context deadlines are on the real clock); tests replace it too.
	wallNow func() time.Time

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
	if o.DiscoveryBackoff <= 0 {
		o.DiscoveryBackoff = min(o.DomainsTTL/10, maxDiscoveryBackoff)
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 5 * time.Second
	}
	if o.ReloginInterval <= 0 {
		o.ReloginInterval = 30 * time.Second
	}
	if o.AuthFailureBackoff <= 0 {
		o.AuthFailureBackoff = 30 * time.Second
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
	return &Manager{o: o, holder: newHolderID(), after: time.After, wallNow: time.Now}
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
		sess := s.sess
		sess.Source = SourceMemory
		return sess, nil
	}
	ch := m.sf.DoChan("session", func() (any, error) {
		// The shared work must not die when the first caller gives up while others still
		// wait, but it keeps that caller's deadline so it cannot outlive the invocation,
		// and without one it is still bounded: a stalled call must not hold the key.
		dl, ok := ctx.Deadline()
		if !ok {
			dl = time.Now().Add(maxFlight) // deadlines are on the real clock, not Options.Now
		}
		sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), dl)
		defer cancel()
		return m.refresh(withSlowStoreFlag(sctx))
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

// maxFlight bounds a shared refresh whose first caller set no deadline (a Lambda
// invocation always has one).
const maxFlight = time.Minute

// Do runs fn with a session. When fn fails with a gateway 401 the bearer is
// invalidated in both tiers and fn runs exactly once more with a new one; fn must be
// replayable. Any other error, and a second 401, is returned as is. So is a 401 on a
// bearer that such a re-login produced moments ago (see Options.ReloginInterval):
// logging in again would most likely be refused the same way.
func (m *Manager) Do(ctx context.Context, fn func(ctx context.Context, s Session) error) error {
	s, err := m.Get(ctx)
	if err != nil {
		return err
	}
	err = fn(ctx, s)
	if !isUnauthorized(err) {
		m.noteAccepted(s.Bearer, err)
		return err
	}
	if !m.mayRelogin(s.Bearer) {
		m.o.Logger.DebugContext(ctx, "401 on a bearer obtained by a re-login moments ago; not logging in again", "account", s.AccountID)
		return err
	}
	m.o.Logger.WarnContext(ctx, "liveperson rejected the bearer; logging in again", "account", s.AccountID)
	m.Invalidate(ctx, s.Bearer)
	s, err = m.Get(ctx)
	if err != nil {
		return err
	}
	m.noteForced(s.Bearer)
	err = fn(ctx, s)
	m.noteAccepted(s.Bearer, err)
	return err
}

// forcedLogin is a bearer Do obtained after a 401.
type forcedLogin struct {
	bearer string
	at     time.Time
	prevAt time.Time // when the re-login before this one happened (zero: none)
	// accepted: a call with this bearer went through the gateway since, so a later
	// 401 on it may be a real revocation.
	accepted atomic.Bool
}

// mayRelogin says whether a 401 on bearer may invalidate it and log in again.
func (m *Manager) mayRelogin(bearer string) bool {
	f := m.forced.Load()
	if f == nil || f.bearer != bearer {
		return true
	}
	now := m.o.Now()
	if !now.Before(f.at.Add(m.o.ReloginInterval)) {
		return true
	}
	return f.accepted.Load() && !now.Before(f.prevAt.Add(m.o.ReloginInterval))
}

func (m *Manager) noteForced(bearer string) {
	now := m.o.Now()
	for {
		old := m.forced.Load()
		if old != nil && old.bearer == bearer {
			return // concurrent 401s sharing one re-login
		}
		n := &forcedLogin{bearer: bearer, at: now}
		if old != nil {
			n.prevAt = old.at
		}
		if m.forced.CompareAndSwap(old, n) {
			return
		}
	}
}

// noteAccepted records that the gateway took bearer: fn succeeded or failed past it.
func (m *Manager) noteAccepted(bearer string, err error) {
	if err != nil {
		if k := lp.KindOf(err); k != lp.KindTarget && k != lp.KindNoCertificate {
			return
		}
	}
	if f := m.forced.Load(); f != nil && f.bearer == bearer && !f.accepted.Load() {
		f.accepted.Store(true)
	}
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
	name := m.param(leafToken)
	tok, found, err := m.storeGetToken(ctx, acct, name)
	if err != nil || !found || tok.Bearer != bearer {
		return
	}
	if err := m.storeDelete(ctx, name); err != nil {
		m.warnStore(ctx, "delete", name, err)
	}
}

// refresh is the cold path, run by one goroutine at a time: it reads what is due from
// the shared tier, then brings the domains and the token up to date, each from there
// when it holds a usable copy, else from LivePerson.
// The secret and the shared copies are read at once: the copies' names do not depend on
// the account the secret names, which is checked in the values once both are in.
func (m *Manager) refresh(ctx context.Context) (Session, error) {
	now := m.o.Now()
	cur, ok := m.warm(now)
	if ok {
		sess := cur.sess // another flight finished while this one was queued
		sess.Source = SourceMemory
		return sess, nil
	}
	needDomains := cur == nil || !now.Before(cur.domainsUntil)
	needToken := cur == nil || !cur.hasToken || !now.Before(cur.refreshAt)
	var (
		cred    lp.Credentials
		credErr error
		read    = make(chan struct{})
	)
	go func() {
		defer close(read)
		cred, credErr = m.credentials(ctx)
	}()
	raw := m.readShared(ctx, needToken, needDomains)
	<-read
	if credErr != nil {
		return Session{}, credErr
	}
	acct := cred.AccountID
	shared := m.sharedFor(ctx, acct, raw)
	// Store writes that nothing in this refresh reads back run alongside the token
	// step; the refresh still ends after them, inside the invocation that paid for them.
	var pub sync.WaitGroup
	defer pub.Wait()

	var err error
	domains := lp.Domains(nil)
	if cur != nil {
		domains = cur.sess.Domains
	}
	if needDomains {
		if domains, err = m.domainsStep(ctx, cred, cur, shared, now, &pub); err != nil {
			return Session{}, err
		}
	}
	src := SourceMemory // only the domains were due
	if needToken {
		if src, err = m.tokenStep(ctx, acct, domains, shared.token, shared.tokenFound, now); err != nil {
			return Session{}, err
		}
	}
	s := m.snap.Load()
	if s == nil || !s.hasToken {
		if s, src, err = m.replaceInvalidated(ctx, acct, domains); err != nil {
			return Session{}, err
		}
	}
	sess := s.sess
	sess.Source = src
	return sess, nil
}

// sharedCopies is what the shared tier held for the account when refresh read it.
type sharedCopies struct {
	token        storedToken
	tokenFound   bool
	domains      storedDomains
	domainsFound bool
}

// readShared reads the due shared copies in one store call, so a cold environment that
// finds a token in the store pays the store latency once, alongside the secret's. It
// returns the raw values by name; a failed read is warned about and counts as none.
func (m *Manager) readShared(ctx context.Context, token, domains bool) map[string]string {
	if m.o.Store == nil || !token && !domains {
		return nil
	}
	names := make([]string, 0, 2)
	if token {
		names = append(names, m.param(leafToken))
	}
	if domains {
		names = append(names, m.param(leafDomains))
	}
	vals, err := m.storeGetMany(ctx, names)
	if err != nil {
		m.warnStore(ctx, "get", strings.Join(names, ","), err)
		return nil
	}
	return vals
}

// sharedFor parses what readShared found, keeping only acct's copies.
func (m *Manager) sharedFor(ctx context.Context, acct string, raw map[string]string) sharedCopies {
	var c sharedCopies
	if v, ok := raw[m.param(leafToken)]; ok {
		c.token, c.tokenFound = m.parseToken(ctx, acct, m.param(leafToken), v)
	}
	if v, ok := raw[m.param(leafDomains)]; ok {
		c.domains, c.domainsFound = m.parseDomains(ctx, acct, m.param(leafDomains), v)
	}
	return c
}

// domainsStep puts fresh domains in memory: the stored ones while they are fresh, else
// a CSDS lookup, which falls back to the last known ones (memory's, else the store's
// stale copy) when CSDS fails.
func (m *Manager) domainsStep(ctx context.Context, cred lp.Credentials, cur *snapshot, shared sharedCopies, now time.Time, pub *sync.WaitGroup) (lp.Domains, error) {
	acct := cred.AccountID
	var stale lp.Domains
	if cur != nil {
		stale = cur.sess.Domains
	}
	if stored := shared.domains; shared.domainsFound && len(stored.Domains) > 0 {
		until := stored.FetchedAt.Add(m.o.DomainsTTL)
		if now.Before(until) {
			m.setDomains(acct, stored.Domains, until)
			return stored.Domains, nil
		}
		if stale == nil {
			stale = stored.Domains
		}
	}
	return m.discover(ctx, cred, stale, now, pub)
}

// replaceInvalidated gets a token once more after Invalidate raced with this flight and
// dropped the token it held or had just set: a Do retrying after a 401 may have joined
// this flight for a new bearer (even one that was only refreshing domains).
func (m *Manager) replaceInvalidated(ctx context.Context, acct string, domains lp.Domains) (*snapshot, TokenSource, error) {
	var (
		t     storedToken
		found bool
	)
	if m.o.Store != nil {
		name := m.param(leafToken)
		var err error
		if t, found, err = m.storeGetToken(ctx, acct, name); err != nil {
			m.warnStore(ctx, "get", name, err)
		}
	}
	src, err := m.tokenStep(ctx, acct, domains, t, found, m.o.Now())
	if err != nil {
		return nil, "", err
	}
	s := m.snap.Load()
	if s == nil || !s.hasToken {
		return nil, "", &lp.Error{Kind: lp.KindAuth, Op: "session", Message: "bearer invalidated while it was being obtained"}
	}
	return s, src, nil
}

// tokenStep puts a token in memory: the stored one when usable, else a new login
// (unless logins are held back after a refusal). It says which it was.
func (m *Manager) tokenStep(ctx context.Context, acct string, d lp.Domains, stored storedToken, found bool, now time.Time) (TokenSource, error) {
	if found && m.usable(stored, now) {
		m.setToken(acct, stored, true)
		return SourceStore, nil
	}
	if err := m.loginGate(ctx); err != nil {
		return "", err
	}
	tok, fromStore, err := m.obtainToken(ctx, acct, d)
	m.mu.Lock()
	m.secretFresh = false // a peer's token may have spared the login it was for
	m.mu.Unlock()
	if err != nil {
		return "", err
	}
	m.setToken(acct, tok, fromStore)
	if fromStore {
		return SourceStore, nil
	}
	return SourceLogin, nil
}

// storedToken is lp.Token plus when it was issued, which tells how long it lives
// (values written before IssuedAt existed lack it), and the account it speaks for.
type storedToken struct {
	lp.Token
	IssuedAt time.Time `json:"issuedAt,omitzero"`
	Account  string    `json:"account,omitempty"`
}

// refreshAt is when t is replaced: RefreshMargin before expiry, or halfway through
// its life when that is shorter than twice the margin (it would otherwise be
// "expiring" at once). Every tier and every process decides with this one function,
// so a token one of them publishes is one the others accept. A token of unknown life
// is taken as long-lived.
func (m *Manager) refreshAt(t storedToken) time.Time {
	margin := m.o.RefreshMargin
	if !t.IssuedAt.IsZero() {
		if life := t.ExpiresAt.Sub(t.IssuedAt); life < 2*margin {
			return t.IssuedAt.Add(life / 2)
		}
	}
	return t.ExpiresAt.Add(-margin)
}

// usable says whether a token read from the store may be used: before its refresh
// time and not the bearer the gateway just refused.
func (m *Manager) usable(t storedToken, now time.Time) bool {
	if t.Bearer == "" || !now.Before(m.refreshAt(t)) {
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
// domains (which rarely move) and tries CSDS again after a tenth of DomainsTTL. With
// nothing to fall back on, a failure CSDS answered (an error status, or a list without
// a service lpmtls needs) is remembered for DiscoveryBackoff and answered meanwhile
// without asking CSDS, so a broken CSDS is not asked on every request; a network
// failure or timeout is not remembered (the request already waited for it). The
// answer is written to the store in pub, so the write overlaps the token step.
func (m *Manager) discover(ctx context.Context, cred lp.Credentials, stale lp.Domains, now time.Time, pub *sync.WaitGroup) (lp.Domains, error) {
	acct := cred.AccountID
	var d lp.Domains
	err := m.rememberedDiscovery(now)
	remembered := err != nil
	if !remembered {
		m.csdsCalls.Add(1)
		d, err = m.o.LP.Discover(ctx, acct, cred.Method())
		if err == nil && len(d) == 0 {
			err = &lp.Error{Kind: lp.KindDiscovery, Op: "csds", Message: "CSDS returned no domains"}
		}
	}
	if err != nil {
		if stale != nil {
			m.o.Logger.WarnContext(ctx, "CSDS failed; using cached domains", "account", acct, "err", err)
			m.setDomains(acct, stale, now.Add(m.o.DomainsTTL/10))
			return stale, nil
		}
		if remembered {
			return nil, err
		}
		answered := csdsAnswered(err)
		if k := lp.KindOf(err); k != lp.KindDiscovery && k != lp.KindTimeout {
			err = &lp.Error{Kind: lp.KindDiscovery, Op: "csds", Message: "CSDS lookup failed and no domains are cached", Err: err}
		}
		if answered {
			m.noteDiscovery(ctx, acct, err, now)
		}
		return nil, err
	}
	m.noteDiscovery(ctx, acct, nil, now)
	m.setDomains(acct, d, now.Add(m.o.DomainsTTL))
	if m.o.Store != nil {
		name, value := m.param(leafDomains), encodeDomains(acct, d, now)
		pub.Go(func() {
			if err := m.storePut(ctx, name, value, false, true); err != nil {
				m.warnStore(ctx, "put", name, err)
			}
		})
	}
	return d, nil
}

// maxDiscoveryBackoff caps the default DiscoveryBackoff: a cold instance answers 502
// for at most this long after CSDS is whole again.
const maxDiscoveryBackoff = 5 * time.Second

// discoveryBlock is a failed CSDS lookup remembered by discover.
type discoveryBlock struct {
	until time.Time
	err   error
}

// rememberedDiscovery returns the remembered CSDS failure while it holds, else nil.
func (m *Manager) rememberedDiscovery(now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.discBlock; b != nil && now.Before(b.until) {
		return b.err
	}
	return nil
}

// csdsAnswered says whether a lookup's error is CSDS's answer (an error status, or a
// body lp refused) rather than a network failure or a timeout on the way.
func csdsAnswered(err error) bool {
	var e *lp.Error
	return errors.As(err, &e) && (e.Status != 0 || e.Kind == lp.KindDiscovery)
}

// noteDiscovery remembers a failure CSDS answered (err non-nil), or forgets the last.
func (m *Manager) noteDiscovery(ctx context.Context, acct string, err error, now time.Time) {
	var b *discoveryBlock
	if err != nil {
		wait := m.o.DiscoveryBackoff
		var e *lp.Error
		if errors.As(err, &e) && e.RetryAfter > wait {
			wait = min(e.RetryAfter, max(m.o.DomainsTTL/10, wait))
		}
		b = &discoveryBlock{until: now.Add(wait), err: err}
	}
	m.mu.Lock()
	m.discBlock = b
	m.mu.Unlock()
	if b != nil {
		m.o.Logger.WarnContext(ctx, "CSDS lookup failed and no domains are cached; CSDS not asked again before the backoff ends", "account", acct, "until", b.until, "err", err)
	}
}

// loginBlock is a refused or throttled login remembered so that it is not repeated on
// every request (LivePerson may lock a user after repeated bad passwords, and a
// throttled login must wait).
type loginBlock struct {
	until time.Time
	err   error
	// recheck: a refusal, which a rotated secret may cure; the secret may be re-read
	// once in the window's second half (rechecked).
	recheck, rechecked bool
}

// loginGate returns the remembered error while logins are held back, or nil when one
// may be tried. In the second half of a refusal's window it re-reads the secret once
// (earlier, it was most likely just read by the refused login, and a rotation during
// the window would be missed), and lets the login through when the secret changed.
func (m *Manager) loginGate(ctx context.Context) error {
	m.mu.Lock()
	b := m.block
	now := m.o.Now()
	if b == nil || !now.Before(b.until) {
		m.mu.Unlock()
		return nil
	}
	check := b.recheck && !b.rechecked && !now.Before(b.until.Add(-m.o.AuthFailureBackoff/2))
	if check {
		b.rechecked = true
	}
	cred := m.cred
	m.mu.Unlock()

	if check {
		fresh, err := m.readSecret(ctx)
		if err == nil && fresh != cred && fresh.AccountID == cred.AccountID {
			m.o.Logger.InfoContext(ctx, "credentials changed in the secret; logging in with them", "account", cred.AccountID)
			m.mu.Lock()
			m.cred, m.block, m.secretFresh = fresh, nil, true
			m.mu.Unlock()
			return nil
		}
	}
	var e *lp.Error
	if errors.As(b.err, &e) && e.Kind == lp.KindThrottled {
		c := *e
		c.RetryAfter = b.until.Sub(now)
		return &c
	}
	return b.err
}

// noteLogin remembers the outcome of a login for loginGate. Network, timeout and
// gateway failures are not held against the next attempt.
func (m *Manager) noteLogin(ctx context.Context, err error) {
	var b *loginBlock
	var e *lp.Error
	errors.As(err, &e)
	switch lp.KindOf(err) {
	case lp.KindThrottled:
		wait := max(e.RetryAfter, minLoginThrottle)
		b = &loginBlock{until: m.o.Now().Add(wait), err: err}
	case lp.KindAuth, lp.KindBlocked:
		b = &loginBlock{until: m.o.Now().Add(m.o.AuthFailureBackoff), err: err, recheck: true}
	default:
		if err != nil {
			return
		}
	}
	m.mu.Lock()
	m.block = b
	m.mu.Unlock()
	if b != nil {
		m.o.Logger.WarnContext(ctx, "login failed; no new attempt before the backoff ends", "until", b.until, "err", err)
	}
}

// minLoginThrottle is LivePerson's advice after a throttled login.
const minLoginThrottle = 5 * time.Second

// login logs in, re-reading the secret once when LivePerson refuses the credentials
// so that a rotated password is picked up without a restart.
func (m *Manager) login(ctx context.Context, d lp.Domains) (storedToken, error) {
	tok, err := m.loginOnce(ctx, d)
	m.noteLogin(ctx, err)
	return tok, err
}

func (m *Manager) loginOnce(ctx context.Context, d lp.Domains) (storedToken, error) {
	m.mu.Lock()
	cred, justRead := m.cred, m.secretFresh
	m.secretFresh = false
	m.mu.Unlock()
	tok, err := m.loginWith(ctx, d, cred)
	if lp.KindOf(err) != lp.KindAuth || justRead {
		return tok, err
	}
	fresh, rerr := m.readSecret(ctx)
	switch {
	case rerr != nil:
		m.o.Logger.WarnContext(ctx, "login refused and the secret could not be re-read", "account", cred.AccountID, "err", rerr)
		return storedToken{}, err
	case fresh == cred:
		return storedToken{}, err
	case fresh.AccountID != cred.AccountID:
		m.o.Logger.WarnContext(ctx, "login refused and the secret now names another account; restart to switch", "account", cred.AccountID)
		return storedToken{}, err
	}
	m.o.Logger.InfoContext(ctx, "credentials changed in the secret; logging in with them", "account", cred.AccountID)
	m.mu.Lock()
	m.cred = fresh
	m.mu.Unlock()
	return m.loginWith(ctx, d, fresh)
}

func (m *Manager) loginWith(ctx context.Context, d lp.Domains, cred lp.Credentials) (storedToken, error) {
	m.logins.Add(1)
	if m.o.OnLogin != nil {
		m.o.OnLogin(ctx)
	}
	tok, err := m.o.LP.Login(ctx, d, cred)
	if err != nil {
		return storedToken{}, err
	}
	// The clock read after the answer matches how lp computes ExpiresAt.
	return storedToken{Token: tok, IssuedAt: m.o.Now()}, nil
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

// setToken publishes t in memory. A token read from the store (fromStore), directly or
// while waiting on a peer's login, is dropped if the gateway refused it after it was
// read (Invalidate raced with the read); refresh then obtains another.
func (m *Manager) setToken(acct string, t storedToken, fromStore bool) {
	m.mu.Lock()
	if fromStore && t.Bearer == m.rejected {
		m.mu.Unlock()
		return
	}
	n := snapshot{}
	if s := m.snap.Load(); s != nil {
		n = *s
	}
	n.sess.AccountID, n.sess.Bearer = acct, t.Bearer
	n.hasToken, n.expiresAt, n.refreshAt = true, t.ExpiresAt, m.refreshAt(t)
	m.snap.Store(&n)
	m.mu.Unlock()
	if m.o.OnToken != nil {
		m.o.OnToken(t.Bearer)
	}
}

// Leaves of the parameter names under Options.Prefix.
const (
	leafToken   = "token"
	leafDomains = "domains"
	leafLease   = "lease"
)

func (m *Manager) param(leaf string) string {
	return m.o.Prefix + "/" + leaf
}

// warnStore reports a store failure; the request carries on with memory and LP.
// Store errors name parameters, never values.
func (m *Manager) warnStore(ctx context.Context, op, name string, err error) {
	m.o.Logger.WarnContext(ctx, "parameter store unavailable; continuing without it", "op", op, "parameter", name, "err", err)
}
