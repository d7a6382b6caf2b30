package jsonstr

import (
	"encoding/json"
	"testing"
)

// Append writes what encoding/json writes, for strings and byte slices alike.
func TestAppendMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " backslash \ slash /`, "\n\r\t\x00\x1f\x7f", "<a href='x'>&</a>",
		"é 😀 日本 \u2028 \u2029", "\xed\xa0\x80", "\b\f", "bad \xff\xfe utf-8", "\xe2\x82", "trail \xc3",
	} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := Append(nil, s); string(got) != string(want) {
			t.Errorf("string %q: %s, want %s", s, got, want)
		}
		if got := Append([]byte("x"), []byte(s)); string(got) != "x"+string(want) {
			t.Errorf("bytes %q: %s, want x%s", s, got, want)
		}
	}
}

func FuzzAppend(f *testing.F) {
	f.Add("a\"b<\xff\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := Append(nil, []byte(s)); string(got) != string(want) {
			t.Fatalf("%q: %s, want %s", s, got, want)
		}
	})
}
