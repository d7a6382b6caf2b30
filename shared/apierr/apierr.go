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
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/secrets"
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

// Codes for bad input, so tests and docs/errors.md agree on spelling.
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
	// CodeHeadersTooLarge: the forwarded headers exceed headers.MaxValueBytes or
	// headers.MaxListBytes, or the gateway's advertised header list limit.
	CodeHeadersTooLarge = "headers_too_large"
	CodeNotFound        = "not_found"
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
	// source is SourceLivePerson unless set.
	source string
}

// kinds is the one table from a LivePerson failure kind to our answer. Statuses are
// 502/504 rather than LivePerson's own because the caller's request to lpmtls was fine:
// an upstream failed. The last two are lpmtls's own: its HTTP client refused the request
// before a byte left, so LivePerson never saw it; neither is worth a retry.
var kinds = map[lp.Kind]row{
	lp.KindAuth:          {http.StatusBadGateway, "liveperson_auth_failed", false, "LivePerson rejected the credentials or the bearer", ""},
	lp.KindThrottled:     {http.StatusTooManyRequests, "liveperson_throttled", true, "LivePerson throttled the request", ""},
	lp.KindNoCertificate: {http.StatusBadGateway, "no_certificate_mapping", false, "no mTLS certificate is mapped for this account, service name and URL", ""},
	lp.KindTarget:        {http.StatusBadGateway, "target_failed", true, "the mTLS gateway could not complete the call to the target", ""},
	lp.KindGateway:       {http.StatusBadGateway, "gateway_error", true, "the LivePerson mTLS gateway failed", ""},
	lp.KindTimeout:       {http.StatusGatewayTimeout, "timeout", true, "LivePerson did not answer in time", ""},
	lp.KindDiscovery:     {http.StatusBadGateway, "discovery_failed", true, "LivePerson domain discovery (CSDS) failed", ""},
	lp.KindBlocked:       {http.StatusBadGateway, "liveperson_blocked", false, "LivePerson blocked the account or user (HTTP 451)", ""},
	lp.KindNetwork:       {http.StatusBadGateway, "liveperson_unreachable", true, "LivePerson could not be reached", ""},
	lp.KindBadRequest:    {http.StatusBadGateway, "liveperson_rejected_request", false, "LivePerson refused the request", ""},
	lp.KindHeadersTooLarge: {http.StatusRequestHeaderFieldsTooLarge, CodeHeadersTooLarge, false,
		"the request's headers are larger than the mTLS gateway accepts; send fewer or shorter headers", SourceLPMTLS},
	lp.KindUnsent: {http.StatusInternalServerError, "request_not_sent", false,
		"lpmtls's HTTP client refused to send the request, so LivePerson never received it", SourceLPMTLS},
}

// Codes for the AWS dependencies: an outage says retry, the others name what the
// deployment must fix.
const (
	CodeSecretsUnavailable = "secrets_unavailable"
	CodeSecretAccessDenied = "secret_access_denied"
	CodeSecretNotFound     = "secret_not_found"
	CodeSecretKMSDenied    = "secret_kms_denied"
	CodeSecretInvalid      = "secret_invalid"
)

// DependencyRetryAfter is the pause asked of the caller while an AWS dependency is
// unavailable: the SDK has already retried with backoff for about as long.
const DependencyRetryAfter = 5 * time.Second

// secretRows: an outage is 503 with Retry-After and worth a retry. A deployment
// mistake is 500: the fault is lpmtls's (not the caller's, not LivePerson's), and no
// retry cures it until someone fixes the deployment, so it is neither a 4xx nor a
// 503; the queue dead-letters it with the code, to be redriven once fixed. The
// messages name the missing permission or resource, never the secret's value or ARN.
var secretRows = map[secrets.Reason]row{
	secrets.ReasonUnavailable: {http.StatusServiceUnavailable, CodeSecretsUnavailable, true,
		"AWS Secrets Manager is unavailable or throttling, so lpmtls cannot read its credentials; retry after Retry-After", SourceLPMTLS},
	secrets.ReasonAccessDenied: {http.StatusInternalServerError, CodeSecretAccessDenied, false,
		"the function's role may not read the credentials secret: grant it secretsmanager:GetSecretValue on LP_SECRET_ID", SourceLPMTLS},
	secrets.ReasonNotFound: {http.StatusInternalServerError, CodeSecretNotFound, false,
		"the credentials secret named by LP_SECRET_ID does not exist (or is scheduled for deletion): create it or fix LP_SECRET_ID", SourceLPMTLS},
	secrets.ReasonKMSDenied: {http.StatusInternalServerError, CodeSecretKMSDenied, false,
		"the credentials secret's KMS key refused to decrypt it for the function's role: grant kms:Decrypt on that key (and check it is enabled)", SourceLPMTLS},
}

// From classifies any error. An *Error passes through; an *lp.Error is looked up in the
// table; anything else (a broken secret, a bug) is a 500 from lpmtls, whose detail stays
// in the logs because it may describe configuration the caller should not see.
func From(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	var se *secrets.Error
	if errors.As(err, &se) {
		r := secretRows[se.Reason]
		e := &Error{Status: r.status, Code: r.code, Message: r.what, Source: r.source, Transient: r.transient, Err: err}
		if se.Code != "" {
			e.Message += " (AWS " + se.Code + ")"
		}
		if r.transient {
			e.RetryAfter = DependencyRetryAfter
		}
		return e
	}
	if errors.Is(err, secrets.ErrInvalid) {
		// The detail names the fields at fault, never their values (see secrets.Parse).
		var detail string
		for u := err; u != nil; u = errors.Unwrap(u) {
			if errors.Is(u, secrets.ErrInvalid) {
				detail = u.Error()
			}
		}
		return &Error{Status: http.StatusInternalServerError, Code: CodeSecretInvalid, Source: SourceLPMTLS, Err: err,
			Message: "the credentials secret is not in the documented shape: " + detail}
	}
	var le *lp.Error
	if errors.As(err, &le) {
		r, ok := kinds[le.Kind]
		if !ok {
			r = row{http.StatusBadGateway, "liveperson_error", true, "LivePerson failed", ""}
		}
		if r.source == "" {
			r.source = SourceLivePerson
		}
		msg := r.what
		if le.Kind == lp.KindGateway && (le.Op == "login" || le.Op == "oauth2") {
			// Same code, but the caller must be able to tell that nothing reached the
			// gateway, let alone the target: a login 5xx is safe to retry, a gateway 5xx
			// may be the target's own answer.
			msg = "LivePerson's login failed, so the request was not sent"
		}
		// The status is said once: lp's own messages may already name it.
		if st := "HTTP " + strconv.Itoa(le.Status); le.Status != 0 && !strings.Contains(le.Message, st) {
			msg += " (" + st + ")"
		}
		if le.Message != "" {
			msg += ": " + le.Message
		}
		return &Error{Status: r.status, Code: r.code, Message: msg, Source: r.source,
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
