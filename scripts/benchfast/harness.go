package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Paths compared.
const (
	pathHotcast = "hotcast"
	pathKernel  = "kernel"
)

// Config is one benchmark run.
type Config struct {
	Rounds   int
	Duration time.Duration // measured window per run
	Warmup   time.Duration // generator running before the window opens
	Fanouts  []int
	Variants []string // "sink", "socket"
	Size     int      // frame size in bytes, Ethernet header included
	// Generator is genXDP (default) or genTrafgen.
	Generator string
	// Baseline is the kernel path: baselineIP6MR or baselineBridge
	// (resolveBaseline picks one for the kernel).
	Baseline string
	// GenCPU pins the generator, RouterCPU the router's ingress NAPI
	// thread (and so the softirqs it raises); -1 leaves them to the
	// scheduler (RouterCPU -1: the router runs in the generator's
	// softirq, on its CPU).
	GenCPU    int
	RouterCPU int
	// RouterRT makes the router's NAPI thread SCHED_FIFO (with RouterCPU).
	RouterRT bool
	// Paths restricts the run to some paths (profiling); empty: both.
	Paths []string
	// IngressGRO turns GRO on on the router's ingress veth.
	IngressGRO bool
	// Egress is hotcast's egress mode towards the receivers: "xdp" (devmap
	// broadcast), "clone" (TC bpf_clone_redirect), or "auto": xdp for
	// sink receivers, clone for socket receivers (skb-bound ports, as an
	// operator would configure them: interfaces[].egress).
	Egress string
	// TrafgenArgs are extra trafgen arguments.
	TrafgenArgs []string
	Logger      *slog.Logger

	onTopo func(tag string) // tests: told each topology's name tag
}

// Sample is one measured run: one (variant, fan-out, path, round).
type Sample struct {
	Variant string
	Fanout  int
	Path    string
	// Baseline is the kernel path's baseline (baselineIP6MR or
	// baselineBridge), on the kernel path's samples and hotcast's alike
	// (the run's).
	Baseline  string
	Generator string
	Round     int
	Seconds   float64 // measured window
	// Offered is what the generator put out per second. xdp: s0's
	// tx_packets plus tx_dropped (frames the router's ingress ring had no
	// room for); trafgen: sent plus dropped by s0's qdisc (the veth pushes
	// back when the router's ring is full).
	Offered float64
	// GenRate is the rate the generator itself counted over its run (xdp;
	// trafgen does not count: its Offered).
	GenRate float64
	// Accepted is what reached the router's ingress (s0 tx_packets).
	Accepted float64
	// Receivers are the per-second counts of the route's receivers
	// (first Fanout), Bystanders those of the receivers not in the route.
	Receivers  []float64
	Bystanders []float64
}

// PerReceiver is the mean delivered rate over the route's receivers.
func (s Sample) PerReceiver() float64 {
	if len(s.Receivers) == 0 {
		return 0
	}
	var sum float64
	for _, r := range s.Receivers {
		sum += r
	}
	return sum / float64(len(s.Receivers))
}

// generatorBoundShare is the delivered share of offered from which a run is
// flagged generator-bound: the path kept up with everything offered, so the
// generator, not the path, set the rate.
const generatorBoundShare = 0.98

// GeneratorBound reports whether the route's receivers got at least 98% of
// what was offered.
func (s Sample) GeneratorBound() bool {
	return s.Offered > 0 && s.PerReceiver() >= generatorBoundShare*s.Offered
}

// MinReceiver is the slowest receiver's rate.
func (s Sample) MinReceiver() float64 {
	if len(s.Receivers) == 0 {
		return 0
	}
	return slices.Min(s.Receivers)
}

// Run executes the benchmark: per variant, one topology with max(fan-outs)
// route receivers plus one bystander; per fan-out, the same (S,G) route in
// both paths; per round, both paths back to back (the first path alternates
// between rounds so slow drift does not favour either).
func Run(ctx context.Context, cfg Config) ([]Sample, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var out []Sample
	m := slices.Max(cfg.Fanouts) + 1
	for _, variant := range cfg.Variants {
		s, err := runVariant(ctx, log, &cfg, variant, m)
		out = append(out, s...)
		if err != nil {
			return out, fmt.Errorf("variant %s: %w", variant, err)
		}
	}
	return out, nil
}

func (c *Config) validate() error {
	switch {
	case c.Rounds < 1:
		return fmt.Errorf("rounds %d: need at least 1", c.Rounds)
	case c.Duration <= 0:
		return fmt.Errorf("duration %s: must be positive", c.Duration)
	case len(c.Fanouts) == 0:
		return errors.New("no fan-outs")
	case len(c.Variants) == 0:
		return errors.New("no variants")
	case c.Size < minSize || c.Size > 1500:
		return fmt.Errorf("frame size %d: want %d..1500", c.Size, minSize)
	case c.Generator != genXDP && c.Generator != genTrafgen:
		return fmt.Errorf("unknown generator %q (xdp, trafgen)", c.Generator)
	case c.Baseline != baselineIP6MR && c.Baseline != baselineBridge:
		return fmt.Errorf("unknown kernel baseline %q (ip6mr, bridge)", c.Baseline)
	case c.Generator == genXDP && !c.IngressGRO:
		// Without an XDP program (the kernel path) only GRO gives the
		// router's ingress veth the NAPI that XDP frames need.
		return errors.New("the xdp generator needs GRO on the router's ingress (-ingress-gro)")
	}
	for _, n := range c.Fanouts {
		// One bystander and the ingress also take router interfaces;
		// hotcast sets hold at most 32 interfaces.
		if n < 1 || n > 30 {
			return fmt.Errorf("fan-out %d: want 1..30", n)
		}
	}
	for _, v := range c.Variants {
		if v != "sink" && v != "socket" {
			return fmt.Errorf("unknown variant %q (sink, socket)", v)
		}
	}
	return nil
}

func runVariant(ctx context.Context, log *slog.Logger, cfg *Config, variant string, m int) (out []Sample, err error) {
	log = log.With("variant", variant)
	t, err := newTopo(log, cfg, m)
	if err != nil {
		return nil, err
	}
	if cfg.onTopo != nil {
		cfg.onTopo(t.tag)
	}
	defer func() { err = errors.Join(err, t.close()) }()
	if err := t.setupReceivers(variant); err != nil {
		return nil, err
	}
	clone := cfg.Egress == "clone" || cfg.Egress == "auto" && variant == "socket"
	if err := t.setEgress(clone); err != nil {
		return nil, err
	}
	log.Info("hotcast egress mode", "clone", clone)
	for _, n := range cfg.Fanouts {
		if err := t.setFanout(ctx, cfg, n); err != nil {
			return out, fmt.Errorf("fan-out %d: %w", n, err)
		}
		for round := 1; round <= cfg.Rounds; round++ {
			order := []string{pathHotcast, pathKernel}
			if round%2 == 0 {
				order = []string{pathKernel, pathHotcast}
			}
			for _, path := range order {
				if len(cfg.Paths) > 0 && !slices.Contains(cfg.Paths, path) {
					continue
				}
				if err := ctx.Err(); err != nil {
					return out, err
				}
				s, err := t.measure(ctx, cfg, n, path)
				if err != nil {
					return out, fmt.Errorf("fan-out %d %s round %d: %w", n, path, round, err)
				}
				s.Variant, s.Round = variant, round
				log.Info("measured", "fanout", n, "path", path, "baseline", s.Baseline, "round", round,
					"generator_pps", int(s.GenRate), "offered_pps", int(s.Offered), "per_receiver_pps", int(s.PerReceiver()),
					"min_receiver_pps", int(s.MinReceiver()), "generator_bound", s.GeneratorBound())
				out = append(out, s)
			}
		}
	}
	return out, nil
}

type snapshot struct {
	at            time.Time
	tx, txDrops   uint64 // s0: into the router's ingress ring, and what did not fit
	qSent, qDrops uint32 // s0's qdisc (trafgen): sent or dropped
	rcv           []uint64
}

func (t *topo) snap() (snapshot, error) {
	st, err := t.s0.stats()
	if err != nil {
		return snapshot{}, err
	}
	sn := snapshot{tx: st.TxPackets, txDrops: st.TxDropped}
	if _, ok := t.gen.(trafgenGen); ok {
		if sn.qSent, sn.qDrops, err = t.s0.qdiscStats(); err != nil {
			return snapshot{}, err
		}
	}
	if sn.rcv, err = t.counts(); err != nil {
		return snapshot{}, err
	}
	sn.at = time.Now()
	return sn, nil
}

// errGeneratorEarly is the generator giving up before the window
// (trafgen's TX_RING flush can fail with EAGAIN when the veth pushes back
// at the wrong time).
var errGeneratorEarly = errors.New("generator exited early")

// measure is measureOnce, retried (up to 3 attempts) when the generator
// gives up early: a generator hiccup, not a property of the path measured.
func (t *topo) measure(ctx context.Context, cfg *Config, n int, path string) (Sample, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var s Sample
		s, err = t.measureOnce(ctx, cfg, n, path)
		if !errors.Is(err, errGeneratorEarly) {
			return s, err
		}
		t.log.Warn("retrying the run", "fanout", n, "path", path, "attempt", attempt, "err", err)
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return Sample{}, err
		}
	}
	return Sample{}, err
}

// measureOnce runs the generator through one path and returns the rates
// over the measured window, which opens after the warm-up (rings and
// queues full).
func (t *topo) measureOnce(ctx context.Context, cfg *Config, n int, path string) (Sample, error) {
	var err error
	if path == pathHotcast {
		err = t.useHotcast()
	} else {
		err = t.useKernel()
	}
	if err != nil {
		return Sample{}, err
	}
	if cfg.RouterCPU >= 0 {
		if err := t.repinRouter(cfg.RouterCPU, cfg.RouterRT); err != nil {
			return Sample{}, err
		}
	}
	t.gen, err = t.startGenerator(ctx, cfg, 0)
	if err != nil {
		return Sample{}, err
	}
	defer func() {
		if t.gen != nil {
			t.gen.stop()
			t.gen = nil
		}
	}()
	if err := sleep(ctx, cfg.Warmup); err != nil {
		return Sample{}, err
	}
	if done, werr := t.gen.failed(); done {
		return Sample{}, fmt.Errorf("%w (%v): %s", errGeneratorEarly, werr, t.gen.stop())
	}
	a, err := t.snap()
	if err != nil {
		return Sample{}, err
	}
	if err := sleep(ctx, cfg.Duration); err != nil {
		return Sample{}, err
	}
	b, err := t.snap()
	if err != nil {
		return Sample{}, err
	}
	if done, werr := t.gen.failed(); done && werr != nil {
		return Sample{}, fmt.Errorf("%w: failed during the window (%v): %s", errGeneratorEarly, werr, t.gen.stop())
	}
	out := t.gen.stop()
	genRate := t.gen.rate()
	t.gen = nil
	t.log.Debug("generator done", "output", out)
	// Let the rings and socket queues drain before the next run.
	if err := sleep(ctx, 200*time.Millisecond); err != nil {
		return Sample{}, err
	}

	dt := b.at.Sub(a.at).Seconds()
	s := Sample{
		Fanout:    n,
		Path:      path,
		Baseline:  t.baseline,
		Generator: cfg.Generator,
		Seconds:   dt,
		Accepted:  float64(b.tx-a.tx) / dt,
	}
	switch cfg.Generator {
	case genXDP:
		s.Offered = float64((b.tx-a.tx)+(b.txDrops-a.txDrops)) / dt
		s.GenRate = genRate
	default:
		// The qdisc counters are 32-bit: differences wrap correctly.
		s.Offered = float64((b.qSent-a.qSent)+(b.qDrops-a.qDrops)) / dt
		s.GenRate = s.Offered
	}
	for i := range b.rcv {
		r := float64(b.rcv[i]-a.rcv[i]) / dt
		if i < n {
			s.Receivers = append(s.Receivers, r)
		} else {
			s.Bystanders = append(s.Bystanders, r)
		}
	}
	return s, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
