// Package lambdaevent tells apart the events one function receives (API Gateway HTTP
// API, SQS, schedules, CloudFormation custom resources) by their published shapes, so one binary can serve several
// sources without a flag saying which.
package lambdaevent

import "encoding/json"

// Kind is the source of an event.
type Kind int

const (
	Unknown Kind = iota
	// HTTP is an API Gateway HTTP API payload format 2.0 event.
	HTTP
	// SQS is a batch of queue messages.
	SQS
	// Schedule is anything else that is a JSON object: EventBridge Scheduler passes the
	// schedule's input verbatim, and EventBridge rules send "Scheduled Event" documents.
	Schedule
	// CustomResource is a CloudFormation custom resource request (RequestType,
	// ResponseURL and StackId, as CloudFormation spells them).
	CustomResource
)

func (k Kind) String() string {
	switch k {
	case HTTP:
		return "http"
	case SQS:
		return "sqs"
	case Schedule:
		return "schedule"
	case CustomResource:
		return "custom resource"
	}
	return "unknown"
}

// Detect reads just enough of payload to name its kind. Keys are matched exactly, as
// the event formats spell them (encoding/json would match "records" to Records), so a
// schedule input that happens to use such a word is still a schedule input.
func Detect(payload []byte) Kind {
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
	if isCustomResource(top) {
		return CustomResource
	}
	return Schedule
}

// isCustomResource: CloudFormation sends all three; a schedule's input has no reason to.
func isCustomResource(top map[string]json.RawMessage) bool {
	for _, k := range []string{"RequestType", "ResponseURL", "StackId"} {
		if _, ok := top[k]; !ok {
			return false
		}
	}
	return true
}
