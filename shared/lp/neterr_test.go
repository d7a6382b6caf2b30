package lp

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTransportFailuresNameHostAndCause: a call that gets no answer says which host it
// tried and why, in words a person can act on, and CauseOf classifies it.
func TestTransportFailuresNameHostAndCause(t *testing.T) {
	closed := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}
	untrusted := func(t *testing.T) string {
		srv := httptest.NewUnstartedServer(http.NotFoundHandler())
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake error it logs is the point
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "https://")
	}
	silent := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var conns []net.Conn
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c) // held open, never answered
				mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			l.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
		return l.Addr().String()
	}
	tests := []struct {
		name  string
		host  func(t *testing.T) string
		cause Cause
		kind  Kind
		says  string
	}{
		{"closed port", closed, CauseRefused, KindNetwork, "refused"},
		{"unresolvable host", func(*testing.T) string { return "csds.lpmtls-test.invalid" }, CauseDNS, KindNetwork, "cannot resolve csds.lpmtls-test.invalid (DNS)"},
		{"untrusted certificate", untrusted, CauseTLS, KindNetwork, "TLS handshake with"},
		{"never answers", silent, CauseTimeout, KindTimeout, "no answer from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := tt.host(t)
			hc := NewHTTPClient()
			t.Cleanup(hc.CloseIdleConnections)
			c := New(Options{HTTPClient: hc, CSDSURL: "https://" + host})
			// Only the silent server needs a deadline; the others fail on their own, and a
			// short deadline for them would turn a slow handshake on a loaded machine into a
			// timeout and a flaky test.
			ctx, cancel := context.WithCancel(context.Background())
			if tt.cause == CauseTimeout {
				ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
			}
			defer cancel()
			_, err := c.Discover(ctx, "90412233", AuthLogin)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, host) || !strings.Contains(msg, tt.says) {
				t.Errorf("%q does not name the host %s and say %q", msg, host, tt.says)
			}
			if CauseOf(err) != tt.cause || KindOf(err) != tt.kind {
				t.Errorf("cause %q kind %v, want %q %v (%v)", CauseOf(err), KindOf(err), tt.cause, tt.kind, err)
			}
			// Wrapped as the session wraps a failed lookup, the reason still shows.
			outer := &Error{Kind: KindDiscovery, Op: "csds", Message: "CSDS lookup failed and no domains are cached", Err: err}
			if !strings.Contains(outer.Error(), host) || CauseOf(outer) != tt.cause {
				t.Errorf("wrapped: %q, cause %q", outer.Error(), CauseOf(outer))
			}
		})
	}
}
