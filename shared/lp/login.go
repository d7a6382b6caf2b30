package lp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lpmtls/lpmtls/shared/headers"
)

// Login obtains a gateway Bearer with the flow cred.Method() names: the Login Service
// (agentVep) for username/password, OAuth2 client_credentials (sentinel) otherwise.
func (c *Client) Login(ctx context.Context, d Domains, cred Credentials) (Token, error) {
	if cred.Method() == AuthOAuth2 {
		return c.oauth2(ctx, d, cred)
	}
	return c.login(ctx, d, cred)
}

func (c *Client) login(ctx context.Context, d Domains, cred Credentials) (Token, error) {
	const op = "login"
	if cred.AccountID == "" || cred.Username == "" || cred.Password == "" {
		return Token{}, badRequest(op, "credentials need an account id, a username and a password")
	}
	host, err := d.Host(AuthLogin.Service())
	if err != nil {
		return Token{}, err
	}
	body, err := json.Marshal(struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}{cred.Username, cred.Password})
	if err != nil {
		return Token{}, badRequest(op, "cannot encode credentials")
	}
	status, raw, err := c.call(ctx, apiCall{
		op: op, method: http.MethodPost,
		url:         "https://" + host + "/api/account/" + url.PathEscape(cred.AccountID) + "/login?v=1.3",
		contentType: "application/json", body: body,
		reject: c.authError("login rejected", cred.Password),
	})
	if err != nil {
		return Token{}, err
	}
	var ans struct {
		Bearer     string          `json:"bearer"`
		SessionTTl json.RawMessage `json:"sessionTTl"`
	}
	if json.Unmarshal(raw, &ans) != nil || ans.Bearer == "" {
		return Token{}, &Error{Kind: KindGateway, Op: op, Status: status, Message: "login answer has no bearer"}
	}
	if !headers.ValidValue(ans.Bearer) {
		// It could never be sent; cached, it would fail every forward until it expired.
		return Token{}, &Error{Kind: KindGateway, Op: op, Status: status, Message: "login answer's bearer has control characters"}
	}
	now := c.now()
	ttl := c.opts.DefaultTokenTTL
	if ms, ok := jsonNumber(ans.SessionTTl); ok && ms > 0 {
		ttl = lifetime(ms, time.Millisecond)
	}
	return Token{Bearer: ans.Bearer, ExpiresAt: now.Add(ttl)}, nil
}

func (c *Client) oauth2(ctx context.Context, d Domains, cred Credentials) (Token, error) {
	const op = "oauth2"
	if cred.AccountID == "" || cred.ClientID == "" || cred.ClientSecret == "" {
		return Token{}, badRequest(op, "credentials need an account id, a client id and a client secret")
	}
	host, err := d.Host(AuthOAuth2.Service())
	if err != nil {
		return Token{}, err
	}
	form := url.Values{"client_id": {cred.ClientID}, "client_secret": {cred.ClientSecret}}.Encode()
	status, raw, err := c.call(ctx, apiCall{
		op: op, method: http.MethodPost,
		url: "https://" + host + "/sentinel/api/account/" + url.PathEscape(cred.AccountID) +
			"/app/token?v=" + url.QueryEscape(c.opts.OAuth2Version) + "&grant_type=client_credentials",
		contentType: "application/x-www-form-urlencoded", body: []byte(form),
		reject: c.authError("token request rejected", cred.ClientSecret),
	})
	if err != nil {
		return Token{}, err
	}
	var ans struct {
		AccessToken string          `json:"access_token"`
		TokenType   string          `json:"token_type"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if json.Unmarshal(raw, &ans) != nil || ans.AccessToken == "" {
		return Token{}, &Error{Kind: KindGateway, Op: op, Status: status, Message: "token answer has no access_token"}
	}
	if !headers.ValidValue(ans.AccessToken) {
		return Token{}, &Error{Kind: KindGateway, Op: op, Status: status, Message: "token answer's access_token has control characters"}
	}
	// token_type is ignored on purpose: the gateway only takes Bearer, and LivePerson's
	// own client sends whatever comes back as a Bearer anyway.
	now := c.now()
	exp := now.Add(c.opts.DefaultTokenTTL)
	if s, ok := jsonNumber(ans.ExpiresIn); ok && s > 0 {
		exp = now.Add(lifetime(s, time.Second))
	} else if t, ok := jwtExpiry(ans.AccessToken); ok && t.After(now) {
		// A past exp (clock skew, odd token) would make the session layer log in again
		// at once, forever; the default lifetime plus re-login on 401 is safer.
		exp = t
	}
	return Token{Bearer: ans.AccessToken, ExpiresAt: exp}, nil
}

// authError classifies a non-2xx answer of login or oauth2.
func (c *Client) authError(prefix, secret string) func(*Error, http.Header) *Error {
	return func(e *Error, h http.Header) *Error {
		e.Kind = statusKind(e.Status)
		if e.Kind == KindBadRequest && e.Op == "oauth2" && oauthCredentialError(e.Body) {
			// RFC 6749 lets a server answer 400 for bad client credentials.
			e.Kind = KindAuth
		}
		if e.Kind == KindThrottled {
			e.RetryAfter = retryAfter(h, c.now())
			if e.Op == "login" && e.RetryAfter < loginThrottleFloor {
				e.RetryAfter = loginThrottleFloor
			}
		}
		e.Message = joinMessage(fmt.Sprintf("%s with HTTP %d", prefix, e.Status), lpMessage(e.Body))
		return scrub(e, secret)
	}
}

func oauthCredentialError(body []byte) bool {
	var doc struct {
		Error any `json:"error"`
	}
	if json.Unmarshal(bytes.TrimSpace(trimBOM(body)), &doc) != nil {
		return false
	}
	s, _ := doc.Error.(string)
	return s == "invalid_client" || s == "unauthorized_client" || s == "invalid_grant"
}

// jsonNumber reads a JSON number or a string holding one ("28800000").
func jsonNumber(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false
	}
	s := string(raw)
	if raw[0] == '"' {
		if json.Unmarshal(raw, &s) != nil {
			return 0, false
		}
		s = strings.TrimSpace(s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f { // NaN
		return 0, false
	}
	return f, true
}

// jwtExpiry reads the exp claim without verifying the signature: it only decides when to
// fetch a new token; the gateway does the verifying.
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp json.RawMessage `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return time.Time{}, false
	}
	exp, ok := jsonNumber(claims.Exp)
	if !ok || exp <= 0 || exp > 1e11 {
		return time.Time{}, false
	}
	sec := int64(exp)
	return time.Unix(sec, int64((exp-float64(sec))*1e9)), true
}

// lifetime converts a count of units to a Duration, capped so an absurd value cannot
// overflow.
func lifetime(n float64, unit time.Duration) time.Duration {
	const maxLifetime = 366 * 24 * time.Hour
	if n >= float64(maxLifetime/unit) {
		return maxLifetime
	}
	return time.Duration(n * float64(unit))
}
