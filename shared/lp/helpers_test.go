package lp

import (
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Secret values used by the tests; none may ever show up in an error.
const (
	testPassword     = "pw-S3CRET-7731"
	testClientSecret = "cs-S3CRET-9912"
	testBearer       = "br-S3CRET-4455"
	testOverride     = "Basic b3ZlcnJpZGUtUzNDUkVU"
)

var fixedNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// fakeLP is one TLS server playing every LivePerson service; CSDS points all services at it.
type fakeLP struct {
	srv      *httptest.Server
	c        *Client
	d        Domains
	host     string
	newConns atomic.Int32
}

// newFakeLP starts a TLS server running h and a Client built on NewHTTPClient's transport
// that trusts only the server's certificate.
func newFakeLP(t testing.TB, h http.HandlerFunc, opts ...func(*Options)) *fakeLP {
	t.Helper()
	f := &fakeLP{}
	f.srv = httptest.NewUnstartedServer(h)
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.newConns.Add(1)
		}
	}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)

	hc := NewHTTPClient()
	tr := hc.Transport.(*http.Transport)
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	tr.TLSClientConfig.RootCAs = pool
	t.Cleanup(tr.CloseIdleConnections)

	o := Options{HTTPClient: hc, CSDSURL: f.srv.URL}
	for _, fn := range opts {
		fn(&o)
	}
	f.c = New(o)
	f.c.now = func() time.Time { return fixedNow }
	f.host = strings.TrimPrefix(f.srv.URL, "https://")
	f.d = Domains{
		ServiceAgentVep: f.host, ServiceMTLSGateway: f.host,
		ServiceSentinel: f.host, ServiceAccountConfigReadWrite: f.host,
	}
	return f
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answer writes a canned response.
func answer(status int, body []byte, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Add(hdr[i], hdr[i+1])
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not *lp.Error", err, err)
	}
	return e
}

// assertNoSecrets fails when any secret appears in a text field of err.
func assertNoSecrets(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		return
	}
	fields := []string{err.Error(), e.Message, string(e.Body)}
	for k, vs := range e.Header {
		fields = append(fields, k+": "+strings.Join(vs, ","))
	}
	for _, s := range []string{testPassword, testClientSecret, testBearer, testOverride} {
		for _, f := range fields {
			if strings.Contains(f, s) {
				t.Errorf("secret %q leaked into error field %q", s, f)
			}
		}
	}
}

// auth speaks for acct with the test bearer, on the fake's domains.
func (f *fakeLP) auth(acct string) Auth {
	return Auth{Domains: f.d, AccountID: acct, Bearer: testBearer}
}
