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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/lpmtls/lpmtls/shared/forward"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/secrets"
)

const (
	dlqURL     = "https://sqs.us-east-1.amazonaws.com/123456789012/requests-dlq"
	resultsURL = "https://sqs.us-east-1.amazonaws.com/123456789012/results"
)

// fakeSender answers by the message's URL path, so one batch can mix outcomes.
type fakeSender struct {
	mu       sync.Mutex
	answers  map[string]func() (*lp.ForwardResponse, error)
	calls    int
	deadline time.Time
}

func (f *fakeSender) Send(ctx context.Context, req *lp.ForwardRequest) (*lp.ForwardResponse, error) {
	f.mu.Lock()
	f.calls++
	f.deadline, _ = ctx.Deadline()
	answer := f.answers[strings.TrimPrefix(req.URL, "https://hooks.example.com")]
	f.mu.Unlock()
	if answer == nil {
		return &lp.ForwardResponse{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("ok")}, nil
	}
	return answer()
}

type fakeSQS struct {
	mu   sync.Mutex
	fail map[string]error
	// refuse, when set, may refuse a send by its content (as SQS's validation does).
	refuse func(*sqs.SendMessageInput) error
	sent   map[string][]*sqs.SendMessageInput
	tries  int
}

func (f *fakeSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries++
	url := aws.ToString(in.QueueUrl)
	if err := f.fail[url]; err != nil {
		return nil, err
	}
	if f.refuse != nil {
		if err := f.refuse(in); err != nil {
			return nil, err
		}
	}
	if f.sent == nil {
		f.sent = map[string][]*sqs.SendMessageInput{}
	}
	f.sent[url] = append(f.sent[url], in)
	return &sqs.SendMessageOutput{MessageId: aws.String("m")}, nil
}

func record(id, body string) events.SQSMessage {
	return events.SQSMessage{
		MessageId: id, Body: body, EventSource: "aws:sqs",
		EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:requests",
		Attributes:     map[string]string{"ApproximateReceiveCount": "3"},
	}
}

func msgTo(path string) string {
	return `{"id":"c-` + path + `","url":"https://hooks.example.com` + path + `","authorizationOverride":"Bearer sekrit-override-123"}`
}

func lpErr(k lp.Kind, status int) func() (*lp.ForwardResponse, error) {
	return func() (*lp.ForwardResponse, error) {
		return nil, &lp.Error{Kind: k, Op: "forward", Status: status, Message: "simulated"}
	}
}

func secretErr(r secrets.Reason) func() (*lp.ForwardResponse, error) {
	return func() (*lp.ForwardResponse, error) {
		return nil, fmt.Errorf("session: read credentials: %w", &secrets.Error{Reason: r, SecretID: "lpmtls/brand", Err: errors.New("simulated")})
	}
}

func status(st int) func() (*lp.ForwardResponse, error) {
	return func() (*lp.ForwardResponse, error) { return &lp.ForwardResponse{StatusCode: st}, nil }
}

// TestOutcomeTable runs one message per row through Handle and checks where it ended.
func TestOutcomeTable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		answer func() (*lp.ForwardResponse, error)
		want   forward.Outcome
		code   string
	}{
		{"target 200", msgTo("/ok"), status(200), forward.OutcomeDelivered, ""},
		{"target 404 is delivered", msgTo("/nf"), status(404), forward.OutcomeDelivered, ""},
		{"target 302 is delivered", msgTo("/r"), status(302), forward.OutcomeDelivered, ""},
		{"target 408", msgTo("/t"), status(408), forward.OutcomeTransient, CodeTargetStatus},
		{"target 429 relayed", msgTo("/t"), status(429), forward.OutcomeTransient, CodeTargetStatus},
		{"target 503 relayed", msgTo("/t"), status(503), forward.OutcomeTransient, CodeTargetStatus},
		{"liveperson 429", msgTo("/t"), lpErr(lp.KindThrottled, 429), forward.OutcomeTransient, "liveperson_throttled"},
		{"liveperson 5xx", msgTo("/t"), lpErr(lp.KindGateway, 503), forward.OutcomeTransient, "gateway_error"},
		{"gateway 424", msgTo("/t"), lpErr(lp.KindTarget, 424), forward.OutcomeTransient, "target_failed"},
		{"timeout", msgTo("/t"), lpErr(lp.KindTimeout, 0), forward.OutcomeTransient, "timeout"},
		{"network", msgTo("/t"), lpErr(lp.KindNetwork, 0), forward.OutcomeTransient, "liveperson_unreachable"},
		{"discovery", msgTo("/t"), lpErr(lp.KindDiscovery, 0), forward.OutcomeTransient, "discovery_failed"},
		{"unclassified error", msgTo("/t"), func() (*lp.ForwardResponse, error) { return nil, errors.New("boom") }, forward.OutcomeTransient, "internal_error"},
		{"credentials rejected after re-login", msgTo("/p"), lpErr(lp.KindAuth, 401), forward.OutcomePermanent, "liveperson_auth_failed"},
		{"no certificate mapping", msgTo("/p"), lpErr(lp.KindNoCertificate, 500), forward.OutcomePermanent, "no_certificate_mapping"},
		{"blocked", msgTo("/p"), lpErr(lp.KindBlocked, 451), forward.OutcomePermanent, "liveperson_blocked"},
		{"liveperson refused request", msgTo("/p"), lpErr(lp.KindBadRequest, 400), forward.OutcomePermanent, "liveperson_rejected_request"},
		{"malformed JSON", `{"url":`, nil, forward.OutcomePermanent, "invalid_json"},
		{"URL not allowed", `{"url":"https://elsewhere.example.net/x"}`, nil, forward.OutcomePermanent, "url_not_allowed"},
		{"header of 1 MiB", `{"url":"https://hooks.example.com/big","headers":{"X-Big":"` + strings.Repeat("a", 1<<20) + `"}}`, nil, forward.OutcomePermanent, "headers_too_large"},
		{"HTTP client refused the headers", msgTo("/p"), lpErr(lp.KindHeadersTooLarge, 0), forward.OutcomePermanent, "headers_too_large"},
		{"HTTP client refused the request", msgTo("/p"), lpErr(lp.KindUnsent, 0), forward.OutcomePermanent, "request_not_sent"},
		{"Secrets Manager unavailable", msgTo("/t"), secretErr(secrets.ReasonUnavailable), forward.OutcomeTransient, "secrets_unavailable"},
		{"secret access denied", msgTo("/p"), secretErr(secrets.ReasonAccessDenied), forward.OutcomePermanent, "secret_access_denied"},
		{"secret KMS denied", msgTo("/p"), secretErr(secrets.ReasonKMSDenied), forward.OutcomePermanent, "secret_kms_denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sender := &fakeSender{answers: map[string]func() (*lp.ForwardResponse, error){}}
			if tc.answer != nil {
				var m Message
				_ = json.Unmarshal([]byte(tc.body), &m)
				sender.answers[strings.TrimPrefix(m.URL, "https://hooks.example.com")] = tc.answer
			}
			q := &fakeSQS{}
			p := &Processor{Sender: sender, Policy: testPolicy, SQS: q, DeadLetterQueueURL: dlqURL, ResultsQueueURL: resultsURL,
				Logger: slog.New(slog.DiscardHandler)}
			resp, err := p.Handle(context.Background(), &events.SQSEvent{Records: []events.SQSMessage{record("m1", tc.body)}})
			if err != nil {
				t.Fatal(err)
			}
			failed := len(resp.BatchItemFailures) == 1 && resp.BatchItemFailures[0].ItemIdentifier == "m1"
			dlq, results := q.sent[dlqURL], q.sent[resultsURL]
			switch tc.want {
			case forward.OutcomeDelivered:
				if failed || len(dlq) != 0 || len(results) != 1 {
					t.Fatalf("failed=%v dlq=%d results=%d", failed, len(dlq), len(results))
				}
				var r Result
				if err := json.Unmarshal([]byte(aws.ToString(results[0].MessageBody)), &r); err != nil {
					t.Fatal(err)
				}
				if r.Error != nil || r.MessageID != "m1" || r.Attempt != 3 || r.ID == "" {
					t.Fatalf("result %+v", r)
				}
			case forward.OutcomeTransient:
				if !failed || len(dlq) != 0 || len(results) != 0 {
					t.Fatalf("failed=%v dlq=%d results=%d", failed, len(dlq), len(results))
				}
			case forward.OutcomePermanent:
				if failed || len(dlq) != 1 || len(results) != 1 {
					t.Fatalf("failed=%v dlq=%d results=%d", failed, len(dlq), len(results))
				}
				d := dlq[0]
				if aws.ToString(d.MessageBody) != tc.body {
					t.Errorf("DLQ body %q, want the original unchanged", aws.ToString(d.MessageBody))
				}
				attr := func(k string) string { return aws.ToString(d.MessageAttributes[k].StringValue) }
				if attr(AttrErrorCode) != tc.code || attr(AttrSourceMessageID) != "m1" || attr(AttrAttempt) != "3" ||
					attr(AttrErrorMessage) == "" || attr(AttrSourceQueue) == "" {
					t.Errorf("DLQ attributes %v", d.MessageAttributes)
				}
				var r Result
				_ = json.Unmarshal([]byte(aws.ToString(results[0].MessageBody)), &r)
				if r.Error == nil || r.Error.Code != tc.code {
					t.Errorf("result error %+v, want %s", r.Error, tc.code)
				}
			}
			if tc.want != forward.OutcomePermanent || tc.answer != nil {
				if out, ae := Classify(tc.answer()); out != tc.want || (tc.code != "" && ae.Code != tc.code) {
					t.Errorf("Classify = %s %v, want %s %s", out, ae, tc.want, tc.code)
				}
			}
		})
	}
}

// TestNeverDropped: a permanent failure whose outcome cannot be recorded stays in the
// queue, and so does a delivered message whose result cannot be published.
func TestNeverDropped(t *testing.T) {
	bad := `{"url":"https://elsewhere.example.net/x"}`
	for _, tc := range []struct {
		name       string
		dlq        string
		fail       map[string]error
		body       string
		wantFailed bool
	}{
		{"no DLQ configured", "", nil, bad, true},
		{"DLQ send fails", dlqURL, map[string]error{dlqURL: errors.New("AccessDenied")}, bad, true},
		{"result of a delivered message not published", dlqURL, map[string]error{resultsURL: errors.New("throttled")}, msgTo("/ok"), true},
		{"result of a dead-lettered message not published", dlqURL, map[string]error{resultsURL: errors.New("throttled")}, bad, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Processor{Sender: &fakeSender{}, Policy: testPolicy, SQS: &fakeSQS{fail: tc.fail},
				DeadLetterQueueURL: tc.dlq, ResultsQueueURL: resultsURL, Logger: slog.New(slog.DiscardHandler)}
			resp, _ := p.Handle(context.Background(), &events.SQSEvent{Records: []events.SQSMessage{record("m1", tc.body)}})
			if got := len(resp.BatchItemFailures) == 1; got != tc.wantFailed {
				t.Fatalf("batch item failure = %v, want %v", got, tc.wantFailed)
			}
		})
	}
}

func TestFIFOIDsCarried(t *testing.T) {
	q := &fakeSQS{}
	p := &Processor{Sender: &fakeSender{}, Policy: testPolicy, SQS: q,
		DeadLetterQueueURL: dlqURL + ".fifo", ResultsQueueURL: resultsURL + ".fifo", Logger: slog.New(slog.DiscardHandler)}
	withIDs := record("m1", msgTo("/ok"))
	withIDs.Attributes["MessageGroupId"] = "g1"
	withIDs.Attributes["MessageDeduplicationId"] = "d1"
	noDedup := record("m2", `{"url":"https://elsewhere.example.net/x"}`)
	noDedup.Attributes["MessageGroupId"] = "g2"
	if _, err := p.Handle(context.Background(), &events.SQSEvent{Records: []events.SQSMessage{withIDs, noDedup}}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for url, ins := range q.sent {
		for _, in := range ins {
			got[url+" "+aws.ToString(in.MessageGroupId)] = aws.ToString(in.MessageDeduplicationId)
		}
	}
	want := map[string]string{
		resultsURL + ".fifo g1": "d1",
		resultsURL + ".fifo g2": "m2",
		dlqURL + ".fifo g2":     "m2",
	}
	if len(got) != len(want) {
		t.Fatalf("sent %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: dedup %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	// Standard queues get neither id (SQS refuses them there).
	q2 := &fakeSQS{}
	p.SQS, p.ResultsQueueURL = q2, resultsURL
	_, _ = p.Handle(context.Background(), &events.SQSEvent{Records: []events.SQSMessage{withIDs}})
	if in := q2.sent[resultsURL][0]; in.MessageGroupId != nil || in.MessageDeduplicationId != nil {
		t.Errorf("standard queue got FIFO ids")
	}
}

func TestDeadline(t *testing.T) {
	sender := &fakeSender{}
	p := &Processor{Sender: sender, Policy: testPolicy, SQS: &fakeSQS{}, DeadLetterQueueURL: dlqURL,
		Margin: time.Hour, Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	resp, _ := p.Handle(ctx, &events.SQSEvent{Records: []events.SQSMessage{record("m1", msgTo("/ok")), record("m2", msgTo("/ok"))}})
	if len(resp.BatchItemFailures) != 2 || sender.calls != 0 {
		t.Fatalf("failures %v, sends %d: messages without time left must fail unstarted", resp.BatchItemFailures, sender.calls)
	}

	// With time left, each forward's deadline is the invocation's minus the margin.
	p.Margin = time.Minute
	deadline, _ := ctx.Deadline()
	resp, _ = p.Handle(ctx, &events.SQSEvent{Records: []events.SQSMessage{record("m1", msgTo("/ok"))}})
	if len(resp.BatchItemFailures) != 0 || !sender.deadline.Equal(deadline.Add(-time.Minute)) {
		t.Fatalf("failures %v, forward deadline %v, want %v", resp.BatchItemFailures, sender.deadline, deadline.Add(-time.Minute))
	}
}

// blockingSender holds every forward until released, so the test can see how many run.
type blockingSender struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	now     int
	max     int
}

func (b *blockingSender) Send(ctx context.Context, _ *lp.ForwardRequest) (*lp.ForwardResponse, error) {
	b.mu.Lock()
	b.now++
	b.max = max(b.max, b.now)
	b.mu.Unlock()
	b.entered <- struct{}{}
	<-b.release
	b.mu.Lock()
	b.now--
	b.mu.Unlock()
	return &lp.ForwardResponse{StatusCode: 204}, nil
}

func TestConcurrencyBounded(t *testing.T) {
	const n, limit = 7, 3
	b := &blockingSender{entered: make(chan struct{}), release: make(chan struct{})}
	p := &Processor{Sender: b, Policy: testPolicy, SQS: &fakeSQS{}, Concurrency: limit, Logger: slog.New(slog.DiscardHandler)}
	var recs []events.SQSMessage
	for i := range n {
		recs = append(recs, record("m"+strconv.Itoa(i), msgTo("/ok")))
	}
	done := make(chan events.SQSEventResponse)
	go func() {
		resp, _ := p.Handle(context.Background(), &events.SQSEvent{Records: recs})
		done <- resp
	}()
	for range limit {
		<-b.entered // the first `limit` forwards run together
	}
	for range n - limit {
		b.release <- struct{}{} // each release lets exactly one more in
		<-b.entered
	}
	for range limit {
		b.release <- struct{}{}
	}
	resp := <-done
	if len(resp.BatchItemFailures) != 0 || b.max != limit {
		t.Fatalf("failures %v, max in flight %d, want %d", resp.BatchItemFailures, b.max, limit)
	}
}

// TestLogs: one line per message, and no authorizationOverride or query string in them.
func TestLogs(t *testing.T) {
	var buf bytes.Buffer
	p := &Processor{Sender: &fakeSender{}, Policy: testPolicy, SQS: &fakeSQS{}, DeadLetterQueueURL: dlqURL,
		Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	recs := []events.SQSMessage{
		record("m1", `{"url":"https://hooks.example.com/in?token=query-secret-1","authorizationOverride":"Bearer sekrit-override-123"}`),
		record("m2", `{"url":"https://hooks.example.com/in","authorizationOverride":"Bearer sekrit-override-123","extra":"x"}`),
		record("m3", `{"url":"https://hooks.example.com/in","authorizationOverride":"Bearer sekrit-override-123"`),
	}
	if _, err := p.Handle(context.Background(), &events.SQSEvent{Records: recs}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, secret := range []string{"sekrit-override-123", "query-secret-1"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q:\n%s", secret, out)
		}
	}
	if n := strings.Count(out, `"msg":"sqs message"`); n != len(recs) {
		t.Errorf("%d outcome lines, want %d:\n%s", n, len(recs), out)
	}
}

// In a FIFO batch a failed message holds back the rest of its group (unprocessed, so
// order is kept on the retry); other groups and standard messages go on.
func TestFIFOGroupStopsAtFirstFailure(t *testing.T) {
	snd := &fakeSender{answers: map[string]func() (*lp.ForwardResponse, error){"/fail": status(503)}}
	q := &fakeSQS{}
	p := &Processor{Sender: snd, Policy: testPolicy, SQS: q, DeadLetterQueueURL: dlqURL,
		Concurrency: 1, Logger: slog.New(slog.DiscardHandler)}
	grouped := func(id, group, path string) events.SQSMessage {
		r := record(id, msgTo(path))
		r.Attributes["MessageGroupId"] = group
		return r
	}
	e := &events.SQSEvent{Records: []events.SQSMessage{
		grouped("a1", "A", "/ok"), grouped("a2", "A", "/fail"), grouped("b1", "B", "/ok"),
		grouped("a3", "A", "/ok"), record("s1", msgTo("/ok")), grouped("b2", "B", "/ok"),
	}}
	resp, err := p.Handle(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range resp.BatchItemFailures {
		got = append(got, f.ItemIdentifier)
	}
	slices.Sort(got)
	if strings.Join(got, ",") != "a2,a3" {
		t.Fatalf("failures %v, want a2,a3", got)
	}
	if snd.calls != 5 {
		t.Fatalf("%d forwards, want 5 (a3 must not be sent after a2 failed)", snd.calls)
	}
}
