package lpsim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/lpmtls/lpmtls/shared/headers"
)

// forward is the mTLS gateway proxy. Order of checks: fault, Bearer (401), method
// (405), LP-forward-url (400), mapping lookup (stop flag → NoCertStatus), outbound call
// (failure → 424 with the transport headers).
func (s *Sim) forward(w http.ResponseWriter, r *http.Request) {
	s.counts.add(func(c *Counts) { c.Forwards++ })
	if s.applyFault("forward", w, r) {
		return
	}
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	// The documented methods only: what the real gateway does with others is unknown.
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, POST, PUT, DELETE")
		writeRaw(w, http.StatusMethodNotAllowed, gatewayError(http.StatusMethodNotAllowed, "method not supported by the mTLS gateway"))
		return
	}
	target := r.Header.Get("LP-forward-url")
	if target == "" {
		writeRaw(w, http.StatusBadRequest, gatewayError(http.StatusBadRequest, "missing LP-forward-url header"))
		return
	}
	if u, err := url.Parse(target); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		writeRaw(w, http.StatusBadRequest, gatewayError(http.StatusBadRequest, "LP-forward-url is not an absolute http(s) URL"))
		return
	}
	service := r.Header.Get("LP-service-name")
	tr := s.transportFor(service, target)
	if tr == nil {
		if strings.EqualFold(strings.TrimSpace(r.Header.Get("LP-stop-if-certificate-not-found")), "true") {
			writeRaw(w, s.opts.NoCertStatus, gatewayError(s.opts.NoCertStatus,
				"No certificate mapping found for account "+s.opts.AccountID+", service '"+headerSafe(service)+
					"' and the given LP-forward-url; request not forwarded (LP-stop-if-certificate-not-found is true)"))
			return
		}
		tr = s.plain
		s.counts.add(func(c *Counts) { c.PlainTLSForwards++ })
	} else {
		s.counts.add(func(c *Counts) { c.MTLSForwards++ })
	}

	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ForwardTimeout)
	defer cancel()
	var body io.Reader = r.Body
	if r.ContentLength == 0 {
		body = http.NoBody
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, target, body)
	if err != nil {
		writeRaw(w, http.StatusBadRequest, gatewayError(http.StatusBadRequest, "LP-forward-url is not usable"))
		return
	}
	out.ContentLength = r.ContentLength
	out.Header = outboundHeader(r.Header)
	if o := r.Header.Get("LP-authorization-override"); o != "" {
		out.Header.Set("Authorization", o)
	}

	// RoundTrip, not a Client: redirects come back to the caller unfollowed.
	resp, err := tr.RoundTrip(out)
	if err != nil {
		if r.Context().Err() != nil {
			return // caller gone
		}
		cause := err
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = ue.Err
		}
		slog.Debug("lpsim: forward failed", "service", service, "err", cause)
		h := w.Header()
		h.Set("LP-message-from-transport", "Failed to send request to remote server")
		h.Set("LP-error-from-transport", headerSafe(cause.Error())+" (url: "+headerSafe(target)+")")
		writeRaw(w, http.StatusFailedDependency, gatewayError(http.StatusFailedDependency, "remote server call failed"))
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = append([]string(nil), vs...)
	}
	headers.StripHopByHop(h)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// outboundHeader keeps the caller's end-to-end headers, minus the gateway's own
// (Authorization, LP-*), Host and hop-by-hop ones.
func outboundHeader(in http.Header) http.Header {
	out := make(http.Header, len(in))
	for k, vs := range in {
		if k == "Authorization" || k == "Host" || strings.HasPrefix(strings.ToLower(k), "lp-") {
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	headers.StripHopByHop(out)
	return out
}
