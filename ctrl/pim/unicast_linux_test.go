//go:build linux

package pim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hotcast/hotcast/internal/inet"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// The unicast test network: A (a DR) and B (the RP, its RP address on
// lo, reached through B's veth address) on one veth pair.
var (
	ucAddrA  = netip.MustParseAddr("2001:db8:7::1")
	ucAddrB  = netip.MustParseAddr("2001:db8:7::2")
	ucRP     = netip.MustParseAddr("2001:db8:77::1")
	ucSource = netip.MustParseAddr("2001:db8:7::100")
	ucGroup  = netip.MustParseAddr("ff0e::7:7")
)

// ucNet is the two namespaces of the unicast tests with a UnicastConn in
// each.
type ucNet struct {
	nsA, nsB *netnstest.NS
	la, lb   *netnstest.Link
	a, b     *UnicastConn
}

func newUCNet(t *testing.T) *ucNet {
	t.Helper()
	netnstest.RequireRoot(t)
	n := &ucNet{nsA: netnstest.New(t, "uca"), nsB: netnstest.New(t, "ucb")}
	n.la, n.lb = netnstest.Veth(t, n.nsA, "ua0", n.nsB, "ub0")
	n.la.AddAddr(t, "2001:db8:7::1/64")
	n.lb.AddAddr(t, "2001:db8:7::2/64")
	(&netnstest.Link{NS: n.nsB, Name: "lo"}).AddAddr(t, "2001:db8:77::1/128")
	h := n.nsA.Handle(t)
	_, rpNet, _ := net.ParseCIDR("2001:db8:77::/64")
	if err := h.RouteAdd(&netlink.Route{LinkIndex: n.la.Index, Dst: rpNet, Gw: ucAddrB.AsSlice()}); err != nil {
		t.Fatalf("route to the rp: %v", err)
	}
	n.a, n.b = listenUnicastIn(t, n.nsA), listenUnicastIn(t, n.nsB)
	return n
}

func listenUnicastIn(t *testing.T, ns *netnstest.NS) *UnicastConn {
	t.Helper()
	var c *UnicastConn
	ns.Do(t, func() (err error) { c, err = ListenUnicast(); return err })
	t.Cleanup(func() { c.Close() })
	return c
}

// ucRead reads one packet within 5 s.
func ucRead(t *testing.T, c *UnicastConn) UnicastPacket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("unicast read: %v", err)
	}
	return p
}

// ucInner is an IPv6/UDP packet of size octets from ucSource to ucGroup.
func ucInner(size int) []byte {
	udp := make([]byte, size-ipv6HeaderLen)
	binary.BigEndian.PutUint16(udp[0:], 5000)
	binary.BigEndian.PutUint16(udp[2:], 5001)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	for i := 8; i < len(udp); i++ {
		udp[i] = byte(i)
	}
	binary.BigEndian.PutUint16(udp[6:], inet.UDPChecksum(ucSource, ucGroup, udp))
	return append(ipv6Header(ucSource, ucGroup, inet.ProtoUDP, 64, len(udp)), udp...)
}

func ucMarshal(t *testing.T, m Message, src, dst netip.Addr) []byte {
	t.Helper()
	b, err := Marshal(m, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkUnicast compares a read packet with what was sent, and checks that
// the message still decodes and verifies.
func checkUnicast(t *testing.T, what string, got UnicastPacket, src, dst netip.Addr, ifindex int, msg []byte) {
	t.Helper()
	if got.Src != src || got.Dst != dst || got.Ifindex != ifindex || got.HopLimit != 64 {
		t.Errorf("%s: read %v -> %v ifindex %d hop limit %d; want %v -> %v ifindex %d hop limit 64",
			what, got.Src, got.Dst, got.Ifindex, got.HopLimit, src, dst, ifindex)
	}
	if !bytes.Equal(got.Payload, msg) {
		t.Errorf("%s: payload of %d octets differs from the %d sent", what, len(got.Payload), len(msg))
	}
	if err := Verify(got.Src, got.Dst, got.Payload); err != nil {
		t.Errorf("%s: verify: %v", what, err)
	}
	if _, err := Parse(got.Payload); err != nil {
		t.Errorf("%s: parse: %v", what, err)
	}
}

// TestUnicastConnRegister sends a Register from the DR to the RP's address
// (routed, on B's lo) and a Register-Stop back: each arrives with the
// source, destination, incoming interface, unicast hop limit and bytes
// sent. A Null-Register with no source gets the kernel's choice; a source
// that is not the host's and a multicast destination are refused.
func TestUnicastConnRegister(t *testing.T) {
	n := newUCNet(t)

	reg := ucMarshal(t, &Register{Packet: ucInner(100)}, ucAddrA, ucRP)
	if err := n.a.SendUnicast(ucAddrA, ucRP, reg); err != nil {
		t.Fatal(err)
	}
	checkUnicast(t, "register", ucRead(t, n.b), ucAddrA, ucRP, n.lb.Index, reg)

	stop := ucMarshal(t, &RegisterStop{Group: SingleGroup(ucGroup), Source: ucSource}, ucRP, ucAddrA)
	if err := n.b.SendUnicast(ucRP, ucAddrA, stop); err != nil {
		t.Fatal(err)
	}
	checkUnicast(t, "register-stop", ucRead(t, n.a), ucRP, ucAddrA, n.la.Index, stop)

	null := ucMarshal(t, NullRegister(ucSource, ucGroup), ucAddrA, ucRP)
	if err := n.a.SendUnicast(netip.Addr{}, ucRP, null); err != nil {
		t.Fatal(err)
	}
	checkUnicast(t, "null-register from no source", ucRead(t, n.b), ucAddrA, ucRP, n.lb.Index, null)

	for _, c := range []struct {
		name     string
		src, dst netip.Addr
	}{
		{"foreign source", netip.MustParseAddr("2001:db8:9::9"), ucRP},
		{"multicast destination", ucAddrA, AllPIMRouters},
		{"ipv4-mapped destination", ucAddrA, netip.MustParseAddr("::ffff:192.0.2.1")},
		{"no destination", ucAddrA, netip.Addr{}},
	} {
		if err := n.a.SendUnicast(c.src, c.dst, reg); err == nil {
			t.Errorf("%s: sent %v -> %v", c.name, c.src, c.dst)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
	if n.a.SkippedMulticast() != 0 || n.b.SkippedMulticast() != 0 || n.a.Truncated() != 0 || n.b.Truncated() != 0 {
		t.Errorf("skipped %d/%d truncated %d/%d", n.a.SkippedMulticast(), n.b.SkippedMulticast(), n.a.Truncated(), n.b.Truncated())
	}
}

// TestUnicastConnSkipsMulticast: a Hello to ff02::d reaches the
// UnicastConn too (B's per-interface Conn joined the group), which skips
// and counts it; the Register sent after it is what Read returns.
func TestUnicastConnSkipsMulticast(t *testing.T) {
	n := newUCNet(t)
	llA, llB := n.la.WaitLinkLocal(t), n.lb.WaitLinkLocal(t)
	var ca, cb *Conn
	n.nsA.Do(t, func() (err error) { ca, err = Listen("ua0", llA); return err })
	t.Cleanup(func() { ca.Close() })
	n.nsB.Do(t, func() (err error) { cb, err = Listen("ub0", llB); return err })
	t.Cleanup(func() { cb.Close() })

	got := make(chan UnicastPacket, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			p, err := n.b.Read(ctx)
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("unicast read: %v", err)
				}
				return
			}
			got <- p
		}
	}()
	t.Cleanup(func() { cancel(); <-done })

	hold := uint16(105)
	hello := ucMarshal(t, &Hello{Holdtime: &hold}, llA, AllPIMRouters)
	if err := ca.SendPIM(AllPIMRouters, hello); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	hp, err := cb.Read(rctx)
	if err != nil {
		t.Fatalf("hello at B's interface socket: %v", err)
	}
	if hp.Dst != AllPIMRouters || hp.Src != llA {
		t.Fatalf("B's interface socket read %v -> %v", hp.Src, hp.Dst)
	}
	waitFor(t, "the hello skipped by the unicast socket", func() bool { return n.b.SkippedMulticast() >= 1 })

	reg := ucMarshal(t, &Register{Packet: ucInner(200)}, ucAddrA, ucAddrB)
	if err := n.a.SendUnicast(ucAddrA, ucAddrB, reg); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		checkUnicast(t, "register after a hello", p, ucAddrA, ucAddrB, n.lb.Index, reg)
	case <-time.After(5 * time.Second):
		t.Fatal("no register")
	}
	t.Logf("skipped multicast: %d", n.b.SkippedMulticast())

	// Not UnicastConn's business, but the daemon's: the kernel gives the
	// Register to B's interface socket as well (a raw socket bound to
	// the device gets every PIM packet arriving there).
	rctx2, rcancel2 := context.WithTimeout(context.Background(), time.Second)
	defer rcancel2()
	if p, err := cb.Read(rctx2); err == nil {
		t.Logf("B's interface socket also read %v -> %v (%d octets)", p.Src, p.Dst, len(p.Payload))
	} else {
		t.Logf("B's interface socket did not read the register: %v", err)
	}
}

// TestUnicastConnBigRegister: a Register with a 1500-octet data packet
// (1548 octets of IPv6) leaves A in fragments no larger than the 1500
// MTU, traffic class CS6, and arrives reassembled at the RP.
func TestUnicastConnBigRegister(t *testing.T) {
	n := newUCNet(t)
	tap := startFrameTap(t, n.nsB, n.lb.Index)
	inner := ucInner(1500)
	reg := ucMarshal(t, &Register{Packet: inner}, ucAddrA, ucRP)
	if err := n.a.SendUnicast(ucAddrA, ucRP, reg); err != nil {
		t.Fatal(err)
	}
	p := ucRead(t, n.b)
	checkUnicast(t, "big register", p, ucAddrA, ucRP, n.lb.Index, reg)
	m, err := Parse(p.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := m.(*Register); !ok || !bytes.Equal(r.Packet, inner) {
		t.Fatalf("read %+v, want the register of the 1500-octet packet", m)
	}

	var frags [][]byte
	waitFor(t, "the fragments on B's veth", func() bool {
		frags = frags[:0]
		for _, f := range tap.frames() {
			if len(f) >= 14+40 && f[14+6] == unix.IPPROTO_FRAGMENT && netip.AddrFrom16([16]byte(f[14+24:14+40])) == ucRP {
				frags = append(frags, f)
			}
		}
		return len(frags) >= 2
	})
	total := 0
	for i, f := range frags {
		ip := f[14:]
		if len(ip) > 1500 {
			t.Errorf("fragment %d: %d octets of IPv6, MTU 1500", i, len(ip))
		}
		if tc := ip[0]&0x0f<<4 | ip[1]>>4; tc != trafficClassCS6 {
			t.Errorf("fragment %d: traffic class %#x, want CS6", i, tc)
		}
		if ip[40] != IPProtocol {
			t.Errorf("fragment %d: fragment header's next header %d", i, ip[40])
		}
		total += int(binary.BigEndian.Uint16(ip[4:6])) - 8
	}
	if total != len(reg) {
		t.Errorf("fragments carry %d octets, the register has %d", total, len(reg))
	}
	t.Logf("register of %d octets: %d fragments on the wire", len(reg), len(frags))
}

// TestUnicastConnReadEnds: cancelling the context ends a Read, the next
// Read still works, and Close ends a blocked Read.
func TestUnicastConnReadEnds(t *testing.T) {
	n := newUCNet(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := n.b.Read(ctx); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("read after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not end the read")
	}

	stop := ucMarshal(t, &RegisterStop{Group: SingleGroup(ucGroup), Source: ucSource}, ucAddrA, ucAddrB)
	if err := n.a.SendUnicast(ucAddrA, ucAddrB, stop); err != nil {
		t.Fatal(err)
	}
	checkUnicast(t, "read after a cancelled read", ucRead(t, n.b), ucAddrA, ucAddrB, n.lb.Index, stop)

	go func() { _, err := n.b.Read(context.Background()); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	n.b.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("close did not end the read")
	}
}

// frameTap records the Ethernet frames a link receives (not those it
// sends), from an AF_PACKET socket opened in ns; unlike startCapture it
// keeps every IPv6 frame (fragments, UDP, ICMPv6).
type frameTap struct {
	mu  sync.Mutex
	got [][]byte
}

func (ft *frameTap) frames() [][]byte {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return slices.Clone(ft.got)
}

func startFrameTap(t *testing.T, ns *netnstest.NS, ifindex int) *frameTap {
	t.Helper()
	var fd int
	ns.Do(t, func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50000}); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	})
	ft := &frameTap{}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 0x10000)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue // timeout
			}
			ll, ok := from.(*unix.SockaddrLinklayer)
			if !ok || ll.Pkttype == unix.PACKET_OUTGOING || n < 14 || binary.BigEndian.Uint16(buf[12:14]) != unix.ETH_P_IPV6 {
				continue
			}
			ft.mu.Lock()
			ft.got = append(ft.got, append([]byte(nil), buf[:n]...))
			ft.mu.Unlock()
		}
	}()
	t.Cleanup(func() { close(stop); <-done; unix.Close(fd) })
	return ft
}

var _ UnicastSender = (*UnicastConn)(nil)
