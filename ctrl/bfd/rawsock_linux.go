//go:build linux

package bfd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The engine's sockets: the same as Listener and Conn (RFC 5881: port
// 3784, hop limit 255 checked by the sessions, source ports
// 49152-65535), but raw non-blocking file descriptors that the engine
// thread polls itself, so that neither reads nor writes ever park it in
// the Go scheduler, and with kernel receive timestamps (SO_TIMESTAMPNS).

// rcvBuf is the receive buffer asked for each listener.
const rcvBuf = 4 << 20

// rawListener is one interface's receive socket.
type rawListener struct {
	ifname  string
	ifindex int
	fd      int
	buf     []byte
	oob     []byte
	handle  func(Received)
	// caughtUp: every packet that arrived before it has been handled
	// (engine thread only).
	caughtUp time.Time

	received    atomic.Uint64 // packets read
	kernelDrops atomic.Uint64 // the socket's receive queue overflowed (SO_RXQ_OVFL)
	readErrors  atomic.Uint64
}

// ListenerStats count one receive socket's packets.
type ListenerStats struct {
	Interface string
	Received  uint64
	// KernelDrops counts packets the kernel dropped because the socket's
	// receive queue was full (a flood outran the engine).
	KernelDrops uint64
	ReadErrors  uint64
}

func sockErr(what string, err error) error { return fmt.Errorf("%s: %w", what, err) }

func newUDP6() (int, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, sockErr("socket", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
		unix.Close(fd)
		return -1, sockErr("ipv6only", err)
	}
	return fd, nil
}

// openListener opens the receive socket on ifname, in the calling
// thread's network namespace.
func openListener(ifname string, handle func(Received)) (*rawListener, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("bfd listen on %s: %w", ifname, err)
	}
	fd, err := newUDP6()
	if err != nil {
		return nil, fmt.Errorf("bfd listen on %s: %w", ifname, err)
	}
	opts := []struct {
		what         string
		level, name  int
		value        int
		bindToDevice bool
	}{
		{what: "bind to device", bindToDevice: true},
		{"recv hop limit", unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1, false},
		{"recv pktinfo", unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1, false},
		{"timestamps", unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1, false},
		{"rxq overflow", unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1, false},
	}
	for _, o := range opts {
		if o.bindToDevice {
			err = unix.BindToDevice(fd, ifname)
		} else {
			err = unix.SetsockoptInt(fd, o.level, o.name, o.value)
		}
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("bfd listen on %s: %s: %w", ifname, o.what, err)
		}
	}
	// Room for bursts: a flood that fills the queue drops the peers'
	// packets with the rest. As root past net.core.rmem_max.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet6{Port: Port}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bfd listen on %s: bind [::]:%d: %w", ifname, Port, err)
	}
	return &rawListener{
		ifname: ifname, ifindex: ifi.Index, fd: fd, handle: handle,
		buf: make([]byte, 1500), oob: make([]byte, 256),
	}, nil
}

// drain reads up to budget packets and hands each to handle; it returns
// when the socket is empty.
func (l *rawListener) drain(budget int) {
	for range budget {
		n, oobn, flags, from, err := unix.Recvmsg(l.fd, l.buf, l.oob, unix.MSG_DONTWAIT)
		now := time.Now()
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				l.caughtUp = now
			} else if !errors.Is(err, unix.EINTR) {
				l.readErrors.Add(1)
			}
			return
		}
		l.received.Add(1)
		rx := Received{HopLimit: -1, Interface: l.ifname, Payload: l.buf[:n]}
		if flags&unix.MSG_TRUNC != 0 {
			// Longer than any BFD packet: let the codec see a length
			// that does not fit.
			rx.Payload = l.buf[:0]
		}
		if sa, ok := from.(*unix.SockaddrInet6); ok {
			rx.Src = netip.AddrFrom16(sa.Addr)
			rx.SrcPort = sa.Port
		}
		ok := l.control(l.oob[:oobn], &rx, now)
		if rx.Time.IsZero() {
			l.caughtUp = now
		} else {
			l.caughtUp = rx.Time
		}
		if !ok {
			continue // arrived on another interface
		}
		l.handle(rx)
	}
}

// idle implements pollee: the socket was empty at the wake.
func (l *rawListener) idle(wake time.Time) { l.caughtUp = wake }

// caughtUpTime is when the socket was last known to be read up to: the
// Detection Time cannot have expired unseen before it.
func (l *rawListener) caughtUpTime() time.Time { return l.caughtUp }

// control reads the control messages into rx; false when the packet
// arrived on another interface than the listener's.
func (l *rawListener) control(oob []byte, rx *Received, now time.Time) bool {
	// Parsed in place (unix.ParseSocketControlMessage allocates): the
	// engine thread reads every packet of a flood.
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		var n int
		if unix.SizeofCmsghdr == 16 {
			n = int(binary.NativeEndian.Uint64(oob[0:8]))
		} else {
			n = int(binary.NativeEndian.Uint32(oob[0:4]))
		}
		level := int32(binary.NativeEndian.Uint32(oob[unix.SizeofCmsghdr-8:]))
		typ := int32(binary.NativeEndian.Uint32(oob[unix.SizeofCmsghdr-4:]))
		if n < hdr || n > len(oob) {
			break
		}
		data := oob[hdr:n]
		switch {
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_HOPLIMIT && len(data) >= 4:
			rx.HopLimit = int(int32(binary.NativeEndian.Uint32(data)))
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(data) >= 20:
			rx.Dst = netip.AddrFrom16([16]byte(data[:16]))
			if idx := int(binary.NativeEndian.Uint32(data[16:20])); idx != 0 && idx != l.ifindex {
				return false
			}
		case level == unix.SOL_SOCKET && typ == unix.SO_TIMESTAMPNS && len(data) >= 16:
			sec := int64(binary.NativeEndian.Uint64(data[:8]))
			nsec := int64(binary.NativeEndian.Uint64(data[8:16]))
			// The timestamp is CLOCK_REALTIME: its age against the wall
			// clock now, taken from a time with a monotonic reading,
			// gives an arrival time that a step of the wall clock does
			// not move.
			if age := time.Duration(now.UnixNano() - (sec*1e9 + nsec)); age >= 0 && age < time.Minute {
				rx.Time = now.Add(-age)
			}
		case level == unix.SOL_SOCKET && typ == unix.SO_RXQ_OVFL && len(data) >= 4:
			// The count of drops so far on this socket.
			l.kernelDrops.Store(uint64(binary.NativeEndian.Uint32(data)))
		}
		if sp := unix.CmsgSpace(n - hdr); sp < len(oob) {
			oob = oob[sp:]
		} else {
			break
		}
	}
	return true
}

func (l *rawListener) stats() ListenerStats {
	return ListenerStats{Interface: l.ifname, Received: l.received.Load(), KernelDrops: l.kernelDrops.Load(), ReadErrors: l.readErrors.Load()}
}

func (l *rawListener) close() error { return unix.Close(l.fd) }

// rawConn sends one session's packets; it implements Sender.
type rawConn struct {
	ifname string
	fd     int
	dst    unix.SockaddrInet6
	port   int
}

// dialRaw opens a session's send socket from local (invalid: the
// kernel's choice) to peer on ifname, in the calling thread's network
// namespace.
func dialRaw(ifname string, local, peer netip.Addr) (*rawConn, error) {
	if !peer.Is6() || peer.Is4In6() {
		return nil, fmt.Errorf("bfd dial %v on %s: not an ipv6 address", peer, ifname)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("bfd dial %v on %s: %w", peer, ifname, err)
	}
	fd, err := newUDP6()
	if err != nil {
		return nil, fmt.Errorf("bfd dial %v on %s: %w", peer, ifname, err)
	}
	fail := func(what string, err error) (*rawConn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("bfd dial %v on %s: %s: %w", peer, ifname, what, err)
	}
	if err := unix.BindToDevice(fd, ifname); err != nil {
		return fail("bind to device", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, HopLimit); err != nil {
		return fail("hop limit", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, TrafficClass); err != nil {
		return fail("traffic class", err)
	}
	c := &rawConn{ifname: ifname, fd: fd, dst: unix.SockaddrInet6{Port: Port, Addr: peer.As16()}}
	if peer.IsLinkLocalUnicast() {
		c.dst.ZoneId = uint32(ifi.Index)
	}
	src := unix.SockaddrInet6{}
	if local.IsValid() {
		src.Addr = local.As16()
		if local.IsLinkLocalUnicast() {
			src.ZoneId = uint32(ifi.Index)
		}
	}
	// The kernel's ephemeral range is not RFC 5881's: pick ports in
	// 49152-65535 until one is free.
	for range 64 {
		src.Port = MinSourcePort + rand.IntN(MaxSourcePort-MinSourcePort+1)
		err = unix.Bind(fd, &src)
		if !errors.Is(err, unix.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		return fail("bind", err)
	}
	c.port = src.Port
	return c, nil
}

// Send implements Sender; it never blocks (a full socket buffer is an
// error, counted by the session).
func (c *rawConn) Send(pkt []byte) error {
	if err := unix.Sendto(c.fd, pkt, unix.MSG_DONTWAIT, &c.dst); err != nil {
		return fmt.Errorf("bfd send to [%v]:%d on %s: %w", netip.AddrFrom16(c.dst.Addr), Port, c.ifname, err)
	}
	return nil
}

func (c *rawConn) close() error { return unix.Close(c.fd) }

func (c *rawConn) String() string {
	return "bfd " + c.ifname + " :" + strconv.Itoa(c.port) + " -> " + netip.AddrFrom16(c.dst.Addr).String()
}
