package pim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/hotcast/hotcast/internal/inet"
)

// MessageType is the Type field of the PIM header (RFC 7761 §4.9).
type MessageType uint8

// PIM message types (RFC 7761 §4.9). The codec implements those PIM-SM with
// a static RP needs: Hello, Register, Register-Stop, Join/Prune and Assert.
const (
	TypeHello        MessageType = 0
	TypeRegister     MessageType = 1
	TypeRegisterStop MessageType = 2
	TypeJoinPrune    MessageType = 3
	TypeBootstrap    MessageType = 4 // not implemented (RFC 5059)
	TypeAssert       MessageType = 5
	TypeGraft        MessageType = 6 // PIM-DM only, not implemented
	TypeGraftAck     MessageType = 7 // PIM-DM only, not implemented
	TypeCandRPAdvert MessageType = 8 // not implemented (RFC 5059)
)

func (t MessageType) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeRegister:
		return "register"
	case TypeRegisterStop:
		return "register-stop"
	case TypeJoinPrune:
		return "join-prune"
	case TypeBootstrap:
		return "bootstrap"
	case TypeAssert:
		return "assert"
	case TypeGraft:
		return "graft"
	case TypeGraftAck:
		return "graft-ack"
	case TypeCandRPAdvert:
		return "candidate-rp-advertisement"
	}
	return fmt.Sprintf("type-%d", uint8(t))
}

// Protocol constants (RFC 7761 §4.9, §4.11).
const (
	// IPProtocol is the IPv6 Next Header value of PIM.
	IPProtocol = inet.ProtoPIM
	// Version is the PIM version this package speaks (RFC 7761 §4.9).
	Version = 2
	// HopLimit is the IPv6 hop limit of the link-local messages (Hello,
	// Join/Prune, Assert): they are sent to ALL-PIM-ROUTERS with TTL 1
	// (RFC 7761 §4.9).
	HopLimit = 1

	headerLen       = 4  // version/type, reserved, checksum
	registerHdrLen  = 8  // the part of a Register the checksum covers (§4.9.3)
	encUnicastLen   = 18 // IPv6 Encoded-Unicast address (§4.9.1)
	encGroupLen     = 20 // IPv6 Encoded-Group address
	encSourceLen    = 20 // IPv6 Encoded-Source address
	familyIPv6      = 2  // IANA Address Family Numbers: IP version 6
	encodingNative  = 0  // the native encoding of the family (§4.9.1)
	maxMaskLen      = 128
	maxMessageLen   = 0xffff
	checksumOffset  = 2
	maxMetricPref   = 0x7fffffff
	rptBit          = 0x80000000
	groupFlagBidir  = 0x80 // B bit of an Encoded-Group address (RFC 5015)
	groupFlagZone   = 0x01 // Z bit: admin scope zone (RFC 5059)
	sourceFlagS     = 0x04 // Sparse bit of an Encoded-Source address
	sourceFlagW     = 0x02 // WildCard bit
	sourceFlagR     = 0x01 // RPT bit
	registerBorder  = 0x80000000
	registerNull    = 0x40000000
	ipv6HeaderLen   = 40
	ipv6NoNextHdr   = 59
	ipv6VersionByte = 0x60
)

// AllPIMRouters is ff02::d, the destination of Hello, Join/Prune and
// Assert messages (RFC 7761 §4.9).
var AllPIMRouters = netip.AddrFrom16([16]byte{0xff, 0x02, 15: 0x0d})

// Sentinel errors returned (wrapped) by Parse, Marshal and Verify; callers
// count drops by them with errors.Is.
var (
	ErrTruncated   = errors.New("pim: message truncated")
	ErrBadVersion  = errors.New("pim: version is not 2")
	ErrUnknownType = errors.New("pim: unsupported message type")
	ErrBadChecksum = errors.New("pim: bad checksum")
	ErrBadAddress  = errors.New("pim: invalid encoded address")
	ErrBadOption   = errors.New("pim: malformed hello option")
	ErrBadField    = errors.New("pim: field out of range")
	ErrTooLarge    = errors.New("pim: message too large")
)

// Message is one PIM message.
type Message interface {
	// Type returns the PIM message type.
	Type() MessageType
	// appendTo appends the message body, the octets after the 4-octet
	// PIM header.
	appendTo(b []byte) ([]byte, error)
}

// Marshal returns the wire form of m, PIM header first, with the checksum
// computed over the IPv6 pseudo-header of src and dst (RFC 7761 §4.9): over
// the whole message, except for a Register, where only the first 8 octets
// are covered and the pseudo-header's length is 8 (§4.9.3).
func Marshal(m Message, src, dst netip.Addr) ([]byte, error) {
	if !src.Is6() || !dst.Is6() {
		return nil, fmt.Errorf("marshal %v: pseudo-header %v -> %v: %w", m.Type(), src, dst, ErrBadAddress)
	}
	b := make([]byte, headerLen, 64)
	b[0] = Version<<4 | byte(m.Type())
	b, err := m.appendTo(b)
	if err != nil {
		return nil, fmt.Errorf("marshal %v: %w", m.Type(), err)
	}
	if len(b) > maxMessageLen {
		return nil, fmt.Errorf("marshal %v of %d octets: %w", m.Type(), len(b), ErrTooLarge)
	}
	binary.BigEndian.PutUint16(b[checksumOffset:], Checksum(src, dst, b))
	return b, nil
}

// Checksum returns the checksum to store in the PIM message b sent from src
// to dst: the Internet checksum over the IPv6 pseudo-header (next header
// 103) and the message with its checksum field taken as zero, or, for a
// Register, over its first 8 octets with a pseudo-header length of 8
// (RFC 7761 §4.9, §4.9.3).
func Checksum(src, dst netip.Addr, b []byte) uint16 {
	if len(b) >= registerHdrLen && MessageType(b[0]&0x0f) == TypeRegister {
		b = b[:registerHdrLen]
	}
	return inet.Checksum(src, dst, IPProtocol, b, checksumOffset)
}

// Verify checks the checksum of the PIM message b received from src to
// dst. A Register is also accepted with a checksum over the whole message,
// for interoperability (RFC 7761 §4.9.3).
func Verify(src, dst netip.Addr, b []byte) error {
	if len(b) < headerLen {
		return fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	got := binary.BigEndian.Uint16(b[checksumOffset:])
	want := Checksum(src, dst, b)
	if got == want {
		return nil
	}
	if MessageType(b[0]&0x0f) == TypeRegister && got == inet.Checksum(src, dst, IPProtocol, b, checksumOffset) {
		return nil
	}
	return fmt.Errorf("%v checksum %#04x, want %#04x: %w", MessageType(b[0]&0x0f), got, want, ErrBadChecksum)
}

// Parse decodes one PIM message, PIM header first. It checks the version,
// the type and the structure of the body, not the checksum (see Verify).
// The reserved octet of the header is ignored (RFC 7761 §4.9; RFC 8736
// gives it flag meanings no message here uses), as are trailing octets after
// a Join/Prune's last group, a Register-Stop or an Assert.
func Parse(b []byte) (Message, error) {
	if len(b) < headerLen {
		return nil, fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	if v := b[0] >> 4; v != Version {
		return nil, fmt.Errorf("version %d: %w", v, ErrBadVersion)
	}
	t := MessageType(b[0] & 0x0f)
	var (
		m   Message
		err error
	)
	switch t {
	case TypeHello:
		m, err = parseHello(b[headerLen:])
	case TypeRegister:
		m, err = parseRegister(b[headerLen:])
	case TypeRegisterStop:
		m, err = parseRegisterStop(b[headerLen:])
	case TypeJoinPrune:
		m, err = parseJoinPrune(b[headerLen:])
	case TypeAssert:
		m, err = parseAssert(b[headerLen:])
	default:
		return nil, fmt.Errorf("%v: %w", t, ErrUnknownType)
	}
	if err != nil {
		return nil, fmt.Errorf("%v: %w", t, err)
	}
	return m, nil
}

// Group is an Encoded-Group address (RFC 7761 §4.9.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Addr Family  | Encoding Type |B| Reserved  |Z|  Mask Len     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                Group multicast Address ...
//
// Only the IPv6 family (2) in the native encoding (0) is accepted. The
// reserved bits are ignored on receipt and sent as zero.
type Group struct {
	Addr netip.Addr
	// MaskLen is 128 for a single group; smaller for a range of groups.
	MaskLen uint8
	// Bidir is the B bit: a bidirectional PIM range (RFC 5015).
	Bidir bool
	// AdminScope is the Z bit: an admin-scope zone (RFC 5059).
	AdminScope bool
}

// SingleGroup is the Encoded-Group form of one group: mask length 128.
func SingleGroup(g netip.Addr) Group { return Group{Addr: g, MaskLen: maxMaskLen} }

// Source is an Encoded-Source address (RFC 7761 §4.9.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Addr Family   | Encoding Type | Rsrvd   |S|W|R|  Mask Len     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Source Address ...
//
// In a Join/Prune, a (*,G) entry carries the RP's address with W and R
// set, an (S,G) entry neither, an (S,G,rpt) entry R only (§4.9.5.1).
// The mask length must be 128 (§4.9.1: receivers should ignore messages
// with another one); the codec keeps it so that the receiver can.
type Source struct {
	Addr    netip.Addr
	MaskLen uint8
	// Sparse is the S bit, set to 1 for PIM-SM (kept for PIMv1
	// compatibility).
	Sparse bool
	// Wildcard is the W bit: the entry is (*,G) and Addr is the RP.
	Wildcard bool
	// RPT is the R bit: the entry applies to the RP tree.
	RPT bool
}

// EntryKind is the kind of tree a Join/Prune source entry refers to.
type EntryKind uint8

// Join/Prune entry kinds (RFC 7761 §4.9.5.1).
const (
	KindInvalid EntryKind = iota // W set without R: not defined by RFC 7761
	KindStarG                    // (*,G): W and R
	KindSG                       // (S,G): neither W nor R
	KindSGRpt                    // (S,G,rpt): R only
)

func (k EntryKind) String() string {
	switch k {
	case KindStarG:
		return "(*,G)"
	case KindSG:
		return "(S,G)"
	case KindSGRpt:
		return "(S,G,rpt)"
	}
	return "invalid"
}

// Kind tells which entry s is from its W and R bits.
func (s Source) Kind() EntryKind {
	switch {
	case s.Wildcard && s.RPT:
		return KindStarG
	case s.Wildcard:
		return KindInvalid
	case s.RPT:
		return KindSGRpt
	}
	return KindSG
}

// StarG is the (*,G) entry towards rp: S, W and R set, mask length 128.
func StarG(rp netip.Addr) Source {
	return Source{Addr: rp, MaskLen: maxMaskLen, Sparse: true, Wildcard: true, RPT: true}
}

// SG is the (S,G) entry for source s: S set, mask length 128.
func SG(s netip.Addr) Source { return Source{Addr: s, MaskLen: maxMaskLen, Sparse: true} }

// SGRpt is the (S,G,rpt) entry for source s: S and R set, mask length 128.
func SGRpt(s netip.Addr) Source {
	return Source{Addr: s, MaskLen: maxMaskLen, Sparse: true, RPT: true}
}

// addr16 returns the 16-octet form of an IPv6 address without a zone.
func addr16(a netip.Addr) ([16]byte, error) {
	if !a.Is6() || a.Zone() != "" {
		return [16]byte{}, fmt.Errorf("%v: %w", a, ErrBadAddress)
	}
	return a.As16(), nil
}

// appendUnicast appends the Encoded-Unicast form of a (RFC 7761 §4.9.1).
func appendUnicast(b []byte, a netip.Addr) ([]byte, error) {
	a16, err := addr16(a)
	if err != nil {
		return nil, err
	}
	b = append(b, familyIPv6, encodingNative)
	return append(b, a16[:]...), nil
}

func appendGroup(b []byte, g Group) ([]byte, error) {
	a16, err := addr16(g.Addr)
	if err != nil {
		return nil, fmt.Errorf("group: %w", err)
	}
	if g.MaskLen > maxMaskLen {
		return nil, fmt.Errorf("group %v mask length %d: %w", g.Addr, g.MaskLen, ErrBadField)
	}
	var flags byte
	if g.Bidir {
		flags |= groupFlagBidir
	}
	if g.AdminScope {
		flags |= groupFlagZone
	}
	b = append(b, familyIPv6, encodingNative, flags, g.MaskLen)
	return append(b, a16[:]...), nil
}

func appendSource(b []byte, s Source) ([]byte, error) {
	a16, err := addr16(s.Addr)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if s.MaskLen > maxMaskLen {
		return nil, fmt.Errorf("source %v mask length %d: %w", s.Addr, s.MaskLen, ErrBadField)
	}
	var flags byte
	if s.Sparse {
		flags |= sourceFlagS
	}
	if s.Wildcard {
		flags |= sourceFlagW
	}
	if s.RPT {
		flags |= sourceFlagR
	}
	b = append(b, familyIPv6, encodingNative, flags, s.MaskLen)
	return append(b, a16[:]...), nil
}

// checkFamily checks the address family and encoding type octets that
// start every encoded address.
func checkFamily(b []byte) error {
	if b[0] != familyIPv6 {
		return fmt.Errorf("address family %d: %w", b[0], ErrBadAddress)
	}
	if b[1] != encodingNative {
		return fmt.Errorf("encoding type %d: %w", b[1], ErrBadAddress)
	}
	return nil
}

// parseUnicast decodes an Encoded-Unicast address at the start of b.
func parseUnicast(b []byte) (netip.Addr, error) {
	if len(b) < encUnicastLen {
		return netip.Addr{}, fmt.Errorf("encoded-unicast address in %d octets: %w", len(b), ErrTruncated)
	}
	if err := checkFamily(b); err != nil {
		return netip.Addr{}, err
	}
	return netip.AddrFrom16([16]byte(b[2:encUnicastLen])), nil
}

// parseGroup decodes an Encoded-Group address at the start of b.
func parseGroup(b []byte) (Group, error) {
	if len(b) < encGroupLen {
		return Group{}, fmt.Errorf("encoded-group address in %d octets: %w", len(b), ErrTruncated)
	}
	if err := checkFamily(b); err != nil {
		return Group{}, err
	}
	if b[3] > maxMaskLen {
		return Group{}, fmt.Errorf("group mask length %d: %w", b[3], ErrBadAddress)
	}
	return Group{
		Addr:       netip.AddrFrom16([16]byte(b[4:encGroupLen])),
		MaskLen:    b[3],
		Bidir:      b[2]&groupFlagBidir != 0,
		AdminScope: b[2]&groupFlagZone != 0,
	}, nil
}

// parseSource decodes an Encoded-Source address at the start of b.
func parseSource(b []byte) (Source, error) {
	if len(b) < encSourceLen {
		return Source{}, fmt.Errorf("encoded-source address in %d octets: %w", len(b), ErrTruncated)
	}
	if err := checkFamily(b); err != nil {
		return Source{}, err
	}
	if b[3] > maxMaskLen {
		return Source{}, fmt.Errorf("source mask length %d: %w", b[3], ErrBadAddress)
	}
	return Source{
		Addr:     netip.AddrFrom16([16]byte(b[4:encSourceLen])),
		MaskLen:  b[3],
		Sparse:   b[2]&sourceFlagS != 0,
		Wildcard: b[2]&sourceFlagW != 0,
		RPT:      b[2]&sourceFlagR != 0,
	}, nil
}
