// Command benchfast is hotcast's fast-path benchmark: the same veth
// topology forwards one IPv6 multicast (S,G) stream 1 in -> N out through
// hotcast's XDP path and through the kernel's ip6mr (driven by smcroute),
// alternately, and reports delivered packets per second per receiver. The
// method is in docs/benchmark.md. Needs root; run it through
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
		cfg      Config
		fanouts  = flag.String("fanouts", "1,2,4,8", "fan-outs N to measure (comma-separated)")
		variants = flag.String("variants", "sink,socket", "receiver variants: sink, socket")
		quick    = flag.Bool("quick", false, "smoke test: 1 round of 1 s (overrides -rounds, -duration)")
		outMD    = flag.String("out", "bench/fastpath.md", "Markdown tables (empty: none)")
		rawDir   = flag.String("raw", "bench/raw", "directory for the per-round CSV (empty: none)")
		verbose  = flag.Bool("v", false, "debug logging")
		paths    = flag.String("paths", "hotcast,kernel", "paths to run (one alone: for profiling)")
		egress   = flag.String("egress", "auto", "hotcast egress towards the receivers: xdp, clone, or auto (xdp for sink receivers, clone for socket receivers)")
		tgArgs   = flag.String("trafgen-args", "", "extra trafgen arguments (space-separated)")
	)
	flag.IntVar(&cfg.Rounds, "rounds", 3, "rounds per (variant, fan-out, path)")
	flag.DurationVar(&cfg.Duration, "duration", 3*time.Second, "measured window per run")
	flag.DurationVar(&cfg.Warmup, "warmup", 500*time.Millisecond, "trafgen running before the window opens")
	flag.IntVar(&cfg.Size, "size", 80, "frame size in bytes (Ethernet header included)")
	flag.IntVar(&cfg.GenCPU, "gen-cpu", 0, "CPU for trafgen (-1: any)")
	flag.BoolVar(&cfg.IngressGRO, "ingress-gro", true, "GRO on the router's ingress veth (NAPI for the kernel path)")
	flag.IntVar(&cfg.RouterCPU, "router-cpu", -1, "CPU for the router's ingress NAPI thread (-1: the router runs in trafgen's softirq, on -gen-cpu)")
	flag.Parse()

	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, XDP, ip6mr)")
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
	for _, tool := range []string{"trafgen", "smcrouted", "nsenter", "taskset", "ethtool", "ip"} {
		if _, err := lookPath(tool); err != nil {
			return fmt.Errorf("%s not found (apt-get install netsniff-ng smcroute util-linux ethtool iproute2): %w", tool, err)
		}
	}

	// Ctrl-C cancels: the harness stops trafgen and smcrouted and deletes
	// its namespaces before exiting.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	samples, err := Run(ctx, cfg)
	if len(samples) == 0 {
		return err
	}

	var md bytes.Buffer
	fmt.Fprintf(&md, "## Fast-path benchmark, %s\n\n", started.Format("2006-01-02"))
	layout := fmt.Sprintf("trafgen and the router (its softirq) on CPU %d", cfg.GenCPU)
	if cfg.RouterCPU >= 0 {
		layout = fmt.Sprintf("trafgen (rate-limited mode) on CPU %d, the router's threaded NAPI on CPU %d", cfg.GenCPU, cfg.RouterCPU)
	}
	fmt.Fprintf(&md, "%s; %d CPUs; kernel %s; %d-byte frames; median of %d round(s) of %s per (variant, N, path); %s. Method: docs/benchmark.md.\n\n",
		hostLine(), runtime.NumCPU(), kernelRelease(), cfg.Size, cfg.Rounds, cfg.Duration, layout)
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
