package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	in := `goos: linux
cpu: Test CPU
BenchmarkWarmForward1KiB/paired-2   3180  362978 ns/op  22489 overhead-p50-ns  54083 overhead-p99-ns  1.212 ratio-p50
BenchmarkLargeBody/5MiB-upload-2  43  24293892 ns/op  215.81 MB/s  4.064 peak-x-body
BenchmarkWarmInvoke-2  1000  845171 ns/op  20.06 rss-MB
PASS
`
	var out bytes.Buffer
	if err := run(strings.NewReader(in), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"### WarmForward1KiB", "| paired | 3180 | 362978 | 22489 | 54083 | 1.21 |",
		"| peak memory ≤ 3 × body (5 MiB request) | 4.06 peak-x-body | **missed** |",
		"| forward overhead p50 ≤ 0.3 ms | 22489 overhead-p50-ns | met |",
		"| RSS ≤ 30 MB after 1,000 warm invocations | 20.06 rss-MB | met |",
		"| init ≤ 15 ms (forward) | – | not run |",
		"_goos: linux · cpu: Test CPU_",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
}
