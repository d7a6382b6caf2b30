package mapping

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apierr"
)

// FuzzParsePairs: a /mapping body is refused with a 4xx JSON error, or is 1 to 100
// pairs, each with a service name and an absolute https URL, that round-trip.
func FuzzParsePairs(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "pairs.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "mapping.json"))
	if err != nil {
		f.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(ev.Body))
	for _, s := range []string{"[]", "null", `[{"serviceName":"S","url":"https://a/"}] x`, `[{"serviceName":" ","url":"https://a/"}]`, `[{"serviceName":"S","url":"https://a/","extra":1}]`, `{"serviceName":"S"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pairs, err := ParsePairs(body)
		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Status < 400 || ae.Status > 499 || ae.Source != apierr.SourceLPMTLS {
				t.Fatalf("not a 4xx: %#v", err)
			}
			r := ae.HTTPResponse()
			var eb apierr.Body
			if json.Unmarshal([]byte(r.Body), &eb) != nil || eb.Error.Code != ae.Code || r.Headers["Content-Type"] != "application/json" {
				t.Fatalf("error response %+v", r)
			}
			return
		}
		if len(pairs) < 1 || len(pairs) > MaxPairs {
			t.Fatalf("%d pairs accepted", len(pairs))
		}
		for _, p := range pairs {
			u, err := url.Parse(p.URL)
			if strings.TrimSpace(p.ServiceName) == "" || err != nil || u.Scheme != "https" || u.Host == "" {
				t.Fatalf("pair %+v accepted", p)
			}
		}
		b, err := json.Marshal(pairs)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParsePairs(b)
		if err != nil || !reflect.DeepEqual(again, pairs) {
			t.Fatalf("round trip %+v -> %s -> %+v (%v)", pairs, b, again, err)
		}
	})
}
