package lambdaevent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/events"
)

// Router is a lambda.Handler that sends each event to the handler for its kind. A kind
// with no handler is an invocation error naming what arrived, not a silent no-op.
type Router struct {
	Name     string
	HTTP     func(context.Context, *events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse
	SQS      func(context.Context, *events.SQSEvent) (events.SQSEventResponse, error)
	Schedule func(context.Context, json.RawMessage) (any, error)
	// CustomResource must answer CloudFormation at the request's ResponseURL itself.
	CustomResource func(context.Context, *cfn.Event) (any, error)
}

// Invoke implements lambda.Handler.
func (r Router) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	kind := Detect(payload)
	switch {
	case kind == HTTP && r.HTTP != nil:
		var e events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(payload, &e); err != nil {
			return nil, fmt.Errorf("%s: malformed API Gateway event: %w", r.Name, err)
		}
		return json.Marshal(r.HTTP(ctx, &e))
	case kind == SQS && r.SQS != nil:
		var e events.SQSEvent
		if err := json.Unmarshal(payload, &e); err != nil {
			return nil, fmt.Errorf("%s: malformed SQS event: %w", r.Name, err)
		}
		resp, err := r.SQS(ctx, &e)
		if err != nil {
			return nil, err
		}
		return json.Marshal(resp)
	case kind == CustomResource && r.CustomResource != nil:
		var e cfn.Event
		if err := json.Unmarshal(payload, &e); err != nil {
			return nil, fmt.Errorf("%s: malformed custom resource event: %w", r.Name, err)
		}
		out, err := r.CustomResource(ctx, &e)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	case kind == Schedule && r.Schedule != nil:
		out, err := r.Schedule(ctx, payload)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	}
	return nil, fmt.Errorf("%s: unsupported event (%s)", r.Name, kind)
}
