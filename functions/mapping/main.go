// Command mapping is the Lambda function behind POST /mapping: it asks LivePerson
// whether certificates are configured for serviceName/url pairs.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/lpmtls/lpmtls/shared/lambdaevent"
	"github.com/lpmtls/lpmtls/shared/mapping"
	"github.com/lpmtls/lpmtls/shared/wiring"
)

func main() {
	deps := wiring.MustFromEnv()
	svc := &mapping.Service{Checker: deps.LP, Sessions: deps.Sessions, Logger: deps.Logger}
	lambda.Start(lambdaevent.Router{Name: "mapping", HTTP: svc.HandleHTTP})
}
