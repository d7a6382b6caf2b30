// Package apierr turns every failure lpmtls can meet into one answer: an HTTP status, a
// stable error code, who caused it (lpmtls itself or LivePerson) and whether a queued
// message should be retried. Keeping it in one table means the HTTP route and the queue
// never disagree about what an error means.
package apierr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/lp"
)

// Sources named in the LP-Error-Source header.
const (
	SourceLPMTLS     = "lpmtls"
	SourceLivePerson = "liveperson"
)

// Error is an answer lpmtls gives on its own behalf.
type Error struct {
	Status  int
	Code    string
	Message string
	Source  string
	// RetryAfter is relayed as a Retry-After header when LivePerson asked for a pause.
	RetryAfter time.Duration
	// Allow is relayed as an Allow header: a 405 must say which methods would do.
	Allow string
	// Transient says a queued message failing this way is worth another attempt.
	Transient bool
	Err       error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }
func (e *Error) Unwrap() error { return e.Err }

// Input builds a 4xx for something the caller sent.
func Input(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...), Source: SourceLPMTLS}
}

// Codes for bad input, so tests and the README agree on spelling.
const (
	CodeInvalidJSON       = "invalid_json"
	CodeInvalidRequest    = "invalid_request"
	CodeMissingForwardURL = "missing_forward_url"
	CodeInvalidForwardURL = "invalid_forward_url"
	CodeURLNotAllowed     = "url_not_allowed"
	CodeBodyTooLarge      = "body_too_large"
	CodeMethodNotAllowed  = "method_not_allowed"
	CodeInvalidHeader     = "invalid_header"
	CodeSiteMismatch      = "site_id_mismatch"
	CodeInvalidBody       = "invalid_body"
	CodeNotFound          = "not_found"
	// CodeResponseTooLarge: the target's answer does not fit a Lambda response.
	CodeResponseTooLarge = "response_too_large"
	// CodeInternal: lpmtls itself failed; the detail is in the logs.
	CodeInternal = "internal_error"
)

type row struct {
	status    int
	code      string
	transient bool
	what      string
}

// kinds is the one table from a LivePerson failure kind to our answer. Statuses are
// 502/504 rather than LivePerson's own because the caller's request to lpmtls was fine:
// an upstream failed.
var kinds = map[lp.Kind]row{
	lp.KindAuth:          {http.StatusBadGateway, "liveperson_auth_failed", false, "LivePerson rejected the credentials or the bearer"},
	lp.KindThrottled:     {http.StatusTooManyRequests, "liveperson_throttled", true, "LivePerson throttled the request"},
	lp.KindNoCertificate: {http.StatusBadGateway, "no_certificate_mapping", false, "no mTLS certificate is mapped for this account, service name and URL"},
	lp.KindTarget:        {http.StatusBadGateway, "target_failed", true, "the mTLS gateway could not complete the call to the target"},
	lp.KindGateway:       {http.StatusBadGateway, "gateway_error", true, "the LivePerson mTLS gateway failed"},
	lp.KindTimeout:       {http.StatusGatewayTimeout, "timeout", true, "LivePerson did not answer in time"},
	lp.KindDiscovery:     {http.StatusBadGateway, "discovery_failed", true, "LivePerson domain discovery (CSDS) failed"},
	lp.KindBlocked:       {http.StatusBadGateway, "liveperson_blocked", false, "LivePerson blocked the account or user (HTTP 451)"},
	lp.KindNetwork:       {http.StatusBadGateway, "liveperson_unreachable", true, "LivePerson could not be reached"},
	lp.KindBadRequest:    {http.StatusBadGateway, "liveperson_rejected_request", false, "LivePerson refused the request"},
}

// From classifies any error. An *Error passes through; an *lp.Error is looked up in the
// table; anything else (a broken secret, a bug) is a 500 from lpmtls, whose detail stays
// in the logs because it may describe configuration the caller should not see.
func From(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	var le *lp.Error
	if errors.As(err, &le) {
		r, ok := kinds[le.Kind]
		if !ok {
			r = row{http.StatusBadGateway, "liveperson_error", true, "LivePerson failed"}
		}
		msg := r.what
		if le.Kind == lp.KindGateway && (le.Op == "login" || le.Op == "oauth2") {
			// Same code, but the caller must be able to tell that nothing reached the
			// gateway, let alone the target: a login 5xx is safe to retry, a gateway 5xx
			// may be the target's own answer.
			msg = "LivePerson's login failed, so the request was not sent"
		}
		if le.Status != 0 {
			msg += " (HTTP " + strconv.Itoa(le.Status) + ")"
		}
		if le.Message != "" {
			msg += ": " + le.Message
		}
		return &Error{Status: r.status, Code: r.code, Message: msg, Source: SourceLivePerson,
			RetryAfter: le.RetryAfter, Transient: r.transient, Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: http.StatusGatewayTimeout, Code: "timeout", Message: "the invocation ran out of time", Source: SourceLPMTLS, Transient: true, Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal,
		Message: "lpmtls failed; see the function's logs", Source: SourceLPMTLS, Transient: true, Err: err}
}

// Body is the JSON shape of every lpmtls-made error: {"error":{"code":...,"message":...}}.
type Body struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Transport headers LivePerson sets when the target failed; relayed because they say why.
var transportHeaders = []string{"LP-message-from-transport", "LP-error-from-transport"}

// HTTPResponse renders the error for API Gateway: the JSON body, LP-Error-Source, and
// Retry-After when LivePerson asked for a pause. Headers is never nil.
func (e *Error) HTTPResponse() events.APIGatewayV2HTTPResponse {
	var b Body
	b.Error.Code, b.Error.Message = e.Code, e.Message
	body, err := json.Marshal(b)
	if err != nil { // cannot happen with two strings; keep the response well-formed anyway
		body = []byte(`{"error":{"code":"internal","message":""}}`)
	}
	r := events.APIGatewayV2HTTPResponse{
		StatusCode: e.Status,
		Headers: map[string]string{
			"Content-Type":    "application/json",
			"LP-Error-Source": e.Source,
		},
		Body: string(body),
	}
	if e.Allow != "" {
		r.Headers["Allow"] = e.Allow
	}
	if e.RetryAfter > 0 {
		r.Headers["Retry-After"] = strconv.Itoa(int((e.RetryAfter + time.Second - 1) / time.Second))
	}
	var le *lp.Error
	if errors.As(e.Err, &le) && le.Kind == lp.KindTarget {
		for _, h := range transportHeaders {
			if v := le.Header.Get(h); v != "" {
				r.Headers[h] = v
			}
		}
	}
	return r
}
