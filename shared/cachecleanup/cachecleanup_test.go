package cachecleanup_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// answers is the ResponseURL: a real HTTP server recording every PUT, as S3 would
// receive it.
type answers struct {
	mu  sync.Mutex
	got []answer
}

type answer struct {
	method      string
	contentType []string // nil when the header was not sent
	body        cfn.Response
	raw         string
}

func newAnswers(t *testing.T) (*answers, string) {
	a := &answers{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		an := answer{method: r.Method, contentType: r.Header.Values("Content-Type"), raw: string(raw)}
		if err := json.Unmarshal(raw, &an.body); err != nil {
			http.Error(w, "not JSON", http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.got = append(a.got, an)
		a.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return a, srv.URL + "/cloudformation-custom-resource-response?X-Amz-Signature=abc"
}

func (a *answers) only(t *testing.T) answer {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.got) != 1 {
		t.Fatalf("%d answers at the ResponseURL, want 1: %+v", len(a.got), a.got)
	}
	return a.got[0]
}

func event(requestType, responseURL, physicalID string) cfn.Event {
	return cfn.Event{
		RequestType: cfn.RequestType(requestType), RequestID: "req-" + requestType, ResponseURL: responseURL,
		ResourceType: "Custom::CacheCleanup", LogicalResourceID: "CacheCleanup", PhysicalResourceID: physicalID,
		StackID:            "arn:aws:cloudformation:us-east-1:123456789012:stack/lpmtls-a/0d5e6f70",
		ResourceProperties: map[string]any{"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:lpmtls-a-mapping"},
	}
}

// seed writes a cache the way a running stack leaves it, deeper levels and more than
// one page and batch included, and a neighbour stack's under a prefix sharing the
// first letters.
func seed(env *testenv.Env) (mine int) {
	for i := range 23 {
		env.AWS.SetParameter(testenv.Prefix+"/"+strconv.Itoa(900+i)+"/token", `{"bearer":"b"}`, "SecureString")
	}
	env.AWS.SetParameter(testenv.Prefix+"/90412233/domains", `{}`, "String")
	env.AWS.SetParameter(testenv.Prefix+"-staging/90412233/token", `{"bearer":"s"}`, "SecureString")
	return 24
}

// TestCacheCleanupThroughBootstrap drives the built mapping function with CloudFormation's
// events and checks what it PUTs at the ResponseURL and what is left in SSM.
func TestCacheCleanupThroughBootstrap(t *testing.T) {
	cases := []struct {
		name        string
		requestType string
		physicalID  string
		refuse      string // SSM operation answering AccessDeniedException
		wantStatus  cfn.StatusType
		wantLeft    int // parameters left under the prefix
		wantReason  string
		wantPhysID  string
	}{
		{name: "create does nothing", requestType: "Create", wantStatus: cfn.StatusSuccess, wantLeft: 24,
			wantPhysID: "lpmtls-cache-cleanup:" + testenv.Prefix},
		{name: "update does nothing and keeps the id", requestType: "Update", physicalID: "lpmtls-cache-cleanup:/old",
			wantStatus: cfn.StatusSuccess, wantLeft: 24, wantPhysID: "lpmtls-cache-cleanup:/old"},
		{name: "delete empties the prefix", requestType: "Delete", physicalID: "lpmtls-cache-cleanup:" + testenv.Prefix,
			wantStatus: cfn.StatusSuccess, wantLeft: 0, wantPhysID: "lpmtls-cache-cleanup:" + testenv.Prefix},
		{name: "delete refused by SSM", requestType: "Delete", physicalID: "p-1", refuse: "AmazonSSM.DeleteParameters",
			wantStatus: cfn.StatusFailed, wantLeft: 24, wantReason: "AccessDeniedException", wantPhysID: "p-1"},
		{name: "listing refused by SSM", requestType: "Delete", physicalID: "p-1", refuse: "AmazonSSM.GetParametersByPath",
			wantStatus: cfn.StatusFailed, wantLeft: 24, wantReason: "AccessDeniedException", wantPhysID: "p-1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := testenv.New(t)
			seed(env)
			if c.refuse != "" {
				env.AWS.FailNext(c.refuse, 1, http.StatusBadRequest, "AccessDeniedException")
			}
			ans, url := newAnswers(t)
			f := env.Start(t, "mapping")
			before := env.Sim.Counts()
			res := f.InvokeResult(t, event(c.requestType, url, c.physicalID))
			if res.Error != nil {
				t.Fatalf("invocation error %s\n%s", res.Error.ErrorMessage, f.Logs())
			}
			a := ans.only(t)
			if a.method != http.MethodPut || len(a.contentType) != 0 {
				t.Fatalf("%s with Content-Type %q; want a PUT without one (the URL is signed without it)", a.method, a.contentType)
			}
			b := a.body
			if b.Status != c.wantStatus || b.RequestID != "req-"+c.requestType || b.LogicalResourceID != "CacheCleanup" ||
				!strings.HasSuffix(b.StackID, "stack/lpmtls-a/0d5e6f70") || b.PhysicalResourceID != c.wantPhysID {
				t.Fatalf("answer %s", a.raw)
			}
			if !strings.Contains(b.Reason, c.wantReason) || (c.wantStatus == cfn.StatusFailed) != (b.Reason != "") {
				t.Fatalf("reason %q, want one mentioning %q", b.Reason, c.wantReason)
			}
			if len(a.raw) > 4096 {
				t.Fatalf("answer of %d bytes; CloudFormation takes at most 4096", len(a.raw))
			}
			if left := env.AWS.ParameterNames(testenv.Prefix + "/"); len(left) != c.wantLeft {
				t.Fatalf("%d parameters left under the prefix, want %d: %v", len(left), c.wantLeft, left)
			}
			if _, _, ok := env.AWS.Parameter(testenv.Prefix + "-staging/90412233/token"); !ok {
				t.Fatal("the neighbour stack's cache was deleted")
			}
			if n := env.Sim.Counts(); n != before {
				t.Fatalf("the custom resource called LivePerson: %+v → %+v", before, n)
			}
		})
	}
}

// TestCacheCleanupAnswersBeforeDeadline: an SSM that never answers in time still gets
// CloudFormation a FAILED answer within the invocation, not an hour's wait.
func TestCacheCleanupAnswersBeforeDeadline(t *testing.T) {
	env := testenv.New(t)
	seed(env)
	env.AWS.SetDelay("AmazonSSM.", time.Minute)
	ans, url := newAnswers(t)
	f := env.Start(t, "mapping")
	res := f.InvokeWithin(t, event("Delete", url, "p-1"), 4*time.Second)
	if res.Error != nil {
		t.Fatalf("invocation error %s\n%s", res.Error.ErrorMessage, f.Logs())
	}
	b := ans.only(t).body
	if b.Status != cfn.StatusFailed || !strings.Contains(b.Reason, "deadline") {
		t.Fatalf("answer %+v", b)
	}
}
