package lp

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

func TestForwardSendsDocumentedHeaders(t *testing.T) {
	tests := []struct {
		name string
		req  ForwardRequest
		want http.Header
	}{
		{
			name: "all gateway headers",
			req: ForwardRequest{
				Method: http.MethodPost, URL: "https://api.brand.example/hooks/in?x=1&y=%2F",
				ServiceName: "WEBHOOKS", AuthorizationOverride: testOverride, StopIfCertificateNotFound: true,
				Header: http.Header{
					"Content-Type":        {"application/json"},
					"x-custom":            {"a", "b"}, // not canonical: still copied, canonically
					"Authorization":       {"Basic caller"},
					"LP-forward-url":      {"https://evil.example/"},
					"lp-service-name":     {"EVIL"},
					"Lp-Anything":         {"x"},
					"Connection":          {"X-Hop-Named"},
					"X-Hop-Named":         {"1"},
					"Keep-Alive":          {"timeout=5"},
					"Te":                  {"trailers"},
					"Transfer-Encoding":   {"chunked"},
					"Upgrade":             {"h2c"},
					"Proxy-Authorization": {"Basic p"},
					"Proxy-Connection":    {"keep-alive"},
					"Trailer":             {"X-T"},
					"Host":                {"evil.example"},
					"Content-Length":      {"999"},
				},
				Body: []byte(`{"event":"ping"}`),
			},
			want: http.Header{
				"Authorization":                    {"Bearer " + testBearer},
				"Lp-Forward-Url":                   {"https://api.brand.example/hooks/in?x=1&y=%2F"},
				"Lp-Service-Name":                  {"WEBHOOKS"},
				"Lp-Authorization-Override":        {testOverride},
				"Lp-Stop-If-Certificate-Not-Found": {"true"},
				"Content-Type":                     {"application/json"},
				"X-Custom":                         {"a", "b"},
				"User-Agent":                       {"lpmtls"},
				"Content-Length":                   {"16"},
			},
		},
		{
			name: "optional headers omitted, stop flag explicit false",
			req:  ForwardRequest{Method: http.MethodGet, URL: "https://t.example/"},
			want: http.Header{
				"Authorization":                    {"Bearer " + testBearer},
				"Lp-Forward-Url":                   {"https://t.example/"},
				"Lp-Stop-If-Certificate-Not-Found": {"false"},
				"User-Agent":                       {"lpmtls"},
			},
		},
		{
			name: "caller's User-Agent is kept",
			req:  ForwardRequest{Method: http.MethodGet, URL: "https://t.example/", Header: http.Header{"User-Agent": {"brand-bot/2.1"}}},
			want: http.Header{
				"Authorization":                    {"Bearer " + testBearer},
				"Lp-Forward-Url":                   {"https://t.example/"},
				"Lp-Stop-If-Certificate-Not-Found": {"false"},
				"User-Agent":                       {"brand-bot/2.1"},
			},
		},
		{
			name: "caller's User-Agent under a non-canonical name is kept",
			req:  ForwardRequest{Method: http.MethodGet, URL: "https://t.example/", Header: http.Header{"user-agent": {"brand-bot/2.1"}}},
			want: http.Header{
				"Authorization":                    {"Bearer " + testBearer},
				"Lp-Forward-Url":                   {"https://t.example/"},
				"Lp-Stop-If-Certificate-Not-Found": {"false"},
				"User-Agent":                       {"brand-bot/2.1"},
			},
		},
		{
			name: "two caller User-Agents: the default",
			req:  ForwardRequest{Method: http.MethodGet, URL: "https://t.example/", Header: http.Header{"User-Agent": {"a/1", "b/2"}}},
			want: http.Header{
				"Authorization":                    {"Bearer " + testBearer},
				"Lp-Forward-Url":                   {"https://t.example/"},
				"Lp-Stop-If-Certificate-Not-Found": {"false"},
				"User-Agent":                       {"lpmtls"},
			},
		},
		{
			name: "empty caller User-Agent: the default",
			req:  ForwardRequest{Method: http.MethodGet, URL: "https://t.example/", Header: http.Header{"User-Agent": {""}}},
			want: http.Header{
				"Authorization":                    {"Bearer " + testBearer},
				"Lp-Forward-Url":                   {"https://t.example/"},
				"Lp-Stop-If-Certificate-Not-Found": {"false"},
				"User-Agent":                       {"lpmtls"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got http.Header
			var method, path, host string
			f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
				got, method, path, host = r.Header.Clone(), r.Method, r.URL.EscapedPath(), r.Host
				_, _ = io.Copy(io.Discard, r.Body)
			})
			if _, err := f.c.Forward(context.Background(), f.auth("9041 2233"), &tc.req); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("headers sent:\n got %v\nwant %v", sortedKeys(got), sortedKeys(tc.want))
				for k := range tc.want {
					if !reflect.DeepEqual(got[k], tc.want[k]) {
						t.Errorf("%s = %q, want %q", k, got[k], tc.want[k])
					}
				}
			}
			if method != tc.req.Method || path != "/mtls/account/9041%202233" || host != f.host {
				t.Errorf("request line = %s %s (host %s)", method, path, host)
			}
		})
	}
}

func sortedKeys(h http.Header) []string {
	var ks []string
	for k := range h {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestForwardRelaysBytesUnchanged(t *testing.T) {
	reqBody := make([]byte, 70000)
	respBody := make([]byte, 50000)
	_, _ = rand.Read(reqBody)
	_, _ = rand.Read(respBody)
	var gotBody []byte
	f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
		gotBody, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Add("Set-Cookie", "a=1; Path=/")
		w.Header().Add("Set-Cookie", "b=2; HttpOnly")
		w.Header().Set("X-Target", "yes")
		w.Header().Set("Connection", "X-Conn-Only")
		w.Header().Set("X-Conn-Only", "drop me")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(respBody)
	})
	resp, err := f.c.Forward(context.Background(), f.auth("1"),
		&ForwardRequest{Method: http.MethodPut, URL: "https://t.example/", Body: reqBody})

	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotBody, reqBody) {
		t.Error("request body changed on the way")
	}
	if resp.StatusCode != http.StatusCreated || !bytes.Equal(resp.Body, respBody) {
		t.Errorf("status %d, body equal %v", resp.StatusCode, bytes.Equal(resp.Body, respBody))
	}
	if got := resp.Header.Values("Set-Cookie"); !reflect.DeepEqual(got, []string{"a=1; Path=/", "b=2; HttpOnly"}) {
		t.Errorf("Set-Cookie = %q", got)
	}
	if resp.Header.Get("X-Target") != "yes" || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("headers = %v", resp.Header)
	}
	for _, k := range []string{"Connection", "X-Conn-Only", "Transfer-Encoding", "Keep-Alive"} {
		if _, ok := resp.Header[k]; ok {
			t.Errorf("hop-by-hop header %s relayed", k)
		}
	}
}

func TestForwardGzipPassesEncoded(t *testing.T) {
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write([]byte(strings.Repeat("hello gzip ", 100)))
	_ = zw.Close()
	var gotAE string
	f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
		gotAE = r.Header.Get("Accept-Encoding")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(zipped.Bytes())
	})
	resp, err := f.c.Forward(context.Background(), f.auth("1"), &ForwardRequest{
		URL: "https://t.example/", Header: http.Header{"Accept-Encoding": {"gzip"}},
	})

	if err != nil {
		t.Fatal(err)
	}
	if gotAE != "gzip" || resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(resp.Body, zipped.Bytes()) {
		t.Errorf("gzip body was altered: AE=%q CE=%q len=%d want %d", gotAE, resp.Header.Get("Content-Encoding"), len(resp.Body), zipped.Len())
	}
}

func TestForwardDoesNotFollowRedirects(t *testing.T) {
	calls := 0
	f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Location", "/elsewhere")
		w.WriteHeader(http.StatusFound)
	})
	// Even a caller client that follows redirects must not follow the target's 302.
	hc := *f.c.hc
	hc.CheckRedirect = nil
	c := New(Options{HTTPClient: &hc})
	resp, err := c.Forward(context.Background(), f.auth("1"), &ForwardRequest{URL: "https://t.example/"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/elsewhere" || calls != 1 {
		t.Errorf("status %d location %q calls %d", resp.StatusCode, resp.Header.Get("Location"), calls)
	}
}

func TestForwardClassification(t *testing.T) {
	tests := []struct {
		name      string
		stop      bool
		h         http.HandlerFunc
		wantKind  Kind // KindUnknown: success
		wantMsg   string
		wantRetry time.Duration
	}{
		{"424 with transport headers", true, answer(424, []byte("x"), "LP-message-from-transport", "Connection refused", "LP-error-from-transport", "https://t.example/ unreachable"),
			KindTarget, "target call failed: Connection refused; https://t.example/ unreachable", 0},
		{"424 bare", false, answer(424, nil), KindTarget, "target call failed", 0},
		{"transport header on 200", false, answer(200, nil, "LP-message-from-transport", "read timeout"), KindTarget, "read timeout", 0},
		{"transport header beats 401", false, answer(401, nil, "LP-error-from-transport", "tls failure"), KindTarget, "tls failure", 0},
		{"401 and the mapping check refuses the bearer", false, answer(401, nil), KindAuth, "refused the bearer", 0},
		{"403 and the mapping check refuses the bearer", true, answer(403, nil, "WWW-Authenticate", "Bearer"), KindAuth, "refused the bearer", 0},
		{"401 while the mapping check takes the bearer is the target's", false, byPath(answer(401, []byte(`{"error":"bad override"}`), "WWW-Authenticate", "Basic"), mappingOK), KindUnknown, "", 0},
		{"403 while the mapping check takes the bearer is the target's", true, byPath(answer(403, []byte("forbidden")), mappingOK), KindUnknown, "", 0},
		{"401 while the mapping check is throttled is the target's", false, byPath(answer(401, nil), answer(429, nil)), KindUnknown, "", 0},
		{"429 wrapped seconds", false, answer(429, lpWrapper(429), "Retry-After", "2"), KindThrottled, "", 2 * time.Second},
		{"429 wrapped date", false, answer(429, lpWrapper(429), "Retry-After", fixedNow.Add(time.Minute).Format(http.TimeFormat)), KindThrottled, "", time.Minute},
		{"429 wrapped without Retry-After", false, answer(429, lpWrapper(429)), KindThrottled, "", 0},
		{"429 bare is the target's", false, answer(429, nil, "Retry-After", "7"), KindUnknown, "", 0},
		{"400 mapping with stop flag", true, answer(400, []byte(`{"message":"No certificate mapping found"}`)), KindNoCertificate, "no certificate mapping", 0},
		{"400 CERT with stop flag", true, answer(400, []byte(`CERT missing`)), KindNoCertificate, "CERT missing", 0},
		{"400 mTLS with stop flag", true, answer(400, []byte(`<html><title>mTLS lookup failed</title></html>`)), KindNoCertificate, "mTLS lookup failed", 0},
		{"400 bare with stop flag is the target's", true, answer(400, nil), KindUnknown, "", 0},
		{"400 other with stop flag is the target's", true, answer(400, []byte(`{"error":"invalid event"}`)), KindUnknown, "", 0},
		{"400 without stop flag is the target's", false, answer(400, []byte("bad input")), KindUnknown, "", 0},
		{"400 certificate without stop flag is the target's", false, answer(400, []byte("certificate expired")), KindUnknown, "", 0},
		{"500 certificate with stop flag", true, answer(500, []byte(`{"message":"Certificate not found for account"}`)), KindNoCertificate, "Certificate not found", 0},
		{"500 MAPPING with stop flag", true, answer(500, []byte(`no MAPPING`)), KindNoCertificate, "no MAPPING", 0},
		{"500 certificate with transport header is the target's failure", true, answer(500, []byte(`certificate`), "LP-error-from-transport", "x"), KindTarget, "x", 0},
		{"500 MTLS with stop flag", true, answer(500, []byte(`MTLS error`)), KindNoCertificate, "", 0},
		{"500 html page with stop flag is the target's", true, answer(500, []byte(`<html><head><title>Internal Server Error</title></head></html>`)), KindUnknown, "", 0},
		{"500 certificate without stop flag is the target's", false, answer(500, []byte(`certificate`)), KindUnknown, "", 0},
		{"500 other with stop flag is the target's", true, answer(500, []byte(`NullPointerException`)), KindUnknown, "", 0},
		{"503 bare is the target's", true, answer(503, nil), KindUnknown, "", 0},
		{"503 with a body and Retry-After is the target's", true, answer(503, []byte(`{"error":{"message":"maintenance"}}`), "Retry-After", "120"), KindUnknown, "", 0},
		{"503 wrapper naming another status is the target's", true, answer(503, lpWrapper(500)), KindUnknown, "", 0},
		{"503 in LivePerson's wrapper", true, answer(503, lpWrapper(503)), KindGateway, "gateway failed: injected (internalCode 503, SERVICE_UNAVAILABLE)", 0},
		{"500 in LivePerson's wrapper", false, answer(500, fixture(t, "gateway_error_500.json")), KindGateway, "NullPointerException", 0},
		{"404 is the target's", true, answer(404, []byte("nope")), KindUnknown, "", 0},
		{"204", true, answer(204, nil), KindUnknown, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeLP(t, tc.h)
			resp, err := f.c.Forward(context.Background(), f.auth("1"), &ForwardRequest{
				Method: http.MethodPost, URL: "https://t.example/", StopIfCertificateNotFound: tc.stop,
				AuthorizationOverride: testOverride, Body: []byte("{}"),
			})

			if tc.wantKind == KindUnknown {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				rec := httptest.NewRecorder()
				tc.h(rec, httptest.NewRequest(http.MethodGet, "/", nil))
				if resp.StatusCode != rec.Code || !bytes.Equal(resp.Body, rec.Body.Bytes()) {
					t.Errorf("target answer altered: %d %q, want %d %q", resp.StatusCode, resp.Body, rec.Code, rec.Body.Bytes())
				}
				return
			}
			e := asError(t, err)
			if e.Kind != tc.wantKind || e.Op != "forward" || e.RetryAfter != tc.wantRetry || e.Status == 0 || e.Header == nil {
				t.Errorf("err = %+v; want kind %v retry %v", e, tc.wantKind, tc.wantRetry)
			}
			if !strings.Contains(e.Message, tc.wantMsg) {
				t.Errorf("message %q lacks %q", e.Message, tc.wantMsg)
			}
			assertNoSecrets(t, err)
		})
	}
}

func TestForwardErrorBodyBounded(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 200<<10)
	f := newFakeLP(t, answer(424, big, "Set-Cookie", "sid=secret-cookie"))
	_, err := f.c.Forward(context.Background(), f.auth("1"), &ForwardRequest{URL: "https://t.example/"})
	e := asError(t, err)
	if len(e.Body) != maxErrorBody {
		t.Errorf("body kept %d bytes, want %d", len(e.Body), maxErrorBody)
	}
	if e.Header.Get("Set-Cookie") != "" {
		t.Error("cookie kept in an error")
	}
}

func TestForwardBadInput(t *testing.T) {
	f := newFakeLP(t, answer(200, nil))
	tests := []struct {
		name   string
		acct   string
		bearer string
		req    *ForwardRequest
	}{
		{"nil request", "1", testBearer, nil},
		{"no account", "", testBearer, &ForwardRequest{URL: "https://t/"}},
		{"no url", "1", testBearer, &ForwardRequest{}},
		{"no bearer", "1", "", &ForwardRequest{URL: "https://t/"}},
		{"newline in url", "1", testBearer, &ForwardRequest{URL: "https://t/\r\nX: y"}},
		{"newline in override", "1", testBearer, &ForwardRequest{URL: "https://t/", AuthorizationOverride: testOverride + "\n"}},
		{"bad header value", "1", testBearer, &ForwardRequest{URL: "https://t/", Header: http.Header{"X": {"a\nb"}}}},
		{"bad header name", "1", testBearer, &ForwardRequest{URL: "https://t/", Header: http.Header{"X Y": {"a"}}}},
		{"bad method", "1", testBearer, &ForwardRequest{URL: "https://t/", Method: "GE T"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.c.Forward(context.Background(), Auth{Domains: f.d, AccountID: tc.acct, Bearer: tc.bearer}, tc.req)
			if KindOf(err) != KindBadRequest {
				t.Errorf("err = %v, want bad request", err)
			}
			assertNoSecrets(t, err)
		})
	}
	if _, err := f.c.Forward(context.Background(), Auth{Domains: Domains{}, AccountID: "1", Bearer: testBearer}, &ForwardRequest{URL: "https://t/"}); KindOf(err) != KindDiscovery {
		t.Errorf("no gateway domain: %v", err)
	}
}

func TestTimeoutAndNetworkErrors(t *testing.T) {
	release := make(chan struct{})
	f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
		// Hold the answer until the test ends, whatever the connection does: answering
		// when the request context ends could race an answer in before the deadline.
		<-release
	})
	t.Cleanup(func() { close(release) })

	calls := map[string]func(ctx context.Context, d Domains) error{
		"csds":   func(ctx context.Context, _ Domains) error { _, err := f.c.Discover(ctx, "1", AuthLogin); return err },
		"login":  func(ctx context.Context, d Domains) error { _, err := f.c.Login(ctx, d, loginCred); return err },
		"oauth2": func(ctx context.Context, d Domains) error { _, err := f.c.Login(ctx, d, oauth2Cred); return err },
		"mapping": func(ctx context.Context, d Domains) error {
			_, err := f.c.CheckMappings(ctx, Auth{Domains: d, AccountID: "1", Bearer: testBearer}, testPairs)
			return err
		},
		"forward": func(ctx context.Context, d Domains) error {
			_, err := f.c.Forward(ctx, Auth{Domains: d, AccountID: "1", Bearer: testBearer}, &ForwardRequest{URL: "https://t/"})
			return err
		},
	}
	for op, call := range calls {
		t.Run(op+" deadline", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			err := call(ctx, f.d)
			e := asError(t, err)
			if e.Kind != KindTimeout || e.Op != op || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrTimeout) {
				t.Errorf("err = %+v", e)
			}
			assertNoSecrets(t, err)
		})
		t.Run(op+" cancelled", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := call(ctx, f.d); KindOf(err) != KindTimeout || !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v", err)
			}
		})
	}

	// A closed port: the connection fails before any answer.
	dead := newFakeLP(t, answer(200, nil))
	dead.srv.Close()
	for op, call := range calls {
		t.Run(op+" network", func(t *testing.T) {
			f.c.opts.CSDSURL = dead.srv.URL
			defer func() { f.c.opts.CSDSURL = f.srv.URL }()
			err := call(context.Background(), dead.d)
			if e := asError(t, err); e.Kind != KindNetwork || e.Op != op || e.Err == nil || e.Status != 0 {
				t.Errorf("err = %+v", e)
			}
			assertNoSecrets(t, err)
		})
	}
}

func TestConnectionReuse(t *testing.T) {
	body := bytes.Repeat([]byte("r"), 3000)
	f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get("X-N") == "7" { // an error answer longer than what Error keeps must not cost the connection either
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write(bytes.Repeat(body, 30))
			return
		}
		_, _ = w.Write(body)
	})
	for i := 0; i < 20; i++ {
		_, _ = f.c.Forward(context.Background(), f.auth("1"), &ForwardRequest{
			Method: http.MethodPost, URL: "https://t.example/", Body: []byte("payload"),
			Header: http.Header{"X-N": {string(rune('0' + i%10))}},
		})

	}
	if _, err := f.c.CheckMappings(context.Background(), f.auth("1"), testPairs); err == nil {
		t.Error("mapping check on a text answer succeeded")
	}
	if n := f.newConns.Load(); n != 1 {
		t.Errorf("%d connections for 21 sequential calls, want 1", n)
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
		w.Header().Set("X-Echo-Override", r.Header.Get("LP-authorization-override"))
		w.Header().Set("LP-message-from-transport", "target got "+r.Header.Get("LP-authorization-override"))
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"message":"rejected ` + string(b) + " " + r.Header.Get("Authorization") + `"}}`))
	}
	f := newFakeLP(t, echo)
	var errs []error
	_, err := f.c.Login(context.Background(), f.d, loginCred)
	errs = append(errs, err)
	_, err = f.c.Login(context.Background(), f.d, oauth2Cred)
	errs = append(errs, err)
	_, err = f.c.CheckMappings(context.Background(), f.auth("1"), testPairs)
	errs = append(errs, err)
	_, err = f.c.Forward(context.Background(), f.auth("1"), &ForwardRequest{URL: "https://t/", AuthorizationOverride: testOverride})
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		assertNoSecrets(t, err)
	}
}

func TestRetryAfter(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"":  0,
		"0": 0, "-3": 0, "12": 12 * time.Second, " 4 ": 4 * time.Second, "soon": 0,
		fixedNow.Add(30 * time.Second).Format(http.TimeFormat): 30 * time.Second,
		fixedNow.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		if got := retryAfter(http.Header{"Retry-After": {v}}, fixedNow); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestNewHTTPClient(t *testing.T) {
	hc := NewHTTPClient()
	tr, ok := hc.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport %T", hc.Transport)
	}
	if hc.Timeout != 0 || hc.CheckRedirect == nil || !tr.DisableCompression || !tr.ForceAttemptHTTP2 ||
		tr.MaxIdleConnsPerHost != 32 || tr.IdleConnTimeout != 90*time.Second || tr.TLSHandshakeTimeout != 10*time.Second ||
		tr.ResponseHeaderTimeout != 0 || tr.TLSClientConfig.MinVersion < 0x0303 || tr.TLSClientConfig.InsecureSkipVerify ||
		tr.TLSClientConfig.RootCAs != nil {
		t.Errorf("unexpected client config: %+v / %+v", hc, tr)
	}
}

func BenchmarkForward1KiB(b *testing.B) {
	payload := bytes.Repeat([]byte("k"), 1024)
	f := newFakeLP(b, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(payload)
	})
	req := &ForwardRequest{
		Method: http.MethodPost, URL: "https://t.example/in", ServiceName: "WEBHOOKS",
		StopIfCertificateNotFound: true, Header: http.Header{"Content-Type": {"application/json"}}, Body: payload,
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(2 * int64(len(payload)))
	for b.Loop() {
		resp, err := f.c.Forward(ctx, f.auth("90412233"), req)
		if err != nil || len(resp.Body) != len(payload) {
			b.Fatal(err)
		}
	}
}

func TestForwardRedactsTargetURL(t *testing.T) {
	const target = "https://api.brand.example/hooks/in?api_key=QK-S3CRET-55&x=1"
	const safe = "https://api.brand.example/hooks/in"
	tests := []struct {
		name string
		h    http.HandlerFunc
	}{
		{"424 headers echo the URL", answer(424, nil,
			"LP-message-from-transport", "Connection refused: "+target,
			"LP-error-from-transport", "java.net.ConnectException calling "+target)},
		{"424 headers echo the query alone", answer(424, nil,
			"LP-message-from-transport", "GET /hooks/in?api_key=QK-S3CRET-55&x=1 timed out")},
		{"424 headers echo the decoded query", answer(424, nil,
			"LP-error-from-transport", "params api_key=QK-S3CRET-55&x=1")},
		{"500 body echoes the URL", answer(500, []byte(`{"error":{"message":"cannot reach `+target+`","internalCode":7,"responseStatus":"INTERNAL_SERVER_ERROR"}}`))},
		{"400 no-certificate body echoes the URL", answer(400, []byte(`{"message":"no mapping for `+target+`"}`))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeLP(t, tc.h)
			_, err := f.c.Forward(context.Background(), f.auth("1"), &ForwardRequest{
				URL: target, StopIfCertificateNotFound: true,
			})

			e := asError(t, err)
			fields := []string{err.Error(), e.Message, string(e.Body)}
			for k, vs := range e.Header {
				fields = append(fields, k+": "+strings.Join(vs, ","))
			}
			for _, f := range fields {
				if strings.Contains(f, "QK-S3CRET-55") {
					t.Errorf("target query leaked: %q", f)
				}
			}
			if strings.Contains(tc.name, "URL") && !strings.Contains(e.Message, safe) {
				t.Errorf("message %q lacks the redacted URL %q", e.Message, safe)
			}
		})
	}
}

func TestRedactURLShortQuery(t *testing.T) {
	e := redactURL(&Error{Message: "HTTP 401 for https://t.example/p?1 and /p?1"}, "https://t.example/p?1")
	if e.Message != "HTTP 401 for https://t.example/p and /p?[redacted]" {
		t.Errorf("message = %q", e.Message)
	}
	e = redactURL(&Error{Message: "failed https://u:pw-X@t.example/p#frag"}, "https://u:pw-X@t.example/p#frag")
	if e.Message != "failed https://t.example/p" {
		t.Errorf("message = %q", e.Message)
	}
}

func TestLPMessageNonJSON(t *testing.T) {
	long := strings.Repeat("é", 300) // 2 bytes a rune: the cut must not split one
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"empty", nil, ""},
		{"json wrapper", fixture(t, "error_wrapper.json"), "Bad credentials for user (internalCode 10, UNAUTHORIZED)"},
		{"json after BOM", fixture(t, "error_wrapper_bom.json"), "Bad credentials for user (internalCode 10, UNAUTHORIZED)"},
		{"json array", []byte(`["x"]`), ""},
		{"broken json", []byte(`{"message":`), ""},
		{"load balancer page", fixture(t, "error_lb.html"), "502 Bad Gateway"},
		{"html without title", []byte("<html><body>pw-S3CRET-7731</body></html>"), ""},
		{"plain text first line", []byte("  upstream connect error\nreset reason: overflow"), "upstream connect error"},
		{"binary", []byte("\x00\x01\x02"), ""},
		{"control characters", []byte("a\tb\rc"), "a b c"},
		{"long text", []byte(long), strings.Repeat("é", 100) + "…"},
		{"long json message", []byte(`{"message":"` + long + `"}`), strings.Repeat("é", 100) + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := lpMessage(tc.body)
			if got != tc.want {
				t.Errorf("lpMessage = %q, want %q", got, tc.want)
			}
			if !utf8.ValidString(got) || len(got) > maxLPMessageLen+len("…") {
				t.Errorf("message not short valid UTF-8: %d bytes", len(got))
			}
		})
	}
}

func TestForwardHTMLErrorHidesSecrets(t *testing.T) {
	page := "<html><head><title>502 Bad Gateway " + testBearer + "</title></head><body>" +
		strings.Repeat("x", 5000) + " Authorization: Bearer " + testBearer + "</body></html>"
	f := newFakeLP(t, answer(424, []byte(page)))
	_, err := f.c.Forward(context.Background(), f.auth("1"), &ForwardRequest{URL: "https://t.example/"})
	e := asError(t, err)
	if e.Message != "target call failed" || strings.Contains(string(e.Body), testBearer) {
		t.Errorf("message = %q", e.Message)
	}
	assertNoSecrets(t, err)
}

// byPath answers the mapping check with mapping and everything else with forward, so a
// forward's 401 can meet a mapping check that takes the bearer.
func byPath(forward, mapping http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/checks/serviceUrlMappings") {
			mapping(w, r)
			return
		}
		forward(w, r)
	}
}

func mappingOK(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`[{"serviceName":"X","url":"https://t.example/","exist":true}]`))
}

// lpWrapper is LivePerson's error wrapper for status.
func lpWrapper(status int) []byte {
	return []byte(fmt.Sprintf(`{"error":{"time":"Jan 1, 2026 10:00:00 AM","message":"injected","internalCode":%d,"responseStatus":%q}}`, status, JavaStatus(status)))
}

// TestForwardTargetAuthAnswerUntouched: a target's 401 (a wrong
// LP-authorization-override) comes back as the target sent it, after one mapping check
// that shows the bearer good, and the request is sent once.
func TestForwardTargetAuthAnswerUntouched(t *testing.T) {
	var forwards, checks atomic.Int32
	f := newFakeLP(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/checks/serviceUrlMappings") {
			checks.Add(1)
			mappingOK(w, r)
			return
		}
		forwards.Add(1)
		w.Header().Set("WWW-Authenticate", `Basic realm="brand"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"wrong override"}`))
	})
	resp, err := f.c.Forward(context.Background(), f.auth("1"), &ForwardRequest{
		Method: http.MethodPost, URL: "https://t.example/", ServiceName: "WEBHOOKS",
		AuthorizationOverride: testOverride, Body: []byte("{}"), StopIfCertificateNotFound: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 401 || string(resp.Body) != `{"message":"wrong override"}` || resp.Header.Get("WWW-Authenticate") != `Basic realm="brand"` {
		t.Errorf("answer altered: %d %q %v", resp.StatusCode, resp.Body, resp.Header)
	}
	if forwards.Load() != 1 || checks.Load() != 1 {
		t.Errorf("%d forwards and %d mapping checks, want 1 and 1", forwards.Load(), checks.Load())
	}
}

// TestForwardClientRefusals: a request lpmtls's own HTTP client refuses to send (whole)
// is lpmtls's error (headers too large, a body that cannot be read), never
// LivePerson's unreachability, and LivePerson sees nothing.
func TestForwardClientRefusals(t *testing.T) {
	var seen atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Counted only once whole: under HTTP/2 the headers leave before the body is read,
		// and a failing body resets the stream.
		if _, err := io.ReadAll(r.Body); err == nil {
			seen.Add(1)
		}
	}))
	srv.EnableHTTP2 = true // as LivePerson's gateway: Go's HTTP/2 client checks the header list
	srv.StartTLS()
	t.Cleanup(srv.Close)
	hc := NewHTTPClient()
	hc.Transport.(*http.Transport).TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := New(Options{HTTPClient: hc})
	host := strings.TrimPrefix(srv.URL, "https://")
	auth := Auth{AccountID: "1", Bearer: testBearer, Domains: Domains{ServiceMTLSGateway: host}}
	// One request first, so the server's SETTINGS (its header list limit) have arrived:
	// on a new connection the client may otherwise send before it knows the limit, and
	// the server answers 431 itself.
	if _, err := c.Forward(context.Background(), auth, &ForwardRequest{URL: "https://t.example/"}); err != nil {
		t.Fatal(err)
	}
	seen.Store(0)
	tests := []struct {
		name string
		req  *ForwardRequest
		want Kind
	}{
		{"1 MiB header over HTTP/2", &ForwardRequest{URL: "https://t.example/",
			Header: http.Header{"X-Big": {strings.Repeat("a", 1<<20)}}}, KindHeadersTooLarge},
		{"unreadable body", &ForwardRequest{Method: http.MethodPost, URL: "https://t.example/", BodyLength: 10,
			BodyReader: func() io.Reader { return iotest.ErrReader(errors.New("decode failed")) }}, KindUnsent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Forward(context.Background(), auth, tc.req)
			if e := asError(t, err); e.Kind != tc.want {
				t.Fatalf("kind %v, want %v: %v", e.Kind, tc.want, err)
			}
		})
	}
	if n := seen.Load(); n != 0 {
		t.Errorf("%d requests reached LivePerson", n)
	}
}
