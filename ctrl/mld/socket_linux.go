//go:build linux

package mld

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// How hotcast receives and sends MLD on Linux.
//
// Receiving: an AF_PACKET socket (SOCK_DGRAM, ETH_P_IPV6) bound to the
// interface, with a classic BPF filter that accepts only IPv6 packets
// the interface received (not PACKET_OUTGOING) that carry an ICMPv6 MLD
// message (130, 131, 132, 143) right after the fixed header or after a
// Hop-by-Hop header (where the Router Alert is). The same socket holds a
// PACKET_MR_ALLMULTI membership so the NIC passes frames for groups
// nobody joined. We parse the IPv6 and Hop-by-Hop headers ourselves (hop
// limit, Router Alert, destination) and ctrl/mld verifies the checksum.
//
// Why not a raw ICMPv6 socket: the kernel delivers multicast to the stack
// only for groups the host joined. MLDv2 reports (ff02::16) and MLDv1
// Dones (ff02::2) can be had by joining those, but MLDv1 *reports* go to
// the reported group itself, and the exception in ip6_mc_input() for
// Router Alert MLD with mc_forwarding on sits inside
// #ifdef CONFIG_IPV6_MROUTE: it needs MRT6_INIT, which kernels built
// without multicast routing refuse (ENOPROTOOPT) and which only one
// process per namespace may hold (EADDRINUSE when pim6d or smcroute has
// it). IPV6_ROUTER_ALERT does not help (it diverts forwarded packets only).
// Joining every reported group would make the host side of the kernel
// report them itself. AF_PACKET sees every MLD message on every kernel,
// needs no group joins, and leaves multicast routing to whoever owns it;
// it is the one receive route, so it is the one that is tested.
//
// Sending: a raw ICMPv6 socket (the kernel fills the checksum) with an
// ICMPv6 filter that blocks everything (it only sends); hop limit 1 via
// IPV6_MULTICAST_HOPS, the Router Alert through the IPV6_HOPOPTS sticky
// option, the link-local source through IPV6_PKTINFO on each message.
const icmp6Filter = 1 // ICMPV6_FILTER, linux/icmpv6.h

// hopOptsRouterAlert is a Hop-by-Hop header with the MLD Router Alert
// option (RFC 2711, value 0) and a PadN; the kernel fills Next Header.
var hopOptsRouterAlert = [8]byte{0, 0, 5, 2, 0, 0, 1, 0}

// ReceiveRoute names how MLD reaches hotcast, for the start-up log.
const ReceiveRoute = "af_packet (ETH_P_IPV6, classic BPF for Hop-by-Hop + ICMPv6 130/131/132/143, allmulti); kernel multicast routing (MRT6_INIT) not used"

// Conn is the MLD socket pair of one interface: a raw ICMPv6 socket to
// send and an AF_PACKET socket to receive. It implements Sender.
type Conn struct {
	f       *os.File // raw ICMPv6, send only
	pkt     *os.File // AF_PACKET, receive
	ifindex int
	src     netip.Addr
	log     *slog.Logger

	rbuf      []byte        // Read's buffer (payloads are copied out of it)
	malformed atomic.Uint64 // frames the filter passed that do not parse
}

// Listen opens the MLD sockets of ifname, sending from linkLocal.
func Listen(ifname string, linkLocal netip.Addr, log *slog.Logger) (*Conn, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("mld socket %s: %w", ifname, err)
	}
	if !linkLocal.IsLinkLocalUnicast() {
		return nil, fmt.Errorf("mld socket %s: source %v is not link-local", ifname, linkLocal)
	}
	send, err := openSend(ifname, ifi.Index)
	if err != nil {
		return nil, fmt.Errorf("mld socket %s: %w", ifname, err)
	}
	recv, err := openRecv(ifi.Index)
	if err != nil {
		send.Close()
		return nil, fmt.Errorf("mld socket %s: %w", ifname, err)
	}
	return &Conn{
		f:       send,
		pkt:     recv,
		ifindex: ifi.Index,
		src:     linkLocal.WithZone(""),
		log:     log,
		rbuf:    make([]byte, 65536),
	}, nil
}

// openSend opens the raw ICMPv6 socket MLD is sent from.
func openSend(ifname string, ifindex int) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
	if err != nil {
		return nil, fmt.Errorf("icmpv6 socket: %w", err)
	}
	var filter unix.ICMPv6Filter
	for k := range filter.Data {
		filter.Data[k] = ^uint32(0) // block all: this socket only sends
	}
	steps := []struct {
		name string
		f    func() error
	}{
		{"bind to device", func() error { return unix.BindToDevice(fd, ifname) }},
		{"icmp6 filter", func() error { return unix.SetsockoptICMPv6Filter(fd, unix.SOL_ICMPV6, icmp6Filter, &filter) }},
		{"multicast hops", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 1) }},
		{"multicast loop", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0) }},
		{"multicast if", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifindex) }},
		{"router alert hopopts", func() error {
			return unix.SetsockoptString(fd, unix.IPPROTO_IPV6, unix.IPV6_HOPOPTS, string(hopOptsRouterAlert[:]))
		}},
	}
	for _, s := range steps {
		if err := s.f(); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return os.NewFile(uintptr(fd), "mld-send"), nil
}

// mldFilter is the classic BPF program of the receive socket. On a
// SOCK_DGRAM packet socket offsets count from the IPv6 header.
func mldFilter() ([]bpf.RawInstruction, error) {
	const (
		reject = 0
		accept = 0xffff
	)
	// Jumps land on 20 (reject) or 21 (accept).
	prog := []bpf.Instruction{
		// 0: not what the interface sent
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipTrue: 18},
		// 2: IPv6
		bpf.LoadAbsolute{Off: 0, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 6, SkipTrue: 15},
		// 5: ICMPv6 right away (X = 0: no Router Alert, ctrl/mld counts
		// that when require-router-alert is on), or Hop-by-Hop first
		bpf.LoadAbsolute{Off: 6, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_ICMPV6, SkipTrue: 8},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: 12},
		// 8: Hop-by-Hop's next header is ICMPv6
		bpf.LoadAbsolute{Off: 40, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_ICMPV6, SkipTrue: 10},
		// 10: X = Hop-by-Hop length in octets
		bpf.LoadAbsolute{Off: 41, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 3},
		bpf.TAX{},
		bpf.Jump{Skip: 1},
		// 15: no Hop-by-Hop
		bpf.LoadConstant{Dst: bpf.RegX, Val: 0},
		// 16: A = ICMPv6 type; 130..132 and 143 pass
		bpf.LoadIndirect{Off: 40, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpLessThan, Val: uint32(TypeQuery), SkipTrue: 2},
		bpf.JumpIf{Cond: bpf.JumpLessOrEqual, Val: uint32(TypeV1Done), SkipTrue: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(TypeV2Report), SkipTrue: 1},
		bpf.RetConstant{Val: reject}, // 20
		bpf.RetConstant{Val: accept}, // 21
	}
	return bpf.Assemble(prog)
}

// openRecv opens the AF_PACKET socket MLD is received on, bound to
// ifindex, filtered, with the interface set to all-multicast.
func openRecv(ifindex int) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	fail := func(step string, err error) (*os.File, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("packet socket: %s: %w", step, err)
	}
	raw, err := mldFilter()
	if err != nil {
		return fail("assemble filter", err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	// The filter goes on before the bind: nothing unfiltered is queued.
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}); err != nil {
		return fail("attach filter", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IPV6), Ifindex: ifindex}); err != nil {
		return fail("bind", err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_ALLMULTI}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fail("allmulti", err)
	}
	return os.NewFile(uintptr(fd), "mld-recv"), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Close closes the sockets.
func (c *Conn) Close() error {
	return errors.Join(c.f.Close(), c.pkt.Close())
}

// Malformed counts frames the receive filter passed whose IPv6 or
// Hop-by-Hop header does not parse (they never reach the state machine).
func (c *Conn) Malformed() uint64 { return c.malformed.Load() }

// SendMLD implements Sender.
func (c *Conn) SendMLD(dst netip.Addr, icmp []byte) error {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("send mld to %v: %w", dst, err)
	}
	sa := &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(c.ifindex)}
	pi := unix.Inet6Pktinfo{Addr: c.src.As16(), Ifindex: uint32(c.ifindex)}
	oob := unix.PktInfo6(&pi)
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), icmp, oob, sa, 0)
		return !errors.Is(serr, unix.EAGAIN)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("send mld to %v: %w", dst, err)
	}
	return nil
}

// Read returns the next MLD message received on the interface. Frames
// whose IPv6 framing does not parse are counted (Malformed) and skipped;
// what is inside the ICMPv6 message (type, length, checksum) is the state
// machine's to check and count. One goroutine reads (the buffer is the
// Conn's, not allocated per message).
func (c *Conn) Read(ctx context.Context) (Packet, error) {
	rc, err := c.pkt.SyscallConn()
	if err != nil {
		return Packet{}, fmt.Errorf("read mld: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.pkt.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		if stop() {
			return
		}
		c.pkt.SetReadDeadline(time.Time{}) // ctx fired: clear for the next Read
	}()
	buf := c.rbuf
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if ctx.Err() != nil {
				return Packet{}, ctx.Err()
			}
			return Packet{}, fmt.Errorf("read mld: %w", err)
		}
		p, err := parseFrame(buf[:n])
		if err != nil {
			c.malformed.Add(1)
			c.log.Debug("mld: malformed frame", slog.Any("error", err))
			continue
		}
		return p, nil
	}
}

// Errors of parseFrame.
var (
	errShortIPv6   = errors.New("shorter than an IPv6 header")
	errNotIPv6     = errors.New("not IPv6")
	errPayloadLen  = errors.New("payload length past the frame")
	errNotMLD      = errors.New("next header neither Hop-by-Hop nor ICMPv6")
	errHopByHopLen = errors.New("hop-by-hop header past the payload")
	errNotICMPv6   = errors.New("hop-by-hop not followed by ICMPv6")
)

// parseFrame takes an IPv6 packet as an AF_PACKET datagram socket reads it
// (RFC 8200 §3: fixed header, then a Hop-by-Hop header or none, then
// ICMPv6) and returns the MLD message with its source, destination, hop
// limit and Router Alert presence. The payload is copied out of b.
func parseFrame(b []byte) (Packet, error) {
	const fixed = 40
	if len(b) < fixed {
		return Packet{}, errShortIPv6
	}
	if b[0]>>4 != 6 {
		return Packet{}, errNotIPv6
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if fixed+plen > len(b) {
		return Packet{}, errPayloadLen
	}
	b = b[:fixed+plen] // link-layer padding is not ours
	p := Packet{
		Src:      netip.AddrFrom16([16]byte(b[8:24])),
		Dst:      netip.AddrFrom16([16]byte(b[24:40])),
		HopLimit: int(b[7]),
	}
	switch b[6] {
	case unix.IPPROTO_ICMPV6:
		p.Payload = append([]byte(nil), b[fixed:]...)
		return p, nil
	case 0: // Hop-by-Hop
	default:
		return Packet{}, errNotMLD
	}
	if len(b) < fixed+2 {
		return Packet{}, errHopByHopLen
	}
	hlen := (int(b[fixed+1]) + 1) * 8
	if fixed+hlen > len(b) {
		return Packet{}, errHopByHopLen
	}
	if b[fixed] != unix.IPPROTO_ICMPV6 {
		return Packet{}, errNotICMPv6
	}
	p.RouterAlert = hasRouterAlert(b[fixed : fixed+hlen])
	p.Payload = append([]byte(nil), b[fixed+hlen:]...)
	return p, nil
}

// hasRouterAlert walks a Hop-by-Hop Options header (RFC 8200 §4.3) for a
// Router Alert option (RFC 2711) with the MLD value 0.
func hasRouterAlert(h []byte) bool {
	if len(h) < 2 {
		return false
	}
	end := min(len(h), (int(h[1])+1)*8)
	for off := 2; off < end; {
		t := h[off]
		if t == 0 { // Pad1
			off++
			continue
		}
		if off+1 >= end {
			return false
		}
		l := int(h[off+1])
		if t == 5 && l == 2 && off+4 <= end {
			return h[off+2] == 0 && h[off+3] == 0
		}
		off += 2 + l
	}
	return false
}
