package lpsim

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fault replaces the normal answer of the next matching call(s).
type Fault struct {
	// Op is the endpoint: "csds", "login", "refresh", "logout", "oauth2", "mapping",
	// "forward", "target", "certificates" (list), "upload", "replace", "activate" or
	// "mtlsconfig" (ac-common mapping objects).
	Op string
	// Status is the answer's status; 0 with a Delay means a slow but normal answer.
	Status int
	// RetryAfter is sent as the Retry-After header when set.
	RetryAfter string
	// Delay holds the answer back; a client that disconnects ends the wait.
	Delay time.Duration
	// Times is how many calls the fault affects; 0 means 1.
	Times int
	// Header holds extra response headers (e.g. LP-message-from-transport).
	Header http.Header
	// Body replaces the default LivePerson-shaped error body for the op.
	Body string
	// Reset aborts the request without an answer (after Delay, ignoring Status): the
	// connection is closed under an HTTP/1.1 client and the stream reset (RST_STREAM)
	// under HTTP/2, which is how a crashing or resetting server looks to its caller. On
	// "target", the gateway then answers 424 with its transport headers.
	Reset bool
}

// Counts is a snapshot of what the simulator has seen. Every request that reaches an
// endpoint is counted, including the ones answered by an injected fault.
type Counts struct {
	CSDS, Logins, OAuth2Tokens, Refreshes, Mappings, Forwards int
	// GatewayTLSHandshakes counts completed TLS handshakes on the LP server (resumptions
	// included): with keep-alive, many requests share one.
	GatewayTLSHandshakes int
	// TargetRequests counts requests that reached the target; TargetTLSHandshakes counts
	// handshakes the target completed (a plain-TLS attempt that it rejects is not one).
	TargetRequests, TargetTLSHandshakes int
	// MTLSForwards and PlainTLSForwards count outbound calls the gateway attempted with
	// and without a mapped client certificate.
	MTLSForwards, PlainTLSForwards int
	// Certificate and mapping-object calls: list, upload (POST by-file), replace (PUT
	// by-file), activate, and every ac-common mtls call.
	CertificateLists, CertificateUploads, CertificateReplaces, Activations, MappingObjects int
}

type counters struct {
	mu sync.Mutex
	c  Counts
}

func (c *counters) add(f func(*Counts)) {
	c.mu.Lock()
	f(&c.c)
	c.mu.Unlock()
}

func (c *counters) snapshot() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c
}

func (c *counters) reset() {
	c.mu.Lock()
	c.c = Counts{}
	c.mu.Unlock()
}

type faultQueue struct {
	mu     sync.Mutex
	queued []*Fault
}

func (q *faultQueue) push(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	f.Header = f.Header.Clone()
	q.mu.Lock()
	q.queued = append(q.queued, &f)
	q.mu.Unlock()
}

// take consumes one use of the first fault queued for op, in injection order.
func (q *faultQueue) take(op string) (Fault, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, f := range q.queued {
		if f.Op != op {
			continue
		}
		f.Times--
		if f.Times == 0 {
			q.queued = append(q.queued[:i], q.queued[i+1:]...)
		}
		return *f, true
	}
	return Fault{}, false
}

// applyFault runs a pending fault for op. It returns true when the request has been
// answered (or abandoned by the client) and the caller must stop.
func (s *Sim) applyFault(op string, w http.ResponseWriter, r *http.Request) bool {
	f, ok := s.faults.take(op)
	if !ok {
		return false
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true // client gone: nobody to answer
		}
	}
	if f.Reset {
		// net/http recovers this value silently and drops the connection or stream.
		panic(http.ErrAbortHandler)
	}
	if f.Status == 0 {
		return false
	}
	h := w.Header()
	for k, vs := range f.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	if f.RetryAfter != "" {
		h.Set("Retry-After", f.RetryAfter)
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	body := f.Body
	if body == "" {
		body = defaultFaultBody(op, f.Status, h, r)
	}
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(body))
	return true
}

// defaultFaultBody answers in the shape LivePerson uses for that endpoint, and adds the
// headers LivePerson's clients key on (WWW-Authenticate, transport headers of a 424).
func defaultFaultBody(op string, status int, h http.Header, r *http.Request) string {
	msg := "injected fault: " + http.StatusText(status)
	switch op {
	case "target":
		// The brand's own service, which knows nothing of LivePerson's wrapper.
		if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", `Basic realm="brand"`)
		}
		b, _ := json.Marshal(map[string]string{"targetError": msg})
		return string(b)
	case "login", "refresh", "logout":
		return loginError(status, msg)
	case "oauth2":
		return oauthError(status, msg)
	case "mapping", "forward", "certificates", "upload", "replace", "activate", "mtlsconfig":
		if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", `Bearer realm="mtls"`)
		}
		if op == "forward" && status == http.StatusFailedDependency {
			if h.Get("LP-message-from-transport") == "" {
				h.Set("LP-message-from-transport", "Failed to send request to remote server")
			}
			if h.Get("LP-error-from-transport") == "" {
				h.Set("LP-error-from-transport", "injected transport failure (url: "+headerSafe(r.Header.Get("LP-forward-url"))+")")
			}
		}
	}
	return gatewayError(status, msg)
}

// loginError is the Login Service wrapper: {"error":{time,message,internalCode,responseStatus}}.
// internalCode 10 is what LivePerson's docs show for a 401; other codes are invented
// (the HTTP status), as LivePerson does not document them.
func loginError(status int, msg string) string {
	code := status
	if status == http.StatusUnauthorized {
		code = 10
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"time":           time.Now().UTC().Format("Jan 2, 2006 3:04:05 PM"),
		"message":        msg,
		"internalCode":   code,
		"responseStatus": responseStatus(status),
	}})
	return string(b)
}

// oauthError follows RFC 6749 §5.2, as sentinel does.
func oauthError(status int, desc string) string {
	code := "server_error"
	switch {
	case status == http.StatusUnauthorized:
		code = "invalid_client"
	case status == http.StatusTooManyRequests:
		code = "too_many_requests"
	case status == http.StatusServiceUnavailable:
		code = "temporarily_unavailable"
	case status >= 400 && status < 500:
		code = "invalid_request"
	}
	b, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	return string(b)
}

// gatewayError is the body of the mTLS gateway's and CSDS's own errors: the wrapper
// LivePerson's Java services share with the Login Service (documented there), so that a
// client can tell the gateway's own 5xx or 429 from a target's relayed one.
func gatewayError(status int, msg string) string {
	return loginError(status, msg)
}

// responseStatus spells a status the way Java's HttpStatus enum does ("TOO_MANY_REQUESTS").
func responseStatus(status int) string {
	t := http.StatusText(status)
	if t == "" {
		return "UNKNOWN"
	}
	return strings.ToUpper(strings.NewReplacer(" ", "_", "-", "_", "'", "").Replace(t))
}

func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
