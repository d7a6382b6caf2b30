// Package cachecleanup is the stack's Custom::CacheCleanup resource, served by the
// mapping function: its Delete removes every parameter under the cache prefix (the
// functions create them at run time, so CloudFormation does not know them), and its
// Create and Update do nothing. Every request is answered at its ResponseURL before the
// invocation's deadline, so a stack operation never waits for a custom resource's
// one-hour timeout.
//
// The request and answer are aws-lambda-go's cfn.Event and cfn.Response (its events
// package has no custom resource type). cfn.LambdaWrap itself is not used: it keeps the
// physical id stable, but its PUT goes through http.DefaultClient without the
// invocation's context and the work gets no deadline margin, so a slow SSM or S3 could
// let the deadline pass with no answer sent.
package cachecleanup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/paramstore"
)

// Tree deletes every parameter under a prefix; *paramstore.Store satisfies it.
type Tree interface {
	DeleteTree(ctx context.Context, prefix string) (int, error)
}

// DefaultMargin is kept back from the invocation deadline for the answer: the cleanup
// stops at deadline-margin and the PUT to S3 has the rest.
const DefaultMargin = 3 * time.Second

// maxReason keeps the answer well inside CloudFormation's 4,096-byte body limit.
const maxReason = 1024

// Handler answers the custom resource's requests.
type Handler struct {
	// Params deletes the parameters; nil (no cache prefix configured) leaves nothing to do.
	Params Tree
	// Prefix is the function's own cache prefix (LP_CACHE_PARAMETER_PREFIX), the one its
	// role may clean: the request's properties are not trusted to name another.
	Prefix string
	// HTTPClient sends the answer; default a client with no timeout of its own (the
	// context bounds it).
	HTTPClient *http.Client
	// Margin defaults to DefaultMargin; it shrinks to half the time left when less than
	// two margins remain.
	Margin time.Duration
	Logger *slog.Logger
}

// New is the handler for the function's own cache prefix. It takes the concrete store
// so that a nil one (no cache prefix configured) never hides in a non-nil Tree.
func New(params *paramstore.Store, prefix string, logger *slog.Logger) *Handler {
	h := &Handler{Prefix: prefix, Logger: logger}
	if params != nil {
		h.Params = params
	}
	return h
}

// Result is what the invocation returns (visible in the Lambda console); CloudFormation
// reads only the PUT.
type Result struct {
	Status  cfn.StatusType `json:"status"`
	Deleted int            `json:"deleted"`
	Reason  string         `json:"reason,omitempty"`
}

// Handle does the request's work and answers CloudFormation. It returns an error only
// when the answer could not be delivered, so the function's Errors metric and logs show
// a stack that may be left waiting.
func (h *Handler) Handle(ctx context.Context, e *cfn.Event) (any, error) {
	log := obs.Logger(ctx, h.logger())
	workCtx, cancel := h.workContext(ctx)
	defer cancel()

	resp := cfn.Response{
		Status:             cfn.StatusSuccess,
		RequestID:          e.RequestID,
		LogicalResourceID:  e.LogicalResourceID,
		StackID:            e.StackID,
		PhysicalResourceID: physicalID(e, h.Prefix),
	}
	res := Result{Status: cfn.StatusSuccess}
	if e.RequestType == cfn.RequestDelete && h.Params != nil && h.Prefix != "" {
		n, err := h.Params.DeleteTree(workCtx, h.Prefix)
		res.Deleted = n
		if err != nil {
			if workCtx.Err() != nil && ctx.Err() == nil {
				err = fmt.Errorf("stopped before the invocation deadline to answer CloudFormation: %w", err)
			}
			resp.Status, resp.Reason = cfn.StatusFailed, clip(fmt.Sprintf("deleting the cache parameters under %s: %v", h.Prefix, err))
			res.Status, res.Reason = resp.Status, resp.Reason
		}
	}
	attrs := []any{"requestType", string(e.RequestType), "logicalResourceId", e.LogicalResourceID,
		"prefix", h.Prefix, "deleted", res.Deleted, "status", string(resp.Status)}
	if resp.Reason != "" {
		attrs = append(attrs, "reason", resp.Reason)
	}
	if err := h.send(ctx, e.ResponseURL, resp); err != nil {
		log.Error("cache cleanup: answering CloudFormation failed", append(attrs, "error", err.Error())...)
		return nil, fmt.Errorf("cache cleanup: answering CloudFormation: %w", err)
	}
	level := slog.LevelInfo
	if resp.Status != cfn.StatusSuccess {
		level = slog.LevelError
	}
	log.Log(ctx, level, "cache cleanup answered", attrs...)
	return res, nil
}

// physicalID stays the same for the resource's life: a new one on Update would make
// CloudFormation treat the Update as a replacement and send a Delete, emptying the
// cache of a stack that lives on.
func physicalID(e *cfn.Event, prefix string) string {
	if e.PhysicalResourceID != "" {
		return e.PhysicalResourceID
	}
	if prefix == "" {
		return "lpmtls-cache-cleanup"
	}
	return "lpmtls-cache-cleanup:" + prefix
}

// workContext ends Margin before the invocation's deadline.
func (h *Handler) workContext(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := h.Margin
	if margin <= 0 {
		margin = DefaultMargin
	}
	if left := time.Until(dl); left < 2*margin {
		margin = left / 2
	}
	return context.WithDeadline(ctx, dl.Add(-margin))
}

// send PUTs the answer with an empty Content-Type: the presigned URL is signed without
// one, and S3 refuses a request whose headers differ from the signature's.
func (h *Handler) send(ctx context.Context, url string, resp cfn.Response) error {
	if url == "" {
		return errors.New("the request has no ResponseURL")
	}
	body, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header["Content-Type"] = nil // Go sends none; nil makes that explicit
	hc := h.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	r, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
	if r.StatusCode/100 != 2 {
		return fmt.Errorf("the ResponseURL answered %s", r.Status)
	}
	return nil
}

func clip(s string) string {
	if len(s) <= maxReason {
		return s
	}
	s = s[:maxReason]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}
