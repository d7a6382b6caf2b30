package lp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/lpmtls/lpmtls/shared/p12"
)

// DefaultServiceIDs is LivePerson's services enum (TEST_SERVICE 0, IDP 1, WEBHOOKS 2,
// documented) plus FAAS 3: LivePerson's own Functions client names FAAS and an activate
// example answers serviceId "3", but that 3 is FAAS is UNCONFIRMED.
var DefaultServiceIDs = map[string]string{"TEST_SERVICE": "0", "IDP": "1", "WEBHOOKS": "2", "FAAS": "3"}

// ServiceID returns the serviceId of a service name (case-insensitive).
func (c *Client) ServiceID(name string) (string, bool) {
	id, ok := c.opts.ServiceIDs[strings.ToUpper(strings.TrimSpace(name))]
	return id, ok
}

// ServiceName returns the name of a serviceId, "" when unknown.
func (c *Client) ServiceName(id string) string {
	var names []string
	for n, v := range c.opts.ServiceIDs {
		if v == id {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// CertificateUpload is a p12 file to store under a name. The password opens the file
// (LivePerson needs it to read the key); it is sent only inside the upload.
type CertificateUpload struct {
	Name     string
	Password string
	P12      []byte
}

// MappingID is a mapping object's id; like CertificateID it decodes from a number or
// a string and is kept as text.
type MappingID string

// UnmarshalJSON accepts a number or a string.
func (id *MappingID) UnmarshalJSON(b []byte) error {
	var c CertificateID
	if err := c.UnmarshalJSON(b); err != nil {
		return errors.New("mapping id is neither a number nor a string")
	}
	*id = MappingID(c)
	return nil
}

// MappingObject is a certificate mapping: (account, service, url) → certificate. It is
// what activate answers and what ac-common stores.
type MappingObject struct {
	ID              MappingID
	Deleted         bool
	URL             string
	Enable          bool
	ServiceID       string
	SiteID          string
	Name            string
	CertificationID CertificateID
}

// mappingWire is the JSON of a MappingObject. The ids of the service and certificate
// are raw because LivePerson documents them as strings, yet a number is read as well.
type mappingWire struct {
	ID              *MappingID      `json:"id,omitempty"`
	Deleted         bool            `json:"deleted"`
	URL             string          `json:"url"`
	Enable          bool            `json:"enable"`
	ServiceID       json.RawMessage `json:"serviceId"`
	SiteID          string          `json:"siteId"`
	Name            string          `json:"name"`
	CertificationID json.RawMessage `json:"certificationId"`
}

// MarshalJSON writes LivePerson's documented shape: ids of the service and certificate
// as strings, no id on an object not created yet.
func (m MappingObject) MarshalJSON() ([]byte, error) {
	sid, _ := json.Marshal(m.ServiceID)
	cid, _ := json.Marshal(string(m.CertificationID))
	w := mappingWire{Deleted: m.Deleted, URL: m.URL, Enable: m.Enable, ServiceID: sid, SiteID: m.SiteID, Name: m.Name, CertificationID: cid}
	if m.ID != "" {
		id := m.ID
		w.ID = &id
	}
	return json.Marshal(w)
}

// UnmarshalJSON accepts ids as numbers or strings.
func (m *MappingObject) UnmarshalJSON(b []byte) error {
	var w mappingWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	var sid, cid CertificateID
	if len(w.ServiceID) > 0 {
		if err := sid.UnmarshalJSON(w.ServiceID); err != nil {
			return errors.New("serviceId is neither a number nor a string")
		}
	}
	if len(w.CertificationID) > 0 {
		if err := cid.UnmarshalJSON(w.CertificationID); err != nil {
			return err
		}
	}
	*m = MappingObject{Deleted: w.Deleted, URL: w.URL, Enable: w.Enable, ServiceID: string(sid),
		SiteID: w.SiteID, Name: w.Name, CertificationID: cid}
	if w.ID != nil {
		m.ID = *w.ID
	}
	return nil
}

// Activation asks for a mapping of (serviceName, url) to a certificate. ValidateURL
// makes LivePerson call url with the certificate first (424 when that fails).
type Activation struct {
	ServiceName string
	URL         string
	ValidateURL bool
}

// openUpload checks the p12 locally, so a wrong password or a file LivePerson cannot
// use fails before anything is sent, and returns the bundle for its expiry.
func openUpload(op string, up CertificateUpload) (*p12.Bundle, error) {
	if strings.TrimSpace(up.Name) == "" {
		return nil, badRequest(op, "certificate name is empty")
	}
	b, err := p12.Open(up.P12, up.Password)
	if err != nil {
		return nil, scrub(&Error{Kind: KindBadRequest, Op: op, Message: err.Error(), Err: err}, up.Password)
	}
	return b, nil
}

// UploadCertificate stores a new certificate (POST …/certificates/by-file). The p12 is
// opened locally first; the answer's expiry, when LivePerson gives none, is the p12's.
func (c *Client) UploadCertificate(ctx context.Context, auth Auth, up CertificateUpload) (Certificate, error) {
	return c.saveCertificate(ctx, auth, "", up)
}

// ReplaceCertificate puts a new p12 under an existing certificate id (PUT
// …/certificates/by-file with "id"): mappings that point at the id keep working and
// present the new certificate.
func (c *Client) ReplaceCertificate(ctx context.Context, auth Auth, id CertificateID, up CertificateUpload) (Certificate, error) {
	if id == "" {
		return Certificate{}, badRequest("certificate replace", "certificate id is empty")
	}
	return c.saveCertificate(ctx, auth, id, up)
}

func (c *Client) saveCertificate(ctx context.Context, auth Auth, id CertificateID, up CertificateUpload) (Certificate, error) {
	op, method, what := "certificate upload", http.MethodPost, "certificate upload"
	if id != "" {
		op, method, what = "certificate replace", http.MethodPut, "certificate replace"
	}
	if err := auth.check(op); err != nil {
		return Certificate{}, err
	}
	bundle, err := openUpload(op, up)
	if err != nil {
		return Certificate{}, err
	}
	u, err := certificatesURL(auth, "/by-file")
	if err != nil {
		return Certificate{}, err
	}
	meta := struct {
		ID       CertificateID `json:"id,omitempty"`
		Name     string        `json:"name"`
		Password string        `json:"password"`
	}{id, up.Name, up.Password}
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return Certificate{}, badRequest(op, "cannot encode the certificate part")
	}
	body, ctype, err := multipartUpload(up.Name, up.P12, metaJSON)
	if err != nil {
		return Certificate{}, badRequest(op, "cannot build the multipart body")
	}
	status, raw, err := c.call(ctx, apiCall{
		op: op, method: method, url: u, bearer: auth.Bearer, contentType: ctype, body: body,
		reject: c.apiReject(op, what, auth.Bearer, up.Password),
	})
	if err != nil {
		return Certificate{}, err
	}
	var ans struct {
		Saved  []Certificate `json:"successfulySavedCertificates"`
		Saved2 []Certificate `json:"successfullySavedCertificates"` // in case LivePerson fixes the spelling
		Failed []Certificate `json:"failedSaveToVaultCertificates"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return Certificate{}, scrub(&Error{Kind: KindGateway, Op: op, Status: status,
			Message: what + " answer is not the documented JSON object", Body: clipBody(raw)}, auth.Bearer, up.Password)
	}
	saved := append(ans.Saved, ans.Saved2...)
	if len(saved) == 0 {
		msg := what + " answered HTTP " + strconv.Itoa(status) + " without a saved certificate"
		if len(ans.Failed) > 0 {
			msg = "LivePerson could not store the certificate in its vault; try again, or ask LivePerson support"
		}
		return Certificate{}, &Error{Kind: KindGateway, Op: op, Status: status, Message: msg}
	}
	cert := saved[0]
	for _, s := range saved {
		if s.Name == up.Name {
			cert = s
		}
	}
	if cert.ExpiresAt.IsZero() {
		cert.ExpiresAt = bundle.NotAfter()
	}
	return cert, nil
}

// multipartUpload is LivePerson's documented body: "file" = the p12, "certificate" =
// the JSON text, sent as an application/json part as a Spring @RequestPart expects.
func multipartUpload(name string, file, meta []byte) ([]byte, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, safeFileName(name)+".p12"))
	h.Set("Content-Type", "application/x-pkcs12")
	fw, err := mw.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	if _, err := fw.Write(file); err != nil {
		return nil, "", err
	}
	h = textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="certificate"`)
	h.Set("Content-Type", "application/json")
	pw, err := mw.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	if _, err := pw.Write(meta); err != nil {
		return nil, "", err
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// ActivateCertificate creates the mapping (serviceName, url) → certificate id (POST
// …/certificates/activate/{id}). A failed URL validation is KindTarget.
func (c *Client) ActivateCertificate(ctx context.Context, auth Auth, id CertificateID, a Activation) (MappingObject, error) {
	const op = "certificate activate"
	if err := auth.check(op); err != nil {
		return MappingObject{}, err
	}
	if id == "" || strings.TrimSpace(a.ServiceName) == "" || a.URL == "" {
		return MappingObject{}, badRequest(op, "activate needs a certificate id, a service name and a url")
	}
	u, err := certificatesURL(auth, "/activate/"+url.PathEscape(string(id)))
	if err != nil {
		return MappingObject{}, err
	}
	body := map[string]any{"serviceName": a.ServiceName, "url": a.URL}
	if c.opts.ActivateFlagInBody {
		body["isValidateUrlEnabled"] = a.ValidateURL
	} else {
		u += "?isValidateUrlEnabled=" + strconv.FormatBool(a.ValidateURL)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return MappingObject{}, badRequest(op, "cannot encode the activation")
	}
	reject := c.apiReject(op, "certificate activation", auth.Bearer)
	status, ans, err := c.call(ctx, apiCall{
		op: op, method: http.MethodPost, url: u, bearer: auth.Bearer, contentType: "application/json", body: raw,
		reject: func(e *Error, h http.Header) *Error {
			e = reject(e, h)
			if e.Status == http.StatusFailedDependency {
				// Documented: the test call of the URL with the new certificate failed.
				e.Kind = KindTarget
				e.Message = joinMessage("LivePerson's test call of the URL with the certificate failed (HTTP 424)", lpMessage(e.Body))
				e = redactURL(e, a.URL)
			}
			return e
		},
	})
	if err != nil {
		return MappingObject{}, err
	}
	var m MappingObject
	if err := json.Unmarshal(ans, &m); err != nil {
		return MappingObject{}, scrub(&Error{Kind: KindGateway, Op: op, Status: status,
			Message: "activation answer is not a mapping object", Body: clipBody(ans)}, auth.Bearer)
	}
	return m, nil
}

// mappingObjectsURL is the ac-common collection, or one object when id is set.
func (c *Client) mappingObjectsURL(auth Auth, id MappingID) (string, error) {
	host, err := auth.Domains.Host(c.opts.MappingObjectsService)
	if err != nil {
		return "", err
	}
	u := "https://" + host + strings.ReplaceAll(c.opts.MappingObjectsPath, "{accountId}", url.PathEscape(auth.AccountID))
	if id != "" {
		u += "/" + url.PathEscape(string(id))
	}
	if v := c.opts.MappingObjectsVersion; v != "-" {
		u += "?v=" + url.QueryEscape(v)
	}
	return u, nil
}

// revisionOf reads the account-config revision of an answer: ac-revision, else ETag.
func revisionOf(h http.Header) string {
	if v := strings.TrimSpace(h.Get("ac-revision")); v != "" {
		return v
	}
	return strings.TrimSpace(h.Get("ETag"))
}

func ifMatch(revision string) http.Header {
	if revision == "" {
		return nil
	}
	return http.Header{"If-Match": {revision}}
}

// OpMappingObjects is the Op of a failed ListMappingObjects.
const OpMappingObjects = "mapping objects"

// ListMappingObjects returns the account's mapping objects (deleted ones left out) and
// the configuration's revision ("" when LivePerson sends none).
func (c *Client) ListMappingObjects(ctx context.Context, auth Auth) ([]MappingObject, string, error) {
	const op = OpMappingObjects
	if err := auth.check(op); err != nil {
		return nil, "", err
	}
	u, err := c.mappingObjectsURL(auth, "")
	if err != nil {
		return nil, "", err
	}
	var h http.Header
	status, raw, err := c.call(ctx, apiCall{op: op, method: http.MethodGet, url: u, bearer: auth.Bearer, answerHeader: &h,
		reject: c.apiReject(op, "mapping object list", auth.Bearer)})
	if err != nil {
		return nil, "", err
	}
	var all []MappingObject
	if err := json.Unmarshal(raw, &all); err != nil || all == nil {
		return nil, "", scrub(&Error{Kind: KindGateway, Op: op, Status: status,
			Message: "mapping object list is not a JSON array", Body: clipBody(raw)}, auth.Bearer)
	}
	out := all[:0]
	for _, m := range all {
		if !m.Deleted {
			out = append(out, m)
		}
	}
	return out, revisionOf(h), nil
}

// GetMappingObject reads one mapping object and the revision.
func (c *Client) GetMappingObject(ctx context.Context, auth Auth, id MappingID) (MappingObject, string, error) {
	const op = "mapping object"
	var h http.Header
	m, err := c.mappingObjectCall(ctx, auth, op, http.MethodGet, id, nil, "", &h)
	return m, revisionOf(h), err
}

// CreateMappingObjects creates objects in one call (LivePerson's body is an array).
func (c *Client) CreateMappingObjects(ctx context.Context, auth Auth, objs []MappingObject) ([]MappingObject, error) {
	const op = "mapping objects create"
	if err := auth.check(op); err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return []MappingObject{}, nil
	}
	u, err := c.mappingObjectsURL(auth, "")
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(objs)
	if err != nil {
		return nil, badRequest(op, "cannot encode mapping objects")
	}
	status, raw, err := c.call(ctx, apiCall{op: op, method: http.MethodPost, url: u, bearer: auth.Bearer,
		contentType: "application/json", body: body, reject: c.apiReject(op, "mapping object create", auth.Bearer)})
	if err != nil {
		return nil, err
	}
	// The answer's shape is not documented: an array, one object, or nothing.
	var out []MappingObject
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		var one MappingObject
		if err = json.Unmarshal(t, &one); err == nil {
			out = []MappingObject{one}
		}
	} else if len(t) > 0 {
		err = json.Unmarshal(t, &out)
	}
	if err != nil {
		return nil, scrub(&Error{Kind: KindGateway, Op: op, Status: status,
			Message: "mapping object create answer is not readable", Body: clipBody(raw)}, auth.Bearer)
	}
	return out, nil
}

// UpdateMappingObject replaces one object (PUT …/{id}); revision, when known, is sent
// as If-Match.
func (c *Client) UpdateMappingObject(ctx context.Context, auth Auth, m MappingObject, revision string) (MappingObject, error) {
	const op = "mapping object update"
	if m.ID == "" {
		return MappingObject{}, badRequest(op, "mapping object has no id")
	}
	body, err := json.Marshal(m)
	if err != nil {
		return MappingObject{}, badRequest(op, "cannot encode the mapping object")
	}
	return c.mappingObjectCall(ctx, auth, op, http.MethodPut, m.ID, body, revision, nil)
}

// DeleteMappingObject deletes one object (DELETE …/{id}).
func (c *Client) DeleteMappingObject(ctx context.Context, auth Auth, id MappingID, revision string) error {
	const op = "mapping object delete"
	_, err := c.mappingObjectCall(ctx, auth, op, http.MethodDelete, id, nil, revision, nil)
	return err
}

func (c *Client) mappingObjectCall(ctx context.Context, auth Auth, op, method string, id MappingID, body []byte, revision string, h *http.Header) (MappingObject, error) {
	if err := auth.check(op); err != nil {
		return MappingObject{}, err
	}
	if id == "" {
		return MappingObject{}, badRequest(op, "mapping object id is empty")
	}
	u, err := c.mappingObjectsURL(auth, id)
	if err != nil {
		return MappingObject{}, err
	}
	a := apiCall{op: op, method: method, url: u, bearer: auth.Bearer, body: body, header: ifMatch(revision), answerHeader: h,
		reject: c.apiReject(op, op, auth.Bearer)}
	if body != nil {
		a.contentType = "application/json"
	}
	status, raw, err := c.call(ctx, a)
	if err != nil {
		return MappingObject{}, err
	}
	var m MappingObject
	if t := bytes.TrimSpace(raw); len(t) > 0 {
		if err := json.Unmarshal(t, &m); err != nil {
			if method == http.MethodDelete {
				return MappingObject{}, nil // the answer to a delete is not needed
			}
			return MappingObject{}, scrub(&Error{Kind: KindGateway, Op: op, Status: status,
				Message: op + " answer is not a mapping object", Body: clipBody(raw)}, auth.Bearer)
		}
	}
	return m, nil
}
