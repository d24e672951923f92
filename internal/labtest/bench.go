package labtest

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchRequested skips the test unless HC_BENCH=1. Benchmarks that run as
// tests (failover gaps, in namespaces) live in files built only with
// -tags hcbench, so `make test` neither builds nor skips them; scripts/bench*
// run them with the tag and HC_BENCH=1.
func BenchRequested(t testing.TB, script string) {
	t.Helper()
	if os.Getenv("HC_BENCH") != "1" {
		t.Skipf("benchmark: set HC_BENCH=1 (%s)", script)
	}
}

// BenchRuns is HC_BENCH_RUNS (runs per cell), or def.
func BenchRuns(t testing.TB, def int) int {
	t.Helper()
	s := os.Getenv("HC_BENCH_RUNS")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("HC_BENCH_RUNS=%q: want a positive number", s)
	}
	return n
}

// BenchIntervals is HC_BENCH_INTERVALS ("100ms,10ms"), or the advert
// intervals the issues measure: 1 s, 100 ms, 10 ms.
func BenchIntervals(t testing.TB) []time.Duration {
	t.Helper()
	s := os.Getenv("HC_BENCH_INTERVALS")
	if s == "" {
		return []time.Duration{time.Second, 100 * time.Millisecond, 10 * time.Millisecond}
	}
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 {
			t.Fatalf("HC_BENCH_INTERVALS=%q: %q is not a positive duration", s, f)
		}
		out = append(out, d)
	}
	return out
}

// KernelRelease is the running kernel's release (uname -r), for the
// benchmarks' records.
func KernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
