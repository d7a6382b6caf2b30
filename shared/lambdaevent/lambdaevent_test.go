package lambdaevent

import "testing"

var detectCases = []struct {
	name    string
	payload string
	want    Kind
}{
	{"http api v2", `{"version":"2.0","routeKey":"POST /forward","requestContext":{"http":{"method":"POST","path":"/forward"}}}`, HTTP},
	{"sqs", `{"Records":[{"messageId":"1","eventSource":"aws:sqs","body":"{}"}]}`, SQS},
	{"sns is not sqs", `{"Records":[{"EventSource":"aws:sns"}]}`, Unknown},
	{"scheduler input", `{"targets":[{"serviceName":"WEBHOOKS","url":"https://x.example/"}]}`, Schedule},
	{"eventbridge scheduled event", `{"version":"0","detail-type":"Scheduled Event","source":"aws.events","detail":{}}`, Schedule},
	{"empty object", `{}`, Schedule},
	{"not json", `hello`, Unknown},
	{"array", `[1,2]`, Unknown},
	{"rest api v1", `{"httpMethod":"GET","requestContext":{"stage":"prod"}}`, Unknown},
	{"schedule input with lower-case records", `{"records":[{"eventSource":"aws:sqs"}],"targets":[]}`, Schedule},
	{"schedule input with RequestContext", `{"RequestContext":{"http":{"method":"GET"}}}`, Schedule},
	{"empty Records", `{"Records":[]}`, Unknown},
	{"null", `null`, Unknown},
	{"requestContext null", `{"requestContext":null}`, Unknown},
	{"method null after a value", `{"requestContext":{"http":{"method":"GET","METHOD":null}}}`, HTTP},
	{"method empty last", `{"requestContext":{"http":{"method":"GET","Method":""}}}`, Unknown},
	{"method not a string", `{"requestContext":{"http":{"method":1}}}`, Unknown},
	{"http not an object", `{"requestContext":{"http":"GET"}}`, Unknown},
	{"escaped key", `{"request\u0043ontext":{"http":{"method":"GET"}}}`, HTTP},
	{"sqs, second record a number", `{"Records":[{"eventSource":"aws:sqs"},1]}`, Unknown},
	{"sqs, first record null", `{"Records":[null,{"eventSource":"aws:sqs"}]}`, Unknown},
	{"sqs, escaped source", `{"Records":[{"eventSource":"aws:\u0073qs"}]}`, Unknown},
	{"trailing garbage", `{} x`, Unknown},
	{"duplicate requestContext, last wins", `{"requestContext":{"http":{"method":"GET"}},"requestContext":{}}`, Unknown},
	{"custom resource delete", `{"RequestType":"Delete","ResponseURL":"https://s3.example/x","StackId":"arn:aws:cloudformation:us-east-1:1:stack/s/1","RequestId":"r","ResourceType":"Custom::CacheCleanup","LogicalResourceId":"CacheCleanup","PhysicalResourceId":"p","ResourceProperties":{"ServiceToken":"arn"}}`, CustomResource},
	{"schedule input naming only RequestType", `{"RequestType":"Delete"}`, Schedule},
	{"custom resource names twice, one missing", `{"RequestType":"a","RequestType":"b","StackId":"s"}`, Schedule},
}

func TestDetect(t *testing.T) {
	for _, c := range detectCases {
		t.Run(c.name, func(t *testing.T) {
			if got := Detect([]byte(c.payload)); got != c.want {
				t.Fatalf("Detect = %v, want %v", got, c.want)
			}
			if old := detectV1([]byte(c.payload)); old != c.want {
				t.Fatalf("the old Detect = %v, want %v", old, c.want)
			}
		})
	}
}
