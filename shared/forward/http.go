package forward

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/apigw"
	"github.com/lpmtls/lpmtls/shared/obs"
)

// Caller-facing headers of the HTTP route (LivePerson's own names).
const (
	HeaderForwardURL   = "LP-forward-url"
	HeaderServiceName  = "LP-service-name"
	HeaderAuthOverride = "LP-authorization-override"
	HeaderStopIfNoCert = "LP-stop-if-certificate-not-found"
)

// HandleHTTP serves ANY /forward. The target's answer comes back untouched; every
// answer lpmtls makes itself is the JSON error shape with LP-Error-Source.
func (s *Service) HandleHTTP(ctx context.Context, e *events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	start := time.Now()
	log := obs.Logger(ctx, s.logger())
	in, err := apigw.FromV2(e)
	if err != nil {
		return apierr.Input(http.StatusBadRequest, apierr.CodeInvalidBody, "the request body is not valid base64").HTTPResponse()
	}
	stop, err := ParseBool(HeaderStopIfNoCert, in.Header.Get(HeaderStopIfNoCert))
	if err != nil {
		return apierr.From(err).HTTPResponse()
	}
	req, err := s.Policy.Validate(Input{
		Method:                    in.Method,
		URL:                       in.Header.Get(HeaderForwardURL),
		ServiceName:               in.Header.Get(HeaderServiceName),
		AuthorizationOverride:     in.Header.Get(HeaderAuthOverride),
		StopIfCertificateNotFound: stop,
		Header:                    in.Header,
		Body:                      in.Body,
	})
	if err != nil {
		ae := apierr.From(err)
		log.Info("forward rejected", "status", ae.Status, "code", ae.Code, "reason", ae.Message)
		return ae.HTTPResponse()
	}
	resp, err := s.Send(ctx, req)
	if err != nil {
		ae := apierr.From(err)
		log.Warn("forward failed", append(logAttrs(req, start), "status", ae.Status, "code", ae.Code, "error", err.Error())...)
		return ae.HTTPResponse()
	}
	out := apigw.ToV2(&apigw.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: resp.Body})
	if size := responseSize(out); size > MaxResponseBytes {
		// Lambda would refuse the response and API Gateway would answer a bare 502;
		// say what happened instead.
		ae := &apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeResponseTooLarge, Source: apierr.SourceLPMTLS,
			Message: fmt.Sprintf("the target answered %d with a response of %d bytes as JSON; a Lambda response is limited to %d", resp.StatusCode, size, MaxResponseBytes)}
		log.Warn("forward response too large", append(logAttrs(req, start), "status", resp.StatusCode, "responseBytes", len(resp.Body))...)
		return ae.HTTPResponse()
	}
	log.Info("forwarded", append(logAttrs(req, start), "status", resp.StatusCode, "responseBytes", len(resp.Body))...)
	return out
}

// MaxResponseBytes is the synchronous Lambda response limit (6 MB) less room for what
// the runtime adds around the payload.
const MaxResponseBytes = 6*1024*1024 - 4*1024

// responseSize is the response's size as the JSON Lambda sends; it marshals only when
// the body alone is large enough for the answer to matter.
func responseSize(r events.APIGatewayV2HTTPResponse) int {
	if len(r.Body) < MaxResponseBytes/2 {
		return len(r.Body)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return len(r.Body)
	}
	return len(b)
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}
