package vrrp6

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Frame layout constants.
const (
	EtherTypeIPv6 = 0x86dd
	ethHeaderLen  = 14
	ipv6HeaderLen = 40
	icmpv6Proto   = 58

	icmpTypeNA = 136
	naLen      = 24 // ICMPv6 header (4) + flags/reserved (4) + target (16)
	optTLLA    = 2  // Target Link-Layer Address option (RFC 4861 §4.6.1)

	naFlagRouter    = 0x80
	naFlagSolicited = 0x40
	naFlagOverride  = 0x20

	// TrafficClassNetworkControl is the IPv6 Traffic Class of the frames
	// built here: DSCP CS6, network control (RFC 4594). RFC 9568 leaves it
	// open.
	TrafficClassNetworkControl = 0xc0
)

// AllNodesAddr is the link-local all-nodes group ff02::1, the destination
// of unsolicited Neighbor Advertisements (RFC 4861 §7.2.6).
var AllNodesAddr = netip.AddrFrom16([16]byte{0xff, 0x02, 15: 0x01})

// Frame errors.
var (
	ErrNotIPv6      = errors.New("vrrp6: not an ipv6 frame")
	ErrBadIPv6      = errors.New("vrrp6: malformed ipv6 header")
	ErrNotVRRP      = errors.New("vrrp6: next header is not vrrp (112)")
	ErrNotNA        = errors.New("vrrp6: not an icmpv6 neighbor advertisement")
	ErrBadNA        = errors.New("vrrp6: malformed neighbor advertisement")
	ErrBadMAC       = errors.New("vrrp6: mac address is not 6 bytes")
	ErrBadLinkLocal = errors.New("vrrp6: source is not a link-local unicast address")
)

// VirtualMAC returns the virtual router MAC address of an IPv6 virtual
// router, 00-00-5E-00-02-{VRID} (RFC 9568 §7.3).
func VirtualMAC(vrid uint8) net.HardwareAddr {
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x02, vrid}
}

// MulticastMAC returns the Ethernet address an IPv6 multicast group maps to,
// 33-33 followed by the group's last 32 bits (RFC 2464 §7).
func MulticastMAC(group netip.Addr) net.HardwareAddr {
	a := group.As16()
	return net.HardwareAddr{0x33, 0x33, a[12], a[13], a[14], a[15]}
}

// IPv6Header holds the IPv6 fields of the frames built here. There are no
// extension headers.
type IPv6Header struct {
	TrafficClass uint8
	HopLimit     uint8
	Src, Dst     netip.Addr
}

// AdvertFrame is a VRRP advertisement as it appears on an Ethernet link.
type AdvertFrame struct {
	EthDst, EthSrc net.HardwareAddr
	IP             IPv6Header
	Advert         Advert
}

// NeighborAdvert is an ICMPv6 Neighbor Advertisement (RFC 4861 §4.4).
type NeighborAdvert struct {
	Router, Solicited, Override bool
	Target                      netip.Addr
	// TargetLLA is the Target Link-Layer Address option, nil when absent.
	TargetLLA net.HardwareAddr
}

// NAFrame is a Neighbor Advertisement as it appears on an Ethernet link.
type NAFrame struct {
	EthDst, EthSrc net.HardwareAddr
	IP             IPv6Header
	NA             NeighborAdvert
}

// BuildAdvertFrame builds the Ethernet frame a Master sends (RFC 9568
// §5.1.1, §5.1.2): Ethernet source the virtual MAC of a.VRID, destination
// 33:33:00:00:00:12; IPv6 source src (the interface's link-local address),
// destination ff02::12, hop limit 255, next header 112.
func BuildAdvertFrame(a *Advert, src netip.Addr) ([]byte, error) {
	if !src.Is6() || !src.IsLinkLocalUnicast() {
		return nil, fmt.Errorf("advert source %v: %w", src, ErrBadLinkLocal)
	}
	return (&AdvertFrame{
		EthDst: MulticastMAC(GroupAddr),
		EthSrc: VirtualMAC(a.VRID),
		IP: IPv6Header{
			TrafficClass: TrafficClassNetworkControl,
			HopLimit:     HopLimit,
			Src:          src,
			Dst:          GroupAddr,
		},
		Advert: *a,
	}).Marshal()
}

// Marshal encodes f, computing the VRRP checksum.
func (f *AdvertFrame) Marshal() ([]byte, error) {
	n := f.Advert.Len()
	b := make([]byte, ethHeaderLen+ipv6HeaderLen+n)
	if err := putEthIPv6(b, f.EthDst, f.EthSrc, &f.IP, IPProtocol, n); err != nil {
		return nil, err
	}
	if err := f.Advert.marshalTo(b[ethHeaderLen+ipv6HeaderLen:], f.IP.Src, f.IP.Dst); err != nil {
		return nil, err
	}
	return b, nil
}

// ParseAdvertFrame decodes an Ethernet frame carrying a VRRP advertisement
// and verifies its checksum. It does not apply the receive checks of RFC
// 9568 §7.1 on hop limit and addresses; the Router does.
func ParseAdvertFrame(b []byte) (*AdvertFrame, error) {
	var f AdvertFrame
	payload, err := parseEthIPv6(b, &f.EthDst, &f.EthSrc, &f.IP, IPProtocol, ErrNotVRRP)
	if err != nil {
		return nil, err
	}
	if err := VerifyChecksum(f.IP.Src, f.IP.Dst, payload); err != nil {
		return nil, err
	}
	a, err := Parse(payload)
	if err != nil {
		return nil, err
	}
	f.Advert = *a
	return &f, nil
}

// BuildUnsolicitedNA builds the unsolicited Neighbor Advertisement a new
// Master sends for each virtual address (RFC 9568 §6.4.1, §6.4.2; RFC 4861
// §7.2.6): Ethernet source the virtual MAC, destination ff02::1 (33:33:00:00:00:01),
// hop limit 255, Router and Override flags set, Solicited clear, Target
// Link-Layer Address option the virtual MAC. src is the IPv6 source; Linux
// uses the target address itself.
func BuildUnsolicitedNA(vrid uint8, src, target netip.Addr) ([]byte, error) {
	vmac := VirtualMAC(vrid)
	return (&NAFrame{
		EthDst: MulticastMAC(AllNodesAddr),
		EthSrc: vmac,
		IP: IPv6Header{
			TrafficClass: TrafficClassNetworkControl,
			HopLimit:     HopLimit,
			Src:          src,
			Dst:          AllNodesAddr,
		},
		NA: NeighborAdvert{
			Router:    true,
			Override:  true,
			Target:    target,
			TargetLLA: vmac,
		},
	}).Marshal()
}

// Marshal encodes f, computing the ICMPv6 checksum.
func (f *NAFrame) Marshal() ([]byte, error) {
	if !f.NA.Target.Is6() {
		return nil, fmt.Errorf("na target %v: %w", f.NA.Target, ErrBadAddress)
	}
	n := naLen
	if f.NA.TargetLLA != nil {
		if len(f.NA.TargetLLA) != 6 {
			return nil, fmt.Errorf("na target lla %v: %w", f.NA.TargetLLA, ErrBadMAC)
		}
		n += 8
	}
	b := make([]byte, ethHeaderLen+ipv6HeaderLen+n)
	if err := putEthIPv6(b, f.EthDst, f.EthSrc, &f.IP, icmpv6Proto, n); err != nil {
		return nil, err
	}
	p := b[ethHeaderLen+ipv6HeaderLen:]
	p[0] = icmpTypeNA
	var flags uint8
	if f.NA.Router {
		flags |= naFlagRouter
	}
	if f.NA.Solicited {
		flags |= naFlagSolicited
	}
	if f.NA.Override {
		flags |= naFlagOverride
	}
	p[4] = flags
	t := f.NA.Target.As16()
	copy(p[8:24], t[:])
	if f.NA.TargetLLA != nil {
		p[24] = optTLLA
		p[25] = 1 // length in units of 8 octets
		copy(p[26:32], f.NA.TargetLLA)
	}
	binary.BigEndian.PutUint16(p[2:4], checksum(f.IP.Src, f.IP.Dst, icmpv6Proto, p))
	return b, nil
}

// ParseNAFrame decodes an Ethernet frame carrying an ICMPv6 Neighbor
// Advertisement, verifying the checksum, code 0, the length and the
// options' lengths (RFC 4861 §7.1.2). Options other than the Target
// Link-Layer Address are skipped.
func ParseNAFrame(b []byte) (*NAFrame, error) {
	var f NAFrame
	p, err := parseEthIPv6(b, &f.EthDst, &f.EthSrc, &f.IP, icmpv6Proto, ErrNotNA)
	if err != nil {
		return nil, err
	}
	if len(p) < naLen {
		return nil, fmt.Errorf("%w: icmpv6 length %d", ErrTruncated, len(p))
	}
	if p[0] != icmpTypeNA {
		return nil, fmt.Errorf("%w: icmpv6 type %d", ErrNotNA, p[0])
	}
	if p[1] != 0 {
		return nil, fmt.Errorf("%w: code %d", ErrBadNA, p[1])
	}
	if checksum(f.IP.Src, f.IP.Dst, icmpv6Proto, p) != 0 {
		return nil, ErrBadChecksum
	}
	var lla net.HardwareAddr
	for opts := p[naLen:]; len(opts) > 0; {
		if len(opts) < 8 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return nil, fmt.Errorf("%w: bad option length", ErrBadNA)
		}
		l := int(opts[1]) * 8
		if opts[0] == optTLLA && lla == nil {
			if l != 8 {
				return nil, fmt.Errorf("%w: target lla option of %d bytes", ErrBadNA, l)
			}
			lla = net.HardwareAddr(bytes.Clone(opts[2:8]))
		}
		opts = opts[l:]
	}
	f.NA = NeighborAdvert{
		Router:    p[4]&naFlagRouter != 0,
		Solicited: p[4]&naFlagSolicited != 0,
		Override:  p[4]&naFlagOverride != 0,
		Target:    netip.AddrFrom16([16]byte(p[8:24])),
		TargetLLA: lla,
	}
	return &f, nil
}

func putEthIPv6(b []byte, dst, src net.HardwareAddr, ip *IPv6Header, next uint8, payloadLen int) error {
	if len(dst) != 6 || len(src) != 6 {
		return fmt.Errorf("ethernet %v -> %v: %w", src, dst, ErrBadMAC)
	}
	if !ip.Src.Is6() || !ip.Dst.Is6() {
		return fmt.Errorf("ipv6 %v -> %v: %w", ip.Src, ip.Dst, ErrBadAddress)
	}
	if payloadLen > 0xffff {
		return fmt.Errorf("%w: payload of %d bytes", ErrBadIPv6, payloadLen)
	}
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:14], EtherTypeIPv6)
	h := b[ethHeaderLen:]
	binary.BigEndian.PutUint32(h[0:4], 6<<28|uint32(ip.TrafficClass)<<20)
	binary.BigEndian.PutUint16(h[4:6], uint16(payloadLen))
	h[6] = next
	h[7] = ip.HopLimit
	s, d := ip.Src.As16(), ip.Dst.As16()
	copy(h[8:24], s[:])
	copy(h[24:40], d[:])
	return nil
}

// parseEthIPv6 checks the Ethernet and IPv6 headers of b and returns the
// IPv6 payload (Ethernet padding past the IPv6 payload length is cut).
func parseEthIPv6(b []byte, dst, src *net.HardwareAddr, ip *IPv6Header, next uint8, errNext error) ([]byte, error) {
	if len(b) < ethHeaderLen+ipv6HeaderLen {
		return nil, fmt.Errorf("%w: frame of %d bytes", ErrTruncated, len(b))
	}
	if et := binary.BigEndian.Uint16(b[12:14]); et != EtherTypeIPv6 {
		return nil, fmt.Errorf("%w: ethertype %#04x", ErrNotIPv6, et)
	}
	h := b[ethHeaderLen:]
	if h[0]>>4 != 6 {
		return nil, fmt.Errorf("%w: version %d", ErrBadIPv6, h[0]>>4)
	}
	if h[6] != next {
		return nil, fmt.Errorf("%w: next header %d", errNext, h[6])
	}
	pl := int(binary.BigEndian.Uint16(h[4:6]))
	if len(h)-ipv6HeaderLen < pl {
		return nil, fmt.Errorf("%w: ipv6 payload length %d, frame holds %d", ErrTruncated, pl, len(h)-ipv6HeaderLen)
	}
	*dst = net.HardwareAddr(bytes.Clone(b[0:6]))
	*src = net.HardwareAddr(bytes.Clone(b[6:12]))
	*ip = IPv6Header{
		TrafficClass: uint8(binary.BigEndian.Uint32(h[0:4]) >> 20),
		HopLimit:     h[7],
		Src:          netip.AddrFrom16([16]byte(h[8:24])),
		Dst:          netip.AddrFrom16([16]byte(h[24:40])),
	}
	return h[ipv6HeaderLen : ipv6HeaderLen+pl], nil
}
