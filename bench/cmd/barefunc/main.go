// Command barefunc is the floor BenchmarkWarmPath sets beside the forward function:
// aws-lambda-go's loop and typed decode of an HTTP API event, answering the event's body
// back as it came, with no network call of its own. What it costs per invocation (CPU,
// system calls) is the Runtime API exchange and the Go runtime's share, which every Go
// function pays whatever its handler does. Its Runtime API connection gets the write
// buffer the functions' own gets (lambdaevent.TuneRuntimeAPI), so the floor is theirs.
package main

import (
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/lpmtls/lpmtls/shared/lambdaevent"
)

func main() {
	lambdaevent.TuneRuntimeAPI(http.DefaultTransport)
	lambda.Start(func(e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/octet-stream"},
			Body: e.Body, IsBase64Encoded: e.IsBase64Encoded}, nil
	})
}
