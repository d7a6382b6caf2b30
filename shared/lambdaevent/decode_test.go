package lambdaevent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apigw"
)

// samples are the repository's events and aws-lambda-go's published sample events (every
// kind of AWS event, most of them neither HTTP API nor SQS).
func samples(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	dirs := []string{filepath.Join("..", "..", "events")}
	if dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-lambda-go").Output(); err == nil {
		dirs = append(dirs, filepath.Join(strings.TrimSpace(string(dir)), "events", "testdata"))
	} else {
		t.Logf("aws-lambda-go's sample events not found (%v): the repository's only", err)
	}
	for _, dir := range dirs {
		names, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil || len(names) == 0 {
			t.Fatalf("no sample events in %s: %v", dir, err)
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(dir)+"/"+filepath.Base(n)] = b
		}
	}
	return out
}

// variants derives events whose body is what DecodeHTTP treats specially: base64 of
// several sizes, escapes, non-ASCII and invalid UTF-8, the name in other cases, twice,
// null, and not a string.
func variants(t testing.TB) [][]byte {
	t.Helper()
	base, err := os.ReadFile(filepath.Join("..", "..", "events", "forward.json"))
	if err != nil {
		t.Fatal(err)
	}
	with := func(body string) []byte {
		// Body goes last, after the object's other members: replace the closing brace.
		i := bytes.LastIndexByte(base, '}')
		return append(append(bytes.Clone(base[:i]), ","+body...), '}')
	}
	var out [][]byte
	for _, n := range []int{0, 1, 2, 3, 7, 8, 9, 1000, 70000} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		out = append(out, with(`"body":"`+base64.StdEncoding.EncodeToString(b)+`","isBase64Encoded":true`))
	}
	for _, body := range []string{
		`"body":"plain text"`, `"body":"a \"quoted\" \\ \n \u00e9 \ud83d\ude00 \u2028"`,
		`"body":"héllo wörld"`, "\"body\":\"bad \xff\xfe utf-8\"", `"BODY":"upper"`, `"Body":"first","body":"second"`,
		`"body":"first","body":null`, `"body":null`, `"body":42`, `"body":{"a":1}`, `"b\u006fdy":"escaped name"`,
		`"body":"x","BoDy":"y","bOdY":"z"`, "\"body\":\"tab\tinside\"", `"body"  :  "spaced"  `,
	} {
		out = append(out, with(body))
	}
	return out
}

func TestDetectAgreesOnSamples(t *testing.T) {
	for name, p := range samples(t) {
		if got, want := Detect(p), detectV1(p); got != want {
			t.Errorf("%s: Detect = %v, the old Detect %v", name, got, want)
		}
	}
}

// checkDecode holds DecodeHTTP and DecodeSQS to aws-lambda-go's typed decode
// (encoding/json): both fail, or both give the same event.
func checkDecode(t *testing.T, p []byte) {
	t.Helper()
	if got, want := Detect(p), detectV1(p); got != want {
		t.Fatalf("Detect = %v, the old Detect %v for %q", got, want, p)
	}
	var wantHTTP events.APIGatewayV2HTTPRequest
	werr := json.Unmarshal(p, &wantHTTP)
	gotHTTP, gerr := DecodeHTTP(p)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("HTTP: encoding/json error %v, DecodeHTTP error %v, for %q", werr, gerr, p)
	}
	if werr == nil && !reflect.DeepEqual(*gotHTTP, wantHTTP) {
		t.Fatalf("HTTP: DecodeHTTP\n%+v\nencoding/json\n%+v\nfor %q", *gotHTTP, wantHTTP, p)
	}
	var wantSQS events.SQSEvent
	werr = json.Unmarshal(p, &wantSQS)
	gotSQS, gerr := DecodeSQS(p)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("SQS: encoding/json error %v, DecodeSQS error %v, for %q", werr, gerr, p)
	}
	if werr == nil && !reflect.DeepEqual(*gotSQS, wantSQS) {
		t.Fatalf("SQS: DecodeSQS\n%+v\nencoding/json\n%+v\nfor %q", *gotSQS, wantSQS, p)
	}
}

func TestDecodeAgreesWithEncodingJSON(t *testing.T) {
	for name, p := range samples(t) {
		t.Run(name, func(t *testing.T) { checkDecode(t, p) })
	}
	for i, p := range variants(t) {
		t.Run("variant", func(t *testing.T) {
			checkDecode(t, p)
			if i < 9 { // the base64 ones, which must not be copied
				e, err := DecodeHTTP(p)
				if err != nil {
					t.Fatal(err)
				}
				if len(e.Body) > 0 && !within(e.Body, p) {
					t.Errorf("the base64 body was copied, not shared with the payload")
				}
			}
		})
	}
}

// within reports whether s's bytes lie inside p's memory.
func within(s string, p []byte) bool {
	sp := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	pp := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return sp >= pp && sp+uintptr(len(s)) <= pp+uintptr(len(p))
}

// FuzzDecode checks, on arbitrary payloads, that Detect names what the old Detect named
// and that the typed decodes equal encoding/json's into aws-lambda-go's types.
func FuzzDecode(f *testing.F) {
	for _, p := range samples(f) {
		f.Add(p)
	}
	for _, p := range variants(f) {
		f.Add(p)
	}
	for _, c := range detectCases {
		f.Add([]byte(c.payload))
	}
	f.Fuzz(func(t *testing.T, p []byte) { checkDecode(t, p) })
}

func TestScannerDepthLimit(t *testing.T) {
	for _, n := range []int{maxDepth, maxDepth + 1} {
		p := []byte(`{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`)
		if got, want := Detect(p), detectV1(p); got != want {
			t.Errorf("depth %d: Detect = %v, the old Detect %v", n, got, want)
		}
	}
}

// The router's answer is the reply's JSON, which reads back as the event response.
func TestRouterReply(t *testing.T) {
	p := variants(t)[7] // 1,000 bytes of base64 body
	var seen []byte
	r := Router{Name: "t", Reply: func(_ context.Context, e *events.APIGatewayV2HTTPRequest) apigw.Reply {
		in, err := apigw.FromV2(e)
		if err != nil {
			t.Fatal(err)
		}
		seen = in.Body
		return apigw.Reply{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/octet-stream"}, Body: in.Body, Base64: true}
	}}
	out, err := r.Invoke(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var got events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.StatusCode != 200 || !got.IsBase64Encoded || got.Body != base64.StdEncoding.EncodeToString(seen) || len(seen) != 1000 {
		t.Fatalf("got %+v", got)
	}
}
