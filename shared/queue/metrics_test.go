package queue

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/forward"
	"github.com/lpmtls/lpmtls/shared/lp"
	"github.com/lpmtls/lpmtls/shared/testworld/emfdoc"
)

// A batch's outcomes are counted with the HTTP route's classification: an invalid
// message is a client error (though the queue dead-letters it like a permanent one).
func TestBatchMetrics(t *testing.T) {
	sender := &fakeSender{answers: map[string]func() (*lp.ForwardResponse, error){
		"/busy": lpErr(lp.KindThrottled, 429),
		"/auth": lpErr(lp.KindAuth, 401),
		"/5xx":  status(503),
	}}
	p := &Processor{Sender: sender, Policy: testPolicy, SQS: &fakeSQS{}, DeadLetterQueueURL: dlqURL, Logger: slog.New(slog.DiscardHandler)}
	var out bytes.Buffer
	m := &forward.Metrics{FunctionName: "f", Out: &out}
	batch := &events.SQSEvent{Records: []events.SQSMessage{
		record("1", msgTo("/ok")), record("2", msgTo("/ok")), record("3", msgTo("/busy")),
		record("4", msgTo("/auth")), record("5", msgTo("/5xx")), record("6", `{"url":`),
	}}
	if _, err := m.SQS(p.Handle)(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	outcomes, codes := map[string]float64{}, map[string]float64{}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		d, err := emfdoc.Parse([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range d.Series() {
			switch {
			case s.Name == forward.MetricForwards && s.Dimensions[forward.DimensionOutcome] != "":
				outcomes[s.Dimensions[forward.DimensionOutcome]] += d.Sum(s.Name)
			case s.Name == forward.MetricErrors:
				codes[s.Dimensions[forward.DimensionErrorCode]] += d.Sum(s.Name)
			}
		}
	}
	want := map[forward.Outcome]float64{forward.OutcomeDelivered: 2, forward.OutcomeTransient: 2, forward.OutcomePermanent: 1, forward.OutcomeClientError: 1}
	if len(outcomes) != len(want) {
		t.Fatalf("outcomes %v, want %v", outcomes, want)
	}
	for k, v := range want {
		if outcomes[string(k)] != v {
			t.Fatalf("outcomes %v, want %v", outcomes, want)
		}
	}
	if codes["liveperson_throttled"] != 1 || codes["liveperson_auth_failed"] != 1 || codes[CodeTargetStatus] != 1 || codes["invalid_json"] != 1 || len(codes) != 4 {
		t.Fatalf("codes %v", codes)
	}
}
