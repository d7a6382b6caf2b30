package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// Nothing refused ever reaches LivePerson: every bypass attempt of the shared table,
// sent to the built forward bootstrap over the HTTP route and as SQS messages, leaves
// the simulator's counters at zero, while the table's accepted URLs do get through
// (so the allow-list is really in force and the simulator really counting).
func TestBypassAttemptsNeverReachLivePerson(t *testing.T) {
	env := testenv.New(t)
	origin, _, _ := strings.Cut(strings.TrimPrefix(env.MappedURL, "https://"), "/")
	b := testenv.LoadBypass(t, "https://"+origin)
	f := env.Start(t, "forward", "FORWARD_ALLOWED_URLS="+strings.Join(b.Allowed, ","))

	for _, a := range b.Refused {
		ev := forwardEvent(t, a.URL)
		for k, v := range a.Headers {
			if strings.EqualFold(k, "Cookie") {
				// API Gateway delivers cookies in their own array, which wins over a header.
				ev.Cookies = []string{v}
				continue
			}
			testenv.SetHeader(&ev, k, v)
		}
		if a.Override != "" {
			testenv.SetHeader(&ev, "lp-authorization-override", a.Override)
		}
		if a.ServiceName != "" {
			testenv.SetHeader(&ev, "lp-service-name", a.ServiceName)
		}
		r := f.InvokeHTTP(t, ev)
		if r.StatusCode != a.Status || code(t, r) != a.Code || r.Headers["LP-Error-Source"] != "lpmtls" {
			t.Errorf("HTTP %s: got %d %s, want %d %s", a.Name, r.StatusCode, r.Body, a.Status, a.Code)
		}
	}

	// The queue: each attempt as a message, ten to a batch; without a DLQ a permanent
	// failure stays in the queue as a batch item failure, so every one must come back.
	var records []events.SQSMessage
	for i, a := range b.Refused {
		msg := map[string]any{"id": a.Name, "url": a.URL, "body": "{}"}
		if len(a.Headers) > 0 {
			msg["headers"] = a.Headers
		}
		if a.Override != "" {
			msg["authorizationOverride"] = a.Override
		}
		if a.ServiceName != "" {
			msg["serviceName"] = a.ServiceName
		}
		body, err := json.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, events.SQSMessage{
			MessageId: "m-" + strconv.Itoa(i), ReceiptHandle: "rh-" + strconv.Itoa(i), Body: string(body),
			Attributes:     map[string]string{"ApproximateReceiveCount": "1"},
			EventSource:    "aws:sqs",
			EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:lpmtls-RequestQueue", AWSRegion: "us-east-1",
		})
	}
	failed := 0
	for len(records) > 0 {
		n := min(10, len(records))
		var resp events.SQSEventResponse
		if err := json.Unmarshal(f.Invoke(t, events.SQSEvent{Records: records[:n]}), &resp); err != nil {
			t.Fatal(err)
		}
		failed += len(resp.BatchItemFailures)
		records = records[n:]
	}
	if failed != len(b.Refused) {
		t.Errorf("SQS: %d of %d refused messages came back as batch item failures", failed, len(b.Refused))
	}

	if c := env.Sim.Counts(); c.Forwards != 0 || c.TargetRequests != 0 || c.Logins != 0 || c.Mappings != 0 {
		t.Fatalf("refused requests reached LivePerson: %+v\nlogs:\n%s", c, f.Logs())
	}

	// Controls: the accepted URLs on the simulator's origin are forwarded.
	want := 0
	for _, u := range b.Accepted {
		if !strings.Contains(u, origin) {
			continue // api.brand.example does not exist here
		}
		want++
		f.InvokeHTTP(t, forwardEvent(t, u))
	}
	if c := env.Sim.Counts(); c.Forwards != want || want == 0 {
		t.Fatalf("accepted URLs: %d forwards, want %d (%+v)", c.Forwards, want, c)
	}
	t.Logf("%d bypass attempts refused over HTTP and %d over SQS with 0 LivePerson calls; %d accepted controls forwarded",
		len(b.Refused), len(b.Refused), want)
}
