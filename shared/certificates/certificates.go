// Package certificates lists the account's mTLS certificates through the session, as
// the scheduled expiry watch needs them: one call, the Bearer from the session, and one
// re-login when the gateway answers 401. Where LivePerson reports no expiry, the
// record lpmtls apply left in SSM (Records) supplies it.
package certificates

import (
	"context"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/session"
)

// Lister is the LivePerson call this package needs; *lp.Client satisfies it.
type Lister interface {
	ListCertificates(ctx context.Context, auth lp.Auth) ([]lp.Certificate, error)
}

// Sessions hands out a bearer and retries once after a 401; *session.Manager satisfies it.
type Sessions interface {
	Do(ctx context.Context, fn func(ctx context.Context, s session.Session) error) error
}

// Service lists certificates.
type Service struct {
	Lister   Lister
	Sessions Sessions
	// Records, when set, are read for each certificate LivePerson gives no expiry.
	Records *Records
}

// Result is the account's certificate list (deleted ones left out, as lp returns it).
type Result struct {
	AccountID    string
	Certificates []lp.Certificate
	// Recorded holds, by id, the matching record of each certificate LivePerson gave no
	// expiry for.
	Recorded map[lp.CertificateID]Record
	// RecordErr is the first failure to read a record (the certificate's expiry then
	// stays unknown); the list itself succeeded.
	RecordErr error
}

// List asks LivePerson once. Errors are lp's (or the session's), so callers can tell
// auth, throttling and gateway failures apart.
func (s *Service) List(ctx context.Context) (*Result, error) {
	var res *Result
	err := s.Sessions.Do(ctx, func(ctx context.Context, sess session.Session) error {
		certs, err := s.Lister.ListCertificates(ctx, sess.Auth)
		if err != nil {
			return err
		}
		res = &Result{AccountID: sess.AccountID, Certificates: certs}
		return nil
	})
	if err == nil && s.Records != nil {
		s.readRecords(ctx, res)
	}
	return res, err
}

// readRecords asks SSM only for the certificates LivePerson left without an expiry: one
// GetParameter each, none at all when LivePerson reports every expiry.
func (s *Service) readRecords(ctx context.Context, res *Result) {
	for _, c := range res.Certificates {
		if !c.ExpiresAt.IsZero() {
			continue
		}
		rec, err := s.Records.Get(ctx, res.AccountID, c.Name)
		if err != nil {
			if res.RecordErr == nil {
				res.RecordErr = err
			}
			continue
		}
		if rec == nil || !rec.Matches(c) {
			continue
		}
		if res.Recorded == nil {
			res.Recorded = map[lp.CertificateID]Record{}
		}
		res.Recorded[c.ID] = *rec
	}
}
