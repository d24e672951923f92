package pim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

const (
	jpFixedLen    = encUnicastLen + 4 // upstream neighbour, reserved, num groups, holdtime
	jpGroupHdrLen = encGroupLen + 4   // group, joined and pruned counts
	maxJPGroups   = 0xff
	maxJPSources  = 0xffff
)

// JoinPrune is a PIM Join/Prune message (RFC 7761 §4.9.5):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Upstream Neighbor Address (Encoded-Unicast format)     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Reserved     | Num groups    |          Holdtime             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Multicast Group Address 1 (Encoded-Group format)      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Number of Joined Sources    |   Number of Pruned Sources    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Joined Source Address 1 (Encoded-Source format)        |
//	|                             ...                               |
//	|        Pruned Source Address 1 (Encoded-Source format)        |
//	|                             ...                               |
//	|         Multicast Group Address m (Encoded-Group format)      |
//	|                             ...                               |
//
// The codec does not check that a group set's entries combine as §4.9.5.1
// allows (the receiver's business), only their encoding.
type JoinPrune struct {
	// UpstreamNeighbor is the RPF neighbour the message is addressed to:
	// its link-local address (its primary address, §4.3.4).
	UpstreamNeighbor netip.Addr
	// Holdtime, in seconds, is how long the receiver keeps the join state
	// (J/P_HoldTime, normally 3.5 × t_periodic = 210 s, §4.11).
	Holdtime uint16
	// Groups holds at most 255 group sets.
	Groups []GroupSet
}

// GroupSet is one group's joined and pruned sources in a Join/Prune.
type GroupSet struct {
	Group  Group
	Joins  []Source
	Prunes []Source
}

// Type implements Message.
func (*JoinPrune) Type() MessageType { return TypeJoinPrune }

func (m *JoinPrune) appendTo(b []byte) ([]byte, error) {
	if len(m.Groups) > maxJPGroups {
		return nil, fmt.Errorf("%d groups: %w", len(m.Groups), ErrTooLarge)
	}
	b, err := appendUnicast(b, m.UpstreamNeighbor)
	if err != nil {
		return nil, fmt.Errorf("upstream neighbor: %w", err)
	}
	b = append(b, 0, byte(len(m.Groups)))
	b = binary.BigEndian.AppendUint16(b, m.Holdtime)
	for i, g := range m.Groups {
		if len(g.Joins) > maxJPSources || len(g.Prunes) > maxJPSources {
			return nil, fmt.Errorf("group %d with %d joins and %d prunes: %w", i, len(g.Joins), len(g.Prunes), ErrTooLarge)
		}
		if b, err = appendGroup(b, g.Group); err != nil {
			return nil, fmt.Errorf("group %d: %w", i, err)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(g.Joins)))
		b = binary.BigEndian.AppendUint16(b, uint16(len(g.Prunes)))
		for j, s := range g.Joins {
			if b, err = appendSource(b, s); err != nil {
				return nil, fmt.Errorf("group %d join %d: %w", i, j, err)
			}
		}
		for j, s := range g.Prunes {
			if b, err = appendSource(b, s); err != nil {
				return nil, fmt.Errorf("group %d prune %d: %w", i, j, err)
			}
		}
	}
	return b, nil
}

func parseJoinPrune(b []byte) (*JoinPrune, error) {
	if len(b) < jpFixedLen {
		return nil, fmt.Errorf("%d octets: %w", len(b), ErrTruncated)
	}
	up, err := parseUnicast(b)
	if err != nil {
		return nil, fmt.Errorf("upstream neighbor: %w", err)
	}
	ng := int(b[encUnicastLen+1])
	hold := binary.BigEndian.Uint16(b[encUnicastLen+2:])
	off := jpFixedLen
	// Every group set takes at least 24 octets: bound the allocation first.
	if (len(b)-off)/jpGroupHdrLen < ng {
		return nil, fmt.Errorf("%d groups in %d octets: %w", ng, len(b)-off, ErrTruncated)
	}
	var groups []GroupSet
	if ng > 0 {
		groups = make([]GroupSet, ng)
	}
	for i := range groups {
		if len(b)-off < jpGroupHdrLen {
			return nil, fmt.Errorf("group %d: %w", i, ErrTruncated)
		}
		g, err := parseGroup(b[off:])
		if err != nil {
			return nil, fmt.Errorf("group %d: %w", i, err)
		}
		nj := int(binary.BigEndian.Uint16(b[off+encGroupLen:]))
		np := int(binary.BigEndian.Uint16(b[off+encGroupLen+2:]))
		off += jpGroupHdrLen
		if (len(b)-off)/encSourceLen < nj+np {
			return nil, fmt.Errorf("group %d with %d joins and %d prunes in %d octets: %w", i, nj, np, len(b)-off, ErrTruncated)
		}
		srcs := func(n int, what string) ([]Source, error) {
			if n == 0 {
				return nil, nil
			}
			out := make([]Source, n)
			for j := range out {
				s, err := parseSource(b[off:])
				if err != nil {
					return nil, fmt.Errorf("group %d %s %d: %w", i, what, j, err)
				}
				out[j] = s
				off += encSourceLen
			}
			return out, nil
		}
		joins, err := srcs(nj, "join")
		if err != nil {
			return nil, err
		}
		prunes, err := srcs(np, "prune")
		if err != nil {
			return nil, err
		}
		groups[i] = GroupSet{Group: g, Joins: joins, Prunes: prunes}
	}
	return &JoinPrune{UpstreamNeighbor: up, Holdtime: hold, Groups: groups}, nil
}
