package queue

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apierr"
)

// FuzzParse: a message body is either refused with a permanent 4xx naming the problem,
// or read as a Message that round-trips (written back as JSON, it parses to the same
// value) and that validates or is refused the way the HTTP route would.
func FuzzParse(f *testing.F) {
	names, _ := filepath.Glob("testdata/*.json")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	// The bodies of events/sqs.json and of AWS's sample SQS event ("test").
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "sqs.json"))
	if err != nil {
		f.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		f.Fatal(err)
	}
	for _, r := range ev.Records {
		f.Add(r.Body)
	}
	f.Add("test")
	f.Fuzz(func(t *testing.T, body string) {
		m, err := Parse(body)
		if err != nil {
			permanent4xx(t, err)
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(string(b))
		if err == nil && len(again.Headers) == 0 && len(m.Headers) == 0 {
			again.Headers = m.Headers // absent and {} mean the same
		}
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip %+v -> %s -> %+v (%v)", m, b, again, err)
		}
		in, err := m.Input()
		if _, b64err := base64.StdEncoding.DecodeString(m.Body); m.IsBase64Encoded && b64err != nil {
			if err == nil {
				t.Fatal("undecodable base64 body accepted")
			}
			permanent4xx(t, err)
			return
		}
		if err != nil {
			t.Fatalf("Input: %v", err)
		}
		req, err := testPolicy.Validate(in)
		if err != nil {
			permanent4xx(t, err)
			return
		}
		if req.URL != m.URL || !bytes.Equal(req.Body, in.Body) {
			t.Fatalf("validated request %+v differs from the message %+v", req, m)
		}
	})
}

func permanent4xx(t *testing.T, err error) {
	t.Helper()
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Status < 400 || ae.Status > 499 || ae.Transient || ae.Source != apierr.SourceLPMTLS || ae.Code == "" {
		t.Fatalf("not a permanent 4xx: %#v", err)
	}
}
