package pim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

// Hello option types (RFC 7761 §4.9.2).
const (
	OptHoldtime      = 1
	OptLANPruneDelay = 2
	OptDRPriority    = 19
	OptGenerationID  = 20
	OptAddressList   = 24 // RFC 7761 §4.9.2, secondary addresses (§4.3.4)

	optHeaderLen        = 4
	holdtimeLen         = 2
	lanPruneDelayLen    = 4
	drPriorityLen       = 4
	generationIDLen     = 4
	trackingBit         = 0x8000
	maxPropagationDelay = 0x7fff
)

// Holdtime values with a meaning of their own (RFC 7761 §4.9.2).
const (
	// HoldtimeForever: the receiver never times the neighbour out.
	HoldtimeForever = 0xffff
	// HoldtimeGoodbye: the receiver times the neighbour out at once; sent
	// before an interface goes down (§4.3.1).
	HoldtimeGoodbye = 0
)

// Hello is a PIM Hello message (RFC 7761 §4.9.2): a list of options, each
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          OptionType           |         OptionLength          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          OptionValue ...
//
// A nil pointer is an absent option: the neighbour code needs to tell
// "no DR Priority option" from priority 0 (§4.3.2). Marshal writes the
// known options in the order of the fields, then Unknown.
type Hello struct {
	// Holdtime is option 1, in seconds (HoldtimeForever, HoldtimeGoodbye).
	Holdtime *uint16
	// LANPruneDelay is option 2 (§4.9.2, §4.3.3).
	LANPruneDelay *LANPruneDelay
	// DRPriority is option 19; higher is preferred (§4.3.2).
	DRPriority *uint32
	// GenerationID is option 20: a random value chosen each time PIM
	// starts on the interface (§4.3.1).
	GenerationID *uint32
	// Addresses is option 24, the secondary addresses of the interface
	// (§4.3.4). An empty list is not sent.
	Addresses []netip.Addr
	// Unknown holds every other option, in the order received. Receivers
	// ignore them (§4.9.2); the codec keeps them for round trips.
	Unknown []Option
}

// LANPruneDelay is the value of the LAN Prune Delay option (RFC 7761
// §4.9.2):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|T|       Propagation_Delay     |      Override_Interval        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type LANPruneDelay struct {
	// Tracking is the T bit: the sender is willing to disable join
	// suppression (§4.3.3).
	Tracking bool
	// PropagationDelay in milliseconds, 0..0x7fff.
	PropagationDelay uint16
	// OverrideInterval in milliseconds.
	OverrideInterval uint16
}

// Option is a Hello option the codec has no field for.
type Option struct {
	Type  uint16
	Value []byte
}

// Type implements Message.
func (*Hello) Type() MessageType { return TypeHello }

func appendOption(b []byte, typ uint16, value []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(value)))
	return append(b, value...)
}

func knownOption(t uint16) bool {
	switch t {
	case OptHoldtime, OptLANPruneDelay, OptDRPriority, OptGenerationID, OptAddressList:
		return true
	}
	return false
}

func (h *Hello) appendTo(b []byte) ([]byte, error) {
	var v [4]byte
	if h.Holdtime != nil {
		binary.BigEndian.PutUint16(v[:], *h.Holdtime)
		b = appendOption(b, OptHoldtime, v[:holdtimeLen])
	}
	if d := h.LANPruneDelay; d != nil {
		if d.PropagationDelay > maxPropagationDelay {
			return nil, fmt.Errorf("propagation delay %d ms: %w", d.PropagationDelay, ErrBadField)
		}
		pd := d.PropagationDelay
		if d.Tracking {
			pd |= trackingBit
		}
		binary.BigEndian.PutUint16(v[0:2], pd)
		binary.BigEndian.PutUint16(v[2:4], d.OverrideInterval)
		b = appendOption(b, OptLANPruneDelay, v[:lanPruneDelayLen])
	}
	if h.DRPriority != nil {
		binary.BigEndian.PutUint32(v[:], *h.DRPriority)
		b = appendOption(b, OptDRPriority, v[:drPriorityLen])
	}
	if h.GenerationID != nil {
		binary.BigEndian.PutUint32(v[:], *h.GenerationID)
		b = appendOption(b, OptGenerationID, v[:generationIDLen])
	}
	if n := len(h.Addresses); n > 0 {
		if n*encUnicastLen > 0xffff {
			return nil, fmt.Errorf("address list of %d addresses: %w", n, ErrTooLarge)
		}
		b = binary.BigEndian.AppendUint16(b, OptAddressList)
		b = binary.BigEndian.AppendUint16(b, uint16(n*encUnicastLen))
		for i, a := range h.Addresses {
			var err error
			if b, err = appendUnicast(b, a); err != nil {
				return nil, fmt.Errorf("address list entry %d: %w", i, err)
			}
		}
	}
	for i, o := range h.Unknown {
		if knownOption(o.Type) {
			return nil, fmt.Errorf("unknown option %d has the known type %d: %w", i, o.Type, ErrBadOption)
		}
		if len(o.Value) > 0xffff {
			return nil, fmt.Errorf("option %d of %d octets: %w", o.Type, len(o.Value), ErrTooLarge)
		}
		b = appendOption(b, o.Type, o.Value)
	}
	return b, nil
}

// parseHello decodes the options of a Hello. A known option with the
// wrong length, or an option running past the end, fails the whole
// message; a repeated option counts with its last value.
func parseHello(b []byte) (*Hello, error) {
	var h Hello
	for off := 0; off < len(b); {
		if len(b)-off < optHeaderLen {
			return nil, fmt.Errorf("option header at %d of %d octets: %w", off, len(b), ErrTruncated)
		}
		typ := binary.BigEndian.Uint16(b[off:])
		n := int(binary.BigEndian.Uint16(b[off+2:]))
		off += optHeaderLen
		if len(b)-off < n {
			return nil, fmt.Errorf("option %d of %d octets in %d: %w", typ, n, len(b)-off, ErrTruncated)
		}
		v := b[off : off+n]
		off += n
		want := 0
		switch typ {
		case OptHoldtime:
			want = holdtimeLen
		case OptLANPruneDelay:
			want = lanPruneDelayLen
		case OptDRPriority:
			want = drPriorityLen
		case OptGenerationID:
			want = generationIDLen
		case OptAddressList:
			if n%encUnicastLen != 0 {
				return nil, fmt.Errorf("address list of %d octets: %w", n, ErrBadOption)
			}
		default:
			o := Option{Type: typ}
			if n > 0 {
				o.Value = slices.Clone(v)
			}
			h.Unknown = append(h.Unknown, o)
			continue
		}
		if want != 0 && n != want {
			return nil, fmt.Errorf("option %d of %d octets, want %d: %w", typ, n, want, ErrBadOption)
		}
		switch typ {
		case OptHoldtime:
			h.Holdtime = new(binary.BigEndian.Uint16(v))
		case OptLANPruneDelay:
			pd := binary.BigEndian.Uint16(v)
			h.LANPruneDelay = &LANPruneDelay{
				Tracking:         pd&trackingBit != 0,
				PropagationDelay: pd &^ trackingBit,
				OverrideInterval: binary.BigEndian.Uint16(v[2:]),
			}
		case OptDRPriority:
			h.DRPriority = new(binary.BigEndian.Uint32(v))
		case OptGenerationID:
			h.GenerationID = new(binary.BigEndian.Uint32(v))
		case OptAddressList:
			addrs := make([]netip.Addr, 0, n/encUnicastLen)
			for i := 0; i < n; i += encUnicastLen {
				a, err := parseUnicast(v[i:])
				if err != nil {
					return nil, fmt.Errorf("address list entry %d: %w", i/encUnicastLen, err)
				}
				addrs = append(addrs, a)
			}
			h.Addresses = nil
			if len(addrs) > 0 {
				h.Addresses = addrs
			}
		}
	}
	return &h, nil
}
