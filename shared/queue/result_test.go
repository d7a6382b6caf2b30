package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lpmtls/lpmtls/shared/lp"
)

// apiError stands for an SDK error SQS answers with a code the SDK does not model
// (InvalidParameterValue for an oversized message), wrapped as the SDK wraps it.
type apiError struct{ code string }

func (e apiError) Error() string     { return e.code + ": One or more parameters are invalid." }
func (e apiError) ErrorCode() string { return e.code }

func wrapped(err error) error { return fmt.Errorf("operation error SQS: SendMessage, %w", err) }

func answer(body []byte, header http.Header) func() (*lp.ForwardResponse, error) {
	return func() (*lp.ForwardResponse, error) {
		return &lp.ForwardResponse{StatusCode: 200, Header: header, Body: body}, nil
	}
}

// TestResultSize: a result never exceeds its limit; the body goes first, the headers
// only when they alone are too large, and bodyBytes always tells the target's size.
func TestResultSize(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 300_000)
	binary := bytes.Repeat([]byte{0xff, 0xfe}, 100_000) // 200 kB, ~267 kB in base64
	hugeHeader := http.Header{"X-Big": {strings.Repeat("h", 300_000)}, "Content-Type": {"text/plain"}}
	for _, tc := range []struct {
		name                       string
		limit                      int
		body                       []byte
		header                     http.Header
		wantBody                   string
		wantBodyCut, wantHeaderCut bool
	}{
		{"small", 0, []byte("ok"), http.Header{"Content-Type": {"text/plain"}}, "ok", false, false},
		{"empty body", 0, nil, http.Header{}, "", false, false},
		{"large text body", 0, big, http.Header{"Content-Type": {"text/plain"}}, "", true, false},
		{"large binary body", 0, binary, http.Header{"Content-Type": {"image/png"}}, "", true, false},
		{"body just under a low limit", 400, bytes.Repeat([]byte("b"), 100), http.Header{}, strings.Repeat("b", 100), false, false},
		{"huge headers, small body kept", 0, []byte("ok"), hugeHeader, "ok", false, true},
		{"huge headers and large body", 0, big, hugeHeader, "", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &fakeSQS{}
			snd := &fakeSender{answers: map[string]func() (*lp.ForwardResponse, error){"/ok": answer(tc.body, tc.header)}}
			p := &Processor{Sender: snd, Policy: testPolicy, SQS: q, ResultsQueueURL: resultsURL, ResultLimit: tc.limit,
				Logger: slog.New(slog.DiscardHandler)}
			resp, _ := p.Handle(context.Background(), &events.SQSEvent{Records: []events.SQSMessage{record("m1", msgTo("/ok"))}})
			if len(resp.BatchItemFailures) != 0 || len(q.sent[resultsURL]) != 1 {
				t.Fatalf("failures %v, results %d", resp.BatchItemFailures, len(q.sent[resultsURL]))
			}
			raw := aws.ToString(q.sent[resultsURL][0].MessageBody)
			limit := tc.limit
			if limit == 0 {
				limit = MaxResultBytes
			}
			if len(raw) > limit {
				t.Fatalf("result is %d bytes, limit %d", len(raw), limit)
			}
			var fields map[string]json.RawMessage
			_ = json.Unmarshal([]byte(raw), &fields)
			for _, k := range []string{"bodyTruncated", "bodyBytes", "headersTruncated"} {
				if _, ok := fields[k]; !ok {
					t.Errorf("result lacks %q: %s", k, raw[:min(len(raw), 300)])
				}
			}
			var r Result
			if err := json.Unmarshal([]byte(raw), &r); err != nil {
				t.Fatal(err)
			}
			if r.Body != tc.wantBody || r.BodyTruncated != tc.wantBodyCut || r.HeadersTruncated != tc.wantHeaderCut ||
				r.BodyBytes != len(tc.body) || r.Status != 200 {
				t.Errorf("body %d bytes, bodyTruncated %v, headersTruncated %v, bodyBytes %d, status %d; want %q %v %v %d",
					len(r.Body), r.BodyTruncated, r.HeadersTruncated, r.BodyBytes, r.Status, tc.wantBody, tc.wantBodyCut, tc.wantHeaderCut, len(tc.body))
			}
			if r.BodyTruncated && r.IsBase64Encoded {
				t.Error("an empty truncated body is marked base64")
			}
			if r.HeadersTruncated != (len(r.Headers) == 0 && len(tc.header) > 0) {
				t.Errorf("headers %v with headersTruncated %v", r.Headers, r.HeadersTruncated)
			}
		})
	}
}

// TestResultRefused: a result SQS refuses for its content does not send a delivered
// message to the target again; a transient refusal does.
func TestResultRefused(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		wantFailed bool
	}{
		{"InvalidParameterValue (too long)", wrapped(apiError{"InvalidParameterValue"}), false},
		{"query-compatible code", wrapped(apiError{"AWS.SimpleQueueService.InvalidParameterValue"}), false},
		{"InvalidMessageContents", wrapped(&types.InvalidMessageContents{Message: aws.String("bad chars")}), false},
		{"throttled", wrapped(apiError{"RequestThrottled"}), true},
		{"network", errors.New("dial tcp: connection refused"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			p := &Processor{Sender: &fakeSender{}, Policy: testPolicy, SQS: &fakeSQS{fail: map[string]error{resultsURL: tc.err}},
				DeadLetterQueueURL: dlqURL, ResultsQueueURL: resultsURL, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
			resp, _ := p.Handle(context.Background(), &events.SQSEvent{Records: []events.SQSMessage{record("m1", msgTo("/ok"))}})
			if got := len(resp.BatchItemFailures) == 1; got != tc.wantFailed {
				t.Fatalf("batch item failure = %v, want %v", got, tc.wantFailed)
			}
			if !strings.Contains(logs.String(), `"level":"ERROR"`) {
				t.Errorf("no error logged:\n%s", logs.String())
			}
		})
	}
}

func TestUnsendable(t *testing.T) {
	if unsendable(nil) || unsendable(errors.New("InvalidParameterValue")) || unsendable(wrapped(apiError{"QueueDoesNotExist"})) {
		t.Fatal("unsendable for an error that is not a content refusal")
	}
	if !unsendable(wrapped(apiError{"InvalidMessageContents"})) || !unsendable(&types.InvalidMessageContents{}) {
		t.Fatal("content refusal not recognised")
	}
}

func sattr(v string) events.SQSMessageAttribute {
	return events.SQSMessageAttribute{DataType: "String", StringValue: aws.String(v)}
}

// TestDeadLetterKeepsAttributes: the original message's attributes travel to the DLQ
// beside ours, within SQS's 10, ours first.
func TestDeadLetterKeepsAttributes(t *testing.T) {
	rec := record("m1", `{"url":"https://elsewhere.example.net/x"}`)
	rec.MessageAttributes = map[string]events.SQSMessageAttribute{
		"a-trace":           sattr("t1"),
		"b-bin":             {DataType: "Binary", BinaryValue: []byte{1, 2, 3}},
		"c-num":             {DataType: "Number", StringValue: aws.String("42")},
		"d-extra":           sattr("d"),
		"e-extra":           sattr("e"),
		"list-only":         {DataType: "String", StringListValues: []string{"x"}},
		AttrErrorCode:       sattr("stale"),
		"lpmtls-unknown-of": sattr("x"),
	}
	var logs bytes.Buffer
	q := &fakeSQS{}
	p := &Processor{Sender: &fakeSender{}, Policy: testPolicy, SQS: q, DeadLetterQueueURL: dlqURL,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	resp, _ := p.Handle(context.Background(), &events.SQSEvent{Records: []events.SQSMessage{rec}})
	if len(resp.BatchItemFailures) != 0 || len(q.sent[dlqURL]) != 1 {
		t.Fatalf("failures %v, dlq %d", resp.BatchItemFailures, len(q.sent[dlqURL]))
	}
	got := q.sent[dlqURL][0].MessageAttributes
	ours := 0
	for k := range got {
		if strings.HasPrefix(k, "lpmtls-") {
			ours++
		}
	}
	if len(got) != 10 || ours != 7 { // the rejected URL gives a status, so all 7 of ours are set
		t.Fatalf("%d attributes (%d ours), want 10 with 7 ours: %v", len(got), ours, got)
	}
	if v := aws.ToString(got[AttrErrorCode].StringValue); v != "url_not_allowed" {
		t.Errorf("error code %q: ours must win a clash", v)
	}
	if aws.ToString(got["a-trace"].StringValue) != "t1" || !bytes.Equal(got["b-bin"].BinaryValue, []byte{1, 2, 3}) ||
		aws.ToString(got["b-bin"].DataType) != "Binary" || aws.ToString(got["c-num"].DataType) != "Number" {
		t.Errorf("originals not copied faithfully: %v", got)
	}
	for _, k := range []string{"d-extra", "e-extra", "list-only", "lpmtls-unknown-of"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s copied beyond the limit or invalid", k)
		}
	}
	var warn struct {
		Dropped []string `json:"dropped"`
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "message attributes") {
			_ = json.Unmarshal([]byte(line), &warn)
		}
	}
	want := []string{"d-extra", "e-extra", "list-only", AttrErrorCode, "lpmtls-unknown-of"}
	slices.Sort(want)
	if slices.Sort(warn.Dropped); !slices.Equal(warn.Dropped, want) {
		t.Errorf("dropped logged as %v, want %v\n%s", warn.Dropped, want, logs.String())
	}
}

// TestDeadLetterRefusedWithAttributes: when SQS refuses the dead letter because of the
// copied attributes, it goes again with ours alone rather than lose its reason.
func TestDeadLetterRefusedWithAttributes(t *testing.T) {
	rec := record("m1", `{"url":"https://elsewhere.example.net/x"}`)
	rec.MessageAttributes = map[string]events.SQSMessageAttribute{"big": sattr(strings.Repeat("x", 1000))}
	q := &fakeSQS{refuse: func(in *sqs.SendMessageInput) error {
		if _, ok := in.MessageAttributes["big"]; ok {
			return wrapped(apiError{"InvalidParameterValue"})
		}
		return nil
	}}
	p := &Processor{Sender: &fakeSender{}, Policy: testPolicy, SQS: q, DeadLetterQueueURL: dlqURL, Logger: slog.New(slog.DiscardHandler)}
	resp, _ := p.Handle(context.Background(), &events.SQSEvent{Records: []events.SQSMessage{rec}})
	if len(resp.BatchItemFailures) != 0 || len(q.sent[dlqURL]) != 1 || q.tries != 2 {
		t.Fatalf("failures %v, dlq %d, tries %d", resp.BatchItemFailures, len(q.sent[dlqURL]), q.tries)
	}
	if got := q.sent[dlqURL][0].MessageAttributes; aws.ToString(got[AttrErrorCode].StringValue) != "url_not_allowed" || len(got) != 7 {
		t.Fatalf("attributes %v", got)
	}
}
