package headers

import "testing"

func TestValidName(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"X-Request-Id", true}, {"x_custom.1~!#$%&'*+^`|", true},
		{"", false}, {"Bad Name", false}, {"Bad:Name", false}, {"a\r\nb", false},
		{"Ümlaut", false}, {"a\x7f", false}, {"(x)", false}, {"a/b", false},
	} {
		if got := ValidName(tt.name); got != tt.want {
			t.Errorf("ValidName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestValidValue(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  bool
	}{
		{"", true}, {"Bearer abc.def", true}, {"a\tb", true}, {"caf\xc3\xa9", true},
		{"a\r\nX-Injected: 1", false}, {"a\nb", false}, {"a\x00b", false}, {"a\x7fb", false},
	} {
		if got := ValidValue(tt.value); got != tt.want {
			t.Errorf("ValidValue(%q) = %v, want %v", tt.value, got, tt.want)
		}
	}
}
