package bpf

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotcast/hotcast/bpf/bpftest"
	"github.com/hotcast/hotcast/internal/netnstest"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// topo is the fast-path test topology: a sender, the router, three
// receivers, each on its own veth pair and namespace.
//
//	snd:s0 ---- r0:rtr:r1 ---- h1:rcv1
//	                  :r2 ---- h2:rcv2
//	                  :r3 ---- h3:rcv3
type topo struct {
	snd, rtr *netnstest.NS
	rcv      [3]*netnstest.NS
	s0, r0   *netnstest.Link
	r, h     [3]*netnstest.Link
	sinks    [3]*bpftest.Sink
	caps     [3]*packet.Conn
}

func newTopo(t *testing.T) *topo {
	t.Helper()
	tp := &topo{snd: netnstest.New(t, "snd"), rtr: netnstest.New(t, "rtr")}
	tp.s0, tp.r0 = netnstest.Veth(t, tp.snd, "s0", tp.rtr, "r0")
	for i := range 3 {
		tp.rcv[i] = netnstest.New(t, "rcv")
		tp.r[i], tp.h[i] = netnstest.Veth(t, tp.rtr, "r"+string(rune('1'+i)), tp.rcv[i], "h"+string(rune('1'+i)))
		i := i
		// A pass-mode sink on each receiver end: it counts per group and
		// lets the veth receive XDP-redirected frames.
		tp.rcv[i].Do(t, func() error {
			s, err := bpftest.AttachSink(tp.h[i].Index, false)
			if err != nil {
				return err
			}
			tp.sinks[i] = s
			ifi, err := net.InterfaceByIndex(tp.h[i].Index)
			if err != nil {
				return err
			}
			c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_IPV6, nil)
			if err != nil {
				return err
			}
			tp.caps[i] = c
			return nil
		})
		t.Cleanup(func() {
			tp.caps[i].Close()
			tp.sinks[i].Close()
		})
	}
	return tp
}

// send writes n copies of frame out of the sender's s0.
func (tp *topo) send(t *testing.T, f frame, n int) {
	t.Helper()
	var c *packet.Conn
	tp.snd.Do(t, func() error {
		ifi, err := net.InterfaceByIndex(tp.s0.Index)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		return err
	})
	defer c.Close()
	f.srcMAC = tp.s0.MAC
	b := f.bytes()
	for range n {
		if _, err := c.WriteTo(b, &packet.Addr{HardwareAddr: b[:6]}); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
}

func (tp *topo) counts(t *testing.T, g netip.Addr) [3]uint64 {
	t.Helper()
	var out [3]uint64
	for i, s := range tp.sinks {
		m, err := s.Counts()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = m[g]
	}
	return out
}

// waitCounts polls until the receivers' counts for g equal want (frames in
// flight through veth are asynchronous) or a generous deadline passes.
func (tp *topo) waitCounts(t *testing.T, g netip.Addr, want [3]uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := tp.counts(t, g)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("receivers got %v frames of %s, want %v", got, g, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// capture returns the first frame to group g a receiver's socket sees.
func (tp *topo) capture(t *testing.T, i int, g netip.Addr) []byte {
	t.Helper()
	buf := make([]byte, 2048)
	want := g.As16()
	for {
		if err := tp.caps[i].SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, _, err := tp.caps[i].ReadFrom(buf)
		if err != nil {
			t.Fatalf("receiver %d: no frame for %s: %v", i+1, g, err)
		}
		if n >= 54 && bytes.Equal(buf[38:54], want[:]) {
			return append([]byte{}, buf[:n]...)
		}
	}
}

func (tp *topo) router(t *testing.T, pin string) *Dataplane {
	t.Helper()
	var d *Dataplane
	tp.rtr.Do(t, func() error {
		var err error
		d, err = Open(Options{PinPath: pin, XDPFlags: 0})
		if err != nil {
			return err
		}
		for _, l := range append([]*netnstest.Link{tp.r0}, tp.r[:]...) {
			if err := d.Attach(l.Name, l.Index); err != nil {
				return err
			}
			if _, err := d.EnsureIface(l.Index, Iface{Gate: GateForward, SrcMAC: l.MAC}); err != nil {
				return err
			}
		}
		return nil
	})
	return d
}

func TestForwardVeth(t *testing.T) {
	tp := newTopo(t)
	d := tp.router(t, "")
	defer d.Close()
	// Devmaps resolve ifindexes in the writer's namespace: write from the
	// router's, as the daemon does.
	tp.rtr.Enter(t)

	ll := netip.MustParseAddr("ff02::1:3")
	g3 := netip.MustParseAddr("ff3e::3")
	routes := []Route{
		{RouteKey: RouteKey{Source: srcS, Group: grpG}, IIf: tp.r0.Index, OIfs: []int{tp.r[0].Index, tp.r[1].Index}},
		// Even with a route, a link-local group stays on its link.
		{RouteKey: RouteKey{Group: ll}, IIf: tp.r0.Index, OIfs: []int{tp.r[0].Index, tp.r[1].Index, tp.r[2].Index}},
		// RPF: this group is only accepted from r3.
		{RouteKey: RouteKey{Group: g3}, IIf: tp.r[2].Index, OIfs: []int{tp.r[0].Index}},
		// A route that includes the ingress: never sent back out of it.
		{RouteKey: RouteKey{Group: grpG2}, IIf: tp.r0.Index, OIfs: []int{tp.r0.Index, tp.r[2].Index}},
	}
	if err := d.ReplaceRoutes(routes); err != nil {
		t.Fatal(err)
	}
	before, _ := d.Reasons()

	tp.send(t, frame{src: srcS, dst: grpG, hopLimit: 64}, 100)
	tp.waitCounts(t, grpG, [3]uint64{100, 100, 0})
	for i := range 2 {
		f := tp.capture(t, i, grpG)
		if got := f[14+7]; got != 63 {
			t.Errorf("receiver %d: hop limit %d, want 63", i+1, got)
		}
		if !bytes.Equal(f[6:12], tp.r[i].MAC) {
			t.Errorf("receiver %d: source mac %s, want the router's %s", i+1, net.HardwareAddr(f[6:12]), tp.r[i].MAC)
		}
		if !bytes.Equal(f[0:6], mcMAC(grpG)) {
			t.Errorf("receiver %d: destination mac %s", i+1, net.HardwareAddr(f[0:6]))
		}
	}

	tp.send(t, frame{src: srcS, dst: ll, hopLimit: 1}, 10)
	tp.send(t, frame{src: srcS, dst: g3, hopLimit: 64}, 10)
	tp.send(t, frame{src: srcS, dst: grpG2, hopLimit: 64}, 10)
	tp.waitCounts(t, grpG2, [3]uint64{0, 0, 10})
	time.Sleep(100 * time.Millisecond)
	if got := tp.counts(t, ll); got != [3]uint64{} {
		t.Errorf("link-local group reached receivers: %v", got)
	}
	if got := tp.counts(t, g3); got != [3]uint64{} {
		t.Errorf("RPF-failed group reached receivers: %v", got)
	}
	after, _ := d.Reasons()
	for r, want := range map[Reason]uint64{ReasonDropRPF: 10, ReasonForwarded: 110, ReasonEgressSent: 210} {
		if got := after[r] - before[r]; got != want {
			t.Errorf("%s moved by %d, want %d", ReasonName(r), got, want)
		}
	}
	if got := after[ReasonPassLocalScope] - before[ReasonPassLocalScope]; got < 10 {
		t.Errorf("pass_local_scope moved by %d, want >= 10", got)
	}
	rs := routeStats(t, d, RouteKey{Source: srcS, Group: grpG})
	if rs.Packets != 100 {
		t.Errorf("route counter %d packets, want 100", rs.Packets)
	}

	// Muting r2 stops its copies at once; r1 keeps getting them.
	if err := d.SetGate(tp.r[1].Index, GateMuted); err != nil {
		t.Fatal(err)
	}
	tp.send(t, frame{src: srcS, dst: grpG, hopLimit: 64}, 50)
	tp.waitCounts(t, grpG, [3]uint64{150, 100, 0})
}

// TestPinAdoptUnderTraffic closes the dataplane (the daemon going away) and
// opens it again from the pins while a stream runs: not one frame is lost,
// because links, maps and programs outlive the process.
func TestPinAdoptUnderTraffic(t *testing.T) {
	tp := newTopo(t)
	pin := filepath.Join("/sys/fs/bpf/hotcast", netnstest.UniqueName("test"))
	t.Cleanup(func() { _ = Cleanup(pin) })
	d := tp.router(t, pin)
	tp.rtr.Enter(t)
	if d.Adopted() {
		t.Fatal("a fresh pin path was adopted")
	}
	if err := d.ReplaceRoutes([]Route{{RouteKey: RouteKey{Source: srcS, Group: grpG}, IIf: tp.r0.Index, OIfs: []int{tp.r[0].Index}}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"maps/routes", "progs/hc_ingress", "links/xdp/r0", "links/xdp/r3"} {
		if _, err := os.Stat(filepath.Join(pin, p)); err != nil {
			t.Errorf("pin %s: %v", p, err)
		}
	}

	// A steady stream in the background.
	var sent atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	var c *packet.Conn
	tp.snd.Do(t, func() error {
		ifi, err := net.InterfaceByIndex(tp.s0.Index)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		return err
	})
	defer c.Close()
	b := frame{src: srcS, dst: grpG, hopLimit: 64, srcMAC: tp.s0.MAC}.bytes()
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.WriteTo(b, &packet.Addr{HardwareAddr: b[:6]}); err == nil {
					sent.Add(1)
				}
			}
		}
	}()

	time.Sleep(200 * time.Millisecond)
	d.Close() // the daemon exits
	time.Sleep(200 * time.Millisecond)
	d2 := tp.router(t, pin) // and starts again
	defer d2.Close()
	if !d2.Adopted() {
		t.Fatal("pinned dataplane not adopted")
	}
	rs, err := d2.Routes()
	if err != nil || len(rs) != 1 || rs[0].OIfs[0] != tp.r[0].Index {
		t.Fatalf("adopted routes %+v, %v", rs, err)
	}
	// The adopted state is usable: a second receiver is added.
	if err := d2.ReplaceRoutes([]Route{{RouteKey: RouteKey{Source: srcS, Group: grpG}, IIf: tp.r0.Index, OIfs: []int{tp.r[0].Index, tp.r[1].Index}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	<-done
	n := sent.Load()
	tp.waitCounts(t, grpG, [3]uint64{n, tp.counts(t, grpG)[1], 0})
	if tp.counts(t, grpG)[1] == 0 {
		t.Error("route change after adoption had no effect")
	}
	if got := routeStats(t, d2, RouteKey{Source: srcS, Group: grpG}).Packets; got != n {
		t.Errorf("route counter %d after adoption, want %d (counters survive restarts)", got, n)
	}

	// Cleanup detaches everything and removes the pins.
	d2.Close()
	if err := Cleanup(pin); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pin); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin path still there: %v", err)
	}
	tp.rtr.Do(t, func() error {
		ifi, err := net.InterfaceByIndex(tp.r0.Index)
		if err != nil {
			return err
		}
		_ = ifi
		return nil
	})
	before := tp.counts(t, grpG)
	tp.send(t, frame{src: srcS, dst: grpG, hopLimit: 64}, 20)
	time.Sleep(200 * time.Millisecond)
	if after := tp.counts(t, grpG); after != before {
		t.Errorf("still forwarding after cleanup: %v -> %v", before, after)
	}
}

// TestForwardVethClone: the same forwarding with clone-mode egress
// interfaces, replicated in TC with bpf_clone_redirect: every copy arrives
// with the hop limit decremented and the egress interface's source MAC, the
// ingress is excluded, and a muted gate stops its copies.
func TestForwardVethClone(t *testing.T) {
	tp := newTopo(t)
	d := tp.router(t, "")
	defer d.Close()
	tp.rtr.Enter(t)
	for _, l := range tp.r[:2] {
		if err := d.SetIface(l.Index, Iface{Gate: GateForward, SrcMAC: l.MAC, Clone: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.ReplaceRoutes([]Route{
		{RouteKey: RouteKey{Source: srcS, Group: grpG}, IIf: tp.r0.Index, OIfs: []int{tp.r0.Index, tp.r[0].Index, tp.r[1].Index}},
	}); err != nil {
		t.Fatal(err)
	}
	var v ingressHcRoute
	if err := d.maps.Routes.Lookup(RouteKey{Source: srcS, Group: grpG}.bpfKey(), &v); err != nil || RouteFlags(v.Flags)&routeClone == 0 {
		t.Fatalf("route not flagged for clone replication: %+v %v", v, err)
	}
	before, _ := d.Reasons()
	tp.send(t, frame{src: srcS, dst: grpG, hopLimit: 64}, 100)
	tp.waitCounts(t, grpG, [3]uint64{100, 100, 0})
	for i := range 2 {
		f := tp.capture(t, i, grpG)
		if got := f[14+7]; got != 63 {
			t.Errorf("receiver %d: hop limit %d, want 63", i+1, got)
		}
		if !bytes.Equal(f[6:12], tp.r[i].MAC) {
			t.Errorf("receiver %d: source mac %s, want %s", i+1, net.HardwareAddr(f[6:12]), tp.r[i].MAC)
		}
	}
	after, _ := d.Reasons()
	for r, want := range map[Reason]uint64{ReasonForwardedClone: 100, ReasonEgressSent: 200, ReasonForwarded: 0, ReasonDropClone: 0} {
		if got := after[r] - before[r]; got != want {
			t.Errorf("%s moved by %d, want %d", ReasonName(r), got, want)
		}
	}
	if err := d.SetGate(tp.r[1].Index, GateMuted); err != nil {
		t.Fatal(err)
	}
	tp.send(t, frame{src: srcS, dst: grpG, hopLimit: 64}, 50)
	tp.waitCounts(t, grpG, [3]uint64{150, 100, 0})
}
