// Package lp speaks LivePerson's wire protocols: CSDS domain discovery, the Login
// Service, OAuth2 client credentials at sentinel, and the mTLS gateway's mapping check
// and forward methods. It knows nothing of AWS: callers hand it credentials and tokens.
package lp

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/lpmtls/lpmtls/shared/headers"
)

// CSDS service names (case-sensitive, as LivePerson spells them).
const (
	ServiceMTLSGateway            = "mtlsGateway"
	ServiceAgentVep               = "agentVep"
	ServiceSentinel               = "sentinel"
	ServiceAccountConfigReadWrite = "accountConfigReadWrite"
)

// Domains maps a CSDS service name to its host[:port] (no scheme; every call is https).
type Domains map[string]string

// Host returns the host for service, or an error of KindDiscovery naming it.
func (d Domains) Host(service string) (string, error) {
	if h := d[service]; h != "" {
		return h, nil
	}
	return "", &Error{Kind: KindDiscovery, Op: "csds", Message: "CSDS has no domain for service " + service}
}

// Auth is who a call speaks for: the account, the hosts CSDS gave it, and the bearer
// LivePerson issued for it. The session layer produces it; the Bearer is a secret.
type Auth struct {
	AccountID string
	Bearer    string
	Domains   Domains
}

// check is the precondition of the JSON API calls: the account is named and the bearer
// can be sent as a header value.
func (a Auth) check(op string) error {
	if a.AccountID == "" {
		return badRequest(op, "account id is empty")
	}
	if a.Bearer == "" || !headers.ValidValue(a.Bearer) {
		return badRequest(op, "bearer is empty or not a valid header value")
	}
	return nil
}

// ValidServiceName is the form lpmtls accepts for a gateway service name (the
// LP-Service-Name header and LP_SERVICE_NAME): 1 to 100 ASCII letters, digits, '_', '-'
// or '.', which no header or URL can read two ways.
func ValidServiceName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// AuthMethod says how a Bearer is obtained.
type AuthMethod string

const (
	// AuthLogin is the Login Service (agentVep) with username/password.
	AuthLogin AuthMethod = "login"
	// AuthOAuth2 is OAuth2 client_credentials at sentinel.
	AuthOAuth2 AuthMethod = "oauth2"
)

// Service is the CSDS service that issues bearers for m ("" for an unknown method).
func (m AuthMethod) Service() string {
	switch m {
	case AuthLogin:
		return ServiceAgentVep
	case AuthOAuth2:
		return ServiceSentinel
	}
	return ""
}

// Credentials are what the brand stores in its secret. Exactly one pair is set.
type Credentials struct {
	AccountID    string
	Username     string
	Password     string
	ClientID     string
	ClientSecret string
}

// Method tells which auth flow the credentials are for.
func (c Credentials) Method() AuthMethod {
	if c.ClientID != "" || c.ClientSecret != "" {
		return AuthOAuth2
	}
	return AuthLogin
}

// Token is a gateway Bearer and the moment it stops being usable.
type Token struct {
	Bearer    string    `json:"bearer"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Mapping is one serviceName/url pair to check; the account comes from the path.
type Mapping struct {
	ServiceName string `json:"serviceName"`
	URL         string `json:"url"`
}

// MappingResult is LivePerson's answer for one pair. It decodes both answer shapes:
// "exist" (account-scoped check) and "doExist" (global check, v2); see UnmarshalJSON.
type MappingResult struct {
	ServiceName string `json:"serviceName"`
	URL         string `json:"url"`
	Exist       bool   `json:"exist"`
}

// UnmarshalJSON accepts "doExist" as an alias of "exist", so a deployment pointed at the
// global form of the check (LP_MAPPING_PATH) reads the answer right instead of seeing
// every pair as unmapped. "exist" wins when both are present.
func (m *MappingResult) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	var raw struct {
		ServiceName string `json:"serviceName"`
		URL         string `json:"url"`
		Exist       *bool  `json:"exist"`
		DoExist     *bool  `json:"doExist"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = MappingResult{ServiceName: raw.ServiceName, URL: raw.URL}
	switch {
	case raw.Exist != nil:
		m.Exist = *raw.Exist
	case raw.DoExist != nil:
		m.Exist = *raw.DoExist
	}
	return nil
}

// ForwardRequest is one call to send through the gateway. Body is a byte slice rather
// than a stream because Lambda events deliver bodies whole, and a slice can be replayed
// after a re-login without buffering twice.
type ForwardRequest struct {
	Method string
	// URL is the target, sent as LP-forward-url; it is part of the mapping key, so it is
	// passed exactly as given (query included).
	URL                       string
	ServiceName               string
	AuthorizationOverride     string
	StopIfCertificateNotFound bool
	// Header holds end-to-end headers for the target (Content-Type, Accept, X-...).
	Header http.Header
	Body   []byte
	// BodyReader, when set, replaces Body: it returns the body afresh for every attempt
	// (the replay after a re-login included) and BodyLength is its exact size. A large
	// body can then be decoded while it is sent instead of held decoded in memory.
	BodyReader func() io.Reader
	BodyLength int64
}

// BodySize is the size of the body, whichever way it is held.
func (r *ForwardRequest) BodySize() int64 {
	if r.BodyReader != nil {
		return r.BodyLength
	}
	return int64(len(r.Body))
}

// ForwardResponse is what the target answered, relayed by the gateway.
type ForwardResponse struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}
