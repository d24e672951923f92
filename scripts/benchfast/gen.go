package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hotcast/hotcast/scripts/benchfast/xdpgen"
	"golang.org/x/sys/unix"
)

// Generators.
const (
	// genXDP is xdpgen: XDP live frames (BPF_PROG_TEST_RUN with
	// BPF_F_TEST_XDP_LIVE_FRAMES) out of s0, on one pinned CPU. The
	// default: it outruns the router, so the router is what is measured.
	genXDP = "xdp"
	// genTrafgen is netsniff-ng's trafgen (AF_PACKET TX ring): the
	// fallback, for kernels before 5.18.
	genTrafgen = "trafgen"
)

// generator is a running stream generator.
type generator interface {
	// rate is the frames per second the generator counted itself over
	// its whole run, warm-up included (0: it does not count; the
	// interface's counters are all there is). Its count moves in whole
	// BPF_PROG_TEST_RUN calls, so over the measured window alone it would
	// be coarse.
	rate() float64
	// failed reports a generator that stopped on its own, with why.
	failed() (bool, error)
	// stop stops it and returns what it printed, if anything.
	stop() string
}

// startGenerator starts the configured generator sending the stream's frame
// out of s0 until stopped (count 0) or for count frames.
func (t *topo) startGenerator(ctx context.Context, cfg *Config, count uint64) (generator, error) {
	switch cfg.Generator {
	case genXDP:
		g, err := xdpgen.Start(ctx, xdpgen.Config{
			NetNS: t.snd.path(), Ifindex: t.s0.index, Frame: t.frame, CPU: cfg.GenCPU, Count: count,
		})
		if err != nil {
			return nil, fmt.Errorf("xdp generator (try -generator trafgen on kernels before 5.18): %w", err)
		}
		return xdpGen{g}, nil
	case genTrafgen:
		args := cfg.TrafgenArgs
		if cfg.RouterCPU >= 0 && len(args) == 0 {
			// With the router on its own CPU the veth pushes back, and
			// trafgen's TX_RING flush dies on EAGAIN once the socket's
			// send buffer is full; its rate-limited mode uses blocking
			// sendto.
			args = []string{"-b", "3000000pps"}
		}
		if count > 0 {
			args = append(args, "-n", strconv.FormatUint(count, 10))
		}
		p, err := startTrafgen(t.snd, t.s0.name, t.trafgenConf, cfg.GenCPU, args)
		if err != nil {
			return nil, err
		}
		return trafgenGen{p}, nil
	}
	return nil, fmt.Errorf("unknown generator %q", cfg.Generator)
}

type xdpGen struct{ g *xdpgen.Generator }

func (x xdpGen) rate() float64 { return x.g.Rate() }

func (x xdpGen) failed() (bool, error) {
	select {
	case <-x.g.Done():
		return true, x.g.Wait()
	default:
		return false, nil
	}
}

func (x xdpGen) stop() string {
	if err := x.g.Stop(); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("xdpgen: %d frames, %.0f pps over its run", x.g.Sent(), x.g.Rate())
}

type trafgenGen struct{ p *proc }

func (trafgenGen) rate() float64           { return 0 }
func (g trafgenGen) failed() (bool, error) { return g.p.exited() }
func (g trafgenGen) stop() string          { return g.p.stop(unix.SIGINT, 2*time.Second) }

// writeTrafgenConf writes the stream's frame as trafgen's configuration.
func (t *topo) writeTrafgenConf() error {
	t.trafgenConf = filepath.Join(t.dir, "stream.cfg")
	if err := os.WriteFile(t.trafgenConf, []byte(trafgenConfig(t.frame)), 0o600); err != nil {
		return fmt.Errorf("write trafgen config: %w", err)
	}
	return nil
}
