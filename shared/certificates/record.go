package certificates

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/paramstore"
)

// Record is what lpmtls apply learnt of a certificate from the p12 it holds: the
// expiry (NotAfter) and the SHA-256 of the leaf certificate's DER. Both are public
// data; no key and no password is ever recorded. LivePerson's documented certificate
// object carries expirationDate: null, so without the record the scheduled expiry
// watch cannot see a certificate coming to its end.
type Record struct {
	ID          lp.CertificateID `json:"id"`
	Name        string           `json:"name"`
	Fingerprint string           `json:"sha256"`
	NotAfter    time.Time        `json:"notAfter"`
	RecordedAt  time.Time        `json:"recordedAt"`
}

// Matches reports whether the record describes c. LivePerson reports no fingerprint,
// so the id is the only check available: a certificate deleted and made again under
// the same name has another id, and its record no longer counts.
func (r Record) Matches(c lp.Certificate) bool {
	return r.Name == c.Name && r.ID != "" && r.ID == c.ID && !r.NotAfter.IsZero()
}

// same reports whether writing r over old would change nothing worth a new version.
func (r Record) same(old Record) bool {
	return r.ID == old.ID && r.Name == old.Name && r.Fingerprint == old.Fingerprint && r.NotAfter.Equal(old.NotAfter)
}

// ParamStore is the SSM tier the records live in; *paramstore.Store satisfies it.
type ParamStore interface {
	Get(ctx context.Context, name string) (value string, found bool, err error)
	Put(ctx context.Context, name, value string, secure, overwrite bool) error
}

// Records keeps one String parameter per certificate at
// {Prefix}/{accountId}/certificates/{name}, beside the session's token and domains,
// so that deleting everything under the prefix (the stack's teardown) removes them too.
type Records struct {
	Store  ParamStore
	Prefix string
}

// NewRecords gives the records under prefix in store; nil when there is no store (no
// cache prefix configured), which leaves the expiries to what LivePerson reports. It
// takes the concrete store so that a nil one never hides in a non-nil ParamStore.
func NewRecords(store *paramstore.Store, prefix string) *Records {
	if store == nil {
		return nil
	}
	return &Records{Store: store, Prefix: prefix}
}

// ssmNameRE is what SSM accepts in a parameter name's segment. A certificate whose
// name has anything else (made outside lpmtls) cannot have a record.
var ssmNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,200}$`)

// Name is the parameter of account's certificate cert, "" when cert cannot be one.
func (r *Records) Name(account, cert string) string {
	if !ssmNameRE.MatchString(account) || !ssmNameRE.MatchString(cert) {
		return ""
	}
	return r.Prefix + "/" + account + "/certificates/" + cert
}

// Get returns the record of account's certificate named cert, nil when there is none.
func (r *Records) Get(ctx context.Context, account, cert string) (*Record, error) {
	name := r.Name(account, cert)
	if name == "" {
		return nil, nil
	}
	raw, found, err := r.Store.Get(ctx, name)
	if err != nil || !found {
		return nil, err
	}
	var rec Record
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return nil, fmt.Errorf("certificate record %s is not the JSON lpmtls writes: %w", name, err)
	}
	return &rec, nil
}

// Put writes rec unless the parameter already says the same; written reports whether
// it wrote, so a repeated apply leaves the parameter's history alone.
func (r *Records) Put(ctx context.Context, account string, rec Record) (name string, written bool, err error) {
	name = r.Name(account, rec.Name)
	if name == "" {
		return "", false, fmt.Errorf("certificate %q or account %q cannot name an SSM parameter", rec.Name, account)
	}
	old, err := r.Get(ctx, account, rec.Name)
	if err == nil && old != nil && rec.same(*old) {
		return name, false, nil
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return name, false, err
	}
	if err := r.Store.Put(ctx, name, string(raw), false, true); err != nil {
		return name, false, err
	}
	return name, true, nil
}
