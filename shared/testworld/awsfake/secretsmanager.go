package awsfake

import (
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
	"time"
)

const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
)

type secretVersion struct {
	id      string
	str     *string
	bin     []byte
	stages  []string
	created time.Time
}

type secret struct {
	name     string
	arn      string
	versions []*secretVersion
}

// secretARN mimics the real form, which ends in "-" and six random characters; a hash
// keeps it stable across runs so tests can compare ARNs.
func secretARN(name string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	h := fnv.New64a()
	h.Write([]byte(name))
	n := h.Sum64()
	var suffix [6]byte
	for i := range suffix {
		suffix[i] = alphabet[n%uint64(len(alphabet))]
		n /= uint64(len(alphabet))
	}
	return "arn:aws:secretsmanager:" + Region + ":" + AccountID + ":secret:" + name + "-" + string(suffix[:])
}

// PutSecret seeds (or adds a new AWSCURRENT version to) a string secret.
func (s *Server) PutSecret(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[name]
	if sec == nil {
		sec = &secret{name: name, arn: secretARN(name)}
		s.secrets[name] = sec
	}
	v := value
	s.addVersion(sec, &secretVersion{id: s.nextVersionID(), str: &v})
}

// addVersion makes v AWSCURRENT and demotes the old current to AWSPREVIOUS, as
// PutSecretValue does by default; callers hold s.mu.
func (s *Server) addVersion(sec *secret, v *secretVersion) {
	v.created = s.now()
	v.stages = []string{stageCurrent}
	for _, old := range sec.versions {
		old.stages = slices.DeleteFunc(old.stages, func(st string) bool { return st == stagePrevious })
		if slices.Contains(old.stages, stageCurrent) {
			old.stages = slices.DeleteFunc(old.stages, func(st string) bool { return st == stageCurrent })
			old.stages = append(old.stages, stagePrevious)
		}
	}
	sec.versions = append(sec.versions, v)
}

// findSecret accepts a name, a full ARN, or a partial ARN (without the random suffix),
// like the real service; callers hold s.mu.
func (s *Server) findSecret(id string) *secret {
	if sec := s.secrets[id]; sec != nil {
		return sec
	}
	if !strings.HasPrefix(id, "arn:") {
		return nil
	}
	for _, sec := range s.secrets {
		if sec.arn == id || sec.arn[:len(sec.arn)-7] == id {
			return sec
		}
	}
	return nil
}

func secretNotFound() *apiError {
	return errf(http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
}

type getSecretValueIn struct {
	SecretId     string
	VersionId    string
	VersionStage string
}

type getSecretValueOut struct {
	ARN           string
	Name          string
	SecretString  *string `json:",omitempty"`
	SecretBinary  []byte  `json:",omitempty"`
	VersionId     string
	VersionStages []string
	CreatedDate   float64
}

func (s *Server) getSecretValue(body []byte) (any, *apiError) {
	var in getSecretValueIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.SecretId == "" {
		return nil, errf(http.StatusBadRequest, "InvalidParameterException", "SecretId is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.findSecret(in.SecretId)
	if sec == nil {
		return nil, secretNotFound()
	}
	stage := in.VersionStage
	if stage == "" && in.VersionId == "" {
		stage = stageCurrent
	}
	for _, v := range sec.versions {
		if in.VersionId != "" && v.id != in.VersionId {
			continue
		}
		if stage != "" && !slices.Contains(v.stages, stage) {
			continue
		}
		return getSecretValueOut{
			ARN: sec.arn, Name: sec.name,
			SecretString: v.str, SecretBinary: v.bin,
			VersionId: v.id, VersionStages: slices.Clone(v.stages),
			CreatedDate: epoch(v.created),
		}, nil
	}
	return nil, errf(http.StatusBadRequest, "ResourceNotFoundException",
		"Secrets Manager can't find the specified secret value for VersionId %q / staging label %q", in.VersionId, stage)
}

type createSecretIn struct {
	Name               string
	ClientRequestToken string
	SecretString       *string
	SecretBinary       []byte
}

type createSecretOut struct {
	ARN       string
	Name      string
	VersionId string `json:",omitempty"`
}

func (s *Server) createSecret(body []byte) (any, *apiError) {
	var in createSecretIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.Name == "" {
		return nil, errf(http.StatusBadRequest, "InvalidParameterException", "Name is required")
	}
	if in.SecretString != nil && in.SecretBinary != nil {
		return nil, errf(http.StatusBadRequest, "InvalidParameterException", "You can't specify both a binary secret value and a string secret value in the same secret.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secrets[in.Name] != nil {
		return nil, errf(http.StatusBadRequest, "ResourceExistsException", "The operation failed because the secret %s already exists.", in.Name)
	}
	sec := &secret{name: in.Name, arn: secretARN(in.Name)}
	s.secrets[in.Name] = sec
	out := createSecretOut{ARN: sec.arn, Name: sec.name}
	if in.SecretString != nil || in.SecretBinary != nil {
		id := in.ClientRequestToken
		if id == "" {
			id = s.nextVersionID()
		}
		s.addVersion(sec, &secretVersion{id: id, str: in.SecretString, bin: in.SecretBinary})
		out.VersionId = id
	}
	return out, nil
}

type putSecretValueIn struct {
	SecretId           string
	ClientRequestToken string
	SecretString       *string
	SecretBinary       []byte
}

type putSecretValueOut struct {
	ARN           string
	Name          string
	VersionId     string
	VersionStages []string
}

func (s *Server) putSecretValue(body []byte) (any, *apiError) {
	var in putSecretValueIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if (in.SecretString == nil) == (in.SecretBinary == nil) {
		return nil, errf(http.StatusBadRequest, "InvalidParameterException", "exactly one of SecretString and SecretBinary is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.findSecret(in.SecretId)
	if sec == nil {
		return nil, secretNotFound()
	}
	id := in.ClientRequestToken
	if id == "" {
		id = s.nextVersionID()
	}
	for _, v := range sec.versions {
		if v.id == id {
			// The token is an idempotency key: a replay is fine only with the same value.
			if !sameValue(v, in.SecretString, in.SecretBinary) {
				return nil, errf(http.StatusBadRequest, "ResourceExistsException", "A version with ID %s already exists with a different value.", id)
			}
			return putSecretValueOut{ARN: sec.arn, Name: sec.name, VersionId: v.id, VersionStages: slices.Clone(v.stages)}, nil
		}
	}
	v := &secretVersion{id: id, str: in.SecretString, bin: in.SecretBinary}
	s.addVersion(sec, v)
	return putSecretValueOut{ARN: sec.arn, Name: sec.name, VersionId: v.id, VersionStages: slices.Clone(v.stages)}, nil
}

func sameValue(v *secretVersion, str *string, bin []byte) bool {
	if (v.str == nil) != (str == nil) {
		return false
	}
	if str != nil {
		return *v.str == *str
	}
	return string(v.bin) == string(bin)
}
