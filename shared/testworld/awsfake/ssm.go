package awsfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	typeString       = "String"
	typeStringList   = "StringList"
	typeSecureString = "SecureString"

	defaultKeyID = "alias/aws/ssm"

	maxNameLen       = 1011
	maxHierarchy     = 15
	maxStandardValue = 4096
	maxAdvancedValue = 8192
)

type parameter struct {
	name     string
	value    string
	typ      string
	keyID    string
	version  int64
	tier     string
	modified time.Time
}

func parameterARN(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return "arn:aws:ssm:" + Region + ":" + AccountID + ":parameter" + name
}

// Parameter reports the stored plaintext and type of name, for assertions such as
// "the token was written as a SecureString".
func (s *Server) Parameter(name string) (value, typ string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.params[name]
	if p == nil {
		return "", "", false
	}
	return p.value, p.typ, true
}

// ParameterKeyID is the KMS key a SecureString was written with ("" for other types).
func (s *Server) ParameterKeyID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.params[name]; p != nil {
		return p.keyID
	}
	return ""
}

// SetParameter seeds or overwrites name without any of PutParameter's checks; the
// version still increments.
func (s *Server) SetParameter(name, value, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.params[name]
	if p == nil {
		p = &parameter{name: name, tier: "Standard"}
		s.params[name] = p
	}
	p.value, p.typ = value, typ
	p.keyID = ""
	if typ == typeSecureString {
		p.keyID = defaultKeyID
	}
	p.version++
	p.modified = s.now()
}

// sealed is what GetParameter shows for a SecureString without WithDecryption: real
// AWS returns the KMS ciphertext, base64. An HMAC under a per-server random key has
// the same look and, like ciphertext, reveals nothing about the plaintext.
func (s *Server) sealed(p *parameter) string {
	m := hmac.New(sha256.New, s.sealKey)
	m.Write([]byte(p.name))
	m.Write([]byte{0})
	m.Write([]byte(strconv.FormatInt(p.version, 10)))
	m.Write([]byte{0})
	m.Write([]byte(p.value))
	// "AQICAH" is how KMS envelope ciphertexts commonly start once base64-encoded.
	return "AQICAH" + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func paramNotFound(name string) *apiError {
	return errf(http.StatusBadRequest, "ParameterNotFound", "Parameter %s not found.", name)
}

// lookupName maps a parameter ARN back to its name; GetParameter accepts both.
func lookupName(id string) string {
	prefix := "arn:aws:ssm:" + Region + ":" + AccountID + ":parameter"
	if rest, ok := strings.CutPrefix(id, prefix); ok {
		if strings.Count(rest, "/") == 1 {
			return rest[1:] // a flat name is written "parameter/name" in its ARN
		}
		return rest
	}
	return id
}

type parameterOut struct {
	Name             string
	Type             string
	Value            string
	Version          int64
	ARN              string
	LastModifiedDate float64
	DataType         string
}

func (s *Server) render(p *parameter, decrypt bool) parameterOut {
	v := p.value
	if p.typ == typeSecureString && !decrypt {
		v = s.sealed(p)
	}
	return parameterOut{
		Name: p.name, Type: p.typ, Value: v, Version: p.version,
		ARN: parameterARN(p.name), LastModifiedDate: epoch(p.modified), DataType: "text",
	}
}

type getParameterIn struct {
	Name           string
	WithDecryption bool
}

func (s *Server) getParameter(body []byte) (any, *apiError) {
	var in getParameterIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.Name == "" {
		return nil, errf(http.StatusBadRequest, "ValidationException", "Name is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.params[lookupName(in.Name)]
	if p == nil {
		return nil, paramNotFound(in.Name)
	}
	return struct{ Parameter parameterOut }{s.render(p, in.WithDecryption)}, nil
}

type getParametersIn struct {
	Names          []string
	WithDecryption bool
}

type getParametersOut struct {
	Parameters        []parameterOut
	InvalidParameters []string
}

func (s *Server) getParameters(body []byte) (any, *apiError) {
	var in getParametersIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkNames(in.Names); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := getParametersOut{Parameters: []parameterOut{}, InvalidParameters: []string{}}
	for _, n := range in.Names {
		if p := s.params[lookupName(n)]; p != nil {
			out.Parameters = append(out.Parameters, s.render(p, in.WithDecryption))
		} else {
			out.InvalidParameters = append(out.InvalidParameters, n)
		}
	}
	return out, nil
}

type putParameterIn struct {
	Name      string
	Value     *string
	Type      string
	Overwrite bool
	KeyId     string
	Tier      string
}

type putParameterOut struct {
	Version int64
	Tier    string
}

func (s *Server) putParameter(body []byte) (any, *apiError) {
	var in putParameterIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := validateName(in.Name); e != nil {
		return nil, e
	}
	tier := in.Tier
	switch tier {
	case "", "Standard", "Intelligent-Tiering":
		tier = "Standard"
	case "Advanced":
	default:
		return nil, errf(http.StatusBadRequest, "ValidationException", "unknown Tier %q", in.Tier)
	}
	limit := maxStandardValue
	if tier == "Advanced" {
		limit = maxAdvancedValue
	}
	// Sizes and names only: a value never goes into an error message.
	if in.Value == nil || *in.Value == "" {
		return nil, errf(http.StatusBadRequest, "ValidationException", "Value must not be empty")
	}
	if len(*in.Value) > limit {
		return nil, errf(http.StatusBadRequest, "ValidationException", "Value of %d bytes exceeds the %s tier limit of %d", len(*in.Value), tier, limit)
	}
	switch in.Type {
	case "", typeString, typeStringList, typeSecureString:
	default:
		return nil, errf(http.StatusBadRequest, "UnsupportedParameterType", "parameter type %q is not supported", in.Type)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.params[in.Name]
	typ := in.Type
	if p != nil {
		if !in.Overwrite {
			return nil, errf(http.StatusBadRequest, "ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
		}
		if typ == "" {
			typ = p.typ // an overwrite without Type keeps the stored type
		} else if typ != p.typ && strings.HasPrefix(in.Name, "/") {
			return nil, errf(http.StatusBadRequest, "HierarchyTypeMismatchException",
				"Parameter Store does not support changing a parameter type in a hierarchy (%s to %s).", p.typ, typ)
		}
	} else if typ == "" {
		return nil, errf(http.StatusBadRequest, "ValidationException", "A parameter type is required when you create a parameter.")
	}
	if in.KeyId != "" && typ != typeSecureString {
		return nil, errf(http.StatusBadRequest, "ValidationException", "KeyId is only valid for SecureString parameters.")
	}
	keyID := ""
	if typ == typeSecureString {
		keyID = in.KeyId
		if keyID == "" {
			keyID = defaultKeyID
		}
	}
	if p == nil {
		p = &parameter{name: in.Name}
		s.params[in.Name] = p
	}
	p.value, p.typ, p.keyID, p.tier = *in.Value, typ, keyID, tier
	p.version++
	p.modified = s.now()
	return putParameterOut{Version: p.version, Tier: p.tier}, nil
}

type deleteParameterIn struct{ Name string }

func (s *Server) deleteParameter(body []byte) (any, *apiError) {
	var in deleteParameterIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.params[in.Name] == nil {
		return nil, paramNotFound(in.Name)
	}
	delete(s.params, in.Name)
	return struct{}{}, nil
}

type getParametersByPathIn struct {
	Path           string
	Recursive      bool
	WithDecryption bool
	MaxResults     *int
	NextToken      string
}

type getParametersByPathOut struct {
	Parameters []parameterOut
	NextToken  string `json:",omitempty"`
}

// getParametersByPath pages through the parameters under Path in name order, as AWS
// does: at most 10 a page, direct children only unless Recursive. The NextToken is the
// last name of the page, base64'd so a caller cannot mistake it for one.
func (s *Server) getParametersByPath(body []byte) (any, *apiError) {
	var in getParametersByPathIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if !strings.HasPrefix(in.Path, "/") {
		return nil, errf(http.StatusBadRequest, "ValidationException", "The parameter Path must start with /: %q", in.Path)
	}
	limit := 10
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 10 {
			return nil, errf(http.StatusBadRequest, "ValidationException", "MaxResults must be 1 to 10, got %d", *in.MaxResults)
		}
		limit = *in.MaxResults
	}
	after := ""
	if in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		if err != nil {
			return nil, errf(http.StatusBadRequest, "InvalidNextToken", "The specified token is not valid.")
		}
		after = string(b)
	}
	base := strings.TrimSuffix(in.Path, "/") + "/"
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for name := range s.params {
		rest, ok := strings.CutPrefix(name, base)
		if !ok || rest == "" || (!in.Recursive && strings.Contains(rest, "/")) || name <= after {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	out := getParametersByPathOut{Parameters: []parameterOut{}}
	for i, name := range names {
		if i == limit {
			out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(names[i-1]))
			break
		}
		out.Parameters = append(out.Parameters, s.render(s.params[name], in.WithDecryption))
	}
	return out, nil
}

type deleteParametersIn struct{ Names []string }

type deleteParametersOut struct {
	DeletedParameters []string
	InvalidParameters []string
}

// deleteParameters deletes up to 10 names; unknown ones come back in InvalidParameters.
func (s *Server) deleteParameters(body []byte) (any, *apiError) {
	var in deleteParametersIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkNames(in.Names); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := deleteParametersOut{DeletedParameters: []string{}, InvalidParameters: []string{}}
	for _, n := range in.Names {
		if s.params[n] == nil {
			out.InvalidParameters = append(out.InvalidParameters, n)
			continue
		}
		delete(s.params, n)
		out.DeletedParameters = append(out.DeletedParameters, n)
	}
	return out, nil
}

// ParameterNames lists the stored names under prefix (any depth), sorted.
func (s *Server) ParameterNames(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for name := range s.params {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// validateName applies Parameter Store's naming rules, so a key built from bad input
// fails here the way it would in AWS instead of only in production.
func validateName(name string) *apiError {
	bad := func(why string) *apiError {
		return errf(http.StatusBadRequest, "ValidationException", "Parameter name %q: %s", name, why)
	}
	if name == "" {
		return bad("must not be empty")
	}
	if len(name) > maxNameLen {
		return bad("too long")
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.-/", r)
		if !ok {
			return bad("only letters, digits and _ . - / are allowed")
		}
	}
	if strings.Contains(name, "/") {
		if !strings.HasPrefix(name, "/") {
			return bad("a name with / must be fully qualified (start with /)")
		}
		if strings.Contains(name, "//") || strings.HasSuffix(name, "/") {
			return bad("empty path segment")
		}
		if strings.Count(name, "/") > maxHierarchy {
			return errf(http.StatusBadRequest, "HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of %d levels.", maxHierarchy)
		}
	}
	first := strings.ToLower(strings.SplitN(strings.TrimPrefix(name, "/"), "/", 2)[0])
	if strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm") {
		return bad(`can't be prefixed with "aws" or "ssm"`)
	}
	return nil
}

// checkNames is SSM's limit on the names of one GetParameters or DeleteParameters call.
func checkNames(names []string) *apiError {
	if len(names) == 0 || len(names) > 10 {
		return errf(http.StatusBadRequest, "ValidationException", "Names must hold 1 to 10 names, got %d", len(names))
	}
	return nil
}
