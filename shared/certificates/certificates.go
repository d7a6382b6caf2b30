// Package certificates lists the account's mTLS certificates through the session, as
// the scheduled expiry watch needs them: one call, the Bearer from the session, and one
// re-login when the gateway answers 401.
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
}

// Result is the account's certificate list (deleted ones left out, as lp returns it).
type Result struct {
	AccountID    string
	Certificates []lp.Certificate
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
	return res, err
}
