//go:build linux

package pim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// How hotcast's PIM sees the multicast data its XDP fast path does not
// forward. XDP passes to the kernel stack the packets it has no route for
// and those of the routes the control plane watches (handed to TC); the
// stack, without multicast routing, drops them, but an AF_PACKET socket
// bound to the interface (ETH_P_ALL: a tap, which sees each frame before
// TC ingress does) gets a copy first. The daemon uses
// them for RFC 7761's data arrival events (the DR of a directly connected
// source, the RP, a last-hop router switching to the SPT) and to
// encapsulate packets in Registers.
//
// The socket is SOCK_DGRAM (packet.Datagram): offsets count from the IPv6
// header on any link type, and the kernel writes the Ethernet header of
// what WriteIPv6 sends. A classic BPF filter, attached before the bind so
// nothing unfiltered is queued, keeps only
//
//   - frames the interface received: sll_pkttype (SKF_AD_PKTTYPE) HOST,
//     BROADCAST or MULTICAST, not OTHERHOST (a unicast frame for another
//     station, which the IPv6 stack drops too; also a VLAN-tagged frame
//     with no VLAN device for it, see below), not OUTGOING (a tap also
//     sees what the host sends: our own WriteIPv6, the host's own
//     multicast, TC's clones); packet_rcv discards PACKET_LOOPBACK ones
//     (the host's multicast looped back to it as a member of the group);
//   - EtherType IPv6 (SKF_AD_PROTOCOL);
//   - IPv6 (version 6) to a multicast destination of scope greater than
//     link-local (not ff00::/16, ff01::/16, ff02::/16 in any flags: the
//     scope is the low nibble of the second octet);
//   - a next header that is not Hop-by-Hop (0: MLD), ICMPv6 (58), PIM
//     (103) or VRRP (112), which have sockets of their own.
//
// Read checks the same rules again (Filtered counts what the kernel let
// through and Read did not keep; zero while the two agree) and the IPv6
// framing (Malformed). The socket holds a PACKET_MR_ALLMULTI membership
// for its lifetime, so a NIC passes the frames of groups nobody joined,
// and a 4 MiB receive buffer (SO_RCVBUFFORCE, SO_RCVBUF when not
// permitted) so a burst is queued rather than dropped; what the kernel
// drops all the same is in Drops (PACKET_STATISTICS).
//
// VLANs: hotcast's interfaces are untagged. A tagged frame arriving on
// the parent of a VLAN device belongs to that device (the socket is not
// bound to it); with no VLAN device the kernel marks a frame with a
// non-zero VLAN ID PACKET_OTHERHOST after stripping the tag, and the
// filter drops it. Priority-tagged frames (VLAN ID 0) read as untagged.
const (
	dataRecvBuf    = 4 << 20
	dataReadBufLen = ipv6HeaderLen + 0xffff // the largest non-jumbo packet
	dataAccept     = 1 << 18                // filter verdict: the whole packet
)

// dataFrameError is an error of parseDataFrame: a constant, so that the
// sentinels below are not package state.
type dataFrameError string

func (e dataFrameError) Error() string { return string(e) }

// Errors of parseDataFrame. The first three are malformed frames, the
// last a frame the filter should not have passed.
const (
	errDataShort      dataFrameError = "shorter than an ipv6 header"
	errDataNotIPv6    dataFrameError = "not ipv6"
	errDataPayloadLen dataFrameError = "payload length past the frame"
	errDataNotWanted  dataFrameError = "not routable multicast data"
)

// DataConn is the daemon's view of the multicast data of one interface
// that reaches the kernel stack (what XDP does not forward): Read returns
// it for data-arrival events and Register encapsulation, and WriteIPv6
// sends a packet out of the interface as it is (the RP's decapsulated
// Register data).
type DataConn struct {
	c       *packet.Conn
	tx      *packet.Conn // sends: bound to IPv6 (c's protocol, every one, would be the frames' EtherType); receives nothing
	ifindex int
	closed  atomic.Bool // Close was called: a failing Read says net.ErrClosed

	readMu sync.Mutex // one Read at a time: buf is shared
	buf    []byte

	malformed atomic.Uint64
	filtered  atomic.Uint64
	drops     atomic.Uint64 // sum of PACKET_STATISTICS reads (each resets the kernel's)
}

// DataPacket is one multicast data packet received on an interface.
type DataPacket struct {
	Ifindex  int
	Src      netip.Addr
	Group    netip.Addr // the IPv6 destination
	HopLimit int        // as received, before any forwarding decrement
	// Packet is the IPv6 packet, IPv6 header first, without link-layer
	// padding: the caller's to keep (Read copies it).
	Packet []byte
}

// ListenData opens the data socket of interface ifname. It needs
// CAP_NET_RAW (and CAP_NET_ADMIN for the forced receive buffer).
func ListenData(ifname string) (*DataConn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("pim data socket %s: %w", ifname, err)
	}
	filter, err := bpf.Assemble(dataFilter())
	if err != nil {
		return nil, fmt.Errorf("pim data socket %s: assemble filter: %w", ifname, err)
	}
	// ETH_P_ALL, not ETH_P_IPV6: a socket of every protocol is a tap
	// (ptype_all), served before TC ingress; one bound to IPv6 is served
	// after it, and TC consumes the frames of punt routes (it replicates
	// them and drops the original).
	pc, err := packet.Listen(ifi, packet.Datagram, unix.ETH_P_ALL, &packet.Config{Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("pim data socket %s: %w", ifname, err)
	}
	reject, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("pim data socket %s: assemble filter: %w", ifname, err)
	}
	tx, err := packet.Listen(ifi, packet.Datagram, unix.ETH_P_IPV6, &packet.Config{Filter: reject})
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("pim data socket %s: send socket: %w", ifname, err)
	}
	fail := func(step string, err error) (*DataConn, error) {
		pc.Close()
		tx.Close()
		return nil, fmt.Errorf("pim data socket %s: %s: %w", ifname, step, err)
	}
	rc, err := pc.SyscallConn()
	if err != nil {
		return fail("syscall conn", err)
	}
	var bufErr, mcErr error
	err = rc.Control(func(fd uintptr) {
		if bufErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, dataRecvBuf); bufErr != nil {
			bufErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, dataRecvBuf)
		}
		mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_ALLMULTI}
		mcErr = unix.SetsockoptPacketMreq(int(fd), unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq)
	})
	if err != nil {
		return fail("control", err)
	}
	if bufErr != nil {
		return fail("receive buffer", bufErr)
	}
	if mcErr != nil {
		return fail("allmulti", mcErr)
	}
	return &DataConn{c: pc, tx: tx, ifindex: ifi.Index, buf: make([]byte, dataReadBufLen)}, nil
}

// dataFilter is the socket's classic BPF program (see above); offsets
// count from the IPv6 header.
func dataFilter() []bpf.Instruction {
	const (
		hopByHop = 0
		icmpv6   = 58
		vrrp     = 112
	)
	// Jumps land on 21 (reject) or 20 (accept).
	return []bpf.Instruction{
		// 0: received by the interface: HOST, BROADCAST, MULTICAST
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: unix.PACKET_OTHERHOST, SkipTrue: 19},
		// 2: EtherType IPv6 (the socket is bound to every protocol)
		bpf.LoadExtension{Num: bpf.ExtProto},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.ETH_P_IPV6, SkipTrue: 17},
		// 4: no VLAN ID (a tap sees a tagged frame before the VLAN code
		// marks it for another host); a priority tag (VLAN 0) is fine
		bpf.LoadExtension{Num: bpf.ExtVLANTag},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0fff},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: 14},
		// 7: IPv6
		bpf.LoadAbsolute{Off: 0, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 6, SkipTrue: 11},
		// 10: multicast destination
		bpf.LoadAbsolute{Off: 24, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0xff, SkipTrue: 9},
		// 12: of scope greater than link-local
		bpf.LoadAbsolute{Off: 25, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f},
		bpf.JumpIf{Cond: bpf.JumpLessOrEqual, Val: 2, SkipTrue: 6},
		// 15: next header: not MLD, ICMPv6, PIM, VRRP
		bpf.LoadAbsolute{Off: 6, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: hopByHop, SkipTrue: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpv6, SkipTrue: 3},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: IPProtocol, SkipTrue: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: vrrp, SkipTrue: 1},
		bpf.RetConstant{Val: dataAccept}, // 20
		bpf.RetConstant{Val: 0},          // 21
	}
}

// Close closes the socket (dropping its all-multicast membership); a
// Read in progress returns an error wrapping net.ErrClosed.
func (c *DataConn) Close() error {
	c.closed.Store(true)
	terr := c.tx.Close()
	if err := c.c.Close(); err != nil {
		return err
	}
	return terr
}

// Ifindex is the interface's index.
func (c *DataConn) Ifindex() int { return c.ifindex }

// Malformed counts frames Read skipped because their IPv6 framing does
// not hold: shorter than the fixed header, or a payload length past the
// end of the frame (also one cut by the read buffer).
func (c *DataConn) Malformed() uint64 { return c.malformed.Load() }

// Filtered counts frames the kernel filter passed that Read's own check
// of the same rules (packet type, IPv6 multicast of scope above
// link-local, next header) rejected: zero unless they disagree.
func (c *DataConn) Filtered() uint64 { return c.filtered.Load() }

// Drops returns how many packets the kernel dropped on this socket since
// it was opened (receive buffer full), from PACKET_STATISTICS.
func (c *DataConn) Drops() (uint64, error) {
	st, err := c.c.Stats() // resets the kernel's counters
	if err != nil {
		return c.drops.Load(), fmt.Errorf("pim data socket statistics: %w", err)
	}
	return c.drops.Add(uint64(st.Drops)), nil
}

// Read returns the next multicast data packet received on the
// interface. Frames that do not parse are counted (Malformed) and
// skipped, never returned. The packet is copied out of the DataConn's
// buffer: the caller may keep it. Cancelling ctx or closing the socket
// ends a Read in progress (ctx.Err() or an error wrapping net.ErrClosed).
// Reads take turns: a second Read waits for the first.
func (c *DataConn) Read(ctx context.Context) (DataPacket, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	rc, err := c.c.SyscallConn()
	if err != nil {
		if c.closed.Load() {
			err = net.ErrClosed
		}
		return DataPacket{}, fmt.Errorf("read pim data: %w", err)
	}
	defer cancelReadOn(ctx, c.c.SetReadDeadline)()
	for {
		var (
			n     int
			from  unix.Sockaddr
			flags int
			rerr  error
		)
		err := rc.Read(func(fd uintptr) bool {
			n, _, flags, from, rerr = unix.Recvmsg(int(fd), c.buf, nil, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if ctx.Err() != nil {
				return DataPacket{}, ctx.Err()
			}
			if c.closed.Load() {
				err = net.ErrClosed
			}
			return DataPacket{}, fmt.Errorf("read pim data: %w", err)
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype >= unix.PACKET_OTHERHOST {
			c.filtered.Add(1)
			continue
		}
		if flags&unix.MSG_TRUNC != 0 {
			c.malformed.Add(1)
			continue
		}
		p, err := parseDataFrame(c.buf[:n])
		switch {
		case errors.Is(err, errDataNotWanted):
			c.filtered.Add(1)
			continue
		case err != nil:
			c.malformed.Add(1)
			continue
		}
		p.Ifindex = c.ifindex
		if ll.Ifindex != 0 {
			p.Ifindex = ll.Ifindex
		}
		p.Packet = append([]byte(nil), p.Packet...)
		return p, nil
	}
}

// parseDataFrame takes an IPv6 packet as the SOCK_DGRAM packet socket
// reads it and returns its addresses and hop limit, with Packet trimmed
// of link-layer padding and still aliasing b. It applies the filter's
// rules too (errDataNotWanted).
func parseDataFrame(b []byte) (DataPacket, error) {
	if len(b) < ipv6HeaderLen {
		return DataPacket{}, errDataShort
	}
	if b[0]>>4 != 6 {
		return DataPacket{}, errDataNotIPv6
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if ipv6HeaderLen+plen > len(b) {
		return DataPacket{}, errDataPayloadLen
	}
	b = b[:ipv6HeaderLen+plen]
	p := DataPacket{
		Src:      netip.AddrFrom16([16]byte(b[8:24])),
		Group:    netip.AddrFrom16([16]byte(b[24:40])),
		HopLimit: int(b[7]),
		Packet:   b,
	}
	if !p.Group.IsMulticast() || b[25]&0x0f <= 2 {
		return DataPacket{}, errDataNotWanted
	}
	switch b[6] {
	case 0, 58, IPProtocol, 112:
		return DataPacket{}, errDataNotWanted
	}
	return p, nil
}

// WriteIPv6 sends pkt, an IPv6 packet (header first) to a multicast
// destination, out of the interface as it is, in an Ethernet frame from
// the interface's MAC to the destination's 33:33:xx:xx:xx:xx address
// (RFC 2464 §7). It rejects a packet shorter than the IPv6 header, not
// version 6, whose payload length does not match its length, or whose
// destination is not multicast; the kernel rejects one larger than the
// interface MTU (EMSGSIZE): the packet is not fragmented.
func (c *DataConn) WriteIPv6(pkt []byte) error {
	if len(pkt) < ipv6HeaderLen {
		return fmt.Errorf("write ipv6 packet: %d octets: %w", len(pkt), errDataShort)
	}
	if pkt[0]>>4 != 6 {
		return fmt.Errorf("write ipv6 packet: version %d: %w", pkt[0]>>4, errDataNotIPv6)
	}
	if plen := int(binary.BigEndian.Uint16(pkt[4:6])); ipv6HeaderLen+plen != len(pkt) {
		return fmt.Errorf("write ipv6 packet: payload length %d in %d octets", plen, len(pkt))
	}
	dst := netip.AddrFrom16([16]byte(pkt[24:40]))
	if !dst.IsMulticast() {
		return fmt.Errorf("write ipv6 packet: destination %v is not multicast", dst)
	}
	mac := net.HardwareAddr{0x33, 0x33, pkt[36], pkt[37], pkt[38], pkt[39]}
	if _, err := c.tx.WriteTo(pkt, &packet.Addr{HardwareAddr: mac}); err != nil {
		return fmt.Errorf("write ipv6 packet to %v: %w", dst, err)
	}
	return nil
}
