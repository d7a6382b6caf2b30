package localapi

import "strings"

// Example is a request the start-up banner shows as a curl command. The banner and the
// tests both derive from it, so what is printed is what is tested.
type Example struct {
	Comment string
	Method  string
	Path    string      // on the local API, e.g. "/forward"
	Header  [][2]string // in print order
	Body    string
}

// Curl renders the example as one shell line against baseURL ("http://127.0.0.1:3000").
func (e Example) Curl(baseURL string) string {
	var b strings.Builder
	b.WriteString("curl -sS -X " + e.Method + " " + baseURL + e.Path)
	for _, h := range e.Header {
		b.WriteString(" -H " + shellQuote(h[0]+": "+h[1]))
	}
	if e.Body != "" {
		b.WriteString(" -d " + shellQuote(e.Body))
	}
	return b.String()
}

// shellQuote single-quotes s for POSIX shells.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
