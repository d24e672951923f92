//go:build linux

package vrrp6

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"syscall"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Conn carries VRRP on one interface. It receives advertisements on a raw
// IPv6 socket (protocol 112, bound to the interface, joined to ff02::12,
// hop limit and destination from control messages) and sends whole
// Ethernet frames on an AF_PACKET socket, so the Ethernet source is the
// virtual MAC (RFC 9568 §7.3) without a macvlan device. One Conn serves
// all VRIDs of its interface and implements Sender for each of them.
type Conn struct {
	ifi *net.Interface
	log *slog.Logger
	ip  *ipv6.PacketConn
	pkt *packet.Conn
}

// Listen opens the sockets on interface ifname. It needs CAP_NET_RAW.
func Listen(ifname string, log *slog.Logger) (*Conn, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vrrp6 listen %s: %w", ifname, err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), ifname) }); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), fmt.Sprintf("ip6:%d", IPProtocol), "::")
	if err != nil {
		return nil, fmt.Errorf("vrrp6 listen %s: raw ipv6 socket: %w", ifname, err)
	}
	c := &Conn{ifi: ifi, log: log.With("interface", ifname), ip: ipv6.NewPacketConn(pc)}
	closeOnError := func(err error) (*Conn, error) {
		_ = c.Close()
		return nil, fmt.Errorf("vrrp6 listen %s: %w", ifname, err)
	}
	if err := c.ip.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		return closeOnError(fmt.Errorf("control messages: %w", err))
	}
	if err := c.ip.JoinGroup(ifi, &net.IPAddr{IP: GroupAddr.AsSlice()}); err != nil {
		return closeOnError(fmt.Errorf("join %v: %w", GroupAddr, err))
	}
	// Send-only AF_PACKET socket. It is bound to ETH_P_IPV6 so that sent
	// frames carry skb->protocol = IPv6 (tc/BPF egress classifies on it);
	// a drop-all filter, attached before bind, keeps it from queueing
	// every received IPv6 frame.
	drop, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		return closeOnError(fmt.Errorf("assemble filter: %w", err))
	}
	c.pkt, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_IPV6, &packet.Config{Filter: drop})
	if err != nil {
		return closeOnError(fmt.Errorf("packet socket: %w", err))
	}
	return c, nil
}

// Interface returns the interface the Conn is bound to.
func (c *Conn) Interface() *net.Interface { return c.ifi }

// Close closes both sockets; a running Serve returns nil.
func (c *Conn) Close() error {
	var errs []error
	if c.ip != nil {
		errs = append(errs, c.ip.Close())
	}
	if c.pkt != nil {
		errs = append(errs, c.pkt.Close())
	}
	return errors.Join(errs...)
}

// SendAdvert sends a frame built by BuildAdvertFrame. It implements Sender.
func (c *Conn) SendAdvert(frame []byte) error { return c.sendFrame(frame) }

// SendUnsolicitedNA sends a frame built by BuildUnsolicitedNA. It
// implements Sender.
func (c *Conn) SendUnsolicitedNA(frame []byte) error { return c.sendFrame(frame) }

func (c *Conn) sendFrame(frame []byte) error {
	if len(frame) < ethHeaderLen {
		return fmt.Errorf("vrrp6 send on %s: %w: frame of %d bytes", c.ifi.Name, ErrTruncated, len(frame))
	}
	to := &packet.Addr{HardwareAddr: net.HardwareAddr(frame[0:6])}
	_, err := c.pkt.WriteTo(frame, to)
	if errors.Is(err, unix.ENETDOWN) {
		// af_packet sets a pending ENETDOWN socket error when the link
		// goes down; the first send after the link is up again returns it
		// and sends nothing (a new Master's first advert would be lost
		// after a link flap). The error is consumed now: send once more,
		// which fails again only if the link is really down.
		_, err = c.pkt.WriteTo(frame, to)
	}
	if err != nil {
		return fmt.Errorf("vrrp6 send on %s: %w", c.ifi.Name, err)
	}
	return nil
}

// Received is one packet read from the raw socket.
type Received struct {
	Src, Dst netip.Addr
	HopLimit int // -1 when the kernel gave none
	Payload  []byte
}

// Read reads one VRRP packet into buf. Packets that arrived on another
// interface are skipped.
func (c *Conn) Read(buf []byte) (Received, error) {
	for {
		n, cm, from, err := c.ip.ReadFrom(buf)
		if err != nil {
			return Received{}, fmt.Errorf("vrrp6 read on %s: %w", c.ifi.Name, err)
		}
		rx := Received{HopLimit: -1, Payload: buf[:n]}
		if ia, ok := from.(*net.IPAddr); ok {
			rx.Src, _ = netip.AddrFromSlice(ia.IP)
		}
		if cm != nil {
			if cm.IfIndex != 0 && cm.IfIndex != c.ifi.Index {
				continue
			}
			rx.HopLimit = cm.HopLimit
			rx.Dst, _ = netip.AddrFromSlice(cm.Dst)
		}
		return rx, nil
	}
}

// Serve reads packets and hands them to d until the Conn is closed (then
// it returns nil) or a read fails.
func (c *Conn) Serve(d *Demux) error {
	buf := make([]byte, 65536)
	for {
		rx, err := c.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		d.HandleAdvert(rx.Src, rx.Dst, rx.HopLimit, rx.Payload)
	}
}

// LinkLocalAddr returns the first IPv6 link-local unicast address of ifi,
// the source of its advertisements (RFC 9568 §5.1.2.1).
func LinkLocalAddr(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if ok && ip.Is6() && !ip.Is4In6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s has no ipv6 link-local address", ifi.Name)
}
