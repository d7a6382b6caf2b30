package lp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// CheckMappings asks the gateway which (serviceName, url) pairs have a certificate
// mapping for the account. No pairs means no call: the gateway is rate limited.
func (c *Client) CheckMappings(ctx context.Context, auth Auth, pairs []Mapping) ([]MappingResult, error) {
	const op = "mapping"
	if len(pairs) == 0 {
		return []MappingResult{}, nil
	}
	if err := auth.check(op); err != nil {
		return nil, err
	}
	host, err := auth.Domains.Host(c.opts.MappingService)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(pairs)
	if err != nil {
		return nil, badRequest(op, "cannot encode mapping pairs")
	}
	path := strings.ReplaceAll(c.opts.MappingPath, "{accountId}", url.PathEscape(auth.AccountID))
	status, raw, err := c.call(ctx, apiCall{
		op: op, method: http.MethodPost, url: "https://" + host + path,
		contentType: "application/json", bearer: auth.Bearer, body: body,
		reject: c.apiReject(op, "mapping check", auth.Bearer),
	})
	if err != nil {
		return nil, err
	}
	var out []MappingResult
	if err := json.Unmarshal(raw, &out); err != nil || out == nil {
		return nil, scrub(&Error{Kind: KindGateway, Op: op, Status: status,
			Message: "mapping check answer is not a JSON array", Body: clipBody(raw)}, auth.Bearer)
	}
	return out, nil
}
