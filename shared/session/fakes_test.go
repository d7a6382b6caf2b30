package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// clock is a frozen, manually advanced time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeLP issues bearers "bearer-N-s3cr3t" valid for an hour (ttl when set). Login
// fails with loginErr when set, else with a 401 when the password is not the current
// one; it blocks on release when that is set.
type fakeLP struct {
	clock *clock

	mu              sync.Mutex
	logins          int
	discovers       int
	password        string // accepted password
	ttl             time.Duration
	loginErr        error
	discoverErr     error
	domains         lp.Domains
	issued          []string
	loginStarted    chan struct{} // receives once per login, if set
	release         chan struct{} // login waits for it, if set
	discoverStarted chan struct{} // receives once per discovery, if set
	discoverRelease chan struct{} // discovery waits for it, if set
}

func (f *fakeLP) Discover(ctx context.Context, acct string, _ lp.AuthMethod) (lp.Domains, error) {
	f.mu.Lock()
	f.discovers++
	started, release := f.discoverStarted, f.discoverRelease
	f.mu.Unlock()
	if started != nil {
		started <- struct{}{}
	}
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.discoverErr != nil {
		return nil, f.discoverErr
	}
	return f.domains, nil
}

func (f *fakeLP) Login(ctx context.Context, d lp.Domains, cred lp.Credentials) (lp.Token, error) {
	f.mu.Lock()
	f.logins++
	started, release := f.loginStarted, f.release
	f.mu.Unlock()
	if d[lp.ServiceAgentVep] == "" {
		return lp.Token{}, errors.New("login without agentVep domain")
	}
	if started != nil {
		started <- struct{}{}
	}
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return lp.Token{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loginErr != nil {
		return lp.Token{}, f.loginErr
	}
	if cred.Password != f.password {
		return lp.Token{}, &lp.Error{Kind: lp.KindAuth, Op: "login", Status: 401, Message: "invalid credentials"}
	}
	b := fmt.Sprintf("bearer-%d-s3cr3t", len(f.issued)+1)
	f.issued = append(f.issued, b)
	ttl := time.Hour
	if f.ttl > 0 {
		ttl = f.ttl
	}
	return lp.Token{Bearer: b, ExpiresAt: f.clock.Now().Add(ttl)}, nil
}

func (f *fakeLP) counts() (logins, discovers int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins, f.discovers
}

// fakeSecrets returns creds[i] on the i-th read (the last one repeats).
type fakeSecrets struct {
	mu    sync.Mutex
	reads int
	creds []lp.Credentials
	// onRead, set before use, runs before each read, outside the lock.
	onRead func(ctx context.Context) error
}

func (s *fakeSecrets) Credentials(ctx context.Context) (lp.Credentials, error) {
	if s.onRead != nil {
		if err := s.onRead(ctx); err != nil {
			return lp.Credentials{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := min(s.reads, len(s.creds)-1)
	s.reads++
	return s.creds[i], nil
}

func (s *fakeSecrets) count() int { s.mu.Lock(); defer s.mu.Unlock(); return s.reads }

type param struct {
	value  string
	secure bool
}

// fakeStore is an in-memory ParameterStore with a failure switch. The hooks, set
// before the store is used, run outside its lock and may call back into it.
type fakeStore struct {
	mu      sync.Mutex
	params  map[string]param
	fail    error
	gets    int
	puts    int
	deleted []string

	// stall makes every call wait for its context to end, as a store that answers
	// too late does.
	stall bool

	beforePut func(name string, overwrite bool)
	afterPut  func(name string, overwrite bool, err error)
	onGet     func(ctx context.Context, name string)
	onDelete  func(ctx context.Context, name string)
}

func newFakeStore() *fakeStore { return &fakeStore{params: map[string]param{}} }

func (s *fakeStore) stalled(ctx context.Context) error {
	s.mu.Lock()
	stall := s.stall
	s.mu.Unlock()
	if !stall {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *fakeStore) Get(ctx context.Context, name string) (string, bool, error) {
	if err := s.stalled(ctx); err != nil {
		return "", false, err
	}
	if s.onGet != nil {
		s.onGet(ctx, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	if s.fail != nil {
		return "", false, s.fail
	}
	p, ok := s.params[name]
	return p.value, ok, nil
}

func (s *fakeStore) GetMany(ctx context.Context, names []string) (map[string]string, error) {
	if err := s.stalled(ctx); err != nil {
		return nil, err
	}
	if s.onGet != nil {
		for _, n := range names {
			s.onGet(ctx, n)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	if s.fail != nil {
		return nil, s.fail
	}
	out := map[string]string{}
	for _, n := range names {
		if p, ok := s.params[n]; ok {
			out[n] = p.value
		}
	}
	return out, nil
}

func (s *fakeStore) Put(ctx context.Context, name, value string, secure, overwrite bool) (err error) {
	if err := s.stalled(ctx); err != nil {
		return err
	}
	if s.beforePut != nil {
		s.beforePut(name, overwrite)
	}
	if s.afterPut != nil {
		defer func() { s.afterPut(name, overwrite, err) }()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts++
	if s.fail != nil {
		return s.fail
	}
	if _, ok := s.params[name]; ok && !overwrite {
		return fmt.Errorf("put %s: %w", name, ErrParameterExists)
	}
	s.params[name] = param{value, secure}
	return nil
}

func (s *fakeStore) Delete(ctx context.Context, name string) error {
	if err := s.stalled(ctx); err != nil {
		return err
	}
	if s.onDelete != nil {
		s.onDelete(ctx, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted = append(s.deleted, name)
	if s.fail != nil {
		return s.fail
	}
	delete(s.params, name)
	return nil
}

func (s *fakeStore) get(name string) (param, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.params[name]
	return p, ok
}

func (s *fakeStore) set(name, value string, secure bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.params[name] = param{value, secure}
}

func (s *fakeStore) setFail(err error) { s.mu.Lock(); s.fail = err; s.mu.Unlock() }

func (s *fakeStore) remove(name string) { s.mu.Lock(); delete(s.params, name); s.mu.Unlock() }

const (
	acct       = "90412233"
	prefix     = "/lpmtls/test"
	tokenParam = prefix + "/token"
	domParam   = prefix + "/domains"
	leaseParam = prefix + "/lease"
	oldPass    = "pw-old-s3cr3t"
	newPass    = "pw-new-s3cr3t"
)

var testDomains = lp.Domains{lp.ServiceAgentVep: "va.agentvep.example", lp.ServiceMTLSGateway: "va-a.mtls.example"}

type env struct {
	t       *testing.T
	clock   *clock
	lp      *fakeLP
	secrets *fakeSecrets
	store   *fakeStore
	logs    *testenv.LockedBuffer

	mu     sync.Mutex
	onTok  []string
	stored []string // bearers planted in the store by tests
}

// newEnv builds fakes sharing one clock and log buffer; on cleanup it checks that no
// bearer or password reached the logs.
func newEnv(t *testing.T) *env {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	e := &env{
		t:       t,
		clock:   c,
		lp:      &fakeLP{clock: c, password: oldPass, domains: testDomains},
		secrets: &fakeSecrets{creds: []lp.Credentials{{AccountID: acct, Username: "svc", Password: oldPass}}},
		store:   newFakeStore(),
		logs:    &testenv.LockedBuffer{},
	}
	t.Cleanup(func() {
		logs := e.logs.String()
		e.lp.mu.Lock()
		secrets := append([]string{oldPass, newPass}, e.lp.issued...)
		e.lp.mu.Unlock()
		secrets = append(secrets, e.stored...)
		for _, s := range secrets {
			if strings.Contains(logs, s) {
				t.Errorf("logs contain secret %q:\n%s", s, logs)
			}
		}
	})
	return e
}

func (e *env) options() Options {
	return Options{
		LP:          e.lp,
		Credentials: e.secrets,
		Store:       e.store,
		Prefix:      prefix,
		Logger:      slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:         e.clock.Now,
		OnToken: func(b string) {
			e.mu.Lock()
			e.onTok = append(e.onTok, b)
			e.mu.Unlock()
		},
	}
}

func (e *env) manager(mod ...func(*Options)) *Manager {
	o := e.options()
	for _, f := range mod {
		f(&o)
	}
	m := New(o)
	m.after = func(d time.Duration) <-chan time.Time {
		e.t.Errorf("unexpected wait of %v for another process's token", d)
		ch := make(chan time.Time, 1)
		ch <- time.Time{}
		return ch
	}
	return m
}

func (e *env) plantToken(bearer string, exp time.Time) {
	e.stored = append(e.stored, bearer)
	e.store.set(tokenParam, fmt.Sprintf(`{"bearer":%q,"expiresAt":%q,"account":%q}`, bearer, exp.Format(time.RFC3339Nano), acct), true)
}

// plantIssuedToken stores a token in the current format, with its issue time.
func (e *env) plantIssuedToken(bearer string, issued, exp time.Time) {
	e.stored = append(e.stored, bearer)
	e.store.set(tokenParam, fmt.Sprintf(`{"bearer":%q,"expiresAt":%q,"issuedAt":%q,"account":%q}`,
		bearer, exp.Format(time.RFC3339Nano), issued.Format(time.RFC3339Nano), acct), true)
}

func (e *env) plantDomains(at time.Time) {
	e.store.set(domParam, encodeDomains(acct, testDomains, at), false)
}
