package lambdaevent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
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
	lift := func(p []byte) string {
		_, top := detect(p)
		return string(p[:top.body.val.start]) + `""` + string(p[top.body.val.end:])
	}
	lifted := lift(forward)
	// The same event as the tests and benchmarks send it: decoded into aws-lambda-go's
	// type and encoded again (every field, empty structs included).
	var typed events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(forward, &typed); err != nil {
		t.Fatal(err)
	}
	reencoded, err := json.Marshal(typed)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		doc  string
		fast bool
	}{
		{"the repository's forward event, body lifted out", lifted, true},
		{"the repository's forward event, escaped body", string(forward), false},
		{"the repository's forward event, encoded by aws-lambda-go's type", lift(reencoded), true},
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
		{"Cognito identity", `{"requestContext":{"authorizer":{"iam":{"cognitoIdentity":{"amr":["a","b"],"identityId":"i","identityPoolId":"p"}}},"http":{"method":"GET"}}}`, true},
		{"Cognito identity, amr null", `{"requestContext":{"authorizer":{"iam":{"cognitoIdentity":{"amr":null,"identityId":""}}},"http":{"method":"GET"}}}`, true},
		{"Cognito identity, amr of numbers", `{"requestContext":{"authorizer":{"iam":{"cognitoIdentity":{"amr":[1]}}},"http":{"method":"GET"}}}`, false},
		{"empty client certificate, as aws-lambda-go encodes an event", `{"requestContext":{"authentication":{"clientCert":{"clientCertPem":"","issuerDN":"","serialNumber":"","subjectDN":"","validity":{"notAfter":"","notBefore":""}}},"http":{"method":"GET"}}}`, true},
		{"client certificate", `{"requestContext":{"authentication":{"clientCert":{"subjectDN":"CN=a","validity":{"notAfter":"x"}}},"http":{"method":"GET"}}}`, true},
		{"client certificate PEM", `{"requestContext":{"authentication":{"clientCert":{"clientCertPem":"-----BEGIN\nx"}},"http":{"method":"GET"}}}`, false},
		{"client certificate not an object", `{"requestContext":{"authentication":{"clientCert":1},"http":{"method":"GET"}}}`, false},
		{"an event aws-lambda-go encoded", encoded(t), true},
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

// encoded is an event as json.Marshal writes aws-lambda-go's type (every field, the
// client certificate's empty strings included), as the tests and the local API send it.
func encoded(t *testing.T) string {
	b, err := json.Marshal(events.APIGatewayV2HTTPRequest{RawPath: "/forward", Headers: map[string]string{"a": "b"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST"},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserID: "u"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fastHTTP's names are every JSON name of aws-lambda-go's types, in their order, so a
// field a newer aws-lambda-go adds cannot be skipped as unknown.
func TestFastHTTPNamesCoverTheTypes(t *testing.T) {
	cases := []struct {
		v     any
		names []string
	}{
		{events.APIGatewayV2HTTPRequest{}, topNames},
		{events.APIGatewayV2HTTPRequestContext{}, contextNames},
		{events.APIGatewayV2HTTPRequestContextHTTPDescription{}, httpNames},
		{events.APIGatewayV2HTTPRequestContextAuthorizerDescription{}, authorizerNames},
		{events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{}, iamNames},
		{events.APIGatewayV2HTTPRequestContextAuthorizerCognitoIdentity{}, cognitoNames},
		{events.APIGatewayV2HTTPRequestContextAuthentication{}, authenticationNames},
		{events.APIGatewayV2HTTPRequestContextAuthenticationClientCert{}, clientCertNames},
		{events.APIGatewayV2HTTPRequestContextAuthenticationClientCertValidity{}, validityNames},
	}
	for _, c := range cases {
		typ := reflect.TypeOf(c.v)
		var tags []string
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			tags = append(tags, name)
		}
		if !reflect.DeepEqual(tags, c.names) {
			t.Errorf("%s: JSON names %q, fastHTTP reads %q", typ, tags, c.names)
		}
	}
}
