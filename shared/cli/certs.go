package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/lpmtls/lpmtls/shared/certificates"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/mtlsconf"
	"github.com/lpmtls/lpmtls/shared/obs"
)

func certsListFlags(fs *flag.FlagSet) func(context.Context, *runner) error {
	out := fs.String("o", "table", "output format: table or json")
	file := fs.String("f", "", "an lpmtls configuration file, whose state file supplies expiries LivePerson does not report")
	state := fs.String("state", "", "state file supplying expiries LivePerson does not report")
	return func(ctx context.Context, r *runner) error {
		if *file != "" && *state == "" {
			*state = mtlsconf.DefaultStatePath(*file)
		}
		return r.certsList(ctx, *out, *state)
	}
}

// certsUploadFlags is certs upload, or certs replace when replace is set.
func certsUploadFlags(replace bool) func(fs *flag.FlagSet) func(context.Context, *runner) error {
	return func(fs *flag.FlagSet) func(context.Context, *runner) error {
		name := fs.String("name", "", "certificate name in LivePerson (required)")
		file := fs.String("p12", "", "path of the p12/pfx file (required)")
		pwEnv := fs.String("password-env", "", "environment variable holding the p12 password (default: ask on the terminal)")
		return func(ctx context.Context, r *runner) error {
			if *name == "" || *file == "" {
				return usagef("--name and --p12 are required")
			}
			return r.certsUpload(ctx, *name, *file, *pwEnv, replace)
		}
	}
}

type certView struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	DisplayName    string  `json:"displayName,omitempty"`
	Status         string  `json:"status"`
	Available      bool    `json:"available"`
	ExpirationDate *string `json:"expirationDate"`
	DaysLeft       *int    `json:"daysLeft"`
	// ExpirySource is where the expiry comes from, absent when it is unknown.
	ExpirySource string `json:"expirySource,omitempty"`
}

// Where certs list found an expiry, in the order it looks.
const (
	sourceLivePerson = "liveperson"
	// sourceRecord is the SSM record apply wrote, the one the scheduled watch reads.
	sourceRecord = "ssm-record"
	// sourceState is the local state file of apply, for a machine without the prefix.
	sourceState = "state-file"
)

// sourceMarks flag, in the table, an expiry LivePerson did not report.
var sourceMarks = map[string]string{sourceRecord: "*", sourceState: "+"}

func daysLeft(exp, now time.Time) int {
	d := exp.Sub(now)
	n := int(d / (24 * time.Hour))
	if d < 0 && d%(24*time.Hour) != 0 {
		n-- // expired part of a day ago is day -1
	}
	return n
}

// viewOf takes LivePerson's expiry, else the SSM record's, else the state file's; a
// record or state entry of another id (the name made again) does not count.
func viewOf(c lp.Certificate, rec *certificates.Record, st *mtlsconf.StateRecord, now time.Time) certView {
	v := certView{ID: string(c.ID), Name: c.Name, DisplayName: c.DisplayName, Status: c.Status, Available: c.Available()}
	exp, src := c.ExpiresAt, sourceLivePerson
	switch {
	case !exp.IsZero():
	case rec != nil && rec.Matches(c):
		exp, src = rec.NotAfter, sourceRecord
	case st != nil && st.ID == string(c.ID) && !st.NotAfter.IsZero():
		exp, src = st.NotAfter, sourceState
	}
	if !exp.IsZero() {
		s := exp.UTC().Format(time.RFC3339)
		n := daysLeft(exp, now)
		v.ExpirationDate, v.DaysLeft, v.ExpirySource = &s, &n, src
	}
	return v
}

func (r *runner) certsList(ctx context.Context, format, statePath string) error {
	if format != "table" && format != "json" {
		return usagef("-o must be table or json")
	}
	state := &mtlsconf.StateFile{}
	if statePath != "" {
		var err error
		if state, err = mtlsconf.ReadState(statePath); err != nil {
			return err
		}
	}
	remote, err := r.connect(ctx)
	if err != nil {
		return err
	}
	acct, certs, err := remote.Certificates(ctx)
	if err != nil {
		return err
	}
	now := r.env.Now()
	views := make([]certView, 0, len(certs))
	used := map[string]bool{}
	for _, c := range certs {
		var rec *certificates.Record
		if c.ExpiresAt.IsZero() && r.records != nil {
			if rec, err = r.records.Get(ctx, acct, c.Name); err != nil {
				fmt.Fprintf(r.env.Stderr, "warning: the expiry record of certificate %s could not be read from SSM: %v\n", c.Name, err)
			}
		}
		v := viewOf(c, rec, state.Lookup(acct, c.Name), now)
		used[v.ExpirySource] = true
		views = append(views, v)
	}
	if format == "json" {
		enc := json.NewEncoder(r.env.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(views)
	}
	if len(views) == 0 {
		fmt.Fprintln(r.env.Stdout, "No certificates.")
		return nil
	}
	tw := tabwriter.NewWriter(r.env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tSTATUS\tEXPIRES\tDAYS LEFT")
	for _, v := range views {
		exp, left := "unknown", "unknown"
		if v.ExpirationDate != nil {
			exp, left = (*v.ExpirationDate)[:10]+sourceMarks[v.ExpirySource], fmt.Sprint(*v.DaysLeft)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, v.ID, v.Status, exp, left)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if used[sourceRecord] {
		fmt.Fprintf(r.env.Stdout, "* LivePerson reports no expiry: read from the p12 that apply recorded in SSM under %s (what the scheduled expiry watch uses)\n", r.cfg.CachePrefix)
	}
	if used[sourceState] {
		fmt.Fprintln(r.env.Stdout, "+ LivePerson reports no expiry: read from the p12 last applied from this machine (state file); the scheduled expiry watch cannot see it")
	}
	return nil
}

func (r *runner) certsUpload(ctx context.Context, name, file, pwEnv string, replace bool) error {
	pw, err := r.password(pwEnv, file)
	if err != nil {
		return err
	}
	obs.RegisterSecret(pw)
	abs, _ := filepath.Abs(file)
	src := pwEnv
	if src == "" {
		src = "the password typed"
	}
	lc, err := mtlsconf.OpenCertificate(mtlsconf.CertSpec{Name: name, P12: abs, PasswordEnv: src}, "",
		func(string) (string, bool) { return pw, true })
	if err != nil {
		return err
	}
	if lc.NotAfter().Before(r.env.Now()) {
		return fmt.Errorf("%s expired on %s; renew the certificate first", file, lc.NotAfter().Format("2006-01-02"))
	}
	remote, err := r.connect(ctx)
	if err != nil {
		return err
	}
	r.progress("reading the account's certificates")
	_, certs, err := remote.Certificates(ctx)
	if err != nil {
		return err
	}
	var existing *lp.Certificate
	for i := range certs {
		if certs[i].Name == name {
			existing = &certs[i]
		}
	}
	up := lp.CertificateUpload{Name: name, Password: pw, P12: lc.Data}
	var c lp.Certificate
	switch {
	case replace && existing == nil:
		return fmt.Errorf("no certificate named %s in the account (lpmtls certs list shows the names); use lpmtls certs upload for a new one", name)
	case !replace && existing != nil:
		return fmt.Errorf("a certificate named %s already exists (id %s); use lpmtls certs replace to give it a new p12", name, existing.ID)
	case replace:
		r.progress("replacing certificate %s (id %s)", name, existing.ID)
		c, err = remote.Replace(ctx, existing.ID, up)
		if c.ID == "" {
			c.ID = existing.ID
		}
	default:
		r.progress("uploading certificate %s", name)
		c, err = remote.Upload(ctx, up)
	}
	if err != nil {
		return err
	}
	verb := "uploaded"
	if replace {
		verb = "replaced"
	}
	fmt.Fprintf(r.env.Stdout, "%s certificate %s: id %s, status %s, CN %q, expires %s (%d days left)\n", verb, name, c.ID,
		orUnknown(c.Status), lc.Bundle.CommonName(), lc.NotAfter().Format("2006-01-02"), daysLeft(lc.NotAfter(), r.env.Now()))
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
