package lp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"syscall"
)

// Cause is why a connection to LivePerson produced no answer: what the person at the
// terminal, or the on-call engineer reading a log line, must look at differs for each.
type Cause string

const (
	CauseDNS     Cause = "dns"     // the host name does not resolve
	CauseRefused Cause = "refused" // nothing listens at the host and port
	CauseTLS     Cause = "tls"     // the TLS handshake failed (untrusted or mismatched certificate)
	CauseTimeout Cause = "timeout" // no answer in time
	CauseNetwork Cause = "network" // any other failure of the connection
)

// classify names the cause of a transport failure and says it in one line that names
// the host (never the path or query: those may carry account data).
func classify(ctx context.Context, err error) (Cause, string) {
	host := "LivePerson"
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			host = u.Host
		}
	}
	var (
		dns     *net.DNSError
		unknown x509.UnknownAuthorityError
		name    x509.HostnameError
		invalid x509.CertificateInvalidError
		verify  *tls.CertificateVerificationError
		record  tls.RecordHeaderError
		alert   tls.AlertError
		ne      net.Error
	)
	switch {
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		(errors.As(err, &ne) && ne.Timeout()):
		return CauseTimeout, "no answer from " + host + " in time (timeout): " + causeText(err)
	case errors.As(err, &dns):
		reason := dns.Err
		if dns.IsNotFound {
			reason = "no such host"
		}
		return CauseDNS, "cannot resolve " + dns.Name + " (DNS): " + reason
	case errors.Is(err, syscall.ECONNREFUSED):
		return CauseRefused, "connection to " + host + " refused: nothing listens there"
	case errors.As(err, &unknown) || errors.As(err, &name) || errors.As(err, &invalid) || errors.As(err, &verify) ||
		errors.As(err, &record) || errors.As(err, &alert):
		return CauseTLS, "TLS handshake with " + host + " failed: " + causeText(err)
	}
	return CauseNetwork, "connection to " + host + " failed: " + causeText(err)
}

// CauseOf is the cause of the transport failure in err's chain, "" when err is none.
func CauseOf(err error) Cause {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return ""
		}
		if e.cause != "" {
			return e.cause
		}
		err = e.Err
	}
	return ""
}
