//go:build hcbench

package benchmaps_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/labtest"
)

// The benchmarks of scripts/bench-rbs: built only with -tags hcbench, run
// only with HC_BENCH=1.

func writeResult(t *testing.T, name, md string) {
	t.Log("\n" + md)
	if dir := os.Getenv("HC_BENCH_OUT"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name+".md"), []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBenchBatch100k measures a batch backup of 100 000 entries from the
// sender's table to the receiver's BPF routes map (target ≤ 1 s).
func TestBenchBatch100k(t *testing.T) {
	labtest.BenchRequested(t, "scripts/bench-rbs")
	const n = 100000
	md := "| entries | batch start → last route in the BPF map | rbs transfer (snapshot, encode, TCP, decode) | mld Import | route apply (Derive + map writes) | in bpf.ReplaceRoutes | ReplaceRoutes calls | ≤ 1 s |\n|---:|---:|---:|---:|---:|---:|---:|:-:|\n"
	for range 5 {
		md += runBatch(t, n).row() + "\n"
	}
	writeResult(t, "batch", md)
}

// TestBenchLatency measures real-time backup: an MLDv2 report handled by
// the sender's MLD interface → Publish → TCP → receiver Upsert → mld →
// route table → BPF map write, for 1000 joins one at a time.
func TestBenchLatency(t *testing.T) {
	labtest.BenchRequested(t, "scripts/bench-rbs")
	md := "| joins | path | p50 | p90 | p99 | max | ≤ 1 ms at p99 |\n|---:|---|---:|---:|---:|---:|:-:|\n"
	for _, load := range []bool{false, true} {
		lat := runLatency(t, 1000, load)
		p := func(q float64) time.Duration { return labtest.Percentile(lat, q) }
		what := "sender MLD report → receiver BPF map, idle tables"
		if load {
			what = "same, both sides already holding 10 000 groups"
		}
		md += fmt.Sprintf("| %d | %s | %s | %s | %s | %s | %s |\n", len(lat), what, us(p(0.5)), us(p(0.9)), us(p(0.99)), us(labtest.Max(lat)), verdict(p(0.99) <= time.Millisecond))
	}
	writeResult(t, "latency", md)
}

func us(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }
