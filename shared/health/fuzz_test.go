package health

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lpmtls/lpmtls/shared/apierr"
)

// FuzzParseInput: a schedule payload is refused with a 400 invalid_json, or means "the
// configured targets" (only for nothing, null, {} or an EventBridge event), or names a
// non-empty target list that round-trips through the documented input shape.
func FuzzParseInput(f *testing.F) {
	for _, n := range []string{"testdata/scheduled-event.json", "../../events/schedule.json"} {
		b, err := os.ReadFile(filepath.FromSlash(n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"", "null", "{}", `{"targets":[]}`, `{"targets":null}`, `{"Targets":[{"serviceName":"S","url":"https://a/"}]}`, `[1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		pairs, given, err := ParseInput(input)
		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != apierr.CodeInvalidJSON {
				t.Fatalf("not a 400 invalid_json: %#v", err)
			}
			return
		}
		if !given {
			if pairs != nil {
				t.Fatalf("targets %v without given", pairs)
			}
			trimmed := bytes.TrimSpace(input)
			var m map[string]json.RawMessage
			if len(trimmed) > 0 && string(trimmed) != "null" {
				if json.Unmarshal(trimmed, &m) != nil || !(len(m) == 0 || isEventBridgeEvent(m)) {
					t.Fatalf("%q read as no targets", input)
				}
			}
			return
		}
		if len(pairs) == 0 {
			t.Fatal("given but empty")
		}
		b, err := json.Marshal(Input{Targets: pairs})
		if err != nil {
			t.Fatal(err)
		}
		again, given2, err := ParseInput(b)
		if err != nil || !given2 || !reflect.DeepEqual(again, pairs) {
			t.Fatalf("round trip %+v -> %s -> %+v (%v)", pairs, b, again, err)
		}
	})
}
