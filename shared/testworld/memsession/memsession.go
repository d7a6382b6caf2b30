// Package memsession is the in-memory session source of the tests: every call gets the
// same session, with no CSDS, no login and no Parameter Store, so a test of forward,
// mtlsconf or a benchmark measures its own code and not session.Manager's. Its Sessions
// satisfies the Sessions interface of every package that asks for one.
package memsession

import (
	"context"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/session"
)

// Sessions hands every call the session {Auth, Source}. It is safe for concurrent use
// as long as its fields are not changed while calls run.
type Sessions struct {
	Auth   lp.Auth
	Source session.TokenSource
	// Relogin, when set, is called after LivePerson refused a call's bearer (lp.KindAuth)
	// and the call then runs once more with Source session.SourceLogin, as session.Manager
	// replays after a 401. Nil means the refusal is final.
	Relogin func(ctx context.Context)
}

// Do runs fn with the session, replaying it once after a refused bearer when Relogin is set.
func (s *Sessions) Do(ctx context.Context, fn func(context.Context, session.Session) error) error {
	sess := session.Session{Auth: s.Auth, Source: s.Source}
	err := fn(ctx, sess)
	if s.Relogin == nil || lp.KindOf(err) != lp.KindAuth {
		return err
	}
	s.Relogin(ctx)
	sess.Source = session.SourceLogin
	return fn(ctx, sess)
}
