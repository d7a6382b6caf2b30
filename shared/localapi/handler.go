// Package localapi runs the Lambda functions' HTTP routes on a local HTTP server, the
// way `sam local start-api` would but without Docker: each request becomes the API
// Gateway HTTP API (payload 2.0) event, marshalled to JSON and handed to the same
// lambdaevent.Router the Lambda binaries run, and the function's JSON answer becomes the
// HTTP response. With no LivePerson credentials configured it starts a sandbox: the
// LivePerson simulator and a target that requires a client certificate.
package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/lpmtls/lpmtls/shared/apierr"
	"github.com/lpmtls/lpmtls/shared/config"
)

// Defaults of Options.
const (
	// DefaultTimeout is the invocation deadline, API Gateway's integration limit.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxBodyBytes is API Gateway's HTTP API payload limit (10 MB): a larger body
	// is refused with 413 before any function is asked.
	DefaultMaxBodyBytes = 10 << 20
	// DefaultMaxEventBytes is Lambda's synchronous request limit. An event over it is
	// refused by Lambda before the function runs, and API Gateway answers the caller 500
	// {"message":"Internal Server Error"}, as for any invocation Lambda rejects.
	DefaultMaxEventBytes = config.LambdaRequestBytes
)

// Invoker is a Lambda function's handler; lambdaevent.Router satisfies it.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// Route maps an API Gateway route key ("POST /mapping", "ANY /forward") to a function.
type Route struct {
	Key      string
	Function string // the function's name, for its ARN in the Lambda context
	Invoker  Invoker
}

// Options configure a Handler.
type Options struct {
	Routes        []Route
	Timeout       time.Duration // default DefaultTimeout
	MaxBodyBytes  int64         // default DefaultMaxBodyBytes
	MaxEventBytes int64         // default DefaultMaxEventBytes
	Logger        *slog.Logger  // default slog.Default()
	// NewMeta defaults to the package's NewMeta; tests fix it.
	NewMeta func() Meta
}

type route struct {
	method, path string // method "ANY" matches every method
	Route
}

// Handler is the local API Gateway.
type Handler struct {
	routes   []route
	timeout  time.Duration
	maxBody  int64
	maxEvent int64
	logger   *slog.Logger
	newMeta  func() Meta
}

// NewHandler checks the route keys and returns the handler.
func NewHandler(o Options) (*Handler, error) {
	h := &Handler{timeout: o.Timeout, maxBody: o.MaxBodyBytes, maxEvent: o.MaxEventBytes, logger: o.Logger, newMeta: o.NewMeta}
	if h.timeout <= 0 {
		h.timeout = DefaultTimeout
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.maxEvent <= 0 {
		h.maxEvent = DefaultMaxEventBytes
	}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	if h.newMeta == nil {
		h.newMeta = NewMeta
	}
	for _, r := range o.Routes {
		method, path, ok := strings.Cut(r.Key, " ")
		if !ok || method == "" || !strings.HasPrefix(path, "/") || r.Invoker == nil {
			return nil, fmt.Errorf("localapi: route %q must be \"METHOD /path\" with an invoker", r.Key)
		}
		h.routes = append(h.routes, route{method: strings.ToUpper(method), path: path, Route: r})
	}
	return h, nil
}

// Routes lists the route keys in the order given.
func (h *Handler) Routes() []string {
	out := make([]string, len(h.routes))
	for i, r := range h.routes {
		out[i] = r.Key
	}
	return out
}

func (h *Handler) match(r *http.Request) *route {
	for i := range h.routes {
		rt := &h.routes[i]
		if rt.path == r.URL.Path && (rt.method == "ANY" || rt.method == r.Method) {
			return rt
		}
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	meta := h.newMeta()
	// API Gateway names every answer, including its own errors.
	w.Header().Set("Apigw-Requestid", meta.RequestID)
	sw := &statusWriter{ResponseWriter: w}
	rt := h.serve(sw, r, meta)
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", sw.status, "requestId", meta.RequestID,
		"durationMs", float64(time.Since(start).Microseconds()) / 1000}
	if rt != nil {
		attrs = append(attrs, "route", rt.Key)
	}
	h.logger.Info("local request", attrs...)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, meta Meta) *route {
	rt := h.match(r)
	if rt == nil {
		writeError(w, http.StatusNotFound, apierr.CodeNotFound,
			fmt.Sprintf("no route for %s %s; routes: %s", r.Method, r.URL.Path, strings.Join(h.Routes(), ", ")))
		return nil
	}
	if r.ContentLength > h.maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, apierr.CodeBodyTooLarge,
			fmt.Sprintf("the body is %d bytes; the limit is %d", r.ContentLength, h.maxBody))
		return rt
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, apierr.CodeBodyTooLarge,
				fmt.Sprintf("the body is over the limit of %d bytes", h.maxBody))
		} else {
			writeError(w, http.StatusBadRequest, apierr.CodeInvalidBody, "reading the request body failed")
		}
		return rt
	}

	ev := NewEvent(r, body, rt.Key, meta)
	payload, err := json.Marshal(ev)
	if err != nil {
		writeError(w, http.StatusInternalServerError, apierr.CodeInternal, "building the event failed")
		return rt
	}
	if int64(len(payload)) > h.maxEvent {
		// AWS's status, with the reason API Gateway would only write to its access log.
		writeError(w, http.StatusInternalServerError, apierr.CodeBodyTooLarge,
			fmt.Sprintf("the Lambda event would be %d bytes (a %d-byte body, base64-encoded: %v); Lambda accepts at most %d, and API Gateway answers 500 when Lambda refuses an invocation",
				len(payload), len(body), ev.IsBase64Encoded, h.maxEvent))
		return rt
	}
	// A Lambda invocation is not cancelled when the caller hangs up; it only has a deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.timeout)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       meta.RequestID,
		InvokedFunctionArn: "arn:aws:lambda:local:" + LocalAccountID + ":function:" + rt.Function,
	})
	out, err := rt.Invoker.Invoke(ctx, payload)
	if err != nil {
		// API Gateway hides a function error behind a bare 500; say what it was, since
		// this is a developer's machine.
		h.logger.Error("function error", "route", rt.Key, "requestId", meta.RequestID, "error", err.Error())
		writeError(w, http.StatusInternalServerError, apierr.CodeInternal, "the function failed: "+err.Error())
		return rt
	}
	WriteResponse(w, out)
	return rt
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
