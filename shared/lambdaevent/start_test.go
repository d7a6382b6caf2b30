package lambdaevent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"unsafe"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apigw"
)

// A sequential router writes each answer into the memory of the one before when it
// fits, and every answer still reads back as its own reply.
func TestSequentialReusesTheAnswer(t *testing.T) {
	p := variants(t)[7] // 1,000 bytes of base64 body
	cases := []struct {
		name   string
		body   int  // bytes of body answered
		shared bool // the answer lies in the previous answer's memory
	}{
		{"first", 3000, false},
		{"smaller", 10, true},
		{"same size as the first", 3000, true},
		{"larger", 9000, false},
		{"over the kept size", maxKeptAnswer, false},
		{"after one not kept", 100, true},
	}
	body := make([]byte, maxKeptAnswer)
	for i := range body {
		body[i] = byte(i)
	}
	var size int
	r := Router{Name: "t", Reply: func(context.Context, *events.APIGatewayV2HTTPRequest) apigw.Reply {
		return apigw.Reply{StatusCode: 200, Body: body[:size], Base64: true}
	}}.Sequential()
	var prev []byte
	for _, c := range cases {
		size = c.body
		out, err := r.Invoke(context.Background(), p)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if shared := prev != nil && unsafe.SliceData(out) == unsafe.SliceData(prev); shared != c.shared {
			t.Errorf("%s: answer in the previous one's memory = %v, want %v", c.name, shared, c.shared)
		}
		var got events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got.StatusCode != 200 || got.Body != base64.StdEncoding.EncodeToString(body[:size]) {
			t.Fatalf("%s: the answer does not read back as the reply", c.name)
		}
		if cap(out) <= maxKeptAnswer {
			prev = out
		}
	}
}

// A router that is not sequential gives every answer its own memory (the local API
// server calls it concurrently).
func TestRouterAnswersApart(t *testing.T) {
	p := variants(t)[7]
	r := Router{Name: "t", Reply: func(context.Context, *events.APIGatewayV2HTTPRequest) apigw.Reply {
		return apigw.Reply{StatusCode: 200, Body: []byte("x")}
	}}
	a, _ := r.Invoke(context.Background(), p)
	b, _ := r.Invoke(context.Background(), p)
	if unsafe.SliceData(a) == unsafe.SliceData(b) {
		t.Fatal("two answers share memory")
	}
}

func TestTuneRuntimeAPI(t *testing.T) {
	cases := []struct {
		name      string
		rt        http.RoundTripper
		wantWrite int
	}{
		{"default size", &http.Transport{}, runtimeAPIWriteBuffer},
		{"a chosen size stays", &http.Transport{WriteBufferSize: 1 << 10}, 1 << 10},
		{"not a *http.Transport", roundTripFunc(nil), 0},
	}
	for _, c := range cases {
		TuneRuntimeAPI(c.rt)
		if tr, ok := c.rt.(*http.Transport); ok && tr.WriteBufferSize != c.wantWrite {
			t.Errorf("%s: WriteBufferSize = %d, want %d", c.name, tr.WriteBufferSize, c.wantWrite)
		}
		if tr, ok := c.rt.(*http.Transport); ok && tr.Clone().WriteBufferSize != c.wantWrite {
			t.Errorf("%s: a clone (what aws-lambda-go takes) lost the size", c.name)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		name      string
		env       map[string]string
		limit     int64
		wantLimit bool
	}{
		{"the template's 256 MB", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"}, 192 << 20, true},
		{"10 GB", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240"}, 7680 << 20, true},
		{"GOMEMLIMIT wins", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "GOMEMLIMIT": "100MiB"}, 0, false},
		{"outside Lambda", map[string]string{}, 0, false},
		{"not a number", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, 0, false},
		{"zero", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "0"}, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			limit, ok := MemoryLimit(func(k string) string { return c.env[k] })
			if limit != c.limit || ok != c.wantLimit {
				t.Errorf("MemoryLimit = %d, %v; want %d, %v", limit, ok, c.limit, c.wantLimit)
			}
		})
	}
}
