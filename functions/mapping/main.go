// Command mapping is the Lambda function behind POST /mapping: it asks LivePerson
// whether certificates are configured for serviceName/url pairs. Invoked by an
// EventBridge Scheduler schedule, it runs the mapping health check and the certificate
// expiry watch instead; invoked by CloudFormation, it serves the stack's
// Custom::CacheCleanup resource.
package main

import (
	"cmp"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/lpmtls/lpmtls/shared/cachecleanup"
	"github.com/lpmtls/lpmtls/shared/certificates"
	"github.com/lpmtls/lpmtls/shared/health"
	"github.com/lpmtls/lpmtls/shared/lambdaevent"
	"github.com/lpmtls/lpmtls/shared/mapping"
	"github.com/lpmtls/lpmtls/shared/wiring"
)

func main() {
	deps := wiring.MustFromEnv(os.Getenv, wiring.Options{})
	cfg := deps.Config
	svc := &mapping.Service{Checker: deps.LP, Sessions: deps.Sessions, Logger: deps.Logger}
	checker := &health.Checker{
		Mapping:      svc,
		Listed:       &mapping.Objects{LP: deps.LP, Sessions: deps.Sessions},
		Targets:      cfg.HealthcheckMappings,
		WarningDays:  cfg.CertExpiryWarningDays,
		AccountID:    deps.AccountID,
		Namespace:    cfg.MetricsNamespace,
		FunctionName: cmp.Or(lambdacontext.FunctionName, "mapping"),
		Out:          os.Stdout,
		Logger:       deps.Logger,
		LogLevel:     cfg.LogLevel,
	}
	if cfg.CertExpiryWarningDays > 0 { // 0 turns the expiry watch off
		checker.Certificates = &certificates.Service{Lister: deps.LP, Sessions: deps.Sessions,
			Records: certificates.NewRecords(deps.Params, cfg.CachePrefix)}
	}
	cleanup := cachecleanup.New(deps.Params, cfg.CachePrefix, deps.Logger)
	lambdaevent.Start(lambdaevent.Router{Name: "mapping", HTTP: svc.HandleHTTP, Schedule: checker.Handle,
		CustomResource: cleanup.Handle})
}
