package forward

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/allowlist"
	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/testworld/memsession"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// countingGateway answers 200 and counts: a refused request must never get here.
type countingGateway struct{ calls atomic.Int64 }

func (g *countingGateway) Forward(_ context.Context, _ lp.Auth, r *lp.ForwardRequest) (*lp.ForwardResponse, error) {
	g.calls.Add(1)
	return &lp.ForwardResponse{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("ok")}, nil
}

// staticSessions speaks for one account; the counting gateway never reads it.
var staticSessions = &memsession.Sessions{Auth: lp.Auth{AccountID: "1", Bearer: "b", Domains: lp.Domains{lp.ServiceMTLSGateway: "gw.example"}}}

const bypassOrigin = "https://127.0.0.1:8443"

func bypassEvent(url string, headers map[string]string, override, service string) *events.APIGatewayV2HTTPRequest {
	e := &events.APIGatewayV2HTTPRequest{Headers: map[string]string{"content-type": "application/json"}, Body: "{}"}
	e.RequestContext.HTTP.Method = http.MethodPost
	e.Headers[strings.ToLower(HeaderForwardURL)] = url
	for k, v := range headers {
		e.Headers[strings.ToLower(k)] = v
	}
	if override != "" {
		e.Headers[strings.ToLower(HeaderAuthOverride)] = override
	}
	if service != "" {
		e.Headers[strings.ToLower(HeaderServiceName)] = service
	}
	return e
}

// Every attempt of the shared table gets its documented 4xx JSON error from the HTTP
// route, and the gateway is never called; the accepted controls do reach it.
func TestBypassTableRefused(t *testing.T) {
	b := testenv.LoadBypass(t, bypassOrigin)
	gw := &countingGateway{}
	s := &Service{Gateway: gw, Sessions: staticSessions, Policy: Policy{DefaultServiceName: "WEBHOOKS", AllowedURLs: allowlist.MustParse(b.Allowed...)}}
	for _, a := range b.Refused {
		t.Run(a.Name, func(t *testing.T) {
			r := s.HandleHTTP(context.Background(), bypassEvent(a.URL, a.Headers, a.Override, a.ServiceName))
			var body apierr.Body
			if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
				t.Fatalf("status %d, body not the JSON error: %q", r.StatusCode, r.Body)
			}
			if r.StatusCode != a.Status || body.Error.Code != a.Code || r.Headers["LP-Error-Source"] != apierr.SourceLPMTLS {
				t.Fatalf("got %d %s (%s), want %d %s", r.StatusCode, body.Error.Code, body.Error.Message, a.Status, a.Code)
			}
			// The same request as Validate sees it from the queue (canonical header keys).
			h := http.Header{}
			for k, v := range a.Headers {
				h[http.CanonicalHeaderKey(k)] = []string{v}
			}
			_, err := s.Policy.Validate(Input{Method: "POST", URL: a.URL, Header: h, AuthorizationOverride: a.Override, ServiceName: a.ServiceName})
			if ae := apierr.From(err); err == nil || ae.Status != a.Status || ae.Code != a.Code {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
	if n := gw.calls.Load(); n != 0 {
		t.Fatalf("%d refused requests reached the gateway", n)
	}
	for _, u := range b.Accepted {
		if r := s.HandleHTTP(context.Background(), bypassEvent(u, nil, "", "")); r.StatusCode != 200 {
			t.Errorf("%s: %d %s", u, r.StatusCode, r.Body)
		}
	}
	if n := gw.calls.Load(); n != int64(len(b.Accepted)) {
		t.Fatalf("gateway calls %d, want %d", n, len(b.Accepted))
	}
}
