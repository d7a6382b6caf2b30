package forward

import (
	"log/slog"

	"github.com/lpmtls/lpmtls/shared/config"
)

// NewService is the forward route's service for cfg as every entry point (the Lambda
// function, the local API, the benchmarks) builds it, so their policies cannot drift
// apart.
func NewService(cfg *config.Config, gw Gateway, sessions Sessions, logger *slog.Logger) *Service {
	return &Service{
		Gateway:  gw,
		Sessions: sessions,
		Policy: Policy{
			DefaultServiceName: cfg.ServiceName,
			AllowedURLs:        cfg.AllowedURLs,
			MaxBodyBytes:       cfg.MaxBodyBytes,
		},
		Logger: logger,
	}
}
