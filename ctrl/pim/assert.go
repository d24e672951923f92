package pim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

const assertLen = encGroupLen + encUnicastLen + 8

// Assert is a PIM Assert message (RFC 7761 §4.9.6), sent to ALL-PIM-ROUTERS
// by a router that sees data arrive on an interface it forwards onto:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|             Group Address (Encoded-Group format)              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Source Address (Encoded-Unicast format)            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|                     Metric Preference                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                             Metric                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Assert struct {
	Group Group
	// Source is S of an (S,G) assert, :: for a (*,G) assert.
	Source netip.Addr
	// RPT is the R bit: the metric is towards the RP (§4.6).
	RPT bool
	// MetricPreference is 31 bits: the preference of the routing protocol
	// that supplied the route (lower is better).
	MetricPreference uint32
	// Metric is the route's cost (lower is better).
	Metric uint32
}

// Type implements Message.
func (*Assert) Type() MessageType { return TypeAssert }

func (m *Assert) appendTo(b []byte) ([]byte, error) {
	if m.MetricPreference > maxMetricPref {
		return nil, fmt.Errorf("metric preference %#x: %w", m.MetricPreference, ErrBadField)
	}
	b, err := appendGroup(b, m.Group)
	if err != nil {
		return nil, err
	}
	if b, err = appendUnicast(b, m.Source); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	pref := m.MetricPreference
	if m.RPT {
		pref |= rptBit
	}
	b = binary.BigEndian.AppendUint32(b, pref)
	return binary.BigEndian.AppendUint32(b, m.Metric), nil
}

func parseAssert(b []byte) (*Assert, error) {
	if len(b) < assertLen {
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
	pref := binary.BigEndian.Uint32(b[encGroupLen+encUnicastLen:])
	return &Assert{
		Group:            g,
		Source:           s,
		RPT:              pref&rptBit != 0,
		MetricPreference: pref &^ rptBit,
		Metric:           binary.BigEndian.Uint32(b[encGroupLen+encUnicastLen+4:]),
	}, nil
}
