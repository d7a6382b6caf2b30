// Command benchtable reads `go test -bench` output on stdin and prints it as markdown:
// one table per top-level benchmark (a column per metric unit), then the project's
// performance targets marked met or missed. Lines that are not results pass through
// to stderr so failures stay visible.
//
//	go test -run '^$' -bench . -benchmem ./bench/... | go run ./bench/cmd/benchtable
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

type result struct {
	name    string // without the -GOMAXPROCS suffix
	n       string
	metrics map[string]float64
	units   []string
}

// target is one line of issues 4, 8 and 14's targets (14: against the Node.js handler too): metric unit of benchmark name at most max.
type target struct {
	bench, unit string
	max         float64
	what        string
}

var targets = []target{
	{"WarmForward1KiB/paired", "overhead-p50-ns", 300_000, "forward overhead p50 ≤ 0.3 ms"},
	{"WarmForward1KiB/paired", "overhead-p99-ns", 1_000_000, "forward overhead p99 ≤ 1 ms"},
	{"LargeBody/1MiB-echo", "peak-x-body", 3, "peak memory ≤ 3 × body (1 MiB both ways)"},
	{"LargeBody/4MiB-echo", "peak-x-body", 3, "peak memory ≤ 3 × body (4 MiB both ways)"},
	{"LargeBody/5MiB-upload", "peak-x-body", 3, "peak memory ≤ 3 × body (5 MiB request)"},
	{"AuthCalls/warm", "logins/op", 0, "warm: 0 logins"},
	{"AuthCalls/warm", "ssm/op", 0, "warm: 0 SSM calls"},
	{"AuthCalls/warm", "sm/op", 0, "warm: 0 Secrets Manager calls"},
	{"AuthCalls/warm", "tls/op", 0, "warm: 0 new TLS connections"},
	{"AuthCalls/cold-with-ssm-token", "logins/op", 0, "cold with SSM token: 0 logins"},
	{"AuthCalls/cold-with-ssm-token", "ssm-rt/op", 1, "cold with SSM token: 1 SSM round trip"},
	{"AuthCalls/cold-without", "logins/op", 1, "cold without token: 1 login"},
	{"LoginStorm/loopback", "logins-max", 3, "storm of 100: ≤ 3 logins (loopback)"},
	{"LoginStorm/login-100ms", "logins-max", 3, "storm of 100: ≤ 3 logins (100 ms login)"},
	{"LoginStorm/loopback", "max-lag-x-login", 1, "storm: last session ≤ 1 login RTT after the first (loopback)"},
	{"LoginStorm/login-100ms", "max-lag-x-login", 1, "storm: last session ≤ 1 login RTT after the first (100 ms login)"},
	{"ColdInvoke/warm-cache", "aws-calls/op", 2, "cold start with the cache in SSM: 2 AWS calls"},
	{"ColdInvoke/warm-cache", "aws-rt/op", 1, "cold start with the cache in SSM: 1 AWS round trip"},
	{"ColdInvoke/warm-cache", "first-invoke-x-delay", 1.5, "cold start with the cache in SSM ≈ one AWS delay, not two"},
	{"ColdStart/forward", "init-p50-ms", 15, "init ≤ 15 ms (forward)"},
	{"ColdStart/mapping", "init-p50-ms", 15, "init ≤ 15 ms (mapping)"},
	{"BinarySize/forward", "MB", 12, "binary ≤ 12 MB (forward)"},
	{"BinarySize/mapping", "MB", 12, "binary ≤ 12 MB (mapping)"},
	{"WarmInvoke", "rss-MB", 30, "RSS ≤ 30 MB after 1,000 warm invocations"},
	{"SQSBatch/concurrent", "batch-x-slowest", 1.5, "batch of 10 ≈ slowest message"},
	{"ForwardMetrics/discard-1KiB", "overhead-p50-ns", 10_000, "forward metrics ≤ 10 µs (1 KiB, rendering)"},
	{"ForwardMetrics/discard-64KiB", "overhead-p50-ns", 10_000, "forward metrics ≤ 10 µs (64 KiB, rendering)"},
	{"ForwardMetrics/pipe-1KiB", "overhead-p50-ns", 10_000, "forward metrics ≤ 10 µs (1 KiB, with the stdout write)"},
	{"WarmPath/1024KiB", "deployed/before-cpu", 1.0 / 3, "1 MiB forward: bootstrap CPU ≤ 1/3 of before"},
	{"Invoke/1024KiB", "B-ratio", 1.0 / 3, "1 MiB forward: allocated bytes ≤ 1/3 of before"},
	{"Invoke/1024KiB", "after-x-body", 3, "1 MiB forward: allocated bytes ≤ 3 × body (in-process simulator included)"},
	{"WarmPath/64KiB", "deployed/before-cpu", 0.7, "64 KiB forward: bootstrap CPU −30%"},
	{"WarmPath/1KiB", "deployed/before-cpu", 0.7, "1 KiB forward: bootstrap CPU −30%"},
	{"WarmPath/1KiB", "deployed-syscalls", 30, "1 KiB: ≤ 30 syscalls per warm invocation (as deployed)"},
	{"WarmPath/64KiB", "deployed-syscalls", 30, "64 KiB: ≤ 30 syscalls per warm invocation (as deployed)"},
	{"DecodeEncode", "floor-ratio", 2, "1 MiB event decode + answer encode ≤ 2 × bare base64 decode + encode"},
	{"VersusNode/warm/1KiB", "ratio-p50", 1, "1 KiB: lpmtls adds less latency than the Node.js handler (p50)"},
	{"VersusNode/warm/64KiB", "ratio-p50", 1, "64 KiB: lpmtls adds less latency than the Node.js handler (p50)"},
	{"VersusNode/warm/1MiB", "ratio-p50", 1, "1 MiB: lpmtls adds less latency than the Node.js handler (p50)"},
	{"VersusNode/cold", "init-ratio", 1, "init shorter than the Node.js handler's"},
	{"VersusNode/cold", "first-ratio", 1, "first invocation (first-ever cold start) shorter than the Node.js handler's"},
}

var line = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+(\d+)\s+(.*)$`)

func main() {
	if err := run(os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out, passthrough io.Writer) error {
	var results []*result
	var env []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		t := sc.Text()
		m := line.FindStringSubmatch(t)
		if m == nil {
			for _, p := range []string{"goos:", "goarch:", "cpu:"} {
				if strings.HasPrefix(t, p) && !contains(env, t) {
					env = append(env, t)
				}
			}
			fmt.Fprintln(passthrough, t)
			continue
		}
		r := &result{name: m[1], n: m[3], metrics: map[string]float64{}}
		f := strings.Fields(m[4])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			r.metrics[f[i+1]] = v
			r.units = append(r.units, f[i+1])
		}
		results = append(results, r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(env) > 0 {
		fmt.Fprintf(out, "_%s_\n\n", strings.Join(env, " · "))
	}
	// Group by top-level name, keeping first-seen order.
	var groups []string
	byGroup := map[string][]*result{}
	for _, r := range results {
		g, _, _ := strings.Cut(r.name, "/")
		if _, ok := byGroup[g]; !ok {
			groups = append(groups, g)
		}
		byGroup[g] = append(byGroup[g], r)
	}
	for _, g := range groups {
		rs := byGroup[g]
		var units []string
		for _, r := range rs {
			for _, u := range r.units {
				if !contains(units, u) {
					units = append(units, u)
				}
			}
		}
		fmt.Fprintf(out, "### %s\n\n| case | n | %s |\n|---|---:|%s\n", g, strings.Join(units, " | "), strings.Repeat("---:|", len(units)))
		for _, r := range rs {
			name := strings.TrimPrefix(strings.TrimPrefix(r.name, g), "/")
			if name == "" {
				name = g
			}
			cells := make([]string, len(units))
			for i, u := range units {
				if v, ok := r.metrics[u]; ok {
					cells[i] = format(v)
				}
			}
			fmt.Fprintf(out, "| %s | %s | %s |\n", name, r.n, strings.Join(cells, " | "))
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "### Targets\n\n| target | measured | |\n|---|---:|---|\n")
	for _, t := range targets {
		var got *result
		for _, r := range results {
			if r.name == t.bench {
				got = r
			}
		}
		v, ok := 0.0, false
		if got != nil {
			v, ok = got.metrics[t.unit]
		}
		switch {
		case !ok:
			fmt.Fprintf(out, "| %s | – | not run |\n", t.what)
		case v <= t.max:
			fmt.Fprintf(out, "| %s | %s %s | met |\n", t.what, format(v), t.unit)
		default:
			fmt.Fprintf(out, "| %s | %s %s | **missed** |\n", t.what, format(v), t.unit)
		}
	}
	return nil
}

func format(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e15:
		return strconv.FormatInt(int64(v), 10)
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
