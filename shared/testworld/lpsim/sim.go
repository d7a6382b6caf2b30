package lpsim

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
)

// DefaultAccountID is used when Options.AccountID is empty.
const DefaultAccountID = "90412233"

// Options configures a simulator. The zero value is usable.
type Options struct {
	AccountID string
	// SessionTTL is the Login Service sessionTTl (sent as a string of ms) and the login
	// bearer's lifetime; default 8h.
	SessionTTL time.Duration
	// OAuth2TTL is expires_in (and the JWT exp) of OAuth2 tokens; default 1h.
	OAuth2TTL time.Duration
	// NoCertStatus answers a forward with the stop flag set and no mapping: 500 as
	// LivePerson documents (default), or 400 as LivePerson's own client expects.
	NoCertStatus int
	// TargetHandler replaces the built-in echo target. The target still requires a
	// client certificate from the simulator's CA, and "target" faults still apply.
	TargetHandler http.Handler
	// Addr and TargetAddr are listen addresses; default "127.0.0.1:0".
	Addr       string
	TargetAddr string
	// ForwardTimeout bounds one outbound call of the gateway; default 30s. Exceeding
	// it answers 424, as a target timeout does at LivePerson.
	ForwardTimeout time.Duration
	// ExpiryFormat is how the certificate list writes expirationDate; default
	// ExpiryEpochMillis. SetExpiryFormat changes it later.
	ExpiryFormat ExpiryFormat
	// ServiceIDs maps service names to the serviceId of mapping objects; default
	// DefaultServiceIDs. Activating a mapping for a name not in it is refused (400).
	ServiceIDs map[string]string
	// RequireIfMatch makes PUT and DELETE of mapping objects demand an If-Match header
	// (428 without), as LivePerson's other account-config APIs do with revisions.
	RequireIfMatch bool
}

// Sim is a running simulator: an HTTPS server speaking LivePerson's CSDS, Login,
// OAuth2 and mTLS gateway APIs, and an HTTPS target that demands client certificates.
type Sim struct {
	opts   Options
	ca     *ca
	pool   *x509.CertPool
	out    *x509.CertPool // roots of the gateway's outbound client: system + CA
	lpLn   net.Listener
	tgtLn  net.Listener
	lpSrv  *http.Server
	tgtSrv *http.Server

	faults faultQueue
	counts counters

	mu       sync.Mutex
	users    map[string]string // username -> password
	clients  map[string]string // client_id -> client_secret
	tokens   map[string]time.Time
	sessions map[string]*session
	store    certStore
	plain    *http.Transport
	jwtKey   []byte
	closed   bool
	inflight int
	idle     *sync.Cond
	// omitted services are left out of every CSDS answer (SetCSDSOmitted).
	omitted map[string]bool
}

type session struct {
	csrf   string
	bearer string
}

// Start generates the certificates and starts both servers.
func Start(o Options) (*Sim, error) {
	if o.AccountID == "" {
		o.AccountID = DefaultAccountID
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 8 * time.Hour
	}
	if o.OAuth2TTL <= 0 {
		o.OAuth2TTL = time.Hour
	}
	if o.NoCertStatus == 0 {
		o.NoCertStatus = http.StatusInternalServerError
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.TargetAddr == "" {
		o.TargetAddr = "127.0.0.1:0"
	}
	if o.ForwardTimeout <= 0 {
		o.ForwardTimeout = 30 * time.Second
	}
	authority, err := newCA()
	if err != nil {
		return nil, fmt.Errorf("lpsim: CA: %w", err)
	}
	s := &Sim{
		opts:     o,
		ca:       authority,
		pool:     x509.NewCertPool(),
		users:    map[string]string{},
		clients:  map[string]string{},
		tokens:   map[string]time.Time{},
		sessions: map[string]*session{},
		store:    newCertStore(o),
		jwtKey:   []byte(randHex(32)),
	}
	s.idle = sync.NewCond(&s.mu)
	s.pool.AddCert(authority.cert)
	if sys, err := x509.SystemCertPool(); err == nil {
		s.out = sys
	} else {
		s.out = x509.NewCertPool()
	}
	s.out.AddCert(authority.cert)
	s.plain = s.newTransport(nil)

	lpCert, err := authority.issue("lpsim gateway", true)
	if err != nil {
		return nil, err
	}
	tgtCert, err := authority.issue("lpsim target", true)
	if err != nil {
		return nil, err
	}
	errLog := slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug)

	s.lpSrv = &http.Server{
		Handler:           s.track(s.lpHandler()),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errLog,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{lpCert},
			MinVersion:   tls.VersionTLS12,
			VerifyConnection: func(tls.ConnectionState) error {
				s.counts.add(func(c *Counts) { c.GatewayTLSHandshakes++ })
				return nil
			},
		},
	}
	target := o.TargetHandler
	if target == nil {
		target = http.HandlerFunc(echo)
	}
	s.tgtSrv = &http.Server{
		Handler:           s.track(s.targetHandler(target)),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errLog,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{tgtCert},
			MinVersion:   tls.VersionTLS12,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    s.pool,
			VerifyConnection: func(tls.ConnectionState) error {
				s.counts.add(func(c *Counts) { c.TargetTLSHandshakes++ })
				return nil
			},
		},
	}

	if s.lpLn, err = net.Listen("tcp", o.Addr); err != nil {
		return nil, fmt.Errorf("lpsim: listen %s: %w", o.Addr, err)
	}
	if s.tgtLn, err = net.Listen("tcp", o.TargetAddr); err != nil {
		s.lpLn.Close()
		return nil, fmt.Errorf("lpsim: listen %s: %w", o.TargetAddr, err)
	}
	go s.serve(s.lpSrv, s.lpLn)
	go s.serve(s.tgtSrv, s.tgtLn)
	slog.Debug("lpsim started", "csds", s.CSDSURL(), "target", s.TargetURL("/"), "account", o.AccountID)
	return s, nil
}

func (s *Sim) serve(srv *http.Server, ln net.Listener) {
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		slog.Error("lpsim: server stopped", "addr", ln.Addr().String(), "err", err)
	}
}

// track counts in-flight handlers so Close can wait for them.
func (s *Sim) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.inflight++
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.inflight--
			if s.inflight == 0 {
				s.idle.Broadcast()
			}
			s.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

func (s *Sim) waitIdle() {
	s.mu.Lock()
	for s.inflight > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()
}

// Close stops both servers, cutting open connections, and waits for running handlers,
// which all end promptly because their request contexts are cancelled.
func (s *Sim) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	_ = s.lpSrv.Close()
	_ = s.tgtSrv.Close()
	s.waitIdle()
	s.mu.Lock()
	for _, t := range s.store.transports {
		t.CloseIdleConnections()
	}
	s.mu.Unlock()
	s.plain.CloseIdleConnections()
}

// Host is the host:port CSDS returns for every service.
func (s *Sim) Host() string { return s.lpLn.Addr().String() }

// CSDSURL is the CSDS base URL (scheme and host, no path).
func (s *Sim) CSDSURL() string { return "https://" + s.Host() }

// AccountID is the account the simulator serves.
func (s *Sim) AccountID() string { return s.opts.AccountID }

// CACertPEM is the CA that signs both server certificates and all client certificates.
func (s *Sim) CACertPEM() []byte { return append([]byte(nil), s.ca.pem...) }

// CAPool is a pool holding only the simulator's CA.
func (s *Sim) CAPool() *x509.CertPool { return s.pool.Clone() }

// HTTPClient is the production client (lp.NewHTTPClient) trusting the system roots
// plus the simulator's CA, without a proxy since everything is on loopback. RootCAs is
// set rather than SSL_CERT_FILE because a process loads the system pool only once. Each
// call returns a new transport, so its own connections and TLS handshakes.
func (s *Sim) HTTPClient() *http.Client {
	hc := lp.NewHTTPClient()
	tr, ok := hc.Transport.(*http.Transport)
	if !ok {
		panic("lpsim: lp.NewHTTPClient no longer returns an *http.Transport")
	}
	tr.TLSClientConfig.RootCAs = s.out.Clone()
	tr.Proxy = nil
	return hc
}

// WriteCAFile writes the CA as PEM, e.g. for SSL_CERT_FILE of a subprocess.
func (s *Sim) WriteCAFile(path string) error { return os.WriteFile(path, s.ca.pem, 0o644) }

// TargetURL is an absolute URL on the target for pathAndQuery ("/hooks?x=1").
func (s *Sim) TargetURL(pathAndQuery string) string {
	return "https://" + s.tgtLn.Addr().String() + pathAndQuery
}

// AddUser lets username/password log in (and lets username log in as an application
// with any OAuth client added by AddOAuthClient).
func (s *Sim) AddUser(username, password string) {
	s.mu.Lock()
	s.users[username] = password
	s.mu.Unlock()
}

// AddOAuthClient registers OAuth2 client credentials at sentinel.
func (s *Sim) AddOAuthClient(clientID, clientSecret string) {
	s.mu.Lock()
	s.clients[clientID] = clientSecret
	s.mu.Unlock()
}

// AddMapping issues a client certificate (CN = serviceName) and maps it to the triplet
// (account, serviceName, url), as an upload plus an activation would: the certificate is
// in the list (named lpsim-<serviceName>-<id>, valid for a year) and the mapping among
// the mapping objects. The gateway presents it when forwarding to exactly url. Adding
// the same triplet again points the mapping at a new certificate.
func (s *Sim) AddMapping(serviceName, url string) {
	ident, err := s.IssueClientCert(ClientCert{CommonName: serviceName})
	if err != nil {
		panic(err) // signing with an in-memory P-256 key does not fail
	}
	s.mu.Lock()
	sid := s.store.ensureService(serviceName)
	c := s.store.addCert("", ident)
	c.name = fmt.Sprintf("lpsim-%s-%d", serviceName, c.id)
	c.display = c.name
	if m := s.store.live(sid, url); m != nil {
		m.certID = c.id
	} else {
		m := &simMapping{id: s.store.nextMap, serviceID: sid, url: url, certID: c.id, enable: true}
		m.name = fmt.Sprintf("lpsim-mapping-%d", m.id)
		s.store.nextMap++
		s.store.mappings[m.id] = m
	}
	s.store.revision++
	s.mu.Unlock()
}

// RevokeTokens invalidates every bearer, JWT and login session issued so far, as an
// expiry or a revocation at LivePerson would: the gateway and mapping check answer 401,
// refresh and logout too.
func (s *Sim) RevokeTokens() {
	s.mu.Lock()
	s.tokens = map[string]time.Time{}
	s.sessions = map[string]*session{}
	s.mu.Unlock()
}

// SetCSDSOmitted makes CSDS leave the named services out of its answers (the
// all-services and single-service forms, and the login answer's list) until called
// again; with no names CSDS is whole again. It is how a CSDS that answers 200 but lacks
// a service lpmtls needs looks.
func (s *Sim) SetCSDSOmitted(services ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.omitted = map[string]bool{}
	for _, svc := range services {
		s.omitted[svc] = true
	}
}

// Inject queues a fault; queued faults apply in order, per op.
func (s *Sim) Inject(f Fault) { s.faults.push(f) }

// ClearFaults drops every queued fault, as a recovered LivePerson would: a test injects
// a lasting outage with a large Times and ends it here.
func (s *Sim) ClearFaults() {
	s.faults.mu.Lock()
	s.faults.queued = nil
	s.faults.mu.Unlock()
}

// Counts returns a snapshot of the counters.
func (s *Sim) Counts() Counts { return s.counts.snapshot() }

// ResetCounts zeroes the counters.
func (s *Sim) ResetCounts() { s.counts.reset() }

// newTransport makes the gateway's outbound client for one certificate (nil: plain
// TLS). Keeping one per triplet lets connections be reused like a real gateway would.
func (s *Sim) newTransport(cert *tls.Certificate) *http.Transport {
	cfg := &tls.Config{RootCAs: s.out, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Transport{
		Proxy:                 nil, // the sandbox's proxy variables must not divert target calls
		TLSClientConfig:       cfg,
		ForceAttemptHTTP2:     true,
		DisableCompression:    true, // bodies pass through byte for byte
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: s.opts.ForwardTimeout,
	}
}
