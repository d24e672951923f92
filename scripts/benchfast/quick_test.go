package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// needRoot skips (fails in CI) without root or one of the tools.
func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("privileged test in CI without root")
		}
		t.Skip("needs root (network namespaces, XDP, a bridge or ip6mr)")
	}
	for _, tool := range append([]string{"nsenter", "taskset", "ethtool", "ip", "tc"}, tools...) {
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
}

// quick runs the harness itself in -quick mode at fan-out 2 with the given
// generator, kernel baseline and variants: it guards the benchmark's
// plumbing (topology, both paths, the receiver kinds, counting), never its
// speed.
func quick(t *testing.T, gen, baseline string, variants ...string) {
	t.Helper()
	const n = 2
	cfg := Config{Egress: "auto", Rounds: 1, Duration: time.Second, Warmup: 300 * time.Millisecond, Fanouts: []int{n},
		Variants: variants, Size: 80, GenCPU: 0, IngressGRO: true, Generator: gen, Baseline: baseline,
		RouterCPU: defaultRouterCPU(gen, 0, 2), RouterRT: true}
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
		t.Logf("%s %s (%s baseline, %s generator): offered %.0f pps, generator %.0f pps, receivers %.0f, bystanders %.0f, generator-bound %v",
			s.Variant, s.Path, s.Baseline, s.Generator, s.Offered, s.GenRate, s.Receivers, s.Bystanders, s.GeneratorBound())
		if s.Baseline != baseline || s.Generator != gen {
			t.Errorf("%s %s: baseline %q generator %q, want %q %q", s.Variant, s.Path, s.Baseline, s.Generator, baseline, gen)
		}
		if s.Fanout != n || len(s.Receivers) != n {
			t.Errorf("%s %s: fan-out %d with %d route receivers, want %d", s.Variant, s.Path, s.Fanout, len(s.Receivers), n)
		}
		if s.Offered <= 0 || s.GenRate <= 0 || s.Seconds <= 0 {
			t.Errorf("%s %s: offered %.0f pps, generator %.0f pps over %.2fs", s.Variant, s.Path, s.Offered, s.GenRate, s.Seconds)
		}
		for i, r := range s.Receivers {
			if r <= 0 {
				t.Errorf("%s %s: receiver h%d got nothing", s.Variant, s.Path, i+1)
			}
			// Nothing is delivered that was not offered.
			if r > 1.02*s.Offered {
				t.Errorf("%s %s: receiver h%d got %.0f pps of %.0f offered", s.Variant, s.Path, i+1, r, s.Offered)
			}
		}
		// Exactly the route's receivers: the bystander hears nothing, on
		// either path (the bridge's snooping included).
		if len(s.Bystanders) != 1 {
			t.Errorf("%s %s: %d bystanders, want 1", s.Variant, s.Path, len(s.Bystanders))
		}
		for i, r := range s.Bystanders {
			if r != 0 {
				t.Errorf("%s %s: bystander h%d got %.0f pps", s.Variant, s.Path, n+i+1, r)
			}
		}
		// Nothing is lost between the route's sinks on the hotcast path:
		// one broadcast serves them all. (Sockets are read by goroutines
		// that share the generator's CPU: each falls behind on its own.)
		if s.Variant == "sink" && s.Path == pathHotcast && s.MinReceiver() < 0.9*s.PerReceiver() {
			t.Errorf("%s hotcast: receivers uneven %v", s.Variant, s.Receivers)
		}
	}
	for _, v := range variants {
		for _, p := range []string{pathHotcast, pathKernel} {
			if !seen[v+"/"+p] {
				t.Errorf("no %s/%s sample", v, p)
			}
		}
	}
	// Everything the run built is gone.
	if len(tags) != len(variants) {
		t.Fatalf("%d topologies built, want %d", len(tags), len(variants))
	}
	for _, tag := range tags {
		if m, _ := filepath.Glob(nsDir + "hcb" + tag + "-*"); len(m) != 0 {
			t.Errorf("namespaces left behind: %v", m)
		}
	}
}

// TestQuick: the default generator (xdp live frames) against the bridge
// baseline, which every kernel with a bridge has; both variants.
func TestQuick(t *testing.T) {
	needRoot(t, "bridge")
	quick(t, genXDP, baselineBridge, "sink", "socket")
}

// TestQuickIP6MR: the same against kernel ip6mr (smcroute), where the
// kernel has it.
func TestQuickIP6MR(t *testing.T) {
	if !haveIP6MR() {
		t.Skip("kernel without CONFIG_IPV6_MROUTE (" + ip6mrProc + " absent): no ip6mr to compare against")
	}
	needRoot(t, "smcrouted")
	quick(t, genXDP, baselineIP6MR, "sink", "socket")
}

// TestQuickTrafgen keeps the trafgen fallback working (sink receivers).
func TestQuickTrafgen(t *testing.T) {
	needRoot(t, "trafgen", "bridge")
	quick(t, genTrafgen, baselineBridge, "sink")
}
