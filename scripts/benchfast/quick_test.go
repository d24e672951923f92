package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestQuick runs the harness itself in -quick mode at fan-out 2, both
// variants: it guards the benchmark's plumbing (topology, both paths, both
// receiver kinds, counting), never its speed.
func TestQuick(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("privileged test in CI without root")
		}
		t.Skip("needs root (network namespaces, XDP, ip6mr)")
	}
	for _, tool := range []string{"trafgen", "smcrouted", "nsenter", "taskset", "ethtool", "ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing in CI: %v", tool, err)
			}
			t.Skipf("%s not installed (make deps-test)", tool)
		}
	}
	if testing.Short() {
		t.Skip("runs traffic for several seconds")
	}
	const n = 2
	cfg := Config{Egress: "auto", Rounds: 1, Duration: time.Second, Warmup: 300 * time.Millisecond, Fanouts: []int{n},
		Variants: []string{"sink", "socket"}, Size: 80, GenCPU: 0, RouterCPU: -1, IngressGRO: true}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var tags []string
	cfg.onTopo = func(tag string) { tags = append(tags, tag) }
	samples, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range samples {
		seen[s.Variant+"/"+s.Path] = true
		if s.Fanout != n || len(s.Receivers) != n {
			t.Errorf("%s %s: fan-out %d with %d route receivers, want %d", s.Variant, s.Path, s.Fanout, len(s.Receivers), n)
		}
		if s.Offered <= 0 || s.Seconds <= 0 {
			t.Errorf("%s %s: offered %.0f pps over %.2fs", s.Variant, s.Path, s.Offered, s.Seconds)
		}
		for i, r := range s.Receivers {
			if r <= 0 {
				t.Errorf("%s %s: receiver h%d got nothing", s.Variant, s.Path, i+1)
			}
		}
		// Exactly the route's receivers: the bystander hears nothing, on
		// either path.
		if len(s.Bystanders) != 1 {
			t.Errorf("%s %s: %d bystanders, want 1", s.Variant, s.Path, len(s.Bystanders))
		}
		for i, r := range s.Bystanders {
			if r != 0 {
				t.Errorf("%s %s: bystander h%d got %.0f pps", s.Variant, s.Path, n+i+1, r)
			}
		}
		// Nothing is lost between the route's receivers on the hotcast
		// path: one broadcast serves them all.
		if s.Path == pathHotcast && s.MinReceiver() < 0.9*s.PerReceiver() {
			t.Errorf("%s hotcast: receivers uneven %v", s.Variant, s.Receivers)
		}
	}
	for _, k := range []string{"sink/hotcast", "sink/kernel", "socket/hotcast", "socket/kernel"} {
		if !seen[k] {
			t.Errorf("no %s sample", k)
		}
	}
	// Everything the run built is gone.
	if len(tags) != 2 {
		t.Fatalf("%d topologies built, want 2", len(tags))
	}
	for _, tag := range tags {
		if m, _ := filepath.Glob(nsDir + "hcb" + tag + "-*"); len(m) != 0 {
			t.Errorf("namespaces left behind: %v", m)
		}
	}
}
