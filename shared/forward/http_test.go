package forward

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apigw"
)

// The size estimate must never be below what encoding/json produces, or a response
// Lambda refuses could slip through.
func TestResponseSizeBoundsJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("ab\"\\\n\t<>&\u2028é😀\x00\x7f")
	for i := 0; i < 500; i++ {
		rs := make([]rune, rng.IntN(64))
		for j := range rs {
			rs[j] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(rs)
		if i%7 == 0 {
			s += "\xff\xfe" // invalid UTF-8
		}
		r := apigw.Reply{StatusCode: 200, Body: []byte(s), Headers: map[string]string{"X-A": s}, Cookies: []string{s}, Base64: i%3 == 0}
		b, err := json.Marshal(r.Event())
		if err != nil {
			t.Fatal(err)
		}
		got := responseSize(&r)
		if got < len(b) || got < len(r.AppendJSON(nil)) {
			t.Fatalf("estimate %d < actual %d (encoding/json) or %d (AppendJSON) for %q", got, len(b), len(r.AppendJSON(nil)), s)
		}
	}
}

// A large base64 body is read through readers that stop when the handler is done with
// the event, whose body may share the invocation payload's reused buffer.
func TestLargeBodyReadersEndWithTheInvocation(t *testing.T) {
	body := make([]byte, largeBody+3)
	for i := range body {
		body[i] = byte(i)
	}
	e := &events.APIGatewayV2HTTPRequest{Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true}
	ev, open, n, release, err := largeBodyAside(e)
	if err != nil || n != int64(len(body)) || ev.Body != "" {
		t.Fatalf("n %d, err %v, body left %d bytes", n, err, len(ev.Body))
	}
	first := open()
	got, err := io.ReadAll(open())
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	release()
	for _, r := range []io.Reader{first, open()} {
		if _, err := r.Read(make([]byte, 10)); !errors.Is(err, errBodyGone) {
			t.Fatalf("a read after release: %v, want errBodyGone", err)
		}
	}
}
