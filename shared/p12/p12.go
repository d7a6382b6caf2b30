// Package p12 opens PKCS#12 (p12/pfx) client-certificate bundles the way LivePerson's
// mTLS gateway needs them: one private key, its certificate, optional chain, and key
// algorithms a Java TLS stack can use. The CLI reads a bundle's expiry before upload,
// and the simulator checks uploads with the same rules.
package p12

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Reason says why a bundle was refused.
type Reason string

const (
	// ReasonPassword: the password does not open the bundle.
	ReasonPassword Reason = "wrong_password"
	// ReasonFormat: the bytes are not a PKCS#12 bundle with one key and its certificate.
	ReasonFormat Reason = "not_p12"
	// ReasonUnsupported: a valid bundle whose key LivePerson's Java stack cannot use.
	ReasonUnsupported Reason = "unsupported"
)

// Error is every refusal of Open. Its message never holds the password or file bytes.
type Error struct {
	Reason Reason
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Is matches on the reason: errors.Is(err, p12.ErrPassword).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Reason == e.Reason
}

// Sentinels for errors.Is.
var (
	ErrPassword    = &Error{Reason: ReasonPassword}
	ErrFormat      = &Error{Reason: ReasonFormat}
	ErrUnsupported = &Error{Reason: ReasonUnsupported}
)

// MaxSize bounds a bundle: a client certificate with its chain is a few KiB.
const MaxSize = 1 << 20

// Bundle is an opened p12.
type Bundle struct {
	Key   crypto.PrivateKey
	Leaf  *x509.Certificate
	Chain []*x509.Certificate
}

// Open decodes data with password and checks it is usable as an mTLS client identity:
// a private key, the certificate of that key, RSA of at least 2048 bits or ECDSA on
// P-256/P-384/P-521 (what Java's TLS providers accept for client authentication).
func Open(data []byte, password string) (*Bundle, error) {
	if len(data) == 0 {
		return nil, &Error{ReasonFormat, "the p12 file is empty"}
	}
	if len(data) > MaxSize {
		return nil, &Error{ReasonFormat, fmt.Sprintf("the p12 file is larger than %d bytes", MaxSize)}
	}
	if looksPEM(data) {
		return nil, &Error{ReasonFormat, "the file is PEM text, not a binary PKCS#12 (p12/pfx) bundle: convert it with openssl pkcs12 -export"}
	}
	key, leaf, chain, err := gopkcs12.DecodeChain(data, password)
	if err != nil {
		return nil, classify(err)
	}
	b := &Bundle{Key: key, Leaf: leaf, Chain: chain}
	if err := b.check(); err != nil {
		return nil, err
	}
	return b, nil
}

func looksPEM(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN"))
}

// classify maps go-pkcs12's errors, whose texts are not part of its API beyond the two
// sentinels, to the three reasons.
func classify(err error) *Error {
	switch {
	case errors.Is(err, gopkcs12.ErrIncorrectPassword), errors.Is(err, gopkcs12.ErrDecryption):
		return &Error{ReasonPassword, "the password does not open the p12 file"}
	}
	var ni gopkcs12.NotImplementedError
	if errors.As(err, &ni) {
		return &Error{ReasonUnsupported, "the p12 file uses a format LivePerson cannot read: " + clean(err)}
	}
	return &Error{ReasonFormat, "the file is not a PKCS#12 (p12/pfx) bundle with one private key and its certificate: " + clean(err)}
}

// clean keeps a library message short and printable.
func clean(err error) string {
	s := strings.TrimPrefix(err.Error(), "pkcs12: ")
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func (b *Bundle) check() error {
	if b.Key == nil || b.Leaf == nil {
		return &Error{ReasonFormat, "the p12 file must hold a private key and its certificate"}
	}
	signer, ok := b.Key.(crypto.Signer)
	if !ok {
		return &Error{ReasonUnsupported, "the p12 file's private key cannot sign"}
	}
	if !samePublicKey(signer.Public(), b.Leaf.PublicKey) {
		return &Error{ReasonFormat, "the p12 file's first certificate is not the certificate of its private key"}
	}
	switch k := b.Key.(type) {
	case *rsa.PrivateKey:
		if n := k.N.BitLen(); n < 2048 {
			return &Error{ReasonUnsupported, fmt.Sprintf("the p12 file's RSA key has %d bits; LivePerson needs at least 2048", n)}
		}
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return &Error{ReasonUnsupported, "the p12 file's EC key is on a curve Java TLS does not support; use P-256, P-384 or P-521"}
		}
	default:
		return &Error{ReasonUnsupported, fmt.Sprintf("the p12 file's %T key is not supported; use RSA (2048 bits or more) or ECDSA", b.Key)}
	}
	return nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// NotAfter is the leaf certificate's expiry.
func (b *Bundle) NotAfter() time.Time { return b.Leaf.NotAfter.UTC() }

// CommonName is the leaf certificate's subject CN.
func (b *Bundle) CommonName() string { return b.Leaf.Subject.CommonName }

// TLSCertificate is the bundle as a TLS client identity (leaf first, then the chain).
func (b *Bundle) TLSCertificate() tls.Certificate {
	c := tls.Certificate{PrivateKey: b.Key, Leaf: b.Leaf}
	c.Certificate = append(c.Certificate, b.Leaf.Raw)
	for _, ca := range b.Chain {
		c.Certificate = append(c.Certificate, ca.Raw)
	}
	return c
}

// Encode writes key, leaf and chain as a p12 with the modern (2023) algorithms,
// which OpenSSL 3 and Java both read.
func Encode(key crypto.PrivateKey, leaf *x509.Certificate, chain []*x509.Certificate, password string) ([]byte, error) {
	return gopkcs12.Modern2023.Encode(key, leaf, chain, password)
}
