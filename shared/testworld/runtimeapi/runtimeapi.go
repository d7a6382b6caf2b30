// Package runtimeapi is a Lambda Runtime API server, so the real bootstrap binaries can
// be driven outside AWS by end-to-end tests and benchmarks. It follows the published
// protocol (invocation/next long-poll, response, error, init/error).
package runtimeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const prefix = "/2018-06-01/runtime/"

// Lambda's limits on a synchronous invocation, so tests meet what AWS would do: a larger
// event is refused before the function runs (ErrRequestTooLarge, Lambda's
// RequestEntityTooLargeException), and a larger response is refused to the runtime with
// a 413 and reaches the invoker as a Function.ResponseSizeTooLarge error (which API
// Gateway turns into its bare 502).
// The values are config's LambdaRequestBytes and LambdaResponseBytes (a test holds them
// equal): this package cannot import config, which tests of config's own imports reach
// through testenv.
const (
	MaxRequestBytes  = 6291456
	MaxResponseBytes = 6291556
)

// ErrRequestTooLarge is Invoke's answer to an event Lambda would not accept.
var ErrRequestTooLarge = errors.New("runtimeapi: RequestEntityTooLargeException: Request must be smaller than " +
	strconv.Itoa(MaxRequestBytes) + " bytes for the InvokeFunction operation")

// ResponseSizeTooLarge is the error type an invoker sees for an oversized response.
const ResponseSizeTooLarge = "Function.ResponseSizeTooLarge"

// Result is what the function answered for one invocation.
type Result struct {
	RequestID string
	// Payload is the response body when the function succeeded.
	Payload []byte
	// Error is set when the function reported an error (invocation/{id}/error).
	Error *ErrorPayload
}

// ErrorPayload is the error document the runtime posts.
type ErrorPayload struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	StackTrace   []string `json:"stackTrace,omitempty"`
}

type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	done     chan Result
}

// Server is one Lambda execution environment's Runtime API.
type Server struct {
	FunctionARN string

	srv       *http.Server
	ln        net.Listener
	queue     chan *invocation
	mu        sync.Mutex
	pending   map[string]*invocation
	seq       atomic.Int64
	ready     chan struct{}
	readyAt   atomic.Int64
	closed    chan struct{}
	once      sync.Once
	readyOnce sync.Once
}

// Start listens on a free loopback port.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:lpmtls-test",
		ln:          ln,
		queue:       make(chan *invocation),
		pending:     map[string]*invocation{},
		ready:       make(chan struct{}),
		closed:      make(chan struct{}),
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck // returns on Close
	return s, nil
}

// Addr is the value for AWS_LAMBDA_RUNTIME_API.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server and fails pending invocations.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.srv.Close()
	})
}

// Ready is closed when the runtime first asks for an invocation: init is over.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// ReadyAt is when the runtime first asked for work.
func (s *Server) ReadyAt() time.Time { return time.Unix(0, s.readyAt.Load()) }

// Invoke hands payload to the function and waits for its answer. timeout becomes the
// invocation deadline the function sees (Lambda-Runtime-Deadline-Ms).
func (s *Server) Invoke(ctx context.Context, payload []byte, timeout time.Duration) (Result, error) {
	if len(payload) > MaxRequestBytes {
		return Result{}, ErrRequestTooLarge
	}
	inv := &invocation{
		id:       fmt.Sprintf("req-%08d", s.seq.Add(1)),
		payload:  payload,
		deadline: time.Now().Add(timeout),
		done:     make(chan Result, 1),
	}
	select {
	case s.queue <- inv:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-s.closed:
		return Result{}, errors.New("runtimeapi: closed")
	}
	select {
	case r := <-inv.done:
		return r, nil
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.pending, inv.id)
		s.mu.Unlock()
		return Result{}, ctx.Err()
	case <-s.closed:
		return Result{}, errors.New("runtimeapi: closed")
	}
}

// InFlight is how many invocations the runtime has taken and not yet answered (0 or 1
// for one execution environment): tests wait on it to act mid-invocation.
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// failPending ends every invocation the runtime took and did not answer, as Lambda does
// when the runtime process exits mid-invocation: the invoker gets a function error of
// type Runtime.ExitError (API Gateway turns it into its own 502, the SQS event source
// deletes nothing). reason is how the process ended ("signal: killed").
func (s *Server) failPending(reason string) {
	s.mu.Lock()
	pending := s.pending
	s.pending = map[string]*invocation{}
	s.mu.Unlock()
	for id, inv := range pending {
		inv.done <- Result{RequestID: id, Error: &ErrorPayload{
			ErrorType:    "Runtime.ExitError",
			ErrorMessage: "RequestId: " + id + " Error: Runtime exited with error: " + reason,
		}}
	}
}

func (s *Server) requeue(inv *invocation) {
	select {
	case s.queue <- inv:
	case <-s.closed:
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, prefix)
	switch {
	case r.Method == http.MethodGet && path == "invocation/next":
		s.next(w, r)
	case r.Method == http.MethodPost && path == "init/error":
		// Accepted as Lambda does; the process then exits, which is what callers watch
		// (Process.Exited), and its message is in the process's own output.
		_, _ = io.Copy(io.Discard, r.Body)
		accepted(w)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "invocation/"):
		rest := strings.TrimPrefix(path, "invocation/")
		id, kind, ok := strings.Cut(rest, "/")
		if !ok || (kind != "response" && kind != "error") {
			http.NotFound(w, r)
			return
		}
		s.finish(w, r, id, kind)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	s.readyOnce.Do(func() {
		s.readyAt.Store(time.Now().UnixNano())
		close(s.ready)
	})
	var inv *invocation
	select {
	case inv = <-s.queue:
	case <-r.Context().Done():
		return
	case <-s.closed:
		return
	}
	if r.Context().Err() != nil {
		// The runtime hung up as the invocation arrived: hand it to the next poll
		// rather than write it to nobody.
		go s.requeue(inv)
		return
	}
	s.mu.Lock()
	s.pending[inv.id] = inv
	s.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", s.FunctionARN)
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

func (s *Server) finish(w http.ResponseWriter, r *http.Request, id, kind string) {
	s.mu.Lock()
	inv := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	if inv == nil {
		http.Error(w, `{"errorMessage":"unknown request id","errorType":"InvalidRequestID"}`, http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	res := Result{RequestID: id}
	if kind == "response" && len(body) > MaxResponseBytes {
		limit := strconv.Itoa(MaxResponseBytes)
		inv.done <- Result{RequestID: id, Error: &ErrorPayload{
			ErrorType:    ResponseSizeTooLarge,
			ErrorMessage: "Response payload size exceeded maximum allowed payload size (" + limit + " bytes).",
		}}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		_, _ = io.WriteString(w, `{"errorMessage":"Exceeded maximum allowed payload size (`+limit+` bytes).","errorType":"RequestEntityTooLarge"}`)
		return
	}
	if kind == "response" {
		res.Payload = body
	} else {
		var e ErrorPayload
		if json.Unmarshal(body, &e) != nil {
			e.ErrorMessage = string(body)
		}
		if e.ErrorType == "" {
			e.ErrorType = r.Header.Get("Lambda-Runtime-Function-Error-Type")
		}
		res.Error = &e
	}
	inv.done <- res
	accepted(w)
}

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}
