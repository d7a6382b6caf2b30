// Package lambdaevent tells apart the events one function receives (API Gateway HTTP
// API, SQS, schedules, CloudFormation custom resources) by their published shapes, so one binary can serve several
// sources without a flag saying which.
package lambdaevent

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

// Detect names payload's kind by its published shape, reading the event in place (no
// value of it is built). Keys are matched exactly, as the event formats spell them
// (encoding/json would match "records" to Records), so a schedule input that happens
// to use such a word is still a schedule input. A payload encoding/json would refuse
// is Unknown.
func Detect(payload []byte) Kind {
	k, _ := detect(payload)
	return k
}

// topLevel is what Detect learns of the top-level object on its way through it.
type topLevel struct {
	requestContext, records *span
	httpMethod              bool
	// custom marks RequestType, ResponseURL and StackId: CloudFormation sends all three,
	// a schedule's input has no reason to.
	custom [3]bool
	body   *member // the last member named "body" in any case, as encoding/json reads it
}

func detect(payload []byte) (Kind, topLevel) {
	var top topLevel
	s := scanner{b: payload}
	s.ws()
	if s.i >= len(payload) || payload[s.i] != '{' {
		return Unknown, top
	}
	var rc, recs span
	var body member
	ok := s.object(func(m member) {
		switch {
		case s.nameIs(m, "requestContext"):
			rc, top.requestContext = m.val, &rc
		case s.nameIs(m, "Records"):
			recs, top.records = m.val, &recs
		case s.nameIs(m, "httpMethod"):
			top.httpMethod = true
		case s.nameIs(m, "RequestType"):
			top.custom[0] = true
		case s.nameIs(m, "ResponseURL"):
			top.custom[1] = true
		case s.nameIs(m, "StackId"):
			top.custom[2] = true
		case isBody(&s, m):
			body, top.body = m, &body
		}
	})
	if s.ws(); !ok || s.i != len(payload) {
		return Unknown, top
	}
	switch {
	case top.requestContext != nil:
		if httpMethodSet(payload, rc) {
			return HTTP, top
		}
		// REST API v1 and ALB events: not served, and not a schedule either.
		return Unknown, top
	case top.records != nil:
		if firstRecordIsSQS(payload, recs) {
			return SQS, top
		}
		return Unknown, top // SNS, S3, DynamoDB streams, ...
	case top.httpMethod:
		return Unknown, top
	case top.custom == [3]bool{true, true, true}:
		return CustomResource, top
	}
	return Schedule, top
}

// isBody reports whether encoding/json would decode m into events.APIGatewayV2HTTPRequest's
// Body: it matches field names without regard to ASCII case ("body" has no letter with
// a non-ASCII fold).
func isBody(s *scanner, m member) bool {
	if !m.escaped && m.key.end-m.key.start != len(`"body"`) {
		return false
	}
	n := s.name(m)
	return len(n) == 4 && n[0]|0x20 == 'b' && n[1]|0x20 == 'o' && n[2]|0x20 == 'd' && n[3]|0x20 == 'y'
}

// httpMethodSet reports whether requestContext.http.method is a non-empty string, as
// encoding/json would read it into struct{ Method string }: the last non-null "method"
// (any case) wins, and any other type makes the event not an HTTP API one.
func httpMethodSet(payload []byte, rc span) bool {
	s := scanner{b: payload, i: rc.start}
	if payload[s.i] != '{' {
		return false
	}
	var h span
	found := false
	s.object(func(m member) {
		if s.nameIs(m, "http") {
			h, found = m.val, true
		}
	})
	if !found || payload[h.start] != '{' {
		return false // absent or null: no method; any other type does not decode
	}
	s = scanner{b: payload, i: h.start}
	set, bad := false, false
	s.object(func(m member) {
		n := s.name(m)
		if len(n) != 6 || !equalFoldASCII(n, "method") {
			return
		}
		switch payload[m.val.start] {
		case 'n': // null leaves the field as it was
		case '"':
			set = m.val.end-m.val.start > 2
		default:
			bad = true
		}
	})
	return set && !bad
}

func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		if a[i]|0x20 != b[i] {
			return false
		}
	}
	return true
}

// firstRecordIsSQS reports whether Records is an array of objects (or nulls), as
// []map[string]json.RawMessage would decode it, whose first element's last
// "eventSource" is exactly "aws:sqs".
func firstRecordIsSQS(payload []byte, recs span) bool {
	if payload[recs.start] != '[' {
		return false
	}
	s := scanner{b: payload, i: recs.start}
	n, objects := 0, true
	var first span
	s.array(func(v span) {
		if c := payload[v.start]; c != '{' && c != 'n' {
			objects = false
		}
		if n == 0 {
			first = v
		}
		n++
	})
	if !objects || n == 0 || payload[first.start] != '{' {
		return false
	}
	var src []byte
	s = scanner{b: payload, i: first.start}
	s.object(func(m member) {
		if s.nameIs(m, "eventSource") {
			src = payload[m.val.start:m.val.end]
		}
	})
	return string(src) == `"aws:sqs"`
}
