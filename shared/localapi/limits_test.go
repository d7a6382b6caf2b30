package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lpmtls/lpmtls/shared/config"
)

// counting is a function that answers 200 and counts its invocations.
type counting struct{ n atomic.Int64 }

func (c *counting) Invoke(context.Context, []byte) ([]byte, error) {
	c.n.Add(1)
	return []byte(`{"statusCode":200,"body":"ok"}`), nil
}

// The local API refuses what AWS refuses, the way AWS answers: a body over API
// Gateway's 10 MB with 413, an event over Lambda's 6,291,456 bytes with 500 (API
// Gateway's answer when Lambda rejects an invocation), before the function runs. A
// binary body travels base64-encoded, so the event limit bites at about 4.7 MB of
// binary but lets 6 MB of text through.
func TestHandlerRefusesWhatAWSRefuses(t *testing.T) {
	fn := &counting{}
	h, err := NewHandler(Options{Routes: []Route{{Key: RouteForward, Function: "forward", Invoker: fn}}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, contentType string
		size              int
		status            int
		code              string
	}{
		{"binary at FORWARD_MAX_BODY_BYTES's default", "application/octet-stream", config.DefaultMaxBodyBytes, 200, ""},
		{"binary whose base64 overflows the event", "application/octet-stream", 4800 << 10, 500, "body_too_large"},
		{"text of 6,000,000 bytes travels as is", "text/plain", 6000000, 200, ""},
		{"text over the event limit", "text/plain", config.LambdaRequestBytes, 500, "body_too_large"},
		{"over API Gateway's payload limit", "text/plain", DefaultMaxBodyBytes + 1, 413, "body_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := fn.n.Load()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/forward", bytes.NewReader(bytes.Repeat([]byte("a"), tc.size)))
			req.Header.Set("Content-Type", tc.contentType)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tc.status, body)
			}
			invoked := fn.n.Load() - before
			if tc.code == "" {
				if invoked != 1 {
					t.Fatalf("%d invocations", invoked)
				}
				return
			}
			checkError(t, resp, body, tc.code)
			if invoked != 0 {
				t.Fatal("the function ran for an event AWS would not deliver")
			}
		})
	}
}

// EventEnvelopeBytes holds: a FORWARD_MAX_BODY_BYTES binary body, with the request line
// and headers at API Gateway's 10,240-byte limit and every character of them one JSON
// must escape, still makes an event Lambda accepts.
func TestDefaultBodyFitsTheWorstEnvelope(t *testing.T) {
	const lineAndHeaders = 10240
	path := "/forward"
	query := "q=" + strings.Repeat("%22", 1000) // '"' in both the raw and the parsed query
	r := httptest.NewRequest(http.MethodPost, path+"?"+query, nil)
	r.Header.Set("Content-Type", "application/octet-stream")
	used := len("POST ") + len(path) + 1 + len(query) + len(" HTTP/1.1") + len("Content-Type: application/octet-stream")
	for i := 0; used < lineAndHeaders; i++ {
		v := strings.Repeat(`"\`, 100)
		name := "X-H" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		r.Header.Set(name, v)
		used += len(name) + 2 + len(v)
	}
	r.AddCookie(&http.Cookie{Name: "c", Value: "v"})
	ev := NewEvent(r, bytes.Repeat([]byte{0xff}, config.DefaultMaxBodyBytes), RouteForward, fixedMeta)
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if !ev.IsBase64Encoded || len(payload) > config.LambdaRequestBytes {
		t.Fatalf("event of %d bytes (base64 %v), limit %d", len(payload), ev.IsBase64Encoded, config.LambdaRequestBytes)
	}
	if envelope := len(payload) - len(ev.Body); envelope > config.EventEnvelopeBytes {
		t.Fatalf("envelope %d bytes, allowance %d", envelope, config.EventEnvelopeBytes)
	}
}
