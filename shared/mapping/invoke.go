package mapping

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/lambdaevent"
)

// Invoke makes Service a lambda.Handler that tells its event sources apart by shape.
func (s *Service) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	switch kind := lambdaevent.Detect(payload); kind {
	case lambdaevent.HTTP:
		var e events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(payload, &e); err != nil {
			return nil, fmt.Errorf("mapping: malformed API Gateway event: %w", err)
		}
		return json.Marshal(s.HandleHTTP(ctx, &e))
	default:
		return nil, fmt.Errorf("mapping: unsupported event (%s): expected an API Gateway HTTP API (2.0) event", kind)
	}
}
