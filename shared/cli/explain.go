package cli

import (
	"crypto/x509"
	"errors"
	"strings"

	"github.com/lpmtls/lpmtls/shared/config"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/mtlsconf"
	"github.com/lpmtls/lpmtls/shared/p12"
)

// explain is err followed by what to do about it.
func explain(err error) string {
	msg := err.Error()
	var ae *mtlsconf.ApplyError
	if errors.As(err, &ae) {
		return msg + "; " + hint(ae.Outcome.Err) + " Running apply again finishes the job."
	}
	if h := hint(err); h != "" {
		return msg + "; " + h
	}
	return msg
}

func hint(err error) string {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) || strings.Contains(err.Error(), "certificate signed by unknown authority") {
		return "LivePerson's TLS certificate is not trusted here: for the local sandbox give --ca-file with the CA that `make run` prints, or set SSL_CERT_FILE."
	}
	if errors.Is(err, config.ErrNoCredentials) {
		return "set them in the environment (lpmtls --help lists the variables)."
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		return "fix the environment variables named."
	}
	if errors.Is(err, p12.ErrPassword) {
		return "check the password variable."
	}
	if errors.Is(err, p12.ErrFormat) || errors.Is(err, p12.ErrUnsupported) {
		return "export the key and certificate as a PKCS#12 file, e.g. openssl pkcs12 -export -inkey key.pem -in cert.pem -out client.p12."
	}
	var pe *mtlsconf.PlanError
	var fe *mtlsconf.FileError
	if errors.As(err, &pe) || errors.As(err, &fe) {
		return "nothing was changed; fix the file and run again."
	}
	switch lp.CauseOf(err) {
	case lp.CauseDNS:
		return "the host name does not resolve: check LP_CSDS_URL (and the machine's DNS or proxy settings)."
	case lp.CauseRefused:
		return "nothing answers at that host and port: check LP_CSDS_URL, or start the sandbox (make run)."
	case lp.CauseTLS:
		return "the TLS handshake failed: for the local sandbox give --ca-file with the CA that `make run` prints, or set SSL_CERT_FILE; otherwise check for a proxy that intercepts TLS."
	case lp.CauseTimeout:
		return "no answer in time: check the network path to LivePerson (proxy, firewall), or give --timeout more."
	case lp.CauseNetwork:
		return "check the network path to LivePerson and run again (every command is safe to repeat)."
	}
	var le *lp.Error
	if errors.As(err, &le) && strings.HasPrefix(le.Op, "mapping object") && (le.Status == 404 || le.Status == 405) {
		return "LivePerson does not serve mapping objects at this path (only their create call is documented): set LP_MAPPING_OBJECTS_PATH (and LP_MAPPING_OBJECTS_VERSION) to what the account uses."
	}
	switch lp.KindOf(err) {
	case lp.KindAuth:
		return "LivePerson refused the credentials or the bearer: check LP_SECRET_ID or the LP_* variables, and that the user or app may manage mTLS (uploads need a Bearer of an administrator or an OAuth2 app)."
	case lp.KindThrottled:
		return "LivePerson is throttling; wait a minute and run again."
	case lp.KindBlocked:
		return "LivePerson support has blocked the account or user; contact them."
	case lp.KindDiscovery:
		return "check LP_ACCOUNT_ID (or the secret's accountId) and LP_CSDS_URL."
	case lp.KindNetwork, lp.KindTimeout, lp.KindGateway:
		return "LivePerson could not be reached or failed; run again later (every command is safe to repeat)."
	case lp.KindTarget:
		return "check that the URL answers over mTLS with this certificate, or leave URL validation off."
	case lp.KindBadRequest:
		return "LivePerson refused the request as given; correct it and run again."
	}
	return ""
}
