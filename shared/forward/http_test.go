package forward

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

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
