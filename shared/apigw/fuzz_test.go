package apigw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/headers"
)

// seedFiles adds every file matching the globs (testdata here, the events/ samples that
// `sam local invoke` uses, AWS's documented payload format 2.0 sample).
func seedFiles(f *testing.F, globs ...string) {
	for _, g := range globs {
		names, _ := filepath.Glob(g)
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// FuzzFromV2: any event JSON Lambda could hand us either fails for the one documented
// reason (a base64 flag on a body that does not decode) or becomes a request that keeps
// what came in: method, path, query, every header under its canonical name, cookies
// rejoined, and a body that re-encodes to the same bytes.
func FuzzFromV2(f *testing.F) {
	seedFiles(f, "testdata/*.json", "../../events/forward*.json", "../../events/mapping.json")
	f.Fuzz(func(t *testing.T, raw []byte) {
		var e events.APIGatewayV2HTTPRequest
		if json.Unmarshal(raw, &e) != nil {
			return
		}
		r, err := FromV2(&e)
		want, b64err := base64.StdEncoding.DecodeString(e.Body)
		if e.IsBase64Encoded && b64err != nil {
			if err == nil {
				t.Fatalf("body %q flagged base64 accepted", e.Body)
			}
			return
		}
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		path := e.RawPath
		if path == "" {
			path = e.RequestContext.HTTP.Path
		}
		if r.Method != e.RequestContext.HTTP.Method || r.Path != path || r.RawQuery != e.RawQueryString {
			t.Fatalf("request line %q %q %q from %q %q %q", r.Method, r.Path, r.RawQuery, e.RequestContext.HTTP.Method, path, e.RawQueryString)
		}
		keys := map[string]bool{}
		for k, v := range e.Headers {
			ck := http.CanonicalHeaderKey(k)
			keys[ck] = true
			if ck == "Cookie" && len(e.Cookies) > 0 {
				continue // the cookies array wins
			}
			got := r.Header[ck]
			if len(got) != 1 {
				t.Fatalf("header %q: %q", k, got)
			}
			if got[0] != v && !spelledTwice(e.Headers, ck, got[0]) {
				t.Fatalf("header %q = %q, event has %q", k, got[0], v)
			}
		}
		if len(e.Cookies) > 0 {
			keys["Cookie"] = true
			if got := r.Header["Cookie"]; len(got) != 1 || got[0] != strings.Join(e.Cookies, "; ") {
				t.Fatalf("cookies %q from %q", got, e.Cookies)
			}
		}
		if len(r.Header) != len(keys) {
			t.Fatalf("%d headers from %d names", len(r.Header), len(keys))
		}
		if e.IsBase64Encoded {
			if !bytes.Equal(r.Body, want) {
				t.Fatalf("body %q, base64 decodes to %q", r.Body, want)
			}
			// The streaming decoder large bodies use agrees with the whole one.
			open, n, err := BodyStream(e.Body)
			if err != nil || n != int64(len(want)) {
				t.Fatalf("BodyStream: %d %v", n, err)
			}
			if got, _ := io.ReadAll(open()); !bytes.Equal(got, want) {
				t.Fatalf("BodyStream %q, want %q", got, want)
			}
		} else if string(r.Body) != e.Body {
			t.Fatalf("body %q from %q", r.Body, e.Body)
		}
		s, isB64 := EncodeBody(r.Header.Get("Content-Type"), r.Body)
		if back, err := DecodeBody(s, isB64); err != nil || !bytes.Equal(back, r.Body) {
			t.Fatalf("body does not re-encode: %q -> %q (%v)", r.Body, back, err)
		}
	})
}

// spelledTwice: two spellings of one header in the event map; either value may win.
func spelledTwice(h map[string]string, ck, v string) bool {
	for k, x := range h {
		if http.CanonicalHeaderKey(k) == ck && x == v {
			return true
		}
	}
	return false
}

// FuzzToV2: a target's answer survives the trip through the Lambda response JSON: the
// body bytes exactly (as a string only when valid UTF-8 under a textual type), every
// Set-Cookie intact and in order, and nothing hop-by-hop or Content-Length.
func FuzzToV2(f *testing.F) {
	f.Add(200, "Content-Type", "application/json", "X-A", "1", "a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT", []byte(`{"ok":true}`))
	f.Add(201, "Connection", "X-A", "X-A", "drop", "", []byte{0xff, 0xfe, 0})
	f.Add(404, "content-type", "text/plain; charset=utf-8", "Keep-Alive", "timeout=5", "b=2", []byte("é\u2028<>&"))
	f.Add(500, "Content-Length", "12", "Transfer-Encoding", "chunked", "", []byte(nil))
	f.Fuzz(func(t *testing.T, status int, k1, v1, k2, v2, cookie string, body []byte) {
		h := http.Header{}
		h[k1] = append(h[k1], v1)
		h[k2] = append(h[k2], v2)
		if cookie != "" {
			h["Set-Cookie"] = append(h["Set-Cookie"], cookie, cookie+"2")
		}
		in := &Response{StatusCode: status, Header: h, Body: body}
		out := ToV2(in)
		if out.StatusCode != status {
			t.Fatalf("status %d", out.StatusCode)
		}
		if !out.IsBase64Encoded && !utf8.ValidString(out.Body) {
			t.Fatalf("invalid UTF-8 sent as a string: %q", out.Body)
		}
		raw, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		var back events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		got, err := DecodeBody(back.Body, back.IsBase64Encoded)
		if err != nil || !bytes.Equal(got, body) && !(len(got) == 0 && len(body) == 0) {
			t.Fatalf("body %q came back as %q (%v)", body, got, err)
		}
		var cookies []string
		for k, vs := range h {
			if strings.EqualFold(k, "Set-Cookie") {
				cookies = append(cookies, vs...)
			}
		}
		slices.Sort(cookies)
		gotCookies := slices.Clone(out.Cookies)
		slices.Sort(gotCookies)
		if !slices.Equal(gotCookies, cookies) {
			t.Fatalf("cookies %q, want %q", out.Cookies, cookies)
		}
		named := headers.ConnectionListed(h)
		for k := range out.Headers {
			if headers.HopByHop(k) || strings.EqualFold(k, "Content-Length") || named[k] || strings.EqualFold(k, "Set-Cookie") {
				t.Fatalf("header %q passed through", k)
			}
		}
	})
}
