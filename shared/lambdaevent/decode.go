package lambdaevent

import (
	"encoding/json"
	"unicode/utf8"
	"unsafe"

	"github.com/aws/aws-lambda-go/events"
)

// unmarshal is encoding/json, aws-lambda-go's own decode: the SQS batches, and the HTTP
// events fastHTTP declines, whose rest (the body lifted out) is about 1.5 KiB, where a
// faster codec would save a few microseconds for the size of its code in the binary
// (BENCHMARKS.md, "Codec").
func unmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// DecodeHTTP decodes an API Gateway HTTP API event as encoding/json would, in one pass
// over the body: a string body is lifted out of the payload before the rest of the
// event is decoded, and when it reads the same raw as decoded (no escape, valid UTF-8:
// always so for base64), e.Body shares payload's memory instead of copying it.
//
// So e.Body is valid only while payload is: aws-lambda-go reuses the payload's buffer
// for the next invocation, so nothing may read e.Body after the handler returns.
func DecodeHTTP(payload []byte) (*events.APIGatewayV2HTTPRequest, error) {
	_, top := detect(payload)
	return decodeHTTP(payload, top)
}

func decodeHTTP(payload []byte, top topLevel) (*events.APIGatewayV2HTTPRequest, error) {
	e := new(events.APIGatewayV2HTTPRequest)
	b := top.body
	if b == nil {
		// fastHTTP's strings share the document it reads, which must not be the
		// payload's buffer (aws-lambda-go reuses it).
		return e, decodeRest(append([]byte(nil), payload...), e)
	}
	if payload[b.val.start] != '"' {
		// A body that is not a string: null leaves Body empty, anything else is the
		// decode's error to report.
		return e, unmarshal(payload, e)
	}
	rest := make([]byte, 0, len(payload)-(b.val.end-b.val.start)+2)
	rest = append(rest, payload[:b.val.start]...)
	rest = append(rest, `""`...)
	rest = append(rest, payload[b.val.end:]...)
	if err := decodeRest(rest, e); err != nil {
		return nil, err
	}
	raw := payload[b.val.start:b.val.end]
	s := scanner{b: raw}
	escaped, ascii, _ := s.str()
	if !escaped && (ascii || utf8.Valid(raw)) {
		e.Body = unsafe.String(unsafe.SliceData(raw[1:]), len(raw)-2)
		return e, nil
	}
	// Escapes or invalid UTF-8: encoding/json's own rules, on the string alone.
	if err := json.Unmarshal(raw, &e.Body); err != nil {
		return nil, err
	}
	return e, nil
}

// decodeRest decodes an HTTP event without its body into e, which is zero: fastHTTP
// when it can, encoding/json otherwise.
func decodeRest(doc []byte, e *events.APIGatewayV2HTTPRequest) error {
	if fastHTTP(doc, e) {
		return nil
	}
	*e = events.APIGatewayV2HTTPRequest{}
	return unmarshal(doc, e)
}

// DecodeSQS decodes an SQS batch as encoding/json would. Message bodies are copied: a
// batch's handler may keep them past the invocation (a retry, a result message).
func DecodeSQS(payload []byte) (*events.SQSEvent, error) {
	e := new(events.SQSEvent)
	return e, unmarshal(payload, e)
}
