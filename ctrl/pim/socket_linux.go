//go:build linux

package pim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// How hotcast sends and receives the link-local PIM messages on Linux: one
// raw IPv6 socket of protocol 103 per interface, bound to it
// (SO_BINDTODEVICE) and joined to ALL-PIM-ROUTERS (ff02::d) there. The
// kernel delivers every PIM packet for an address or group the host has
// to raw sockets of the protocol, with or without CONFIG_IPV6_MROUTE, so
// no MRT6_INIT and no pim6reg device are needed. Raw IPv6 sockets carry
// the payload only: the destination and hop limit come from the
// IPV6_PKTINFO and IPV6_HOPLIMIT control messages. The kernel does not
// touch the checksum (IPV6_CHECKSUM off): Marshal computes it, and the
// Interface verifies it, since a Register's covers only its header.
//
// Sending: hop limit 1 (IPV6_MULTICAST_HOPS), no loopback of our own
// multicast, traffic class CS6, the link-local source through IPV6_PKTINFO
// on each message. Registers and Register-Stops are routed unicast and do
// not belong on a socket bound to one link: they go through UnicastConn
// (unicast_linux.go).
const (
	trafficClassCS6 = 0xc0
	readBufLen      = 0xffff
)

// Conn is the PIM socket of one interface. It implements Sender.
type Conn struct {
	f       *os.File
	ifindex int
	src     netip.Addr

	truncated atomic.Uint64 // datagrams longer than the read buffer
}

// Listen opens the PIM socket of ifname, sending from linkLocal.
func Listen(ifname string, linkLocal netip.Addr) (*Conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("pim socket %s: %w", ifname, err)
	}
	if !linkLocal.IsLinkLocalUnicast() {
		return nil, fmt.Errorf("pim socket %s: source %v is not link-local", ifname, linkLocal)
	}
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, IPProtocol)
	if err != nil {
		return nil, fmt.Errorf("pim socket %s: %w", ifname, err)
	}
	mreq := unix.IPv6Mreq{Multiaddr: AllPIMRouters.As16(), Interface: uint32(ifi.Index)}
	for _, s := range []struct {
		name string
		f    func() error
	}{
		{"bind to device", func() error { return unix.BindToDevice(fd, ifname) }},
		{"checksum off", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, -1) }},
		{"multicast hops", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, HopLimit) }},
		{"multicast loop", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0) }},
		{"multicast if", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index) }},
		{"traffic class", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, trafficClassCS6) }},
		{"recv pktinfo", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1) }},
		{"recv hop limit", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1) }},
		{"join ff02::d", func() error { return unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, &mreq) }},
	} {
		if err := s.f(); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("pim socket %s: %s: %w", ifname, s.name, err)
		}
	}
	return &Conn{f: os.NewFile(uintptr(fd), "pim-"+ifname), ifindex: ifi.Index, src: linkLocal.WithZone("")}, nil
}

// Close closes the socket (leaving the group).
func (c *Conn) Close() error { return c.f.Close() }

// Truncated counts datagrams cut by the read buffer (dropped).
func (c *Conn) Truncated() uint64 { return c.truncated.Load() }

// SendPIM implements Sender: msg goes to dst from the interface's
// link-local address.
func (c *Conn) SendPIM(dst netip.Addr, msg []byte) error {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("send pim to %v: %w", dst, err)
	}
	sa := &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(c.ifindex)}
	pi := unix.Inet6Pktinfo{Addr: c.src.As16(), Ifindex: uint32(c.ifindex)}
	oob := unix.PktInfo6(&pi)
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), msg, oob, sa, 0)
		return !errors.Is(serr, unix.EAGAIN)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("send pim to %v: %w", dst, err)
	}
	return nil
}

// Read returns the next PIM packet received on the interface, with its
// source, destination and hop limit, for Interface.HandlePacket.
func (c *Conn) Read(ctx context.Context) (Packet, error) {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return Packet{}, fmt.Errorf("read pim: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.f.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() {
			c.f.SetReadDeadline(time.Time{}) // ctx fired: clear for the next Read
		}
	}()
	buf := make([]byte, readBufLen)
	oob := make([]byte, 2*unix.CmsgSpace(int(unsafe.Sizeof(unix.Inet6Pktinfo{})))+unix.CmsgSpace(4))
	for {
		var (
			n, oobn, flags int
			from           unix.Sockaddr
			rerr           error
		)
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, flags, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if ctx.Err() != nil {
				return Packet{}, ctx.Err()
			}
			return Packet{}, fmt.Errorf("read pim: %w", err)
		}
		if flags&unix.MSG_TRUNC != 0 {
			c.truncated.Add(1)
			continue
		}
		sa, ok := from.(*unix.SockaddrInet6)
		if !ok {
			continue
		}
		p := Packet{Src: netip.AddrFrom16(sa.Addr), HopLimit: -1, Payload: append([]byte(nil), buf[:n]...)}
		if err := parseControl(oob[:oobn], &p); err != nil {
			return Packet{}, fmt.Errorf("read pim: %w", err)
		}
		return p, nil
	}
}

// parseControl takes the destination from IPV6_PKTINFO and the hop limit
// from IPV6_HOPLIMIT (RFC 3542 §6); without them the Interface drops the
// packet (invalid destination, hop limit -1).
func parseControl(oob []byte, p *Packet) error {
	_, err := parseControlIf(oob, p)
	return err
}

// parseControlIf is parseControl returning the incoming interface of
// IPV6_PKTINFO too (0 without it).
func parseControlIf(oob []byte, p *Packet) (ifindex int, err error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, fmt.Errorf("control messages: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Level != unix.IPPROTO_IPV6 {
			continue
		}
		switch m.Header.Type {
		case unix.IPV6_PKTINFO:
			if len(m.Data) >= 16 {
				p.Dst = netip.AddrFrom16([16]byte(m.Data[:16]))
			}
			if len(m.Data) >= unix.SizeofInet6Pktinfo {
				ifindex = int(binary.NativeEndian.Uint32(m.Data[16:20]))
			}
		case unix.IPV6_HOPLIMIT:
			if len(m.Data) >= 4 {
				p.HopLimit = int(int32(binary.NativeEndian.Uint32(m.Data)))
			}
		}
	}
	return ifindex, nil
}
