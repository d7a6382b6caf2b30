package lp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Discover asks CSDS for the account's service domains. CSDS needs no authentication.
// Entries with an unusable baseURI are an error for the services this package calls and
// are dropped for the others, so one odd unrelated entry cannot break every forward.
func (c *Client) Discover(ctx context.Context, accountID string) (Domains, error) {
	const op = "csds"
	if accountID == "" {
		return nil, &Error{Kind: KindDiscovery, Op: op, Message: "account id is empty"}
	}
	u := c.opts.CSDSURL + "/api/account/" + url.PathEscape(accountID) + "/service/baseURI.json?version=1.0"
	req, err := c.newRequest(ctx, op, http.MethodGet, u, nil)
	if err != nil {
		err.(*Error).Kind = KindDiscovery
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(op, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := c.responseError(op, resp)
		e.Kind = KindDiscovery
		e.RetryAfter = retryAfter(resp.Header, c.now())
		e.Message = joinMessage(fmt.Sprintf("CSDS answered HTTP %d", resp.StatusCode), lpMessage(e.Body))
		return nil, e
	}
	body, err := readAPIBody(ctx, op, resp)
	if err != nil {
		if e, ok := err.(*Error); ok && e.Kind == KindGateway {
			e.Kind = KindDiscovery
		}
		return nil, err
	}
	fail := func(msg string) (Domains, error) {
		return nil, &Error{Kind: KindDiscovery, Op: op, Status: resp.StatusCode, Message: msg, Body: clipBody(body)}
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
	return d, nil
}

func clipBody(b []byte) []byte {
	if len(b) > maxErrorBody {
		return b[:maxErrorBody]
	}
	return b
}
