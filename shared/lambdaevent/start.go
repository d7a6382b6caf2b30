package lambdaevent

import (
	"net/http"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Start runs r under aws-lambda-go's Runtime API loop (lambda.Start), set up for the
// loop's own pace: when the loop runs one invocation at a time (the default; Lambda
// Managed Instances may ask for more), r writes its HTTP answers into one buffer
// reused from call to call (Sequential), and the Runtime API connection gets a write
// buffer that holds a whole chunk of a posted answer (TuneRuntimeAPI). The heap gets a
// soft limit below the function's memory (MemoryLimit).
func Start(r Router) {
	if limit, ok := MemoryLimit(os.Getenv); ok {
		debug.SetMemoryLimit(limit)
	}
	if lambdacontext.MaxConcurrency() <= 1 {
		r = r.Sequential()
	}
	TuneRuntimeAPI(http.DefaultTransport)
	lambda.Start(r)
}

// Sequential returns r writing each HTTP answer into one buffer reused from call to
// call, so a large answer costs no allocation once one of its size went out. The caller
// must be done with an answer before it calls Invoke again, and never call it
// concurrently: so is aws-lambda-go's loop with one invocation at a time, which posts
// the answer to the Runtime API before it asks for the next event.
func (r Router) Sequential() Router {
	r.answer = new(answerBuffer)
	return r
}

// answerBuffer is the memory of the last HTTP answer, reused by the next.
type answerBuffer struct{ b []byte }

// maxKeptAnswer bounds what the buffer keeps between invocations: Lambda refuses an
// answer over 6 MB, so anything larger went out (or failed) once and is not kept.
const maxKeptAnswer = 8 << 20

func (a *answerBuffer) get() []byte {
	if a == nil {
		return nil
	}
	return a.b[:0]
}

func (a *answerBuffer) keep(b []byte) {
	if a != nil && cap(b) <= maxKeptAnswer {
		a.b = b
	}
}

// runtimeAPIWriteBuffer holds one chunk of an answer as net/http posts it to the
// Runtime API: aws-lambda-go's body has no length, so it goes chunked, read in 32 KiB
// pieces, each flushed as it is written. With the default 4 KiB buffer each chunk
// takes three write(2)s (the buffer's fill, the rest, the chunk's closing CRLF); with
// room for the chunk and its framing, one.
const runtimeAPIWriteBuffer = 32<<10 + 64

// TuneRuntimeAPI sizes the write buffer of rt when it is the transport aws-lambda-go
// clones for its Runtime API client (http.DefaultTransport, cloned when lambda.Start
// builds the client); call it before lambda.Start. Nothing else in the functions uses
// that transport: the LivePerson and AWS clients build their own. A size someone
// already chose is left as it is.
func TuneRuntimeAPI(rt http.RoundTripper) {
	if t, ok := rt.(*http.Transport); ok && t.WriteBufferSize == 0 {
		t.WriteBufferSize = runtimeAPIWriteBuffer
	}
}

// MemoryLimit is the Go heap's soft limit for a function of AWS_LAMBDA_FUNCTION_MEMORY_SIZE
// MiB: three quarters of it, the rest left to stacks, the runtime and the binary. The
// forward function's template raises GOGC, which lets the heap grow to three times
// what is live between collections; near the limit the collector runs as often as it
// must instead, so a large request cannot take the function past its memory. ok is
// false when GOMEMLIMIT is set (Go applied it already) or the size is unknown.
func MemoryLimit(getenv func(string) string) (limit int64, ok bool) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	mb, err := strconv.ParseInt(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 10, 64)
	if err != nil || mb <= 0 {
		return 0, false
	}
	return mb << 20 / 4 * 3, true
}
