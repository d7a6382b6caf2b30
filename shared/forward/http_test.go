package forward

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/aws/aws-lambda-go/events"
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
		r := events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: s, Headers: map[string]string{"X-A": s}, Cookies: []string{s}}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := responseSize(r); got < len(b) {
			t.Fatalf("estimate %d < actual %d for %q", got, len(b), s)
		}
	}
}
