package lp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// CertificateStatusAvailable is the only status LivePerson documents as usable: the
// certificate is in both its vault and its database, and has not expired.
const CertificateStatusAvailable = "Available"

// CertificateID is LivePerson's certificate id. The docs show it as a JSON number on
// certificate objects and as a string in a mapping's certificationId, so both decode.
// It is kept as text: ids are opaque, are put in paths as they are, and an int64 in a
// float-decoding client (JavaScript) loses digits.
type CertificateID string

// UnmarshalJSON accepts a number or a string; null leaves the id empty.
func (id *CertificateID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*id = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = CertificateID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("certificate id is neither a number nor a string: %s", clip(string(b)))
	}
	*id = CertificateID(n.String())
	return nil
}

// MarshalJSON writes a decimal id as a number, as LivePerson's certificate objects do,
// and anything else as a string.
func (id CertificateID) MarshalJSON() ([]byte, error) {
	// Only the canonical spelling: "012" or "+7" parse as integers but are not JSON
	// numbers, and would make the whole document unwritable.
	if n, err := strconv.ParseInt(string(id), 10, 64); err == nil && strconv.FormatInt(n, 10) == string(id) {
		return []byte(id), nil
	}
	return json.Marshal(string(id))
}

// Certificate is one entry of the account's certificate list.
type Certificate struct {
	ID          CertificateID `json:"id"`
	Deleted     bool          `json:"deleted"`
	Name        string        `json:"name"`
	DisplayName string        `json:"displayName"`
	SiteID      string        `json:"siteId"`
	Status      string        `json:"status"`
	// ExpiresAt is the parsed expirationDate; zero when LivePerson sent null, nothing,
	// or a value in no format we know (kept in ExpirationRaw so it can be shown).
	ExpiresAt     time.Time `json:"-"`
	ExpirationRaw string    `json:"-"`
}

// Available reports whether the certificate can serve a mapping now.
func (c Certificate) Available() bool {
	return strings.EqualFold(strings.TrimSpace(c.Status), CertificateStatusAvailable)
}

// UnmarshalJSON reads expirationDate in every form it may take: its format is not
// documented (LivePerson's example is null), so epoch milliseconds as a number or a
// string, RFC 3339 and a bare date are accepted. An unknown form does not fail the
// list: the certificate is still worth showing, with its expiry unknown.
func (c *Certificate) UnmarshalJSON(b []byte) error {
	type plain Certificate
	var raw struct {
		plain
		ExpirationDate json.RawMessage `json:"expirationDate"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*c = Certificate(raw.plain)
	c.ExpiresAt, c.ExpirationRaw = parseExpiration(raw.ExpirationDate)
	return nil
}

// MarshalJSON writes expirationDate back in RFC 3339, with the fraction LivePerson's
// milliseconds may carry so it reads back as the same instant (or the raw text when
// unparsed).
func (c Certificate) MarshalJSON() ([]byte, error) {
	type plain Certificate
	out := struct {
		plain
		ExpirationDate *string `json:"expirationDate"`
	}{plain: plain(c)}
	switch {
	case !c.ExpiresAt.IsZero():
		s := c.ExpiresAt.UTC().Format(time.RFC3339Nano)
		out.ExpirationDate = &s
	case c.ExpirationRaw != "":
		out.ExpirationDate = &c.ExpirationRaw
	}
	return json.Marshal(out)
}

// parseExpiration returns the instant and, when it could not be read, the raw text.
func parseExpiration(b json.RawMessage) (time.Time, string) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return time.Time{}, ""
	}
	text := string(b)
	if b[0] == '"' {
		if json.Unmarshal(b, &text) != nil {
			return time.Time{}, clip(string(b))
		}
	}
	if t, ok := ParseExpiry(text); ok {
		return t, ""
	}
	return time.Time{}, clip(text)
}

// maxExpiryMillis is 9999-12-31T23:59:59.999Z in epoch milliseconds.
const maxExpiryMillis = 253402300799999

// ParseExpiry reads an expiry as epoch milliseconds (or seconds, when the number is too
// small to be milliseconds of this era), RFC 3339, or a date (midnight UTC).
func ParseExpiry(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		// Past the year 9999 an instant has no RFC 3339 form to be written back in.
		if n <= 0 || n > maxExpiryMillis {
			return time.Time{}, false
		}
		// 1e11 ms is March 1973, 1e11 s is the year 5138: a value below it is seconds.
		if n < 1e11 {
			return time.Unix(int64(n), 0).UTC(), true
		}
		return time.UnixMilli(int64(n)).UTC(), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// certificatesURL is the account's certificate collection on the mTLS gateway.
func certificatesURL(auth Auth, suffix string) (string, error) {
	host, err := auth.Domains.Host(ServiceMTLSGateway)
	if err != nil {
		return "", err
	}
	return "https://" + host + "/mtls/account/" + url.PathEscape(auth.AccountID) + "/certificates" + suffix, nil
}

// ListCertificates returns the account's certificates, deleted ones left out.
func (c *Client) ListCertificates(ctx context.Context, auth Auth) ([]Certificate, error) {
	const op = "certificates"
	if err := auth.check(op); err != nil {
		return nil, err
	}
	u, err := certificatesURL(auth, "")
	if err != nil {
		return nil, err
	}
	status, raw, err := c.call(ctx, apiCall{
		op: op, method: http.MethodGet, url: u, bearer: auth.Bearer,
		reject: c.apiReject(op, "certificate list", auth.Bearer),
	})
	if err != nil {
		return nil, err
	}
	var all []Certificate
	if err := json.Unmarshal(raw, &all); err != nil || all == nil {
		return nil, scrub(&Error{Kind: KindGateway, Op: op, Status: status,
			Message: "certificate list answer is not a JSON array of certificates", Body: clipBody(raw)}, auth.Bearer)
	}
	out := all[:0]
	for _, cert := range all {
		if !cert.Deleted {
			out = append(out, cert)
		}
	}
	return out, nil
}

// apiReject is the error policy of the gateway's JSON APIs (mapping check,
// certificates): the shared status table, WWW-Authenticate read as auth, Retry-After
// kept on 429, LivePerson's explanation in the message.
func (c *Client) apiReject(op, what string, secrets ...string) func(*Error, http.Header) *Error {
	return func(e *Error, h http.Header) *Error {
		e.Kind = statusKind(e.Status)
		if h.Get("WWW-Authenticate") != "" {
			e.Kind = KindAuth
		}
		if e.Kind == KindThrottled {
			e.RetryAfter = retryAfter(h, c.now())
		}
		e.Message = joinMessage(fmt.Sprintf("%s answered HTTP %d", what, e.Status), lpMessage(e.Body))
		return scrub(e, secrets...)
	}
}
