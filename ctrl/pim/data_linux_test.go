//go:build linux

package pim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/hotcast/hotcast/internal/inet"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// The data test network: A (the peer: sources, hosts, MLD, PIM) and B
// (the router with the DataConn) on one veth pair.
var (
	dcAddrA   = netip.MustParseAddr("2001:db8:8::1")
	dcAddrB   = netip.MustParseAddr("2001:db8:8::2")
	dcRemote  = netip.MustParseAddr("2001:db8:99::100") // a source beyond the RP
	dcGroup   = netip.MustParseAddr("ff0e::1:1")
	dcGroup2  = netip.MustParseAddr("ff0e::1:2")
	dcSite    = netip.MustParseAddr("ff05::2")
	dcAllNode = netip.MustParseAddr("ff02::1")
	dcMLDv2   = netip.MustParseAddr("ff02::16")
	dcMLDv1G  = netip.MustParseAddr("ff0e::5:6") // reported with MLDv1: to the group itself
	dcMLDv2G  = netip.MustParseAddr("ff0e::5:5")
)

type dcNet struct {
	nsA, nsB *netnstest.NS
	la, lb   *netnstest.Link
}

func newDCNet(t *testing.T) *dcNet {
	t.Helper()
	netnstest.RequireRoot(t)
	n := &dcNet{nsA: netnstest.New(t, "dca"), nsB: netnstest.New(t, "dcb")}
	n.la, n.lb = netnstest.Veth(t, n.nsA, "da0", n.nsB, "db0")
	n.la.AddAddr(t, "2001:db8:8::1/64")
	n.lb.AddAddr(t, "2001:db8:8::2/64")
	return n
}

func listenDataIn(t *testing.T, ns *netnstest.NS, ifname string) *DataConn {
	t.Helper()
	var c *DataConn
	ns.Do(t, func() (err error) { c, err = ListenData(ifname); return err })
	t.Cleanup(func() { c.Close() })
	return c
}

// dcReader collects what a DataConn reads until the test ends.
type dcReader struct {
	mu  sync.Mutex
	got []DataPacket
}

func (r *dcReader) packets() []DataPacket {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func startDCReader(t *testing.T, c *DataConn) *dcReader {
	t.Helper()
	r := &dcReader{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			p, err := c.Read(ctx)
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("data read: %v", err)
				}
				return
			}
			r.mu.Lock()
			r.got = append(r.got, p)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// dcUDP is a UDP socket in a namespace sending multicast out of one
// interface.
type dcUDP struct{ fd int }

func newDCUDP(t *testing.T, ns *netnstest.NS, ifindex int, src netip.Addr, hops int) *dcUDP {
	t.Helper()
	u := &dcUDP{}
	ns.Do(t, func() (err error) {
		u.fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		for _, s := range []struct {
			name string
			f    func() error
		}{
			{"multicast if", func() error { return unix.SetsockoptInt(u.fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifindex) }},
			{"multicast hops", func() error { return unix.SetsockoptInt(u.fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, hops) }},
			{"bind", func() error { return unix.Bind(u.fd, &unix.SockaddrInet6{Addr: src.As16(), Port: 4000}) }},
		} {
			if err := s.f(); err != nil {
				return fmt.Errorf("udp %s: %w", s.name, err)
			}
		}
		return nil
	})
	t.Cleanup(func() { unix.Close(u.fd) })
	return u
}

func (u *dcUDP) send(t *testing.T, g netip.Addr, payload string) {
	t.Helper()
	if err := unix.Sendto(u.fd, []byte(payload), 0, &unix.SockaddrInet6{Addr: g.As16(), Port: 5000}); err != nil {
		t.Fatalf("udp to %v: %v", g, err)
	}
}

func (u *dcUDP) join(t *testing.T, g netip.Addr, ifindex int) {
	t.Helper()
	mreq := unix.IPv6Mreq{Multiaddr: g.As16(), Interface: uint32(ifindex)}
	if err := unix.SetsockoptIPv6Mreq(u.fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, &mreq); err != nil {
		t.Fatalf("join %v: %v", g, err)
	}
}

// dcInjector sends hand-made Ethernet frames out of a link.
type dcInjector struct {
	fd      int
	ifindex int
}

func newDCInjector(t *testing.T, ns *netnstest.NS, ifindex int) *dcInjector {
	t.Helper()
	in := &dcInjector{ifindex: ifindex}
	ns.Do(t, func() (err error) {
		in.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0) // protocol 0: receives nothing
		return err
	})
	t.Cleanup(func() { unix.Close(in.fd) })
	return in
}

func (in *dcInjector) send(t *testing.T, frame []byte) {
	t.Helper()
	if err := unix.Sendto(in.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: in.ifindex, Protocol: htons(unix.ETH_P_IPV6)}); err != nil {
		t.Fatalf("inject: %v", err)
	}
}

// dcFrame is an Ethernet frame from srcMAC carrying ip, to the 33:33 MAC
// of its destination or, when given, to dstMAC.
func dcFrame(srcMAC, dstMAC net.HardwareAddr, ip []byte) []byte {
	f := make([]byte, 14, 14+len(ip))
	if dstMAC == nil && len(ip) >= 40 {
		dstMAC = net.HardwareAddr{0x33, 0x33, ip[36], ip[37], ip[38], ip[39]}
	} else if dstMAC == nil {
		dstMAC = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	}
	copy(f[0:6], dstMAC)
	copy(f[6:12], srcMAC)
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IPV6)
	return append(f, ip...)
}

// dcVLANFrame is dcFrame with an 802.1Q tag of VLAN vid.
func dcVLANFrame(srcMAC net.HardwareAddr, vid uint16, ip []byte) []byte {
	f := dcFrame(srcMAC, nil, ip)
	tag := []byte{0x81, 0x00, byte(vid >> 8), byte(vid)}
	return slices.Concat(f[:12], tag, f[12:])
}

// dcPacket is an IPv6 packet from src to dst of next header next with a
// payload of n octets (a valid UDP datagram when next is UDP).
func dcPacket(src, dst netip.Addr, next byte, hops byte, n int) []byte {
	pl := make([]byte, n)
	for i := range pl {
		pl[i] = byte(i * 7)
	}
	if next == inet.ProtoUDP && n >= 8 {
		binary.BigEndian.PutUint16(pl[0:], 4000)
		binary.BigEndian.PutUint16(pl[2:], 5000)
		binary.BigEndian.PutUint16(pl[4:], uint16(n))
		binary.BigEndian.PutUint16(pl[6:], 0)
		binary.BigEndian.PutUint16(pl[6:], inet.UDPChecksum(src, dst, pl))
	}
	return append(ipv6Header(src, dst, next, hops, n), pl...)
}

func udpPayload(p DataPacket) string {
	if len(p.Packet) < 48 || p.Packet[6] != inet.ProtoUDP {
		return ""
	}
	return string(p.Packet[48:])
}

// tapSaw reports whether the tap has a frame to dst of next header next
// (and, when payload is not empty, a UDP payload ending so).
func tapSaw(ft *frameTap, dst netip.Addr, next byte, payload string) bool {
	for _, f := range ft.frames() {
		if len(f) < 14+40 || netip.AddrFrom16([16]byte(f[14+24:14+40])) != dst || f[14+6] != next {
			continue
		}
		if payload == "" || bytes.HasSuffix(f, []byte(payload)) {
			return true
		}
	}
	return false
}

// TestDataConnRead: B's DataConn returns the routable multicast data A
// sends (UDP to ff0e::1:1 and ff05::2, with their source, group, hop
// limit, interface and bytes) and nothing else of what crosses the link:
// link-scope UDP, MLDv2 and MLDv1 reports (the latter to a global group),
// a PIM Hello, ICMPv6, PIM and VRRP to a global group, Hop-by-Hop, scopes
// 0, 1 and 2 (with flags), unicast, frames for another MAC, a bogus
// version, VLAN 5; malformed frames are counted, never returned. A's own
// DataConn sees neither what A sends nor the looped-back copy of its own
// multicast, and an unfiltered socket bound like it gets neither.
func TestDataConnRead(t *testing.T) {
	n := newDCNet(t)
	tapB := startFrameTap(t, n.nsB, n.lb.Index)
	dcB := listenDataIn(t, n.nsB, "db0")
	dcA := listenDataIn(t, n.nsA, "da0")
	readB, readA := startDCReader(t, dcB), startDCReader(t, dcA)
	if dcB.Ifindex() != n.lb.Index {
		t.Fatalf("ifindex %d, want %d", dcB.Ifindex(), n.lb.Index)
	}

	// A plain ETH_P_IPV6 packet socket in A, no filter: what does the
	// kernel give such a socket of A's own traffic?
	probe := startPktTypeProbe(t, n.nsA, n.la.Index)
	probeB := startPktTypeProbe(t, n.nsB, n.lb.Index)

	udp := newDCUDP(t, n.nsA, n.la.Index, dcAddrA, 7)
	udp.send(t, dcGroup, "data one")
	udp.send(t, dcSite, "data two")
	udp.send(t, dcAllNode, "link scope")

	// MLD from A's kernel: an MLDv2 report to ff02::16, then with
	// MLDv1 forced a report sent to the (global) group itself. A's
	// membership also makes the kernel loop A's own multicast back.
	udp.join(t, dcMLDv2G, n.la.Index)
	waitFor(t, "an MLDv2 report", func() bool { return tapSaw(tapB, dcMLDv2, 0, "") })
	n.nsA.Sysctl(t, "net/ipv6/conf/da0/force_mld_version", "1")
	udp.join(t, dcMLDv1G, n.la.Index)
	waitFor(t, "an MLDv1 report", func() bool { return tapSaw(tapB, dcMLDv1G, 0, "") })
	udp.send(t, dcMLDv2G, "looped back")

	// A PIM Hello from A's interface socket.
	llA := n.la.WaitLinkLocal(t)
	var ca *Conn
	n.nsA.Do(t, func() (err error) { ca, err = Listen("da0", llA); return err })
	t.Cleanup(func() { ca.Close() })
	hold := uint16(105)
	if err := ca.SendPIM(AllPIMRouters, ucMarshal(t, &Hello{Holdtime: &hold}, llA, AllPIMRouters)); err != nil {
		t.Fatal(err)
	}

	// Hand-made frames.
	inj := newDCInjector(t, n.nsA, n.la.Index)
	bogusV4 := dcPacket(dcAddrA, dcGroup, inet.ProtoUDP, 9, 16)
	bogusV4[0] = 0x45
	longPL := dcPacket(dcAddrA, dcGroup, inet.ProtoUDP, 9, 16)
	binary.BigEndian.PutUint16(longPL[4:], 1000)
	rejected := []struct {
		name string
		mac  net.HardwareAddr
		ip   []byte
	}{
		{"icmpv6 to a global group", nil, dcPacket(dcAddrA, dcGroup, inet.ProtoICMPv6, 9, 16)},
		{"pim to a global group", nil, dcPacket(dcAddrA, dcGroup, IPProtocol, 9, 16)},
		{"vrrp to a global group", nil, dcPacket(dcAddrA, dcGroup, inet.ProtoVRRP, 9, 16)},
		{"hop-by-hop to a global group", nil, dcPacket(dcAddrA, dcGroup, 0, 9, 16)},
		{"scope 0", nil, dcPacket(dcAddrA, netip.MustParseAddr("ff00::1:1"), inet.ProtoUDP, 9, 16)},
		{"scope 1", nil, dcPacket(dcAddrA, netip.MustParseAddr("ff01::1:1"), inet.ProtoUDP, 9, 16)},
		{"scope 2 with flags", nil, dcPacket(dcAddrA, netip.MustParseAddr("ff32::1:1"), inet.ProtoUDP, 9, 16)},
		{"unicast", n.lb.MAC, dcPacket(dcAddrA, dcAddrB, inet.ProtoUDP, 9, 16)},
		{"another station's MAC", net.HardwareAddr{0x02, 0, 0, 0, 0x99, 0x99}, dcPacket(dcAddrA, dcGroup, inet.ProtoUDP, 9, 16)},
		{"version 4", nil, bogusV4},
		{"too short for the filter's loads", nil, dcPacket(dcAddrA, dcGroup, inet.ProtoUDP, 9, 0)[:20]},
	}
	for _, r := range rejected {
		inj.send(t, dcFrame(n.la.MAC, r.mac, r.ip))
	}
	// VLAN 5 (no VLAN device on B: the kernel strips the tag and marks
	// the frame PACKET_OTHERHOST), and a priority tag (VLAN 0), which
	// reads as untagged.
	inj.send(t, dcVLANFrame(n.la.MAC, 5, dcPacket(dcAddrA, dcGroup, inet.ProtoUDP, 9, 8+5)))
	inj.send(t, dcVLANFrame(n.la.MAC, 0, dcPacket(dcAddrA, dcGroup, inet.ProtoUDP, 2, 8+6)))
	malformed := [][]byte{
		longPL, // payload length past the frame
		dcPacket(dcAddrA, dcGroup, inet.ProtoUDP, 9, 0)[:30], // the filter's loads fit; not a whole header
	}
	for _, m := range malformed {
		inj.send(t, dcFrame(n.la.MAC, nil, m))
	}
	// Accepted, though hand-made: padding after the payload, scope 15
	// with flags.
	padded := append(dcPacket(dcAddrA, dcGroup, inet.ProtoUDP, 3, 8), 0, 0, 0, 0)
	inj.send(t, dcFrame(n.la.MAC, nil, padded))
	flagged := dcPacket(dcAddrA, netip.MustParseAddr("ff3f::1:3"), inet.ProtoUDP, 3, 12)
	inj.send(t, dcFrame(n.la.MAC, nil, flagged))
	udp.send(t, dcGroup, "last")

	waitFor(t, "everything at B", func() bool {
		return tapSaw(tapB, AllPIMRouters, IPProtocol, "") && tapSaw(tapB, dcGroup, inet.ProtoUDP, "last") &&
			tapSaw(tapB, dcMLDv2G, inet.ProtoUDP, "looped back") && len(readB.packets()) >= 5
	})
	time.Sleep(200 * time.Millisecond) // anything else queued has been read by now

	got := readB.packets()
	type key struct {
		src, group netip.Addr
		hops       int
		payload    string
		size       int
	}
	var keys []key
	for _, p := range got {
		if p.Ifindex != n.lb.Index {
			t.Errorf("read %v -> %v on ifindex %d, want %d", p.Src, p.Group, p.Ifindex, n.lb.Index)
		}
		if netip.AddrFrom16([16]byte(p.Packet[8:24])) != p.Src || netip.AddrFrom16([16]byte(p.Packet[24:40])) != p.Group ||
			int(p.Packet[7]) != p.HopLimit || int(binary.BigEndian.Uint16(p.Packet[4:6]))+40 != len(p.Packet) {
			t.Errorf("packet's header does not match %+v", p)
		}
		keys = append(keys, key{p.Src, p.Group, p.HopLimit, udpPayload(p), len(p.Packet)})
	}
	want := []key{
		{dcAddrA, dcGroup, 7, "data one", 48 + 8},
		{dcAddrA, dcSite, 7, "data two", 48 + 8},
		{dcAddrA, dcMLDv2G, 7, "looped back", 48 + 11},
		{dcAddrA, dcGroup, 3, "", 48},
		{dcAddrA, dcGroup, 2, string(dcPacket(dcAddrA, dcGroup, inet.ProtoUDP, 2, 8+6)[48:]), 48 + 6},
		{dcAddrA, netip.MustParseAddr("ff3f::1:3"), 3, string(flagged[48:]), 52},
		{dcAddrA, dcGroup, 7, "last", 48 + 4},
	}
	sortKeys := func(ks []key) {
		slices.SortFunc(ks, func(a, b key) int {
			return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
		})
	}
	sortKeys(keys)
	sortKeys(want)
	if !slices.Equal(keys, want) {
		t.Errorf("B read\n%v\nwant\n%v", keys, want)
	}
	for _, p := range got {
		if p.Group == dcGroup && udpPayload(p) == "data one" {
			if !tapSaw(tapB, dcGroup, inet.ProtoUDP, "data one") {
				t.Error("the tap did not see data one")
			}
			for _, f := range tapB.frames() {
				if bytes.HasSuffix(f, []byte("data one")) && !bytes.Equal(f[14:], p.Packet) {
					t.Errorf("read %x, on the wire %x", p.Packet, f[14:])
				}
			}
		}
	}
	if m := dcB.Malformed(); m != uint64(len(malformed)) {
		t.Errorf("malformed %d, want %d", m, len(malformed))
	}
	if f := dcB.Filtered(); f != 0 {
		t.Errorf("filtered %d: the kernel filter and Read's checks disagree", f)
	}
	if d, err := dcB.Drops(); err != nil || d != 0 {
		t.Errorf("drops %d, %v", d, err)
	}

	// A's DataConn: nothing A sent itself (outgoing or looped back).
	for _, p := range readA.packets() {
		t.Errorf("A read its own %v -> %v %q", p.Src, p.Group, udpPayload(p))
	}
	// B: the frame for another MAC and the VLAN 5 one come as
	// PACKET_OTHERHOST, which the filter drops.
	if typesB := probeB.stop(); typesB[unix.PACKET_OTHERHOST] != 2 {
		t.Errorf("an unfiltered packet socket on B saw packet types %v, want 2 of type 3 (other host)", typesB)
	}
	types := probe.stop()
	t.Logf("an unfiltered ETH_P_IPV6 packet socket on A saw packet types %v (0 host, 2 multicast, 4 outgoing, 5 loopback)", types)
	if types[unix.PACKET_OUTGOING] != 0 || types[unix.PACKET_LOOPBACK] != 0 {
		t.Errorf("a protocol-bound packet socket saw %d outgoing and %d looped-back frames",
			types[unix.PACKET_OUTGOING], types[unix.PACKET_LOOPBACK])
	}
}

// pktTypeProbe counts, by sll_pkttype, the frames an unfiltered
// SOCK_DGRAM ETH_P_IPV6 packet socket reads (the DataConn's binding
// without its filter).
type pktTypeProbe struct {
	fd    int
	types map[uint8]int
	done  chan struct{}
	quit  chan struct{}
}

func startPktTypeProbe(t *testing.T, ns *netnstest.NS, ifindex int) *pktTypeProbe {
	t.Helper()
	p := &pktTypeProbe{types: map[uint8]int{}, done: make(chan struct{}), quit: make(chan struct{})}
	ns.Do(t, func() (err error) {
		p.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.SetsockoptTimeval(p.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50000}); err != nil {
			return err
		}
		return unix.Bind(p.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IPV6), Ifindex: ifindex})
	})
	go func() {
		defer close(p.done)
		buf := make([]byte, 0x10000)
		for {
			select {
			case <-p.quit:
				return
			default:
			}
			_, from, err := unix.Recvfrom(p.fd, buf, 0)
			if ll, ok := from.(*unix.SockaddrLinklayer); err == nil && ok {
				p.types[ll.Pkttype]++
			}
		}
	}()
	t.Cleanup(func() { p.stop(); unix.Close(p.fd) })
	return p
}

// stop ends the probe (idempotent) and returns its counts.
func (p *pktTypeProbe) stop() map[uint8]int {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	<-p.done
	return p.types
}

// TestDataConnWriteIPv6: a packet B's DataConn writes (an RP sending
// decapsulated Register data) leaves in a frame from B's MAC to
// 33:33:00:01:00:02 with its bytes unchanged; A's DataConn reads it and a
// UDP socket on A joined to the group receives it; B's DataConn does not
// read its own transmission. Bad packets are refused.
func TestDataConnWriteIPv6(t *testing.T) {
	n := newDCNet(t)
	tapA := startFrameTap(t, n.nsA, n.la.Index)
	dcB := listenDataIn(t, n.nsB, "db0")
	dcA := listenDataIn(t, n.nsA, "da0")
	readA, readB := startDCReader(t, dcA), startDCReader(t, dcB)

	var rx int
	n.nsA.Do(t, func() (err error) {
		rx, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(rx, &unix.SockaddrInet6{Port: 5000}); err != nil {
			return err
		}
		mreq := unix.IPv6Mreq{Multiaddr: dcGroup2.As16(), Interface: uint32(n.la.Index)}
		if err := unix.SetsockoptIPv6Mreq(rx, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, &mreq); err != nil {
			return err
		}
		return unix.SetsockoptTimeval(rx, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
	})
	t.Cleanup(func() { unix.Close(rx) })

	pkt := dcPacket(dcRemote, dcGroup2, inet.ProtoUDP, 9, 8+100)
	if err := dcB.WriteIPv6(pkt); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2000)
	nr, from, err := unix.Recvfrom(rx, buf, 0)
	if err != nil {
		t.Fatalf("udp receiver on A: %v", err)
	}
	if sa, ok := from.(*unix.SockaddrInet6); !ok || netip.AddrFrom16(sa.Addr) != dcRemote || !bytes.Equal(buf[:nr], pkt[48:]) {
		t.Errorf("udp receiver got %d octets from %v", nr, from)
	}
	waitFor(t, "the frame at A", func() bool { return tapSaw(tapA, dcGroup2, inet.ProtoUDP, "") })
	for _, f := range tapA.frames() {
		if !bytes.Equal(f[14:], pkt) {
			continue
		}
		if want := (net.HardwareAddr{0x33, 0x33, 0, 1, 0, 2}); !bytes.Equal(f[0:6], want) {
			t.Errorf("ethernet destination %v, want %v", net.HardwareAddr(f[0:6]), want)
		}
		if !bytes.Equal(f[6:12], n.lb.MAC) {
			t.Errorf("ethernet source %v, want B's %v", net.HardwareAddr(f[6:12]), n.lb.MAC)
		}
	}
	waitFor(t, "A's DataConn", func() bool { return len(readA.packets()) == 1 })
	p := readA.packets()[0]
	if p.Src != dcRemote || p.Group != dcGroup2 || p.HopLimit != 9 || p.Ifindex != n.la.Index || !bytes.Equal(p.Packet, pkt) {
		t.Errorf("A read %+v", p)
	}
	time.Sleep(100 * time.Millisecond)
	for _, p := range readB.packets() {
		t.Errorf("B read its own %v -> %v", p.Src, p.Group)
	}

	short := pkt[:39]
	unicast := dcPacket(dcRemote, dcAddrA, inet.ProtoUDP, 9, 8)
	v4 := slices.Clone(pkt)
	v4[0] = 0x45
	trailing := append(slices.Clone(pkt), 0)
	big := dcPacket(dcRemote, dcGroup2, inet.ProtoUDP, 9, 1600)
	for name, b := range map[string][]byte{"short": short, "unicast": unicast, "version 4": v4, "trailing octet": trailing, "over the mtu": big} {
		if err := dcB.WriteIPv6(b); err == nil {
			t.Errorf("%s: written", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if err := dcB.WriteIPv6(big); !errors.Is(err, unix.EMSGSIZE) {
		t.Errorf("over the mtu: %v, want EMSGSIZE", err)
	}
}

// TestDataConnBufferAndDrops: the receive buffer is the 4 MiB asked for
// (SO_RCVBUFFORCE: the kernel doubles it); squeezed to the minimum, a
// burst nobody reads is dropped and Drops counts it, cumulatively,
// although each PACKET_STATISTICS read resets the kernel's count.
func TestDataConnBufferAndDrops(t *testing.T) {
	n := newDCNet(t)
	dcB := listenDataIn(t, n.nsB, "db0")
	rc, err := dcB.c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var serr error
	if err := rc.Control(func(fd uintptr) { size, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if size < dataRecvBuf {
		t.Errorf("receive buffer %d, want at least %d", size, dataRecvBuf)
	}
	t.Logf("receive buffer %d", size)
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}

	udp := newDCUDP(t, n.nsA, n.la.Index, dcAddrA, 4)
	payload := string(make([]byte, 1000))
	for range 200 {
		udp.send(t, dcGroup, payload)
	}
	var total uint64
	waitFor(t, "drops", func() bool {
		d, err := dcB.Drops()
		if err != nil {
			t.Fatal(err)
		}
		total = d
		return d > 0
	})
	again, err := dcB.Drops()
	if err != nil || again < total {
		t.Errorf("drops went from %d to %d (%v)", total, again, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if p, err := dcB.Read(ctx); err != nil || p.Group != dcGroup {
		t.Errorf("read after drops: %+v, %v", p, err)
	}
	t.Logf("200 packets into a minimal buffer: %d dropped", again)
}

// TestDataConnReadEnds: cancelling the context ends a Read and the next
// one works; Close ends a blocked Read with net.ErrClosed.
func TestDataConnReadEnds(t *testing.T) {
	n := newDCNet(t)
	dcB := listenDataIn(t, n.nsB, "db0")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := dcB.Read(ctx); errc <- err }()
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
	newDCUDP(t, n.nsA, n.la.Index, dcAddrA, 4).send(t, dcGroup, "after cancel")
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	if p, err := dcB.Read(rctx); err != nil || udpPayload(p) != "after cancel" {
		t.Fatalf("read after a cancelled read: %+v, %v", p, err)
	}

	go func() { _, err := dcB.Read(context.Background()); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	dcB.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("close did not end the read")
	}
	if _, err := dcB.Read(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed conn: %v", err)
	}
}

// TestListenDataNoInterface: an unknown interface is an error naming it.
func TestListenDataNoInterface(t *testing.T) {
	netnstest.RequireRoot(t)
	if _, err := ListenData("hc-nonexistent0"); err == nil {
		t.Fatal("listened on a missing interface")
	}
}

// dataFilterVM is the socket filter on the x/net/bpf VM, with the
// packet type and EtherType (ancillary loads the VM lacks) constants.
func dataFilterVM(t testing.TB, pktType uint32) *bpf.VM {
	t.Helper()
	prog := dataFilter()
	for i, ins := range prog {
		if ext, ok := ins.(bpf.LoadExtension); ok {
			switch ext.Num {
			case bpf.ExtType:
				prog[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: pktType}
			case bpf.ExtProto: // the frames under test are IPv6
				prog[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: unix.ETH_P_IPV6}
			case bpf.ExtVLANTag: // and untagged
				prog[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: 0}
			default:
				t.Fatalf("instruction %d: extension %v", i, ext.Num)
			}
		}
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// checkFilterAgrees fails when the filter and parseDataFrame disagree
// on b: what the parser keeps the filter passes, what the parser calls
// unwanted the filter drops (malformed frames may pass the filter: Read
// counts them).
func checkFilterAgrees(t testing.TB, vm *bpf.VM, b []byte) {
	t.Helper()
	verdict, err := vm.Run(b)
	if err != nil {
		t.Fatalf("vm: %v", err)
	}
	_, perr := parseDataFrame(b)
	switch {
	case perr == nil && verdict < len(b): // the verdict is a snap length
		t.Errorf("parser keeps % .64x, filter keeps %d of %d octets", b, verdict, len(b))
	case (errors.Is(perr, errDataNotWanted) || errors.Is(perr, errDataNotIPv6)) && verdict != 0:
		t.Errorf("parser rejects % .64x (%v), filter passes it", b, perr)
	}
}

// TestParseDataFrame runs the parser on good and malformed packets.
func TestParseDataFrame(t *testing.T) {
	good := dcPacket(dcAddrA, dcGroup, inet.ProtoUDP, 5, 20)
	withNext := func(next byte) []byte { b := slices.Clone(good); b[6] = next; return b }
	withDst := func(d string) []byte {
		b := slices.Clone(good)
		a := netip.MustParseAddr(d).As16()
		copy(b[24:40], a[:])
		return b
	}
	withPL := func(pl uint16) []byte { b := slices.Clone(good); binary.BigEndian.PutUint16(b[4:], pl); return b }
	cases := []struct {
		name string
		b    []byte
		err  error
		size int // of Packet when kept
	}{
		{"good", good, nil, len(good)},
		{"padded", append(slices.Clone(good), 0, 0, 0), nil, len(good)},
		{"shorter payload length", withPL(8), nil, 48},
		{"empty payload", withPL(0), nil, 40},
		{"fragment", withNext(44), nil, len(good)},
		{"destination options", withNext(60), nil, len(good)},
		{"no next header", withNext(59), nil, len(good)},
		{"scope 3", withDst("ff03::1"), nil, len(good)},
		{"scope 15 with flags", withDst("ff7f::1"), nil, len(good)},
		{"nil", nil, errDataShort, 0},
		{"one octet", []byte{0x60}, errDataShort, 0},
		{"39 octets", good[:39], errDataShort, 0},
		{"payload length past the end", withPL(21), errDataPayloadLen, 0},
		{"payload length 65535", withPL(0xffff), errDataPayloadLen, 0},
		{"version 4", append([]byte{0x45}, good[1:]...), errDataNotIPv6, 0},
		{"version 0", append([]byte{0x00}, good[1:]...), errDataNotIPv6, 0},
		{"unicast", withDst("2001:db8::1"), errDataNotWanted, 0},
		{"unspecified", withDst("::"), errDataNotWanted, 0},
		{"scope 0", withDst("ff00::1"), errDataNotWanted, 0},
		{"scope 1", withDst("ff11::1"), errDataNotWanted, 0},
		{"scope 2", withDst("ff02::1:2"), errDataNotWanted, 0},
		{"scope 2 with flags", withDst("ff72::1"), errDataNotWanted, 0},
		{"hop-by-hop", withNext(0), errDataNotWanted, 0},
		{"icmpv6", withNext(58), errDataNotWanted, 0},
		{"pim", withNext(103), errDataNotWanted, 0},
		{"vrrp", withNext(112), errDataNotWanted, 0},
	}
	accept := dataFilterVM(t, unix.PACKET_MULTICAST)
	for _, c := range cases {
		p, err := parseDataFrame(c.b)
		if !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
			continue
		}
		checkFilterAgrees(t, accept, c.b)
		if err != nil {
			continue
		}
		if len(p.Packet) != c.size || p.Src != dcAddrA || p.HopLimit != 5 || !bytes.Equal(p.Packet, c.b[:c.size]) {
			t.Errorf("%s: parsed %+v", c.name, p)
		}
	}
	for _, pt := range []uint32{unix.PACKET_HOST, unix.PACKET_BROADCAST, unix.PACKET_MULTICAST} {
		if v, _ := dataFilterVM(t, pt).Run(good); v < len(good) {
			t.Errorf("packet type %d: filter returns %d", pt, v)
		}
	}
	for _, pt := range []uint32{unix.PACKET_OTHERHOST, unix.PACKET_OUTGOING, unix.PACKET_LOOPBACK, unix.PACKET_USER, unix.PACKET_KERNEL} {
		if v, _ := dataFilterVM(t, pt).Run(good); v != 0 {
			t.Errorf("packet type %d: filter returns %d", pt, v)
		}
	}
}

// FuzzParseDataFrame: the parser never panics, what it keeps is a whole
// IPv6 packet of routable multicast within the input, and the kernel
// filter (on the VM) agrees with it.
func FuzzParseDataFrame(f *testing.F) {
	good := dcPacket(dcAddrA, dcGroup, inet.ProtoUDP, 5, 20)
	f.Add(good)
	f.Add(append(slices.Clone(good), 0, 0))
	f.Add(good[:40])
	f.Add(good[:39])
	f.Add(good[:26])
	f.Add([]byte{})
	f.Add(dcPacket(dcAddrA, dcAllNode, inet.ProtoUDP, 1, 8))
	f.Add(dcPacket(dcAddrA, dcGroup, 0, 1, 8))
	f.Add(dcPacket(dcAddrA, dcGroup, IPProtocol, 1, 8))
	f.Add(dcPacket(dcAddrA, dcAddrB, inet.ProtoUDP, 1, 8))
	f.Add(ucInner(1500))
	f.Fuzz(func(t *testing.T, b []byte) {
		vm := dataFilterVM(t, unix.PACKET_MULTICAST)
		in := slices.Clone(b)
		p, err := parseDataFrame(b)
		if !bytes.Equal(in, b) {
			t.Fatal("parser changed its input")
		}
		checkFilterAgrees(t, vm, b)
		if err != nil {
			return
		}
		if len(p.Packet) < 40 || len(p.Packet) > len(b) || int(binary.BigEndian.Uint16(p.Packet[4:6]))+40 != len(p.Packet) ||
			!p.Group.IsMulticast() || inet.LinkScope(p.Group) || !bytes.Equal(p.Packet, b[:len(p.Packet)]) {
			t.Fatalf("kept %+v from % x", p, b)
		}
	})
}
