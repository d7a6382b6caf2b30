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
		return func(ctx context.Context, r *runner) error {
			if *file == "" {
				return usagef("-f FILE is required")
			}
			return r.declarative(ctx, *file, *state, apply)
		}
	}
}

func (r *runner) declarative(ctx context.Context, path, statePath string, apply bool) error {
	f, err := mtlsconf.Load(path)
	if err != nil {
		return err
	}
	local, err := f.OpenCertificates(r.env.LookupEnv)
	if err != nil {
		return err
	}
	for _, lc := range local {
		obs.RegisterSecret(lc.Password)
	}
	if statePath == "" {
		statePath = mtlsconf.DefaultStatePath(path)
	}
	state, err := mtlsconf.ReadState(statePath)
	if err != nil {
		return err
	}
	remote, err := r.connect(ctx)
	if err != nil {
		return err
	}
	r.progress("reading the account's certificates and mappings")
	st, err := remote.Read(ctx, len(f.Mappings) > 0)
	if err != nil {
		return err
	}
	plan, err := mtlsconf.MakePlan(mtlsconf.Input{File: f, Local: local, Remote: st, State: state,
		ServiceID: r.lp.ServiceID, KnownServices: r.knownServices(), Now: r.env.Now(), WarnDays: WarnDays})
	if err != nil {
		return err
	}
	out := r.env.Stdout
	for _, w := range plan.Warnings {
		fmt.Fprintf(r.env.Stderr, "warning: %s\n", w)
	}
	if plan.Empty() {
		fmt.Fprintf(out, "No changes: account %s matches %s (%d unchanged).\n", plan.AccountID, path, len(plan.Unchanged))
		if apply {
			// Records certificates in sync that the state file did not know yet.
			a := &mtlsconf.Applier{Remote: remote, State: state, StatePath: statePath, Now: r.env.Now}
			if o, _ := a.Apply(ctx, plan, st, local); o != nil && o.StateErr != nil {
				fmt.Fprintf(r.env.Stderr, "warning: %v\n", o.StateErr)
			}
		}
		return nil
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
		return nil
	}
	fmt.Fprintf(out, "Applying to account %s: %s.\n", plan.AccountID, plan.Summary())
	a := &mtlsconf.Applier{Remote: remote, State: state, StatePath: statePath, Progress: r.stepPrinter(), Now: r.env.Now}
	o, err := a.Apply(ctx, plan, st, local)
	if o != nil && o.StateErr != nil {
		fmt.Fprintf(r.env.Stderr, "warning: the changes were made but %v\n", o.StateErr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Applied %d change(s) in %d LivePerson call(s).\n", len(o.Done), remote.Calls)
	return nil
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
