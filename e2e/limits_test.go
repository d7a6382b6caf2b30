package e2e

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"

	"github.com/lpmtls/lpmtls/shared/forward"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// sizedBody is n pseudo-random bytes, the same for the same n: the target answers them
// and the test compares without keeping a copy around.
func sizedBody(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
	_, _ = r.Read(b)
	return b
}

// sizedTarget answers GET /bytes?n=N with sizedBody(N) as application/octet-stream.
func sizedTarget(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 0 {
		http.Error(w, "n", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(n))
	_, _ = w.Write(sizedBody(n))
}

// A target answer goes back through the built forward bootstrap and the Runtime API,
// which holds the function to Lambda's 6,291,556-byte response limit: 4 MiB of binary
// (5.6 MB as base64) comes back byte for byte; 7 MiB cannot fit and is lpmtls's own
// 502 response_too_large, not a function error API Gateway would turn into a bare 502.
func TestTargetAnswerSizeLimits(t *testing.T) {
	env := testenv.NewWith(t, lpsim.Options{TargetHandler: http.HandlerFunc(sizedTarget)})
	f := env.Start(t, "forward")
	for _, tc := range []struct {
		name   string
		size   int
		status int
	}{
		{"4 MiB binary comes back whole", 4 << 20, http.StatusOK},
		{"7 MiB is too large for Lambda", 7 << 20, http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := env.Sim.TargetURL("/bytes?n=" + strconv.Itoa(tc.size))
			env.Sim.AddMapping(testenv.ServiceName, url)
			ev := forwardEvent(t, url)
			ev.RequestContext.HTTP.Method, ev.Body = http.MethodGet, ""
			r := f.InvokeHTTP(t, ev)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d: %.300s", r.StatusCode, r.Body)
			}
			if tc.status != http.StatusOK {
				if code(t, r) != "response_too_large" || r.Headers["LP-Error-Source"] != "lpmtls" {
					t.Fatalf("%s %v", r.Body, r.Headers)
				}
				return
			}
			got, err := base64.StdEncoding.DecodeString(r.Body)
			if !r.IsBase64Encoded || err != nil || !bytes.Equal(got, sizedBody(tc.size)) {
				t.Fatalf("base64=%v err=%v: %d bytes back, not the %d sent", r.IsBase64Encoded, err, len(got), tc.size)
			}
			if _, ok := r.Headers["LP-Error-Source"]; ok {
				t.Fatal("the target's answer carries LP-Error-Source")
			}
		})
	}
}

// The methods LivePerson documents for the gateway reach the target and come back
// as its answer; the others are refused by lpmtls, saying so (LP-Error-Source, Allow),
// before anything is sent.
func TestForwardMethods(t *testing.T) {
	env := testenv.New(t)
	f := env.Start(t, "forward")
	for _, m := range []string{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"} {
		t.Run(m, func(t *testing.T) {
			before := env.Sim.Counts().TargetRequests
			ev := forwardEvent(t, env.MappedURL)
			ev.RequestContext.HTTP.Method = m
			r := f.InvokeHTTP(t, ev)
			sent := env.Sim.Counts().TargetRequests - before
			source, hasSource := r.Headers["LP-Error-Source"]
			switch m {
			case "GET", "POST", "PUT", "DELETE":
				if r.StatusCode != 200 || lower(r.Headers)["x-echo-method"] != m || hasSource || sent != 1 {
					t.Fatalf("status %d, %v, %d requests at the target", r.StatusCode, r.Headers, sent)
				}
			default:
				if r.StatusCode != 405 || code(t, r) != "method_not_allowed" || source != "lpmtls" ||
					r.Headers["Allow"] != forward.AllowedMethods || sent != 0 {
					t.Fatalf("status %d %s %v, %d requests at the target", r.StatusCode, r.Body, r.Headers, sent)
				}
			}
		})
	}
}
