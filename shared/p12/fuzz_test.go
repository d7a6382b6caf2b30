package p12_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/p12"
)

// FuzzOpen: any bytes and password either open as a usable client identity or fail
// with one of the three reasons; nothing panics.
func FuzzOpen(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, err := p12.Encode(key, selfSigned(f, key, "fuzz", time.Now().AddDate(1, 0, 0)), nil, "pw")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, "pw")
	f.Add(good, "wrong")
	f.Add(good[:len(good)-7], "pw")
	f.Add([]byte("-----BEGIN PRIVATE KEY-----"), "")
	f.Add([]byte{0x30, 0x80, 0x02, 0x01, 0x03}, "")
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		b, err := p12.Open(data, password)
		if err != nil {
			var pe *p12.Error
			if !errors.As(err, &pe) || (pe.Reason != p12.ReasonPassword && pe.Reason != p12.ReasonFormat && pe.Reason != p12.ReasonUnsupported) {
				t.Fatalf("untyped error %T %v", err, err)
			}
			return
		}
		tc := b.TLSCertificate()
		if b.Leaf == nil || b.Key == nil || len(tc.Certificate) == 0 || b.NotAfter().IsZero() {
			t.Fatalf("opened without a usable identity: %+v", b)
		}
	})
}
