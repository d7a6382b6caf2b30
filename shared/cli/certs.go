package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

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
	// ExpirySource is "liveperson", "p12" (recorded by apply from the p12 uploaded) or
	// absent when the expiry is unknown.
	ExpirySource string `json:"expirySource,omitempty"`
}

func daysLeft(exp, now time.Time) int {
	d := exp.Sub(now)
	n := int(d / (24 * time.Hour))
	if d < 0 && d%(24*time.Hour) != 0 {
		n-- // expired part of a day ago is day -1
	}
	return n
}

func viewOf(c lp.Certificate, rec *mtlsconf.StateRecord, now time.Time) certView {
	v := certView{ID: string(c.ID), Name: c.Name, DisplayName: c.DisplayName, Status: c.Status, Available: c.Available()}
	exp, src := c.ExpiresAt, "liveperson"
	if exp.IsZero() && rec != nil && rec.ID == string(c.ID) && !rec.NotAfter.IsZero() {
		exp, src = rec.NotAfter, "p12"
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
	marked := false
	for _, c := range certs {
		v := viewOf(c, state.Lookup(acct, c.Name), now)
		marked = marked || v.ExpirySource == "p12"
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
			exp, left = (*v.ExpirationDate)[:10], fmt.Sprint(*v.DaysLeft)
			if v.ExpirySource == "p12" {
				exp += "*"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, v.ID, v.Status, exp, left)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if marked {
		fmt.Fprintln(r.env.Stdout, "* LivePerson reports no expiry: read from the p12 last applied (state file)")
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
