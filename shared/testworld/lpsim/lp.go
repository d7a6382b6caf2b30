package lpsim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Service names CSDS returns, spelled as LivePerson does.
var csdsServices = []string{"agentVep", "mtlsGateway", "sentinel", "accountConfigReadWrite"}

type baseURI struct {
	Service string `json:"service"`
	Account string `json:"account"`
	BaseURI string `json:"baseURI"`
}

func (s *Sim) lpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/account/{id}/service/baseURI.json", s.csds)
	mux.HandleFunc("GET /csdr/account/{id}/service/baseURI.json", s.csds)
	mux.HandleFunc("GET /api/account/{id}/service/{svc}/baseURI.json", s.csdsOne)
	mux.HandleFunc("GET /csdr/account/{id}/service/{svc}/baseURI.json", s.csdsOne)
	mux.HandleFunc("POST /api/account/{id}/login", s.login)
	mux.HandleFunc("POST /api/account/{id}/refresh", s.refresh)
	mux.HandleFunc("POST /api/account/{id}/logout", s.logout)
	mux.HandleFunc("POST /sentinel/api/account/{id}/app/token", s.oauth2)
	mux.HandleFunc("POST /api/account/{id}/checks/serviceUrlMappings", s.mappingCheck)
	mux.HandleFunc("/mtls/account/{id}", s.forward)
	s.certRoutes(mux)
	return mux
}

func (s *Sim) baseURIs(account string) []baseURI {
	out := []baseURI{}
	if account != s.opts.AccountID {
		return out
	}
	s.mu.Lock()
	omitted := s.omitted
	s.mu.Unlock()
	for _, svc := range csdsServices {
		if omitted[svc] {
			continue
		}
		out = append(out, baseURI{Service: svc, Account: account, BaseURI: s.Host()})
	}
	return out
}

// csds answers the all-services form. An unknown account gets 200 with an empty list,
// which LivePerson's own SDK reads as "no domains".
func (s *Sim) csds(w http.ResponseWriter, r *http.Request) {
	s.counts.add(func(c *Counts) { c.CSDS++ })
	if s.applyFault("csds", w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"baseURIs": s.baseURIs(r.PathValue("id"))})
}

// csdsOne answers the single-service form; an unknown account or service is 401,
// LivePerson's documented "invalid site".
func (s *Sim) csdsOne(w http.ResponseWriter, r *http.Request) {
	s.counts.add(func(c *Counts) { c.CSDS++ })
	if s.applyFault("csds", w, r) {
		return
	}
	for _, b := range s.baseURIs(r.PathValue("id")) {
		if b.Service == r.PathValue("svc") {
			writeJSON(w, http.StatusOK, b)
			return
		}
	}
	writeRaw(w, http.StatusUnauthorized, gatewayError(http.StatusUnauthorized, "unknown site or service"))
}

type loginRequest struct {
	Username          string `json:"username"`
	Password          string `json:"password"`
	AppKey            string `json:"appKey"`
	Secret            string `json:"secret"`
	AccessToken       string `json:"accessToken"`
	AccessTokenSecret string `json:"accessTokenSecret"`
}

// login is the Login Service user login (and the OAuth2-migrated application login:
// appKey = client_id, secret = client_secret). Unknown account: 401, "bad site".
func (s *Sim) login(w http.ResponseWriter, r *http.Request) {
	s.counts.add(func(c *Counts) { c.Logins++ })
	if s.applyFault("login", w, r) {
		return
	}
	if r.URL.Query().Get("v") != "1.3" {
		writeRaw(w, http.StatusBadRequest, loginError(http.StatusBadRequest, "Missing or unsupported version parameter v"))
		return
	}
	var req loginRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.Username == "" {
		writeRaw(w, http.StatusBadRequest, loginError(http.StatusBadRequest, "Bad request body"))
		return
	}
	account := r.PathValue("id")
	s.mu.Lock()
	ok := account == s.opts.AccountID
	if req.AppKey != "" {
		secret, known := s.clients[req.AppKey]
		_, user := s.users[req.Username]
		ok = ok && known && user && hmac.Equal([]byte(secret), []byte(req.Secret))
	} else {
		pw, known := s.users[req.Username]
		ok = ok && known && hmac.Equal([]byte(pw), []byte(req.Password))
	}
	s.mu.Unlock()
	if !ok {
		slog.Debug("lpsim: login refused", "account", account, "username", req.Username)
		writeRaw(w, http.StatusUnauthorized, loginError(http.StatusUnauthorized, "Authentication failed: bad credentials, site or agent"))
		return
	}
	bearer, csrf, sid := randHex(32), randHex(16), randHex(24)
	s.mu.Lock()
	s.tokens[bearer] = time.Now().Add(s.opts.SessionTTL)
	s.sessions[sid] = &session{csrf: csrf, bearer: bearer}
	s.mu.Unlock()
	setSessionCookie(w, sid)
	now := time.Now()
	writeJSON(w, http.StatusOK, map[string]any{
		"csrf": csrf,
		"wsuk": strconv.FormatInt(now.UnixNano()%1e18, 10),
		"config": map[string]any{
			"loginName":          req.Username,
			"userId":             "5512340010",
			"userPid":            "5512340010",
			"userPrivileges":     []int{100, 101},
			"serverCurrentTime":  now.UnixMilli(),
			"timeDiff":           0,
			"serverTimeZoneName": "UTC",
			"serverTimeGMTDiff":  0,
			"isLPA":              false,
			"isAdmin":            true,
			"accountTimeZoneId":  "America/New_York",
		},
		"csdsCollectionResponse": map[string]any{"baseURIs": s.baseURIs(account)},
		"accountData": map[string]any{"agentGroupsData": map[string]any{
			"items":    []map[string]any{{"id": -1, "deleted": false, "name": "Main Group"}},
			"revision": 1,
		}},
		"sessionTTl": strconv.FormatInt(s.opts.SessionTTL.Milliseconds(), 10),
		"bearer":     bearer,
	})
}

func setSessionCookie(w http.ResponseWriter, sid string) {
	http.SetCookie(w, &http.Cookie{Name: "Session_id", Value: sid, Path: "/", Secure: true, HttpOnly: true})
}

// sessionFor checks the Session_id cookie and the csrf body, as refresh and logout do.
func (s *Sim) sessionFor(r *http.Request) (string, *session, string) {
	if r.PathValue("id") != s.opts.AccountID {
		return "", nil, "Invalid site"
	}
	c, err := r.Cookie("Session_id")
	if err != nil {
		return "", nil, "Session not found"
	}
	var body struct {
		CSRF string `json:"csrf"`
	}
	_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body)
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[c.Value]
	if sess == nil {
		return "", nil, "Session not found or expired"
	}
	if body.CSRF == "" || !hmac.Equal([]byte(body.CSRF), []byte(sess.csrf)) {
		return "", nil, "CSRF token invalid!"
	}
	return c.Value, sess, ""
}

// refresh keeps the session alive: 200 with an empty body and the cookie re-issued.
// It also extends the bearer by SessionTTL (LivePerson does not say; sliding is the
// kinder reading for clients).
func (s *Sim) refresh(w http.ResponseWriter, r *http.Request) {
	s.counts.add(func(c *Counts) { c.Refreshes++ })
	if s.applyFault("refresh", w, r) {
		return
	}
	sid, sess, why := s.sessionFor(r)
	if sess == nil {
		writeRaw(w, http.StatusUnauthorized, loginError(http.StatusUnauthorized, why))
		return
	}
	s.mu.Lock()
	if _, ok := s.tokens[sess.bearer]; ok {
		s.tokens[sess.bearer] = time.Now().Add(s.opts.SessionTTL)
	}
	s.mu.Unlock()
	setSessionCookie(w, sid)
	w.WriteHeader(http.StatusOK)
}

// logout ends the session and its bearer: 200 with an empty body.
func (s *Sim) logout(w http.ResponseWriter, r *http.Request) {
	if s.applyFault("logout", w, r) {
		return
	}
	sid, sess, why := s.sessionFor(r)
	if sess == nil {
		writeRaw(w, http.StatusUnauthorized, loginError(http.StatusUnauthorized, why))
		return
	}
	s.mu.Lock()
	delete(s.sessions, sid)
	delete(s.tokens, sess.bearer)
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// oauth2 is sentinel's client_credentials token endpoint. Credentials come from the
// form, or from HTTP Basic as RFC 6749 allows. Unknown account: 401 invalid_client.
func (s *Sim) oauth2(w http.ResponseWriter, r *http.Request) {
	s.counts.add(func(c *Counts) { c.OAuth2Tokens++ })
	if s.applyFault("oauth2", w, r) {
		return
	}
	if v := r.URL.Query().Get("v"); v != "1.0" && v != "2.0" {
		writeRaw(w, http.StatusBadRequest, oauthError(http.StatusBadRequest, "missing or unsupported version parameter v"))
		return
	}
	if err := r.ParseForm(); err != nil {
		writeRaw(w, http.StatusBadRequest, oauthError(http.StatusBadRequest, "unreadable form body"))
		return
	}
	if gt := r.Form.Get("grant_type"); gt != "client_credentials" {
		b, _ := json.Marshal(map[string]string{"error": "unsupported_grant_type", "error_description": "only client_credentials is supported"})
		writeRaw(w, http.StatusBadRequest, string(b))
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if bu, bp, ok := r.BasicAuth(); ok && id == "" {
		id, secret = bu, bp
	}
	account := r.PathValue("id")
	s.mu.Lock()
	want, known := s.clients[id]
	s.mu.Unlock()
	if account != s.opts.AccountID || !known || id == "" || !hmac.Equal([]byte(want), []byte(secret)) {
		writeRaw(w, http.StatusUnauthorized, oauthError(http.StatusUnauthorized, "Bad client credentials"))
		return
	}
	now := time.Now()
	exp := now.Add(s.opts.OAuth2TTL)
	tok := s.jwt(map[string]any{
		"iss": "Sentinel", "sub": id, "aud": "acc:" + account, "iat": now.Unix(),
		"exp": exp.Unix(), "jti": randHex(8), "scope": "",
	})
	s.mu.Lock()
	s.tokens[tok] = exp
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int64(s.opts.OAuth2TTL / time.Second),
	})
}

func (s *Sim) jwt(claims map[string]any) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	m := hmac.New(sha256.New, s.jwtKey)
	m.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(m.Sum(nil))
}

// authorized checks the gateway Bearer. Tokens are issued for the simulator's account
// only, so any other account in the path is refused like a bad token: 401.
func (s *Sim) authorized(r *http.Request) bool {
	if r.PathValue("id") != s.opts.AccountID {
		return false
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return false
	}
	s.mu.Lock()
	exp, ok := s.tokens[strings.TrimSpace(tok)]
	s.mu.Unlock()
	return ok && time.Now().Before(exp)
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="mtls", error="invalid_token"`)
	writeRaw(w, http.StatusUnauthorized, gatewayError(http.StatusUnauthorized, "Not authenticated: missing, invalid or expired token"))
}

// mappingCheck is the account-scoped mapping check: [{serviceName,url}] in,
// [{serviceName,url,exist}] out.
func (s *Sim) mappingCheck(w http.ResponseWriter, r *http.Request) {
	s.counts.add(func(c *Counts) { c.Mappings++ })
	if s.applyFault("mapping", w, r) {
		return
	}
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	var pairs []struct {
		ServiceName string `json:"serviceName"`
		URL         string `json:"url"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&pairs); err != nil {
		writeRaw(w, http.StatusBadRequest, gatewayError(http.StatusBadRequest, "body must be a JSON array of {serviceName, url}"))
		return
	}
	type result struct {
		ServiceName string `json:"serviceName"`
		URL         string `json:"url"`
		Exist       bool   `json:"exist"`
	}
	out := make([]result, 0, len(pairs))
	for _, p := range pairs {
		out = append(out, result{p.ServiceName, p.URL, s.mapped(p.ServiceName, p.URL)})
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, string(b))
}

func writeRaw(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
