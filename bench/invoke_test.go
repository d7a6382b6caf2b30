package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lpmtls/lpmtls/shared/apigw"
	"github.com/lpmtls/lpmtls/shared/forward"
	"github.com/lpmtls/lpmtls/shared/lambdaevent"
	"github.com/lpmtls/lpmtls/shared/obs"
	"github.com/lpmtls/lpmtls/shared/testworld/lpsim"
	"github.com/lpmtls/lpmtls/shared/testworld/testenv"
)

// cpuNow is the CPU time this process has used (user and system, every thread: the
// garbage collector's work counts).
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/allocs:objects"}}

func allocsNow() (bytes, objects uint64) {
	metrics.Read(allocSample)
	return allocSample[0].Value.Uint64(), allocSample[1].Value.Uint64()
}

// side accumulates one side of a paired benchmark.
type side struct {
	cpu            time.Duration
	bytes, objects uint64
	n              int
}

func (s *side) run(fn func()) {
	b0, o0 := allocsNow()
	c0 := cpuNow()
	fn()
	s.cpu += cpuNow() - c0
	b1, o1 := allocsNow()
	s.bytes += b1 - b0
	s.objects += o1 - o0
	s.n++
}

func (s *side) cpuPerOp() float64   { return float64(s.cpu.Nanoseconds()) / float64(s.n) }
func (s *side) bytesPerOp() float64 { return float64(s.bytes) / float64(s.n) }

// oldInvoke is the forward function's invocation as it was before the single decode
// (the reference of BenchmarkInvoke): the kind detected by decoding the event into
// map[string]json.RawMessage, aws-lambda-go's typed decode with encoding/json, the
// handler's events.APIGatewayV2HTTPResponse with a base64 string body, json.Marshal.
func oldInvoke(ctx context.Context, h func(context.Context, *events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse, payload []byte) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil {
		return nil, err
	}
	var rc map[string]json.RawMessage
	var hc struct {
		Method string `json:"method"`
	}
	if json.Unmarshal(top["requestContext"], &rc) != nil || json.Unmarshal(rc["http"], &hc) != nil || hc.Method == "" {
		return nil, fmt.Errorf("not an HTTP API event")
	}
	var e events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &e); err != nil {
		return nil, err
	}
	return json.Marshal(h(ctx, &e))
}

// BenchmarkInvoke is a warm forward invocation from the payload bytes to the answer's
// bytes, in process (warm session, real lp client, the simulator echoing the body),
// with base64 bodies of 1 KiB, 64 KiB and 1 MiB: "before" is oldInvoke around the
// handler with its metrics, "after" the function's lambdaevent.Router. The two
// alternate call by call; cpu-ns is the process's CPU time per call (user+system, GC
// included, the in-process simulator's share too, the same on both sides), B and
// allocs the heap allocations per call, x-body those bytes over the body size.
func BenchmarkInvoke(b *testing.B) {
	w := newWorld(b, lpsim.Options{TargetHandler: http.HandlerFunc(streamEcho)})
	inst := w.newInstance(b, nil)
	b.Cleanup(inst.close)
	ctx := context.Background()
	if _, err := inst.mgr.Get(ctx); err != nil {
		b.Fatal(err)
	}
	before := &forward.Metrics{FunctionName: "forward", Out: io.Discard, Logger: w.logger}
	after := &forward.Metrics{FunctionName: "forward", Out: obs.NewBatch(io.Discard), Logger: w.logger}
	// As lambdaevent.Start runs it in Lambda: one invocation at a time, the answer's
	// buffer reused.
	router := lambdaevent.Router{Name: "forward", Reply: after.Reply(inst.svc.Reply)}.Sequential()
	oldHandler := before.HTTP(inst.svc.HandleHTTP)
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		body := make([]byte, size)
		_, _ = rand.Read(body)
		payload, err := json.Marshal(forwardEvent(b, w.mapped, nil, "application/octet-stream", base64.StdEncoding.EncodeToString(body)))
		if err != nil {
			b.Fatal(err)
		}
		check := func(out []byte, err error) {
			var r events.APIGatewayV2HTTPResponse
			if err != nil || json.Unmarshal(out, &r) != nil || r.StatusCode != 200 || len(r.Body) != base64.StdEncoding.EncodedLen(size) {
				b.Fatalf("invoke: %v %.300s", err, out)
			}
		}
		runBefore := func() { check(oldInvoke(ctx, oldHandler, payload)) }
		runAfter := func() { check(router.Invoke(ctx, payload)) }
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			runBefore()
			runAfter()
			var sb, sa side
			i := 0
			for b.Loop() {
				if i%2 == 0 {
					sb.run(runBefore)
					sa.run(runAfter)
				} else {
					sa.run(runAfter)
					sb.run(runBefore)
				}
				i++
			}
			b.ReportMetric(sb.cpuPerOp(), "before-cpu-ns")
			b.ReportMetric(sa.cpuPerOp(), "after-cpu-ns")
			b.ReportMetric(sa.cpuPerOp()/sb.cpuPerOp(), "cpu-ratio")
			b.ReportMetric(sb.bytesPerOp(), "before-B")
			b.ReportMetric(sa.bytesPerOp(), "after-B")
			b.ReportMetric(sa.bytesPerOp()/sb.bytesPerOp(), "B-ratio")
			b.ReportMetric(sa.bytesPerOp()/float64(size), "after-x-body")
			b.ReportMetric(float64(sb.objects)/float64(sb.n), "before-allocs")
			b.ReportMetric(float64(sa.objects)/float64(sa.n), "after-allocs")
		})
	}
}

// BenchmarkDecodeEncode is the event decode and answer encode of a 1 MiB binary body
// (the Router, with a handler that decodes the body and answers it back) against the
// physical floor: a bare base64 decode of the event's body text and encode of the
// result, alternated. floor-ratio is decode+encode over the floor, in CPU time.
func BenchmarkDecodeEncode(b *testing.B) {
	body := make([]byte, 1<<20)
	_, _ = rand.Read(body)
	text := base64.StdEncoding.EncodeToString(body)
	payload, err := json.Marshal(forwardEvent(b, "https://x.example/", nil, "application/octet-stream", text))
	if err != nil {
		b.Fatal(err)
	}
	router := lambdaevent.Router{Name: "echo", Reply: func(_ context.Context, e *events.APIGatewayV2HTTPRequest) apigw.Reply {
		in, err := apigw.FromV2(e)
		if err != nil {
			b.Fatal(err)
		}
		return apigw.Reply{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/octet-stream"}, Body: in.Body, Base64: true}
	}}
	codec := func() {
		out, err := router.Invoke(context.Background(), payload)
		if err != nil || len(out) < len(text) {
			b.Fatal(err)
		}
	}
	// The floor gets the same fresh buffers per call the codec path allocates.
	floor := func() {
		dec := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
		n, err := base64.StdEncoding.Decode(dec, []byte(text)[:len(text):len(text)])
		if err != nil || n != len(body) {
			b.Fatal(err)
		}
		enc := make([]byte, base64.StdEncoding.EncodedLen(n))
		base64.StdEncoding.Encode(enc, dec[:n])
	}
	var sc, sf side
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			sc.run(codec)
			sf.run(floor)
		} else {
			sf.run(floor)
			sc.run(codec)
		}
		i++
	}
	b.ReportMetric(sc.cpuPerOp(), "codec-cpu-ns")
	b.ReportMetric(sf.cpuPerOp(), "floor-cpu-ns")
	b.ReportMetric(sc.cpuPerOp()/sf.cpuPerOp(), "floor-ratio")
	b.ReportMetric(sc.bytesPerOp()/float64(len(body)), "codec-x-body")
}

// refCommit is main just before the single decode, encode and write: BenchmarkWarmPath
// builds its forward bootstrap as the reference.
const refCommit = "fe67e60e7a7550efc594e791bbb4e361596cea9a"

// buildRef builds functions/forward of refCommit into .build/ref/<commit>/ (once; kept
// between runs), offline from the module cache.
func buildRef(b *testing.B) string {
	b.Helper()
	root := testenv.RepoRoot(b)
	dir := filepath.Join(root, ".build", "ref", refCommit)
	bin := filepath.Join(dir, "forward", "bootstrap")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		b.Fatal(err)
	}
	archive := exec.Command("sh", "-c", "git archive "+refCommit+" | tar -x -C "+src)
	archive.Dir = root
	if out, err := archive.CombinedOutput(); err != nil {
		b.Fatalf("git archive %s: %v\n%s", refCommit, err, out)
	}
	build := exec.Command("go", "build", "-o", bin, "./functions/forward")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-tags=lambda.norpc -trimpath -mod=readonly", "GOPROXY=off")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the reference bootstrap: %v\n%s", err, out)
	}
	return bin
}

// threadCPU is a process's CPU time so far, summed over its threads from
// /proc/PID/task/*/schedstat (nanoseconds, unlike the 10 ms ticks of /proc/PID/stat).
func threadCPU(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/schedstat")
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that ended
		}
		f := strings.Fields(string(raw))
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return time.Duration(sum), nil
}

// deployedEnv is the forward function's Go settings in template.yaml.
var deployedEnv = []string{"GOMAXPROCS=1", "GOGC=200"}

// BenchmarkWarmPath runs warm invocations through built forward bootstraps under the
// Runtime API: the reference (refCommit) and this tree, each with Go's default
// GOMAXPROCS and with GOMAXPROCS=1, this tree as deployed (deployedEnv), and bench/cmd/barefunc (the Runtime API exchange
// and the Go runtime alone: an echo with no network call, GOMAXPROCS=1), started side
// by side and invoked in turn, with base64 bodies of 1 KiB, 64 KiB and 1 MiB. cpu-us is
// the bootstrap's own CPU per invocation (its threads' schedstat), deployed/before-cpu
// compares this tree as the template runs it (deployedEnv) with the reference as it
// ran (Go's defaults), gogc/gomaxprocs1-cpu is what GOGC adds, syscalls the system calls per invocation counted by `strace -c -f`
// attached for a further 50 invocations (skipped, with a message, when strace is not
// installed).
func BenchmarkWarmPath(b *testing.B) {
	env := testenv.NewWith(b, lpsim.Options{TargetHandler: http.HandlerFunc(streamEcho)})
	type proc struct {
		name string
		f    *testenv.Function
	}
	ref, cur := buildRef(b), testenv.Build(b, "forward")
	bare := testenv.BuildPackage(b, "./bench/cmd/barefunc", "CGO_ENABLED=0", "GOFLAGS=-tags=lambda.norpc -trimpath")
	var procs []proc
	for _, c := range []struct {
		name, bin string
		env       []string
	}{
		{"before", ref, nil}, {"after", cur, nil}, {"before-gomaxprocs1", ref, []string{"GOMAXPROCS=1"}},
		{"after-gomaxprocs1", cur, []string{"GOMAXPROCS=1"}}, {"deployed", cur, deployedEnv},
		{"bare-gomaxprocs1", bare, []string{"GOMAXPROCS=1"}},
	} {
		procs = append(procs, proc{c.name, testenv.StartBinary(b, c.bin, env.FunctionEnv(append([]string{"AWS_LAMBDA_LOG_LEVEL=INFO"}, c.env...)...))})
	}
	_, errStrace := exec.LookPath("strace")
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		body := make([]byte, size)
		_, _ = rand.Read(body)
		payload, err := json.Marshal(forwardEvent(b, env.MappedURL, nil, "application/octet-stream", base64.StdEncoding.EncodeToString(body)))
		if err != nil {
			b.Fatal(err)
		}
		invoke := func(p proc) {
			res, err := p.f.Process.Invoke(context.Background(), payload, 30*time.Second)
			if err != nil || res.Error != nil || !strings.Contains(string(res.Payload[:min(len(res.Payload), 100)]), `"statusCode":200`) {
				b.Fatalf("%s: %v %+v %.300s", p.name, err, res.Error, res.Payload)
			}
		}
		for _, p := range procs {
			invoke(p) // connections, session
		}
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			cpu := make([]time.Duration, len(procs))
			for b.Loop() {
				for i, p := range procs {
					c0, _ := threadCPU(p.f.Process.Cmd.Process.Pid)
					invoke(p)
					c1, _ := threadCPU(p.f.Process.Cmd.Process.Pid)
					cpu[i] += c1 - c0
				}
			}
			b.StopTimer()
			for i, p := range procs {
				b.ReportMetric(float64(cpu[i].Microseconds())/float64(b.N), p.name+"-cpu-us")
			}
			b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "after/before-cpu")
			b.ReportMetric(float64(cpu[3])/float64(cpu[1]), "gomaxprocs1/default-cpu")
			b.ReportMetric(float64(cpu[4])/float64(cpu[3]), "gogc/gomaxprocs1-cpu")
			// As deployed: the template's GOMAXPROCS and GOGC now; before, Go's defaults.
			b.ReportMetric(float64(cpu[4])/float64(cpu[0]), "deployed/before-cpu")
			if errStrace != nil {
				b.Logf("syscalls per invocation not counted: strace is not installed (apt-get install strace)")
				return
			}
			for _, p := range procs {
				n, err := countSyscalls(p.f.Process.Cmd.Process.Pid, 50, func() { invoke(p) })
				if err != nil {
					b.Fatalf("%s: strace: %v", p.name, err)
				}
				b.ReportMetric(n, p.name+"-syscalls")
			}
		})
	}
	for _, p := range procs {
		if u, err := p.f.Process.Usage(); err == nil {
			b.Logf("%s: RSS %.1f MB, peak %.1f MB", p.name, float64(u.RSSKB)/1024, float64(u.PeakRSSKB)/1024)
		}
	}
}

// countSyscalls attaches strace to pid, runs fn n times and returns the system calls per
// run (every thread; strace's summary, the attach and detach excluded by a baseline
// of zero runs).
func countSyscalls(pid, n int, fn func()) (float64, error) {
	total := func(runs int) (int, error) {
		out, err := os.CreateTemp("", "strace-")
		if err != nil {
			return 0, err
		}
		defer os.Remove(out.Name())
		out.Close()
		cmd := exec.Command("strace", "-c", "-f", "-o", out.Name(), "-p", strconv.Itoa(pid))
		stderr, err := cmd.StderrPipe()
		if err != nil {
			return 0, err
		}
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		// strace says "Process N attached with M threads" once it traces them all.
		lines := bufio.NewScanner(stderr)
		for lines.Scan() && !strings.Contains(lines.Text(), "attached") {
		}
		go func() { _, _ = io.Copy(io.Discard, stderr) }()
		for range runs {
			fn()
		}
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		raw, err := os.ReadFile(out.Name())
		if err != nil {
			return 0, err
		}
		// LPMTLS_BENCH_STRACE=1 prints strace's table: which calls, how many.
		if os.Getenv("LPMTLS_BENCH_STRACE") != "" && runs > 0 {
			fmt.Fprintf(os.Stderr, "strace -c -f, %d runs:\n%s\n", runs, raw)
		}
		for line := range strings.Lines(string(raw)) {
			if f := strings.Fields(line); len(f) >= 4 && f[len(f)-1] == "total" {
				return strconv.Atoi(f[3])
			}
		}
		if len(strings.TrimSpace(string(raw))) == 0 {
			return 0, nil // nothing was called while attached
		}
		return 0, fmt.Errorf("no total in strace's summary:\n%s", raw)
	}
	base, err := total(0)
	if err != nil {
		return 0, err
	}
	all, err := total(n)
	if err != nil {
		return 0, err
	}
	return float64(all-base) / float64(n), nil
}
