// Command benchfast is hotcast's fast-path benchmark: the same veth
// topology forwards one IPv6 multicast (S,G) stream 1 in -> N out through
// hotcast's XDP path and through a kernel baseline, alternately, and
// reports offered and delivered packets per second per receiver. The
// kernel baseline is ip6mr (driven by smcroute) where the kernel has
// CONFIG_IPV6_MROUTE, else a Linux bridge with MLD snooping. The stream
// comes from xdpgen (XDP live frames, one pinned CPU; trafgen as a
// fallback). The method is in docs/benchmark.md. Needs root; run it through
// scripts/bench-fastpath or `make bench`.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-fastpath:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg       Config
		fanouts   = flag.String("fanouts", "1,2,4,8", "fan-outs N to measure (comma-separated)")
		variants  = flag.String("variants", "sink,socket", "receiver variants: sink, socket")
		quick     = flag.Bool("quick", false, "smoke test: 1 round of 1 s (overrides -rounds, -duration)")
		outMD     = flag.String("out", "bench/fastpath.md", "Markdown tables (empty: none)")
		rawDir    = flag.String("raw", "bench/raw", "directory for the per-round CSV (empty: none)")
		verbose   = flag.Bool("v", false, "debug logging")
		paths     = flag.String("paths", "hotcast,kernel", "paths to run (one alone: for profiling)")
		egress    = flag.String("egress", "auto", "hotcast egress towards the receivers: xdp, clone, or auto (xdp for sink receivers, clone for socket receivers)")
		baseline  = flag.String("baseline", "auto", "kernel baseline: ip6mr (smcroute; needs CONFIG_IPV6_MROUTE), bridge (Linux bridge, MLD snooping), or auto (ip6mr where the kernel has it, else bridge)")
		tgArgs    = flag.String("trafgen-args", "", "extra trafgen arguments (space-separated; -generator trafgen)")
		routerCPU = flag.Int("router-cpu", -2, "CPU for the router's ingress NAPI thread (-1: the router runs in the generator's softirq, on -gen-cpu; default: another CPU than -gen-cpu with the xdp generator, -1 with trafgen)")
	)
	flag.StringVar(&cfg.Generator, "generator", genXDP, "stream generator: xdp (XDP live frames, Linux 5.18+) or trafgen (fallback)")
	flag.IntVar(&cfg.Rounds, "rounds", 5, "rounds per (variant, fan-out, path)")
	flag.DurationVar(&cfg.Duration, "duration", 3*time.Second, "measured window per run")
	flag.DurationVar(&cfg.Warmup, "warmup", 500*time.Millisecond, "generator running before the window opens")
	flag.IntVar(&cfg.Size, "size", 80, "frame size in bytes (Ethernet header included)")
	flag.IntVar(&cfg.GenCPU, "gen-cpu", 0, "CPU for the generator (-1: any)")
	flag.BoolVar(&cfg.RouterRT, "router-rt", true, "make the router's NAPI thread SCHED_FIFO (with -router-cpu), so other processes on its CPU do not take the router's time")
	flag.BoolVar(&cfg.IngressGRO, "ingress-gro", true, "GRO on the router's ingress veth (NAPI for the kernel path)")
	flag.Parse()

	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, XDP, a bridge or ip6mr)")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var err error
	if cfg.Fanouts, err = parseInts(*fanouts); err != nil {
		return fmt.Errorf("-fanouts: %w", err)
	}
	cfg.Variants = splitList(*variants)
	cfg.TrafgenArgs = strings.Fields(*tgArgs)
	cfg.Paths = splitList(*paths)
	switch *egress {
	case "xdp", "clone", "auto":
		cfg.Egress = *egress
	default:
		return fmt.Errorf("-egress: %q: want xdp, clone or auto", *egress)
	}
	for _, p := range cfg.Paths {
		if p != pathHotcast && p != pathKernel {
			return fmt.Errorf("-paths: unknown path %q", p)
		}
	}
	if *quick {
		cfg.Rounds, cfg.Duration, cfg.Warmup = 1, time.Second, 300*time.Millisecond
	}
	ip6mr := haveIP6MR()
	var note string
	if cfg.Baseline, note, err = resolveBaseline(*baseline, ip6mr); err != nil {
		return err
	}
	cfg.Logger.Info(note)
	cfg.RouterCPU = *routerCPU
	if cfg.RouterCPU == -2 {
		cfg.RouterCPU = defaultRouterCPU(cfg.Generator, cfg.GenCPU, runtime.NumCPU())
	}
	if cfg.Generator == genXDP && cfg.RouterCPU < 0 {
		cfg.Logger.Warn("the router shares the generator's CPU: every run is closed-loop (delivered = offered) and will be flagged generator-bound")
	}
	tools := []string{"nsenter", "taskset", "ethtool", "ip", "tc"}
	if cfg.Generator == genTrafgen {
		tools = append(tools, "trafgen")
	}
	switch cfg.Baseline {
	case baselineIP6MR:
		tools = append(tools, "smcrouted")
	case baselineBridge:
		tools = append(tools, "bridge")
	}
	for _, tool := range tools {
		if _, err := lookPath(tool); err != nil {
			return fmt.Errorf("%s not found (apt-get install util-linux ethtool iproute2, and netsniff-ng for trafgen, smcroute for ip6mr): %w", tool, err)
		}
	}

	// Ctrl-C cancels: the harness stops the generator and smcrouted and
	// deletes its namespaces before exiting.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	samples, err := Run(ctx, cfg)
	if len(samples) == 0 {
		return err
	}

	var md bytes.Buffer
	fmt.Fprintf(&md, "## Fast-path benchmark, %s\n\n", started.Format("2006-01-02"))
	fmt.Fprintf(&md, "%s; %d CPUs; kernel %s (%s); %d-byte frames; median of %d round(s) of %s per (variant, N, path); %s; %s. Method: docs/benchmark.md.\n\n",
		hostLine(), runtime.NumCPU(), kernelRelease(), ip6mrFact(ip6mr), cfg.Size, cfg.Rounds, cfg.Duration, baselineLine(cfg.Baseline), layoutLine(&cfg))
	WriteMarkdown(&md, samples, cfg.Variants)
	os.Stdout.Write(md.Bytes())
	if *outMD != "" && err == nil {
		if werr := os.WriteFile(*outMD, md.Bytes(), 0o644); werr != nil {
			return fmt.Errorf("write %s: %w", *outMD, werr)
		}
		fmt.Fprintln(os.Stderr, "tables written to", *outMD)
	}
	if *rawDir != "" {
		if werr := writeRaw(*rawDir, started, samples); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}

// defaultRouterCPU is the router's CPU when -router-cpu is not given: with
// the xdp generator, a CPU of its own (the first that is not the
// generator's), so the generator is the ceiling and the router's rate is
// measured; with trafgen (or one CPU), none: the router runs in the
// generator's softirq.
func defaultRouterCPU(gen string, genCPU, ncpu int) int {
	if gen != genXDP || ncpu < 2 {
		return -1
	}
	for c := range ncpu {
		if c != genCPU {
			return c
		}
	}
	return -1
}

// ip6mrFact is the kernel's configuration fact for the tables' header.
func ip6mrFact(have bool) string {
	if have {
		return "CONFIG_IPV6_MROUTE: yes"
	}
	return "no CONFIG_IPV6_MROUTE: " + ip6mrProc + " absent"
}

func baselineLine(b string) string {
	if b == baselineBridge {
		return "kernel baseline: Linux bridge, MLD snooping (mcast_snooping 1, own querier), the receivers' joins"
	}
	return "kernel baseline: ip6mr, (S,G) route by smcroute"
}

func layoutLine(cfg *Config) string {
	gen := "xdpgen (XDP live frames)"
	if cfg.Generator == genTrafgen {
		gen = "trafgen"
		if cfg.RouterCPU >= 0 {
			gen = "trafgen (rate-limited mode)"
		}
	}
	if cfg.RouterCPU >= 0 {
		rt := ""
		if cfg.RouterRT {
			rt = fmt.Sprintf(" (SCHED_FIFO %d)", routerRTPriority)
		}
		return fmt.Sprintf("%s on CPU %d, the router's threaded NAPI%s and the receivers' softirqs on CPU %d", gen, cfg.GenCPU, rt, cfg.RouterCPU)
	}
	return fmt.Sprintf("%s and the router (its softirq) on CPU %d", gen, cfg.GenCPU)
}

func writeRaw(dir string, started time.Time, samples []Sample) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	path := filepath.Join(dir, "fastpath-"+started.Format("20060102-150405")+".csv")
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := WriteCSV(f, samples); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintln(os.Stderr, "raw data written to", path)
	return f.Close()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", p, err)
		}
		out = append(out, n)
	}
	return out, nil
}

func kernelRelease() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "?"
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}

// hostLine names the CPU model.
func hostLine() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
