// Package mapping asks LivePerson whether certificates are configured for
// serviceName/url pairs: on demand through API Gateway, and on a schedule.
package mapping

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/apigw"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/session"
)

// MaxPairs bounds one check; LivePerson documents no limit, and a bounded batch keeps one
// call well inside the gateway's throttle.
const MaxPairs = 100

// Checker is the LivePerson call this package needs; *lp.Client satisfies it.
type Checker interface {
	CheckMappings(ctx context.Context, auth lp.Auth, pairs []lp.Mapping) ([]lp.MappingResult, error)
}

// Sessions hands out a bearer and retries once after a 401; *session.Manager satisfies it.
type Sessions interface {
	Do(ctx context.Context, fn func(ctx context.Context, s session.Session) error) error
}

// Service checks mappings.
type Service struct {
	Checker  Checker
	Sessions Sessions
	Logger   *slog.Logger
}

// Item is one pair's answer.
type Item struct {
	ServiceName string `json:"serviceName"`
	URL         string `json:"url"`
	Configured  bool   `json:"configured"`
}

// Result is the answer of POST /mapping.
type Result struct {
	AccountID     string `json:"accountId"`
	Mappings      []Item `json:"mappings"`
	AllConfigured bool   `json:"allConfigured"`
}

// ParsePairs reads and validates the body of POST /mapping: a JSON array of 1 to 100
// {"serviceName","url"} objects.
func ParsePairs(body []byte) ([]lp.Mapping, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var pairs []lp.Mapping
	if err := dec.Decode(&pairs); err != nil {
		return nil, apierr.Input(http.StatusBadRequest, apierr.CodeInvalidJSON, "%s; %s", jsonProblem(err), sendInstead)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, apierr.Input(http.StatusBadRequest, apierr.CodeInvalidJSON, "the body has more after the JSON array; %s", sendInstead)
	}
	return pairs, ValidatePairs(pairs)
}

// sendInstead is the documented request, said in every message about a body that is not it.
const sendInstead = `send a JSON array of 1 to 100 {"serviceName","url"} objects, e.g. [{"serviceName":"WEBHOOKS","url":"https://api.brand.example/hooks"}]`

// ValidatePairs checks what ParsePairs (or a schedule's input) produced.
func ValidatePairs(pairs []lp.Mapping) error {
	if len(pairs) == 0 || len(pairs) > MaxPairs {
		return apierr.Input(http.StatusBadRequest, apierr.CodeInvalidRequest,
			"the array has %d items; send 1 to %d {\"serviceName\",\"url\"} objects (split a longer list over several calls)", len(pairs), MaxPairs)
	}
	for i, p := range pairs {
		if strings.TrimSpace(p.ServiceName) == "" {
			return apierr.Input(http.StatusBadRequest, apierr.CodeInvalidRequest,
				"item %d: serviceName is required: the mapping's service name, e.g. \"serviceName\":\"WEBHOOKS\"", i)
		}
		u, err := url.Parse(p.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return apierr.Input(http.StatusBadRequest, apierr.CodeInvalidRequest,
				"item %d: url must be the absolute https URL the mapping is for, e.g. \"url\":\"https://api.brand.example/hooks\"", i)
		}
	}
	return nil
}

// jsonProblem says what is wrong with the body in the API's terms (a JSON array of
// objects with serviceName and url), never in Go's (types, EOF).
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return "the body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends before its JSON does"
	case errors.As(err, &se):
		return fmt.Sprintf("the body is not valid JSON (at byte %d)", se.Offset)
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("%s must be a JSON string, not %s", te.Field, article(te.Value))
	case errors.As(err, &te) && te.Type.Kind() == reflect.Slice:
		return "the body is " + article(te.Value) + ", not an array"
	case errors.As(err, &te):
		return "an item of the array is " + article(te.Value) + ", not an object"
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "an item has the field " + name + "; items have only serviceName and url"
	}
	return "the body is not valid JSON"
}

// article names a JSON value kind as the decoder reports it ("object", "number").
func article(kind string) string {
	if kind == "" {
		return "another JSON value"
	}
	return "a JSON " + kind
}

// Check asks LivePerson about pairs in one call. siteID, when given, must be the
// configured account: a caller naming another account is told so rather than answered
// about ours.
func (s *Service) Check(ctx context.Context, siteID string, pairs []lp.Mapping) (*Result, error) {
	var res *Result
	err := s.Sessions.Do(ctx, func(ctx context.Context, sess session.Session) error {
		if siteID != "" && siteID != sess.AccountID {
			return apierr.Input(http.StatusBadRequest, apierr.CodeSiteMismatch,
				"siteId %q is not the account this deployment serves; leave siteId out, or send the account id this deployment was set up for", siteID)
		}
		answers, err := s.Checker.CheckMappings(ctx, sess.Auth, pairs)
		if err != nil {
			return err
		}
		res = Merge(sess.AccountID, pairs, answers)
		return nil
	})
	return res, err
}

// Merge keeps the caller's order and matches LivePerson's answers by pair, since nothing
// documents that the answer keeps the order; a pair it does not mention is not configured.
// LivePerson may normalise the URL it echoes (host case, escaping), so when a pair has no
// exact match and the answer has exactly one item per requested pair, the answer at the
// same position is used — but only if that answer matched no requested pair itself and
// names the same service (or none), so a reordered answer cannot lend one pair another's result.
func Merge(account string, pairs []lp.Mapping, answers []lp.MappingResult) *Result {
	exist := make(map[lp.Mapping]bool, len(answers))
	for _, a := range answers {
		k := lp.Mapping{ServiceName: a.ServiceName, URL: a.URL}
		exist[k] = exist[k] || a.Exist
	}
	requested := make(map[lp.Mapping]bool, len(pairs))
	for _, p := range pairs {
		requested[p] = true
	}
	positional := len(answers) == len(pairs)
	res := &Result{AccountID: account, Mappings: make([]Item, len(pairs)), AllConfigured: true}
	for i, p := range pairs {
		ok, found := exist[p]
		if !found && positional {
			a := answers[i]
			if !requested[lp.Mapping{ServiceName: a.ServiceName, URL: a.URL}] && (a.ServiceName == "" || strings.EqualFold(a.ServiceName, p.ServiceName)) {
				ok = a.Exist
			}
		}
		res.Mappings[i] = Item{ServiceName: p.ServiceName, URL: p.URL, Configured: ok}
		res.AllConfigured = res.AllConfigured && ok
	}
	return res
}

// HandleHTTP serves POST /mapping.
func (s *Service) HandleHTTP(ctx context.Context, e *events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	ctx, cancel := apigw.WithDeadline(ctx, e, time.Now())
	defer cancel()
	log := obs.Logger(ctx, s.logger())
	in, err := apigw.FromV2(e)
	if err != nil {
		return apierr.Input(http.StatusBadRequest, apierr.CodeInvalidBody, "the request body is not valid base64").HTTPResponse()
	}
	if in.Method != http.MethodPost {
		return apierr.Input(http.StatusMethodNotAllowed, apierr.CodeMethodNotAllowed, "use POST /mapping").HTTPResponse()
	}
	pairs, err := ParsePairs(in.Body)
	if err != nil {
		ae := apierr.From(err)
		log.Info("mapping check rejected", "status", ae.Status, "code", ae.Code, "reason", ae.Message)
		return ae.HTTPResponse()
	}
	res, err := s.Check(ctx, in.Query.Get("siteId"), pairs)
	if err != nil {
		ae := apierr.From(err)
		log.Warn("mapping check failed", "status", ae.Status, "code", ae.Code, "error", err.Error())
		return ae.HTTPResponse()
	}
	log.Info("mapping checked", "pairs", len(pairs), "allConfigured", res.AllConfigured)
	body, _ := json.Marshal(res)
	return apigw.ToV2(&apigw.Response{StatusCode: http.StatusOK,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: body})
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}
