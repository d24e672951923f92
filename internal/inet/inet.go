// Package inet holds the IPv6 arithmetic several protocols share: the
// upper-layer checksum over the pseudo-header, and multicast scopes.
package inet

import "net/netip"

// IPv6 next-header values of the protocols hotcast speaks.
const (
	ProtoUDP    = 17
	ProtoICMPv6 = 58
	ProtoVRRP   = 112
	ProtoPIM    = 103
)

// Checksum returns the Internet checksum (RFC 1071) of the upper-layer
// payload b behind the IPv6 pseudo-header of src, dst and next header
// (RFC 8200 §8.1), with the 16-bit word at offset field (the checksum
// field) taken as zero; field < 0 takes b as it is. With the field taken as
// zero it returns the value to store; over a payload whose checksum is
// correct, with field < 0, it returns 0.
func Checksum(src, dst netip.Addr, next uint8, b []byte, field int) uint16 {
	var sum uint64
	s, d := src.As16(), dst.As16()
	for i := 0; i < 16; i += 2 {
		sum += uint64(s[i])<<8 | uint64(s[i+1])
		sum += uint64(d[i])<<8 | uint64(d[i+1])
	}
	l := uint64(uint32(len(b)))
	sum += l>>16 + l&0xffff
	sum += uint64(next)
	for i := 0; i+1 < len(b); i += 2 {
		if i == field {
			continue
		}
		sum += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// UDPChecksum is the checksum to store in the UDP datagram b (its checksum
// field, octets 6-7, taken as zero): a computed zero is sent as 0xffff,
// since zero means none, which IPv6 forbids (RFC 8200 §8.1).
func UDPChecksum(src, dst netip.Addr, b []byte) uint16 {
	c := Checksum(src, dst, ProtoUDP, b, 6)
	if c == 0 {
		c = 0xffff
	}
	return c
}

// MulticastScope is the scope field of an IPv6 multicast address (RFC 4291
// §2.7): 1 interface-local, 2 link-local, 5 site-local, 14 global.
func MulticastScope(a netip.Addr) int { return int(a.As16()[1] & 0x0f) }

// LinkScope reports whether multicast group g is interface- or link-local
// (or of a reserved scope below those), which is never routed.
func LinkScope(g netip.Addr) bool { return MulticastScope(g) <= 2 }
