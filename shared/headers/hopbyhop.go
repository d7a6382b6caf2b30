// Package headers holds the HTTP header rules every layer shares: which names and values
// may be sent at all (so a bad one is the caller's 400, never a split or smuggled header
// or an opaque transport failure), and which headers describe one connection rather
// than the message, so a proxy (the forward path, the API Gateway translation, the
// simulator) can drop them before relaying. Hop-by-hop names are matched
// case-insensitively so hand-built maps, whose keys may not be canonical, are cleaned too.
package headers

import (
	"net/http"
	"strings"
)

// fixed are the RFC 9110 §7.6.1 connection-specific headers, plus Proxy-Connection, a
// non-standard one that net/http/httputil also strips.
var fixed = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// HopByHop reports whether name, in any case, is one of the fixed hop-by-hop headers.
// Headers a message's Connection header names are hop-by-hop too: see ConnectionListed.
func HopByHop(name string) bool {
	for _, h := range fixed {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// ConnectionListed returns the canonical names listed in h's Connection headers, under any key
// case; nil when there are none.
func ConnectionListed(h http.Header) map[string]bool {
	var named map[string]bool
	for k, vs := range h {
		if !strings.EqualFold(k, "Connection") {
			continue
		}
		for _, v := range vs {
			for _, f := range strings.Split(v, ",") {
				if f = strings.TrimSpace(f); f != "" {
					if named == nil {
						named = make(map[string]bool)
					}
					named[http.CanonicalHeaderKey(f)] = true
				}
			}
		}
	}
	return named
}

// StripHopByHop removes, in place, the hop-by-hop headers and those named by Connection.
func StripHopByHop(h http.Header) {
	named := ConnectionListed(h)
	for k := range h {
		if HopByHop(k) || named[http.CanonicalHeaderKey(k)] {
			delete(h, k)
		}
	}
}
