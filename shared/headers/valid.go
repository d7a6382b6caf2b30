package headers

import "strings"

// ValidName reports whether k is an RFC 9110 token, as net/http checks a header name.
func ValidName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// ValidValue reports whether v is an RFC 9110 field value as net/http checks it: any
// byte but the controls other than tab, so no value can end a header line early.
func ValidValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// Size limits on what lpmtls forwards. LivePerson documents none, so they are the
// common ground of what sits on the way: Java servlet containers and nginx default to
// 8 KiB for a header line (Tomcat and Jetty to 8 KiB for the whole block, nginx to four
// 8 KiB buffers), and API Gateway's HTTP API takes at most 10 KiB of request line and
// headers together, so nothing arriving over HTTP comes near them. A message from SQS
// carries no such bound, and Go's HTTP/2 client refuses a header list larger than the
// peer advertises (SETTINGS_MAX_HEADER_LIST_SIZE) without sending a byte: checking
// first makes that the caller's clear 431 rather than a failure that looks like
// LivePerson's.
const (
	// MaxValueBytes bounds one forwarded header value, LP-forward-url and
	// LP-authorization-override included.
	MaxValueBytes = 8 << 10
	// MaxListBytes bounds the forwarded headers together, counted as HTTP/2 counts a
	// header list (RFC 9113 §6.5.2): name + value + 32 bytes per field.
	MaxListBytes = 16 << 10
)

// FieldSize is one field's share of a header list as HTTP/2 counts it.
func FieldSize(name, value string) int { return len(name) + len(value) + 32 }
