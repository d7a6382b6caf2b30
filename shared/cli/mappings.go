package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/mapping"
	"github.com/lpmtls/lpmtls/shared/mtlsconf"
)

// pairFlag collects repeated --pair SERVICE=URL.
type pairFlag []lp.Mapping

func (p *pairFlag) String() string { return "" }

func (p *pairFlag) Set(v string) error {
	service, u, ok := strings.Cut(v, "=")
	if !ok || service == "" || u == "" {
		return fmt.Errorf("--pair takes SERVICE=URL, got %q", v)
	}
	*p = append(*p, lp.Mapping{ServiceName: service, URL: u})
	return nil
}

func mappingsCheckFlags(fs *flag.FlagSet) func(context.Context, *runner) error {
	var pairs pairFlag
	fs.Var(&pairs, "pair", "a SERVICE=URL pair to check (repeatable)")
	service := fs.String("service", "", "service name of a single pair (with --url)")
	u := fs.String("url", "", "URL of a single pair (with --service)")
	file := fs.String("f", "", "file with the pairs: an lpmtls configuration or a JSON array")
	out := fs.String("o", "table", "output format: table or json")
	return func(ctx context.Context, r *runner) error {
		if (*service == "") != (*u == "") {
			return usagef("--service and --url go together")
		}
		if *service != "" {
			pairs = append(pairs, lp.Mapping{ServiceName: *service, URL: *u})
		}
		if *file != "" {
			more, err := pairsFromFile(*file)
			if err != nil {
				return err
			}
			pairs = append(pairs, more...)
		}
		if len(pairs) == 0 {
			return usagef("give pairs with --pair, --service/--url or -f")
		}
		if *out != "table" && *out != "json" {
			return usagef("-o must be table or json")
		}
		return r.mappingsCheck(ctx, pairs, *out)
	}
}

func mappingsActivateFlags(fs *flag.FlagSet) func(context.Context, *runner) error {
	cert := fs.String("certificate", "", "name of a certificate in the account (required)")
	service := fs.String("service", "", "service name, e.g. WEBHOOKS or IDP (required)")
	u := fs.String("url", "", "the exact target URL (required)")
	validate := fs.Bool("validate-url", false, "ask LivePerson to call the URL with the certificate before mapping it")
	return func(ctx context.Context, r *runner) error {
		if *cert == "" || *service == "" || *u == "" {
			return usagef("--certificate, --service and --url are required")
		}
		return r.mappingsActivate(ctx, mtlsconf.MappingSpec{Service: *service, URL: *u, Certificate: *cert, ValidateURL: *validate})
	}
}

func pairsFromFile(path string) ([]lp.Mapping, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		pairs, err := mapping.ParsePairs(t)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return pairs, nil
	}
	f, err := mtlsconf.Parse(path, raw)
	if err != nil {
		return nil, err
	}
	out := make([]lp.Mapping, 0, len(f.Mappings))
	for _, m := range f.Mappings {
		out = append(out, lp.Mapping{ServiceName: m.Service, URL: m.URL})
	}
	return out, nil
}

func (r *runner) mappingsCheck(ctx context.Context, pairs []lp.Mapping, format string) error {
	if err := mapping.ValidatePairs(pairs); err != nil {
		return usagef("%v", err)
	}
	remote, err := r.connect(ctx)
	if err != nil {
		return err
	}
	acct, answers, err := remote.Check(ctx, pairs)
	if err != nil {
		return err
	}
	res := mapping.Merge(acct, pairs, answers)
	if format == "json" {
		enc := json.NewEncoder(r.env.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(r.env.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tURL\tMAPPED")
		for _, m := range res.Mappings {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", m.ServiceName, m.URL, yesNo(m.Configured))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if !res.AllConfigured {
		missing := 0
		for _, m := range res.Mappings {
			if !m.Configured {
				missing++
			}
		}
		return fmt.Errorf("%d of %d pair(s) have no certificate mapping in account %s: create them with lpmtls mappings activate or lpmtls apply", missing, len(pairs), acct)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (r *runner) mappingsActivate(ctx context.Context, spec mtlsconf.MappingSpec) error {
	if err := mapping.ValidatePairs([]lp.Mapping{{ServiceName: spec.Service, URL: spec.URL}}); err != nil {
		return usagef("%v", err)
	}
	remote, err := r.connect(ctx)
	if err != nil {
		return err
	}
	r.progress("reading the account's certificates and mappings")
	st, err := remote.Read(ctx, true)
	if err != nil {
		return err
	}
	f := &mtlsconf.File{Version: 1, Path: "the command line", Mappings: []mtlsconf.MappingSpec{spec}}
	plan, err := mtlsconf.MakePlan(mtlsconf.Input{File: f, Remote: st, State: &mtlsconf.StateFile{},
		ServiceID: r.lp.ServiceID, KnownServices: r.knownServices(), Now: r.env.Now()})
	if err != nil {
		return err
	}
	if plan.Empty() {
		fmt.Fprintf(r.env.Stdout, "already mapped: %s\n", plan.Unchanged[0])
		return nil
	}
	a := &mtlsconf.Applier{Remote: remote, Progress: r.stepPrinter()}
	_, err = a.Apply(ctx, plan, st, nil)
	return err
}
