package lpsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lpmtls/lpmtls/shared/p12"
)

// maxUpload bounds a multipart upload: the p12 (p12.MaxSize) and a small JSON part.
const maxUpload = p12.MaxSize + 64<<10

func (s *Sim) certRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /mtls/account/{id}/certificates", s.listCertificates)
	mux.HandleFunc("POST /mtls/account/{id}/certificates/by-file", s.uploadCertificate)
	mux.HandleFunc("PUT /mtls/account/{id}/certificates/by-file", s.uploadCertificate)
	mux.HandleFunc("POST /mtls/account/{id}/certificates/activate/{certId}", s.activate)
	const ac = "/api/account/{id}/configuration/ac-common/mtls"
	mux.HandleFunc("GET "+ac, s.listMappingObjects)
	mux.HandleFunc("POST "+ac, s.createMappingObjects)
	mux.HandleFunc("GET "+ac+"/{mid}", s.getMappingObject)
	mux.HandleFunc("PUT "+ac+"/{mid}", s.updateMappingObject)
	mux.HandleFunc("DELETE "+ac+"/{mid}", s.deleteMappingObject)
}

// certJSON is LivePerson's certificate object.
type certJSON struct {
	ID             int64  `json:"id"`
	Deleted        bool   `json:"deleted"`
	Name           string `json:"name"`
	DisplayName    string `json:"displayName"`
	SiteID         string `json:"siteId"`
	Status         string `json:"status"`
	ExpirationDate any    `json:"expirationDate"`
}

func (s *Sim) certObject(c *simCert, now time.Time) certJSON {
	var exp any
	switch s.store.format {
	case ExpiryEpochMillisString:
		exp = strconv.FormatInt(c.notAfter.UnixMilli(), 10)
	case ExpiryRFC3339:
		exp = c.notAfter.UTC().Format(time.RFC3339)
	case ExpiryNull:
		exp = nil
	default:
		exp = c.notAfter.UnixMilli()
	}
	return certJSON{ID: c.id, Deleted: c.deleted, Name: c.name, DisplayName: c.display,
		SiteID: s.opts.AccountID, Status: c.statusAt(now), ExpirationDate: exp}
}

// mappingJSON is LivePerson's mapping object (activate's answer, ac-common's entity):
// ids of the service and certificate are strings there.
type mappingJSON struct {
	ID              int64  `json:"id"`
	Deleted         bool   `json:"deleted"`
	URL             string `json:"url"`
	Enable          bool   `json:"enable"`
	ServiceID       string `json:"serviceId"`
	SiteID          string `json:"siteId"`
	Name            string `json:"name"`
	CertificationID string `json:"certificationId"`
}

func (s *Sim) mappingObject(m *simMapping) mappingJSON {
	return mappingJSON{ID: m.id, Deleted: m.deleted, URL: m.url, Enable: m.enable, ServiceID: m.serviceID,
		SiteID: s.opts.AccountID, Name: m.name, CertificationID: strconv.FormatInt(m.certID, 10)}
}

func badRequest(w http.ResponseWriter, status int, msg string) {
	writeRaw(w, status, gatewayError(status, msg))
}

// listCertificates answers the account's certificates, deleted ones included with
// "deleted": true (the documented field implies they can appear).
func (s *Sim) listCertificates(w http.ResponseWriter, r *http.Request) {
	s.counts.add(func(c *Counts) { c.CertificateLists++ })
	if s.applyFault("certificates", w, r) {
		return
	}
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	now := time.Now()
	s.mu.Lock()
	out := []certJSON{}
	for _, c := range s.store.sortedCerts() {
		out = append(out, s.certObject(c, now))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

type certPart struct {
	ID       json.RawMessage `json:"id"`
	Name     string          `json:"name"`
	Password *string         `json:"password"`
}

// uploadCertificate is POST (new) and PUT (replace, "id" in the JSON part) of
// …/certificates/by-file. Refusals are 400 in the gateway's error shape: LivePerson
// documents only the success codes (201, 200).
func (s *Sim) uploadCertificate(w http.ResponseWriter, r *http.Request) {
	replace := r.Method == http.MethodPut
	op := "upload"
	if replace {
		op = "replace"
	}
	s.counts.add(func(c *Counts) {
		if replace {
			c.CertificateReplaces++
		} else {
			c.CertificateUploads++
		}
	})
	if s.applyFault(op, w, r) {
		return
	}
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
	mr, err := r.MultipartReader()
	if err != nil {
		badRequest(w, http.StatusBadRequest, "the body must be multipart/form-data with the parts file and certificate")
		return
	}
	file, meta, err := readUploadParts(mr)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			badRequest(w, http.StatusRequestEntityTooLarge, "the upload is larger than the gateway accepts")
			return
		}
		badRequest(w, http.StatusBadRequest, err.Error())
		return
	}
	var cp certPart
	if err := json.Unmarshal(meta, &cp); err != nil {
		badRequest(w, http.StatusBadRequest, "the certificate part must be JSON {\"name\",\"password\"}")
		return
	}
	cp.Name = strings.TrimSpace(cp.Name)
	if cp.Password == nil {
		badRequest(w, http.StatusBadRequest, "the certificate part has no password")
		return
	}
	var id int64
	if replace {
		id, err = strconv.ParseInt(strings.Trim(string(bytes.TrimSpace(cp.ID)), `"`), 10, 64)
		if err != nil {
			badRequest(w, http.StatusBadRequest, "replacing a certificate needs its numeric id in the certificate part")
			return
		}
	} else if cp.Name == "" {
		badRequest(w, http.StatusBadRequest, "the certificate part has no name")
		return
	}
	bundle, err := p12.Open(file, *cp.Password)
	if err != nil {
		// The library's reason, never the password: LivePerson's answer is logged by clients.
		slog.Debug("lpsim: p12 refused", "reason", p12Reason(err))
		badRequest(w, http.StatusBadRequest, "Failed to load the p12 file: "+err.Error())
		return
	}
	ident := bundle.TLSCertificate()
	now := time.Now()
	s.mu.Lock()
	var c *simCert
	var old *http.Transport
	status := http.StatusCreated
	if replace {
		c = s.store.certs[id]
		if c == nil || c.deleted {
			s.mu.Unlock()
			badRequest(w, http.StatusNotFound, fmt.Sprintf("certificate %d not found in account %s", id, s.opts.AccountID))
			return
		}
		if cp.Name != "" && cp.Name != c.name {
			if other := s.store.certByName(cp.Name); other != nil {
				s.mu.Unlock()
				badRequest(w, http.StatusConflict, "a certificate named "+strconv.Quote(cp.Name)+" already exists")
				return
			}
			c.name, c.display = cp.Name, cp.Name
		}
		old = s.store.setIdent(c, ident)
		c.status = ""
		status = http.StatusOK
	} else {
		if s.store.certByName(cp.Name) != nil {
			s.mu.Unlock()
			badRequest(w, http.StatusConflict, "a certificate named "+strconv.Quote(cp.Name)+" already exists")
			return
		}
		c = s.store.addCert(cp.Name, ident)
	}
	obj := s.certObject(c, now)
	s.mu.Unlock()
	if old != nil {
		old.CloseIdleConnections()
	}
	writeJSON(w, status, map[string]any{
		"successfulySavedCertificates":  []certJSON{obj},
		"failedSaveToVaultCertificates": []certJSON{},
	})
}

func p12Reason(err error) string {
	var pe *p12.Error
	if errors.As(err, &pe) {
		return string(pe.Reason)
	}
	return "unknown"
}

// readUploadParts returns the file part and the certificate part, which a client may
// send as a plain field or as a file part of type application/json.
func readUploadParts(mr *multipart.Reader) (file, meta []byte, err error) {
	var haveFile, haveMeta bool
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("unreadable multipart body: %w", err)
		}
		var dst *[]byte
		switch p.FormName() {
		case "file":
			dst, haveFile = &file, true
		case "certificate":
			dst, haveMeta = &meta, true
		default:
			_, _ = io.Copy(io.Discard, p)
			continue
		}
		if *dst, err = io.ReadAll(p); err != nil {
			return nil, nil, err
		}
	}
	switch {
	case !haveFile:
		return nil, nil, errors.New("the multipart body has no file part")
	case !haveMeta:
		return nil, nil, errors.New("the multipart body has no certificate part")
	}
	return file, meta, nil
}

// activate creates the mapping (account, serviceName, url) → certificate. With
// isValidateUrlEnabled the url is first called with the certificate, and a failed call
// is 424, as LivePerson documents.
func (s *Sim) activate(w http.ResponseWriter, r *http.Request) {
	s.counts.add(func(c *Counts) { c.Activations++ })
	if s.applyFault("activate", w, r) {
		return
	}
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("certId"), 10, 64)
	if err != nil {
		badRequest(w, http.StatusBadRequest, "certificateId must be a number")
		return
	}
	var body struct {
		ServiceName          string `json:"serviceName"`
		URL                  string `json:"url"`
		IsValidateURLEnabled any    `json:"isValidateUrlEnabled"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		badRequest(w, http.StatusBadRequest, "the body must be JSON {\"serviceName\",\"url\"}")
		return
	}
	if msg := checkMappingURL(body.URL); msg != "" {
		badRequest(w, http.StatusBadRequest, msg)
		return
	}
	// The docs list the flag among path parameters; a query flag, or a body field,
	// reads the same here.
	validate := truthy(r.URL.Query().Get("isValidateUrlEnabled")) || truthy(fmt.Sprint(body.IsValidateURLEnabled))
	now := time.Now()
	s.mu.Lock()
	sid, ok := s.store.serviceID(body.ServiceName)
	c := s.store.certs[id]
	var problem string
	var status int
	switch {
	case !ok:
		status, problem = http.StatusBadRequest, "unknown serviceName "+strconv.Quote(body.ServiceName)
	case c == nil || c.deleted:
		status, problem = http.StatusNotFound, fmt.Sprintf("certificate %d not found in account %s", id, s.opts.AccountID)
	case c.statusAt(now) != StatusAvailable:
		status, problem = http.StatusBadRequest, fmt.Sprintf("certificate %d is not Available", id)
	case s.store.live(sid, body.URL) != nil:
		status, problem = http.StatusBadRequest, "a mapping for service "+body.ServiceName+" and this url already exists"
	}
	ident := certCopy(c)
	s.mu.Unlock()
	if problem != "" {
		badRequest(w, status, problem)
		return
	}
	if validate {
		if err := s.validateURL(r.Context(), ident, body.URL); err != nil {
			w.Header().Set("LP-message-from-transport", "URL validation with the certificate failed")
			badRequest(w, http.StatusFailedDependency, "URL validation failed: "+headerSafe(err.Error()))
			return
		}
	}
	s.mu.Lock()
	if s.store.live(sid, body.URL) != nil { // a concurrent activation won
		s.mu.Unlock()
		badRequest(w, http.StatusBadRequest, "a mapping for service "+body.ServiceName+" and this url already exists")
		return
	}
	m := &simMapping{id: s.store.nextMap, serviceID: sid, url: body.URL, certID: id, enable: true}
	m.name = fmt.Sprintf("%s-mapping-%d", strings.ToLower(body.ServiceName), m.id)
	s.store.nextMap++
	s.store.mappings[m.id] = m
	s.store.revision++
	obj := s.mappingObject(m)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, obj)
}

// certCopy lets the URL validation use the certificate outside the lock.
func certCopy(c *simCert) *simCert {
	if c == nil {
		return nil
	}
	cp := *c
	return &cp
}

// validateURL calls url once with the certificate; any HTTP answer counts as reachable.
func (s *Sim) validateURL(ctx context.Context, c *simCert, target string) error {
	ident := c.ident
	tr := s.newTransport(&ident)
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, s.opts.ForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.Body.Close()
}

func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes":
		return true
	}
	return false
}

func checkMappingURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "url must be an absolute http(s) URL"
	}
	return ""
}

// Mapping objects on accountConfigReadWrite ("ac-common"). LivePerson documents the
// create call; GET, PUT and DELETE follow the account-config convention (entity path
// /{id}, a revision in the ac-revision and ETag headers, If-Match to guard a change).

func (s *Sim) acPrelude(w http.ResponseWriter, r *http.Request) bool {
	s.counts.add(func(c *Counts) { c.MappingObjects++ })
	if s.applyFault("mtlsconfig", w, r) {
		return false
	}
	if !s.authorized(r) {
		unauthorized(w)
		return false
	}
	return true
}

func (s *Sim) setRevision(w http.ResponseWriter, rev int) {
	w.Header().Set("ac-revision", strconv.Itoa(rev))
	w.Header().Set("ETag", strconv.Quote(strconv.Itoa(rev)))
}

// ifMatch checks If-Match against the revision (caller holds s.mu); "" when fine.
func (s *Sim) ifMatch(r *http.Request) (int, string) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" {
		if s.opts.RequireIfMatch {
			return http.StatusPreconditionRequired, "If-Match with the current revision is required"
		}
		return 0, ""
	}
	if v == "*" || strings.Trim(strings.TrimPrefix(v, "W/"), `"`) == strconv.Itoa(s.store.revision) {
		return 0, ""
	}
	return http.StatusConflict, "revision mismatch: the configuration changed since it was read"
}

func (s *Sim) listMappingObjects(w http.ResponseWriter, r *http.Request) {
	if !s.acPrelude(w, r) {
		return
	}
	withDeleted := truthy(r.URL.Query().Get("include_deleted"))
	s.mu.Lock()
	out := []mappingJSON{}
	for _, m := range s.store.sortedMappings() {
		if !m.deleted || withDeleted {
			out = append(out, s.mappingObject(m))
		}
	}
	rev := s.store.revision
	s.mu.Unlock()
	s.setRevision(w, rev)
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) getMappingObject(w http.ResponseWriter, r *http.Request) {
	if !s.acPrelude(w, r) {
		return
	}
	s.mu.Lock()
	m := s.mappingByPath(r)
	var obj mappingJSON
	if m != nil {
		obj = s.mappingObject(m)
	}
	rev := s.store.revision
	s.mu.Unlock()
	if m == nil {
		badRequest(w, http.StatusNotFound, "mapping "+r.PathValue("mid")+" not found")
		return
	}
	s.setRevision(w, rev)
	writeJSON(w, http.StatusOK, obj)
}

func (s *Sim) mappingByPath(r *http.Request) *simMapping {
	id, err := strconv.ParseInt(r.PathValue("mid"), 10, 64)
	if err != nil {
		return nil
	}
	if m := s.store.mappings[id]; m != nil && !m.deleted {
		return m
	}
	return nil
}

// lockMappingForWrite takes s.mu and returns the mapping the path names, once it exists
// and the request's If-Match allows a write; otherwise it answers the error, releases
// the lock and returns nil.
func (s *Sim) lockMappingForWrite(w http.ResponseWriter, r *http.Request) *simMapping {
	s.mu.Lock()
	cur := s.mappingByPath(r)
	if cur == nil {
		s.mu.Unlock()
		badRequest(w, http.StatusNotFound, "mapping "+r.PathValue("mid")+" not found")
		return nil
	}
	if code, msg := s.ifMatch(r); code != 0 {
		s.mu.Unlock()
		badRequest(w, code, msg)
		return nil
	}
	return cur
}

// mappingInput is a mapping object as a client sends it; ids may be numbers or strings.
type mappingInput struct {
	CertificationID json.RawMessage `json:"certificationId"`
	ServiceID       json.RawMessage `json:"serviceId"`
	Enable          *bool           `json:"enable"`
	URL             string          `json:"url"`
	SiteID          string          `json:"siteId"`
	Name            string          `json:"name"`
	Deleted         bool            `json:"deleted"`
}

func rawID(b json.RawMessage) string {
	return strings.Trim(string(bytes.TrimSpace(b)), `"`)
}

// validate checks an input against the store (caller holds s.mu), ignoring the mapping
// being updated (self) and the ones already accepted in this batch.
func (s *Sim) validateMapping(in mappingInput, self int64, batch []*simMapping) (*simMapping, string) {
	certID, err := strconv.ParseInt(rawID(in.CertificationID), 10, 64)
	if err != nil {
		return nil, "certificationId must be a certificate id"
	}
	if c := s.store.certs[certID]; c == nil || c.deleted {
		return nil, fmt.Sprintf("certificate %d not found in account %s", certID, s.opts.AccountID)
	}
	sid := rawID(in.ServiceID)
	known := false
	for _, v := range s.store.services {
		known = known || v == sid
	}
	if !known {
		return nil, "unknown serviceId " + strconv.Quote(sid)
	}
	if msg := checkMappingURL(in.URL); msg != "" {
		return nil, msg
	}
	if in.SiteID != "" && in.SiteID != s.opts.AccountID {
		return nil, "siteId does not match the account in the path"
	}
	if strings.TrimSpace(in.Name) == "" {
		return nil, "name is required"
	}
	enable := in.Enable == nil || *in.Enable
	others := batch
	for _, m := range s.store.mappings {
		if !m.deleted && m.id != self {
			others = append(others, m)
		}
	}
	for _, m := range others {
		if m.name == in.Name {
			return nil, "a mapping named " + strconv.Quote(in.Name) + " already exists"
		}
		if m.serviceID == sid && m.url == in.URL {
			return nil, fmt.Sprintf("mapping %d already maps serviceId %s and this url", m.id, sid)
		}
	}
	return &simMapping{id: self, name: in.Name, serviceID: sid, url: in.URL, certID: certID, enable: enable}, ""
}

// createMappingObjects takes an array (LivePerson's documented body) and creates all or
// none; 201 with the created objects.
func (s *Sim) createMappingObjects(w http.ResponseWriter, r *http.Request) {
	if !s.acPrelude(w, r) {
		return
	}
	var in []mappingInput
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil || len(in) == 0 {
		badRequest(w, http.StatusBadRequest, "the body must be a non-empty JSON array of mapping objects")
		return
	}
	s.mu.Lock()
	var batch []*simMapping
	for i, item := range in {
		m, problem := s.validateMapping(item, 0, batch)
		if problem != "" {
			s.mu.Unlock()
			badRequest(w, http.StatusBadRequest, fmt.Sprintf("item %d: %s", i, problem))
			return
		}
		batch = append(batch, m)
	}
	out := make([]mappingJSON, 0, len(batch))
	for _, m := range batch {
		m.id = s.store.nextMap
		s.store.nextMap++
		s.store.mappings[m.id] = m
		out = append(out, s.mappingObject(m))
	}
	s.store.revision++
	rev := s.store.revision
	s.mu.Unlock()
	s.setRevision(w, rev)
	writeJSON(w, http.StatusCreated, out)
}

// updateMappingObject replaces one object (an object body, or an array of one).
func (s *Sim) updateMappingObject(w http.ResponseWriter, r *http.Request) {
	if !s.acPrelude(w, r) {
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var in mappingInput
	if err == nil {
		raw = bytes.TrimSpace(raw)
		if len(raw) > 0 && raw[0] == '[' {
			var arr []mappingInput
			if err = json.Unmarshal(raw, &arr); err == nil && len(arr) != 1 {
				err = errors.New("one object")
			} else if err == nil {
				in = arr[0]
			}
		} else {
			err = json.Unmarshal(raw, &in)
		}
	}
	if err != nil {
		badRequest(w, http.StatusBadRequest, "the body must be one JSON mapping object")
		return
	}
	cur := s.lockMappingForWrite(w, r)
	if cur == nil {
		return
	}
	m, problem := s.validateMapping(in, cur.id, nil)
	if problem != "" {
		s.mu.Unlock()
		badRequest(w, http.StatusBadRequest, problem)
		return
	}
	*cur = *m
	s.store.revision++
	obj, rev := s.mappingObject(cur), s.store.revision
	s.mu.Unlock()
	s.setRevision(w, rev)
	writeJSON(w, http.StatusOK, obj)
}

// deleteMappingObject marks the object deleted; it no longer maps anything.
func (s *Sim) deleteMappingObject(w http.ResponseWriter, r *http.Request) {
	if !s.acPrelude(w, r) {
		return
	}
	cur := s.lockMappingForWrite(w, r)
	if cur == nil {
		return
	}
	cur.deleted = true
	s.store.revision++
	obj, rev := s.mappingObject(cur), s.store.revision
	s.mu.Unlock()
	s.setRevision(w, rev)
	writeJSON(w, http.StatusOK, obj)
}
