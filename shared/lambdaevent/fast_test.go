package lambdaevent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// fastHTTP takes the events API Gateway sends and declines whatever encoding/json could
// read otherwise; what it takes, it decodes as encoding/json does (FuzzDecode checks
// the same on arbitrary payloads, through DecodeHTTP).
func TestFastHTTP(t *testing.T) {
	forward, err := os.ReadFile(filepath.Join("..", "..", "events", "forward.json"))
	if err != nil {
		t.Fatal(err)
	}
	// What DecodeHTTP hands fastHTTP: the event with its body lifted out.
	_, top := detect(forward)
	lifted := string(forward[:top.body.val.start]) + `""` + string(forward[top.body.val.end:])
	cases := []struct {
		name string
		doc  string
		fast bool
	}{
		{"the repository's forward event, body lifted out", lifted, true},
		{"the repository's forward event, escaped body", string(forward), false},
		{"minimal", `{"requestContext":{"http":{"method":"GET"}}}`, true},
		{"empty maps and cookies", `{"headers":{},"cookies":[],"pathParameters":{},"requestContext":{"http":{"method":"GET"}}}`, true},
		{"nulls", `{"headers":null,"cookies":null,"body":null,"requestContext":{"authorizer":null,"authentication":null,"http":{"method":"GET","path":null}}}`, true},
		{"unknown names", `{"x":[1,{"y":2}],"requestContext":{"z":true,"http":{"method":"GET"}}}`, true},
		{"IAM authorizer", `{"requestContext":{"authorizer":{"iam":{"accessKey":"A","principalOrgId":null}},"http":{"method":"GET"}}}`, true},
		{"timeEpoch", `{"requestContext":{"timeEpoch":-17,"http":{"method":"GET"}}}`, true},
		{"non-ASCII", `{"rawPath":"/é","requestContext":{"http":{"method":"GET"}}}`, true},
		{"name in other case", `{"Headers":{"a":"b"},"requestContext":{"http":{"method":"GET"}}}`, false},
		{"escaped name", `{"head\u0065rs":{"a":"b"},"requestContext":{"http":{"method":"GET"}}}`, false},
		{"name twice", `{"rawPath":"/a","rawPath":"/b","requestContext":{"http":{"method":"GET"}}}`, false},
		{"escaped string", `{"rawPath":"/a\"b","requestContext":{"http":{"method":"GET"}}}`, false},
		{"escaped header name", `{"headers":{"\u0061":"b"},"requestContext":{"http":{"method":"GET"}}}`, false},
		{"invalid UTF-8", "{\"rawPath\":\"/\xff\",\"requestContext\":{\"http\":{\"method\":\"GET\"}}}", false},
		{"null header value", `{"headers":{"a":null},"requestContext":{"http":{"method":"GET"}}}`, false},
		{"number for a string", `{"version":2,"requestContext":{"http":{"method":"GET"}}}`, false},
		{"fraction for timeEpoch", `{"requestContext":{"timeEpoch":1.5,"http":{"method":"GET"}}}`, false},
		{"JWT authorizer", `{"requestContext":{"authorizer":{"jwt":{"claims":{}}},"http":{"method":"GET"}}}`, false},
		{"Cognito identity", `{"requestContext":{"authorizer":{"iam":{"cognitoIdentity":{}}},"http":{"method":"GET"}}}`, false},
		{"client certificate", `{"requestContext":{"authentication":{"clientCert":{}},"http":{"method":"GET"}}}`, false},
		{"trailing garbage", `{} x`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got events.APIGatewayV2HTTPRequest
			if fast := fastHTTP([]byte(c.doc), &got); fast != c.fast {
				t.Fatalf("fastHTTP = %v, want %v", fast, c.fast)
			}
			if !c.fast {
				return
			}
			var want events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal([]byte(c.doc), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("fastHTTP\n%+v\nencoding/json\n%+v", got, want)
			}
		})
	}
}
