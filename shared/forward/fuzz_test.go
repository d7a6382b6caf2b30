package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/allowlist"
	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/apigw"
	"github.com/lpmtls/lpmtls/shared/headers"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// recordingGateway keeps the last request and answers with a fixed response.
type recordingGateway struct{ last *lp.ForwardRequest }

var fuzzAnswer = &lp.ForwardResponse{StatusCode: 201, Header: http.Header{"Content-Type": {"application/json"}, "Set-Cookie": {"a=1", "b=2"}}, Body: []byte(`{"ok":1}`)}

func (g *recordingGateway) Forward(_ context.Context, _ lp.Auth, r *lp.ForwardRequest) (*lp.ForwardResponse, error) {
	g.last = r
	return fuzzAnswer, nil
}

// FuzzHandleHTTP runs API Gateway events through the forward route with an allow-list.
// A request that reaches the gateway must be one the allow-list and the header rules
// permit, read independently, and must carry what came in (method, body, end-to-end
// headers); the answer is then the gateway's, re-encoded. Anything else must be a 4xx
// JSON error from lpmtls.
func FuzzHandleHTTP(f *testing.F) {
	for _, n := range []string{"forward.json", "forward-binary.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "events", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	b := testenv.LoadBypass(f, bypassOrigin)
	for _, a := range b.Refused {
		raw, err := json.Marshal(bypassEvent(a.URL, a.Headers, a.Override, a.ServiceName))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	for _, u := range b.Accepted {
		raw, _ := json.Marshal(bypassEvent(u, map[string]string{"x-a": "1"}, "Bearer t", "IDP"))
		f.Add(raw)
	}
	list, err := allowlist.Parse(b.Allowed)
	if err != nil {
		f.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var e events.APIGatewayV2HTTPRequest
		if json.Unmarshal(raw, &e) != nil {
			return
		}
		gw := &recordingGateway{}
		s := &Service{Gateway: gw, Sessions: staticSessions, Policy: Policy{DefaultServiceName: "WEBHOOKS", AllowedURLs: list, MaxBodyBytes: 1 << 20}, Logger: quiet}
		resp := s.HandleHTTP(context.Background(), &e)
		if gw.last == nil {
			var body apierr.Body
			if resp.StatusCode < 400 || resp.StatusCode > 499 || json.Unmarshal([]byte(resp.Body), &body) != nil ||
				body.Error.Code == "" || resp.Headers["LP-Error-Source"] != apierr.SourceLPMTLS || resp.Headers["Content-Type"] != "application/json" {
				t.Fatalf("refusal is not a 4xx JSON error: %+v", resp)
			}
			return
		}
		req := gw.last
		in, err := apigw.FromV2(&e)
		if err != nil {
			t.Fatalf("forwarded an event FromV2 refuses: %v", err)
		}
		// The allow-list, read again.
		tg, err := allowlist.CheckTarget(req.URL)
		if err != nil || !list.Allows(tg) || req.URL != in.Header.Get(HeaderForwardURL) {
			t.Fatalf("forwarded %q (%v)", req.URL, err)
		}
		// Nothing that could split a header.
		for k, vs := range req.Header {
			if !headers.ValidName(k) {
				t.Fatalf("header name %q forwarded", k)
			}
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("header %s: %q forwarded", k, v)
				}
			}
		}
		if strings.ContainsAny(req.AuthorizationOverride, "\r\n\x00") || !lp.ValidServiceName(req.ServiceName) {
			t.Fatalf("override %q / service %q forwarded", req.AuthorizationOverride, req.ServiceName)
		}
		// What came in goes out.
		if !allowedMethods[req.Method] || !strings.EqualFold(strings.TrimSpace(in.Method), req.Method) && in.Method != "" {
			t.Fatalf("method %q from %q", req.Method, in.Method)
		}
		if !bytes.Equal(req.Body, in.Body) || req.Header.Get("Content-Type") != in.Header.Get("Content-Type") {
			t.Fatalf("body or type changed: %q %q", req.Body, req.Header.Get("Content-Type"))
		}
		if want := apigw.ToV2(&apigw.Response{StatusCode: fuzzAnswer.StatusCode, Header: fuzzAnswer.Header, Body: fuzzAnswer.Body}); !reflect.DeepEqual(resp, want) {
			t.Fatalf("answer %+v, want %+v", resp, want)
		}
	})
}
