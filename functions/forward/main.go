// Command forward is the Lambda function behind ANY /forward and the request queue: it
// sends a request through LivePerson's mTLS gateway and returns the target's answer (HTTP)
// or records the outcome (SQS).
package main

import (
	"cmp"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/lpmtls/lpmtls/shared/forward"
	"github.com/lpmtls/lpmtls/shared/lambdaevent"
	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/queue"
	"github.com/lpmtls/lpmtls/shared/wiring"
)

func main() {
	// The log lines of an invocation and its metrics leave in one write to stdout.
	out := obs.NewBatch(os.Stdout)
	// This function's metrics are where logins are counted, so only here is the hook set.
	deps := wiring.MustFromEnv(os.Getenv, wiring.Options{OnLogin: forward.RecordLogin, LogOutput: out})
	cfg := deps.Config
	svc := forward.NewService(cfg, deps.LP, deps.Sessions, deps.Logger)
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
	// Metrics go to stdout, which Lambda ships to CloudWatch Logs; the function name is
	// the Lambda runtime's (AWS_LAMBDA_FUNCTION_NAME), read by lambdacontext at start.
	m := &forward.Metrics{
		Namespace:    cfg.MetricsNamespace,
		FunctionName: cmp.Or(lambdacontext.FunctionName, "forward"),
		Out:          out,
		Logger:       deps.Logger,
		LogLevel:     cfg.LogLevel,
	}
	lambda.Start(lambdaevent.Router{Name: "forward", Reply: m.Reply(svc.Reply), SQS: m.SQS(proc.Handle)})
}
