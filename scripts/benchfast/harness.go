package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
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
	Warmup   time.Duration // trafgen running before the window opens
	Fanouts  []int
	Variants []string // "sink", "socket"
	Size     int      // frame size in bytes, Ethernet header included
	// GenCPU pins trafgen, RouterCPU the router's ingress NAPI thread
	// (and so the softirqs it raises); -1 leaves them to the scheduler.
	GenCPU    int
	RouterCPU int
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
	Round   int
	Seconds float64 // measured window
	// Offered is what trafgen put out per second: sent plus dropped by
	// s0's qdisc (the veth pushes back when the router's ring is full).
	Offered float64
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
	frame, err := udpFrame(t.s0.mac, srcAddr, grpAddr, 64, udpPort, cfg.Size)
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(t.dir, "stream.cfg")
	if err := os.WriteFile(conf, []byte(trafgenConfig(frame)), 0o600); err != nil {
		return nil, fmt.Errorf("write trafgen config: %w", err)
	}
	for _, n := range cfg.Fanouts {
		if err := t.setFanout(n); err != nil {
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
				s, err := t.measure(ctx, cfg, conf, n, path)
				if err != nil {
					return out, fmt.Errorf("fan-out %d %s round %d: %w", n, path, round, err)
				}
				s.Variant, s.Round = variant, round
				log.Info("measured", "fanout", n, "path", path, "round", round,
					"offered_pps", int(s.Offered), "per_receiver_pps", int(s.PerReceiver()), "min_receiver_pps", int(s.MinReceiver()))
				out = append(out, s)
			}
		}
	}
	return out, nil
}

type snapshot struct {
	at            time.Time
	tx            uint64 // s0 tx_packets: into the router's ingress ring
	qSent, qDrops uint32 // s0's qdisc: what trafgen offered, sent or dropped
	rcv           []uint64
}

func (t *topo) snap() (snapshot, error) {
	st, err := t.s0.stats()
	if err != nil {
		return snapshot{}, err
	}
	sent, drops, err := t.s0.qdiscStats()
	if err != nil {
		return snapshot{}, err
	}
	c, err := t.counts()
	if err != nil {
		return snapshot{}, err
	}
	return snapshot{at: time.Now(), tx: st.TxPackets, qSent: sent, qDrops: drops, rcv: c}, nil
}

// errTrafgenEarly is trafgen giving up before the window (its TX_RING
// flush can fail with EAGAIN when the veth pushes back at the wrong time).
var errTrafgenEarly = errors.New("trafgen exited early")

// measure is measureOnce, retried (up to 3 attempts) when trafgen gives up
// early: a generator hiccup, not a property of the path measured.
func (t *topo) measure(ctx context.Context, cfg *Config, conf string, n int, path string) (Sample, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var s Sample
		s, err = t.measureOnce(ctx, cfg, conf, n, path)
		if !errors.Is(err, errTrafgenEarly) {
			return s, err
		}
		t.log.Warn("retrying the run", "fanout", n, "path", path, "attempt", attempt, "err", err)
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return Sample{}, err
		}
	}
	return Sample{}, err
}

// measureOnce runs trafgen through one path and returns the rates over the
// measured window, which opens after the warm-up (rings and queues full).
func (t *topo) measureOnce(ctx context.Context, cfg *Config, conf string, n int, path string) (Sample, error) {
	var err error
	if path == pathHotcast {
		err = t.useHotcast()
	} else {
		err = t.useKernel()
	}
	if err != nil {
		return Sample{}, err
	}
	args := cfg.TrafgenArgs
	if cfg.RouterCPU >= 0 && len(args) == 0 {
		// With the router on its own CPU the veth pushes back, and
		// trafgen's TX_RING flush dies on EAGAIN once the socket's send
		// buffer is full; its rate-limited mode uses blocking sendto.
		args = []string{"-b", "3000000pps"}
	}
	t.gen, err = startTrafgen(t.snd, t.s0.name, conf, cfg.GenCPU, args)
	if err != nil {
		return Sample{}, err
	}
	defer func() {
		if t.gen != nil {
			t.gen.stop(unix.SIGINT, 2*time.Second)
			t.gen = nil
		}
	}()
	if err := sleep(ctx, cfg.Warmup); err != nil {
		return Sample{}, err
	}
	if done, werr := t.gen.exited(); done {
		return Sample{}, fmt.Errorf("%w (%v): %s", errTrafgenEarly, werr, t.gen.out.String())
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
	out := t.gen.stop(unix.SIGINT, 2*time.Second)
	t.gen = nil
	t.log.Debug("trafgen done", "output", out)
	// Let the rings and socket queues drain before the next run.
	if err := sleep(ctx, 200*time.Millisecond); err != nil {
		return Sample{}, err
	}

	dt := b.at.Sub(a.at).Seconds()
	s := Sample{
		Fanout:  n,
		Path:    path,
		Seconds: dt,
		// The qdisc counters are 32-bit: differences wrap correctly.
		Offered:  float64((b.qSent-a.qSent)+(b.qDrops-a.qDrops)) / dt,
		Accepted: float64(b.tx-a.tx) / dt,
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
