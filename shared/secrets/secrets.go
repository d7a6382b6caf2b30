// Package secrets reads a brand's LivePerson credentials from AWS Secrets Manager and
// checks their shape. Error messages name fields and secret ids, never values: they end
// up in logs and HTTP answers.
package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/lpmtls/lpmtls/shared/lp"
)

// ErrInvalid marks a secret that was read but has the wrong shape: a configuration
// mistake that retrying will not fix, unlike an AWS error. Test with errors.Is.
var ErrInvalid = errors.New("invalid credentials secret")

// invalidError keeps messages short ("not valid JSON ...") while still matching
// ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// Reason says why the secret could not be read, so that a caller and an on-call
// engineer can tell "retry later" from "fix the deployment".
type Reason int

const (
	// ReasonUnavailable: Secrets Manager (or KMS behind it) is down, throttling, or
	// unreachable, after the SDK's own retries. Retrying later helps.
	ReasonUnavailable Reason = iota + 1
	// ReasonAccessDenied: the function's role may not read the secret (IAM).
	ReasonAccessDenied
	// ReasonNotFound: no such secret, or it is deleted or scheduled for deletion.
	ReasonNotFound
	// ReasonKMSDenied: the secret's KMS key refused to decrypt it for the role
	// (kms:Decrypt missing, key disabled or pending deletion).
	ReasonKMSDenied
)

// Error is a failed read of the secret that is not a bug: an outage or a deployment
// mistake. It names the secret and AWS's error code, never the value.
type Error struct {
	Reason   Reason
	SecretID string
	// Code is AWS's error code (AccessDeniedException, ThrottlingException...), "" for
	// a failure without an answer (network).
	Code string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("secret %q: %v", e.SecretID, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// readError classifies a GetSecretValue failure by AWS's error code, after the SDK's
// retries (whose MaxAttemptsError wraps the last attempt's error). A cancelled or
// expired context is the invocation's deadline, not Secrets Manager's fault, and an
// error code lpmtls does not know stays a plain error (a bug until shown otherwise).
func readError(id string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("secret %q: %w", id, err)
	}
	e := &Error{SecretID: id, Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Code = ae.ErrorCode()
	}
	switch {
	case e.Code == "DecryptionFailure" || (e.Code == "AccessDeniedException" && strings.Contains(ae.ErrorMessage(), "KMS")) ||
		strings.HasPrefix(e.Code, "KMS"):
		// Secrets Manager reports a refused kms:Decrypt as AccessDeniedException
		// "Access to KMS is not allowed"; KMS's own codes (KMSDisabledException...) too.
		e.Reason = ReasonKMSDenied
	case e.Code == "AccessDeniedException":
		e.Reason = ReasonAccessDenied
	case e.Code == "ResourceNotFoundException" || e.Code == "InvalidRequestException":
		// InvalidRequestException on a read is a secret deleted or scheduled for deletion.
		e.Reason = ReasonNotFound
	case retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary,
		retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary:
		// Throttling, 5xx, connection failures: what the SDK itself would retry.
		e.Reason = ReasonUnavailable
	default:
		return fmt.Errorf("secret %q: %w", id, err)
	}
	return e
}

// API is the slice of *secretsmanager.Client this package needs.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Source reads credentials from one secret.
type Source struct {
	api      API
	secretID string
}

// NewSource returns a Source for secretID (a name or an ARN).
func NewSource(api API, secretID string) *Source {
	return &Source{api: api, secretID: secretID}
}

// Credentials fetches and parses the secret on every call: caching, and deciding when
// a rotated secret must be re-read, belong to the session layer.
func (s *Source) Credentials(ctx context.Context) (lp.Credentials, error) {
	out, err := s.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &s.secretID})
	if err != nil {
		// SDK errors carry codes and AWS's own messages, not the secret value.
		return lp.Credentials{}, readError(s.secretID, err)
	}
	var raw []byte
	switch {
	case out.SecretString != nil:
		raw = []byte(*out.SecretString)
	case out.SecretBinary != nil:
		raw = out.SecretBinary
	default:
		return lp.Credentials{}, invalidf("secret %q: holds neither SecretString nor SecretBinary", s.secretID)
	}
	c, err := Parse(raw)
	if err != nil {
		return lp.Credentials{}, fmt.Errorf("secret %q: %w", s.secretID, err)
	}
	return c, nil
}

// Static serves fixed credentials, e.g. from the environment in local mode.
type Static struct{ Creds lp.Credentials }

// Credentials returns s.Creds after the same shape check a secret gets, so a local
// run fails as early and as clearly as a deployed one.
func (s Static) Credentials(context.Context) (lp.Credentials, error) {
	if err := validate(s.Creds); err != nil {
		return lp.Credentials{}, fmt.Errorf("static credentials: %w", err)
	}
	return s.Creds, nil
}

// Field names as they appear in the secret JSON.
const (
	fAccountID    = "accountId"
	fUsername     = "username"
	fPassword     = "password"
	fClientID     = "clientId"
	fClientSecret = "clientSecret"
)

// Parse decodes a secret: {"accountId","username","password"} for the Login Service or
// {"accountId","clientId","clientSecret"} for OAuth2. accountId may be a JSON string or
// an integer. Unknown fields are ignored so brands can keep notes in the secret. Every
// error matches ErrInvalid.
func Parse(raw []byte) (lp.Credentials, error) {
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	err := dec.Decode(&fields)
	// The decoder's own messages can quote the input; say only what and where.
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return lp.Credentials{}, invalidf("not valid JSON (syntax error at byte %d of %d)", se.Offset, len(raw))
	case errors.As(err, &te) || (err == nil && fields == nil):
		return lp.Credentials{}, invalidf("not a JSON object (%d bytes)", len(raw))
	case err != nil:
		return lp.Credentials{}, invalidf("not valid JSON (%d bytes, incomplete)", len(raw))
	case dec.More():
		return lp.Credentials{}, invalidf("not valid JSON (data after the object)")
	}

	var c lp.Credentials
	if c.AccountID, err = accountID(fields[fAccountID]); err != nil {
		return lp.Credentials{}, err
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{fUsername, &c.Username},
		{fPassword, &c.Password},
		{fClientID, &c.ClientID},
		{fClientSecret, &c.ClientSecret},
	} {
		if *f.dst, err = stringField(f.name, fields[f.name]); err != nil {
			return lp.Credentials{}, err
		}
	}
	if err := validate(c); err != nil {
		return lp.Credentials{}, err
	}
	return c, nil
}

func stringField(name string, raw json.RawMessage) (string, error) {
	if raw == nil || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalidf("field %s must be a string", name)
	}
	return s, nil
}

func accountID(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] >= '0' && raw[0] <= '9' {
		// A number: only a plain integer is an account id (no sign, fraction, exponent).
		for _, b := range raw {
			if b < '0' || b > '9' {
				return "", invalidf("field %s must be a string or an integer", fAccountID)
			}
		}
		return string(raw), nil
	}
	s, err := stringField(fAccountID, raw)
	if err != nil {
		return "", invalidf("field %s must be a string or an integer", fAccountID)
	}
	return strings.TrimSpace(s), nil
}

// validate requires an account and exactly one complete pair. An empty string counts as
// missing: it is the usual result of a half-filled console form.
func validate(c lp.Credentials) error {
	loginMissing := missing(map[string]string{fUsername: c.Username, fPassword: c.Password}, fUsername, fPassword)
	oauthMissing := missing(map[string]string{fClientID: c.ClientID, fClientSecret: c.ClientSecret}, fClientID, fClientSecret)
	hasLogin := len(loginMissing) < 2
	hasOAuth := len(oauthMissing) < 2

	var problems []string
	if c.AccountID == "" {
		problems = append(problems, "missing "+fAccountID)
	}
	switch {
	case hasLogin && hasOAuth:
		problems = append(problems, fmt.Sprintf("has both login fields (%s, %s) and oauth2 fields (%s, %s); keep exactly one pair",
			fUsername, fPassword, fClientID, fClientSecret))
	case len(loginMissing) == 0 || len(oauthMissing) == 0:
		// one complete pair and nothing of the other: fine
	default:
		problems = append(problems, fmt.Sprintf("not a login secret (missing %s) nor an oauth2 secret (missing %s)",
			strings.Join(loginMissing, ", "), strings.Join(oauthMissing, ", ")))
	}
	if len(problems) > 0 {
		return invalidf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// missing lists the names, in order, whose value is empty.
func missing(vals map[string]string, names ...string) []string {
	var out []string
	for _, n := range names {
		if vals[n] == "" {
			out = append(out, n)
		}
	}
	return out
}
