// Command mapping is the Lambda function behind POST /mapping: it asks LivePerson
// whether certificates are configured for serviceName/url pairs. Invoked by an
// EventBridge Scheduler schedule, it runs the mapping health check and the certificate
// expiry watch instead.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/lpmtls/lpmtls/shared/health"
	"github.com/lpmtls/lpmtls/shared/lambdaevent"
	"github.com/lpmtls/lpmtls/shared/wiring"
)

func main() {
	deps := wiring.MustFromEnv()
	svc := deps.MappingService()
	checker := &health.Checker{
		Mapping:     svc,
		Targets:     deps.Config.HealthcheckMappings,
		WarningDays: deps.Config.CertExpiryWarningDays,
		AccountID:   deps.AccountID,
		Namespace:   deps.Config.MetricsNamespace,
		Out:         os.Stdout,
		Logger:      deps.Logger,
		LogLevel:    deps.Config.LogLevel,
	}
	if deps.Config.CertExpiryWarningDays > 0 { // 0 turns the expiry watch off
		checker.Certificates = deps.CertificateService()
	}
	lambda.Start(lambdaevent.Router{Name: "mapping", HTTP: svc.HandleHTTP, Schedule: checker.Handle})
}
