//go:build linux

package pim

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotcast/hotcast/internal/clock/clocktest"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// router is an Interface on a real socket: a goroutine feeds what the
// socket reads to HandlePacket.
type router struct {
	h    *harness
	conn *Conn
	ll   netip.Addr

	mu    sync.Mutex
	reads []Packet
	drops []DropReason
}

// sockSender records the harness's sends and puts them on the socket.
type sockSender struct {
	h *harness
	c *Conn
}

func (s sockSender) SendPIM(dst netip.Addr, b []byte) error {
	if err := s.h.SendPIM(dst, b); err != nil { // record
		return err
	}
	return s.c.SendPIM(dst, b)
}

func startRouter(t *testing.T, ns *netnstest.NS, ifname string, ll netip.Addr, prio uint32) *router {
	t.Helper()
	var c *Conn
	ns.Do(t, func() (err error) { c, err = Listen(ifname, ll); return err })
	t.Cleanup(func() { c.Close() })
	r := &router{conn: c, ll: ll}
	r.h = newHarness(t, clocktest.New(t0), ll, func(cfg *Config) {
		cfg.Name = ifname
		cfg.DRPriority = prio
		cfg.Rand = &fixedRand{frac: 0, genIDs: []uint32{uint32(prio)}} // first Hello at once
	})
	r.h.ifc.cfg.Sender = sockSender{h: r.h, c: c}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			p, err := c.Read(ctx)
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("%s read: %v", ifname, err)
				}
				return
			}
			d := r.h.ifc.HandlePacket(p)
			r.mu.Lock()
			r.reads = append(r.reads, p)
			r.drops = append(r.drops, d)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// waitFor polls cond for up to 5 s of real time: the packets cross a
// veth, so they take a moment, but never that long.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// capture records the frames link ifindex receives (not those it sends)
// that carry PIM, from an AF_PACKET socket opened in ns.
type capture struct {
	fd     int
	mu     sync.Mutex
	frames [][]byte
	done   chan struct{}
	stopFn func() // stops the capture; idempotent with the cleanup
}

func startCapture(t *testing.T, ns *netnstest.NS, ifindex int) *capture {
	t.Helper()
	c := &capture{done: make(chan struct{})}
	ns.Do(t, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		c.fd = fd
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50000}); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex})
	})
	stop := make(chan struct{})
	go func() {
		defer close(c.done)
		buf := make([]byte, 0xffff)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, from, err := unix.Recvfrom(c.fd, buf, 0)
			if err != nil {
				continue // timeout
			}
			ll, ok := from.(*unix.SockaddrLinklayer)
			f := buf[:n]
			if !ok || ll.Pkttype == unix.PACKET_OUTGOING || n < 14+40 ||
				binary.BigEndian.Uint16(f[12:14]) != unix.ETH_P_IPV6 || f[14+6] != IPProtocol {
				continue
			}
			c.mu.Lock()
			c.frames = append(c.frames, append([]byte(nil), f...))
			c.mu.Unlock()
		}
	}()
	var once sync.Once
	c.stopFn = func() { once.Do(func() { close(stop) }); <-c.done }
	t.Cleanup(func() { c.stopFn(); unix.Close(c.fd) })
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestConnNeighbors runs two Interfaces on real PIM sockets across a veth
// pair, on this kernel without multicast routing: they become neighbours
// and agree on the DR, Join/Prune and Assert arrive with the IPv6 header
// facts the checks need (ff02::d, hop limit 1, link-local source), nobody
// reads its own multicast, a goodbye removes the neighbour at once, and
// what arrived on the wire decodes in tshark.
func TestConnNeighbors(t *testing.T) {
	netnstest.RequireRoot(t)
	nsA, nsB := netnstest.New(t, "pima"), netnstest.New(t, "pimb")
	la, lb := netnstest.Veth(t, nsA, "pa0", nsB, "pb0")
	addrA, addrB := la.WaitLinkLocal(t), lb.WaitLinkLocal(t)
	capB := startCapture(t, nsB, lb.Index)

	a := startRouter(t, nsA, "pa0", addrA, 10)
	b := startRouter(t, nsB, "pb0", addrB, 20)
	a.h.ifc.Start()
	b.h.ifc.Start()
	a.h.clk.Advance(0)
	b.h.clk.Advance(0)
	waitFor(t, "neighbors", func() bool {
		_, ab := a.h.ifc.Neighbor(addrB)
		_, ba := b.h.ifc.Neighbor(addrA)
		return ab && ba
	})
	if a.h.ifc.DR() != addrB || b.h.ifc.DR() != addrB || !b.h.ifc.IsDR() {
		t.Fatalf("DR: A says %v, B says %v; want %v (priority 20)", a.h.ifc.DR(), b.h.ifc.DR(), addrB)
	}
	n, _ := b.h.ifc.Neighbor(addrA)
	if n.DRPriority == nil || *n.DRPriority != 10 || n.GenerationID == nil || *n.GenerationID != 10 || n.LANPruneDelay == nil {
		t.Fatalf("B's record of A: %+v", n)
	}

	jp := &JoinPrune{UpstreamNeighbor: addrB, Holdtime: 210, Groups: []GroupSet{
		{Group: SingleGroup(grp1), Joins: []Source{StarG(rp)}, Prunes: []Source{SGRpt(src1)}},
		{Group: SingleGroup(ssm1), Joins: []Source{SG(src2)}},
	}}
	as := &Assert{Group: SingleGroup(grp1), Source: src1, MetricPreference: 110, Metric: 20}
	for _, m := range []Message{jp, as} {
		buf, err := Marshal(m, addrA, AllPIMRouters)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.conn.SendPIM(AllPIMRouters, buf); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "join/prune and assert at B", func() bool {
		b.h.mu.Lock()
		defer b.h.mu.Unlock()
		return len(b.h.recv) == 2
	})
	b.h.mu.Lock()
	got := slices.Clone(b.h.recv)
	b.h.mu.Unlock()
	want := []Received{
		{Interface: "pb0", Src: addrA, Dst: AllPIMRouters, Message: jp},
		{Interface: "pb0", Src: addrA, Dst: AllPIMRouters, Message: as},
	}
	for i := range want {
		if got[i].Src != want[i].Src || got[i].Dst != want[i].Dst || got[i].Interface != want[i].Interface {
			t.Errorf("received %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	b.mu.Lock()
	for i, p := range b.reads {
		if p.HopLimit != 1 || p.Dst != AllPIMRouters || p.Src != addrA || b.drops[i] != DropNone {
			t.Errorf("B read %+v, dropped %v", p, b.drops[i])
		}
	}
	b.mu.Unlock()

	// A leaves: its goodbye reaches B, which forgets A and stays DR.
	a.h.ifc.Stop()
	waitFor(t, "goodbye at B", func() bool { _, ok := b.h.ifc.Neighbor(addrA); return !ok })
	if !b.h.ifc.IsDR() {
		t.Error("B not DR alone")
	}
	for _, r := range []*router{a, b} {
		r.mu.Lock()
		for _, p := range r.reads {
			if p.Src == r.ll {
				t.Errorf("%v read its own message", r.ll)
			}
		}
		r.mu.Unlock()
	}

	capB.stopFn()
	capB.mu.Lock()
	raw := slices.Clone(capB.frames)
	capB.mu.Unlock()
	t.Run("tshark", func(t *testing.T) {
		needTshark(t)
		var frames []wireFrame
		for i, f := range raw {
			m, err := Parse(f[14+40:])
			if err != nil {
				t.Fatalf("captured frame %d: %v", i, err)
			}
			// The expected IPv6 facts are what A must send, not what
			// was captured.
			frames = append(frames, wireFrame{name: "captured-" + m.Type().String(), m: m, src: addrA, dst: AllPIMRouters, hopLimit: HopLimit, raw: f})
		}
		types := map[MessageType]int{}
		for _, f := range frames {
			types[f.m.Type()]++
		}
		t.Logf("captured on B's veth: %d frames from A, by type %v", len(frames), types)
		if types[TypeHello] < 2 || types[TypeJoinPrune] != 1 || types[TypeAssert] != 1 {
			t.Fatalf("captured %v, want A's hellos (one a goodbye), a join/prune and an assert", types)
		}
		tsharkCheck(t, frames)
	})
}
