package health

import "github.com/lpmtls/lpmtls/shared/metrics"

// The EMF writer is shared with the forward function's metrics; these names keep the
// health check's documents spelt as before.
type (
	// Metric is one value of an Embedded Metric Format document.
	Metric = metrics.Metric
	// EMF is one CloudWatch Embedded Metric Format document.
	EMF = metrics.EMF
)
