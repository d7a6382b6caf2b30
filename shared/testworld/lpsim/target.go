package lpsim

import (
	"io"
	"net/http"
	"strconv"
	"strings"
)

// targetHandler counts and applies "target" faults in front of the target's handler.
func (s *Sim) targetHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.counts.add(func(c *Counts) { c.TargetRequests++ })
		if s.applyFault("target", w, r) {
			return
		}
		h.ServeHTTP(w, r)
	})
}

// echo is the built-in target: it reflects what the gateway sent so tests can assert
// on method, path, client certificate, Authorization, headers and body bytes.
func echo(w http.ResponseWriter, r *http.Request) {
	// Read first: an HTTP/1.x handler may not read the body after writing the answer.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	if ct := r.Header.Get("Content-Type"); ct != "" {
		h.Set("Content-Type", ct)
	} else {
		h["Content-Type"] = nil // no sniffing: the absence is part of the echo
	}
	h.Set("X-Echo-Method", r.Method)
	h.Set("X-Echo-Path", r.URL.RequestURI())
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		h.Set("X-Echo-Client-Cn", r.TLS.PeerCertificates[0].Subject.CommonName)
	}
	if a := r.Header.Get("Authorization"); a != "" {
		h.Set("X-Echo-Authorization", a)
	}
	for k, vs := range r.Header {
		if strings.HasPrefix(k, "X-") || k == "Cookie" || k == "Accept" {
			h["X-Echo-Header-"+k] = append([]string(nil), vs...)
		}
	}
	if r.URL.Path == "/cookies" {
		h.Add("Set-Cookie", "a=1; Path=/; Secure; HttpOnly")
		h.Add("Set-Cookie", "b=2; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT")
		h.Add("Set-Cookie", "c=3; Path=/cookies; SameSite=Strict")
	}
	status := http.StatusOK
	if v, err := strconv.Atoi(r.URL.Query().Get("status")); err == nil && v >= 200 && v <= 599 {
		status = v
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
