package queue_test

// End-to-end: the real forward bootstrap under the test Runtime API, the LivePerson
// simulator, and fauxqs as SQS. The test plays the Lambda event source mapping: it
// receives a batch, invokes the function with it, deletes what succeeded and leaves the
// batch item failures to reappear after the visibility timeout; fauxqs itself applies
// the redrive policy (it moves a message to the DLQ when it is received more than
// maxReceiveCount times), as SQS does.

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lpmtls/lpmtls/shared/queue"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/sqsemu"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const maxReceiveCount = 2

type world struct {
	env                         *testenv.Env
	emu                         *sqsemu.Emulator
	reqURL, reqARN, dlq, result string
}

func newWorld(t *testing.T) *world { return newWorldResults(t, nil) }

// newWorldResults creates the results queue with these attributes.
func newWorldResults(t *testing.T, resultAttrs map[string]string) *world {
	t.Helper()
	w := &world{env: testenv.New(t), emu: sqsemu.Start(t)}
	var dlqARN string
	w.dlq, dlqARN = w.emu.CreateQueue(t, "requests-dlq", nil)
	w.result, _ = w.emu.CreateQueue(t, "results", resultAttrs)
	w.reqURL, w.reqARN = w.emu.CreateQueue(t, "requests", map[string]string{
		"VisibilityTimeout": "1",
		"RedrivePolicy":     `{"deadLetterTargetArn":"` + dlqARN + `","maxReceiveCount":"` + strconv.Itoa(maxReceiveCount) + `"}`,
	})
	return w
}

func (w *world) start(t *testing.T) *testenv.Function {
	t.Helper()
	return w.env.Start(t, "forward", append(w.emu.Env(),
		"DLQ_URL="+w.dlq,
		"RESULTS_QUEUE_URL="+w.result,
		"FORWARD_ALLOWED_URLS="+w.env.Sim.TargetURL("/hooks"),
		"FORWARD_CONCURRENCY=10",
	)...)
}

func (w *world) send(t *testing.T, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		w.sendWith(t, b, nil)
	}
}

func (w *world) sendWith(t *testing.T, body string, attrs map[string]types.MessageAttributeValue) {
	t.Helper()
	if _, err := w.emu.Client.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(w.reqURL), MessageBody: aws.String(body), MessageAttributes: attrs,
	}); err != nil {
		t.Fatal(err)
	}
}

func receive(t *testing.T, c *sqs.Client, url string, wait int32) []types.Message {
	t.Helper()
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: wait,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

// toEvent builds the event Lambda's SQS poller would send for these messages.
func (w *world) toEvent(ms []types.Message) *events.SQSEvent {
	e := &events.SQSEvent{}
	for _, m := range ms {
		var attrs map[string]events.SQSMessageAttribute
		for k, v := range m.MessageAttributes {
			if attrs == nil {
				attrs = map[string]events.SQSMessageAttribute{}
			}
			attrs[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue}
		}
		e.Records = append(e.Records, events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
			Body: aws.ToString(m.Body), Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: m.Attributes,
			MessageAttributes: attrs, EventSource: "aws:sqs", EventSourceARN: w.reqARN, AWSRegion: sqsemu.Region,
		})
	}
	return e
}

// pump is one poll of the event source mapping: receive, invoke, delete the successes.
// It returns the batch (nil when the queue had nothing) and the batch item failures.
func (w *world) pump(t *testing.T, f *testenv.Function) (*events.SQSEvent, []string) {
	t.Helper()
	ms := receive(t, w.emu.Client, w.reqURL, 2)
	if len(ms) == 0 {
		return nil, nil
	}
	e := w.toEvent(ms)
	var resp events.SQSEventResponse
	if err := json.Unmarshal(f.Invoke(t, e), &resp); err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, bf := range resp.BatchItemFailures {
		failed = append(failed, bf.ItemIdentifier)
	}
	for _, r := range e.Records {
		if !slices.Contains(failed, r.MessageId) {
			if _, err := w.emu.Client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{
				QueueUrl: aws.String(w.reqURL), ReceiptHandle: aws.String(r.ReceiptHandle),
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.Sort(failed)
	return e, failed
}

// drain reads every message now in url.
func drain(t *testing.T, c *sqs.Client, url string) []types.Message {
	t.Helper()
	var all []types.Message
	for {
		ms := receive(t, c, url, 0)
		if len(ms) == 0 {
			return all
		}
		all = append(all, ms...)
		for _, m := range ms {
			_, _ = c.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

func results(t *testing.T, ms []types.Message) []queue.Result {
	t.Helper()
	var out []queue.Result
	for _, m := range ms {
		var r queue.Result
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r); err != nil {
			t.Fatalf("result %q: %v", aws.ToString(m.Body), err)
		}
		out = append(out, r)
	}
	return out
}

func attr(m types.Message, k string) string { return aws.ToString(m.MessageAttributes[k].StringValue) }

func good(w *world, id string) string {
	return `{"id":"` + id + `","url":"` + w.env.MappedURL + `","headers":{"Content-Type":"application/json"},"body":"{\"n\":\"` + id + `\"}","authorizationOverride":"Bearer sekrit-override-123"}`
}

func TestMixedBatch(t *testing.T) {
	w := newWorld(t)
	sim := w.env.Sim
	flaky := sim.TargetURL("/hooks/in?status=503")
	sim.AddMapping(testenv.ServiceName, flaky)
	bodies := map[string]string{
		"good-1":       good(w, "good-1"),
		"good-2":       good(w, "good-2"),
		"good-3":       good(w, "good-3"),
		"transient":    `{"id":"transient","url":"` + flaky + `"}`,
		"bad-json":     `{"id":"bad-json","url":`,
		"not-allowed":  `{"id":"not-allowed","url":"https://elsewhere.example.net/x"}`,
		"no-mapping":   `{"id":"no-mapping","url":"` + sim.TargetURL("/hooks/unmapped") + `"}`,
		"unknown-keys": `{"id":"unknown-keys","url":"` + w.env.MappedURL + `","stopIfCertificateNotfound":false}`,
	}
	for _, b := range bodies {
		w.send(t, b)
	}
	f := w.start(t)

	e, failed := w.pump(t, f)
	if e == nil || len(e.Records) != len(bodies) {
		t.Fatalf("expected one batch of %d", len(bodies))
	}
	byBody := map[string]string{}
	for _, r := range e.Records {
		byBody[r.Body] = r.MessageId
	}
	if want := []string{byBody[bodies["transient"]]}; !slices.Equal(failed, want) {
		t.Fatalf("batch item failures %v, want exactly the transient message %v\n%s", failed, want, f.Logs())
	}

	// Permanent failures are in the DLQ at once, body unchanged, reason in attributes.
	dlq := drain(t, w.emu.Client, w.dlq)
	wantCodes := map[string]string{"bad-json": "invalid_json", "not-allowed": "url_not_allowed",
		"no-mapping": "no_certificate_mapping", "unknown-keys": "invalid_request"}
	if len(dlq) != len(wantCodes) {
		t.Fatalf("DLQ has %d messages, want %d", len(dlq), len(wantCodes))
	}
	for _, m := range dlq {
		id := ""
		for k, b := range bodies {
			if b == aws.ToString(m.Body) {
				id = k
			}
		}
		if wantCodes[id] == "" {
			t.Fatalf("unexpected DLQ body %q", aws.ToString(m.Body))
		}
		if attr(m, queue.AttrErrorCode) != wantCodes[id] || attr(m, queue.AttrSourceMessageID) != byBody[bodies[id]] ||
			attr(m, queue.AttrAttempt) != "1" || attr(m, queue.AttrErrorMessage) == "" || attr(m, queue.AttrSourceQueue) != w.reqARN {
			t.Errorf("%s: DLQ attributes %+v", id, m.MessageAttributes)
		}
	}

	// Results: the delivered ones with the target's answer, the dead-lettered ones with the error.
	rs := map[string]queue.Result{} // by messageId: a malformed message has no id
	for _, r := range results(t, drain(t, w.emu.Client, w.result)) {
		rs[r.MessageID] = r
	}
	if len(rs) != 3+len(wantCodes) {
		t.Fatalf("%d results, want %d: %v", len(rs), 3+len(wantCodes), rs)
	}
	byID := map[string]queue.Result{}
	for _, r := range rs {
		byID[r.ID] = r
		if r.MessageID != byBody[bodies[r.ID]] && r.ID != "" {
			t.Errorf("result %s has messageId %s", r.ID, r.MessageID)
		}
	}
	for _, id := range []string{"good-1", "good-2", "good-3"} {
		r := byID[id]
		if r.Status != 200 || r.Error != nil || r.Body != `{"n":"`+id+`"}` || r.Attempt != 1 || r.MessageID != byBody[bodies[id]] {
			t.Errorf("result %s: %+v", id, r)
		}
		if got := r.Headers["X-Echo-Client-Cn"]; len(got) != 1 || got[0] != testenv.ServiceName {
			t.Errorf("result %s: the target did not see the mapped certificate: %v", id, r.Headers)
		}
	}
	if r := rs[byBody[bodies["bad-json"]]]; r.ID != "" || r.Error == nil || r.Error.Code != "invalid_json" {
		t.Errorf("result of the malformed message: %+v", r)
	}
	for id, code := range wantCodes {
		if id == "bad-json" {
			continue
		}
		if r := byID[id]; r.Error == nil || r.Error.Code != code {
			t.Errorf("result %s: %+v, want error %s", id, r, code)
		}
	}

	// The transient one is retried until the redrive policy dead-letters it.
	attempts := 1
	for {
		e, failed := w.pump(t, f)
		if e == nil {
			if moved := drain(t, w.emu.Client, w.dlq); len(moved) == 1 {
				if aws.ToString(moved[0].Body) != bodies["transient"] {
					t.Fatalf("redriven body %q", aws.ToString(moved[0].Body))
				}
				break
			}
			continue
		}
		attempts++
		if len(e.Records) != 1 || len(failed) != 1 || attempts > maxReceiveCount {
			t.Fatalf("attempt %d: %d records, failures %v", attempts, len(e.Records), failed)
		}
	}
	if attempts != maxReceiveCount {
		t.Fatalf("transient message tried %d times, want %d", attempts, maxReceiveCount)
	}
	logs := f.FinalLogs()
	if strings.Contains(logs, "sekrit-override-123") || strings.Contains(logs, testenv.Password) {
		t.Fatal("a secret reached the logs")
	}
	if n := strings.Count(logs, `"message":"sqs message"`); n != len(bodies)+maxReceiveCount-1 {
		t.Errorf("%d outcome log lines, want %d\n%s", n, len(bodies)+maxReceiveCount-1, logs)
	}
}

func TestOneLoginPerBatch(t *testing.T) {
	w := newWorld(t)
	for i := range 10 {
		w.send(t, good(w, "m"+strconv.Itoa(i)))
	}
	f := w.start(t)
	e, failed := w.pump(t, f)
	if e == nil || len(e.Records) != 10 || len(failed) != 0 {
		t.Fatalf("batch %v failures %v", e, failed)
	}
	c := w.env.Sim.Counts()
	if c.Logins != 1 || c.TargetRequests != 10 {
		t.Fatalf("logins %d, target requests %d: want 1 login for a batch of 10", c.Logins, c.TargetRequests)
	}
	t.Logf("batch of 10: %d login, %d gateway TLS handshakes, %d forwards", c.Logins, c.GatewayTLSHandshakes, c.Forwards)

	// The next batch reuses the token: no login at all.
	for i := range 10 {
		w.send(t, good(w, "n"+strconv.Itoa(i)))
	}
	if e, failed := w.pump(t, f); e == nil || len(e.Records) != 10 || len(failed) != 0 {
		t.Fatalf("second batch %v failures %v", e, failed)
	}
	if c := w.env.Sim.Counts(); c.Logins != 1 {
		t.Fatalf("logins %d after a second batch, want still 1", c.Logins)
	}
	if rs := results(t, drain(t, w.emu.Client, w.result)); len(rs) != 20 {
		t.Fatalf("%d results, want 20", len(rs))
	}
}

// TestCrashLosesNothing kills the process while a forward hangs at the target, then lets
// a fresh process take over: every message must end delivered or dead-lettered.
func TestCrashLosesNothing(t *testing.T) {
	w := newWorld(t)
	sim := w.env.Sim
	sim.Inject(lpsim.Fault{Op: "target", Delay: time.Minute})
	ids := []string{"c0", "c1", "c2", "c3", "c4", "c5"}
	for _, id := range ids {
		w.send(t, good(w, id))
	}
	w.send(t, `{"id":"c-bad","url":"https://elsewhere.example.net/x"}`)
	ids = append(ids, "c-bad")

	f := w.start(t)
	ms := receive(t, w.emu.Client, w.reqURL, 2)
	if len(ms) != len(ids) {
		t.Fatalf("received %d, want %d", len(ms), len(ids))
	}
	payload, _ := json.Marshal(w.toEvent(ms))
	ctx, cancel := context.WithCancel(context.Background())
	invoked := make(chan error, 1)
	go func() {
		_, err := f.Process.Invoke(ctx, payload, 20*time.Second)
		invoked <- err
	}()
	// Wait (bounded) until every good message reached the target: one of them is held.
	deadline := time.Now().Add(20 * time.Second)
	for sim.Counts().TargetRequests < len(ids)-1 {
		if time.Now().After(deadline) {
			t.Fatalf("forwards did not reach the target: %+v\n%s", sim.Counts(), f.Logs())
		}
		select {
		case err := <-invoked:
			t.Fatalf("invocation ended before the crash: %v", err)
		case <-time.After(20 * time.Millisecond): // polling pace
		}
	}
	f.Kill()
	cancel()
	<-invoked
	// Nothing was deleted: the event source deletes only on a successful response.

	f2 := w.start(t)
	seen := map[string]bool{}
	for done := false; !done; {
		w.pump(t, f2)
		for _, r := range results(t, drain(t, w.emu.Client, w.result)) {
			seen[r.ID] = true
		}
		for _, m := range drain(t, w.emu.Client, w.dlq) {
			if attr(m, queue.AttrErrorCode) != "" {
				seen["c-bad"] = true
			} else {
				t.Fatalf("a message was redriven to the DLQ without a reason: %s", aws.ToString(m.Body))
			}
		}
		done = len(seen) == len(ids)
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("after the crash only %v accounted for", seen)
		}
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("%s lost", id)
		}
	}
}

// TestResultTooLargeForQueue: a results queue smaller than the result refuses it
// (InvalidParameterValue); the delivered message must not go to the target again, nor
// be redriven to the DLQ without a reason.
func TestResultTooLargeForQueue(t *testing.T) {
	w := newWorldResults(t, map[string]string{"MaximumMessageSize": "1024"})
	long := strings.Repeat("x", 2000)
	w.send(t, `{"id":"long","url":"`+w.env.MappedURL+`","body":"`+long+`"}`)
	f := w.start(t)
	e, failed := w.pump(t, f)
	if e == nil || len(e.Records) != 1 || len(failed) != 0 {
		t.Fatalf("batch %v, failures %v: a refused result must not retry the message\n%s", e, failed, f.Logs())
	}
	if n := w.env.Sim.Counts().TargetRequests; n != 1 {
		t.Fatalf("%d target requests, want 1", n)
	}
	if rs, dlq := drain(t, w.emu.Client, w.result), drain(t, w.emu.Client, w.dlq); len(rs) != 0 || len(dlq) != 0 {
		t.Fatalf("results %d, DLQ %d", len(rs), len(dlq))
	}
	if logs := f.FinalLogs(); !strings.Contains(logs, "result refused by SQS") || !strings.Contains(logs, "InvalidParameterValue") {
		t.Fatalf("the refusal is not logged:\n%s", logs)
	}
}

// TestDeadLetterCarriesAttributes: the caller's message attributes reach the DLQ
// beside the reason.
func TestDeadLetterCarriesAttributes(t *testing.T) {
	w := newWorld(t)
	w.sendWith(t, `{"id":"bad","url":"https://elsewhere.example.net/x"}`, map[string]types.MessageAttributeValue{
		"trace-id": {DataType: aws.String("String"), StringValue: aws.String("t-123")},
		"blob":     {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}},
	})
	f := w.start(t)
	if e, failed := w.pump(t, f); e == nil || len(failed) != 0 {
		t.Fatalf("batch %v, failures %v\n%s", e, failed, f.Logs())
	}
	dlq := drain(t, w.emu.Client, w.dlq)
	if len(dlq) != 1 {
		t.Fatalf("DLQ has %d messages", len(dlq))
	}
	m := dlq[0]
	if attr(m, queue.AttrErrorCode) != "url_not_allowed" || attr(m, "trace-id") != "t-123" ||
		string(m.MessageAttributes["blob"].BinaryValue) != string([]byte{0, 1, 2}) {
		t.Fatalf("DLQ attributes %+v", m.MessageAttributes)
	}
}
