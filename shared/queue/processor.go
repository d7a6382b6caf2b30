package queue

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/forward"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/obs"
)

// Sender sends a validated forward; *forward.Service satisfies it.
type Sender interface {
	Send(ctx context.Context, req *lp.ForwardRequest) (*lp.ForwardResponse, error)
}

// SQS is the one SQS call the processor makes; *sqs.Client satisfies it.
type SQS interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Defaults.
const (
	DefaultConcurrency = 10
	DefaultMargin      = 2 * time.Second
	// MaxResultBytes bounds a published result: SQS refuses a message over the queue's
	// MaximumMessageSize (256 KiB by default), and a result it refuses could never be
	// published. The rest of 256 KiB is room for SQS's own accounting.
	MaxResultBytes = 250_000
	// maxMessageAttributes is SQS's limit per message.
	maxMessageAttributes = 10
)

// Message attributes set on a message sent to the dead-letter queue.
const (
	AttrErrorCode       = "lpmtls-error-code"
	AttrErrorMessage    = "lpmtls-error-message"
	AttrErrorStatus     = "lpmtls-error-status"
	AttrErrorSource     = "lpmtls-error-source"
	AttrSourceMessageID = "lpmtls-source-message-id"
	AttrSourceQueue     = "lpmtls-source-queue"
	AttrAttempt         = "lpmtls-attempt"
)

// CodeTargetStatus is the error code of a target answer that is worth retrying.
const CodeTargetStatus = "target_status_retryable"

// CodeDeadline is the error code of a message not started for lack of time.
const CodeDeadline = "deadline"

// Classify decides a message's outcome from the forward's answer: delivered (the
// message is deleted), transient (a batch item failure, so SQS retries it) or permanent
// (dead-lettered with the reason, then deleted); a message has no client_error, since
// an invalid one is permanent. Errors go through the one apierr table; a target's own
// answer is delivered unless its status says the target wants the call again (408,
// 429, 5xx).
func Classify(resp *lp.ForwardResponse, err error) (forward.Outcome, *apierr.Error) {
	if err != nil {
		ae := apierr.From(err)
		if ae.Transient {
			return forward.OutcomeTransient, ae
		}
		return forward.OutcomePermanent, ae
	}
	if retryableStatus(resp.StatusCode) {
		return forward.OutcomeTransient, &apierr.Error{Status: resp.StatusCode, Code: CodeTargetStatus,
			Message: "the target answered HTTP " + strconv.Itoa(resp.StatusCode), Source: "target", Transient: true}
	}
	return forward.OutcomeDelivered, nil
}

func retryableStatus(st int) bool {
	return st == http.StatusRequestTimeout || st == http.StatusTooManyRequests || st >= 500
}

// Processor handles SQS batches for the forward function.
type Processor struct {
	Sender Sender
	Policy forward.Policy
	SQS    SQS
	// DeadLetterQueueURL receives permanent failures; without it they are retried
	// (batch item failures) and the queue's redrive policy dead-letters them.
	DeadLetterQueueURL string
	// ResultsQueueURL, when set, receives one result per delivered or dead-lettered message.
	ResultsQueueURL string
	// Concurrency bounds forwards in flight; <= 0 means DefaultConcurrency.
	Concurrency int
	Logger      *slog.Logger
	// Margin is the time kept before the invocation deadline to record outcomes; a
	// message that cannot start with this much left is not started. 0 means DefaultMargin.
	Margin time.Duration
	// ResultLimit is the largest result published, in bytes; <= 0 means MaxResultBytes.
	// Set it lower when the results queue's MaximumMessageSize is lower.
	ResultLimit int
}

// Result is the message published to the results queue.
type Result struct {
	ID              string  `json:"id"`
	MessageID       string  `json:"messageId"`
	Status          int     `json:"status"`
	Headers         Headers `json:"headers"`
	Body            string  `json:"body"`
	IsBase64Encoded bool    `json:"isBase64Encoded"`
	// BodyTruncated: the target's body did not fit in a result and Body is "";
	// BodyBytes is the length of the target's body (before any base64) either way.
	BodyTruncated bool `json:"bodyTruncated"`
	BodyBytes     int  `json:"bodyBytes"`
	// HeadersTruncated: the headers alone did not fit, and are left out ({}).
	HeadersTruncated bool       `json:"headersTruncated"`
	Error            *ErrorInfo `json:"error"`
	Attempt          int        `json:"attempt"`
}

// ErrorInfo is the error part of a Result.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Handle forwards every record and reports the ones to retry. It returns an error only
// when it cannot even name a failed record, since an invocation error retries the whole
// batch, including messages already delivered.
func (p *Processor) Handle(ctx context.Context, e *events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, r := range e.Records {
		if r.MessageId == "" {
			return resp, errors.New("queue: a record has no messageId, so its failure could not be reported")
		}
	}
	margin := p.Margin
	if margin <= 0 {
		margin = DefaultMargin
	}
	// Forwards stop margin before the deadline; recording outcomes (SQS sends) uses the
	// invocation's own context, so the margin is what they get.
	workCtx := ctx
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		var cancel context.CancelFunc
		workCtx, cancel = context.WithDeadline(ctx, deadline.Add(-margin))
		defer cancel()
	}
	limit := p.Concurrency
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	failed := make([]bool, len(e.Records))
	var g errgroup.Group
	g.SetLimit(limit)
	for _, idx := range lanes(e.Records) {
		g.Go(func() error {
			for n, i := range idx {
				rec := &e.Records[i]
				if hasDeadline && time.Until(deadline) < margin {
					failed[i] = true
					ae := &apierr.Error{Code: CodeDeadline, Source: apierr.SourceLPMTLS, Transient: true,
						Message: "not started: too little time left before the invocation deadline"}
					forward.RecordError(ctx, ae)
					p.log(ctx, rec, nil, forward.OutcomeTransient, ae, 0, "")
				} else {
					failed[i] = !p.process(ctx, workCtx, rec)
				}
				if failed[i] {
					// A FIFO group must not overtake a failed message: the rest of the
					// group goes back unprocessed, as Lambda asks for FIFO partial batches.
					for _, j := range idx[n+1:] {
						failed[j] = true
					}
					return nil
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	for i, f := range failed {
		if f {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: e.Records[i].MessageId})
		}
	}
	return resp, nil
}

// lanes splits a batch into sequences that may run concurrently: each record of a
// standard queue on its own, and each FIFO message group in its order.
func lanes(recs []events.SQSMessage) [][]int {
	var out [][]int
	group := map[string]int{}
	for i, r := range recs {
		g, ok := r.Attributes["MessageGroupId"]
		if !ok || g == "" {
			out = append(out, []int{i})
			continue
		}
		if l, seen := group[g]; seen {
			out[l] = append(out[l], i)
			continue
		}
		group[g] = len(out)
		out = append(out, []int{i})
	}
	return out
}

// process handles one record and reports whether it may leave the queue.
func (p *Processor) process(ctx, workCtx context.Context, rec *events.SQSMessage) bool {
	start := time.Now()
	var (
		msg  *Message
		req  *lp.ForwardRequest
		resp *lp.ForwardResponse
		err  error
	)
	msg, err = Parse(rec.Body)
	if err == nil {
		var in forward.Input
		if in, err = msg.Input(); err == nil {
			req, err = p.Policy.Validate(in)
		}
	}
	if err == nil {
		resp, err = p.Sender.Send(workCtx, req)
	}
	outcome, ae := Classify(resp, err)
	if outcome == forward.OutcomeTransient && workCtx.Err() != nil && ctx.Err() == nil {
		ae = &apierr.Error{Status: http.StatusGatewayTimeout, Code: CodeDeadline, Source: apierr.SourceLPMTLS, Transient: true,
			Message: "stopped before the invocation deadline; will be retried", Err: err}
	}
	if ae == nil {
		forward.RecordOutcome(ctx, forward.OutcomeDelivered, "")
	} else {
		forward.RecordError(ctx, ae)
	}
	id := ""
	if msg != nil {
		id = msg.ID
	} else {
		// A message refused by the strict parse may still name itself (unknown fields,
		// a wrong type elsewhere): echo its id so the caller can correlate the result.
		var probe struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal([]byte(rec.Body), &probe)
		id = probe.ID
	}
	target := ""
	if msg != nil && msg.URL != "" {
		target = obs.URL(msg.URL)
	}
	ok := true
	recorded := ""
	switch outcome {
	case forward.OutcomeDelivered:
		if err := p.publish(ctx, rec, result(rec, id, resp, nil)); err != nil {
			if unsendable(err) {
				// The target already has the message; forwarding it again would repeat its
				// side effect for a result that SQS would refuse again anyway.
				recorded = "result refused by SQS and dropped (the message is not retried): " + err.Error()
			} else {
				ok, recorded = false, "result not published: "+err.Error()
			}
		}
	case forward.OutcomePermanent:
		if err := p.deadLetter(ctx, rec, ae); err != nil {
			ok, recorded = false, "not dead-lettered: "+err.Error()
			break
		}
		// The outcome is already safe in the dead-letter queue, so a lost result only
		// costs the caller a notification, not the message: it does not fail the record.
		if err := p.publish(ctx, rec, result(rec, id, nil, ae)); err != nil {
			recorded = "dead-lettered; result not published: " + err.Error()
		}
	case forward.OutcomeTransient:
		ok = false
	}
	p.log(ctx, rec, resp, outcome, ae, time.Since(start), recorded, slog.String("id", id), slog.String("target", target))
	return ok
}

func (p *Processor) log(ctx context.Context, rec *events.SQSMessage, resp *lp.ForwardResponse, outcome forward.Outcome, ae *apierr.Error, elapsed time.Duration, recorded string, extra ...any) {
	log := obs.Logger(ctx, p.logger())
	attrs := append([]any{
		slog.String("messageId", rec.MessageId), slog.String("outcome", string(outcome)),
		slog.Int("attempt", attempt(rec)), slog.Duration("elapsed", elapsed),
	}, extra...)
	level := slog.LevelInfo
	if resp != nil {
		attrs = append(attrs, slog.Int("status", resp.StatusCode), slog.Int("responseBytes", len(resp.Body)))
	}
	if ae != nil {
		attrs = append(attrs, slog.Int("status", ae.Status), slog.String("code", ae.Code), slog.String("reason", ae.Message))
		level = slog.LevelWarn
	}
	if recorded != "" {
		attrs = append(attrs, slog.String("recording", recorded))
		level = slog.LevelError
	}
	log.Log(ctx, level, "sqs message", attrs...)
}

func (p *Processor) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

func (p *Processor) deadLetter(ctx context.Context, rec *events.SQSMessage, ae *apierr.Error) error {
	if p.DeadLetterQueueURL == "" {
		return errors.New("DLQ_URL is not set")
	}
	attrs := map[string]types.MessageAttributeValue{
		AttrErrorCode:       str(ae.Code),
		AttrErrorMessage:    str(clip(ae.Message, 1024)),
		AttrErrorSource:     str(ae.Source),
		AttrSourceMessageID: str(rec.MessageId),
		AttrAttempt:         num(attempt(rec)),
	}
	if ae.Status != 0 {
		attrs[AttrErrorStatus] = num(ae.Status)
	}
	if rec.EventSourceARN != "" {
		attrs[AttrSourceQueue] = str(rec.EventSourceARN)
	}
	for k, v := range attrs {
		if v.StringValue != nil && *v.StringValue == "" {
			delete(attrs, k) // SQS refuses empty attribute values
		}
	}
	ours := len(attrs)
	dropped := copyAttributes(attrs, rec.MessageAttributes)
	if len(dropped) > 0 {
		obs.Logger(ctx, p.logger()).Warn("dead-lettered message loses some of its message attributes (SQS allows 10)",
			slog.String("messageId", rec.MessageId), slog.Any("dropped", dropped))
	}
	in := &sqs.SendMessageInput{
		QueueUrl:          aws.String(p.DeadLetterQueueURL),
		MessageBody:       aws.String(rec.Body),
		MessageAttributes: attrs,
	}
	fifo(in, p.DeadLetterQueueURL, rec, "")
	_, err := p.SQS.SendMessage(ctx, in)
	if err != nil && unsendable(err) && len(attrs) > ours {
		// The copied attributes may be what SQS refuses (they count towards the size
		// limit, on top of ours): the reason matters more than the caller's attributes.
		obs.Logger(ctx, p.logger()).Warn("dead-letter send refused; retrying without the message's own attributes",
			slog.String("messageId", rec.MessageId), slog.String("error", err.Error()))
		for k := range attrs {
			if !strings.HasPrefix(k, attrPrefix) {
				delete(attrs, k)
			}
		}
		_, err = p.SQS.SendMessage(ctx, in)
	}
	return err
}

// attrPrefix marks the attributes this package sets.
const attrPrefix = "lpmtls-"

// copyAttributes adds the original message's attributes to ours while SQS's limit
// allows, in name order so the choice is stable, and returns the names left out. Ours
// win a name clash (a message dead-lettered before carries stale lpmtls-* values).
func copyAttributes(dst map[string]types.MessageAttributeValue, src map[string]events.SQSMessageAttribute) []string {
	names := make([]string, 0, len(src))
	for k := range src {
		names = append(names, k)
	}
	sort.Strings(names)
	var dropped []string
	for _, k := range names {
		if _, clash := dst[k]; clash || strings.HasPrefix(k, attrPrefix) {
			dropped = append(dropped, k)
			continue
		}
		a := src[k]
		v := types.MessageAttributeValue{DataType: aws.String(a.DataType), StringValue: a.StringValue, BinaryValue: a.BinaryValue}
		// SQS has no list values ("reserved for future use"); an attribute with no
		// scalar value would make the whole send fail.
		if a.DataType == "" || (aws.ToString(a.StringValue) == "" && len(a.BinaryValue) == 0) {
			dropped = append(dropped, k)
			continue
		}
		if len(dst) >= maxMessageAttributes {
			dropped = append(dropped, k)
			continue
		}
		dst[k] = v
	}
	return dropped
}

// unsendable reports whether SQS refused a message for what it is (too long, invalid
// characters, an invalid parameter), which resending the same message cannot fix.
func unsendable(err error) bool {
	var contents *types.InvalidMessageContents
	if errors.As(err, &contents) {
		return true
	}
	// SQS answers an oversized message with InvalidParameterValue, which the SDK does
	// not model: match the code of any API error.
	var api interface{ ErrorCode() string }
	if !errors.As(err, &api) {
		return false
	}
	switch strings.TrimPrefix(api.ErrorCode(), "AWS.SimpleQueueService.") {
	case "InvalidParameterValue", "InvalidMessageContents", "MessageTooLong", "InvalidAttributeValue":
		return true
	}
	return false
}

func (p *Processor) publish(ctx context.Context, rec *events.SQSMessage, r Result) error {
	if p.ResultsQueueURL == "" {
		return nil
	}
	b, err := fit(r, p.resultLimit())
	if err != nil {
		return err
	}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(p.ResultsQueueURL), MessageBody: aws.String(string(b))}
	fifo(in, p.ResultsQueueURL, rec, r.ID)
	_, err = p.SQS.SendMessage(ctx, in)
	return err
}

func (p *Processor) resultLimit() int {
	if p.ResultLimit > 0 {
		return p.ResultLimit
	}
	return MaxResultBytes
}

// fit marshals a result within limit bytes. The body goes first; the headers go only
// when they alone are too large, and then the body stays if it fits beside what is
// left. What still does not fit (a huge id or error) is sent as is, and SQS's refusal
// is handled by the caller.
func fit(r Result, limit int) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil || len(b) <= limit {
		return b, err
	}
	noBody := r
	noBody.Body, noBody.IsBase64Encoded, noBody.BodyTruncated = "", false, r.Body != ""
	if b, err = json.Marshal(noBody); err != nil || len(b) <= limit || len(r.Headers) == 0 {
		return b, err
	}
	r.Headers, r.HeadersTruncated = Headers{}, true
	if b, err = json.Marshal(r); err != nil || len(b) <= limit {
		return b, err
	}
	r.Body, r.IsBase64Encoded, r.BodyTruncated = "", false, r.Body != ""
	return json.Marshal(r)
}

// fifo carries the message group and deduplication ids to a FIFO queue, so results of
// one group stay ordered and a redelivered message does not publish twice within the
// deduplication window.
func fifo(in *sqs.SendMessageInput, queueURL string, rec *events.SQSMessage, id string) {
	if !strings.HasSuffix(queueURL, ".fifo") {
		return
	}
	group := rec.Attributes["MessageGroupId"]
	if group == "" {
		group = id
	}
	if group == "" {
		group = rec.MessageId
	}
	dedup := rec.Attributes["MessageDeduplicationId"]
	if dedup == "" {
		dedup = rec.MessageId
	}
	in.MessageGroupId = aws.String(clip(group, 128))
	in.MessageDeduplicationId = aws.String(clip(dedup, 128))
}

func result(rec *events.SQSMessage, id string, resp *lp.ForwardResponse, ae *apierr.Error) Result {
	r := Result{ID: id, MessageID: rec.MessageId, Attempt: attempt(rec), Headers: Headers{}}
	if resp != nil {
		r.Status, r.BodyBytes = resp.StatusCode, len(resp.Body)
		for k, vs := range resp.Header {
			r.Headers[k] = vs
		}
		if utf8.Valid(resp.Body) {
			r.Body = string(resp.Body)
		} else {
			r.Body, r.IsBase64Encoded = base64.StdEncoding.EncodeToString(resp.Body), true
		}
	}
	if ae != nil {
		r.Status = ae.Status
		r.Error = &ErrorInfo{Code: ae.Code, Message: ae.Message}
	}
	return r
}

// attempt is SQS's receive count for the record (1 on the first delivery).
func attempt(rec *events.SQSMessage) int {
	n, err := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
	if err != nil || n < 1 {
		return 1
	}
	return n
}

func str(s string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
}

func num(n int) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(n))}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
