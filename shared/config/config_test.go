package config

import (
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/allowlist"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/obs"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Load(env(map[string]string{"LP_SECRET_ID": "lpmtls/brand-a"}))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		SecretID:           "lpmtls/brand-a",
		CSDSURL:            "https://adminlogin.liveperson.net",
		RefreshMargin:      5 * time.Minute,
		DefaultTokenTTL:    30 * time.Minute,
		DomainsTTL:         10 * time.Minute,
		LoginLeaseTTL:      5 * time.Second,
		MappingService:     "mtlsGateway",
		MappingPath:        "/api/account/{accountId}/checks/serviceUrlMappings",
		OAuth2Version:      "2.0",
		ServiceName:        "WEBHOOKS",
		MaxBodyBytes:       4669440,
		ForwardConcurrency: 10,
		MetricsNamespace:   "lpmtls",
		LogLevel:           slog.LevelInfo,

		CertExpiryWarningDays: 30,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if !c.HasCredentials() || c.RequireCredentials() != nil {
		t.Error("secret id should count as credentials")
	}
	if _, ok := c.StaticCredentials(); ok {
		t.Error("no static credentials expected")
	}
}

func TestAllSet(t *testing.T) {
	c, err := Load(env(map[string]string{
		"LP_ACCOUNT_ID":             "12345678",
		"LP_CLIENT_ID":              "cid",
		"LP_CLIENT_SECRET":          "s3cr3t-value",
		"LP_CSDS_URL":               "https://csds.example.com/",
		"LP_CACHE_PARAMETER_PREFIX": "/lpmtls/prod_1.a-b",
		"LP_CACHE_KMS_KEY_ID":       "alias/lpmtls",
		"LP_TOKEN_REFRESH_MARGIN":   "90s",
		"LP_TOKEN_DEFAULT_TTL":      "1h",
		"LP_DOMAINS_TTL":            "2m",
		"LP_LOGIN_LEASE_TTL":        "1500ms",
		"LP_MAPPING_SERVICE":        "accountConfigReadWrite",
		"LP_MAPPING_PATH":           "/v2/{accountId}/m",
		"LP_OAUTH2_VERSION":         "1.0",
		"LP_SERVICE_NAME":           "CUSTOM",
		"FORWARD_ALLOWED_URLS":      " https://a.example.com/hooks/ ,https://b.example.com/,",
		"FORWARD_MAX_BODY_BYTES":    "1024",
		"FORWARD_CONCURRENCY":       "100",
		"RESULTS_QUEUE_URL":         "https://sqs.us-east-1.amazonaws.com/123456789012/results",
		"DLQ_URL":                   "http://127.0.0.1:9324/000000000000/dlq",
		"HEALTHCHECK_TARGETS":       `[{"serviceName":"WEBHOOKS","url":"https://a.example.com/hooks/x"}]`,
		"METRICS_NAMESPACE":         "Custom/NS",
		"AWS_LAMBDA_LOG_LEVEL":      "debug",
		"CERT_EXPIRY_WARNING_DAYS":  "45",
	}))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"CSDSURL", c.CSDSURL, "https://csds.example.com"},
		{"CachePrefix", c.CachePrefix, "/lpmtls/prod_1.a-b"},
		{"CacheKMSKeyID", c.CacheKMSKeyID, "alias/lpmtls"},
		{"RefreshMargin", c.RefreshMargin, 90 * time.Second},
		{"DefaultTokenTTL", c.DefaultTokenTTL, time.Hour},
		{"DomainsTTL", c.DomainsTTL, 2 * time.Minute},
		{"LoginLeaseTTL", c.LoginLeaseTTL, 1500 * time.Millisecond},
		{"MappingService", c.MappingService, "accountConfigReadWrite"},
		{"MappingPath", c.MappingPath, "/v2/{accountId}/m"},
		{"OAuth2Version", c.OAuth2Version, "1.0"},
		{"ServiceName", c.ServiceName, "CUSTOM"},
		{"AllowedURLs", c.AllowedURLs, allowlist.MustParse("https://a.example.com/hooks/", "https://b.example.com/")},
		{"MaxBodyBytes", c.MaxBodyBytes, 1024},
		{"ForwardConcurrency", c.ForwardConcurrency, 100},
		{"ResultsQueueURL", c.ResultsQueueURL, "https://sqs.us-east-1.amazonaws.com/123456789012/results"},
		{"DeadLetterQueueURL", c.DeadLetterQueueURL, "http://127.0.0.1:9324/000000000000/dlq"},
		{"HealthcheckMappings", c.HealthcheckMappings, []lp.Mapping{{ServiceName: "WEBHOOKS", URL: "https://a.example.com/hooks/x"}}},
		{"MetricsNamespace", c.MetricsNamespace, "Custom/NS"},
		{"LogLevel", c.LogLevel, slog.LevelDebug},
		{"CertExpiryWarningDays", c.CertExpiryWarningDays, 45},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	creds, ok := c.StaticCredentials()
	if !ok || creds != (lp.Credentials{AccountID: "12345678", ClientID: "cid", ClientSecret: "s3cr3t-value"}) || creds.Method() != lp.AuthOAuth2 {
		t.Errorf("StaticCredentials = %+v %v", creds, ok)
	}
}

func TestCredentialSources(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantVars []string // nil: valid
		has      bool
		static   *lp.Credentials
	}{
		{name: "none", env: map[string]string{}, has: false},
		{name: "secret id", env: map[string]string{"LP_SECRET_ID": "x"}, has: true},
		{name: "login", env: map[string]string{"LP_ACCOUNT_ID": "123", "LP_USERNAME": "bot", "LP_PASSWORD": " pw with spaces "}, has: true,
			static: &lp.Credentials{AccountID: "123", Username: "bot", Password: " pw with spaces "}},
		{name: "oauth", env: map[string]string{"LP_ACCOUNT_ID": "123", "LP_CLIENT_ID": "c", "LP_CLIENT_SECRET": "s"}, has: true,
			static: &lp.Credentials{AccountID: "123", ClientID: "c", ClientSecret: "s"}},
		{name: "both sources", env: map[string]string{"LP_SECRET_ID": "x", "LP_ACCOUNT_ID": "123", "LP_USERNAME": "u", "LP_PASSWORD": "p"},
			wantVars: []string{"LP_SECRET_ID"}},
		{name: "secret id and stray password", env: map[string]string{"LP_SECRET_ID": "x", "LP_PASSWORD": "p"},
			wantVars: []string{"LP_SECRET_ID"}},
		{name: "account only", env: map[string]string{"LP_ACCOUNT_ID": "123"}, wantVars: []string{"LP_ACCOUNT_ID"}},
		{name: "pair without account", env: map[string]string{"LP_USERNAME": "u", "LP_PASSWORD": "p"}, wantVars: []string{"LP_ACCOUNT_ID"}},
		{name: "username without password", env: map[string]string{"LP_ACCOUNT_ID": "123", "LP_USERNAME": "u"}, wantVars: []string{"LP_PASSWORD"}},
		{name: "password without username", env: map[string]string{"LP_ACCOUNT_ID": "123", "LP_PASSWORD": "p"}, wantVars: []string{"LP_USERNAME"}},
		{name: "client id without secret", env: map[string]string{"LP_ACCOUNT_ID": "123", "LP_CLIENT_ID": "c"}, wantVars: []string{"LP_CLIENT_SECRET"}},
		{name: "client secret without id", env: map[string]string{"LP_ACCOUNT_ID": "123", "LP_CLIENT_SECRET": "s"}, wantVars: []string{"LP_CLIENT_ID"}},
		{name: "both pairs", env: map[string]string{"LP_ACCOUNT_ID": "123", "LP_USERNAME": "u", "LP_PASSWORD": "p", "LP_CLIENT_ID": "c", "LP_CLIENT_SECRET": "s"},
			wantVars: []string{"LP_CLIENT_ID"}},
		{name: "bad account id", env: map[string]string{"LP_ACCOUNT_ID": "12/34", "LP_USERNAME": "u", "LP_PASSWORD": "p"}, wantVars: []string{"LP_ACCOUNT_ID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(env(tt.env))
			if tt.wantVars != nil {
				assertVars(t, err, tt.wantVars)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.HasCredentials() != tt.has {
				t.Errorf("HasCredentials = %v", c.HasCredentials())
			}
			if err := c.RequireCredentials(); (err == nil) != tt.has || (err != nil && !errors.Is(err, ErrNoCredentials)) {
				t.Errorf("RequireCredentials = %v", err)
			}
			got, ok := c.StaticCredentials()
			if (tt.static != nil) != ok || (ok && got != *tt.static) {
				t.Errorf("StaticCredentials = %+v %v", got, ok)
			}
		})
	}
}

func assertVars(t *testing.T, err error, want []string) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *config.Error, got %v", err)
	}
	if !slices.Equal(ce.Vars(), want) {
		t.Errorf("vars = %v, want %v (%v)", ce.Vars(), want, err)
	}
	for _, v := range want {
		if !strings.Contains(err.Error(), v+": ") {
			t.Errorf("error text does not name %s: %v", v, err)
		}
	}
}

func TestInvalidVariables(t *testing.T) {
	tests := []struct {
		name, key, val string
	}{
		{"csds http", "LP_CSDS_URL", "http://adminlogin.liveperson.net"},
		{"csds relative", "LP_CSDS_URL", "adminlogin.liveperson.net"},
		{"csds query", "LP_CSDS_URL", "https://a.example.com?x=1"},
		{"csds bare ?", "LP_CSDS_URL", "https://a.example.com/?"},
		{"csds userinfo", "LP_CSDS_URL", "https://u:p@a.example.com"},
		{"csds unparsable", "LP_CSDS_URL", "https://a b.example.com:x"},
		{"prefix no slash", "LP_CACHE_PARAMETER_PREFIX", "lpmtls"},
		{"prefix trailing slash", "LP_CACHE_PARAMETER_PREFIX", "/lpmtls/"},
		{"prefix root", "LP_CACHE_PARAMETER_PREFIX", "/"},
		{"prefix charset", "LP_CACHE_PARAMETER_PREFIX", "/lp mtls"},
		{"prefix double slash", "LP_CACHE_PARAMETER_PREFIX", "/a//b"},
		{"prefix reserved", "LP_CACHE_PARAMETER_PREFIX", "/aws/x"},
		{"margin syntax", "LP_TOKEN_REFRESH_MARGIN", "5 minutes"},
		{"margin negative", "LP_TOKEN_REFRESH_MARGIN", "-1m"},
		{"margin >= ttl", "LP_TOKEN_REFRESH_MARGIN", "30m"},
		{"ttl zero", "LP_TOKEN_DEFAULT_TTL", "0s"},
		{"domains ttl", "LP_DOMAINS_TTL", "10"},
		{"lease ttl", "LP_LOGIN_LEASE_TTL", "soon"},
		{"mapping path no slash", "LP_MAPPING_PATH", "api/account/{accountId}"},
		{"mapping path no placeholder", "LP_MAPPING_PATH", "/api/account/123"},
		{"allowed http", "FORWARD_ALLOWED_URLS", "https://ok.example.com/,http://bad.example.com/"},
		{"allowed relative", "FORWARD_ALLOWED_URLS", "/hooks"},
		{"allowed query", "FORWARD_ALLOWED_URLS", "https://ok.example.com/in?x=1"},
		{"allowed dot segment", "FORWARD_ALLOWED_URLS", "https://ok.example.com/hooks/../"},
		{"allowed trailing dot", "FORWARD_ALLOWED_URLS", "https://ok.example.com./"},
		{"allowed unicode host", "FORWARD_ALLOWED_URLS", "https://bücher.example/"},
		{"max body zero", "FORWARD_MAX_BODY_BYTES", "0"},
		{"max body text", "FORWARD_MAX_BODY_BYTES", "6MB"},
		{"concurrency 0", "FORWARD_CONCURRENCY", "0"},
		{"service name with a space", "LP_SERVICE_NAME", "WEB HOOKS"},
		{"concurrency 101", "FORWARD_CONCURRENCY", "101"},
		{"results relative", "RESULTS_QUEUE_URL", "results"},
		{"dlq scheme", "DLQ_URL", "sqs://queue"},
		{"hc not json", "HEALTHCHECK_TARGETS", "[{"},
		{"hc object", "HEALTHCHECK_TARGETS", `{"serviceName":"a","url":"https://x"}`},
		{"hc null", "HEALTHCHECK_TARGETS", "null"},
		{"hc empty", "HEALTHCHECK_TARGETS", "[]"},
		{"hc unknown field", "HEALTHCHECK_TARGETS", `[{"service":"a","url":"https://x"}]`},
		{"hc missing service", "HEALTHCHECK_TARGETS", `[{"url":"https://x"}]`},
		{"hc http url", "HEALTHCHECK_TARGETS", `[{"serviceName":"a","url":"http://x"}]`},
		{"hc trailing", "HEALTHCHECK_TARGETS", `[] []`},
		{"hc too many", "HEALTHCHECK_TARGETS", "[" + strings.Repeat(`{"serviceName":"a","url":"https://x"},`, 100) + `{"serviceName":"a","url":"https://x"}]`},
		{"namespace reserved", "METRICS_NAMESPACE", "AWS/Lambda"},
		{"warning days negative", "CERT_EXPIRY_WARNING_DAYS", "-1"},
		{"warning days over a year", "CERT_EXPIRY_WARNING_DAYS", "366"},
		{"warning days not a number", "CERT_EXPIRY_WARNING_DAYS", "30d"},
		{"log level", "AWS_LAMBDA_LOG_LEVEL", "LOUD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{tt.key: tt.val}
			_, err := Load(env(m))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *config.Error, got %v", err)
			}
			for _, v := range ce.Vars() {
				if v != tt.key {
					t.Errorf("unexpected problem %s in %v", v, err)
				}
			}
			if len(ce.Problems) == 0 || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error does not name %s: %v", tt.key, err)
			}
		})
	}
}

func TestManyProblemsOneError(t *testing.T) {
	const password = "Pa55w0rd!unique"
	const clientSecret = "cl1ent-S3cret-unique"
	_, err := Load(env(map[string]string{
		"LP_SECRET_ID":           "x",
		"LP_ACCOUNT_ID":          "123",
		"LP_PASSWORD":            password,
		"LP_CLIENT_SECRET":       clientSecret,
		"LP_CSDS_URL":            "http://x",
		"LP_DOMAINS_TTL":         "forever",
		"FORWARD_CONCURRENCY":    "1000",
		"FORWARD_MAX_BODY_BYTES": "-5",
		"HEALTHCHECK_TARGETS":    "[]",
		"DLQ_URL":                "nope",
		"RESULTS_QUEUE_URL":      "nope",
	}))
	assertVars(t, err, []string{"LP_SECRET_ID", "LP_CSDS_URL", "LP_DOMAINS_TTL", "FORWARD_MAX_BODY_BYTES",
		"FORWARD_CONCURRENCY", "RESULTS_QUEUE_URL", "DLQ_URL", "HEALTHCHECK_TARGETS"})
	if !strings.HasPrefix(err.Error(), "invalid configuration (8 problems): ") {
		t.Errorf("error = %v", err)
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	const password = "Pa55w0rd!unique"
	const clientSecret = "cl1ent-S3cret-unique"
	envs := []map[string]string{
		{"LP_SECRET_ID": "x", "LP_PASSWORD": password},
		{"LP_PASSWORD": password},
		{"LP_CLIENT_SECRET": clientSecret},
		{"LP_ACCOUNT_ID": "1", "LP_USERNAME": "u", "LP_PASSWORD": password, "LP_CLIENT_ID": "c", "LP_CLIENT_SECRET": clientSecret},
		{"LP_ACCOUNT_ID": "bad id", "LP_CLIENT_ID": "c", "LP_CLIENT_SECRET": clientSecret},
		// Secrets pasted into the wrong variable are not echoed either (URLs never are).
		{"LP_CSDS_URL": "http://user:" + password + "@x", "FORWARD_ALLOWED_URLS": "https://u:" + clientSecret + "@x/"},
	}
	for i, m := range envs {
		_, err := Load(env(m))
		if err == nil {
			t.Fatalf("%d: want error", i)
		}
		for _, s := range []string{password, clientSecret} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%d: secret in error: %v", i, err)
			}
		}
	}
}

func TestLogLevel(t *testing.T) {
	for _, v := range []string{"TRACE", "fatal", "Warn"} {
		c, err := Load(env(map[string]string{"AWS_LAMBDA_LOG_LEVEL": v}))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := obs.ParseLevel(v)
		if c.LogLevel != want {
			t.Errorf("%s: %v", v, c.LogLevel)
		}
	}
}

// TestCertExpiryWarningDays: 0 is a valid setting (the watch off), not "unset".
func TestCertExpiryWarningDays(t *testing.T) {
	for val, want := range map[string]int{"": 30, "0": 0, " 7 ": 7, "365": 365} {
		c, err := Load(env(map[string]string{"CERT_EXPIRY_WARNING_DAYS": val}))
		if err != nil || c.CertExpiryWarningDays != want {
			t.Errorf("%q: got %v %v, want %d", val, c, err, want)
		}
	}
}
