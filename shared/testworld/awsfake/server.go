// Package awsfake is an in-process stand-in for AWS Secrets Manager and SSM Parameter
// Store that speaks the real AWS JSON 1.1 protocol on plain http://127.0.0.1, so the
// real aws-sdk-go-v2 clients work against it unchanged. No emulator for these two
// services installs from the registries this project can reach: the Go emulators
// (kumo, awsim, gopherstack) are refused by the module proxy, npm and Debian have none,
// and LocalStack or moto would need PyPI. Hence this fake.
//
// It is deliberately usable outside tests (no *testing.T): an end-to-end harness can
// start it and hand Env() to a subprocess.
package awsfake

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/lpmtls/lpmtls/shared/testworld/sdkhttp"
)

// Fixed identity of the fake account; ARNs are built from these.
const (
	Region    = "us-east-1"
	AccountID = "123456789012"
)

// Dummy credentials: the SDK refuses to sign without some, the fake never checks them.
const (
	dummyAccessKey = "AKIDAWSFAKE"
	dummySecretKey = "awsfake-dummy-secret"
)

const contentType = "application/x-amz-json-1.1"

// maxBody bounds a request body; real requests here are a few KB.
const maxBody = 1 << 20

type fault struct {
	target  string
	left    int
	status  int
	errType string
	message string
}

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	srv *http.Server
	url string

	mu     sync.Mutex
	calls  map[string]int
	signed map[string]bool
	faults []*fault
	down   bool
	// downFor and delayFor are per-service faults, keyed by X-Amz-Target prefix.
	downFor  map[string]bool
	delayFor map[string]time.Duration
	// errFor is a lasting error answer per service (SetError).
	errFor map[string]*apiError
	reqSeq int
	verSeq int
	// inFlight counts requests being served (delays included); maxInFlight is its
	// highest value since the last ResetCalls.
	inFlight, maxInFlight int
	secrets               map[string]*secret // by name
	params                map[string]*parameter
	// sealKey makes the opaque SecureString rendering unguessable without exposing
	// the plaintext, the way a KMS ciphertext would.
	sealKey []byte
	now     func() time.Time
}

// Start listens on a kernel-chosen loopback port and serves until Close.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("awsfake: listen: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		ln.Close()
		return nil, fmt.Errorf("awsfake: seal key: %w", err)
	}
	s := &Server{
		url:      "http://" + ln.Addr().String(),
		calls:    map[string]int{},
		signed:   map[string]bool{},
		downFor:  map[string]bool{},
		delayFor: map[string]time.Duration{},
		errFor:   map[string]*apiError{},
		secrets:  map[string]*secret{},
		params:   map[string]*parameter{},
		sealKey:  key,
		now:      time.Now,
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed on Close
	return s, nil
}

// URL is the base endpoint, e.g. http://127.0.0.1:40123.
func (s *Server) URL() string { return s.url }

// Close stops the listener and drops open connections.
func (s *Server) Close() { s.srv.Close() }

// Calls returns a copy of the request counts by X-Amz-Target, including requests that
// were answered with an injected fault or Down.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// TotalCalls is the sum of Calls.
func (s *Server) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.calls {
		n += v
	}
	return n
}

// ResetCalls zeroes the counters and the signature record.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
	s.signed = map[string]bool{}
	s.maxInFlight = s.inFlight
}

// MaxInFlight is the most requests the fake was serving at once since it started or
// ResetCalls: 2 or more shows that a client issued calls concurrently (with SetDelay,
// that they overlapped rather than followed each other).
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

// Signed reports whether the last request for target carried a SigV4 Authorization
// header. Only the presence is kept, never the header's content.
func (s *Server) Signed(target string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signed[target]
}

// FailNext makes the next `times` requests for target ("*" for any) answer status
// with the AWS error errType instead of being served. Rules queue in call order.
func (s *Server) FailNext(target string, times int, status int, errType string) {
	if times <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{target: target, left: times, status: status, errType: errType})
}

// FailNextError is FailNext with a whole AWS error answer, message included: some
// errors are told apart by it (Secrets Manager's AccessDeniedException "Access to KMS
// is not allowed").
func (s *Server) FailNextError(target string, times int, e AWSError) {
	if times <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{target: target, left: times, status: e.Status, errType: e.Type, message: e.Message})
}

// AWS error answers as the services send them (status, __type, message), for FailNextError
// and SetError.
var (
	ErrThrottling      = AWSError{400, "ThrottlingException", "Rate exceeded"}
	ErrAccessDenied    = AWSError{400, "AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/lpmtls-forward/lpmtls-forward is not authorized to perform: secretsmanager:GetSecretValue on resource: lpmtls/brand because no identity-based policy allows the secretsmanager:GetSecretValue action"}
	ErrKMSAccessDenied = AWSError{400, "AccessDeniedException", "Access to KMS is not allowed"}
	ErrDecryption      = AWSError{400, "DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key."}
	ErrSecretNotFound  = AWSError{400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret."}
	ErrInternalService = AWSError{500, "InternalServiceError", "An error occurred on the server side."}
)

// AWSError is one AWS JSON 1.1 error answer.
type AWSError struct {
	Status  int
	Type    string
	Message string
}

// SetError makes every request for one service (SSM or SecretsManager) answer e until
// SetError(service, AWSError{}), as a lasting throttle or a missing permission would.
func (s *Server) SetError(service string, e AWSError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Status == 0 {
		delete(s.errFor, service)
		return
	}
	s.errFor[service] = errf(e.Status, e.Type, "%s", e.Message)
}

// Down makes every request answer 503 ServiceUnavailable until Down(false).
func (s *Server) Down(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Service prefixes of X-Amz-Target, for SetDown and SetDelay.
const (
	SSM            = "AmazonSSM."
	SecretsManager = "secretsmanager."
)

// SetDown makes every request for one service (SSM or SecretsManager) answer 503
// ServiceUnavailable, as an outage of that service alone would, until SetDown(service,
// false).
func (s *Server) SetDown(service string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downFor[service] = down
}

// SetDelay holds every request for one service back by d before it is served (0 ends
// the fault), as a slow or overloaded service would. A client that gives up meanwhile
// ends the wait, and the request is then not served at all: its effect (a Put, a
// Delete) never happens, which is what a caller that timed out must assume anyway.
func (s *Server) SetDelay(service string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delayFor[service] = d
}

// Env is the environment a subprocess needs to reach this fake with the default
// credential and endpoint chain.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + s.url,
		"AWS_ENDPOINT_URL_SSM=" + s.url,
		"AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=" + dummyAccessKey,
		"AWS_SECRET_ACCESS_KEY=" + dummySecretKey,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// AWSConfig is an SDK config pointed at this fake: static dummy credentials,
// us-east-1, BaseEndpoint = URL, and a single attempt so fault tests see each injected
// failure directly instead of waiting on retry backoff. It is built by hand, not
// loaded, so nothing from the environment (AWS_PROFILE, AWS_ENDPOINT_URL_*, ~/.aws)
// can leak in; the service clients fill in the default retryer. The HTTP client hands
// request bodies over in memory (see sdkhttp: with one attempt, a loaded machine
// otherwise fails a call now and then).
func (s *Server) AWSConfig() aws.Config {
	return aws.Config{
		Region:           Region,
		Credentials:      credentials.NewStaticCredentialsProvider(dummyAccessKey, dummySecretKey, ""),
		BaseEndpoint:     aws.String(s.url),
		RetryMaxAttempts: 1,
		HTTPClient:       sdkhttp.Client(),
	}
}

// apiError is an AWS JSON 1.1 error answer.
type apiError struct {
	status  int
	errType string
	message string
}

func (e *apiError) Error() string { return e.errType + ": " + e.message }

func errf(status int, errType, format string, args ...any) *apiError {
	return &apiError{status: status, errType: errType, message: fmt.Sprintf(format, args...)}
}

type handlerFunc func(s *Server, body []byte) (any, *apiError)

var handlers = map[string]handlerFunc{
	"secretsmanager.GetSecretValue": (*Server).getSecretValue,
	"secretsmanager.PutSecretValue": (*Server).putSecretValue,
	"secretsmanager.CreateSecret":   (*Server).createSecret,
	"AmazonSSM.GetParameter":        (*Server).getParameter,
	"AmazonSSM.GetParameters":       (*Server).getParameters,
	"AmazonSSM.PutParameter":        (*Server).putParameter,
	"AmazonSSM.DeleteParameter":     (*Server).deleteParameter,
	"AmazonSSM.GetParametersByPath": (*Server).getParametersByPath,
	"AmazonSSM.DeleteParameters":    (*Server).deleteParameters,
}

// ServeHTTP dispatches on X-Amz-Target as the real JSON 1.1 endpoints do.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	signed := strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ")

	s.mu.Lock()
	s.reqSeq++
	reqID := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.reqSeq)
	s.calls[target]++
	s.signed[target] = signed
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	down := s.down
	var delay time.Duration
	for prefix, d := range s.delayFor {
		if strings.HasPrefix(target, prefix) {
			delay = d
		}
	}
	for prefix, d := range s.downFor {
		if d && strings.HasPrefix(target, prefix) {
			down = true
		}
	}
	injected := s.takeFault(target)
	for prefix, e := range s.errFor {
		if injected == nil && strings.HasPrefix(target, prefix) {
			injected = e
		}
	}
	s.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return // the client gave up: nobody to answer
		}
	}

	w.Header().Set("X-Amzn-RequestId", reqID)
	switch {
	case down:
		writeError(w, errf(http.StatusServiceUnavailable, "ServiceUnavailable", "service unavailable (awsfake down)"))
		return
	case injected != nil:
		writeError(w, injected)
		return
	case r.Method != http.MethodPost:
		writeError(w, errf(http.StatusBadRequest, "UnknownOperationException", "method %s not supported", r.Method))
		return
	}
	h, ok := handlers[target]
	if !ok {
		writeError(w, errf(http.StatusBadRequest, "UnknownOperationException", "unknown operation %q", target))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeError(w, errf(http.StatusBadRequest, "SerializationException", "reading body: %v", err))
		return
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	out, aerr := h(s, body)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeError(w, errf(http.StatusInternalServerError, "InternalServerError", "encoding response: %v", err))
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	w.Write(b) //nolint:errcheck // client gone is not our concern
}

// takeFault consumes one matching fault rule; callers hold s.mu.
func (s *Server) takeFault(target string) *apiError {
	for i, f := range s.faults {
		if f.target != "*" && f.target != target {
			continue
		}
		f.left--
		if f.left <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		if f.message != "" {
			return errf(f.status, f.errType, "%s", f.message)
		}
		return errf(f.status, f.errType, "injected fault for %s", target)
	}
	return nil
}

func writeError(w http.ResponseWriter, e *apiError) {
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.errType, e.message})
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(e.status)
	w.Write(b) //nolint:errcheck
}

// decode unmarshals a request body; a malformed one is what AWS calls a
// SerializationException.
func decode(body []byte, v any) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return errf(http.StatusBadRequest, "SerializationException", "malformed JSON at offset %d", se.Offset)
		}
		return errf(http.StatusBadRequest, "SerializationException", "%v", err)
	}
	return nil
}

// epoch renders a timestamp the way JSON 1.1 does: fractional epoch seconds.
func epoch(t time.Time) float64 {
	return float64(t.UnixMilli()) / 1000
}

// nextVersionID returns a UUID-shaped, deterministic id; callers hold s.mu.
func (s *Server) nextVersionID() string {
	s.verSeq++
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", s.verSeq, s.verSeq)
}
