package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/apigw"
	"github.com/lpmtls/lpmtls/shared/lambdaevent"
)

var update = flag.Bool("update", false, "rewrite testdata/events fixtures")

var fixedMeta = Meta{
	RequestID: "Cx1dGhYRoAMEbPw=",
	TraceID:   "Root=1-674321ab-0a1b2c3d4e5f60718293a4b5",
	Time:      time.Date(2026, 11, 24, 10, 15, 30, 123e6, time.UTC),
}

func TestNewEvent(t *testing.T) {
	cases := []struct {
		fixture  string
		method   string
		target   string
		routeKey string
		header   [][2]string
		body     []byte
	}{
		{
			fixture: "get-query-cookies", method: "GET", routeKey: RouteForward,
			target: "/forward?tag=a&tag=b&q=x%20y%26z&empty=",
			header: [][2]string{
				{"User-Agent", "curl/8.5.0"}, {"Accept", "*/*"},
				{"X-Custom", "one"}, {"X-Custom", "two"},
				{"Cookie", "session=abc123; theme=dark"}, {"Cookie", "lang=en"}, {"Expect", "100-continue"},
			},
		},
		{
			fixture: "post-json", method: "POST", routeKey: RouteMapping, target: "/mapping",
			header: [][2]string{{"Content-Type", "application/json"}, {"User-Agent", "curl/8.5.0"}},
			body:   []byte(`[{"serviceName":"WEBHOOKS","url":"https://x.example/a?b=1&c=2"}]`),
		},
		{
			fixture: "post-binary", method: "POST", routeKey: RouteForward, target: "/forward",
			header: [][2]string{{"Content-Type", "application/octet-stream"}, {"LP-forward-url", "https://t.example/in"}},
			body:   []byte{0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0x80, 0x7f, 0x01},
		},
		{
			// API Gateway base64-encodes a body whose type it cannot tell is text.
			fixture: "post-text-no-content-type", method: "POST", routeKey: RouteForward, target: "/forward",
			body: []byte("hello"),
		},
		{
			fixture: "put-escaped-path-xff", method: "PUT", routeKey: RouteForward, target: "/forward/a%2Fb",
			header: [][2]string{{"X-Forwarded-For", "203.0.113.7"}, {"Content-Type", "text/plain; charset=utf-8"}},
			body:   []byte("é ok"),
		},
		{
			fixture: "post-empty-body", method: "POST", routeKey: RouteMapping, target: "/mapping",
			header: [][2]string{{"Content-Type", "application/json"}},
		},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			r := httptest.NewRequest(c.method, "http://127.0.0.1:3000"+c.target, nil)
			r.RemoteAddr = "127.0.0.1:54321"
			for _, h := range c.header {
				r.Header.Add(h[0], h[1])
			}
			got := NewEvent(r, c.body, c.routeKey, fixedMeta)
			path := filepath.Join("testdata", "events", c.fixture+".json")
			if *update {
				if err := os.WriteFile(path, fixtureJSON(t, got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var want events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				g, _ := json.MarshalIndent(got, "", "  ")
				t.Fatalf("event differs from %s:\n%s", path, g)
			}
			// What a handler reads back must be what was sent.
			in, err := apigw.FromV2(&got)
			if err != nil {
				t.Fatal(err)
			}
			if string(in.Body) != string(c.body) || in.Method != c.method {
				t.Fatalf("FromV2 body %q method %s", in.Body, in.Method)
			}
			if lambdaevent.Detect(mustJSON(t, got)) != lambdaevent.HTTP {
				t.Fatal("the event is not detected as an HTTP API event")
			}
		})
	}
}

// fixtureJSON writes an event as API Gateway shows it: no zero-valued authentication
// block (the events struct cannot omit it) and no HTML escaping.
func fixtureJSON(t *testing.T, e events.APIGatewayV2HTTPRequest) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(mustJSON(t, e), &m); err != nil {
		t.Fatal(err)
	}
	delete(m["requestContext"].(map[string]any), "authentication")
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteResponse(t *testing.T) {
	cases := []struct {
		name       string
		output     string
		status     int
		header     map[string][]string
		body       string
		errCode    string
		absentKeys []string
	}{
		{
			name:   "headers cookies and text body",
			output: `{"statusCode":201,"headers":{"Content-Type":"text/plain","X-A":"1, 2","Content-Length":"999"},"cookies":["a=1; Path=/","b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT"],"body":"made"}`,
			status: 201,
			header: map[string][]string{
				"Content-Type": {"text/plain"}, "X-A": {"1, 2"},
				"Set-Cookie": {"a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT"},
			},
			body: "made",
		},
		{
			name:   "base64 body",
			output: `{"statusCode":200,"headers":{"Content-Type":"application/octet-stream"},"body":"AP+AfwE=","isBase64Encoded":true}`,
			status: 200, body: "\x00\xff\x80\x7f\x01",
		},
		{
			name:   "no statusCode is a 200 JSON body",
			output: `{"hello":"world"}`,
			status: 200, header: map[string][]string{"Content-Type": {"application/json"}}, body: `{"hello":"world"}`,
		},
		{name: "bad base64", output: `{"statusCode":200,"body":"%%%","isBase64Encoded":true}`, status: 500, errCode: "internal_error"},
		{name: "not json", output: `nope`, status: 500, errCode: "internal_error"},
		{name: "status out of range", output: `{"statusCode":42}`, status: 500, errCode: "internal_error"},
		{name: "no content type is not sniffed", output: `{"statusCode":200,"body":"<html>"}`, status: 200, body: "<html>", absentKeys: []string{"Content-Type"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				WriteResponse(w, []byte(c.output))
			}))
			t.Cleanup(srv.Close)
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, c.status, body)
			}
			if c.errCode != "" {
				checkError(t, resp, body, c.errCode)
				return
			}
			if string(body) != c.body {
				t.Fatalf("body %q, want %q", body, c.body)
			}
			for k, v := range c.header {
				if got := resp.Header.Values(k); !reflect.DeepEqual(got, v) {
					t.Fatalf("%s = %q, want %q", k, got, v)
				}
			}
			for _, k := range c.absentKeys {
				if _, ok := resp.Header[k]; ok {
					t.Fatalf("%s present: %q", k, resp.Header.Values(k))
				}
			}
			if resp.ContentLength != int64(len(c.body)) {
				t.Fatalf("Content-Length %d, want %d", resp.ContentLength, len(c.body))
			}
		})
	}
}

func checkError(t *testing.T, resp *http.Response, body []byte, code string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("error body %s (%v), want code %s", body, err, code)
	}
	if resp.Header.Get("LP-Error-Source") != "lpmtls" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("error headers %v", resp.Header)
	}
}

// recorder captures what a function received through lambdaevent.Router.Invoke, i.e.
// after the JSON round trip.
type recorder struct {
	events   chan events.APIGatewayV2HTTPRequest
	deadline chan bool
	lc       chan string
}

func newRecorder() *recorder {
	return &recorder{events: make(chan events.APIGatewayV2HTTPRequest, 1), deadline: make(chan bool, 1), lc: make(chan string, 1)}
}

func (rc *recorder) handle(ctx context.Context, e *events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	rc.events <- *e
	_, ok := ctx.Deadline()
	rc.deadline <- ok
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		rc.lc <- lc.AwsRequestID + " " + lc.InvokedFunctionArn
	} else {
		rc.lc <- ""
	}
	if e.RawPath == "/slow" {
		<-ctx.Done()
		return (&apierr.Error{Status: 504, Code: "timeout", Message: ctx.Err().Error(), Source: apierr.SourceLPMTLS}).HTTPResponse()
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "text/plain"}, Body: "ok " + e.RouteKey}
}

type failing struct{}

func (failing) Invoke(context.Context, []byte) ([]byte, error) { return nil, errors.New("boom") }

func TestHandler(t *testing.T) {
	rec := newRecorder()
	h, err := NewHandler(Options{
		Routes: []Route{
			{Key: RouteMapping, Function: "mapping", Invoker: lambdaevent.Router{Name: "mapping", HTTP: rec.handle}},
			{Key: RouteForward, Function: "forward", Invoker: lambdaevent.Router{Name: "forward", HTTP: rec.handle}},
			{Key: "ANY /slow", Function: "slow", Invoker: lambdaevent.Router{Name: "slow", HTTP: rec.handle}},
			{Key: "GET /fail", Function: "fail", Invoker: failing{}},
		},
		MaxBodyBytes: 10,
		Timeout:      time.Millisecond,
		NewMeta:      func() Meta { return fixedMeta },
		Logger:       discardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	cases := []struct {
		name, method, path, body string
		chunked                  bool
		status                   int
		errCode                  string
		route                    string
	}{
		{name: "mapping", method: "POST", path: "/mapping", body: "[]", status: 200, route: RouteMapping},
		{name: "forward any method", method: "DELETE", path: "/forward", status: 200, route: RouteForward},
		{name: "unknown path", method: "GET", path: "/nope", status: 404, errCode: "not_found"},
		{name: "mapping is POST only", method: "GET", path: "/mapping", status: 404, errCode: "not_found"},
		{name: "trailing slash is another route", method: "POST", path: "/forward/", status: 404, errCode: "not_found"},
		{name: "body over the limit", method: "POST", path: "/forward", body: "12345678901", status: 413, errCode: "body_too_large"},
		{name: "chunked body over the limit", method: "POST", path: "/forward", body: "12345678901", chunked: true, status: 413, errCode: "body_too_large"},
		{name: "body at the limit", method: "POST", path: "/forward", body: "1234567890", status: 200, route: RouteForward},
		{name: "deadline", method: "GET", path: "/slow", status: 504, route: "ANY /slow"},
		{name: "function error", method: "GET", path: "/fail", status: 500, errCode: "internal_error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rd io.Reader = strings.NewReader(c.body)
			if c.chunked {
				rd = io.MultiReader(rd) // hides the length: sent chunked
			}
			req, _ := http.NewRequest(c.method, srv.URL+c.path, rd)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if resp.Header.Get("Apigw-Requestid") != fixedMeta.RequestID {
				t.Fatalf("Apigw-Requestid %q", resp.Header.Get("Apigw-Requestid"))
			}
			if c.errCode != "" {
				checkError(t, resp, body, c.errCode)
			}
			if c.route == "" {
				return
			}
			e := <-rec.events
			if e.RouteKey != c.route || e.RequestContext.RouteKey != c.route || e.RequestContext.HTTP.Method != c.method {
				t.Fatalf("event route %q/%q method %q", e.RouteKey, e.RequestContext.RouteKey, e.RequestContext.HTTP.Method)
			}
			if in, err := apigw.FromV2(&e); err != nil || string(in.Body) != c.body {
				t.Fatalf("event body %q (%v)", e.Body, err)
			}
			if !<-rec.deadline {
				t.Fatal("the invocation has no deadline")
			}
			fn := strings.SplitN(c.route, "/", 2)[1]
			if lc := <-rec.lc; lc != fixedMeta.RequestID+" arn:aws:lambda:local:"+LocalAccountID+":function:"+fn {
				t.Fatalf("lambda context %q", lc)
			}
		})
	}
}

func TestNewHandlerRejectsBadRoutes(t *testing.T) {
	for _, key := range []string{"POST", "/mapping", "POST mapping", ""} {
		if _, err := NewHandler(Options{Routes: []Route{{Key: key, Invoker: failing{}}}}); err == nil {
			t.Errorf("route %q accepted", key)
		}
	}
	if _, err := NewHandler(Options{Routes: []Route{{Key: RouteMapping}}}); err == nil {
		t.Error("route without invoker accepted")
	}
}

func TestAddrFromEnv(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{nil, "127.0.0.1:3000"},
		{map[string]string{"PORT": "8080"}, "127.0.0.1:8080"},
		{map[string]string{"LPMTLS_LOCAL_ADDR": "127.0.0.1:4000", "PORT": "8080"}, "127.0.0.1:4000"},
	}
	for _, c := range cases {
		if got := AddrFromEnv(mapEnv(c.env)); got != c.want {
			t.Errorf("AddrFromEnv(%v) = %s, want %s", c.env, got, c.want)
		}
	}
}

func TestParseArgs(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		addr    string
		timeout time.Duration
		wantErr string
	}{
		{name: "defaults", addr: DefaultAddr, timeout: DefaultTimeout},
		{name: "flags win", args: []string{"-addr", "127.0.0.1:9", "-timeout", "5s"}, env: map[string]string{"LPMTLS_LOCAL_ADDR": "x:1", "LPMTLS_LOCAL_TIMEOUT": "1m"}, addr: "127.0.0.1:9", timeout: 5 * time.Second},
		{name: "env", env: map[string]string{"PORT": "7000", "LPMTLS_LOCAL_TIMEOUT": "1m"}, addr: "127.0.0.1:7000", timeout: time.Minute},
		{name: "bad env timeout", env: map[string]string{"LPMTLS_LOCAL_TIMEOUT": "soon"}, wantErr: "LPMTLS_LOCAL_TIMEOUT"},
		{name: "bad flag", args: []string{"-nope"}, wantErr: "-nope"},
		{name: "zero timeout", args: []string{"-timeout", "0s"}, wantErr: "positive"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := ParseArgs(c.args, mapEnv(c.env), io.Discard)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || o.Addr != c.addr || o.Timeout != c.timeout {
				t.Fatalf("got %+v, %v", o, err)
			}
		})
	}
}

func TestCurlQuoting(t *testing.T) {
	e := Example{Method: "POST", Path: "/forward", Header: [][2]string{{"X-Q", "it's"}}, Body: `{"a":"b'c"}`}
	line := e.Curl("http://127.0.0.1:1")
	req, err := parseCurl(line)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	if req.Method != "POST" || req.URL.String() != "http://127.0.0.1:1/forward" || req.Header.Get("X-Q") != "it's" || string(body) != e.Body {
		t.Fatalf("parsed %s %s %v %q from %s", req.Method, req.URL, req.Header, body, line)
	}
}

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
