package p12_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/p12"
)

func selfSigned(t testing.TB, key crypto.Signer, cn string, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOpen(t *testing.T) {
	notAfter := time.Now().Add(240 * time.Hour).Truncate(time.Second).UTC()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsaSmall, _ := rsa.GenerateKey(rand.Reader, 1024)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	const pw = "p12-pass-Xy7"
	enc := func(key crypto.Signer, cert *x509.Certificate) []byte {
		b, err := p12.Encode(key, cert, nil, pw)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := enc(ec, selfSigned(t, ec, "brand-hooks", notAfter))
	tests := []struct {
		name     string
		data     []byte
		password string
		want     error
	}{
		{"ok", good, pw, nil},
		{"wrong password", good, "nope", p12.ErrPassword},
		{"empty", nil, pw, p12.ErrFormat},
		{"garbage", []byte("not a p12 at all, just text"), pw, p12.ErrFormat},
		{"pem", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), pw, p12.ErrFormat},
		{"truncated", good[:len(good)/2], pw, p12.ErrFormat},
		{"rsa 1024", enc(rsaSmall, selfSigned(t, rsaSmall, "small", notAfter)), pw, p12.ErrUnsupported},
		{"ed25519", enc(ed, selfSigned(t, ed, "ed", notAfter)), pw, p12.ErrUnsupported},
		{"p224", enc(ec224, selfSigned(t, ec224, "p224", notAfter)), pw, p12.ErrUnsupported},
		{"key of another cert", enc(other, selfSigned(t, ec, "mismatch", notAfter)), pw, p12.ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := p12.Open(tt.data, tt.password)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if b.CommonName() != "brand-hooks" || !b.NotAfter().Equal(notAfter) {
					t.Errorf("CN %q NotAfter %v", b.CommonName(), b.NotAfter())
				}
				if tc := b.TLSCertificate(); len(tc.Certificate) != 1 || tc.PrivateKey == nil {
					t.Errorf("tls certificate %+v", tc)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), tt.password) && tt.password != "" {
				t.Errorf("message carries the password: %v", err)
			}
		})
	}
}
