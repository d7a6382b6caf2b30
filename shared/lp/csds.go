package lp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// Discover asks CSDS for the account's service domains. CSDS needs no authentication.
// Entries with an unusable baseURI are an error for the services this package calls and
// are dropped for the others, so one odd unrelated entry cannot break every forward.
// An answer that leaves out a service lpmtls calls (the mTLS gateway, the mapping
// check's service, and the login service of method; "" needs none) is an error too,
// not a list to cache: every call needing that service would fail until it expired.
func (c *Client) Discover(ctx context.Context, accountID string, method AuthMethod) (Domains, error) {
	const op = "csds"
	if accountID == "" {
		return nil, &Error{Kind: KindDiscovery, Op: op, Message: "account id is empty"}
	}
	status, body, err := c.call(ctx, apiCall{
		op: op, method: http.MethodGet,
		url: c.opts.CSDSURL + "/api/account/" + url.PathEscape(accountID) + "/service/baseURI.json?version=1.0",
		reject: func(e *Error, h http.Header) *Error {
			e.Kind = KindDiscovery
			e.RetryAfter = retryAfter(h, c.now())
			e.Message = joinMessage(fmt.Sprintf("CSDS answered HTTP %d", e.Status), lpMessage(e.Body))
			return e
		},
	})
	if err != nil {
		// A request that cannot be built or an unreadable answer is a discovery failure;
		// a timeout or a network failure keeps its kind, which says whether to retry.
		var e *Error
		if errors.As(err, &e) && e.Kind != KindTimeout && e.Kind != KindNetwork {
			e.Kind = KindDiscovery
		}
		return nil, err
	}
	fail := func(msg string) (Domains, error) {
		return nil, &Error{Kind: KindDiscovery, Op: op, Status: status, Message: msg, Body: clipBody(body)}
	}
	var doc struct {
		BaseURIs *[]struct {
			Service string `json:"service"`
			Account string `json:"account"`
			BaseURI string `json:"baseURI"`
		} `json:"baseURIs"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fail("CSDS answer is not the expected JSON")
	}
	if doc.BaseURIs == nil {
		return fail("CSDS answer has no baseURIs")
	}
	if len(*doc.BaseURIs) == 0 {
		return fail("CSDS lists no services for this account")
	}
	needed := map[string]bool{
		ServiceMTLSGateway: true, ServiceAgentVep: true, ServiceSentinel: true,
		c.opts.MappingService: true,
	}
	d := make(Domains, len(*doc.BaseURIs))
	for _, b := range *doc.BaseURIs {
		if b.Service == "" {
			continue
		}
		if !validHost(b.BaseURI) {
			if needed[b.Service] {
				return fail(fmt.Sprintf("CSDS baseURI for %s is not a host[:port]", clip(b.Service)))
			}
			continue
		}
		if _, dup := d[b.Service]; !dup {
			d[b.Service] = b.BaseURI
		}
	}
	if len(d) == 0 {
		return fail("CSDS lists no usable services for this account")
	}
	for _, svc := range []string{ServiceMTLSGateway, c.opts.MappingService, method.Service()} {
		if svc != "" && d[svc] == "" {
			return fail("CSDS lists no " + clip(svc) + " for this account")
		}
	}
	return d, nil
}

func clipBody(b []byte) []byte {
	if len(b) > maxErrorBody {
		return b[:maxErrorBody]
	}
	return b
}
