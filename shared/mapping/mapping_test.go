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
	res := Merge("42", pairs, answers)
	want := []bool{true, true, false}
	for i, m := range res.Mappings {
		if m.ServiceName != pairs[i].ServiceName || m.Configured != want[i] {
			t.Fatalf("item %d: %+v", i, m)
		}
	}
	if res.AllConfigured || res.AccountID != "42" {
		t.Fatalf("got %+v", res)
	}
	if !Merge("42", pairs[:2], answers).AllConfigured {
		t.Fatal("two configured pairs should be allConfigured")
	}
}

func TestMergeFallsBackToPosition(t *testing.T) {
	a := lp.Mapping{ServiceName: "A", URL: "https://A.example/x?q=1"}
	b := lp.Mapping{ServiceName: "B", URL: "https://b.example/%7Ey"}
	ans := func(s, u string, ok bool) lp.MappingResult {
		return lp.MappingResult{ServiceName: s, URL: u, Exist: ok}
	}
	tests := []struct {
		name    string
		pairs   []lp.Mapping
		answers []lp.MappingResult
		want    []bool
	}{
		{"exact match", []lp.Mapping{a, b}, []lp.MappingResult{ans("A", a.URL, true), ans("B", b.URL, true)}, []bool{true, true}},
		{"normalised URLs, same count: by position", []lp.Mapping{a, b},
			[]lp.MappingResult{ans("A", "https://a.example/x?q=1", true), ans("B", "https://b.example/~y", true)}, []bool{true, true}},
		{"one normalised, order kept", []lp.Mapping{a, b},
			[]lp.MappingResult{ans("A", a.URL, false), ans("B", "https://b.example/~y", true)}, []bool{false, true}},
		{"normalised without serviceName echo", []lp.Mapping{a},
			[]lp.MappingResult{ans("", "https://a.example/x?q=1", true)}, []bool{true}},
		{"normalised, fewer answers: not configured", []lp.Mapping{a, b},
			[]lp.MappingResult{ans("A", "https://a.example/x?q=1", true)}, []bool{false, false}},
		{"normalised, more answers: not configured", []lp.Mapping{a},
			[]lp.MappingResult{ans("A", "https://a.example/x?q=1", true), ans("Z", "https://z/", true)}, []bool{false}},
		{"answer at the position belongs to another pair", []lp.Mapping{a, b},
			[]lp.MappingResult{ans("B", b.URL, true), ans("A", "https://a.example/x?q=1", false)}, []bool{false, true}},
		{"answer at the position names another service", []lp.Mapping{a, b},
			[]lp.MappingResult{ans("B", "https://b.example/~y", true), ans("A", "https://a.example/x?q=1", true)}, []bool{false, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Merge("42", tc.pairs, tc.answers)
			all := true
			for i, m := range res.Mappings {
				if m.ServiceName != tc.pairs[i].ServiceName || m.URL != tc.pairs[i].URL || m.Configured != tc.want[i] {
					t.Errorf("item %d: %+v, want configured %v", i, m, tc.want[i])
				}
				all = all && tc.want[i]
			}
			if res.AllConfigured != all {
				t.Errorf("allConfigured = %v", res.AllConfigured)
			}
		})
	}
}

func TestMergeReadsDoExist(t *testing.T) {
	var answers []lp.MappingResult
	if err := json.Unmarshal([]byte(`[{"serviceName":"A","accountId":"42","url":"https://a/","doExist":true}]`), &answers); err != nil {
		t.Fatal(err)
	}
	if res := Merge("42", []lp.Mapping{{ServiceName: "A", URL: "https://a/"}}, answers); !res.AllConfigured {
		t.Fatalf("doExist answer not read: %+v", res)
	}
}

// Every refusal of a /mapping body says what to send, in the API's words: field names
// of the documented request, never Go's types or decoder errors.
func TestParsePairsMessagesSpeakTheAPI(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{``, "the body is empty"},
		{`{"serviceName":"WEBHOOKS","url":"https://a.example/"}`, "the body is a JSON object, not an array"},
		{`[1]`, "an item of the array is a JSON number, not an object"},
		{`[{"serviceName":7,"url":"https://a.example/"}]`, "serviceName must be a JSON string"},
		{`[{"service":"WEBHOOKS"}]`, `an item has the field "service"; items have only serviceName and url`},
		{`[{"serviceName":"WEBHOOKS"`, "the body ends before its JSON does"},
		{`[}`, "not valid JSON"},
		{`[][]`, "more after the JSON array"},
		{`[]`, "send 1 to 100"},
		{`[{"serviceName":"","url":"https://a.example/"}]`, "serviceName is required"},
		{`[{"serviceName":"W","url":"http://a.example/"}]`, "url must be the absolute https URL"},
	} {
		_, err := ParsePairs([]byte(tc.body))
		ae := apierr.From(err)
		if !strings.Contains(ae.Message, tc.want) {
			t.Errorf("%s: message %q lacks %q", tc.body, ae.Message, tc.want)
		}
		if !strings.Contains(ae.Message, "serviceName") && !strings.Contains(ae.Message, `"url":"https://`) {
			t.Errorf("%s: message %q does not say what to send", tc.body, ae.Message)
		}
		for _, goism := range []string{"lp.Mapping", "[]lp", "EOF", "json:", "wrong type", "Go "} {
			if strings.Contains(ae.Message, goism) {
				t.Errorf("%s: message %q speaks Go (%q)", tc.body, ae.Message, goism)
			}
		}
	}
}
