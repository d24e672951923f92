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
	"time"

	"golang.org/x/sys/unix"
)

// How Linux hands MLD to a router daemon (net/ipv6/ip6_input.c,
// ip6_mc_input; net/ipv6/ip6mr.c):
//
//   - A raw IPPROTO_ICMPV6 socket receives every ICMPv6 message the stack
//     delivers locally, filtered by ICMPV6_FILTER. Multicast is delivered
//     locally only for groups the interface has joined, so MLDv2 reports
//     (to ff02::16) need an IPV6_JOIN_GROUP of ff02::16, and queries arrive
//     on ff02::1.
//   - MLDv1 reports and Dones go to the group address itself (or
//     ff02::2). ip6_mc_input delivers them regardless of membership only
//     when multicast forwarding is on (devconf all.mc_forwarding, which
//     MRT6_INIT on a raw ICMPv6 socket turns on), the destination is not
//     link-local scope, and a Router Alert option was present. So we
//     MRT6_INIT our own socket (EADDRINUSE means another daemon, e.g.
//     pim6d, already did: fine) and also join ff02::2 for Dones.
//   - IPV6_ROUTER_ALERT does not help here: it only diverts packets that
//     are being forwarded (ip6_forward -> ip6_call_ra_chain).
//   - The NIC must pass frames for groups nobody joined: the socket also
//     holds a PACKET_MR_ALLMULTI membership (an AF_PACKET socket with
//     protocol 0 that receives nothing; the kernel drops it on close).
//   - Sending: the kernel fills the ICMPv6 checksum of raw ICMPv6 sockets;
//     hop limit 1 via IPV6_MULTICAST_HOPS, the Router Alert through the
//     IPV6_HOPOPTS sticky option, the link-local source through
//     IPV6_PKTINFO on each message.
const (
	icmp6Filter = 1   // ICMPV6_FILTER, linux/icmpv6.h
	mrt6Init    = 200 // MRT6_INIT (MRT6_BASE), linux/mroute6.h
)

// hopOptsRouterAlert is a Hop-by-Hop header with the MLD Router Alert
// option (RFC 2711, value 0) and a PadN; the kernel fills Next Header.
var hopOptsRouterAlert = [8]byte{0, 0, 5, 2, 0, 0, 1, 0}

// Conn is a raw ICMPv6 socket for MLD on one interface. It implements
// Sender.
type Conn struct {
	f       *os.File
	ifindex int
	src     netip.Addr
	allmFD  int
	log     *slog.Logger
}

// Listen opens the MLD socket of ifname, sending from linkLocal.
func Listen(ifname string, linkLocal netip.Addr, log *slog.Logger) (c *Conn, err error) {
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
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
	if err != nil {
		return nil, fmt.Errorf("mld socket %s: %w", ifname, err)
	}
	c = &Conn{ifindex: ifi.Index, src: linkLocal.WithZone(""), allmFD: -1, log: log}
	defer func() {
		if err != nil {
			unix.Close(fd)
			if c.allmFD >= 0 {
				unix.Close(c.allmFD)
			}
		}
	}()
	var filter unix.ICMPv6Filter
	for k := range filter.Data {
		filter.Data[k] = ^uint32(0) // block all ...
	}
	for _, t := range []MessageType{TypeQuery, TypeV1Report, TypeV1Done, TypeV2Report} {
		filter.Data[t>>5] &^= 1 << (uint32(t) & 31) // ... but MLD
	}
	steps := []struct {
		name string
		f    func() error
	}{
		{"bind to device", func() error { return unix.BindToDevice(fd, ifname) }},
		{"icmp6 filter", func() error { return unix.SetsockoptICMPv6Filter(fd, unix.SOL_ICMPV6, icmp6Filter, &filter) }},
		{"recv hop limit", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1) }},
		{"recv pktinfo", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1) }},
		{"recv hopopts", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPOPTS, 1) }},
		{"multicast hops", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 1) }},
		{"multicast loop", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0) }},
		{"multicast if", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index) }},
		{"router alert hopopts", func() error {
			return unix.SetsockoptString(fd, unix.IPPROTO_IPV6, unix.IPV6_HOPOPTS, string(hopOptsRouterAlert[:]))
		}},
		{"join ff02::16", func() error { return join(fd, ifi.Index, AllMLDv2Route) }},
		{"join ff02::2", func() error { return join(fd, ifi.Index, netip.MustParseAddr("ff02::2")) }},
	}
	for _, s := range steps {
		if err := s.f(); err != nil {
			return nil, fmt.Errorf("mld socket %s: %s: %w", ifname, s.name, err)
		}
	}
	switch err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, mrt6Init, 1); {
	case err == nil:
	case errors.Is(err, unix.EADDRINUSE):
		log.Info("mld: multicast routing socket owned by another process; relying on it for MLDv1 delivery", slog.String("iface", ifname))
	default:
		return nil, fmt.Errorf("mld socket %s: MRT6_INIT: %w", ifname, err)
	}
	afd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("mld socket %s: allmulti socket: %w", ifname, err)
	}
	c.allmFD = afd
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_ALLMULTI}
	if err := unix.SetsockoptPacketMreq(afd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return nil, fmt.Errorf("mld socket %s: allmulti: %w", ifname, err)
	}
	c.f = os.NewFile(uintptr(fd), "mld-"+ifname)
	return c, nil
}

func join(fd, ifindex int, group netip.Addr) error {
	mreq := unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(ifindex)}
	return unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, &mreq)
}

// Close closes the sockets.
func (c *Conn) Close() error {
	err := c.f.Close()
	if c.allmFD >= 0 {
		unix.Close(c.allmFD)
		c.allmFD = -1
	}
	return err
}

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

// Read returns the next MLD message. Packets that are not MLD (the
// multicast routing socket may get kernel upcalls) are skipped.
func (c *Conn) Read(ctx context.Context) (Packet, error) {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return Packet{}, fmt.Errorf("read mld: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.f.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		if stop() {
			return
		}
		c.f.SetReadDeadline(time.Time{}) // ctx fired: clear for the next Read
	}()
	buf := make([]byte, 65536)
	oob := make([]byte, 1024)
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
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
		sa, ok := from.(*unix.SockaddrInet6)
		if !ok || n < 4 {
			continue
		}
		switch MessageType(buf[0]) {
		case TypeQuery, TypeV1Report, TypeV1Done, TypeV2Report:
		default:
			continue
		}
		p := Packet{Src: netip.AddrFrom16(sa.Addr), HopLimit: -1, Payload: append([]byte(nil), buf[:n]...)}
		if err := parseControl(oob[:oobn], &p); err != nil {
			c.log.Debug("mld: bad control message", slog.Any("error", err))
		}
		return p, nil
	}
}

// parseControl fills hop limit, destination and Router Alert presence from
// the IPV6_HOPLIMIT, IPV6_PKTINFO and IPV6_HOPOPTS control messages.
func parseControl(oob []byte, p *Packet) error {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Header.Level != unix.IPPROTO_IPV6 {
			continue
		}
		switch m.Header.Type {
		case unix.IPV6_HOPLIMIT:
			if len(m.Data) >= 4 {
				p.HopLimit = int(int32(binary.NativeEndian.Uint32(m.Data)))
			}
		case unix.IPV6_PKTINFO:
			if len(m.Data) >= 16 {
				p.Dst = netip.AddrFrom16([16]byte(m.Data[:16]))
			}
		case unix.IPV6_HOPOPTS:
			p.RouterAlert = hasRouterAlert(m.Data)
		}
	}
	return nil
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
