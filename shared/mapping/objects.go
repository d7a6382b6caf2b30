package mapping

import (
	"context"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/session"
)

// ObjectLister is the part of *lp.Client that reads the account's mapping objects.
type ObjectLister interface {
	ListMappingObjects(ctx context.Context, auth lp.Auth) ([]lp.MappingObject, string, error)
	ServiceName(id string) string
}

// Objects reads the mappings LivePerson holds for the account: the list `lpmtls plan`
// compares mtls.yaml with, which the scheduled run checks when no targets are configured.
type Objects struct {
	LP       ObjectLister
	Sessions Sessions
}

// Enabled is the account's enabled mapping objects as the serviceName/url pairs a check
// takes, each pair once, in LivePerson's order. unnamed lists the serviceIds the service
// table (LP_SERVICE_IDS) has no name for: the mapping check asks by name, so those
// objects cannot be checked and the caller says so.
func (o *Objects) Enabled(ctx context.Context) (pairs []lp.Mapping, unnamed []string, err error) {
	var objs []lp.MappingObject
	err = o.Sessions.Do(ctx, func(ctx context.Context, s session.Session) error {
		var lerr error
		objs, _, lerr = o.LP.ListMappingObjects(ctx, s.Auth)
		return lerr
	})
	if err != nil {
		return nil, nil, err
	}
	seen := map[lp.Mapping]bool{}
	for _, m := range objs {
		if !m.Enable {
			continue
		}
		name := o.LP.ServiceName(m.ServiceID)
		if name == "" {
			unnamed = append(unnamed, m.ServiceID)
			continue
		}
		p := lp.Mapping{ServiceName: name, URL: m.URL}
		if !seen[p] {
			seen[p] = true
			pairs = append(pairs, p)
		}
	}
	return pairs, unnamed, nil
}
