package apigw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func loadEvent(t testing.TB, name string) *events.APIGatewayV2HTTPRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var e events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &e
}

func TestFromV2Fixtures(t *testing.T) {
	tests := []struct {
		file      string
		method    string
		path      string
		rawQuery  string
		query     url.Values
		header    map[string]string // expected single values; absent keys not checked
		noHeader  []string
		body      []byte
		requestID string
	}{
		{
			file:      "post-json.json",
			method:    "POST",
			path:      "/forward",
			header:    map[string]string{"Content-Type": "application/json; charset=utf-8", "X-Forwarded-Proto": "https"},
			noHeader:  []string{"Cookie"},
			body:      []byte(`{"conversationId": "c-42", "text": "héllo <b>&</b>"}`),
			requestID: "Cx1bZhkzIAMEVxw=",
			query:     url.Values{},
		},
		{
			file:      "post-binary.json",
			method:    "POST",
			path:      "/forward",
			header:    map[string]string{"Content-Type": "application/octet-stream"},
			body:      []byte{0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0x80, 0x7f, 0x01},
			requestID: "Cx1c1gE5IAMEbVA=",
			query:     url.Values{},
		},
		{
			file:     "get-cookies.json",
			method:   "GET",
			path:     "/mappings/a%2Fb",
			rawQuery: "service=mtlsGateway&tag=a&tag=b&q=x%20y%26z",
			query:    url.Values{"service": {"mtlsGateway"}, "tag": {"a", "b"}, "q": {"x y&z"}},
			header: map[string]string{
				"Cookie":   "session=abc123; theme=dark",
				"Accept":   "application/json, text/plain;q=0.5",
				"X-Custom": "one,two",
			},
			requestID: "Cx1dGhYRoAMEbPw=",
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := FromV2(loadEvent(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if r.Method != tt.method || r.Path != tt.path || r.RawQuery != tt.rawQuery {
				t.Errorf("method/path/query = %q %q %q", r.Method, r.Path, r.RawQuery)
			}
			if !reflect.DeepEqual(r.Query, tt.query) {
				t.Errorf("Query = %v, want %v", r.Query, tt.query)
			}
			for k, want := range tt.header {
				// Exactly one value: comma-joined values are not split.
				if got := r.Header[k]; len(got) != 1 || got[0] != want {
					t.Errorf("Header[%s] = %q, want [%q]", k, got, want)
				}
			}
			for _, k := range tt.noHeader {
				if _, ok := r.Header[k]; ok {
					t.Errorf("unexpected header %s", k)
				}
			}
			for k := range r.Header {
				if k != http.CanonicalHeaderKey(k) {
					t.Errorf("non-canonical key %q", k)
				}
			}
			if !bytes.Equal(r.Body, tt.body) {
				t.Errorf("Body = %q, want %q", r.Body, tt.body)
			}
			if r.RequestID != tt.requestID || r.SourceIP != "203.0.113.7" {
				t.Errorf("RequestID/SourceIP = %q %q", r.RequestID, r.SourceIP)
			}
		})
	}
}

func TestFromV2BadBase64(t *testing.T) {
	if _, err := FromV2(loadEvent(t, "bad-base64.json")); err == nil {
		t.Fatal("want error for invalid base64 body")
	}
}

func TestFromV2CookiesArrayWins(t *testing.T) {
	e := &events.APIGatewayV2HTTPRequest{
		Headers: map[string]string{"cookie": "stale=1"},
		Cookies: []string{"a=1", "b=2"},
	}
	r, err := FromV2(e)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Header["Cookie"]; !slices.Equal(got, []string{"a=1; b=2"}) {
		t.Errorf("Cookie = %q", got)
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 4, 255, 4096, 1<<16 + 7} {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(rng.UintN(256))
		}
		// Force invalid UTF-8 so the textual branch cannot be taken by chance.
		body[0] = 0xff
		resp := ToV2(&Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/octet-stream"}}, Body: body})
		if !resp.IsBase64Encoded {
			t.Fatalf("n=%d: not base64", n)
		}
		// Back through the event path, as if API Gateway echoed it in a request, and
		// through JSON to be sure nothing is lost on the wire.
		wire, err := json.Marshal(events.APIGatewayV2HTTPRequest{Body: resp.Body, IsBase64Encoded: true})
		if err != nil {
			t.Fatal(err)
		}
		var e events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(wire, &e); err != nil {
			t.Fatal(err)
		}
		req, err := FromV2(&e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(req.Body, body) {
			t.Fatalf("n=%d: round trip mismatch", n)
		}
	}
}

func TestToV2Body(t *testing.T) {
	utf := []byte(`{"a":"é <x>"}`)
	bad := []byte{'{', 0xff, '}'}
	tests := []struct {
		name, ctype string
		body        []byte
		wantB64     bool
	}{
		{"json", "application/json", utf, false},
		{"json charset", "application/json; charset=utf-8", utf, false},
		{"problem+json", "application/problem+json", utf, false},
		{"text/html", "text/html; charset=UTF-8", []byte("<p>hi</p>"), false},
		{"xml", "application/xml", []byte("<a/>"), false},
		{"svg+xml", "image/svg+xml", []byte("<svg/>"), false},
		{"javascript", "application/javascript", []byte("x=1"), false},
		{"form", "application/x-www-form-urlencoded", []byte("a=1&b=2"), false},
		{"upper case type", "Application/JSON", utf, false},
		{"json but invalid utf8", "application/json", bad, true},
		{"text but invalid utf8", "text/plain", bad, true},
		{"octet-stream valid utf8", "application/octet-stream", []byte("plain"), true},
		{"png", "image/png", []byte{0x89, 'P', 'N', 'G'}, true},
		{"no content type", "", []byte("plain"), true},
		{"malformed params", "text/plain; charset", []byte("x"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.ctype != "" {
				h.Set("Content-Type", tt.ctype)
			}
			resp := ToV2(&Response{StatusCode: 200, Header: h, Body: tt.body})
			if resp.IsBase64Encoded != tt.wantB64 {
				t.Fatalf("IsBase64Encoded = %v, want %v", resp.IsBase64Encoded, tt.wantB64)
			}
			var got []byte
			if tt.wantB64 {
				var err error
				if got, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
					t.Fatal(err)
				}
			} else {
				got = []byte(resp.Body)
			}
			if !bytes.Equal(got, tt.body) {
				t.Errorf("body = %q, want %q", got, tt.body)
			}
		})
	}
}

func TestToV2EmptyBody(t *testing.T) {
	for _, ct := range []string{"", "application/octet-stream", "application/json"} {
		resp := ToV2(&Response{StatusCode: 204, Header: http.Header{"Content-Type": {ct}}})
		if resp.Body != "" || resp.IsBase64Encoded {
			t.Errorf("%q: body %q base64 %v", ct, resp.Body, resp.IsBase64Encoded)
		}
	}
}

func TestToV2Headers(t *testing.T) {
	expires := "id=a3fWa; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Secure; HttpOnly"
	in := http.Header{
		"Set-Cookie":         {expires, "lang=en; Path=/"},
		"Vary":               {"Accept", "Accept-Encoding"},
		"Content-Type":       {"application/json"},
		"Content-Length":     {"12"},
		"Connection":         {"keep-alive, X-Hop"},
		"X-Hop":              {"1"},
		"Keep-Alive":         {"timeout=5"},
		"Transfer-Encoding":  {"chunked"},
		"Upgrade":            {"h2c"},
		"Trailer":            {"X-T"},
		"Te":                 {"trailers"},
		"Proxy-Authenticate": {"Basic"},
		"X-Request-Id":       {"r1"},
	}
	before := in.Clone()
	resp := ToV2(&Response{StatusCode: 201, Header: in, Body: []byte(`{"ok":true}`)})

	if !reflect.DeepEqual(in, before) {
		t.Error("ToV2 modified the input header")
	}
	if resp.StatusCode != 201 {
		t.Errorf("status %d", resp.StatusCode)
	}
	if !slices.Equal(resp.Cookies, []string{expires, "lang=en; Path=/"}) {
		t.Errorf("Cookies = %q", resp.Cookies)
	}
	want := map[string]string{
		"Vary":         "Accept, Accept-Encoding",
		"Content-Type": "application/json",
		"X-Request-Id": "r1",
	}
	if !reflect.DeepEqual(resp.Headers, want) {
		t.Errorf("Headers = %v, want %v", resp.Headers, want)
	}
	if resp.MultiValueHeaders != nil {
		t.Error("MultiValueHeaders must stay nil")
	}
	if resp.Body != `{"ok":true}` || resp.IsBase64Encoded {
		t.Errorf("body %q", resp.Body)
	}
}

func TestBodyRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name, ctype string
		body        []byte
		wantS       string
		wantB64     bool
		wantBack    []byte // what DecodeBody returns; nil for an empty plain body
	}{
		{"empty", "application/json", nil, "", false, nil},
		{"empty slice binary", "application/octet-stream", []byte{}, "", false, nil},
		{"json text", "application/json", []byte(`{"a":1}`), `{"a":1}`, false, []byte(`{"a":1}`)},
		{"binary", "application/octet-stream", []byte{0, 0xff}, "AP8=", true, []byte{0, 0xff}},
		{"text but invalid utf8", "text/plain", []byte{0xff}, "/w==", true, []byte{0xff}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, b64 := EncodeBody(tt.ctype, tt.body)
			if s != tt.wantS || b64 != tt.wantB64 {
				t.Fatalf("EncodeBody = %q %v, want %q %v", s, b64, tt.wantS, tt.wantB64)
			}
			back, err := DecodeBody(s, b64)
			if err != nil || !bytes.Equal(back, tt.wantBack) || (back == nil) != (tt.wantBack == nil) {
				t.Fatalf("DecodeBody = %q %v, want %q", back, err, tt.wantBack)
			}
		})
	}
	if b, err := DecodeBody("", true); err != nil || b == nil || len(b) != 0 {
		t.Errorf("DecodeBody(\"\", true) = %q %v, want empty non-nil", b, err)
	}
	if _, err := DecodeBody("not base64!", true); err == nil {
		t.Error("DecodeBody accepted invalid base64")
	}
}

func TestBase64Allocs(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	body := bytes.Repeat([]byte{0xff, 0x00, 0x10}, 100_000)
	enc := encodeBase64(body)
	if a := testing.AllocsPerRun(5, func() { _ = encodeBase64(body) }); a != 1 {
		t.Errorf("encode allocs = %v, want 1", a)
	}
	if a := testing.AllocsPerRun(5, func() { _, _ = decodeBase64(enc) }); a != 1 {
		t.Errorf("decode allocs = %v, want 1", a)
	}
}

func benchBody(n int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

var sink any

func BenchmarkToV2Binary(b *testing.B) {
	for _, n := range []int{1 << 20, 5 << 20} {
		body := benchBody(n)
		r := &Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/octet-stream"}}, Body: body}
		b.Run(sizeName(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				sink = ToV2(r)
			}
		})
	}
}

func BenchmarkFromV2Binary(b *testing.B) {
	for _, n := range []int{1 << 20, 5 << 20} {
		e := &events.APIGatewayV2HTTPRequest{
			Body:            base64.StdEncoding.EncodeToString(benchBody(n)),
			IsBase64Encoded: true,
			Headers:         map[string]string{"content-type": "application/octet-stream"},
		}
		b.Run(sizeName(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				r, err := FromV2(e)
				if err != nil {
					b.Fatal(err)
				}
				sink = r
			}
		})
	}
}

func sizeName(n int) string {
	return map[int]string{1 << 20: "1MiB", 5 << 20: "5MiB"}[n]
}

func TestBodyStream(t *testing.T) {
	raw := bytes.Repeat([]byte{0, 1, 2, 250, 251, 252}, 100_000)
	open, n, err := BodyStream(base64.StdEncoding.EncodeToString(raw))
	if err != nil || n != int64(len(raw)) {
		t.Fatalf("n %d err %v", n, err)
	}
	for range 2 { // every call decodes afresh
		got, err := io.ReadAll(open())
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("round trip: %v", err)
		}
	}
	if _, _, err := BodyStream("not*base64"); err == nil {
		t.Fatal("invalid base64 accepted")
	}
}

// The chunked reader must agree with the standard decoder on every length and on
// malformed input, wherever the bad byte falls relative to a chunk.
func TestB64ReaderMatchesStd(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{0, 1, 2, 3, 47, b64Chunk/4*3 - 1, b64Chunk / 4 * 3, b64Chunk/4*3 + 1, 3*b64Chunk + 5} {
		raw := make([]byte, size)
		for i := range raw {
			raw[i] = byte(rng.IntN(256))
		}
		enc := base64.StdEncoding.EncodeToString(raw)
		got, err := io.ReadAll(newB64Reader(enc))
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("size %d: %v", size, err)
		}
		if size > 10 {
			bad := []byte(enc)
			bad[len(bad)/2] = '*'
			if _, err := io.ReadAll(newB64Reader(string(bad))); err == nil {
				t.Fatalf("size %d: malformed input accepted", size)
			}
		}
	}
	// Wrapped lines fall back to the standard decoder.
	open, n, err := BodyStream("AAEC\r\n/f7/")
	if err != nil || n != 6 {
		t.Fatalf("wrapped: n %d err %v", n, err)
	}
	if got, _ := io.ReadAll(open()); !bytes.Equal(got, []byte{0, 1, 2, 0xfd, 0xfe, 0xff}) {
		t.Fatalf("wrapped: %v", got)
	}
}
