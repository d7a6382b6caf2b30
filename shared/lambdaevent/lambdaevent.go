// Package lambdaevent tells apart the events one function receives (API Gateway HTTP
// API, SQS, schedules) by their published shapes, so one binary can serve several
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
)

func (k Kind) String() string {
	switch k {
	case HTTP:
		return "http"
	case SQS:
		return "sqs"
	case Schedule:
		return "schedule"
	}
	return "unknown"
}

type probe struct {
	HTTPMethod     string `json:"httpMethod"`
	RequestContext *struct {
		HTTP *struct {
			Method string `json:"method"`
		} `json:"http"`
	} `json:"requestContext"`
	Records []struct {
		EventSource string `json:"eventSource"`
	} `json:"Records"`
}

// Detect reads just enough of payload to name its kind.
func Detect(payload []byte) Kind {
	var p probe
	if err := json.Unmarshal(payload, &p); err != nil {
		return Unknown
	}
	switch {
	case p.RequestContext != nil && p.RequestContext.HTTP != nil && p.RequestContext.HTTP.Method != "":
		return HTTP
	case len(p.Records) > 0 && p.Records[0].EventSource == "aws:sqs":
		return SQS
	case len(p.Records) > 0, p.HTTPMethod != "", p.RequestContext != nil:
		// Other event sources (SNS, REST API v1, ALB) are not served: say so rather
		// than mistake them for a schedule.
		return Unknown
	}
	return Schedule
}
