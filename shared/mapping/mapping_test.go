package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/lp"
)

func TestParsePairs(t *testing.T) {
	raw, err := os.ReadFile("testdata/pairs.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases map[string]struct {
		Body   string `json:"body"`
		Status int    `json:"status"`
		Code   string `json:"code"`
		Pairs  int    `json:"pairs"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			pairs, err := ParsePairs([]byte(c.Body))
			if c.Status == 0 {
				if err != nil || len(pairs) != c.Pairs {
					t.Fatalf("got %d pairs, %v", len(pairs), err)
				}
				return
			}
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Status != c.Status || ae.Code != c.Code || ae.Message == "" {
				t.Fatalf("got %v, want %d %s", err, c.Status, c.Code)
			}
		})
	}
}

func TestTooManyPairs(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i <= MaxPairs; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"serviceName":"S","url":"https://a.example/%d"}`, i)
	}
	b.WriteString("]")
	_, err := ParsePairs([]byte(b.String()))
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Code != apierr.CodeInvalidRequest || !strings.Contains(ae.Message, "101") {
		t.Fatalf("got %v", err)
	}
}

func TestMergeKeepsCallerOrder(t *testing.T) {
	pairs := []lp.Mapping{{ServiceName: "A", URL: "https://a/"}, {ServiceName: "B", URL: "https://b/"}, {ServiceName: "C", URL: "https://c/"}}
	answers := []lp.MappingResult{{ServiceName: "B", URL: "https://b/", Exist: true}, {ServiceName: "A", URL: "https://a/", Exist: true}}
	res := merge("42", pairs, answers)
	want := []bool{true, true, false}
	for i, m := range res.Mappings {
		if m.ServiceName != pairs[i].ServiceName || m.Configured != want[i] {
			t.Fatalf("item %d: %+v", i, m)
		}
	}
	if res.AllConfigured || res.AccountID != "42" {
		t.Fatalf("got %+v", res)
	}
	if !merge("42", pairs[:2], answers).AllConfigured {
		t.Fatal("two configured pairs should be allConfigured")
	}
}
