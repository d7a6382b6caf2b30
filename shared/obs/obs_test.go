package obs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("bad JSON %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func one(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	rs := records(t, buf)
	if len(rs) != 1 {
		t.Fatalf("want 1 record, got %d: %s", len(rs), buf)
	}
	return rs[0]
}

func TestLevelFromEnv(t *testing.T) {
	tests := []struct {
		v    string
		want slog.Level
	}{
		{"", slog.LevelInfo},
		{"TRACE", LevelTrace},
		{"debug", slog.LevelDebug},
		{"Info", slog.LevelInfo},
		{"WARN", slog.LevelWarn},
		{"error", slog.LevelError},
		{"FATAL", LevelFatal},
		{"verbose", slog.LevelInfo},
	}
	for _, tt := range tests {
		got := LevelFromEnv(func(k string) string {
			if k == "AWS_LAMBDA_LOG_LEVEL" {
				return tt.v
			}
			return ""
		})
		if got != tt.want {
			t.Errorf("%q: got %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestLoggerShapeAndLevels(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, LevelTrace)
	ctx := context.Background()
	log.Log(ctx, LevelTrace, "t")
	log.Info("i", "n", 3)
	log.Log(ctx, LevelFatal, "f")
	rs := records(t, &buf)
	if len(rs) != 3 {
		t.Fatalf("got %d records", len(rs))
	}
	for i, want := range []string{"TRACE", "INFO", "FATAL"} {
		if rs[i]["level"] != want {
			t.Errorf("record %d level %v, want %s", i, rs[i]["level"], want)
		}
		if _, ok := rs[i]["timestamp"]; !ok {
			t.Errorf("record %d has no timestamp", i)
		}
	}
	if rs[1]["message"] != "i" || rs[1]["n"] != float64(3) {
		t.Errorf("record %v", rs[1])
	}

	buf.Reset()
	log = NewLogger(&buf, slog.LevelWarn)
	log.Info("dropped")
	log.Warn("kept")
	if r := one(t, &buf); r["message"] != "kept" {
		t.Errorf("got %v", r)
	}
}

func TestLoggerRequestID(t *testing.T) {
	var buf bytes.Buffer
	base := NewLogger(&buf, slog.LevelInfo)

	lctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-1"})
	tests := []struct {
		name string
		ctx  context.Context
		want any
	}{
		{"none", context.Background(), nil},
		{"lambda", lctx, "lambda-1"},
		{"explicit wins", WithRequestID(lctx, "apigw-2"), "apigw-2"},
	}
	for _, tt := range tests {
		buf.Reset()
		Logger(tt.ctx, base).Info("x")
		if got := one(t, &buf)["requestId"]; got != tt.want {
			t.Errorf("%s: requestId %v, want %v", tt.name, got, tt.want)
		}
	}
}

type stringer struct{ s string }

func (s stringer) String() string { return "stringer:" + s.s }

type creds struct{ User, Password string }

func TestRedaction(t *testing.T) {
	const (
		password = "hunter2-pass-XYZ"
		bearer   = "eyJhbGciOi.bearer.value42"
		cookie   = "cookieval-9876"
		short    = "abc12"
	)
	RegisterSecret(password)
	RegisterSecret(bearer)
	RegisterSecret(cookie)
	RegisterSecret(short)    // ignored: too short
	RegisterSecret(password) // duplicate is harmless

	var buf bytes.Buffer
	log := NewLogger(&buf, slog.LevelDebug)

	t.Run("message and attrs", func(t *testing.T) {
		buf.Reset()
		log.Info("login with "+password+" failed",
			"detail", "Bearer "+bearer,
			"err", fmt.Errorf("wrap: %w", errors.New("bad password "+password)),
			"str", stringer{cookie},
			"struct", creds{User: "bob", Password: password},
			"plain", "harmless",
			"num", 42,
			"short", "id "+short,
			slog.Group("http", slog.Group("req", slog.String("hdr", "x "+cookie))),
		)
		r := one(t, &buf)
		want := map[string]any{
			"message": "login with [REDACTED] failed",
			"detail":  "Bearer [REDACTED]",
			"err":     "wrap: bad password [REDACTED]",
			"str":     "stringer:[REDACTED]",
			"plain":   "harmless",
			"num":     float64(42),
			"short":   "id " + short,
		}
		for k, v := range want {
			if r[k] != v {
				t.Errorf("%s = %v, want %v", k, r[k], v)
			}
		}
		if s, _ := r["struct"].(string); !strings.Contains(s, "bob") || !strings.Contains(s, Redacted) {
			t.Errorf("struct = %v", r["struct"])
		}
		hdr := r["http"].(map[string]any)["req"].(map[string]any)["hdr"]
		if hdr != "x [REDACTED]" {
			t.Errorf("nested = %v", hdr)
		}
	})

	t.Run("sensitive keys", func(t *testing.T) {
		buf.Reset()
		keys := []string{"password", "Secret", "clientSecret", "client_secret", "token", "bearer",
			"Authorization", "cookie", "Set-Cookie", "X-Amz-Security-Token", "LP-Authorization-Override"}
		var args []any
		for _, k := range keys {
			args = append(args, k, "unregistered-value-"+k)
		}
		args = append(args, "tokenCount", 3, slog.Group("headers", "authorization", "Basic Zm9vOmJhcg=="),
			slog.Group("cookie", "a", "b"))
		log.Info("keys", args...)
		r := one(t, &buf)
		for _, k := range keys {
			if r[k] != Redacted {
				t.Errorf("%s = %v", k, r[k])
			}
		}
		if r["tokenCount"] != float64(3) {
			t.Errorf("tokenCount = %v (only exact key names are sensitive)", r["tokenCount"])
		}
		if got := r["headers"].(map[string]any)["authorization"]; got != Redacted {
			t.Errorf("nested authorization = %v", got)
		}
		if r["cookie"] != Redacted {
			t.Errorf("cookie group = %v", r["cookie"])
		}
	})

	t.Run("With and WithGroup, registered later", func(t *testing.T) {
		buf.Reset()
		const late = "late-registered-secret"
		l := log.With("early", "v="+late).WithGroup("g").With("inner", late)
		RegisterSecret(late)
		l.Info("m", "x", late, "password", "p")
		r := one(t, &buf)
		if r["early"] != "v=[REDACTED]" {
			t.Errorf("early = %v", r["early"])
		}
		g := r["g"].(map[string]any)
		if g["inner"] != Redacted || g["x"] != Redacted || g["password"] != Redacted {
			t.Errorf("g = %v", g)
		}
		buf.Reset()
		log.WithGroup("empty").Info("no attrs")
		if _, ok := one(t, &buf)["empty"]; ok {
			t.Error("empty group should be dropped as slog does")
		}
	})

	t.Run("secret never appears", func(t *testing.T) {
		buf.Reset()
		l := log.With("a", password).WithGroup("grp")
		l.Error(bearer, "e", errors.New(cookie), "s", stringer{password}, "any", []string{bearer},
			slog.Group("n", "deep", password))
		log.Debug("d", "v", cookie)
		raw := buf.Bytes()
		for _, s := range []string{password, bearer, cookie} {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("secret %q found in output: %s", s, raw)
			}
		}
	})
}

func TestRegisterSecretConcurrent(t *testing.T) {
	var buf testenv.LockedBuffer
	log := NewLogger(&buf, slog.LevelInfo)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			RegisterSecret(fmt.Sprintf("concurrent-secret-%d", i))
		}()
		go func() {
			defer wg.Done()
			log.Info("x", "v", fmt.Sprintf("concurrent-secret-%d", i))
		}()
	}
	wg.Wait()
	log.Info("after", "v", "concurrent-secret-3")
	var last map[string]any
	lines := bytes.Split(bytes.TrimSpace([]byte(buf.String())), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], &last); err != nil {
		t.Fatal(err)
	}
	if last["v"] != Redacted {
		t.Errorf("v = %v", last["v"])
	}
}

func BenchmarkLogNoSecretMatch(b *testing.B) {
	RegisterSecret("bench-secret-value-1")
	RegisterSecret("bench-secret-value-2")
	log := NewLogger(discard{}, slog.LevelInfo).With("requestId", "r-1")
	b.ReportAllocs()
	for b.Loop() {
		log.Info("forwarded", "status", 200, "url", "https://example.com/hook", "bytes", 1234)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://a.example/in":                    "https://a.example/in",
		"https://a.example":                       "https://a.example",
		"https://a.example:8443/p%20q?token=s3c":  "https://a.example:8443/p%20q?…",
		"https://a.example/in?":                   "https://a.example/in?…",
		"https://user:pw@a.example/in#frag-token": "https://a.example/in",
		"http://[::1/x?token=s3c":                 "(unparsable URL)",
	} {
		// Twice: the second answer is the remembered one.
		for range 2 {
			if got := URL(raw); got != want {
				t.Errorf("URL(%q) = %q, want %q", raw, got, want)
			}
		}
	}
}

// Values the JSON handler renders differently from fmt (through pointers, as base64,
// via MarshalJSON or a hiding String method) must not smuggle a registered secret out.
func TestRedactsSecretsInComplexValues(t *testing.T) {
	const secret = "cplx-secret-Zt81-value"
	RegisterSecret(secret)
	type inner struct{ Token string }
	type outer struct{ In *inner }
	cases := map[string]any{
		"pointer":       outer{In: &inner{Token: secret}},
		"bytes":         []byte("prefix " + secret),
		"map of ptr":    map[string]*inner{"a": {Token: secret}},
		"hiding str":    hider{secret},
		"marshaler":     marshaler{secret},
		"wrapped error": fmt.Errorf("call failed: %w", errors.New("token "+secret)),
	}
	for name, v := range cases {
		var buf bytes.Buffer
		NewLogger(&buf, slog.LevelInfo).Info("x", "v", v)
		if strings.Contains(buf.String(), secret) || strings.Contains(buf.String(), base64.StdEncoding.EncodeToString([]byte("prefix "+secret))) {
			t.Errorf("%s: secret in %s", name, buf.String())
		}
	}
}

type hider struct{ s string }

func (hider) String() string { return "hider" }

type marshaler struct{ s string }

func (m marshaler) MarshalJSON() ([]byte, error) { return []byte(`{"t":"` + m.s + `"}`), nil }
