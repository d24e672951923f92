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
	log     *slog.Logger
	tag     string
	dir     string // scratch: trafgen and smcroute files
	variant string

	nss      []*namedNS
	snd, rtr *namedNS
	s0, r0   *link
	r, h     []*link
	rcv      []*namedNS

	dp    *bpf.Dataplane
	sinks []*bpf.Sink    // sink variant
	socks []*udpReceiver // socket variant
	smc   *smcroute      // kernel path's route daemon (per fan-out)
	gen   *proc          // running trafgen
}

// newTopo builds the namespaces and links for m receivers, loads the
// dataplane and prepares the receivers for the variant.
func newTopo(log *slog.Logger, cfg *Config, m int) (_ *topo, err error) {
	t := &topo{log: log, tag: uniqueTag(4), variant: ""}
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
// while trafgen has the other CPU.
func (t *topo) pinRouter(cpu int) error {
	// /sys/class/net shows the namespace that mounted sysfs: ip netns exec
	// mounts a fresh one for the command (no bpffs pins involved here).
	out, err := execOut("ip", "netns", "exec", t.rtr.name, "sh", "-c", "echo 1 > /sys/class/net/"+t.r0.name+"/threaded")
	if err != nil {
		return fmt.Errorf("threaded napi on %s: %w: %s", t.r0.name, err, out)
	}
	pids, err := napiThreads(t.r0.name)
	if err != nil {
		return err
	}
	if len(pids) == 0 {
		return fmt.Errorf("no napi thread for %s", t.r0.name)
	}
	for _, pid := range pids {
		if out, err := execOut("taskset", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("pin napi thread %d: %w: %s", pid, err, out)
		}
	}
	t.log.Debug("router napi pinned", "dev", t.r0.name, "threads", pids, "cpu", cpu)
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
// dropping XDP sinks, or GRO plus a UDP socket joined to the group.
func (t *topo) setupReceivers(variant string) error {
	t.variant = variant
	switch variant {
	case "sink":
		for i, h := range t.h {
			err := t.rcv[i].run(func() error {
				s, err := bpf.AttachSink(h.index, true)
				if err != nil {
					return err
				}
				t.sinks = append(t.sinks, s)
				return nil
			})
			if err != nil {
				return fmt.Errorf("sink on %s: %w", h.name, err)
			}
		}
	case "socket":
		for i, h := range t.h {
			// GRO gives the veth NAPI, which is what lets it take
			// XDP-redirected frames without an XDP program of its own.
			if err := h.ethtool("-K", h.name, "gro", "on"); err != nil {
				return err
			}
			if err := h.addAddr(fmt.Sprintf("fd00:b:%x::2/64", i+1)); err != nil {
				return err
			}
			u, err := newUDPReceiver(t.rcv[i], h)
			if err != nil {
				return err
			}
			t.socks = append(t.socks, u)
		}
	default:
		return fmt.Errorf("unknown variant %q", variant)
	}
	return nil
}

// counts returns each receiver's frames (sink) or datagrams (socket) so far.
func (t *topo) counts() ([]uint64, error) {
	out := make([]uint64, len(t.h))
	switch t.variant {
	case "sink":
		for i, s := range t.sinks {
			m, err := s.Counts()
			if err != nil {
				return nil, err
			}
			out[i] = m[grpAddr]
		}
	case "socket":
		for i, u := range t.socks {
			out[i] = u.n.Load()
		}
	}
	return out, nil
}

// setFanout installs the (S,G) route to the first n receivers in both
// paths: smcrouted (restarted with a new configuration) for ip6mr, and
// hotcast's route map. Which path carries the stream is decided by
// useKernel/useHotcast.
func (t *topo) setFanout(n int) error {
	t.stopKernel()
	names := make([]string, n)
	oifs := make([]int, n)
	for i := range n {
		names[i] = t.r[i].name
		oifs[i] = t.r[i].index
	}
	var err error
	t.smc, err = startSmcroute(t.rtr, t.dir, "hcb"+t.tag, t.r0.name, names, srcAddr.String(), grpAddr.String())
	if err != nil {
		return err
	}
	return t.rtr.run(func() error {
		// Devmaps resolve ifindexes in the writer's namespace.
		return t.dp.ReplaceRoutes([]bpf.Route{{
			RouteKey: bpf.RouteKey{Source: srcAddr, Group: grpAddr},
			IIf:      t.r0.index,
			OIfs:     oifs,
		}})
	})
}

// stopKernel stops smcrouted.
func (t *topo) stopKernel() {
	if t.smc != nil {
		t.log.Debug("smcrouted stopped", "output", t.smc.stop())
		t.smc = nil
	}
}

// useKernel hands the router to ip6mr: no hotcast program on any
// interface, so frames reach the stack and smcrouted's route.
func (t *topo) useKernel() error { return t.detachAll() }

// useHotcast attaches hotcast to every router interface, as the daemon
// does: the ingress program takes the stream before the stack sees it.
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
		t.gen.stop(unix.SIGINT, 2*time.Second)
		t.gen = nil
	}
	t.stopKernel()
	for _, u := range t.socks {
		u.close()
	}
	for _, s := range t.sinks {
		errs = append(errs, s.Close())
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

// udpReceiver is a UDP socket in a receiver namespace, joined to the group
// on the receiver's veth, counting datagrams in a goroutine.
type udpReceiver struct {
	c    *ipv6.PacketConn
	n    atomic.Uint64
	done chan struct{}
}

func newUDPReceiver(ns *namedNS, h *link) (*udpReceiver, error) {
	u := &udpReceiver{done: make(chan struct{})}
	err := ns.run(func() error {
		pc, err := net.ListenPacket("udp6", "[::]:"+strconv.Itoa(udpPort))
		if err != nil {
			return err
		}
		if uc, ok := pc.(*net.UDPConn); ok {
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
		ifi, err := net.InterfaceByIndex(h.index)
		if err != nil {
			pc.Close()
			return err
		}
		if err := u.c.JoinGroup(ifi, &net.UDPAddr{IP: net.IP(grpAddr.AsSlice())}); err != nil {
			pc.Close()
			return fmt.Errorf("join %s on %s: %w", grpAddr, h.name, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("udp receiver on %s: %w", h.name, err)
	}
	go u.loop()
	return u, nil
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
