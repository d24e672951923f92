//go:build linux

package bfd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// TrafficClass is the IPv6 traffic class of sent packets: DSCP CS6
// (network control), as FRR's bfdd sends.
const TrafficClass = 0xc0

// Handler takes received packets; *Demux is one.
type Handler interface {
	HandlePacket(rx Received)
}

// Listener receives single-hop BFD Control packets on one interface: a
// UDP socket on [::]:3784 bound to the interface, with the hop limit,
// destination and arrival interface of each packet from control messages
// (IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO). The hop limit is checked by the
// sessions, which count the drops (RFC 5881 §5).
type Listener struct {
	ifi *net.Interface
	pc  *ipv6.PacketConn
}

// Listen opens the receive socket on interface ifname, in the network
// namespace of the calling thread.
func Listen(ifname string) (*Listener, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("bfd listen on %s: %w", ifname, err)
	}
	c, err := listenUDP(ifi, netip.AddrPortFrom(netip.IPv6Unspecified(), Port))
	if err != nil {
		return nil, fmt.Errorf("bfd listen on %s: %w", ifname, err)
	}
	l := &Listener{ifi: ifi, pc: ipv6.NewPacketConn(c)}
	if err := l.pc.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		_ = l.pc.Close()
		return nil, fmt.Errorf("bfd listen on %s: control messages: %w", ifname, err)
	}
	return l, nil
}

// listenUDP opens a UDP socket bound to the device ifi (before the bind,
// so that sockets on other interfaces may share the port) and to ap.
func listenUDP(ifi *net.Interface, ap netip.AddrPort) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), ifi.Name) }); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("bind to device: %w", serr)
		}
		return nil
	}}
	addr := ap.Addr()
	if addr.Is6() && addr.IsLinkLocalUnicast() {
		addr = addr.WithZone(zone(ifi))
	}
	return lc.ListenPacket(context.Background(), "udp6", netip.AddrPortFrom(addr, ap.Port()).String())
}

// zone is the IPv6 zone of ifi as its index: package net resolves zone
// names through a process-wide cache refreshed at most once a minute, so a
// name would find a stale index after the interface was re-created, or in
// another network namespace.
func zone(ifi *net.Interface) string { return strconv.Itoa(ifi.Index) }

// Interface returns the interface the Listener is bound to.
func (l *Listener) Interface() *net.Interface { return l.ifi }

// Close closes the socket; a running Serve returns nil.
func (l *Listener) Close() error { return l.pc.Close() }

// Read reads one packet into buf. Packets that arrived on another
// interface are skipped.
func (l *Listener) Read(buf []byte) (Received, error) {
	for {
		n, cm, from, err := l.pc.ReadFrom(buf)
		if err != nil {
			return Received{}, fmt.Errorf("bfd read on %s: %w", l.ifi.Name, err)
		}
		rx := Received{HopLimit: -1, Interface: l.ifi.Name, Payload: buf[:n]}
		if ua, ok := from.(*net.UDPAddr); ok {
			rx.Src, _ = netip.AddrFromSlice(ua.IP)
			rx.SrcPort = ua.Port
		}
		if cm != nil {
			if cm.IfIndex != 0 && cm.IfIndex != l.ifi.Index {
				continue
			}
			rx.HopLimit = cm.HopLimit
			rx.Dst, _ = netip.AddrFromSlice(cm.Dst)
		}
		return rx, nil
	}
}

// Serve reads packets and hands them to h until the Listener is closed
// (then it returns nil) or a read fails.
func (l *Listener) Serve(h Handler) error {
	buf := make([]byte, 1500)
	for {
		rx, err := l.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		h.HandlePacket(rx)
	}
}

// Conn sends one session's packets (it implements Sender): a UDP socket
// bound to the interface, to the session's local address and to a source
// port in 49152-65535 that it keeps for its lifetime (RFC 5881 §4), with
// hop limit 255 (RFC 5881 §5) and traffic class CS6. It is not connected,
// so ICMP errors from a peer that is not listening do not fail sends.
type Conn struct {
	ifname string
	pc     *ipv6.PacketConn
	dst    *net.UDPAddr
	port   int
}

// Dial opens the send socket of a session from local (invalid: the
// kernel's choice) to peer on ifname, in the network namespace of the
// calling thread.
func Dial(ifname string, local, peer netip.Addr) (*Conn, error) {
	if !peer.Is6() {
		return nil, fmt.Errorf("bfd dial %v on %s: not an ipv6 address", peer, ifname)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("bfd dial %v on %s: %w", peer, ifname, err)
	}
	if !local.IsValid() {
		local = netip.IPv6Unspecified()
	}
	dst := &net.UDPAddr{IP: peer.AsSlice(), Port: Port}
	if peer.IsLinkLocalUnicast() {
		dst.Zone = zone(ifi)
	}
	// The kernel's ephemeral range (32768-60999 by default) is not RFC
	// 5881's: pick ports in 49152-65535 until one is free.
	var (
		c    net.PacketConn
		port int
	)
	for range 64 {
		port = MinSourcePort + rand.IntN(MaxSourcePort-MinSourcePort+1)
		c, err = listenUDP(ifi, netip.AddrPortFrom(local.WithZone(""), uint16(port)))
		if !errors.Is(err, unix.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bfd dial %v on %s: %w", peer, ifname, err)
	}
	pc := ipv6.NewPacketConn(c)
	if err := pc.SetHopLimit(HopLimit); err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("bfd dial %v on %s: hop limit: %w", peer, ifname, err)
	}
	if err := pc.SetTrafficClass(TrafficClass); err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("bfd dial %v on %s: traffic class: %w", peer, ifname, err)
	}
	return &Conn{ifname: ifname, pc: pc, dst: dst, port: port}, nil
}

// SourcePort returns the UDP source port of the session's packets.
func (c *Conn) SourcePort() int { return c.port }

// Send sends one packet to the peer's port 3784. It implements Sender.
func (c *Conn) Send(pkt []byte) error {
	if _, err := c.pc.WriteTo(pkt, nil, c.dst); err != nil {
		return fmt.Errorf("bfd send to [%v]:%d on %s: %w", c.dst.IP, c.dst.Port, c.ifname, err)
	}
	return nil
}

// Close closes the socket.
func (c *Conn) Close() error { return c.pc.Close() }

// String describes the socket for logs.
func (c *Conn) String() string {
	return "bfd " + c.ifname + " :" + strconv.Itoa(c.port) + " -> " + c.dst.String()
}
