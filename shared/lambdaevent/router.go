package lambdaevent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apigw"
)

// Router is a lambda.Handler that sends each event to the handler for its kind. A kind
// with no handler is an invocation error naming what arrived, not a silent no-op.
//
// The payload is read once: Detect names the kind in place, the typed decode runs once
// (DecodeHTTP, DecodeSQS), and an HTTP answer is written in one pass
// (apigw.Reply.AppendJSON).
type Router struct {
	Name string
	// Reply answers an API Gateway event with the body's bytes; HTTP, used when Reply
	// is nil, with aws-lambda-go's response type. Neither may read the event after it
	// returns: its Body may share the payload's memory (DecodeHTTP).
	Reply    func(context.Context, *events.APIGatewayV2HTTPRequest) apigw.Reply
	HTTP     func(context.Context, *events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse
	SQS      func(context.Context, *events.SQSEvent) (events.SQSEventResponse, error)
	Schedule func(context.Context, json.RawMessage) (any, error)
	// CustomResource must answer CloudFormation at the request's ResponseURL itself.
	CustomResource func(context.Context, *cfn.Event) (any, error)
}

// Invoke implements lambda.Handler.
func (r Router) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	kind, top := detect(payload)
	switch {
	case kind == HTTP && (r.Reply != nil || r.HTTP != nil):
		e, err := decodeHTTP(payload, top)
		if err != nil {
			return nil, fmt.Errorf("%s: malformed API Gateway event: %w", r.Name, err)
		}
		var reply apigw.Reply
		if r.Reply != nil {
			reply = r.Reply(ctx, e)
		} else {
			reply = apigw.ReplyOf(r.HTTP(ctx, e))
		}
		return reply.AppendJSON(nil), nil
	case kind == SQS && r.SQS != nil:
		e, err := DecodeSQS(payload)
		if err != nil {
			return nil, fmt.Errorf("%s: malformed SQS event: %w", r.Name, err)
		}
		resp, err := r.SQS(ctx, e)
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
