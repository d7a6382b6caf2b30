package mtlsconf

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lpmtls/lpmtls/shared/certificates"
	"github.com/lpmtls/lpmtls/shared/lp"
)

// Progress hears about each step: Start before it is sent, Done after, with what
// LivePerson answered (a line for the user) or the error.
type Progress interface {
	Start(s Step)
	Done(s Step, result string, err error)
}

// Outcome is what an apply did.
type Outcome struct {
	Done []Step
	// Failed is the step that failed, nil when all succeeded; NotDone follow it.
	Failed  *Step
	Err     error
	NotDone []Step
	// StateErr is a failure to write the state file (the changes themselves were made).
	StateErr error
	// Recorded names the SSM parameters written with a certificate's expiry;
	// RecordErr is the first failure to write one (the changes themselves were made).
	Recorded  []string
	RecordErr error
}

// ApplyError is returned when a step failed: it says what was done and what was not.
type ApplyError struct{ Outcome *Outcome }

func (e *ApplyError) Error() string {
	o := e.Outcome
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed: %v", o.Failed.Describe(), o.Err)
	fmt.Fprintf(&b, "; done before it: %s", describeAll(o.Done))
	fmt.Fprintf(&b, "; not done: %s", describeAll(o.NotDone))
	return b.String()
}

func (e *ApplyError) Unwrap() error { return e.Outcome.Err }

func describeAll(steps []Step) string {
	if len(steps) == 0 {
		return "nothing"
	}
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = string(s.Action) + " certificate " + s.Certificate
		if s.Service != "" {
			out[i] = string(s.Action) + " mapping " + s.Service + " " + s.URL
		}
		if s.Result != "" {
			out[i] += " (" + s.Result + ")"
		}
	}
	return strings.Join(out, ", ")
}

// Applier runs plans.
type Applier struct {
	Remote *Remote
	// State, with StatePath, records each certificate step as it succeeds.
	State     *StateFile
	StatePath string
	Progress  Progress
	Now       func() time.Time
	// Records, when set, receive each certificate's expiry and fingerprint once
	// LivePerson holds its p12, for the scheduled expiry watch.
	Records RecordWriter
}

// RecordWriter stores certificate records; *certificates.Records satisfies it.
type RecordWriter interface {
	Put(ctx context.Context, account string, rec certificates.Record) (name string, written bool, err error)
}

// Apply runs the plan's steps in order, certificates first, and stops at the first
// failure. Certificate ids learnt from uploads feed the mapping steps after them.
func (a *Applier) Apply(ctx context.Context, p *Plan, remote *State, local []*LocalCert) (*Outcome, error) {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	ids := map[string]lp.CertificateID{}
	for _, c := range remote.Certificates {
		ids[c.Name] = c.ID
	}
	o := &Outcome{}
	dirty := false
	for i, s := range p.Steps {
		if a.Progress != nil {
			a.Progress.Start(s)
		}
		result, err := a.step(ctx, s, ids)
		if a.Progress != nil {
			a.Progress.Done(s, result, err)
		}
		if err != nil {
			o.Failed, o.Err = &p.Steps[i], err
			o.NotDone = append([]Step(nil), p.Steps[i+1:]...)
			break
		}
		s.Result = result
		o.Done = append(o.Done, s)
		if s.Local != nil && a.State != nil {
			a.State.Put(StateRecord{AccountID: p.AccountID, Name: s.Certificate, ID: string(ids[s.Certificate]),
				Fingerprint: s.Local.Fingerprint, NotAfter: s.Local.NotAfter(), AppliedAt: now().UTC()})
			dirty = true
			// Written after every certificate step, so a run that stops later still
			// remembers what it uploaded.
			if err := a.writeState(); err != nil {
				o.StateErr = err
			}
		}
	}
	// Certificates already in sync are recorded too: where LivePerson reports no
	// expiry, the record is what lets the next run see that nothing changed.
	if a.State != nil && o.Failed == nil {
		for _, lc := range local {
			id, ok := ids[lc.Spec.Name]
			if rec := a.State.Lookup(p.AccountID, lc.Spec.Name); ok && (rec == nil || rec.ID != string(id) || rec.Fingerprint != lc.Fingerprint) {
				a.State.Put(StateRecord{AccountID: p.AccountID, Name: lc.Spec.Name, ID: string(id),
					Fingerprint: lc.Fingerprint, NotAfter: lc.NotAfter(), AppliedAt: now().UTC()})
				dirty = true
			}
		}
		if dirty {
			if err := a.writeState(); err != nil {
				o.StateErr = err
			}
		}
	}
	if a.Records != nil {
		a.record(ctx, p, local, ids, o, now)
	}
	if o.Failed != nil {
		return o, &ApplyError{Outcome: o}
	}
	return o, nil
}

// record writes the record of every certificate LivePerson now holds the local p12 of:
// those uploaded or replaced by this run, and those the plan found unchanged. One whose
// step failed or was not reached still holds another p12, and is left alone.
func (a *Applier) record(ctx context.Context, p *Plan, local []*LocalCert, ids map[string]lp.CertificateID, o *Outcome, now func() time.Time) {
	pending := map[string]bool{}
	for _, s := range p.Steps {
		if s.Local != nil {
			pending[s.Certificate] = true
		}
	}
	for _, s := range o.Done {
		if s.Local != nil {
			pending[s.Certificate] = false
		}
	}
	for _, lc := range local {
		id, ok := ids[lc.Spec.Name]
		if !ok || pending[lc.Spec.Name] {
			continue
		}
		name, written, err := a.Records.Put(ctx, p.AccountID, certificates.Record{ID: id, Name: lc.Spec.Name,
			Fingerprint: lc.Fingerprint, NotAfter: lc.NotAfter().UTC(), RecordedAt: now().UTC()})
		switch {
		case err != nil && o.RecordErr == nil:
			o.RecordErr = fmt.Errorf("certificate %s: %w", lc.Spec.Name, err)
		case written:
			o.Recorded = append(o.Recorded, name)
		}
	}
}

func (a *Applier) writeState() error {
	if a.StatePath == "" {
		return nil
	}
	return a.State.Write(a.StatePath)
}

func (a *Applier) step(ctx context.Context, s Step, ids map[string]lp.CertificateID) (string, error) {
	switch s.Action {
	case ActionUpload, ActionReplace:
		up := lp.CertificateUpload{Name: s.Certificate, Password: s.Local.Password, P12: s.Local.Data}
		var c lp.Certificate
		var err error
		if s.Action == ActionUpload {
			c, err = a.Remote.Upload(ctx, up)
		} else {
			c, err = a.Remote.Replace(ctx, s.CertID, up)
		}
		if err != nil {
			return "", err
		}
		if c.ID == "" {
			c.ID = s.CertID
		}
		ids[s.Certificate] = c.ID
		status := c.Status
		if status == "" {
			status = "status not reported"
		}
		return fmt.Sprintf("id %s, %s, expires %s", c.ID, status, day(s.Local.NotAfter())), nil
	case ActionCreate:
		id, ok := ids[s.Certificate]
		if !ok {
			return "", fmt.Errorf("certificate %s has no id (its upload did not happen)", s.Certificate)
		}
		m, err := a.Remote.Activate(ctx, id, lp.Activation{ServiceName: s.Service, URL: s.URL, ValidateURL: s.ValidateURL})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("mapping id %s", m.ID), nil
	case ActionRepoint:
		id, ok := ids[s.Certificate]
		if !ok {
			return "", fmt.Errorf("certificate %s has no id (its upload did not happen)", s.Certificate)
		}
		m, err := a.Remote.Repoint(ctx, s.MappingID, id)
		if err != nil {
			return "", err
		}
		if m.ID == "" {
			m.ID = s.MappingID
		}
		return fmt.Sprintf("mapping id %s now uses certificate id %s", m.ID, id), nil
	}
	return "", fmt.Errorf("unknown step %q", s.Action)
}
