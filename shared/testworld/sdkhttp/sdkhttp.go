// Package sdkhttp is the HTTP client of the test world's own SDK clients (sqsemu's and
// the configs awsfake hands out): the SDK's client, with every request body handed to
// net/http in memory.
//
// Why in memory: the SDK wraps a request body in a reader that, once the SDK has closed
// it, answers WriteTo with io.EOF as an error. net/http writes a body it does not know
// to be in memory straight to the socket after flushing the headers, and only then
// reads it once more to check it is over; the SDK closes it as soon as the answer's
// headers arrive. When the machine is loaded the answer can come before that last read:
// net/http then takes the EOF for a failed body read and closes the connection while
// the SDK is still reading the answer ("deserialization failed, read tcp …: use of
// closed network connection"), and with the single attempt these configs allow, the
// call fails. A body net/http knows to be in memory is read to its end first and goes
// out with the headers in one write, so no answer can come while the transport still
// holds the body.
package sdkhttp

import (
	"bytes"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Client is the SDK's buildable client with opts applied to its transport, handing
// every request body to it in memory.
func Client(opts ...func(*http.Transport)) aws.HTTPClient {
	return inMemoryBodies{next: awshttp.NewBuildableClient().WithTransportOptions(opts...)}
}

type inMemoryBodies struct {
	next aws.HTTPClient
}

func (c inMemoryBodies) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.next.Do(r)
	}
	body, err := io.ReadAll(r.Body)
	if cerr := r.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	in := r.Clone(r.Context())
	in.Body = io.NopCloser(bytes.NewReader(body))
	in.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	in.ContentLength = int64(len(body))
	return c.next.Do(in)
}
