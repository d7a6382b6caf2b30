package faultmatrix_test

// The world of one cell and the four column drivers. Each cell gets its own simulator
// and AWS fakes (in-process, milliseconds to start), so its faults and counters are its
// own and cells run in parallel; the bootstrap binaries are built once per test binary
// and fauxqs is started once, each cell using queues of its own.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/health"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/queue"
	"github.com/lpmtls/lpmtls/shared/testworld/runtimeapi"
	"github.com/lpmtls/lpmtls/shared/testworld/sqsemu"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

type column int

const (
	colForward column = iota
	colMapping
	colSQS
	colSchedule
)

var columns = []column{colForward, colMapping, colSQS, colSchedule}

func (c column) String() string {
	return [...]string{"http_forward", "http_mapping", "sqs_batch", "scheduled_check"}[c]
}

func (c column) title() string {
	return [...]string{"HTTP forward", "HTTP mapping", "SQS batch", "Scheduled check"}[c]
}

// gatewayOp is the simulator endpoint a "gateway" fault hits for this column: the
// forward for the forward function, the mapping check for the mapping function.
func (c column) gatewayOp() string {
	if c == colForward || c == colSQS {
		return "forward"
	}
	return "mapping"
}

// Invocation timeouts (the deadline the function sees). Ordinary cells use Lambda's
// 30 s; "past the deadline" cells use short ones, so a slow fault costs seconds rather
// than half a minute, yet leaves the healthy calls of the cell room on a loaded machine.
// SQS needs more: the processor keeps 2 s for recording.
const (
	normalTimeout  = 30 * time.Second
	shortHTTP      = 3 * time.Second
	shortSQS       = 6 * time.Second
	slowSSMHTTP    = 4 * time.Second
	slowSSMSQS     = 6 * time.Second
	slowFaultDelay = time.Minute // held until the caller gives up
)

// cell is one fault × column.
type cell struct {
	t   *testing.T
	col column
	env *testenv.Env
	emu *sqsemu.Emulator
	// SQS queues of this cell.
	reqURL, reqARN, dlqURL, resultsURL string
	procs                              []*testenv.Function
	unmapped                           string
	// bigHeader, when set, is the size of an X-Big header on message m0.
	bigHeader int
	// relayed is a non-200 status the target answers on purpose; a result carrying it
	// counts as delivered.
	relayed int
}

var queueSeq atomic.Int64

func newCell(t *testing.T, col column, emu *sqsemu.Emulator) *cell {
	c := &cell{t: t, col: col, env: testenv.New(t), emu: emu}
	c.unmapped = c.env.Sim.TargetURL("/not/mapped")
	if col == colSQS {
		n := queueSeq.Add(1)
		var dlqARN string
		c.dlqURL, dlqARN = emu.CreateQueue(t, fmt.Sprintf("fm%d-dlq", n), nil)
		c.resultsURL, _ = emu.CreateQueue(t, fmt.Sprintf("fm%d-results", n), nil)
		c.reqURL, c.reqARN = emu.CreateQueue(t, fmt.Sprintf("fm%d-requests", n), map[string]string{
			"VisibilityTimeout": "1",
			"RedrivePolicy":     `{"deadLetterTargetArn":"` + dlqARN + `","maxReceiveCount":"` + fmt.Sprint(maxReceiveCount) + `"}`,
		})
	}
	return c
}

// maxReceiveCount is high enough that a 6 s login backoff (about 7 receives at a 1 s
// visibility timeout) does not redrive a message: cells show where a message ends
// because of the fault, not because of the test's short visibility timeout.
const maxReceiveCount = 12

// start runs the column's bootstrap with the deployed function's environment.
func (c *cell) start() *testenv.Function {
	c.t.Helper()
	name, extra := "forward", []string{"AWS_LAMBDA_LOG_LEVEL=INFO"}
	switch c.col {
	case colMapping:
		name = "mapping"
	case colSchedule:
		name = "mapping"
		b, _ := json.Marshal([]lp.Mapping{{ServiceName: testenv.ServiceName, URL: c.env.MappedURL}, {ServiceName: testenv.ServiceName, URL: c.unmapped}})
		extra = append(extra, "HEALTHCHECK_TARGETS="+string(b))
	case colSQS:
		extra = append(extra, c.emu.Env()...)
		extra = append(extra, "DLQ_URL="+c.dlqURL, "RESULTS_QUEUE_URL="+c.resultsURL, "FORWARD_CONCURRENCY=10")
	}
	f := c.env.Start(c.t, name, extra...)
	c.procs = append(c.procs, f)
	return f
}

// proc is the newest running process, started on first use.
func (c *cell) proc() *testenv.Function {
	if n := len(c.procs); n > 0 {
		select {
		case <-c.procs[n-1].Exited():
		default:
			return c.procs[n-1]
		}
	}
	return c.start()
}

// observed is what a column's caller saw.
type observed struct {
	// HTTP answer (forward, mapping).
	status                            int
	code, message, source, retryAfter string
	header                            map[string]string
	body                              string
	// fnError is the function error type when the invocation failed.
	fnError string
	// Scheduled check: the returned summary (the HealthCheckFailed value is read from
	// the logs by metricOf).
	sum health.Summary
	// SQS: the first batch, then where every message ended.
	first    [3]int // delivered, batch item failures, dead-lettered
	final    [2]int // distinct messages delivered, dead-lettered
	dlqCodes map[string]int
}

// invoke sends one event to the newest process; with kill set it kills the process as
// soon as kill reports the invocation is mid-flight.
func (c *cell) invoke(payload []byte, timeout time.Duration, kill func() bool) runtimeapi.Result {
	c.t.Helper()
	f := c.proc()
	if kill == nil {
		return f.InvokeWithin(c.t, payload, timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type out struct {
		res runtimeapi.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := f.Process.Invoke(ctx, payload, timeout)
		done <- out{res, err}
	}()
	limit := time.Now().Add(30 * time.Second)
	for !kill() {
		if time.Now().After(limit) {
			c.t.Fatalf("the invocation never reached the point to kill it: %+v\n%s", c.env.Sim.Counts(), f.Logs())
		}
		select {
		case o := <-done:
			c.t.Fatalf("the invocation ended before the kill: %+v %v", o.res, o.err)
		case <-time.After(10 * time.Millisecond): // polling pace, not synchronisation
		}
	}
	f.Kill()
	o := <-done
	if o.err != nil {
		c.t.Fatalf("invoke: %v", o.err)
	}
	return o.res
}

func (c *cell) httpEvent() []byte {
	c.t.Helper()
	var e events.APIGatewayV2HTTPRequest
	if c.col == colForward {
		e = testenv.HTTPEvent(c.t, "forward.json")
		testenv.SetHeader(&e, "lp-forward-url", c.env.MappedURL)
	} else {
		e = testenv.HTTPEvent(c.t, "mapping.json")
		e.Body = `[{"serviceName":"` + testenv.ServiceName + `","url":"` + c.env.MappedURL + `"}]`
	}
	b, err := json.Marshal(e)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// runHTTP invokes the forward or mapping route once and reads the answer.
func (c *cell) runHTTP(timeout time.Duration, kill func() bool) observed {
	c.t.Helper()
	res := c.invoke(c.httpEvent(), timeout, kill)
	var o observed
	if res.Error != nil {
		o.fnError = res.Error.ErrorType
		return o
	}
	var r events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(res.Payload, &r); err != nil {
		c.t.Fatalf("answer %s: %v", res.Payload, err)
	}
	o.status, o.body, o.header = r.StatusCode, r.Body, r.Headers
	o.source, o.retryAfter = r.Headers["LP-Error-Source"], r.Headers["Retry-After"]
	if o.source != "" {
		var b apierr.Body
		if err := json.Unmarshal([]byte(r.Body), &b); err != nil || b.Error.Message == "" {
			c.t.Fatalf("lpmtls error without the JSON shape: %s", r.Body)
		}
		o.code, o.message = b.Error.Code, b.Error.Message
	}
	return o
}

// runSchedule invokes the scheduled check with an EventBridge Scheduler input of {}
// (HEALTHCHECK_TARGETS: one mapped, one unmapped target).
func (c *cell) runSchedule(timeout time.Duration, kill func() bool) observed {
	c.t.Helper()
	res := c.invoke([]byte(`{}`), timeout, kill)
	var o observed
	if res.Error != nil {
		o.fnError = res.Error.ErrorType
	} else if err := json.Unmarshal(res.Payload, &o.sum); err != nil {
		c.t.Fatalf("summary %s: %v", res.Payload, err)
	}
	return o
}

// metricOf reads the HealthCheckFailed value of the last EMF document in logs that
// carries it (a run also writes one document per certificate, without it).
func metricOf(logs string) string {
	v := ""
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"_aws"`) {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if f, ok := m[health.MetricFailed]; ok {
			v = fmt.Sprint(f)
		}
	}
	return v
}

// sendMessages queues n forward requests to the mapped target, ids m0..m(n-1).
func (c *cell) sendMessages(n int) {
	c.t.Helper()
	for i := range n {
		extra := ""
		if i == 0 && c.bigHeader > 0 {
			extra = `,"X-Big":"` + strings.Repeat("a", c.bigHeader) + `"`
		}
		body := fmt.Sprintf(`{"id":"m%d","url":%q,"headers":{"Content-Type":"application/json"%s},"body":"{\"n\":%d}","authorizationOverride":"Bearer sekrit-override-123"}`, i, c.env.MappedURL, extra, i)
		if _, err := c.emu.Client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(c.reqURL), MessageBody: aws.String(body)}); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *cell) receive(url string, wait int32) []types.Message {
	c.t.Helper()
	out, err := c.emu.Client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: wait,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return out.Messages
}

func (c *cell) delete(url, receipt string) {
	if _, err := c.emu.Client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String(receipt)}); err != nil {
		c.t.Fatal(err)
	}
}

// sqsEvent is what Lambda's SQS poller sends for these messages.
func (c *cell) sqsEvent(ms []types.Message) []byte {
	e := events.SQSEvent{}
	for _, m := range ms {
		e.Records = append(e.Records, events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
			Body: aws.ToString(m.Body), Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: m.Attributes,
			EventSource: "aws:sqs", EventSourceARN: c.reqARN, AWSRegion: sqsemu.Region,
		})
	}
	b, err := json.Marshal(e)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// pump is one poll of the event source mapping, as Lambda runs it: receive a batch,
// invoke, and delete the records that are not batch item failures; after a function
// error nothing is deleted and the whole batch comes back after the visibility timeout.
// It returns the batch size, the failures and the function error type.
func (c *cell) pump(timeout time.Duration, kill func() bool) (n int, failures []string, fnError string) {
	c.t.Helper()
	ms := c.receive(c.reqURL, 1)
	if len(ms) == 0 {
		return 0, nil, ""
	}
	res := c.invoke(c.sqsEvent(ms), timeout, kill)
	if res.Error != nil {
		return len(ms), nil, res.Error.ErrorType
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(res.Payload, &resp); err != nil {
		c.t.Fatalf("SQS answer %s: %v", res.Payload, err)
	}
	for _, f := range resp.BatchItemFailures {
		failures = append(failures, f.ItemIdentifier)
	}
	for _, m := range ms {
		if !slices.Contains(failures, aws.ToString(m.MessageId)) {
			c.delete(c.reqURL, aws.ToString(m.ReceiptHandle))
		}
	}
	return len(ms), failures, ""
}

// tally drains the results queue and the DLQ into the running sets of message ids
// (the "id" of the request) that were delivered and dead-lettered.
func (c *cell) tally(delivered, dead map[string]bool, codes map[string]int) {
	c.t.Helper()
	for {
		ms := c.receive(c.resultsURL, 0)
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			var r queue.Result
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r); err != nil {
				c.t.Fatalf("result %s: %v", aws.ToString(m.Body), err)
			}
			if r.Error == nil {
				if c.relayed != 0 && r.Status == c.relayed {
					delivered[r.ID] = true
				} else if r.Status != 200 || r.Body != fmt.Sprintf(`{"n":%s}`, strings.TrimPrefix(r.ID, "m")) {
					c.t.Fatalf("a delivered message has the wrong answer: %+v", r)
				}
				delivered[r.ID] = true
			}
			c.delete(c.resultsURL, aws.ToString(m.ReceiptHandle))
		}
	}
	for {
		ms := c.receive(c.dlqURL, 0)
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			var probe struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal([]byte(aws.ToString(m.Body)), &probe)
			dead[probe.ID] = true
			code := aws.ToString(m.MessageAttributes[queue.AttrErrorCode].StringValue)
			if code == "" {
				code = "redrive"
			}
			codes[code]++
			c.delete(c.dlqURL, aws.ToString(m.ReceiptHandle))
		}
	}
}

// depth is how many messages the request queue holds, visible or in flight.
func (c *cell) depth() int {
	c.t.Helper()
	out, err := c.emu.Client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(c.reqURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	if err != nil {
		c.t.Fatal(err)
	}
	n := 0
	for _, v := range out.Attributes {
		var k int
		fmt.Sscan(v, &k)
		n += k
	}
	return n
}

// runSQS queues n messages, pumps one batch under the fault, lets heal end it, then
// pumps until every message is accounted for: delivered (a result) or dead-lettered.
func (c *cell) runSQS(n int, timeout time.Duration, kill func() bool, heal func()) observed {
	c.t.Helper()
	c.sendMessages(n)
	var o observed
	got, failures, fnErr := c.pump(timeout, kill)
	if got != n {
		c.t.Fatalf("first batch has %d messages, want %d", got, n)
	}
	delivered, dead := map[string]bool{}, map[string]bool{}
	o.dlqCodes = map[string]int{}
	c.tally(delivered, dead, o.dlqCodes)
	o.fnError = fnErr
	if fnErr == "" {
		o.first = [3]int{len(delivered), len(failures), len(dead)}
	}
	if heal != nil {
		heal()
	}
	limit := time.Now().Add(60 * time.Second)
	for len(delivered)+len(dead) < n || c.depth() > 0 {
		if time.Now().After(limit) {
			c.t.Fatalf("after a minute only %d delivered and %d dead-lettered of %d\n%s", len(delivered), len(dead), n, c.proc().Logs())
		}
		c.pump(normalTimeout, nil)
		c.tally(delivered, dead, o.dlqCodes)
	}
	for id := range dead {
		if delivered[id] {
			c.t.Fatalf("message %s both delivered and dead-lettered", id)
		}
	}
	o.final = [2]int{len(delivered), len(dead)}
	return o
}
