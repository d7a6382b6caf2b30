package lambdaevent

import "encoding/json"

// detectV1 is Detect as it was before it scanned in place: it reads just enough of payload to name its kind. Keys are matched exactly, as
// the event formats spell them (encoding/json would match "records" to Records), so a
// schedule input that happens to use such a word is still a schedule input.
func detectV1(payload []byte) Kind {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil || top == nil {
		return Unknown
	}
	if rc, ok := top["requestContext"]; ok {
		var ctx map[string]json.RawMessage
		if json.Unmarshal(rc, &ctx) == nil {
			var http struct {
				Method string `json:"method"`
			}
			if h, ok := ctx["http"]; ok && json.Unmarshal(h, &http) == nil && http.Method != "" {
				return HTTP
			}
		}
		// REST API v1 and ALB events: not served, and not a schedule either.
		return Unknown
	}
	if recs, ok := top["Records"]; ok {
		var rs []map[string]json.RawMessage
		if json.Unmarshal(recs, &rs) == nil && len(rs) > 0 && string(rs[0]["eventSource"]) == `"aws:sqs"` {
			return SQS
		}
		return Unknown // SNS, S3, DynamoDB streams, ...
	}
	if _, ok := top["httpMethod"]; ok {
		return Unknown
	}
	for _, k := range []string{"RequestType", "ResponseURL", "StackId"} {
		if _, ok := top[k]; !ok {
			return Schedule
		}
	}
	return CustomResource
}
