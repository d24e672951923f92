// Package mld implements the router side of Multicast Listener Discovery:
// MLDv1 (RFC 2710) and MLDv2 (RFC 3810), the SSM rules of RFC 4604, a small
// MLD proxy host side (RFC 4605) and a Linux raw-socket transport.
//
// This file holds the message codec. All byte slices start at the ICMPv6
// header (type, code, checksum); the IPv6 header and extension headers are
// the transport's business.
package mld

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/hotcast/hotcast/internal/inet"
	"math/bits"
	"net/netip"
	"time"
)

// MessageType is the ICMPv6 type of an MLD message.
type MessageType uint8

// ICMPv6 types used by MLD (RFC 2710 §3, RFC 3810 §5).
const (
	TypeQuery    MessageType = 130 // Multicast Listener Query (v1 and v2)
	TypeV1Report MessageType = 131 // MLDv1 Multicast Listener Report
	TypeV1Done   MessageType = 132 // MLDv1 Multicast Listener Done
	TypeV2Report MessageType = 143 // MLDv2 Multicast Listener Report
)

func (t MessageType) String() string {
	switch t {
	case TypeQuery:
		return "query"
	case TypeV1Report:
		return "v1-report"
	case TypeV1Done:
		return "v1-done"
	case TypeV2Report:
		return "v2-report"
	}
	return fmt.Sprintf("type-%d", uint8(t))
}

// RecordType is the type of an MLDv2 multicast address record (RFC 3810 §5.2.12).
type RecordType uint8

// Multicast address record types (RFC 3810 §5.2.12).
const (
	ModeIsInclude        RecordType = 1 // IS_IN: current-state record
	ModeIsExclude        RecordType = 2 // IS_EX: current-state record
	ChangeToInclude      RecordType = 3 // TO_IN: filter-mode-change record
	ChangeToExclude      RecordType = 4 // TO_EX: filter-mode-change record
	AllowNewSources      RecordType = 5 // ALLOW: source-list-change record
	BlockOldSources      RecordType = 6 // BLOCK: source-list-change record
	minRecordType                   = ModeIsInclude
	maxRecordType                   = BlockOldSources
	recordHeaderLen                 = 20
	v1Len                           = 24 // MLDv1 messages and MLDv1 queries (RFC 2710 §3)
	v2QueryMinLen                   = 28 // RFC 3810 §5.1
	v2ReportHeaderLen               = 8  // RFC 3810 §5.2
	maxRespCodeThreshold            = 32768
	qqicThreshold                   = 128
)

func (t RecordType) String() string {
	switch t {
	case ModeIsInclude:
		return "IS_IN"
	case ModeIsExclude:
		return "IS_EX"
	case ChangeToInclude:
		return "TO_IN"
	case ChangeToExclude:
		return "TO_EX"
	case AllowNewSources:
		return "ALLOW"
	case BlockOldSources:
		return "BLOCK"
	}
	return fmt.Sprintf("record-%d", uint8(t))
}

// Sentinel errors returned by Parse and Verify; callers count drops by them.
var (
	ErrTruncated    = errors.New("mld: message truncated")
	ErrBadLength    = errors.New("mld: invalid query length") // RFC 3810 §8.1: 25..27 octets
	ErrBadChecksum  = errors.New("mld: bad checksum")
	ErrUnknownType  = errors.New("mld: unknown message type")
	ErrBadRecord    = errors.New("mld: malformed multicast address record")
	ErrBadAddress   = errors.New("mld: invalid address")
	ErrTooLarge     = errors.New("mld: message too large")
	ErrNotMulticast = errors.New("mld: group is not a multicast address")
)

// Message is one MLD message.
type Message interface {
	// Type returns the ICMPv6 type.
	Type() MessageType
	// appendTo appends the wire form with a zero checksum.
	appendTo(b []byte) ([]byte, error)
}

// Query is a Multicast Listener Query (RFC 2710 §3.6, RFC 3810 §5.1).
// Version 1 queries are exactly 24 octets; version 2 queries at least 28
// (RFC 3810 §8.1). Fields that do not exist in v1 are ignored when
// marshalling a v1 query and zero after parsing one.
type Query struct {
	Version int // 1 or 2
	// MaxRespCode is the raw Maximum Response Code: plain milliseconds in
	// v1, the RFC 3810 §5.1.3 encoding in v2. See MaxResponseDelay.
	MaxRespCode uint16
	Group       netip.Addr // zero Addr (Parse) or :: for a general query
	Suppress    bool       // S flag, RFC 3810 §5.1.7
	QRV         uint8      // Querier's Robustness Variable, 0..7 (§5.1.8)
	QQIC        uint8      // Querier's Query Interval Code (§5.1.9)
	Sources     []netip.Addr
}

// Type implements Message.
func (*Query) Type() MessageType { return TypeQuery }

// MaxResponseDelay returns the decoded Maximum Response Delay.
func (q *Query) MaxResponseDelay() time.Duration {
	if q.Version == 1 {
		return time.Duration(q.MaxRespCode) * time.Millisecond
	}
	return DecodeMaxRespCode(q.MaxRespCode)
}

// QueryInterval returns the decoded Querier's Query Interval (v2 only).
func (q *Query) QueryInterval() time.Duration { return DecodeQQIC(q.QQIC) }

// IsGeneral reports whether q is a general query (group ::).
func (q *Query) IsGeneral() bool { return !q.Group.IsValid() || q.Group.IsUnspecified() }

func (q *Query) appendTo(b []byte) ([]byte, error) {
	g, err := addr16(q.Group, true)
	if err != nil {
		return nil, fmt.Errorf("query group: %w", err)
	}
	switch q.Version {
	case 1:
		b = append(b, byte(TypeQuery), 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, q.MaxRespCode)
		b = append(b, 0, 0)
		return append(b, g[:]...), nil
	case 2:
	default:
		return nil, fmt.Errorf("query version %d: %w", q.Version, ErrBadLength)
	}
	if len(q.Sources) > 0xffff {
		return nil, fmt.Errorf("query with %d sources: %w", len(q.Sources), ErrTooLarge)
	}
	b = append(b, byte(TypeQuery), 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, q.MaxRespCode)
	b = append(b, 0, 0)
	b = append(b, g[:]...)
	flags := q.QRV & 7
	if q.Suppress {
		flags |= 1 << 3
	}
	b = append(b, flags, q.QQIC)
	b = binary.BigEndian.AppendUint16(b, uint16(len(q.Sources)))
	for i, s := range q.Sources {
		a, err := addr16(s, false)
		if err != nil {
			return nil, fmt.Errorf("query source %d: %w", i, err)
		}
		b = append(b, a[:]...)
	}
	return b, nil
}

// V1Report is an MLDv1 Multicast Listener Report (RFC 2710 §3).
type V1Report struct{ Group netip.Addr }

// Type implements Message.
func (*V1Report) Type() MessageType { return TypeV1Report }

func (m *V1Report) appendTo(b []byte) ([]byte, error) { return appendV1(b, TypeV1Report, m.Group) }

// V1Done is an MLDv1 Multicast Listener Done (RFC 2710 §3).
type V1Done struct{ Group netip.Addr }

// Type implements Message.
func (*V1Done) Type() MessageType { return TypeV1Done }

func (m *V1Done) appendTo(b []byte) ([]byte, error) { return appendV1(b, TypeV1Done, m.Group) }

func appendV1(b []byte, t MessageType, group netip.Addr) ([]byte, error) {
	g, err := addr16(group, true)
	if err != nil {
		return nil, fmt.Errorf("%v group: %w", t, err)
	}
	b = append(b, byte(t), 0, 0, 0, 0, 0, 0, 0)
	return append(b, g[:]...), nil
}

// Record is an MLDv2 multicast address record (RFC 3810 §5.2.4-5.2.12).
// Auxiliary data is skipped when parsing and never sent (§5.2.10).
// Records of unknown type are kept by Parse (Type outside 1..6) so that
// callers can ignore them as §5.2.12 requires.
type Record struct {
	Type    RecordType
	Group   netip.Addr
	Sources []netip.Addr
}

// V2Report is an MLDv2 Multicast Listener Report (RFC 3810 §5.2).
type V2Report struct{ Records []Record }

// Type implements Message.
func (*V2Report) Type() MessageType { return TypeV2Report }

func (m *V2Report) appendTo(b []byte) ([]byte, error) {
	if len(m.Records) > 0xffff {
		return nil, fmt.Errorf("report with %d records: %w", len(m.Records), ErrTooLarge)
	}
	b = append(b, byte(TypeV2Report), 0, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Records)))
	for i, r := range m.Records {
		if len(r.Sources) > 0xffff {
			return nil, fmt.Errorf("record %d with %d sources: %w", i, len(r.Sources), ErrTooLarge)
		}
		g, err := addr16(r.Group, false)
		if err != nil {
			return nil, fmt.Errorf("record %d group: %w", i, err)
		}
		b = append(b, byte(r.Type), 0)
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.Sources)))
		b = append(b, g[:]...)
		for j, s := range r.Sources {
			a, err := addr16(s, false)
			if err != nil {
				return nil, fmt.Errorf("record %d source %d: %w", i, j, err)
			}
			b = append(b, a[:]...)
		}
	}
	return b, nil
}

// addr16 returns the 16-octet form of a; an invalid address is :: when
// zeroOK, an error otherwise. IPv4 addresses (not IPv4-mapped ones) are rejected.
func addr16(a netip.Addr, zeroOK bool) ([16]byte, error) {
	if !a.IsValid() {
		if zeroOK {
			return [16]byte{}, nil
		}
		return [16]byte{}, ErrBadAddress
	}
	if !a.Is6() || a.Zone() != "" {
		return [16]byte{}, fmt.Errorf("%v: %w", a, ErrBadAddress)
	}
	return a.As16(), nil
}

// Marshal returns the wire form of m with the ICMPv6 checksum computed over
// the IPv6 pseudo-header of src and dst (RFC 4443 §2.3, RFC 2460 §8.1).
func Marshal(m Message, src, dst netip.Addr) ([]byte, error) {
	b, err := m.appendTo(make([]byte, 0, 64))
	if err != nil {
		return nil, fmt.Errorf("marshal %v: %w", m.Type(), err)
	}
	if len(b) > 0xffff {
		return nil, fmt.Errorf("marshal %v of %d octets: %w", m.Type(), len(b), ErrTooLarge)
	}
	binary.BigEndian.PutUint16(b[2:4], Checksum(src, dst, b))
	return b, nil
}

// Parse decodes one MLD message. It checks lengths and structure but not
// the checksum: see Verify. Trailing octets after a v1 message, a v2 query's
// sources or a v2 report's last record are ignored (RFC 3810 §5.1.12,
// §5.2.11).
func Parse(b []byte) (Message, error) {
	if len(b) < 4 {
		return nil, ErrTruncated
	}
	switch MessageType(b[0]) {
	case TypeQuery:
		return parseQuery(b)
	case TypeV1Report, TypeV1Done:
		if len(b) < v1Len {
			return nil, fmt.Errorf("%v of %d octets: %w", MessageType(b[0]), len(b), ErrTruncated)
		}
		g := netip.AddrFrom16([16]byte(b[8:24]))
		if MessageType(b[0]) == TypeV1Report {
			return &V1Report{Group: g}, nil
		}
		return &V1Done{Group: g}, nil
	case TypeV2Report:
		return parseV2Report(b)
	}
	return nil, fmt.Errorf("icmpv6 type %d: %w", b[0], ErrUnknownType)
}

// parseQuery implements the length rules of RFC 3810 §8.1: 24 octets is
// MLDv1, 28 or more MLDv2, anything else is ignored.
func parseQuery(b []byte) (*Query, error) {
	switch {
	case len(b) < v1Len:
		return nil, fmt.Errorf("query of %d octets: %w", len(b), ErrTruncated)
	case len(b) == v1Len:
		return &Query{
			Version:     1,
			MaxRespCode: binary.BigEndian.Uint16(b[4:6]),
			Group:       groupOrZero(b[8:24]),
		}, nil
	case len(b) < v2QueryMinLen:
		return nil, fmt.Errorf("query of %d octets: %w", len(b), ErrBadLength)
	}
	n := int(binary.BigEndian.Uint16(b[26:28]))
	if len(b) < v2QueryMinLen+16*n {
		return nil, fmt.Errorf("query with %d sources in %d octets: %w", n, len(b), ErrTruncated)
	}
	var srcs []netip.Addr
	if n > 0 {
		srcs = make([]netip.Addr, n)
		for i := range srcs {
			off := v2QueryMinLen + 16*i
			srcs[i] = netip.AddrFrom16([16]byte(b[off : off+16]))
		}
	}
	return &Query{
		Version:     2,
		MaxRespCode: binary.BigEndian.Uint16(b[4:6]),
		Group:       groupOrZero(b[8:24]),
		Suppress:    b[24]&0x08 != 0,
		QRV:         b[24] & 7,
		QQIC:        b[25],
		Sources:     srcs,
	}, nil
}

// groupOrZero returns the address, or the zero Addr for :: so that general
// queries compare equal however they were built.
func groupOrZero(b []byte) netip.Addr {
	a := netip.AddrFrom16([16]byte(b))
	if a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

func parseV2Report(b []byte) (*V2Report, error) {
	if len(b) < v2ReportHeaderLen {
		return nil, fmt.Errorf("v2 report of %d octets: %w", len(b), ErrTruncated)
	}
	n := int(binary.BigEndian.Uint16(b[6:8]))
	// Each record needs at least 20 octets: bound the allocation first.
	if (len(b)-v2ReportHeaderLen)/recordHeaderLen < n {
		return nil, fmt.Errorf("v2 report with %d records in %d octets: %w", n, len(b), ErrTruncated)
	}
	var recs []Record
	if n > 0 {
		recs = make([]Record, 0, n)
	}
	off := v2ReportHeaderLen
	for i := range n {
		if len(b)-off < recordHeaderLen {
			return nil, fmt.Errorf("record %d: %w", i, ErrTruncated)
		}
		typ := RecordType(b[off])
		aux := int(b[off+1]) * 4 // Aux Data Len is in 32-bit words (§5.2.6)
		ns := int(binary.BigEndian.Uint16(b[off+2 : off+4]))
		need := recordHeaderLen + 16*ns + aux
		if len(b)-off < need {
			return nil, fmt.Errorf("record %d with %d sources and %d aux octets: %w", i, ns, aux, ErrBadRecord)
		}
		r := Record{Type: typ, Group: netip.AddrFrom16([16]byte(b[off+4 : off+20]))}
		if ns > 0 {
			r.Sources = make([]netip.Addr, ns)
			for j := range r.Sources {
				s := off + recordHeaderLen + 16*j
				r.Sources[j] = netip.AddrFrom16([16]byte(b[s : s+16]))
			}
		}
		recs = append(recs, r)
		off += need
	}
	return &V2Report{Records: recs}, nil
}

// Verify checks the ICMPv6 checksum of an MLD message received from src to
// dst (RFC 4443 §2.3).
func Verify(src, dst netip.Addr, b []byte) error {
	if len(b) < 4 {
		return ErrTruncated
	}
	if got, want := binary.BigEndian.Uint16(b[2:4]), Checksum(src, dst, b); got != want {
		return fmt.Errorf("checksum %#04x, want %#04x: %w", got, want, ErrBadChecksum)
	}
	return nil
}

// Checksum returns the ICMPv6 checksum of icmp as sent from src to dst,
// computed over the IPv6 pseudo-header (RFC 2460 §8.1) and icmp with its
// checksum field (octets 2-3) taken as zero.
func Checksum(src, dst netip.Addr, icmp []byte) uint16 {
	return inet.Checksum(src, dst, inet.ProtoICMPv6, icmp, 2)
}

// DecodeMaxRespCode returns the Maximum Response Delay of an MLDv2 Maximum
// Response Code (RFC 3810 §5.1.3): codes below 32768 are milliseconds,
// larger ones are 1|exp(3)|mant(12) with delay (mant|0x1000) << (exp+3) ms.
func DecodeMaxRespCode(c uint16) time.Duration {
	if c < maxRespCodeThreshold {
		return time.Duration(c) * time.Millisecond
	}
	exp := (c >> 12) & 7
	mant := c & 0x0fff
	return time.Duration(uint32(mant|0x1000)<<(exp+3)) * time.Millisecond
}

// EncodeMaxRespCode returns the largest Maximum Response Code whose delay is
// not more than d (RFC 3810 §5.1.3); delays beyond the largest representable
// one (8387584 ms) encode as 0xffff, negative ones as 0.
func EncodeMaxRespCode(d time.Duration) uint16 {
	ms := d.Milliseconds()
	if ms <= 0 {
		return 0
	}
	if ms < maxRespCodeThreshold {
		return uint16(ms)
	}
	exp := bits.Len64(uint64(ms)) - 16 // 32768 = 0x1000<<3 has 16 bits
	if exp > 7 {
		return 0xffff
	}
	mant := uint16(ms>>(exp+3)) & 0x0fff
	return 0x8000 | uint16(exp)<<12 | mant
}

// DecodeQQIC returns the Querier's Query Interval of a QQIC (RFC 3810
// §5.1.9): codes below 128 are seconds, larger ones are 1|exp(3)|mant(4)
// with interval (mant|0x10) << (exp+3) s.
func DecodeQQIC(c uint8) time.Duration {
	if c < qqicThreshold {
		return time.Duration(c) * time.Second
	}
	exp := (c >> 4) & 7
	mant := c & 0x0f
	return time.Duration(uint32(mant|0x10)<<(exp+3)) * time.Second
}

// EncodeQQIC returns the largest QQIC whose interval is not more than d
// (RFC 3810 §5.1.9); intervals beyond 31744 s encode as 0xff, sub-second
// ones as 0.
func EncodeQQIC(d time.Duration) uint8 {
	s := int64(d / time.Second)
	if s <= 0 {
		return 0
	}
	if s < qqicThreshold {
		return uint8(s)
	}
	exp := bits.Len64(uint64(s)) - 8 // 128 = 0x10<<3 has 8 bits
	if exp > 7 {
		return 0xff
	}
	mant := uint8(s>>(exp+3)) & 0x0f
	return 0x80 | uint8(exp)<<4 | mant
}
