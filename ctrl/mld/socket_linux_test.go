//go:build linux

package mld

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

var _ Sender = (*Conn)(nil)

func TestHasRouterAlert(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    []byte
		want bool
	}{
		{"ours", hopOptsRouterAlert[:], true},
		{"after pad1", []byte{58, 0, 0, 0, 5, 2, 0, 0}, true},
		{"after padn", []byte{58, 0, 1, 0, 5, 2, 0, 0}, true},
		{"rsvp value", []byte{58, 0, 5, 2, 0, 1, 1, 0}, false},
		{"no option", []byte{58, 0, 1, 4, 0, 0, 0, 0}, false},
		{"truncated", []byte{58, 0, 5}, false},
		{"length past end", []byte{58, 0, 1, 200, 0, 0, 0, 0}, false},
		{"empty", nil, false},
	} {
		if got := hasRouterAlert(tc.h); got != tc.want {
			t.Errorf("%s: hasRouterAlert = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// frame builds an IPv6 packet: fixed header, the given Hop-by-Hop header
// (none when nil: next header ICMPv6) and the ICMPv6 message.
func frame(src, dst netip.Addr, hop uint8, hbh, icmp []byte) []byte {
	b := make([]byte, 40, 40+len(hbh)+len(icmp))
	b[0] = 6 << 4
	binary.BigEndian.PutUint16(b[4:], uint16(len(hbh)+len(icmp)))
	b[6] = 58
	if hbh != nil {
		b[6] = 0
	}
	b[7] = hop
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return append(append(b, hbh...), icmp...)
}

func TestParseFrame(t *testing.T) {
	src := netip.MustParseAddr("fe80::2")
	grp := netip.MustParseAddr("ff0e::1:2")
	icmp, err := Marshal(&V1Report{Group: grp}, src, grp)
	if err != nil {
		t.Fatal(err)
	}
	ra := append([]byte{58}, hopOptsRouterAlert[1:]...)
	good := frame(src, grp, 1, ra, icmp)

	p, err := parseFrame(append(good, 0, 0, 0, 0)) // link-layer padding
	if err != nil {
		t.Fatal(err)
	}
	if p.Src != src || p.Dst != grp || p.HopLimit != 1 || !p.RouterAlert || string(p.Payload) != string(icmp) {
		t.Fatalf("parsed %+v", p)
	}
	if err := Verify(p.Src, p.Dst, p.Payload); err != nil {
		t.Fatalf("checksum of the parsed message: %v", err)
	}
	m, err := Parse(p.Payload)
	if err != nil || m.(*V1Report).Group != grp {
		t.Fatalf("Parse = %v, %v", m, err)
	}

	noRA := frame(src, grp, 1, []byte{58, 0, 1, 4, 0, 0, 0, 0}, icmp)
	if p, err := parseFrame(noRA); err != nil || p.RouterAlert {
		t.Fatalf("padding-only hop-by-hop: %+v, %v", p, err)
	}

	if p, err := parseFrame(frame(src, grp, 1, nil, icmp)); err != nil || p.RouterAlert || string(p.Payload) != string(icmp) {
		t.Fatalf("no hop-by-hop: %+v, %v", p, err)
	}

	longHBH := append([]byte{58, 1, 5, 2, 0, 0, 1, 8}, make([]byte, 8)...)
	if p, err := parseFrame(frame(src, grp, 1, longHBH, icmp)); err != nil || !p.RouterAlert || string(p.Payload) != string(icmp) {
		t.Fatalf("16-octet hop-by-hop: %+v, %v", p, err)
	}

	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, errShortIPv6},
		{"short", good[:39], errShortIPv6},
		{"ipv4", append([]byte{0x45}, good[1:]...), errNotIPv6},
		{"payload past frame", good[:len(good)-1], errPayloadLen},
		{"udp", func() []byte { b := frame(src, grp, 1, nil, icmp); b[6] = 17; return b }(), errNotMLD},
		{"hop-by-hop past payload", frame(src, grp, 1, []byte{58, 3, 5, 2, 0, 0, 1, 0}, nil), errHopByHopLen},
		{"one octet of hop-by-hop", frame(src, grp, 1, []byte{58}, nil), errHopByHopLen},
		{"hop-by-hop then udp", frame(src, grp, 1, append([]byte{17}, hopOptsRouterAlert[1:]...), icmp), errNotICMPv6},
	} {
		if _, err := parseFrame(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
}

func FuzzParseFrame(f *testing.F) {
	src := netip.MustParseAddr("fe80::2")
	grp := netip.MustParseAddr("ff0e::1:2")
	icmp, _ := Marshal(&V1Report{Group: grp}, src, grp)
	f.Add(frame(src, grp, 1, append([]byte{58}, hopOptsRouterAlert[1:]...), icmp))
	f.Add(frame(src, grp, 1, nil, icmp))
	f.Add([]byte{0x60})
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := append([]byte(nil), b...)
		p, err := parseFrame(b)
		if string(b) != string(orig) {
			t.Fatal("parseFrame changed its input")
		}
		if err != nil {
			return
		}
		if len(p.Payload) > len(b)-40 {
			t.Fatalf("payload of %d octets from a %d-octet frame", len(p.Payload), len(b))
		}
		if len(p.Payload) > 0 && len(b) > 0 && &p.Payload[0] == &b[len(b)-len(p.Payload)] {
			t.Fatal("payload aliases the read buffer")
		}
		// What the state machine gets must not crash it either.
		_, _ = Parse(p.Payload)
	})
}
