// Command forward is the Lambda function behind ANY /forward and the request queue: it
// sends a request through LivePerson's mTLS gateway and returns the target's answer (HTTP)
// or records the outcome (SQS).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/lpmtls/lpmtls/shared/lambdaevent"
	"github.com/lpmtls/lpmtls/shared/queue"
	"github.com/lpmtls/lpmtls/shared/wiring"
)

func main() {
	deps := wiring.MustFromEnv()
	cfg := deps.Config
	svc := deps.ForwardService()
	// deps.AWS is loaded whenever LP_SECRET_ID or the cache prefix is set, which the
	// template always does in Lambda. Building the client sends nothing; with a zero
	// config (local runs with static credentials) an SQS batch fails per message and
	// stays in its queue rather than being lost.
	proc := &queue.Processor{
		Sender:             svc,
		Policy:             svc.Policy,
		SQS:                sqs.NewFromConfig(deps.AWS),
		DeadLetterQueueURL: cfg.DeadLetterQueueURL,
		ResultsQueueURL:    cfg.ResultsQueueURL,
		Concurrency:        cfg.ForwardConcurrency,
		Logger:             deps.Logger,
	}
	m := deps.ForwardMetrics("forward")
	lambda.Start(lambdaevent.Router{Name: "forward", HTTP: m.HTTP(svc.HandleHTTP), SQS: m.SQS(proc.Handle)})
}
