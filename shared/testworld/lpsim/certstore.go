package lpsim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/lpmtls/lpmtls/shared/p12"
)

// ExpiryFormat is how the certificate list writes expirationDate. LivePerson documents
// the field as a string that may be null, in a format it does not state, so clients
// must cope with each of these.
type ExpiryFormat string

const (
	// ExpiryEpochMillis writes a JSON number of milliseconds since the epoch (what a
	// Java Date serialises to by default); the default.
	ExpiryEpochMillis ExpiryFormat = "epoch-ms"
	// ExpiryEpochMillisString writes the same number as a JSON string.
	ExpiryEpochMillisString ExpiryFormat = "epoch-ms-string"
	// ExpiryRFC3339 writes "2027-01-01T00:00:00Z".
	ExpiryRFC3339 ExpiryFormat = "rfc3339"
	// ExpiryNull writes null, as LivePerson's own example does.
	ExpiryNull ExpiryFormat = "null"
)

// Certificate statuses the simulator reports.
const (
	StatusAvailable   = "Available"
	StatusUnavailable = "UnAvailable"
)

// DefaultServiceIDs is LivePerson's documented services enum plus FAAS, which its own
// Functions client names and whose id (3) is our guess.
var DefaultServiceIDs = map[string]string{"TEST_SERVICE": "0", "IDP": "1", "WEBHOOKS": "2", "FAAS": "3"}

// Ids start where LivePerson's examples do, so they look like real ones in output.
const (
	firstCertID    = 7001002001
	firstMappingID = 8100200301
)

type simCert struct {
	id       int64
	name     string
	display  string
	status   string // fixed status; "" derives it from the expiry
	notAfter time.Time
	ident    tls.Certificate
	deleted  bool
}

func (c *simCert) statusAt(now time.Time) string {
	if c.status != "" {
		return c.status
	}
	if !now.Before(c.notAfter) {
		return StatusUnavailable
	}
	return StatusAvailable
}

type simMapping struct {
	id        int64
	name      string
	serviceID string
	url       string
	certID    int64
	enable    bool
	deleted   bool
}

// certStore is the account's mTLS configuration: certificates (mtlsGateway) and mapping
// objects (accountConfigReadWrite). Guarded by Sim.mu.
type certStore struct {
	certs      map[int64]*simCert
	mappings   map[int64]*simMapping
	transports map[int64]*http.Transport // per certificate, built on first forward
	services   map[string]string         // serviceName -> serviceId
	nextCert   int64
	nextMap    int64
	revision   int
	format     ExpiryFormat
}

func newCertStore(o Options) certStore {
	services := map[string]string{}
	src := o.ServiceIDs
	if src == nil {
		src = DefaultServiceIDs
	}
	for k, v := range src {
		services[k] = v
	}
	f := o.ExpiryFormat
	if f == "" {
		f = ExpiryEpochMillis
	}
	return certStore{
		certs: map[int64]*simCert{}, mappings: map[int64]*simMapping{}, transports: map[int64]*http.Transport{},
		services: services, nextCert: firstCertID, nextMap: firstMappingID, format: f,
	}
}

// serviceID returns the id of a known service name.
func (st *certStore) serviceID(name string) (string, bool) {
	id, ok := st.services[name]
	return id, ok
}

// ensureService gives a name unknown to the enum an id of its own; only the Go-level
// helpers do this, so tests may map any service name as before.
func (st *certStore) ensureService(name string) string {
	if id, ok := st.services[name]; ok {
		return id
	}
	max := -1
	for _, v := range st.services {
		if n, err := strconv.Atoi(v); err == nil && n > max {
			max = n
		}
	}
	id := strconv.Itoa(max + 1)
	st.services[name] = id
	return id
}

func (st *certStore) certByName(name string) *simCert {
	for _, c := range st.certs {
		if !c.deleted && c.name == name {
			return c
		}
	}
	return nil
}

func (st *certStore) addCert(name string, ident tls.Certificate) *simCert {
	c := &simCert{id: st.nextCert, name: name, display: name, notAfter: ident.Leaf.NotAfter.UTC(), ident: ident}
	st.nextCert++
	st.certs[c.id] = c
	return c
}

// setIdent replaces a certificate's key pair and drops the transport built from the old
// one; the caller closes the returned transport's idle connections outside the lock.
func (st *certStore) setIdent(c *simCert, ident tls.Certificate) *http.Transport {
	c.ident = ident
	c.notAfter = ident.Leaf.NotAfter.UTC()
	old := st.transports[c.id]
	delete(st.transports, c.id)
	return old
}

// live returns the enabled, not deleted mapping for a service and exact url.
func (st *certStore) live(serviceID, url string) *simMapping {
	for _, m := range st.mappings {
		if !m.deleted && m.enable && m.serviceID == serviceID && m.url == url {
			return m
		}
	}
	return nil
}

// usableCert is the certificate a mapping presents, nil when none can be used.
func (st *certStore) usableCert(m *simMapping, now time.Time) *simCert {
	c := st.certs[m.certID]
	if c == nil || c.deleted || c.statusAt(now) != StatusAvailable {
		return nil
	}
	return c
}

func (st *certStore) sortedCerts() []*simCert {
	out := make([]*simCert, 0, len(st.certs))
	for _, c := range st.certs {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (st *certStore) sortedMappings() []*simMapping {
	out := make([]*simMapping, 0, len(st.mappings))
	for _, m := range st.mappings {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// KeyType chooses the key of a generated client certificate.
type KeyType string

const (
	KeyECDSAP256 KeyType = "ecdsa-p256" // default
	KeyRSA2048   KeyType = "rsa-2048"
	// KeyRSA1024 and KeyEd25519 make valid p12 files LivePerson's Java stack refuses.
	KeyRSA1024 KeyType = "rsa-1024"
	KeyEd25519 KeyType = "ed25519"
)

// ClientCert describes a client certificate to generate.
type ClientCert struct {
	// CommonName is the subject CN, which the echo target reports as X-Echo-Client-Cn.
	CommonName string
	// NotAfter defaults to a year from now; NotBefore is an hour ago (or NotAfter minus
	// an hour, for an already expired certificate).
	NotAfter time.Time
	// Key defaults to KeyECDSAP256.
	Key KeyType
}

// IssueClientCert signs a client certificate with the simulator's CA, so the target
// accepts it when the gateway presents it.
func (s *Sim) IssueClientCert(cc ClientCert) (tls.Certificate, error) {
	return s.ca.issueClient(cc)
}

// ClientP12 is IssueClientCert packed as a p12 file protected by password: what a
// brand uploads. It also returns the certificate, for assertions on CN and NotAfter.
func (s *Sim) ClientP12(cc ClientCert, password string) ([]byte, *x509.Certificate, error) {
	ident, err := s.IssueClientCert(cc)
	if err != nil {
		return nil, nil, err
	}
	data, err := p12.Encode(ident.PrivateKey, ident.Leaf, nil, password)
	if err != nil {
		return nil, nil, fmt.Errorf("lpsim: encode p12: %w", err)
	}
	return data, ident.Leaf, nil
}

func (c *ca) issueClient(cc ClientCert) (tls.Certificate, error) {
	var key crypto.Signer
	var err error
	switch cc.Key {
	case "", KeyECDSAP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyRSA2048:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case KeyRSA1024:
		key, err = rsa.GenerateKey(rand.Reader, 1024)
	case KeyEd25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return tls.Certificate{}, fmt.Errorf("lpsim: unknown key type %q", cc.Key)
	}
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	notAfter := cc.NotAfter
	if notAfter.IsZero() {
		notAfter = now.AddDate(1, 0, 0)
	}
	notBefore := now.Add(-time.Hour)
	if !notBefore.Before(notAfter) {
		notBefore = notAfter.Add(-time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cc.CommonName, Organization: []string{"lpsim"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("lpsim: sign %q: %w", cc.CommonName, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// SeedCertificate describes a certificate placed in the account directly, as if it had
// been uploaded earlier.
type SeedCertificate struct {
	Name string
	// CommonName defaults to Name.
	CommonName string
	// NotAfter defaults to a year from now.
	NotAfter time.Time
	// Status, when set, is reported as is (e.g. StatusUnavailable); otherwise it is
	// Available until NotAfter and UnAvailable after.
	Status string
}

// SeedCertificate stores a certificate (signed by the CA, so usable by a mapping) and
// returns its id. A name already present is replaced in place, keeping its id.
func (s *Sim) SeedCertificate(sc SeedCertificate) (string, error) {
	cn := sc.CommonName
	if cn == "" {
		cn = sc.Name
	}
	ident, err := s.IssueClientCert(ClientCert{CommonName: cn, NotAfter: sc.NotAfter})
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	c := s.store.certByName(sc.Name)
	var old *http.Transport
	if c == nil {
		c = s.store.addCert(sc.Name, ident)
	} else {
		old = s.store.setIdent(c, ident)
	}
	c.status = sc.Status
	id := c.id
	s.mu.Unlock()
	if old != nil {
		old.CloseIdleConnections()
	}
	return strconv.FormatInt(id, 10), nil
}

// SetExpiryFormat changes how the certificate list writes expirationDate from now on.
func (s *Sim) SetExpiryFormat(f ExpiryFormat) {
	s.mu.Lock()
	s.store.format = f
	s.mu.Unlock()
}

// CertificateInfo is a certificate as the simulator holds it.
type CertificateInfo struct {
	ID, Name, Status, CommonName string
	NotAfter                     time.Time
	Deleted                      bool
}

// Certificates lists every certificate, deleted ones included, by id.
func (s *Sim) Certificates() []CertificateInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var out []CertificateInfo
	for _, c := range s.store.sortedCerts() {
		out = append(out, CertificateInfo{ID: strconv.FormatInt(c.id, 10), Name: c.name, Status: c.statusAt(now),
			CommonName: c.ident.Leaf.Subject.CommonName, NotAfter: c.notAfter, Deleted: c.deleted})
	}
	return out
}

// MappingInfo is a mapping object as the simulator holds it.
type MappingInfo struct {
	ID, Name, ServiceID, URL, CertificateID string
	Enable, Deleted                         bool
}

// Mappings lists every mapping object, deleted ones included, by id.
func (s *Sim) Mappings() []MappingInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []MappingInfo
	for _, m := range s.store.sortedMappings() {
		out = append(out, MappingInfo{ID: strconv.FormatInt(m.id, 10), Name: m.name, ServiceID: m.serviceID, URL: m.url,
			CertificateID: strconv.FormatInt(m.certID, 10), Enable: m.enable, Deleted: m.deleted})
	}
	return out
}

// transportFor returns the outbound client for a forward of service to url: the
// mapped certificate's, or nil when no usable mapping exists.
func (s *Sim) transportFor(service, url string) *http.Transport {
	s.mu.Lock()
	defer s.mu.Unlock()
	sid, ok := s.store.serviceID(service)
	if !ok {
		return nil
	}
	m := s.store.live(sid, url)
	if m == nil {
		return nil
	}
	c := s.store.usableCert(m, time.Now())
	if c == nil {
		return nil
	}
	t := s.store.transports[c.id]
	if t == nil {
		ident := c.ident
		t = s.newTransport(&ident)
		s.store.transports[c.id] = t
	}
	return t
}

// mapped reports whether a forward of service to url would present a certificate.
func (s *Sim) mapped(service, url string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sid, ok := s.store.serviceID(service)
	if !ok {
		return false
	}
	m := s.store.live(sid, url)
	return m != nil && s.store.usableCert(m, time.Now()) != nil
}
