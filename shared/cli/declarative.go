package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/lpmtls/lpmtls/shared/mtlsconf"
	"github.com/lpmtls/lpmtls/shared/obs"
)

// WarnDays is the window in which plan and apply warn of a coming expiry.
const WarnDays = 30

// declarativeFlags is apply when apply is set, else plan.
func declarativeFlags(apply bool) func(fs *flag.FlagSet) func(context.Context, *runner) error {
	return func(fs *flag.FlagSet) func(context.Context, *runner) error {
		file := fs.String("f", "", "the configuration file, e.g. mtls.yaml (required)")
		state := fs.String("state", "", "state file (default .lpmtls-state.json beside the configuration file)")
		detailed := new(bool)
		if !apply {
			fs.BoolVar(detailed, "detailed-exitcode", false, "exit 0 when there are no changes, 2 when changes are pending, 1 on error")
		}
		return func(ctx context.Context, r *runner) error {
			if *file == "" {
				return usagef("-f FILE is required")
			}
			pending, err := r.declarative(ctx, *file, *state, apply)
			if err == nil && pending && *detailed {
				return &quietExit{code: ExitChanges}
			}
			return err
		}
	}
}

// declarative runs plan or apply; pending reports that plan found changes to make.
func (r *runner) declarative(ctx context.Context, path, statePath string, apply bool) (pending bool, err error) {
	f, err := mtlsconf.Load(path)
	if err != nil {
		return false, err
	}
	local, err := f.OpenCertificates(r.env.LookupEnv)
	if err != nil {
		return false, err
	}
	for _, lc := range local {
		obs.RegisterSecret(lc.Password)
	}
	if statePath == "" {
		statePath = mtlsconf.DefaultStatePath(path)
	}
	state, err := mtlsconf.ReadState(statePath)
	if err != nil {
		return false, err
	}
	remote, err := r.connect(ctx)
	if err != nil {
		return false, err
	}
	r.progress("reading the account's certificates and mappings")
	st, err := remote.Read(ctx, len(f.Mappings) > 0)
	if err != nil {
		return false, err
	}
	plan, err := mtlsconf.MakePlan(mtlsconf.Input{File: f, Local: local, Remote: st, State: state,
		ServiceID: r.lp.ServiceID, KnownServices: r.knownServices(), Now: r.env.Now(), WarnDays: WarnDays})
	if err != nil {
		return false, err
	}
	out := r.env.Stdout
	for _, w := range plan.Warnings {
		fmt.Fprintf(r.env.Stderr, "warning: %s\n", w)
	}
	if plan.Empty() {
		fmt.Fprintf(out, "No changes: account %s matches %s (%d unchanged).\n", plan.AccountID, path, len(plan.Unchanged))
		if apply {
			// Records certificates in sync that the state file or SSM did not know yet.
			o, _ := r.applier(remote, state, statePath, nil).Apply(ctx, plan, st, local)
			if o != nil && o.StateErr != nil {
				fmt.Fprintf(r.env.Stderr, "warning: %v\n", o.StateErr)
			}
			r.reportRecords(plan.AccountID, st, local, o)
		}
		return false, nil
	}
	if !apply {
		fmt.Fprintf(out, "Plan for account %s:\n", plan.AccountID)
		for _, s := range plan.Steps {
			fmt.Fprintf(out, "  %s %s\n", mark(s.Action), s.Describe())
		}
		for _, u := range plan.Unchanged {
			fmt.Fprintf(out, "  = %s\n", u)
		}
		fmt.Fprintf(out, "%s. Run lpmtls apply -f %s to make these changes.\n", plan.Summary(), path)
		return true, nil
	}
	fmt.Fprintf(out, "Applying to account %s: %s.\n", plan.AccountID, plan.Summary())
	o, err := r.applier(remote, state, statePath, r.stepPrinter()).Apply(ctx, plan, st, local)
	if o != nil && o.StateErr != nil {
		fmt.Fprintf(r.env.Stderr, "warning: the changes were made but %v\n", o.StateErr)
	}
	r.reportRecords(plan.AccountID, st, local, o)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(out, "Applied %d change(s) in %d LivePerson call(s).\n", len(o.Done), remote.Calls)
	return false, nil
}

func (r *runner) applier(remote *mtlsconf.Remote, state *mtlsconf.StateFile, statePath string, p mtlsconf.Progress) *mtlsconf.Applier {
	a := &mtlsconf.Applier{Remote: remote, State: state, StatePath: statePath, Progress: p, Now: r.env.Now}
	if r.records != nil { // a nil *Records in the interface would not read as nil
		a.Records = r.records
	}
	return a
}

// reportRecords says what apply recorded in SSM for the scheduled expiry watch, and
// warns when the watch will be blind to a certificate: LivePerson reports no expiry for
// it and no record could be written.
func (r *runner) reportRecords(account string, st *mtlsconf.State, local []*mtlsconf.LocalCert, o *mtlsconf.Outcome) {
	if o == nil {
		return
	}
	if len(o.Recorded) > 0 {
		fmt.Fprintf(r.env.Stdout, "Recorded the expiry of %d certificate(s) for the scheduled expiry watch under %s/%s/certificates/.\n",
			len(o.Recorded), r.cfg.CachePrefix, account)
	}
	if o.RecordErr != nil {
		fmt.Fprintf(r.env.Stderr, "warning: the expiry could not be recorded in SSM (%v); where LivePerson reports none, the "+
			"scheduled expiry watch counts the certificate in CertificatesExpiryUnknown: run apply again\n", o.RecordErr)
	}
	if r.records != nil {
		return
	}
	for _, lc := range local {
		if c := st.CertByName(lc.Spec.Name); c != nil && c.ExpiresAt.IsZero() {
			fmt.Fprintf(r.env.Stderr, "warning: LivePerson reports no expiry for certificate %s and LP_CACHE_PARAMETER_PREFIX "+
				"is not set, so apply recorded none: the scheduled expiry watch counts it in CertificatesExpiryUnknown "+
				"(set the variable to the stack's CacheParameterPrefix and apply again)\n", lc.Spec.Name)
		}
	}
}

func mark(a mtlsconf.Action) string {
	if a == mtlsconf.ActionUpload || a == mtlsconf.ActionCreate {
		return "+"
	}
	return "~"
}

// stepPrinter prints "… step" on a terminal before each step, and one line per step
// when it ends: on stdout when done, on stderr when it failed.
func (r *runner) stepPrinter() mtlsconf.Progress { return printer{r} }

type printer struct{ r *runner }

func (p printer) Start(s mtlsconf.Step) { p.r.progress("%s", s.Describe()) }

func (p printer) Done(s mtlsconf.Step, result string, err error) {
	var w io.Writer = p.r.env.Stdout
	m := mark(s.Action)
	if err != nil {
		w, m, result = p.r.env.Stderr, "!", "failed: "+oneLine(err.Error())
	}
	fmt.Fprintf(w, "%s %s: %s\n", m, s.Describe(), result)
}
