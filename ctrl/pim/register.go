package pim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

// Register is a PIM Register message (RFC 7761 §4.9.3), unicast by a
// first-hop DR to the RP:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|B|N|                       Reserved2                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	.                     Multicast data packet                     .
//
// Its checksum covers only the PIM header and the flags word, not the
// data packet (see Checksum). The Reserved2 bits are ignored on receipt
// and sent as zero.
type Register struct {
	// Border is the B bit; RFC 7761 removed PMBR behaviour, so it is sent
	// as 0, but kept when received.
	Border bool
	// Null is the N bit: a Null-Register probing the RP before the
	// Register-Stop timer runs out (§4.4.1).
	Null bool
	// Packet is the encapsulated IPv6 packet, IPv6 header first; for a
	// Null-Register, a dummy IPv6 header (see NullRegister). It is copied
	// by Parse.
	Packet []byte
}

// NullRegister returns the Null-Register for (s, g): its data packet is a
// dummy IPv6 header from s to g with no payload (RFC 7761 §4.9.3).
func NullRegister(s, g netip.Addr) *Register {
	h := make([]byte, ipv6HeaderLen)
	h[0] = ipv6VersionByte
	h[6] = ipv6NoNextHdr
	h[7] = 1 // hop limit: never forwarded
	s16, g16 := s.As16(), g.As16()
	copy(h[8:24], s16[:])
	copy(h[24:40], g16[:])
	return &Register{Null: true, Packet: h}
}

// Inner returns the source and destination (group) addresses of the
// encapsulated IPv6 header, and false when Packet does not start with one.
func (r *Register) Inner() (src, dst netip.Addr, ok bool) {
	if len(r.Packet) < ipv6HeaderLen || r.Packet[0]>>4 != 6 {
		return netip.Addr{}, netip.Addr{}, false
	}
	return netip.AddrFrom16([16]byte(r.Packet[8:24])), netip.AddrFrom16([16]byte(r.Packet[24:40])), true
}

// Type implements Message.
func (*Register) Type() MessageType { return TypeRegister }

func (r *Register) appendTo(b []byte) ([]byte, error) {
	var flags uint32
	if r.Border {
		flags |= registerBorder
	}
	if r.Null {
		flags |= registerNull
	}
	b = binary.BigEndian.AppendUint32(b, flags)
	return append(b, r.Packet...), nil
}

func parseRegister(b []byte) (*Register, error) {
	if len(b) < registerHdrLen-headerLen {
		return nil, fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	flags := binary.BigEndian.Uint32(b)
	r := &Register{Border: flags&registerBorder != 0, Null: flags&registerNull != 0}
	if p := b[registerHdrLen-headerLen:]; len(p) > 0 {
		r.Packet = slices.Clone(p)
	}
	return r, nil
}

// RegisterStop is a PIM Register-Stop message (RFC 7761 §4.9.4), unicast
// by the RP to the DR that sent a Register:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|             Group Address (Encoded-Group format)              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Source Address (Encoded-Unicast format)            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type RegisterStop struct {
	Group Group
	// Source is the (S,G)'s source, the data packet's source address.
	Source netip.Addr
}

// Type implements Message.
func (*RegisterStop) Type() MessageType { return TypeRegisterStop }

func (m *RegisterStop) appendTo(b []byte) ([]byte, error) {
	b, err := appendGroup(b, m.Group)
	if err != nil {
		return nil, err
	}
	if b, err = appendUnicast(b, m.Source); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	return b, nil
}

func parseRegisterStop(b []byte) (*RegisterStop, error) {
	if len(b) < encGroupLen+encUnicastLen {
		return nil, fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	g, err := parseGroup(b)
	if err != nil {
		return nil, err
	}
	s, err := parseUnicast(b[encGroupLen:])
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	return &RegisterStop{Group: g, Source: s}, nil
}
