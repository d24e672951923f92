// Package xdpgen is the fast-path benchmark's packet generator: it injects
// one frame, over and over, out of a network interface with the kernel's
// XDP live-frames test mode (BPF_PROG_TEST_RUN with
// BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18+, what xdp-trafgen does), on one
// pinned CPU.
//
// A two-instruction XDP program (return XDP_TX) runs on each copy of the
// frame, with the context's ingress_ifindex set to the generator's
// interface; in live-frames mode the kernel turns XDP_TX into a redirect
// back out of that interface, so every run is one frame transmitted with no
// socket, no skb and no qdisc on the way (on a veth: straight into the
// peer's XDP ring, which needs an XDP program or GRO on the peer). That is
// several times what trafgen (AF_PACKET) manages on the same core, so the
// router behind the interface, not the generator, is what a benchmark
// measures.
package xdpgen

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// xdpTX is enum xdp_action's XDP_TX.
const xdpTX = 3

// xdpMd is struct xdp_md (include/uapi/linux/bpf.h), the context
// BPF_PROG_TEST_RUN reads for an XDP program.
type xdpMd struct {
	Data           uint32
	DataEnd        uint32
	DataMeta       uint32
	IngressIfindex uint32
	RxQueueIndex   uint32
	EgressIfindex  uint32
}

// Defaults.
const (
	// DefaultChunk is how many frames one BPF_PROG_TEST_RUN call sends.
	// Each call costs about a millisecond of set-up (the kernel builds a
	// page pool for it: 1024-frame calls top out below 1 Mpps), so calls
	// are long: some 20 ms at generator speed, which is also how late a
	// stop or a counter read can be.
	DefaultChunk = 1 << 18
	// DefaultBatch is the kernel's frames per batch (its page pool and
	// flush unit); the kernel's own default, NAPI_POLL_WEIGHT.
	DefaultBatch = 64
)

// Config is one generator.
type Config struct {
	// NetNS is the path of the network namespace the interface is in
	// (e.g. /var/run/netns/NAME); empty: the caller's.
	NetNS string
	// Ifindex is the interface the frames leave by.
	Ifindex int
	// Frame is the frame sent, Ethernet header included (14..~3500 bytes:
	// it must fit a page with the kernel's headroom).
	Frame []byte
	// CPU pins the generator's thread to one CPU; -1 leaves it to the
	// scheduler.
	CPU int
	// Count stops the generator after that many frames; 0 runs until the
	// context ends or Stop.
	Count uint64
	// Chunk is frames per BPF_PROG_TEST_RUN call (0: DefaultChunk),
	// Batch the kernel's batch size (0: DefaultBatch, at most 256).
	Chunk, Batch uint32
}

// Generator is a running generator.
type Generator struct {
	sent    atomic.Uint64
	started time.Time
	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	elapsed time.Duration
	err     error
}

// Program returns the generator's XDP program: return XDP_TX.
func Program() (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "xdpgen_tx",
		Type: ebpf.XDP,
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, xdpTX),
			asm.Return(),
		},
		License: "GPL",
	})
	if err != nil {
		return nil, fmt.Errorf("load xdp_tx program: %w", err)
	}
	return p, nil
}

// Start loads the program, enters the namespace on a thread of its own,
// pins that thread and starts sending. It returns once the first chunk went
// out (or failed: then with that error), so a caller knows the generator
// works before it measures anything.
func Start(ctx context.Context, cfg Config) (*Generator, error) {
	if cfg.Ifindex <= 0 {
		return nil, fmt.Errorf("ifindex %d: must be positive", cfg.Ifindex)
	}
	if len(cfg.Frame) < 14 {
		return nil, fmt.Errorf("frame of %d bytes: need at least an Ethernet header (14)", len(cfg.Frame))
	}
	if cfg.Chunk == 0 {
		cfg.Chunk = DefaultChunk
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Batch > 256 {
		return nil, fmt.Errorf("batch %d: at most 256", cfg.Batch)
	}
	ctx, cancel := context.WithCancel(ctx)
	g := &Generator{stop: cancel, done: make(chan struct{})}
	first := make(chan error, 1)
	go g.run(ctx, cfg, first)
	if err := <-first; err != nil {
		cancel()
		<-g.done
		return nil, err
	}
	return g, nil
}

func (g *Generator) run(ctx context.Context, cfg Config, first chan<- error) {
	defer close(g.done)
	// The thread changes namespace and affinity: it is never handed back
	// to the Go scheduler, and exits with the goroutine.
	runtime.LockOSThread()
	report := func(err error) {
		if first != nil {
			first <- err
			first = nil
		}
	}
	err := g.loop(ctx, cfg, func() { report(nil) })
	g.mu.Lock()
	g.elapsed = time.Since(g.started)
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		g.err = err
	}
	g.mu.Unlock()
	report(err)
}

func (g *Generator) loop(ctx context.Context, cfg Config, running func()) error {
	if cfg.NetNS != "" {
		ns, err := netns.GetFromPath(cfg.NetNS)
		if err != nil {
			return fmt.Errorf("open netns %s: %w", cfg.NetNS, err)
		}
		err = netns.Set(ns)
		ns.Close()
		if err != nil {
			return fmt.Errorf("enter netns %s: %w", cfg.NetNS, err)
		}
	}
	if cfg.CPU >= 0 {
		var set unix.CPUSet
		set.Set(cfg.CPU)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("pin to cpu %d: %w", cfg.CPU, err)
		}
	}
	prog, err := Program()
	if err != nil {
		return err
	}
	defer prog.Close()
	opts := ebpf.RunOptions{
		Data:      cfg.Frame,
		Flags:     unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		BatchSize: cfg.Batch,
		Context: xdpMd{
			DataEnd:        uint32(len(cfg.Frame)),
			IngressIfindex: uint32(cfg.Ifindex),
		},
	}
	g.started = time.Now()
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := cfg.Chunk
		if cfg.Count > 0 {
			left := cfg.Count - g.sent.Load()
			if left == 0 {
				return nil
			}
			chunk = uint32(min(uint64(chunk), left))
		}
		opts.Repeat = chunk
		if _, err := prog.Run(&opts); err != nil {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, ebpf.ErrNotSupported) {
				return fmt.Errorf("xdp live frames out of ifindex %d (needs Linux 5.18+, an interface that is up, and NAPI on a veth's peer: an XDP program or GRO): %w", cfg.Ifindex, err)
			}
			return fmt.Errorf("xdp live frames out of ifindex %d: %w", cfg.Ifindex, err)
		}
		// A run interrupted by a signal is restarted whole by the library,
		// so this can undercount by up to a chunk: the interface's
		// counters are what a benchmark should take as offered.
		g.sent.Add(uint64(chunk))
		if n == 0 {
			running()
		}
	}
}

// Sent is the frames sent so far.
func (g *Generator) Sent() uint64 { return g.sent.Load() }

// Done is closed when the generator has ended.
func (g *Generator) Done() <-chan struct{} { return g.done }

// Wait waits for the generator to end (Count reached, context ended, Stop)
// and returns its error, if it failed.
func (g *Generator) Wait() error {
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Stop stops the generator and returns its error, if it failed.
func (g *Generator) Stop() error {
	g.stop()
	return g.Wait()
}

// Rate is the frames per second over the generator's whole run (so far,
// while it runs).
func (g *Generator) Rate() float64 {
	g.mu.Lock()
	d := g.elapsed
	g.mu.Unlock()
	select {
	case <-g.done:
	default:
		d = time.Since(g.started)
	}
	if d <= 0 {
		return 0
	}
	return float64(g.Sent()) / d.Seconds()
}
