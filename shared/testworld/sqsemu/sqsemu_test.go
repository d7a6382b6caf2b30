package sqsemu_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lpmtls/lpmtls/shared/testworld/sqsemu"
)

// TestRedriveAndAttributes checks the emulator features the queue tests rely on:
// message attributes, ApproximateReceiveCount, and the redrive policy moving a message
// to the dead-letter queue after maxReceiveCount receives.
func TestRedriveAndAttributes(t *testing.T) {
	emu := sqsemu.Start(t)
	ctx := context.Background()
	dlqURL, dlqARN := emu.CreateQueue(t, "dlq", nil)
	qURL, _ := emu.CreateQueue(t, "requests", map[string]string{
		"VisibilityTimeout": "1",
		"RedrivePolicy":     `{"deadLetterTargetArn":"` + dlqARN + `","maxReceiveCount":"2"}`,
	})
	_, err := emu.Client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(qURL), MessageBody: aws.String(`{"id":"a"}`),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"k": {DataType: aws.String("String"), StringValue: aws.String("v")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	receive := func(url string, wait int32) []types.Message {
		out, err := emu.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: wait,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return out.Messages
	}
	for want := 1; want <= 2; want++ {
		ms := receive(qURL, 3)
		if len(ms) != 1 {
			t.Fatalf("receive %d: got %d messages", want, len(ms))
		}
		if got := ms[0].Attributes["ApproximateReceiveCount"]; got != string(rune('0'+want)) {
			t.Fatalf("ApproximateReceiveCount = %q, want %d", got, want)
		}
		if got := aws.ToString(ms[0].MessageAttributes["k"].StringValue); got != "v" {
			t.Fatalf("message attribute k = %q", got)
		}
	}
	// The third receive finds the message over maxReceiveCount and moves it. Each try
	// long-polls 2 s against a 1 s visibility timeout, so one or two tries suffice.
	const maxTries = 5
	for try := 1; len(receive(dlqURL, 0)) == 0; try++ {
		if try > maxTries {
			t.Fatalf("message not in the dead-letter queue after %d receives; fauxqs output:\n%s", maxTries, emu.Logs())
		}
		if ms := receive(qURL, 2); len(ms) != 0 {
			t.Fatalf("message received a third time: %+v", ms[0].Attributes)
		}
	}
}
