package lp

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kind classifies a failure so callers can choose an HTTP status or a queue outcome
// from one table instead of inspecting status codes.
type Kind int

const (
	KindUnknown Kind = iota
	// KindAuth: LivePerson rejected the credentials or the Bearer (login 401/403,
	// gateway 401/403 or WWW-Authenticate).
	KindAuth
	// KindThrottled: 429 from LivePerson; RetryAfter is set when the answer said so.
	KindThrottled
	// KindNoCertificate: no certificate mapping for the triplet and the stop flag was set
	// (docs say 500, LivePerson's own client expects 400: either is read as this only when
	// the body mentions cert/mapping/mTLS, since a target's own 400 is far more common).
	KindNoCertificate
	// KindTarget: the gateway reached out but the target failed (424 and/or
	// LP-message-from-transport / LP-error-from-transport).
	KindTarget
	// KindGateway: LivePerson answered 5xx or something unreadable.
	KindGateway
	// KindTimeout: the invocation deadline or a network timeout cut the call.
	KindTimeout
	// KindDiscovery: CSDS failed or lacks a needed service.
	KindDiscovery
	// KindBlocked: 451, account or user blocked by LivePerson support; never retry.
	KindBlocked
	// KindNetwork: the connection to LivePerson failed before any answer.
	KindNetwork
	// KindBadRequest: LivePerson refused the request as malformed (4xx other than the
	// above), e.g. a mapping check with bad pairs.
	KindBadRequest
	// KindHeadersTooLarge: lpmtls's own HTTP client refused to send the request because
	// its header list is larger than LivePerson's end advertised (HTTP/2
	// SETTINGS_MAX_HEADER_LIST_SIZE). Nothing was sent: it is lpmtls's answer, not
	// LivePerson's.
	KindHeadersTooLarge
	// KindUnsent: lpmtls's own HTTP client refused the request before a byte left (an
	// invalid header field, a body that could not be read, a request it cannot write).
	// Nothing was sent, and sending it again would fail the same way.
	KindUnsent
)

var kindNames = map[Kind]string{
	KindUnknown:         "unknown",
	KindAuth:            "auth",
	KindThrottled:       "throttled",
	KindNoCertificate:   "no_certificate",
	KindTarget:          "target_failed",
	KindGateway:         "gateway_error",
	KindTimeout:         "timeout",
	KindDiscovery:       "discovery_failed",
	KindBlocked:         "blocked",
	KindNetwork:         "network_error",
	KindBadRequest:      "bad_request",
	KindHeadersTooLarge: "headers_too_large",
	KindUnsent:          "unsent",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is every failure this package returns. It never carries a credential or token.
type Error struct {
	Kind Kind
	// Op is the LivePerson call: "csds", "login", "oauth2", "mapping", "forward".
	Op string
	// Status is LivePerson's HTTP status, 0 when no answer arrived.
	Status int
	// Message is a human-readable reason, safe to log and to return to callers.
	Message string
	// RetryAfter is LivePerson's Retry-After, when it sent one.
	RetryAfter time.Duration
	// Header and Body are the upstream answer (bounded), kept so a caller can report the
	// transport message of a 424 or relay diagnostics.
	Header http.Header
	Body   []byte
	// Err is the underlying cause (network error, context error), if any.
	Err error
	// cause classifies a transport failure (CauseOf).
	cause Cause
}

func (e *Error) Error() string {
	s := "liveperson " + e.Op + ": " + e.Kind.String()
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil && e.Message == "" {
		s += ": " + e.Err.Error()
	}
	// A failure wrapped in another (a CSDS lookup that failed on the network) keeps
	// the inner one's reason: it is what says which host and why.
	var inner *Error
	if e.Message != "" && errors.As(e.Err, &inner) && inner.Message != "" {
		s += ": " + inner.Message
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is(err, lp.ErrAuth) and friends match on the kind alone.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Op == "" && t.Status == 0 && t.Message == "" && t.Kind == e.Kind
}

// Sentinels for errors.Is.
var (
	ErrAuth          = &Error{Kind: KindAuth}
	ErrThrottled     = &Error{Kind: KindThrottled}
	ErrNoCertificate = &Error{Kind: KindNoCertificate}
	ErrTarget        = &Error{Kind: KindTarget}
	ErrGateway       = &Error{Kind: KindGateway}
	ErrTimeout       = &Error{Kind: KindTimeout}
	ErrDiscovery     = &Error{Kind: KindDiscovery}
	ErrBlocked       = &Error{Kind: KindBlocked}
	ErrNetwork       = &Error{Kind: KindNetwork}
	ErrBadRequest    = &Error{Kind: KindBadRequest}
)

// KindOf returns the kind of err, KindUnknown when err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnknown
}
