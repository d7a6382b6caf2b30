// Command forward is the Lambda function behind ANY /forward: it sends a request through
// LivePerson's mTLS gateway and returns the target's answer.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/lpmtls/lpmtls/shared/forward"
	"github.com/lpmtls/lpmtls/shared/lambdaevent"
	"github.com/lpmtls/lpmtls/shared/wiring"
)

func main() {
	deps := wiring.MustFromEnv()
	cfg := deps.Config
	svc := &forward.Service{
		Gateway:  deps.LP,
		Sessions: deps.Sessions,
		Policy: forward.Policy{
			DefaultServiceName: cfg.ServiceName,
			AllowedURLs:        cfg.AllowedURLs,
			MaxBodyBytes:       cfg.MaxBodyBytes,
		},
		Logger: deps.Logger,
	}
	lambda.Start(lambdaevent.Router{Name: "forward", HTTP: svc.HandleHTTP})
}
