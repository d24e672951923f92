//go:build linux

package pim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// How hotcast sends and receives the routed unicast PIM messages
// (Register, Null-Register, Register-Stop; RFC 7761 §4.4) on Linux: one
// raw IPv6 socket of protocol 103 for the whole host, bound to no
// interface and no address, so the unicast FIB routes what it sends and
// it receives the PIM packets for every address of the host, whatever
// interface they arrive on.
//
// Sending: the source through IPV6_PKTINFO on each message (the kernel
// refuses one that is not an address of the host; a zero source lets it
// choose), the kernel's unicast hop limit (net.ipv6.conf.*.hop_limit,
// 64), traffic class CS6, IPV6_CHECKSUM off (Marshal computed it; a
// Register's covers its header only). A Register carries a whole data
// packet, so with a 1500-octet inner packet it exceeds a 1500 MTU: the
// socket says IPV6_MTU_DISCOVER = IPV6_PMTUDISC_WANT and IPV6_DONTFRAG
// off, so the kernel fragments it to the path MTU (IPv6 source
// fragmentation, RFC 8200 §4.5; a Packet Too Big lowers it) rather than
// failing with EMSGSIZE, and the RP's stack reassembles it before the
// raw socket sees it.
//
// Receiving: an unbound raw socket of the protocol also gets a copy of
// every multicast PIM packet the host accepts (the Hellos, Join/Prunes
// and Asserts to ff02::d that the per-interface Conns joined for:
// raw_v6_match does not consult IPV6_MULTICAST_ALL for a socket with no
// bound address). Read skips those and counts them (SkippedMulticast);
// the Conns have them. The reverse holds too: a Conn gets the unicast
// PIM packets arriving on its interface (a raw socket bound to a device
// gets every packet of its protocol arriving there), and
// Interface.HandlePacket accepts Registers and Register-Stops, so the
// daemon must take those from one of the two sockets only.
const unicastRecvBufLen = 1 << 16 // a raw socket reads the IPv6 payload: at most 65535 octets

// UnicastConn is the host's socket for the unicast PIM messages: the DR
// sends Registers and Null-Registers through it and reads Register-Stops,
// the RP reads Registers and sends Register-Stops. It implements
// UnicastSender (RouterConfig.Unicast).
type UnicastConn struct {
	f      *os.File
	closed atomic.Bool // Close was called: a failing Read says net.ErrClosed

	readMu sync.Mutex // one Read at a time: buf is shared
	buf    []byte
	oob    []byte

	skippedMulticast atomic.Uint64
	truncated        atomic.Uint64
}

// UnicastPacket is a unicast PIM packet read by UnicastConn: the IPv6
// facts of Packet (Dst is the host's address it was sent to) and the
// interface it arrived on.
type UnicastPacket struct {
	Packet
	Ifindex int
}

// ListenUnicast opens the unicast PIM socket. It needs CAP_NET_RAW.
func ListenUnicast() (*UnicastConn, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, IPProtocol)
	if err != nil {
		return nil, fmt.Errorf("pim unicast socket: %w", err)
	}
	for _, s := range []struct {
		name string
		f    func() error
	}{
		{"checksum off", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, -1) }},
		{"traffic class", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, trafficClassCS6) }},
		{"path mtu discovery", func() error {
			return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_WANT)
		}},
		{"fragmentation allowed", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 0) }},
		{"recv pktinfo", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1) }},
		{"recv hop limit", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1) }},
	} {
		if err := s.f(); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("pim unicast socket: %s: %w", s.name, err)
		}
	}
	return &UnicastConn{
		f:   os.NewFile(uintptr(fd), "pim-unicast"),
		buf: make([]byte, unicastRecvBufLen),
		oob: make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.Inet6Pktinfo{})))+unix.CmsgSpace(4)),
	}, nil
}

// Close closes the socket; a Read in progress returns an error wrapping
// net.ErrClosed.
func (c *UnicastConn) Close() error {
	c.closed.Store(true)
	return c.f.Close()
}

// SkippedMulticast counts the multicast PIM packets (Hellos, Join/Prunes,
// Asserts: the per-interface Conns' business) that Read skipped.
func (c *UnicastConn) SkippedMulticast() uint64 { return c.skippedMulticast.Load() }

// Truncated counts datagrams cut by the read buffer (dropped); the buffer
// holds the largest IPv6 payload, so this stays zero.
func (c *UnicastConn) Truncated() uint64 { return c.truncated.Load() }

// SendUnicast implements UnicastSender: msg, a PIM message with its
// checksum, goes to dst from src, routed by the unicast FIB. src must be
// an address of the host (or zero: the kernel chooses); dst must be
// unicast (link-local ones need their zone). A message larger than the
// path MTU is fragmented by the kernel.
func (c *UnicastConn) SendUnicast(src, dst netip.Addr, msg []byte) error {
	if err := c.sendUnicast(src, dst, msg); err != nil {
		return fmt.Errorf("send pim from %v to %v: %w", src, dst, err)
	}
	return nil
}

func (c *UnicastConn) sendUnicast(src, dst netip.Addr, msg []byte) error {
	if !dst.Is6() || dst.Is4In6() || dst.IsUnspecified() || dst.IsMulticast() {
		return errors.New("destination is not an ipv6 unicast address")
	}
	sa := &unix.SockaddrInet6{Addr: dst.As16()}
	if z := dst.Zone(); z != "" {
		idx, err := zoneIndex(z)
		if err != nil {
			return err
		}
		sa.ZoneId = uint32(idx)
	}
	var oob []byte
	if src.IsValid() && !src.IsUnspecified() {
		if !src.Is6() || src.Is4In6() || src.IsMulticast() {
			return errors.New("source is not an ipv6 unicast address")
		}
		pi := unix.Inet6Pktinfo{Addr: src.As16()}
		if z := src.Zone(); z != "" {
			idx, err := zoneIndex(z)
			if err != nil {
				return err
			}
			pi.Ifindex = uint32(idx)
		}
		oob = unix.PktInfo6(&pi)
	}
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), msg, oob, sa, 0)
		return !errors.Is(serr, unix.EAGAIN)
	})
	if err == nil {
		err = serr
	}
	return err
}

// zoneIndex resolves an IPv6 zone, an interface index or name.
func zoneIndex(z string) (int, error) {
	if n, err := strconv.Atoi(z); err == nil && n > 0 {
		return n, nil
	}
	ifi, err := net.InterfaceByName(z)
	if err != nil {
		return 0, fmt.Errorf("zone %q: %w", z, err)
	}
	return ifi.Index, nil
}

// Read returns the next PIM packet sent to a unicast address of the host,
// with its source, destination, hop limit and incoming interface; the
// Payload is the caller's to keep. Multicast PIM packets are skipped
// (SkippedMulticast). Cancelling ctx or closing the socket ends a Read in
// progress (ctx.Err() or an error wrapping net.ErrClosed). Reads take
// turns: a second Read waits for the first.
func (c *UnicastConn) Read(ctx context.Context) (UnicastPacket, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	rc, err := c.f.SyscallConn()
	if err != nil {
		return UnicastPacket{}, fmt.Errorf("read pim unicast: %w", err)
	}
	defer cancelReadOn(ctx, c.f.SetReadDeadline)()
	for {
		var (
			n, oobn, flags int
			from           unix.Sockaddr
			rerr           error
		)
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, flags, from, rerr = unix.Recvmsg(int(fd), c.buf, c.oob, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if ctx.Err() != nil {
				return UnicastPacket{}, ctx.Err()
			}
			if c.closed.Load() {
				err = net.ErrClosed
			}
			return UnicastPacket{}, fmt.Errorf("read pim unicast: %w", err)
		}
		if flags&unix.MSG_TRUNC != 0 {
			c.truncated.Add(1)
			continue
		}
		sa, ok := from.(*unix.SockaddrInet6)
		if !ok {
			continue
		}
		p := UnicastPacket{Packet: Packet{Src: netip.AddrFrom16(sa.Addr), HopLimit: -1}}
		if err := parseUnicastControl(c.oob[:oobn], &p); err != nil {
			return UnicastPacket{}, fmt.Errorf("read pim unicast: %w", err)
		}
		if p.Dst.IsMulticast() {
			c.skippedMulticast.Add(1)
			continue
		}
		p.Payload = append([]byte(nil), c.buf[:n]...)
		return p, nil
	}
}

// cancelReadOn makes ctx's cancellation end a blocking read on a file
// whose read deadline setDeadline sets (a deadline in the past wakes the
// poller). The returned function, deferred by the reader, undoes it:
// when ctx fired, it waits for the deadline to be set before clearing it,
// so the next read does not find it.
func cancelReadOn(ctx context.Context, setDeadline func(time.Time) error) func() {
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		setDeadline(time.Unix(1, 0))
	})
	return func() {
		if stop() {
			return
		}
		<-fired
		setDeadline(time.Time{})
	}
}

// parseUnicastControl is parseControl with the incoming interface (from
// IPV6_PKTINFO too).
func parseUnicastControl(oob []byte, p *UnicastPacket) error {
	ifx, err := parseControlIf(oob, &p.Packet)
	p.Ifindex = ifx
	return err
}
