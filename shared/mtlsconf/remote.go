package mtlsconf

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/session"
)

// LivePerson is the part of *lp.Client this package uses.
type LivePerson interface {
	ListCertificates(ctx context.Context, auth lp.Auth) ([]lp.Certificate, error)
	UploadCertificate(ctx context.Context, auth lp.Auth, up lp.CertificateUpload) (lp.Certificate, error)
	ReplaceCertificate(ctx context.Context, auth lp.Auth, id lp.CertificateID, up lp.CertificateUpload) (lp.Certificate, error)
	ActivateCertificate(ctx context.Context, auth lp.Auth, id lp.CertificateID, a lp.Activation) (lp.MappingObject, error)
	ListMappingObjects(ctx context.Context, auth lp.Auth) ([]lp.MappingObject, string, error)
	GetMappingObject(ctx context.Context, auth lp.Auth, id lp.MappingID) (lp.MappingObject, string, error)
	UpdateMappingObject(ctx context.Context, auth lp.Auth, m lp.MappingObject, revision string) (lp.MappingObject, error)
	CheckMappings(ctx context.Context, auth lp.Auth, pairs []lp.Mapping) ([]lp.MappingResult, error)
	ServiceID(name string) (string, bool)
	ServiceName(id string) string
}

// Sessions hands out a bearer and logs in again once after a 401; *session.Manager.
type Sessions interface {
	Do(ctx context.Context, fn func(ctx context.Context, s session.Session) error) error
}

// Retry is LivePerson's documented retry policy, applied to each call: a throttled
// call (429) waits Retry-After, at least ThrottleFloor, and is sent again; a server
// failure (5xx, network, timeout) is sent again after each of ServerPauses, but only
// for calls that are safe to repeat (reads and replacements). A create that failed
// that way may have happened: the next run reads LivePerson's state and carries on.
type Retry struct {
	ThrottleFloor time.Duration
	MaxThrottled  int
	ServerPauses  []time.Duration
	// Sleep waits d or until ctx ends; nil means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultRetry follows LivePerson's retry pages: 429 after at least 1 s, 5xx three
// times after 5, 10 and 15 s.
var DefaultRetry = Retry{
	ThrottleFloor: time.Second,
	MaxThrottled:  3,
	ServerPauses:  []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second},
}

func (r Retry) sleep(ctx context.Context, d time.Duration) error {
	if r.Sleep != nil {
		return r.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Remote is LivePerson as this package sees it, each call in a session and under the
// retry policy.
type Remote struct {
	LP       LivePerson
	Sessions Sessions
	Retry    Retry
	// Calls counts the LivePerson calls made (retries included, logins not).
	Calls int
	// Logger, when set, gets a debug line per call and an info line per retry.
	Logger *slog.Logger
}

func (r *Remote) do(ctx context.Context, what string, repeatable bool, fn func(ctx context.Context, s session.Session) error) error {
	throttled, server := 0, 0
	for {
		err := r.Sessions.Do(ctx, func(ctx context.Context, s session.Session) error {
			r.Calls++
			start := time.Now()
			err := fn(ctx, s)
			if r.Logger != nil {
				r.Logger.DebugContext(ctx, "liveperson call", "call", what, "account", s.AccountID,
					"ms", time.Since(start).Milliseconds(), "outcome", outcome(err))
			}
			return err
		})
		if err == nil || ctx.Err() != nil {
			return err
		}
		var e *lp.Error
		if !errors.As(err, &e) {
			return err
		}
		var wait time.Duration
		switch {
		case e.Kind == lp.KindThrottled && throttled < r.Retry.MaxThrottled:
			throttled++
			wait = max(e.RetryAfter, r.Retry.ThrottleFloor)
		case repeatable && server < len(r.Retry.ServerPauses) &&
			(e.Kind == lp.KindGateway || e.Kind == lp.KindNetwork || e.Kind == lp.KindTimeout) && e.Op != "csds":
			wait = r.Retry.ServerPauses[server]
			server++
		default:
			return err
		}
		if r.Logger != nil {
			r.Logger.InfoContext(ctx, "liveperson call failed; trying again", "call", what, "outcome", outcome(err), "after", wait.String())
		}
		if err := r.Retry.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return lp.KindOf(err).String()
}

// State is what LivePerson holds for the account.
type State struct {
	AccountID    string
	Certificates []lp.Certificate
	Mappings     []lp.MappingObject
	Revision     string
}

// CertByName returns the certificate named name, nil when none.
func (s *State) CertByName(name string) *lp.Certificate {
	for i := range s.Certificates {
		if s.Certificates[i].Name == name {
			return &s.Certificates[i]
		}
	}
	return nil
}

// CertByID returns the certificate with id, nil when none.
func (s *State) CertByID(id lp.CertificateID) *lp.Certificate {
	for i := range s.Certificates {
		if s.Certificates[i].ID == id {
			return &s.Certificates[i]
		}
	}
	return nil
}

// Certificates lists the account's certificates (one call).
func (r *Remote) Certificates(ctx context.Context) (string, []lp.Certificate, error) {
	var acct string
	var certs []lp.Certificate
	err := r.do(ctx, "certificate list", true, func(ctx context.Context, s session.Session) error {
		var err error
		acct = s.AccountID
		certs, err = r.LP.ListCertificates(ctx, s.Auth)
		return err
	})
	return acct, certs, err
}

// Read fetches the certificates and, when withMappings, the mapping objects (two
// calls).
func (r *Remote) Read(ctx context.Context, withMappings bool) (*State, error) {
	acct, certs, err := r.Certificates(ctx)
	if err != nil {
		return nil, err
	}
	st := &State{AccountID: acct, Certificates: certs}
	if !withMappings {
		return st, nil
	}
	err = r.do(ctx, "mapping object list", true, func(ctx context.Context, s session.Session) error {
		var err error
		st.Mappings, st.Revision, err = r.LP.ListMappingObjects(ctx, s.Auth)
		return err
	})
	return st, err
}

// Upload stores a new certificate.
func (r *Remote) Upload(ctx context.Context, up lp.CertificateUpload) (lp.Certificate, error) {
	var c lp.Certificate
	err := r.do(ctx, "certificate upload", false, func(ctx context.Context, s session.Session) error {
		var err error
		c, err = r.LP.UploadCertificate(ctx, s.Auth, up)
		return err
	})
	return c, err
}

// Replace puts a new p12 under an existing id; repeating it is harmless.
func (r *Remote) Replace(ctx context.Context, id lp.CertificateID, up lp.CertificateUpload) (lp.Certificate, error) {
	var c lp.Certificate
	err := r.do(ctx, "certificate replace", true, func(ctx context.Context, s session.Session) error {
		var err error
		c, err = r.LP.ReplaceCertificate(ctx, s.Auth, id, up)
		return err
	})
	return c, err
}

// Activate creates a mapping.
func (r *Remote) Activate(ctx context.Context, id lp.CertificateID, a lp.Activation) (lp.MappingObject, error) {
	var m lp.MappingObject
	err := r.do(ctx, "certificate activate", false, func(ctx context.Context, s session.Session) error {
		var err error
		m, err = r.LP.ActivateCertificate(ctx, s.Auth, id, a)
		return err
	})
	return m, err
}

// Repoint points mapping object id at certificate certID (and enables it): it reads
// the object for its current content and revision, then writes it back changed, so a
// revision guard (If-Match) sees the latest revision. Repeating it is harmless.
func (r *Remote) Repoint(ctx context.Context, id lp.MappingID, certID lp.CertificateID) (lp.MappingObject, error) {
	var out lp.MappingObject
	err := r.do(ctx, "mapping object repoint", true, func(ctx context.Context, s session.Session) error {
		cur, rev, err := r.LP.GetMappingObject(ctx, s.Auth, id)
		if err != nil {
			return err
		}
		if cur.ID == "" {
			cur.ID = id
		}
		cur.CertificationID, cur.Enable = certID, true
		r.Calls++
		out, err = r.LP.UpdateMappingObject(ctx, s.Auth, cur, rev)
		return err
	})
	return out, err
}

// Check asks the runtime whether the pairs are mapped.
func (r *Remote) Check(ctx context.Context, pairs []lp.Mapping) (string, []lp.MappingResult, error) {
	var acct string
	var out []lp.MappingResult
	err := r.do(ctx, "mapping check", true, func(ctx context.Context, s session.Session) error {
		var err error
		acct = s.AccountID
		out, err = r.LP.CheckMappings(ctx, s.Auth, pairs)
		return err
	})
	return acct, out, err
}
