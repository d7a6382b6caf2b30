package sdkhttp_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/lpmtls/lpmtls/shared/testworld/sdkhttp"
)

// writeLog records, per connection, the writes that carried a request's last byte and
// how many writes that request took.
type writeLog struct {
	mu     sync.Mutex
	writes []int // writes per request, in order
}

type countingConn struct {
	net.Conn
	log *writeLog
	buf []byte
	n   int
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.buf, c.n = append(c.buf, p[:n]...), c.n+1
	if end := requestEnd(c.buf); end > 0 {
		c.log.mu.Lock()
		c.log.writes = append(c.log.writes, c.n)
		c.log.mu.Unlock()
		c.buf, c.n = c.buf[end:], 0
	}
	return n, err
}

// requestEnd is the length of the first complete HTTP/1.1 request in b (0: none yet).
func requestEnd(b []byte) int {
	head, _, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		return 0
	}
	length := 0
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if end := len(head) + 4 + length; len(b) >= end {
		return end
	}
	return 0
}

// TestRequestInOneWrite: the transport is done with a request's body before any of the
// request reaches the server, so no answer can come while it still holds the body.
func TestRequestInOneWrite(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	log := &writeLog{}
	hc := sdkhttp.Client(func(tr *http.Transport) {
		d := &net.Dialer{}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, log: log}, nil
		}
	})
	cfg := aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDSDKHTTP", "sdkhttp-dummy-secret", ""),
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 1,
		HTTPClient:       hc,
	}
	ctx := context.Background()
	calls := []struct {
		name string
		call func() error
	}{
		{"sqs ReceiveMessage", func() error {
			_, err := sqs.NewFromConfig(cfg).ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(srv.URL + "/q"), WaitTimeSeconds: 1})
			return err
		}},
		{"ssm GetParameter", func() error {
			_, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/p"), WithDecryption: aws.Bool(true)})
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			log.mu.Lock()
			log.writes = nil
			log.mu.Unlock()
			if err := c.call(); err != nil {
				t.Fatal(err)
			}
			log.mu.Lock()
			defer log.mu.Unlock()
			if len(log.writes) != 1 || log.writes[0] != 1 {
				t.Fatalf("writes per request %v, want [1]: the headers went out before the transport was done with the body", log.writes)
			}
		})
	}
}
