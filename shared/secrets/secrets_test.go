package secrets_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/secrets"
	"github.com/lpmtls/lpmtls/shared/testworld/awsfake"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

var _ secrets.API = (*secretsmanager.Client)(nil)

func TestParse(t *testing.T) {
	login := lp.Credentials{AccountID: "12345678", Username: "bot-user-VALUE", Password: "P@ss-login-VALUE"}
	tests := []struct {
		file    string
		want    *lp.Credentials
		wantErr []string // substrings the error must contain
	}{
		{file: "login.json", want: &login},
		{file: "oauth2.json", want: &lp.Credentials{AccountID: "12345678", ClientID: "client-id-VALUE", ClientSecret: "client-secret-VALUE"}},
		{file: "numeric_account.json", want: &lp.Credentials{AccountID: "12345678", Username: "bot-user-VALUE", Password: "numeric-pw-VALUE"}},
		{file: "extra_fields.json", want: &lp.Credentials{AccountID: "12345678", Username: "bot-user-VALUE", Password: "P@ss-VALUE"}},
		{file: "missing_password.json", wantErr: []string{"not a login secret (missing password) nor an oauth2 secret (missing clientId, clientSecret)"}},
		{file: "missing_client_secret.json", wantErr: []string{"(missing username, password)", "(missing clientSecret)"}},
		{file: "empty_password.json", wantErr: []string{"missing password"}},
		{file: "only_account.json", wantErr: []string{"missing username, password", "missing clientId, clientSecret"}},
		{file: "missing_account.json", wantErr: []string{"missing accountId"}},
		{file: "both.json", wantErr: []string{"both", "username, password", "clientId, clientSecret"}},
		{file: "fractional_account.json", wantErr: []string{"accountId must be a string or an integer"}},
		{file: "numeric_password.json", wantErr: []string{"password must be a string"}},
		{file: "not_json.json", wantErr: []string{"not valid JSON"}},
		{file: "truncated.json", wantErr: []string{"not valid JSON"}},
		{file: "array.json", wantErr: []string{"not a JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := secrets.Parse(raw)
			if tt.want != nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got != *tt.want {
					t.Fatalf("got %+v, want %+v", got, *tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("want error, got %+v", got)
			}
			if !errors.Is(err, secrets.ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
			for _, sub := range tt.wantErr {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("error %q lacks %q", err, sub)
				}
			}
			assertNoValues(t, err.Error(), raw)
			if got != (lp.Credentials{}) {
				t.Errorf("credentials returned with an error: %+v", got)
			}
		})
	}
}

// assertNoValues fails if msg contains any value from the fixture: every string or
// number in it when it is JSON, every token otherwise.
func assertNoValues(t *testing.T, msg string, raw []byte) {
	t.Helper()
	var vals []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			vals = append(vals, v)
		case json.Number:
			vals = append(vals, v.String())
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) == nil {
		walk(doc)
	} else {
		vals = append(vals, strings.FieldsFunc(string(raw), func(r rune) bool { return strings.ContainsRune(" \n\t=,:{}\"", r) })...)
	}
	if strings.Contains(msg, "VALUE") {
		t.Errorf("error %q contains a fixture value marker", msg)
	}
	for _, v := range vals {
		if len(v) >= 4 && strings.Contains(msg, v) {
			t.Errorf("error %q echoes fixture value %q", msg, v)
		}
	}
}

func newSource(t *testing.T, id string) (*awsfake.Server, *secrets.Source) {
	t.Helper()
	srv, cfg := testenv.AWS(t)
	return srv, secrets.NewSource(secretsmanager.NewFromConfig(cfg), id)
}

func TestSourceReadsEveryCall(t *testing.T) {
	srv, src := newSource(t, "lpmtls/brand")
	ctx := context.Background()
	srv.PutSecret("lpmtls/brand", `{"accountId":"1","username":"u","password":"old-pw"}`)
	c, err := src.Credentials(ctx)
	if err != nil || c.Password != "old-pw" || c.Method() != lp.AuthLogin {
		t.Fatalf("first read: %+v %v", c, err)
	}
	// A rotation must be visible on the next call: no caching here.
	srv.PutSecret("lpmtls/brand", `{"accountId":"1","clientId":"cid","clientSecret":"cs"}`)
	c, err = src.Credentials(ctx)
	if err != nil || c.ClientSecret != "cs" || c.Method() != lp.AuthOAuth2 {
		t.Fatalf("after rotation: %+v %v", c, err)
	}
	if n := srv.Calls()["secretsmanager.GetSecretValue"]; n != 2 {
		t.Errorf("GetSecretValue calls = %d, want 2", n)
	}
}

func TestSourceByARNAndBinary(t *testing.T) {
	srv, _ := newSource(t, "")
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("bin/brand"),
		SecretBinary: []byte(`{"accountId":42,"clientId":"cid","clientSecret":"cs"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := secrets.NewSource(sm, aws.ToString(out.ARN)).Credentials(ctx)
	want := lp.Credentials{AccountID: "42", ClientID: "cid", ClientSecret: "cs"}
	if err != nil || c != want {
		t.Fatalf("got %+v %v, want %+v", c, err, want)
	}
}

func TestSourceErrors(t *testing.T) {
	ctx := context.Background()

	t.Run("not found", func(t *testing.T) {
		_, src := newSource(t, "lpmtls/missing")
		_, err := src.Credentials(ctx)
		var nf *smtypes.ResourceNotFoundException
		if !errors.As(err, &nf) || !strings.Contains(err.Error(), `"lpmtls/missing"`) {
			t.Fatalf("got %T %v", err, err)
		}
		if errors.Is(err, secrets.ErrInvalid) {
			t.Error("an AWS error must not look like a bad secret")
		}
	})

	t.Run("access denied", func(t *testing.T) {
		srv, src := newSource(t, "lpmtls/denied")
		srv.PutSecret("lpmtls/denied", `{"accountId":"1","username":"u","password":"p"}`)
		srv.FailNext("secretsmanager.GetSecretValue", 1, 400, "AccessDeniedException")
		_, err := src.Credentials(ctx)
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "AccessDeniedException" || !strings.Contains(err.Error(), `"lpmtls/denied"`) {
			t.Fatalf("got %T %v", err, err)
		}
	})

	t.Run("bad shape", func(t *testing.T) {
		srv, src := newSource(t, "lpmtls/bad")
		srv.PutSecret("lpmtls/bad", `{"accountId":"1","username":"hidden-user-VALUE"}`)
		_, err := src.Credentials(ctx)
		if !errors.Is(err, secrets.ErrInvalid) {
			t.Fatalf("want ErrInvalid, got %v", err)
		}
		want := `secret "lpmtls/bad": not a login secret (missing password) nor an oauth2 secret (missing clientId, clientSecret)`
		if err.Error() != want {
			t.Errorf("got  %q\nwant %q", err, want)
		}
	})
}

// TestReadFailuresTellCauseApart drives the real SDK (with its standard retryer, minus
// the backoff pauses) against the fake answering AWS's own error shapes, and checks
// what a caller then sees: an outage says retry, a deployment mistake names what to
// fix, and neither is the bare internal_error of a bug.
func TestReadFailuresTellCauseApart(t *testing.T) {
	const id = "lpmtls/brand"
	tests := []struct {
		name   string
		fault  func(srv *awsfake.Server)
		reason secrets.Reason // 0: not a secrets.Error
		status int
		code   string
		retry  string // Retry-After
	}{
		{"throttled past the SDK's retries", func(s *awsfake.Server) { s.SetError(awsfake.SecretsManager, awsfake.ErrThrottling) },
			secrets.ReasonUnavailable, 503, apierr.CodeSecretsUnavailable, "5"},
		{"service down", func(s *awsfake.Server) { s.SetDown(awsfake.SecretsManager, true) },
			secrets.ReasonUnavailable, 503, apierr.CodeSecretsUnavailable, "5"},
		{"internal service error", func(s *awsfake.Server) { s.SetError(awsfake.SecretsManager, awsfake.ErrInternalService) },
			secrets.ReasonUnavailable, 503, apierr.CodeSecretsUnavailable, "5"},
		{"throttled once, then served", func(s *awsfake.Server) { s.FailNextError("secretsmanager.GetSecretValue", 1, awsfake.ErrThrottling) },
			0, 0, "", ""},
		{"unreachable", func(s *awsfake.Server) { s.Close() },
			secrets.ReasonUnavailable, 503, apierr.CodeSecretsUnavailable, "5"},
		{"role may not read the secret", func(s *awsfake.Server) { s.SetError(awsfake.SecretsManager, awsfake.ErrAccessDenied) },
			secrets.ReasonAccessDenied, 500, apierr.CodeSecretAccessDenied, ""},
		{"role may not use the KMS key", func(s *awsfake.Server) { s.SetError(awsfake.SecretsManager, awsfake.ErrKMSAccessDenied) },
			secrets.ReasonKMSDenied, 500, apierr.CodeSecretKMSDenied, ""},
		{"KMS decryption failure", func(s *awsfake.Server) { s.SetError(awsfake.SecretsManager, awsfake.ErrDecryption) },
			secrets.ReasonKMSDenied, 500, apierr.CodeSecretKMSDenied, ""},
		{"no such secret", func(s *awsfake.Server) { s.SetError(awsfake.SecretsManager, awsfake.ErrSecretNotFound) },
			secrets.ReasonNotFound, 500, apierr.CodeSecretNotFound, ""},
		{"secret scheduled for deletion", func(s *awsfake.Server) {
			s.SetError(awsfake.SecretsManager, awsfake.AWSError{Status: 400, Type: "InvalidRequestException",
				Message: "You can't perform this operation on the secret because it was marked for deletion."})
		}, secrets.ReasonNotFound, 500, apierr.CodeSecretNotFound, ""},
		{"bad shape", func(s *awsfake.Server) { s.PutSecret(id, `{"accountId":"1","username":"u"}`) },
			0, 500, apierr.CodeSecretInvalid, ""},
		{"an error code lpmtls does not know is a bug", func(s *awsfake.Server) {
			s.SetError(awsfake.SecretsManager, awsfake.AWSError{Status: 400, Type: "InvalidParameterException", Message: "SecretId is required"})
		}, 0, 500, apierr.CodeInternal, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, cfg := testenv.AWS(t)
			srv.PutSecret(id, `{"accountId":"1","username":"u","password":"pw-NEVER-SHOWN"}`)
			api := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
				o.RetryMaxAttempts = 3
				o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
					so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
				})
			})
			tc.fault(srv)
			_, err := secrets.NewSource(api, id).Credentials(context.Background())
			if tc.code == "" {
				if err != nil {
					t.Fatalf("want the SDK's retry to succeed, got %v", err)
				}
				return
			}
			var se *secrets.Error
			if got := errors.As(err, &se); got != (tc.reason != 0) || (got && se.Reason != tc.reason) {
				t.Fatalf("error %v (%T), want reason %v", err, err, tc.reason)
			}
			ae := apierr.From(fmt.Errorf("session: read credentials: %w", err))
			r := ae.HTTPResponse()
			if ae.Status != tc.status || ae.Code != tc.code || ae.Source != apierr.SourceLPMTLS || r.Headers["Retry-After"] != tc.retry {
				t.Fatalf("caller sees %d %s (%s) Retry-After %q, want %d %s %q", ae.Status, ae.Code, ae.Message, r.Headers["Retry-After"], tc.status, tc.code, tc.retry)
			}
			if ae.Transient != (tc.status == 503 || tc.code == apierr.CodeInternal) {
				t.Errorf("transient = %v", ae.Transient)
			}
			if strings.Contains(r.Body, "pw-NEVER-SHOWN") || strings.Contains(r.Body, "arn:aws") || strings.Contains(r.Body, id) {
				t.Errorf("the answer names the secret or its value: %s", r.Body)
			}
		})
	}
}

func TestStatic(t *testing.T) {
	ok := lp.Credentials{AccountID: "1", Username: "u", Password: "p"}
	got, err := secrets.Static{Creds: ok}.Credentials(context.Background())
	if err != nil || got != ok {
		t.Fatalf("got %+v %v", got, err)
	}
	_, err = secrets.Static{Creds: lp.Credentials{AccountID: "1", Username: "u"}}.Credentials(context.Background())
	if !errors.Is(err, secrets.ErrInvalid) || !strings.Contains(err.Error(), "missing password") {
		t.Fatalf("incomplete static credentials: %v", err)
	}
}
