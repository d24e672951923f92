package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/bpf/bpftest"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Addresses of the benchmark stream.
var (
	srcAddr = netip.MustParseAddr("fd00:b::1")
	grpAddr = netip.MustParseAddr("ff3e::b:1") // global scope: routed by both paths
)

const udpPort = 40001

// topo is the benchmark topology, built identically for every path: a
// sender, the router and M receivers, each in its own namespace.
//
//	snd:s0 ---- r0:rtr:r1 ---- h1:rcv1
//	                  :r2 ---- h2:rcv2
//	                  ...
//	                  :rM ---- hM:rcvM   (rM is never in the route: a bystander)
type topo struct {
	log      *slog.Logger
	tag      string
	dir      string // scratch: trafgen and smcroute files
	variant  string
	baseline string // kernel path: baselineIP6MR or baselineBridge

	nss      []*namedNS
	snd, rtr *namedNS
	s0, r0   *link
	r, h     []*link
	rcv      []*namedNS

	frame       []byte // the stream's frame
	trafgenConf string // trafgen's configuration of it

	dp *bpf.Dataplane
	// sinks[i] counts at receiver i: every receiver in the sink variant
	// (drop mode), the receivers not in the route in the socket variant
	// (pass mode: a stray frame is seen, then the stack drops it).
	sinks []*bpftest.Sink
	// socks[i] is receiver i's UDP socket, joined to the group while i is
	// in the route (its joins are what a bridge baseline snoops): it
	// counts datagrams in the socket variant, only joins in the sink one.
	socks []*udpReceiver
	smc   *smcroute // ip6mr baseline's route daemon (per fan-out)
	gen   generator // running generator
}

// newTopo builds the namespaces and links for m receivers, loads the
// dataplane and prepares the receivers for the variant.
func newTopo(log *slog.Logger, cfg *Config, m int) (_ *topo, err error) {
	t := &topo{log: log, tag: uniqueTag(4), baseline: cfg.Baseline}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.close())
		}
	}()
	t.dir, err = os.MkdirTemp("", "hcbench-")
	if err != nil {
		return nil, fmt.Errorf("scratch directory: %w", err)
	}
	mk := func(role string) (*namedNS, error) {
		n, err := newNS("hcb" + t.tag + "-" + role)
		if err != nil {
			return nil, err
		}
		t.nss = append(t.nss, n)
		return n, nil
	}
	if t.snd, err = mk("snd"); err != nil {
		return nil, err
	}
	if t.rtr, err = mk("rtr"); err != nil {
		return nil, err
	}
	// The router's ingress carries the tag in its name so its NAPI
	// thread ("napi/<dev>-<id>") can be told apart from other boxes'.
	if t.s0, t.r0, err = veth(t.snd, "s0", t.rtr, "r0"+t.tag); err != nil {
		return nil, err
	}
	for i := 1; i <= m; i++ {
		n, err := mk("h" + strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		t.rcv = append(t.rcv, n)
		r, h, err := veth(t.rtr, "r"+strconv.Itoa(i), n, "h"+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		t.r = append(t.r, r)
		t.h = append(t.h, h)
	}
	// A qdisc on the sender: when the router's ingress ring is full the
	// veth stops its queue (backpressure) and the qdisc drops, which trafgen
	// counts and carries on from; without one, trafgen's TX_RING flush
	// fails with EAGAIN and it exits.
	if out, err := t.snd.command("tc", "qdisc", "replace", "dev", t.s0.name, "root", "pfifo", "limit", "64").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("qdisc on %s: %w: %s", t.s0.name, err, out)
	}
	if err := t.rtr.run(func() error { return sysctl("net/ipv6/conf/all/forwarding", "1") }); err != nil {
		return nil, err
	}
	if t.baseline == baselineBridge {
		if err := t.makeBridge(); err != nil {
			return nil, err
		}
	}
	if t.frame, err = udpFrame(t.s0.mac, srcAddr, grpAddr, 64, udpPort, cfg.Size); err != nil {
		return nil, err
	}
	if err := t.writeTrafgenConf(); err != nil {
		return nil, err
	}
	// The ingress runs NAPI in both paths: XDP gives it NAPI on the
	// hotcast path, GRO on the kernel path (as a NIC always has).
	if cfg.IngressGRO {
		if err := t.r0.ethtool("-K", t.r0.name, "gro", "on"); err != nil {
			return nil, err
		}
	}
	if cfg.RouterCPU >= 0 {
		if err := t.pinRouter(cfg.RouterCPU); err != nil {
			return nil, err
		}
	}
	err = t.rtr.run(func() error {
		var err error
		// The dataplane's attach/detach chatter is not the benchmark's.
		quiet := slog.New(log.Handler().WithGroup("bpf"))
		if !log.Enabled(context.Background(), slog.LevelDebug) {
			quiet = slog.New(slog.DiscardHandler)
		}
		t.dp, err = bpf.Open(bpf.Options{Logger: quiet})
		if err != nil {
			return err
		}
		for _, l := range append([]*link{t.r0}, t.r...) {
			if _, err := t.dp.EnsureIface(l.index, bpf.Iface{Gate: bpf.GateForward, SrcMAC: l.mac}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load dataplane: %w", err)
	}
	return t, nil
}

// pinRouter makes the router's ingress NAPI a kernel thread and pins it to
// cpu, so the router (and the receivers' softirqs it schedules) run there
// while the generator has another CPU.
func (t *topo) pinRouter(cpu int) error {
	// /sys/class/net shows the namespace that mounted sysfs: ip netns exec
	// mounts a fresh one for the command (no bpffs pins involved here).
	out, err := execOut("ip", "netns", "exec", t.rtr.name, "sh", "-c", "echo 1 > /sys/class/net/"+t.r0.name+"/threaded")
	if err != nil {
		return fmt.Errorf("threaded napi on %s: %w: %s", t.r0.name, err, out)
	}
	return t.repinRouter(cpu, false)
}

// routerRTPriority is the SCHED_FIFO priority of the router's NAPI thread:
// above every ordinary process, as the softirq of a NIC's interrupt is,
// and below the kernel's own real-time threads.
const routerRTPriority = 50

// repinRouter pins r0's NAPI threads to cpu again, and with rt makes them
// SCHED_FIFO: attaching or detaching an XDP program can give the veth new
// NAPI instances (and threads), so every run pins what is there. A NAPI
// thread is an ordinary kernel thread (SCHED_OTHER, nice 0): left so, it
// shares its CPU with whatever else runs there (on a shared box, other
// people's compilers) and the router's rate becomes theirs.
func (t *topo) repinRouter(cpu int, rt bool) error {
	pids, err := napiThreads(t.r0.name)
	if err != nil {
		return err
	}
	if len(pids) == 0 {
		return fmt.Errorf("no napi thread for %s", t.r0.name)
	}
	var set unix.CPUSet
	set.Set(cpu)
	for _, pid := range pids {
		if err := unix.SchedSetaffinity(pid, &set); err != nil {
			return fmt.Errorf("pin napi thread %d to cpu %d: %w", pid, cpu, err)
		}
		if rt {
			attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: routerRTPriority}
			if err := unix.SchedSetAttr(pid, &attr, 0); err != nil {
				return fmt.Errorf("napi thread %d: SCHED_FIFO %d: %w", pid, routerRTPriority, err)
			}
		}
	}
	t.log.Debug("router napi pinned", "dev", t.r0.name, "threads", pids, "cpu", cpu, "fifo", rt)
	return nil
}

// napiThreads finds the kernel threads polling dev.
func napiThreads(dev string) ([]int, error) {
	prefix := "napi/" + dev + "-"
	if len(prefix) > 15 {
		prefix = prefix[:15]
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && strings.HasPrefix(string(comm), prefix) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// setupReceivers prepares the receivers for a variant: counting-and-
// dropping XDP sinks, or GRO plus a UDP socket that counts; in both, a UDP
// socket per receiver joins the group while the receiver is in the route.
func (t *topo) setupReceivers(variant string) error {
	t.variant = variant
	t.sinks = make([]*bpftest.Sink, len(t.h))
	for i, h := range t.h {
		switch variant {
		case "sink":
			if err := t.setSink(i, true, true); err != nil {
				return err
			}
		case "socket":
			// GRO gives the veth NAPI, which is what lets it take
			// XDP-redirected frames without an XDP program of its own.
			if err := h.ethtool("-K", h.name, "gro", "on"); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown variant %q", variant)
		}
		if err := h.addAddr(fmt.Sprintf("fd00:b:%x::2/64", i+1)); err != nil {
			return err
		}
		u, err := newUDPReceiver(t.rcv[i], h, variant == "socket")
		if err != nil {
			return err
		}
		t.socks = append(t.socks, u)
	}
	return nil
}

// setSink attaches (on) or detaches receiver i's sink.
func (t *topo) setSink(i int, on, drop bool) error {
	if !on {
		if t.sinks[i] == nil {
			return nil
		}
		err := t.sinks[i].Close()
		t.sinks[i] = nil
		if err != nil {
			return fmt.Errorf("detach sink from %s: %w", t.h[i].name, err)
		}
		return nil
	}
	if t.sinks[i] != nil {
		return nil
	}
	return t.rcv[i].run(func() error {
		s, err := bpftest.AttachSink(t.h[i].index, drop)
		if err != nil {
			return fmt.Errorf("sink on %s: %w", t.h[i].name, err)
		}
		t.sinks[i] = s
		return nil
	})
}

// counts returns each receiver's frames (sink) or datagrams (socket) so far.
func (t *topo) counts() ([]uint64, error) {
	out := make([]uint64, len(t.h))
	for i := range t.h {
		switch {
		case t.sinks[i] != nil:
			m, err := t.sinks[i].Counts()
			if err != nil {
				return nil, err
			}
			out[i] = m[grpAddr]
		case t.variant == "socket":
			out[i] = t.socks[i].n.Load()
		}
	}
	return out, nil
}

// setFanout makes the first n receivers the route's: they join the group
// (the others leave it), the kernel baseline gets its route (smcrouted
// restarted with a new configuration for ip6mr; for the bridge, its MLD
// snooping learns the joins), hotcast gets the same (S,G) route in its
// route map, and a probe checks that the kernel path delivers to exactly
// those receivers. Which path carries the measured stream is decided by
// useKernel/useHotcast.
func (t *topo) setFanout(ctx context.Context, cfg *Config, n int) error {
	t.stopKernel()
	names := make([]string, n)
	oifs := make([]int, n)
	for i := range n {
		names[i] = t.r[i].name
		oifs[i] = t.r[i].index
	}
	for i, u := range t.socks {
		if err := u.setJoined(i < n); err != nil {
			return err
		}
		// Socket variant: the receivers outside the route count with a
		// pass-mode sink, so a stray frame is seen although no socket
		// of theirs is joined.
		if t.variant == "socket" {
			if err := t.setSink(i, i >= n, false); err != nil {
				return err
			}
		}
	}
	switch t.baseline {
	case baselineIP6MR:
		var err error
		t.smc, err = startSmcroute(t.rtr, t.dir, "hcb"+t.tag, t.r0.name, names, srcAddr.String(), grpAddr.String())
		if err != nil {
			return err
		}
	case baselineBridge:
		if err := t.waitMDB(ctx, names, 10*time.Second); err != nil {
			return err
		}
	}
	err := t.rtr.run(func() error {
		// Devmaps resolve ifindexes in the writer's namespace.
		return t.dp.ReplaceRoutes([]bpf.Route{{
			RouteKey: bpf.RouteKey{Source: srcAddr, Group: grpAddr},
			IIf:      t.r0.index,
			OIfs:     oifs,
		}})
	})
	if err != nil {
		return err
	}
	return t.probeKernel(ctx, cfg, n)
}

// probeKernel sends a burst through the kernel path until it reaches
// exactly the first n receivers: the bridge's snooping only restricts
// forwarding once its own querier is in charge, and it floods to every port
// until then (RFC 4541 section 2.1.2); ip6mr must forward at once.
func (t *topo) probeKernel(ctx context.Context, cfg *Config, n int) error {
	if err := t.useKernel(); err != nil {
		return err
	}
	const burst = 2000
	deadline := time.Now().Add(15 * time.Second)
	for attempt := 1; ; attempt++ {
		before, err := t.counts()
		if err != nil {
			return err
		}
		g, err := t.startGenerator(ctx, cfg, burst)
		if err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		for wait := time.Now().Add(5 * time.Second); ; {
			if done, _ := g.failed(); done || time.Now().After(wait) {
				break
			}
			if err := sleep(ctx, 10*time.Millisecond); err != nil {
				g.stop()
				return err
			}
		}
		out := g.stop()
		// The receivers' NAPI and sockets drain.
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
		after, err := t.counts()
		if err != nil {
			return err
		}
		var bad []string
		got := make([]uint64, len(after))
		for i := range after {
			got[i] = after[i] - before[i]
			if (i < n) != (got[i] > 0) {
				bad = append(bad, t.h[i].name)
			}
		}
		if len(bad) == 0 {
			t.log.Debug("kernel path probed", "baseline", t.baseline, "fanout", n, "attempt", attempt, "received", got)
			return nil
		}
		t.log.Debug("kernel path probe: not yet the route's receivers", "baseline", t.baseline, "fanout", n,
			"attempt", attempt, "received", got, "generator", strings.TrimSpace(out))
		if time.Now().After(deadline) {
			return fmt.Errorf("kernel path (%s) at fan-out %d: a burst of %d frames reached %v per receiver after %d attempts (want >0 at the first %d, 0 elsewhere; wrong at %v)",
				t.baseline, n, burst, got, attempt, n, bad)
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

// stopKernel stops smcrouted.
func (t *topo) stopKernel() {
	if t.smc != nil {
		t.log.Debug("smcrouted stopped", "output", t.smc.stop())
		t.smc = nil
	}
}

// useKernel hands the router to the kernel baseline: no hotcast program on
// any interface, so frames reach the stack (ip6mr and smcrouted's route) or
// the bridge (its MLD snooping database).
func (t *topo) useKernel() error { return t.detachAll() }

// useHotcast attaches hotcast to every router interface, as the daemon
// does: the ingress program takes the stream before the stack or the
// bridge sees it.
func (t *topo) useHotcast() error {
	return t.rtr.run(func() error {
		for _, l := range append([]*link{t.r0}, t.r...) {
			if err := t.dp.Attach(l.name, l.index); err != nil {
				return err
			}
		}
		return nil
	})
}

func (t *topo) detachAll() error {
	if t.dp == nil {
		return nil
	}
	var errs []error
	for _, name := range t.dp.Attached() {
		errs = append(errs, t.dp.Detach(name))
	}
	return errors.Join(errs...)
}

// close stops processes, closes programs and sockets and deletes the
// namespaces; it is safe on a half-built topology.
func (t *topo) close() error {
	var errs []error
	if t.gen != nil {
		t.gen.stop()
		t.gen = nil
	}
	t.stopKernel()
	for _, u := range t.socks {
		u.close()
	}
	for _, s := range t.sinks {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if t.dp != nil {
		errs = append(errs, t.dp.Close())
	}
	for i := len(t.nss) - 1; i >= 0; i-- {
		errs = append(errs, t.nss[i].close())
	}
	if t.dir != "" {
		errs = append(errs, os.RemoveAll(t.dir))
	}
	return errors.Join(errs...)
}

// udpReceiver is a UDP socket in a receiver namespace, bound to the
// stream's port, that joins the group on the receiver's veth while the
// receiver is in the route; with read set, a goroutine counts datagrams.
type udpReceiver struct {
	c      *ipv6.PacketConn
	ifi    *net.Interface
	joined bool
	n      atomic.Uint64
	done   chan struct{}
}

func newUDPReceiver(ns *namedNS, h *link, read bool) (*udpReceiver, error) {
	u := &udpReceiver{done: make(chan struct{})}
	err := ns.run(func() error {
		pc, err := net.ListenPacket("udp6", "[::]:"+strconv.Itoa(udpPort))
		if err != nil {
			return err
		}
		if uc, ok := pc.(*net.UDPConn); ok && read {
			raw, err := uc.SyscallConn()
			if err == nil {
				// Room for bursts: the reader is a goroutine sharing two
				// CPUs with everything else.
				_ = raw.Control(func(fd uintptr) {
					_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
				})
			}
		}
		u.c = ipv6.NewPacketConn(pc)
		if u.ifi, err = net.InterfaceByIndex(h.index); err != nil {
			pc.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("udp receiver on %s: %w", h.name, err)
	}
	if read {
		go u.loop()
	} else {
		close(u.done)
	}
	return u, nil
}

// setJoined joins the group (the kernel sends the MLD report) or leaves it.
func (u *udpReceiver) setJoined(on bool) error {
	if on == u.joined {
		return nil
	}
	g := &net.UDPAddr{IP: net.IP(grpAddr.AsSlice())}
	if on {
		if err := u.c.JoinGroup(u.ifi, g); err != nil {
			return fmt.Errorf("join %s on %s: %w", grpAddr, u.ifi.Name, err)
		}
	} else if err := u.c.LeaveGroup(u.ifi, g); err != nil {
		return fmt.Errorf("leave %s on %s: %w", grpAddr, u.ifi.Name, err)
	}
	u.joined = on
	return nil
}

func (u *udpReceiver) loop() {
	defer close(u.done)
	ms := make([]ipv6.Message, 64)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	for {
		n, err := u.c.ReadBatch(ms, 0)
		if err != nil {
			return
		}
		u.n.Add(uint64(n))
	}
}

func (u *udpReceiver) close() {
	u.c.Close()
	<-u.done
}

// setEgress sets hotcast's egress mode on the receiver-facing interfaces.
func (t *topo) setEgress(clone bool) error {
	return t.rtr.run(func() error {
		for _, l := range t.r {
			if err := t.dp.SetIface(l.index, bpf.Iface{Gate: bpf.GateForward, SrcMAC: l.mac, Clone: clone}); err != nil {
				return err
			}
		}
		return nil
	})
}
