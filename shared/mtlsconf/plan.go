package mtlsconf

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/lpmtls/lpmtls/shared/lp"
)

// Action is what a step does.
type Action string

const (
	ActionUpload  Action = "upload"  // a certificate not in the account yet
	ActionReplace Action = "replace" // a new p12 under an existing certificate's id
	ActionCreate  Action = "create"  // a mapping (activate)
	ActionRepoint Action = "repoint" // a mapping pointed at another certificate, or disabled
)

// Step is one change.
type Step struct {
	Action Action
	// Certificate is the certificate's name (the one mapped, for mapping steps).
	Certificate string
	// Local is the p12 to upload (certificate steps).
	Local *LocalCert
	// CertID is the certificate replaced; for a repoint, the one it pointed at.
	CertID lp.CertificateID
	// Mapping steps.
	Service     string
	URL         string
	ValidateURL bool
	MappingID   lp.MappingID
	// Reason says why the step is needed.
	Reason string
	// Result is what LivePerson answered, once the step is done (ids).
	Result string
}

// Describe is the step in one line.
func (s Step) Describe() string {
	switch s.Action {
	case ActionUpload:
		return fmt.Sprintf("upload certificate %s (%s, CN %q, expires %s)", s.Certificate, s.Local.Path,
			s.Local.Bundle.CommonName(), day(s.Local.NotAfter()))
	case ActionReplace:
		return fmt.Sprintf("replace certificate %s (id %s) with %s (CN %q, expires %s): %s", s.Certificate, s.CertID,
			s.Local.Path, s.Local.Bundle.CommonName(), day(s.Local.NotAfter()), s.Reason)
	case ActionCreate:
		return fmt.Sprintf("create mapping %s %s -> certificate %s", s.Service, s.URL, s.Certificate)
	default:
		return fmt.Sprintf("repoint mapping %s %s (id %s) -> certificate %s: %s", s.Service, s.URL, s.MappingID, s.Certificate, s.Reason)
	}
}

// Plan is what apply would do.
type Plan struct {
	AccountID string
	Steps     []Step
	// Unchanged describes what already matches, one line each.
	Unchanged []string
	// Warnings are facts worth knowing that do not stop apply (e.g. a certificate
	// close to expiry).
	Warnings []string
}

// Empty reports whether nothing needs to change.
func (p *Plan) Empty() bool { return len(p.Steps) == 0 }

// Summary counts the steps.
func (p *Plan) Summary() string {
	n := map[Action]int{}
	for _, s := range p.Steps {
		n[s.Action]++
	}
	return fmt.Sprintf("%d certificate(s) to upload, %d to replace, %d mapping(s) to create, %d to repoint, %d unchanged",
		n[ActionUpload], n[ActionReplace], n[ActionCreate], n[ActionRepoint], len(p.Unchanged))
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// sameExpiry compares LivePerson's expiry with the p12's. LivePerson's format is not
// documented: it may keep only the date, or milliseconds.
func sameExpiry(remote, local time.Time) bool {
	r, l := remote.UTC(), local.UTC()
	if r.Truncate(time.Second).Equal(l.Truncate(time.Second)) {
		return true
	}
	midnight := r.Hour() == 0 && r.Minute() == 0 && r.Second() == 0 && r.Nanosecond() == 0
	return midnight && day(r) == day(l)
}

// Input is what a plan is computed from.
type Input struct {
	File   *File
	Local  []*LocalCert
	Remote *State
	State  *StateFile
	// ServiceID resolves a service name to a mapping object's serviceId.
	ServiceID func(name string) (string, bool)
	// KnownServices lists the names ServiceID knows, for an error message.
	KnownServices []string
	Now           time.Time
	// WarnDays is the window in which a certificate's coming expiry is warned about.
	WarnDays int
}

// MakePlan compares the file with LivePerson. It fails, before anything is changed,
// when the file names what cannot be done: an account other than the credentials',
// a certificate neither declared nor in the account, an unknown service, an expired
// p12 that would be uploaded.
func MakePlan(in Input) (*Plan, error) {
	f, st := in.File, in.Remote
	p := &Plan{AccountID: st.AccountID}
	if f.AccountID != "" && f.AccountID != st.AccountID {
		return nil, fmt.Errorf("%s is for account %s but the credentials are for account %s", f.Path, f.AccountID, st.AccountID)
	}
	var problems []string
	planned := map[string]bool{} // certificate names that will exist after the certificate steps
	for _, lc := range in.Local {
		name := lc.Spec.Name
		planned[name] = true
		remote := st.CertByName(name)
		step := Step{Certificate: name, Local: lc}
		switch {
		case remote == nil:
			step.Action = ActionUpload
		default:
			step.CertID = remote.ID
			step.Reason = replaceReason(remote, lc, in.State, st.AccountID)
			if step.Reason != "" {
				step.Action = ActionReplace
			}
		}
		left := lc.NotAfter().Sub(in.Now)
		if step.Action != "" && left <= 0 {
			problems = append(problems, fmt.Sprintf("certificate %s: %s expired on %s; renew it before applying", name, lc.Path, day(lc.NotAfter())))
			continue
		}
		if left <= 0 {
			p.Warnings = append(p.Warnings, fmt.Sprintf("certificate %s expired on %s: renew %s", name, day(lc.NotAfter()), lc.Path))
		} else if in.WarnDays > 0 && left < time.Duration(in.WarnDays)*24*time.Hour {
			p.Warnings = append(p.Warnings, fmt.Sprintf("certificate %s expires in %d day(s), on %s", name, int(left.Hours()/24), day(lc.NotAfter())))
		}
		if step.Action == "" {
			p.Unchanged = append(p.Unchanged, fmt.Sprintf("certificate %s (id %s, expires %s)", name, remote.ID, day(lc.NotAfter())))
			continue
		}
		p.Steps = append(p.Steps, step)
	}

	for _, m := range f.Mappings {
		sid, ok := in.ServiceID(m.Service)
		if !ok {
			problems = append(problems, fmt.Sprintf("mapping %s %s: unknown service %q (known: %s; LP_SERVICE_IDS adds others)",
				m.Service, m.URL, m.Service, strings.Join(in.KnownServices, ", ")))
			continue
		}
		cert := st.CertByName(m.Certificate)
		if cert == nil && !planned[m.Certificate] {
			problems = append(problems, fmt.Sprintf("mapping %s %s: certificate %q is neither declared in the file nor in account %s",
				m.Service, m.URL, m.Certificate, st.AccountID))
			continue
		}
		cur := findMapping(st.Mappings, sid, m.URL)
		step := Step{Certificate: m.Certificate, Service: m.Service, URL: m.URL, ValidateURL: m.ValidateURL}
		switch {
		case cur == nil:
			step.Action = ActionCreate
		case cert != nil && cur.CertificationID == cert.ID && cur.Enable:
			p.Unchanged = append(p.Unchanged, fmt.Sprintf("mapping %s %s -> certificate %s (id %s)", m.Service, m.URL, m.Certificate, cur.ID))
			continue
		default:
			step.Action, step.MappingID, step.CertID = ActionRepoint, cur.ID, cur.CertificationID
			switch {
			case cert != nil && cur.CertificationID == cert.ID:
				step.Reason = "it is disabled"
			default:
				was := string(cur.CertificationID)
				if c := st.CertByID(cur.CertificationID); c != nil {
					was = c.Name + " (id " + was + ")"
				}
				step.Reason = "it points at certificate " + was
			}
		}
		p.Steps = append(p.Steps, step)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, &PlanError{Problems: problems}
	}
	return p, nil
}

// PlanError lists what makes the file impossible to apply; nothing was changed.
type PlanError struct{ Problems []string }

func (e *PlanError) Error() string { return strings.Join(e.Problems, "; ") }

// replaceReason says why the p12 must replace LivePerson's copy, "" when it need not.
func replaceReason(remote *lp.Certificate, lc *LocalCert, st *StateFile, account string) string {
	rec := st.Lookup(account, lc.Spec.Name)
	if rec != nil && rec.ID != string(remote.ID) {
		rec = nil // the certificate was deleted and made again elsewhere: the record is stale
	}
	switch {
	case !remote.ExpiresAt.IsZero() && !sameExpiry(remote.ExpiresAt, lc.NotAfter()):
		return fmt.Sprintf("LivePerson's copy expires %s, the p12 file %s", day(remote.ExpiresAt), day(lc.NotAfter()))
	case rec != nil && rec.Fingerprint != lc.Fingerprint:
		return "the p12 file holds another certificate than the one last applied"
	case rec == nil && remote.ExpiresAt.IsZero():
		return "LivePerson does not report its expiry and the state file has no record of it, so it cannot be compared"
	case !remote.Available():
		return "LivePerson reports status " + remote.Status
	}
	return ""
}

// findMapping returns the live object for (serviceId, url), preferring an enabled one.
func findMapping(ms []lp.MappingObject, sid, url string) *lp.MappingObject {
	var found *lp.MappingObject
	for i := range ms {
		m := &ms[i]
		if m.Deleted || m.ServiceID != sid || m.URL != url {
			continue
		}
		if m.Enable {
			return m
		}
		if found == nil {
			found = m
		}
	}
	return found
}
