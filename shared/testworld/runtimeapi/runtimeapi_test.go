package runtimeapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lpmtls/lpmtls/shared/config"
	"github.com/lpmtls/lpmtls/shared/testworld/runtimeapi"
)

// A hand-written runtime loop speaking the protocol exercises the server the way the
// aws-lambda-go runtime does; the real binaries are driven in the e2e tests.
func TestProtocol(t *testing.T) {
	s, err := runtimeapi.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	base := "http://" + s.Addr() + "/2018-06-01/runtime/"
	go func() {
		for i := 0; i < 2; i++ {
			resp, err := http.Get(base + "invocation/next")
			if err != nil {
				return
			}
			id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
			ms, _ := strconv.ParseInt(resp.Header.Get("Lambda-Runtime-Deadline-Ms"), 10, 64)
			var in map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&in)
			resp.Body.Close()
			kind := "response"
			body, _ := json.Marshal(map[string]any{"echo": in["n"], "deadlineSet": ms > 0})
			if i == 1 {
				kind = "error"
				body = []byte(`{"errorMessage":"boom","errorType":"Boom"}`)
			}
			r, err := http.Post(base+"invocation/"+id+"/"+kind, "application/json", bytes.NewReader(body))
			if err == nil {
				r.Body.Close()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.Invoke(ctx, []byte(`{"n":7}`), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(res.Payload, &out); err != nil || out["echo"] != float64(7) || out["deadlineSet"] != true {
		t.Fatalf("payload %s err %v", res.Payload, err)
	}
	<-s.Ready()
	if s.ReadyAt().IsZero() {
		t.Fatal("ReadyAt not set")
	}
	res, err = s.Invoke(ctx, []byte(`{}`), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Error == nil || res.Error.ErrorType != "Boom" || res.Error.ErrorMessage != "boom" {
		t.Fatalf("error result %+v", res.Error)
	}
}

// Lambda's payload limits: an event over 6,291,456 bytes is refused before the runtime
// sees it; a response over 6,291,556 bytes is refused to the runtime with a 413 and
// reaches the invoker as Function.ResponseSizeTooLarge. Both limits are inclusive.
func TestPayloadLimits(t *testing.T) {
	if runtimeapi.MaxRequestBytes != config.LambdaRequestBytes || runtimeapi.MaxResponseBytes != config.LambdaResponseBytes {
		t.Fatal("the Runtime API's limits differ from config's")
	}
	s, err := runtimeapi.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	base := "http://" + s.Addr() + "/2018-06-01/runtime/"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A JSON string of exactly n bytes, quotes included.
	str := func(n int) []byte { return []byte(`"` + strings.Repeat("a", n-2) + `"`) }
	if _, err := s.Invoke(ctx, str(runtimeapi.MaxRequestBytes+1), time.Second); !errors.Is(err, runtimeapi.ErrRequestTooLarge) {
		t.Fatalf("oversized event: %v", err)
	}

	for _, tc := range []struct {
		name       string
		size       int
		wantStatus int
	}{
		{"at the limit", runtimeapi.MaxResponseBytes, http.StatusAccepted},
		{"one byte over", runtimeapi.MaxResponseBytes + 1, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			posted := make(chan int, 1)
			go func() {
				resp, err := http.Get(base + "invocation/next")
				if err != nil {
					posted <- 0
					return
				}
				id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
				resp.Body.Close()
				r, err := http.Post(base+"invocation/"+id+"/response", "application/json", bytes.NewReader(str(tc.size)))
				if err != nil {
					posted <- 0
					return
				}
				r.Body.Close()
				posted <- r.StatusCode
			}()
			res, err := s.Invoke(ctx, str(runtimeapi.MaxRequestBytes), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if st := <-posted; st != tc.wantStatus {
				t.Fatalf("runtime's POST answered %d, want %d", st, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusAccepted {
				if res.Error != nil || len(res.Payload) != tc.size {
					t.Fatalf("error %+v, payload %d bytes", res.Error, len(res.Payload))
				}
				return
			}
			if res.Error == nil || res.Error.ErrorType != runtimeapi.ResponseSizeTooLarge || res.Payload != nil {
				t.Fatalf("result %+v", res.Error)
			}
		})
	}
}
