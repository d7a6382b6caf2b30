package awsfake_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/lpmtls/lpmtls/shared/testworld/awsfake"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

func TestSSMParameterLifecycle(t *testing.T) {
	srv, cfg := testenv.AWS(t)
	ctx := context.Background()
	c := ssm.NewFromConfig(cfg)
	name := "/lpmtls/123/token"

	_, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if !errors.As(err, &nf) {
		t.Fatalf("GetParameter missing: want *ParameterNotFound, got %T %v", err, err)
	}

	put, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("s3cr3t"), Type: ssmtypes.ParameterTypeSecureString})
	if err != nil {
		t.Fatal(err)
	}
	if put.Version != 1 {
		t.Errorf("first version = %d, want 1", put.Version)
	}

	_, err = c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("other"), Type: ssmtypes.ParameterTypeSecureString})
	var ae *ssmtypes.ParameterAlreadyExists
	if !errors.As(err, &ae) {
		t.Fatalf("PutParameter without Overwrite: want *ParameterAlreadyExists, got %T %v", err, err)
	}

	got, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if v := aws.ToString(got.Parameter.Value); v == "s3cr3t" || !strings.HasPrefix(v, "AQICAH") {
		t.Errorf("SecureString without decryption should look like ciphertext, got %q", v)
	}
	got, err = c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	p := got.Parameter
	if aws.ToString(p.Value) != "s3cr3t" || p.Type != ssmtypes.ParameterTypeSecureString || p.Version != 1 ||
		aws.ToString(p.Name) != name || aws.ToString(p.DataType) != "text" || p.LastModifiedDate == nil ||
		aws.ToString(p.ARN) != "arn:aws:ssm:us-east-1:123456789012:parameter"+name {
		t.Errorf("unexpected parameter %+v", p)
	}

	// Overwrite without Type keeps SecureString; changing the type in a hierarchy is refused.
	put, err = c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("v2"), Overwrite: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if put.Version != 2 {
		t.Errorf("overwrite version = %d, want 2", put.Version)
	}
	if v, typ, ok := srv.Parameter(name); !ok || v != "v2" || typ != "SecureString" {
		t.Errorf("Parameter() = %q %q %v", v, typ, ok)
	}
	_, err = c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("v3"), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)})
	var htm *ssmtypes.HierarchyTypeMismatchException
	if !errors.As(err, &htm) {
		t.Errorf("type change in hierarchy: want *HierarchyTypeMismatchException, got %T %v", err, err)
	}

	srv.SetParameter("/lpmtls/123/domains", `{"a":"b"}`, "String")
	gp, err := c.GetParameters(ctx, &ssm.GetParametersInput{Names: []string{name, "/lpmtls/123/domains", "/nope"}, WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(gp.Parameters) != 2 || len(gp.InvalidParameters) != 1 || gp.InvalidParameters[0] != "/nope" {
		t.Errorf("GetParameters = %+v", gp)
	}

	if _, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)})
	if !errors.As(err, &nf) {
		t.Errorf("DeleteParameter missing: want *ParameterNotFound, got %T %v", err, err)
	}
}

func TestSSMValidation(t *testing.T) {
	_, cfg := testenv.AWS(t)
	c := ssm.NewFromConfig(cfg)
	tests := []struct {
		name string
		in   ssm.PutParameterInput
		code string
	}{
		{"not fully qualified", ssm.PutParameterInput{Name: aws.String("a/b"), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString}, "ValidationException"},
		{"bad char", ssm.PutParameterInput{Name: aws.String("/a/b c"), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString}, "ValidationException"},
		{"aws prefix", ssm.PutParameterInput{Name: aws.String("/aws/x"), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString}, "ValidationException"},
		{"no type on create", ssm.PutParameterInput{Name: aws.String("/a/b"), Value: aws.String("x")}, "ValidationException"},
		{"too big", ssm.PutParameterInput{Name: aws.String("/a/b"), Value: aws.String(strings.Repeat("x", 4097)), Type: ssmtypes.ParameterTypeString}, "ValidationException"},
		{"key on String", ssm.PutParameterInput{Name: aws.String("/a/b"), Value: aws.String("x"), Type: ssmtypes.ParameterTypeString, KeyId: aws.String("k")}, "ValidationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.PutParameter(context.Background(), &tt.in)
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != tt.code {
				t.Fatalf("want %s, got %T %v", tt.code, err, err)
			}
		})
	}
}

func TestSecretsManager(t *testing.T) {
	srv, cfg := testenv.AWS(t)
	ctx := context.Background()
	c := secretsmanager.NewFromConfig(cfg)

	_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("missing")})
	var nf *smtypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("want *ResourceNotFoundException, got %T %v", err, err)
	}

	srv.PutSecret("brand/a", `{"v":1}`)
	byName, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("brand/a")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(byName.ARN)
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:us-east-1:123456789012:secret:brand/a-") || len(arn) != len("arn:aws:secretsmanager:us-east-1:123456789012:secret:brand/a-")+6 {
		t.Errorf("ARN = %q", arn)
	}
	if aws.ToString(byName.SecretString) != `{"v":1}` || aws.ToString(byName.Name) != "brand/a" ||
		aws.ToString(byName.VersionId) == "" || byName.CreatedDate == nil ||
		len(byName.VersionStages) != 1 || byName.VersionStages[0] != "AWSCURRENT" {
		t.Errorf("unexpected output %+v", byName)
	}
	for _, id := range []string{arn, arn[:len(arn)-7]} {
		out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil || aws.ToString(out.Name) != "brand/a" {
			t.Errorf("by ARN %q: %v %+v", id, err, out)
		}
	}

	put, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("brand/a"), SecretString: aws.String(`{"v":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("brand/a")})
	if err != nil || aws.ToString(cur.SecretString) != `{"v":2}` || aws.ToString(cur.VersionId) != aws.ToString(put.VersionId) {
		t.Errorf("after put: %v %+v", err, cur)
	}
	prev, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("brand/a"), VersionStage: aws.String("AWSPREVIOUS")})
	if err != nil || aws.ToString(prev.SecretString) != `{"v":1}` {
		t.Errorf("previous: %v %+v", err, prev)
	}

	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("missing"), SecretString: aws.String("x")})
	if !errors.As(err, &nf) {
		t.Errorf("PutSecretValue missing: want *ResourceNotFoundException, got %T %v", err, err)
	}

	if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bin"), SecretBinary: []byte{0, 1, 2}}); err != nil {
		t.Fatal(err)
	}
	bin, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("bin")})
	if err != nil || string(bin.SecretBinary) != "\x00\x01\x02" || bin.SecretString != nil {
		t.Errorf("binary: %v %+v", err, bin)
	}
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bin"), SecretString: aws.String("x")})
	var exists *smtypes.ResourceExistsException
	if !errors.As(err, &exists) {
		t.Errorf("CreateSecret twice: want *ResourceExistsException, got %T %v", err, err)
	}
}

func TestCountersAndSignature(t *testing.T) {
	srv, cfg := testenv.AWS(t)
	ctx := context.Background()
	c := ssm.NewFromConfig(cfg)
	for range 3 {
		c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/x")}) //nolint:errcheck // not found is fine
	}
	c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/x")}) //nolint:errcheck
	if got := srv.Calls()["AmazonSSM.GetParameter"]; got != 3 {
		t.Errorf("GetParameter calls = %d, want 3", got)
	}
	if got := srv.TotalCalls(); got != 4 {
		t.Errorf("TotalCalls = %d, want 4", got)
	}
	if !srv.Signed("AmazonSSM.GetParameter") {
		t.Error("SDK request was not SigV4-signed")
	}
	srv.ResetCalls()
	if srv.TotalCalls() != 0 || srv.Signed("AmazonSSM.GetParameter") {
		t.Error("ResetCalls left state behind")
	}
}

func TestFaultsAndDown(t *testing.T) {
	srv, cfg := testenv.AWS(t)
	ctx := context.Background()
	c := ssm.NewFromConfig(cfg)
	srv.SetParameter("/x", "v", "String")
	get := func() error {
		_, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/x")})
		return err
	}

	srv.FailNext("AmazonSSM.GetParameter", 2, 500, "InternalServerError")
	for i := range 2 {
		var ise *ssmtypes.InternalServerError
		if err := get(); !errors.As(err, &ise) {
			t.Fatalf("call %d: want *InternalServerError, got %T %v", i, err, err)
		}
	}
	if err := get(); err != nil {
		t.Fatalf("fault should be used up: %v", err)
	}

	srv.FailNext("AmazonSSM.PutParameter", 1, 500, "InternalServerError")
	if err := get(); err != nil {
		t.Fatalf("fault for another target must not fire: %v", err)
	}

	srv.FailNext("*", 1, 429, "ThrottlingException")
	var api smithy.APIError
	if err := get(); !errors.As(err, &api) || api.ErrorCode() != "ThrottlingException" {
		t.Fatalf("wildcard fault: got %T %v", err, err)
	}

	srv.Down(true)
	err := get()
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusServiceUnavailable || !errors.As(err, &api) || api.ErrorCode() != "ServiceUnavailable" {
		t.Fatalf("down: got %T %v", err, err)
	}
	srv.Down(false)
	if err := get(); err != nil {
		t.Fatalf("back up: %v", err)
	}
}

// The wire shape itself, for clients that are not the Go SDK.
func TestRawErrorShape(t *testing.T) {
	srv, _ := testenv.AWS(t)
	for _, tt := range []struct{ target, errType string }{
		{"AmazonSSM.Nope", "UnknownOperationException"},
		{"", "UnknownOperationException"},
		{"AmazonSSM.GetParameter", "ParameterNotFound"},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL(), strings.NewReader(`{"Name":"/missing"}`))
		req.Header.Set("X-Amz-Target", tt.target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" ||
			body["__type"] != tt.errType || body["message"] == "" {
			t.Errorf("%q: status %d type %q body %v err %v", tt.target, resp.StatusCode, resp.Header.Get("Content-Type"), body, err)
		}
	}
}

// Env() must be enough for the default config chain, as a subprocess would use it;
// no BaseEndpoint is set here, so success proves the per-service endpoint variables
// are honoured.
func TestEnvWithDefaultConfig(t *testing.T) {
	srv, _ := testenv.AWS(t)
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BaseEndpoint != nil {
		t.Fatalf("BaseEndpoint unexpectedly set to %q", *cfg.BaseEndpoint)
	}
	srv.SetParameter("/env/check", "ok", "String")
	out, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/env/check")})
	if err != nil || aws.ToString(out.Parameter.Value) != "ok" {
		t.Fatalf("SSM via AWS_ENDPOINT_URL_SSM: %v", err)
	}
	srv.PutSecret("env/secret", "v")
	if _, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("env/secret")}); err != nil {
		t.Fatalf("Secrets Manager via AWS_ENDPOINT_URL_SECRETS_MANAGER: %v", err)
	}
	if c := srv.Calls(); c["AmazonSSM.GetParameter"] != 1 || c["secretsmanager.GetSecretValue"] != 1 {
		t.Errorf("calls = %v", c)
	}
}

// One service down or slow leaves the other one alone; a slow answer the client gave
// up on is never served.
func TestPerServiceDownAndDelay(t *testing.T) {
	srv, cfg := testenv.AWS(t)
	ctx := context.Background()
	sm, ps := secretsmanager.NewFromConfig(cfg), ssm.NewFromConfig(cfg)
	srv.PutSecret("s", "v")
	srv.SetParameter("/x", "v", "String")
	getSecret := func(ctx context.Context) error {
		_, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")})
		return err
	}
	getParam := func(ctx context.Context) error {
		_, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/x")})
		return err
	}

	srv.SetDown(awsfake.SecretsManager, true)
	var api smithy.APIError
	if err := getSecret(ctx); !errors.As(err, &api) || api.ErrorCode() != "ServiceUnavailable" {
		t.Fatalf("secrets manager down: %v", err)
	}
	if err := getParam(ctx); err != nil {
		t.Fatalf("SSM must still answer: %v", err)
	}
	srv.SetDown(awsfake.SecretsManager, false)
	if err := getSecret(ctx); err != nil {
		t.Fatalf("back up: %v", err)
	}

	srv.SetDelay(awsfake.SSM, time.Hour)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := getParam(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow SSM: %v", err)
	}
	_, err := ps.PutParameter(short, &ssm.PutParameterInput{Name: aws.String("/y"), Value: aws.String("v"), Type: ssmtypes.ParameterTypeString})
	if err == nil {
		t.Fatal("a put on a slow SSM succeeded past the deadline")
	}
	if err := getSecret(ctx); err != nil {
		t.Fatalf("secrets manager must not be slowed: %v", err)
	}
	srv.SetDelay(awsfake.SSM, 0)
	if _, _, ok := srv.Parameter("/y"); ok {
		t.Fatal("a put the client gave up on was applied")
	}
	if err := getParam(ctx); err != nil {
		t.Fatalf("no longer slow: %v", err)
	}
}

// MaxInFlight tells calls issued together from calls issued one after the other: with a
// delay, two concurrent calls are both in flight at once, two sequential ones never.
func TestMaxInFlight(t *testing.T) {
	srv, cfg := testenv.AWS(t)
	ctx := context.Background()
	c := ssm.NewFromConfig(cfg)
	srv.SetDelay(awsfake.SSM, 50*time.Millisecond)
	get := func() {
		_, _ = c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/lpmtls/x")})
	}
	get()
	get()
	if n := srv.MaxInFlight(); n != 1 {
		t.Fatalf("sequential calls: max in flight %d, want 1", n)
	}
	srv.ResetCalls()
	// Each call waits for the other to be in flight before it is answered: the fake
	// holds both for the delay, so they overlap however the goroutines are scheduled.
	srv.SetDelay(awsfake.SSM, time.Hour)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	for range 2 {
		go func() {
			_, _ = c.GetParameter(cctx, &ssm.GetParameterInput{Name: aws.String("/lpmtls/x")})
			done <- struct{}{}
		}()
	}
	for srv.TotalCalls() < 2 {
		runtime.Gosched()
	}
	if n := srv.MaxInFlight(); n != 2 {
		t.Errorf("concurrent calls: max in flight %d, want 2", n)
	}
	cancel()
	<-done
	<-done
}
