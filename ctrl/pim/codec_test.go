package pim

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

var (
	llA   = netip.MustParseAddr("fe80::1")
	llB   = netip.MustParseAddr("fe80::2")
	llC   = netip.MustParseAddr("fe80::3")
	rp    = netip.MustParseAddr("2001:db8:22::22")
	dr    = netip.MustParseAddr("2001:db8:1::1")
	src1  = netip.MustParseAddr("2001:db8:1::100")
	src2  = netip.MustParseAddr("2001:db8:1::101")
	grp1  = netip.MustParseAddr("ff0e::1234")
	grp2  = netip.MustParseAddr("ff05::99")
	ssm1  = netip.MustParseAddr("ff3e::8000:1")
	glob1 = netip.MustParseAddr("2001:db8:a::1")
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleMessages is one message of every type the codec implements, with
// every field set to something other than its zero value somewhere; the
// round-trip, tshark and fuzz-seed tests share it.
func sampleMessages() []struct {
	name     string
	m        Message
	src, dst netip.Addr
} {
	return []struct {
		name     string
		m        Message
		src, dst netip.Addr
	}{
		{"hello", &Hello{
			Holdtime:      new(uint16(105)),
			LANPruneDelay: &LANPruneDelay{Tracking: true, PropagationDelay: 500, OverrideInterval: 2500},
			DRPriority:    new(uint32(100)),
			GenerationID:  new(uint32(0xdeadbeef)),
			Addresses:     []netip.Addr{glob1, dr},
			Unknown:       []Option{{Type: 100, Value: []byte{1, 2, 3}}, {Type: 65100}},
		}, llA, AllPIMRouters},
		{"hello-goodbye", &Hello{Holdtime: new(uint16(HoldtimeGoodbye)), GenerationID: new(uint32(7))}, llB, AllPIMRouters},
		{"join-prune", &JoinPrune{
			UpstreamNeighbor: llB,
			Holdtime:         210,
			Groups: []GroupSet{
				{Group: SingleGroup(grp1), Joins: []Source{StarG(rp)}, Prunes: []Source{SGRpt(src1), SGRpt(src2)}},
				{Group: SingleGroup(ssm1), Joins: []Source{SG(src1)}},
				{Group: SingleGroup(grp2), Prunes: []Source{SG(src2)}},
			},
		}, llA, AllPIMRouters},
		{"register", &Register{Packet: innerPacket(src1, grp1, []byte("hotcast data"))}, dr, rp},
		{"null-register", NullRegister(src1, grp1), dr, rp},
		{"register-stop", &RegisterStop{Group: SingleGroup(grp1), Source: src1}, rp, dr},
		{"assert", &Assert{Group: SingleGroup(grp1), Source: src1, MetricPreference: 1, Metric: 10}, llA, AllPIMRouters},
		{"assert-rpt", &Assert{Group: SingleGroup(grp2), Source: netip.IPv6Unspecified(), RPT: true, MetricPreference: 0x7fffffff, Metric: 0xffffffff}, llC, AllPIMRouters},
	}
}

// innerPacket is a UDP/IPv6 packet from s to g with a correct checksum,
// the data packet of a Register.
func innerPacket(s, g netip.Addr, payload []byte) []byte {
	udp := make([]byte, 8+len(payload))
	udp[0], udp[1] = 0x13, 0x88 // 5000
	udp[2], udp[3] = 0x13, 0x89 // 5001
	udp[4], udp[5] = byte(len(udp)>>8), byte(len(udp))
	copy(udp[8:], payload)
	ck := udpChecksum(s, g, udp)
	udp[6], udp[7] = byte(ck>>8), byte(ck)
	return append(ipv6Header(s, g, 17, 63, len(udp)), udp...)
}

// TestRoundTrip marshals every sample, checks the checksum and parses it
// back to the same value.
func TestRoundTrip(t *testing.T) {
	for _, tc := range sampleMessages() {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Marshal(tc.m, tc.src, tc.dst)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if b[0] != 0x20|byte(tc.m.Type()) || b[1] != 0 {
				t.Errorf("header %x, want version 2 type %d reserved 0", b[:2], tc.m.Type())
			}
			if err := Verify(tc.src, tc.dst, b); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.m) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, tc.m)
			}
			// The checksum covers the pseudo-header: another source fails.
			if err := Verify(llC, tc.dst, b); !errors.Is(err, ErrBadChecksum) && tc.src != llC {
				t.Errorf("Verify with another source: %v, want ErrBadChecksum", err)
			}
		})
	}
}

// TestHelloWire checks a Hello against octets written out by hand from RFC
// 7761 §4.9.2 and the checksum against an independent computation.
func TestHelloWire(t *testing.T) {
	h := &Hello{
		Holdtime:      new(uint16(105)),
		LANPruneDelay: &LANPruneDelay{PropagationDelay: 500, OverrideInterval: 2500},
		DRPriority:    new(uint32(1)),
		GenerationID:  new(uint32(0x01020304)),
	}
	b, err := Marshal(h, llA, AllPIMRouters)
	if err != nil {
		t.Fatal(err)
	}
	want := mustHex(t, "2000 0000"+
		"0001 0002 0069"+
		"0002 0004 01f4 09c4"+
		"0013 0004 00000001"+
		"0014 0004 01020304")
	ck := refChecksum(llA, AllPIMRouters, want)
	want[2], want[3] = byte(ck>>8), byte(ck)
	if !bytes.Equal(b, want) {
		t.Fatalf("Marshal:\n got %x\nwant %x", b, want)
	}
}

// TestJoinPruneWire checks a (*,G) join with an (S,G,rpt) prune octet by
// octet (RFC 7761 §4.9.1, §4.9.5).
func TestJoinPruneWire(t *testing.T) {
	m := &JoinPrune{UpstreamNeighbor: llB, Holdtime: 210, Groups: []GroupSet{
		{Group: SingleGroup(grp1), Joins: []Source{StarG(rp)}, Prunes: []Source{SGRpt(src1)}},
	}}
	b, err := Marshal(m, llA, AllPIMRouters)
	if err != nil {
		t.Fatal(err)
	}
	want := mustHex(t, "2300 0000"+
		"0200 fe800000000000000000000000000002"+ // upstream neighbour
		"00 01 00d2"+ // reserved, 1 group, holdtime 210
		"0200 00 80 ff0e0000000000000000000000001234"+ // group, mask 128
		"0001 0001"+
		"0200 07 80 20010db8002200000000000000000022"+ // S W R
		"0200 05 80 20010db8000100000000000000000100") // S R
	ck := refChecksum(llA, AllPIMRouters, want)
	want[2], want[3] = byte(ck>>8), byte(ck)
	if !bytes.Equal(b, want) {
		t.Fatalf("Marshal:\n got %x\nwant %x", b, want)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	g := got.(*JoinPrune).Groups[0]
	if k := g.Joins[0].Kind(); k != KindStarG {
		t.Errorf("join kind %v", k)
	}
	if k := g.Prunes[0].Kind(); k != KindSGRpt {
		t.Errorf("prune kind %v", k)
	}
	if k := SG(src1).Kind(); k != KindSG {
		t.Errorf("SG kind %v", k)
	}
	if k := (Source{Wildcard: true}).Kind(); k != KindInvalid {
		t.Errorf("W without R: kind %v", k)
	}
}

// TestRegisterChecksum: the checksum of a Register covers only its first 8
// octets, with 8 as the pseudo-header length; one over the whole message
// is accepted too (RFC 7761 §4.9.3).
func TestRegisterChecksum(t *testing.T) {
	r := &Register{Packet: innerPacket(src1, grp1, []byte("payload"))}
	b, err := Marshal(r, dr, rp)
	if err != nil {
		t.Fatal(err)
	}
	hdr := append([]byte(nil), b[:8]...)
	hdr[2], hdr[3] = 0, 0
	if got, want := uint16(b[2])<<8|uint16(b[3]), refChecksum(dr, rp, hdr); got != want {
		t.Fatalf("register checksum %#04x, want %#04x over the 8-octet header", got, want)
	}
	// Changing the data packet does not change the checksum.
	b2 := append([]byte(nil), b...)
	b2[len(b2)-1] ^= 0xff
	if err := Verify(dr, rp, b2); err != nil {
		t.Errorf("Verify after a data change: %v", err)
	}
	// A checksum over the whole message (older implementations) is accepted.
	whole := append([]byte(nil), b...)
	whole[2], whole[3] = 0, 0
	ck := refChecksum(dr, rp, whole)
	whole[2], whole[3] = byte(ck>>8), byte(ck)
	if err := Verify(dr, rp, whole); err != nil {
		t.Errorf("Verify of a whole-message checksum: %v", err)
	}
	whole[3] ^= 1
	if err := Verify(dr, rp, whole); !errors.Is(err, ErrBadChecksum) {
		t.Errorf("Verify of a wrong checksum: %v", err)
	}
	s, g, ok := r.Inner()
	if !ok || s != src1 || g != grp1 {
		t.Errorf("Inner() = %v %v %v", s, g, ok)
	}
	if s, g, ok := NullRegister(src2, grp2).Inner(); !ok || s != src2 || g != grp2 {
		t.Errorf("NullRegister Inner() = %v %v %v", s, g, ok)
	}
	if _, _, ok := (&Register{Packet: []byte{0x45}}).Inner(); ok {
		t.Error("Inner of a non-IPv6 packet reports ok")
	}
}

func TestVerifyBadChecksum(t *testing.T) {
	for _, tc := range sampleMessages() {
		b, err := Marshal(tc.m, tc.src, tc.dst)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 { // the header octets, checksum included, are always covered
			c := append([]byte(nil), b...)
			c[i] ^= 0x10
			if err := Verify(tc.src, tc.dst, c); !errors.Is(err, ErrBadChecksum) {
				t.Errorf("%s: octet %d flipped: Verify = %v", tc.name, i, err)
			}
		}
	}
	if err := Verify(llA, AllPIMRouters, []byte{0x20, 0}); !errors.Is(err, ErrTruncated) {
		t.Errorf("Verify of 2 octets: %v", err)
	}
}

// TestTruncated: every strict prefix of a message fails to parse with
// ErrTruncated, except a Hello cut at an option boundary (a valid Hello with
// fewer options) and a Register cut after its flags (a shorter data packet).
func TestTruncated(t *testing.T) {
	for _, tc := range sampleMessages() {
		b, err := Marshal(tc.m, tc.src, tc.dst)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(b) {
			_, err := Parse(b[:n])
			switch tc.m.Type() {
			case TypeHello:
				if err != nil && !errors.Is(err, ErrTruncated) {
					t.Errorf("%s cut to %d: %v", tc.name, n, err)
				}
				continue
			case TypeRegister:
				if n >= registerHdrLen {
					if err != nil {
						t.Errorf("%s cut to %d: %v", tc.name, n, err)
					}
					continue
				}
			}
			if !errors.Is(err, ErrTruncated) {
				t.Errorf("%s cut to %d octets: err %v, want ErrTruncated", tc.name, n, err)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	hello := "2000 0000 "
	upstream := "0200 fe800000000000000000000000000002 "
	grp := "0200 0080 ff0e0000000000000000000000001234 "
	src := "0200 0480 20010db8000100000000000000000100 "
	for _, tc := range []struct {
		name string
		hex  string
		want error
	}{
		{"version 1", "1000 0000", ErrBadVersion},
		{"version 3", "3000 0000", ErrBadVersion},
		{"bootstrap", "2400 0000", ErrUnknownType},
		{"graft", "2600 0000", ErrUnknownType},
		{"type 15", "2f00 0000", ErrUnknownType},
		{"holdtime of 3 octets", hello + "0001 0003 000069", ErrBadOption},
		{"dr priority of 2 octets", hello + "0013 0002 0001", ErrBadOption},
		{"gen id of 5 octets", hello + "0014 0005 0000000001", ErrBadOption},
		{"lan prune delay of 2 octets", hello + "0002 0002 01f4", ErrBadOption},
		{"address list of 17 octets", hello + "0018 0011 0200fe80" + strings.Repeat("00", 13), ErrBadOption},
		{"address list ipv4 family", hello + "0018 0012 0100 fe800000000000000000000000000002", ErrBadAddress},
		{"option past the end", hello + "0001 0004 0069", ErrTruncated},
		{"option header cut", hello + "0001 00", ErrTruncated},
		{"jp upstream ipv4", "2300 0000 0100 fe800000000000000000000000000002 0000 00d2", ErrBadAddress},
		{"jp upstream encoding 1", "2300 0000 0201 fe800000000000000000000000000002 0000 00d2", ErrBadAddress},
		{"jp groups past the end", "2300 0000 " + upstream + "0002 00d2 " + grp + "0000 0000", ErrTruncated},
		{"jp sources past the end", "2300 0000 " + upstream + "0001 00d2 " + grp + "0001 0001 " + src, ErrTruncated},
		{"jp group mask 129", "2300 0000 " + upstream + "0001 00d2 0200 0081 ff0e0000000000000000000000001234 0000 0000", ErrBadAddress},
		{"jp source mask 200", "2300 0000 " + upstream + "0001 00d2 " + grp + "0001 0000 0200 04c8 20010db8000100000000000000000100", ErrBadAddress},
		{"jp source family 1", "2300 0000 " + upstream + "0001 00d2 " + grp + "0001 0000 0100 0480 20010db8000100000000000000000100", ErrBadAddress},
		{"register-stop group family 1", "2200 0000 0100 0080 ff0e0000000000000000000000001234 " + upstream, ErrBadAddress},
		{"assert source encoding 1", "2500 0000 " + grp + "0201 20010db8000100000000000000000100 00000001 0000000a", ErrBadAddress},
	} {
		_, err := Parse(mustHex(t, tc.hex))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Parse error %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestParseLenient: what RFC 7761 says to ignore is ignored.
func TestParseLenient(t *testing.T) {
	// Reserved header octet set, unknown option, repeated DR Priority (the
	// last counts), trailing octets after a Join/Prune's groups.
	m, err := Parse(mustHex(t, "20ff 0000 0013 0004 00000001 0063 0000 0013 0004 00000009"))
	if err != nil {
		t.Fatal(err)
	}
	h := m.(*Hello)
	if h.DRPriority == nil || *h.DRPriority != 9 || len(h.Unknown) != 1 || h.Unknown[0].Type == 0 {
		t.Errorf("hello %+v", h)
	}
	m, err = Parse(mustHex(t, "2300 0000 0200 fe800000000000000000000000000002 ff00 00d2 deadbeef"))
	if err != nil {
		t.Fatal(err)
	}
	if jp := m.(*JoinPrune); jp.Holdtime != 210 || len(jp.Groups) != 0 || jp.UpstreamNeighbor != llB {
		t.Errorf("join/prune %+v", jp)
	}
	// Encoded-group reserved bits and the Register's Reserved2 are ignored;
	// the B and Z bits are kept.
	m, err = Parse(mustHex(t, "2200 0000 0200 ff80 ff0e0000000000000000000000001234 0200 20010db8000100000000000000000100"))
	if err != nil {
		t.Fatal(err)
	}
	if g := m.(*RegisterStop).Group; !g.Bidir || !g.AdminScope || g.MaskLen != 128 {
		t.Errorf("group %+v", g)
	}
	m, err = Parse(mustHex(t, "2100 0000 ffffffff"))
	if err != nil {
		t.Fatal(err)
	}
	if r := m.(*Register); !r.Border || !r.Null || r.Packet != nil {
		t.Errorf("register %+v", r)
	}
}

func TestMarshalErrors(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.1")
	zoned := netip.MustParseAddr("fe80::2%eth0")
	for _, tc := range []struct {
		name string
		m    Message
		want error
	}{
		{"propagation delay 0x8000", &Hello{LANPruneDelay: &LANPruneDelay{PropagationDelay: 0x8000}}, ErrBadField},
		{"unknown option with a known type", &Hello{Unknown: []Option{{Type: OptDRPriority}}}, ErrBadOption},
		{"ipv4 secondary address", &Hello{Addresses: []netip.Addr{v4}}, ErrBadAddress},
		{"zoned upstream", &JoinPrune{UpstreamNeighbor: zoned}, ErrBadAddress},
		{"no upstream", &JoinPrune{}, ErrBadAddress},
		{"256 groups", &JoinPrune{UpstreamNeighbor: llB, Groups: make([]GroupSet, 256)}, ErrTooLarge},
		{"group mask 129", &JoinPrune{UpstreamNeighbor: llB, Groups: []GroupSet{{Group: Group{Addr: grp1, MaskLen: 129}}}}, ErrBadField},
		{"invalid group", &JoinPrune{UpstreamNeighbor: llB, Groups: []GroupSet{{}}}, ErrBadAddress},
		{"ipv4 source", &JoinPrune{UpstreamNeighbor: llB, Groups: []GroupSet{{Group: SingleGroup(grp1), Joins: []Source{SG(v4)}}}}, ErrBadAddress},
		{"source mask 129", &JoinPrune{UpstreamNeighbor: llB, Groups: []GroupSet{{Group: SingleGroup(grp1), Prunes: []Source{{Addr: src1, MaskLen: 129}}}}}, ErrBadField},
		{"metric preference 2^31", &Assert{Group: SingleGroup(grp1), Source: src1, MetricPreference: 1 << 31}, ErrBadField},
		{"assert without source", &Assert{Group: SingleGroup(grp1)}, ErrBadAddress},
		{"register-stop without group", &RegisterStop{Source: src1}, ErrBadAddress},
		{"register too large", &Register{Packet: make([]byte, 0x10000)}, ErrTooLarge},
	} {
		if _, err := Marshal(tc.m, llA, AllPIMRouters); !errors.Is(err, tc.want) {
			t.Errorf("%s: Marshal error %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := Marshal(&Hello{}, v4, AllPIMRouters); !errors.Is(err, ErrBadAddress) {
		t.Errorf("Marshal from an IPv4 source: %v", err)
	}
}

func TestStrings(t *testing.T) {
	for typ, want := range map[MessageType]string{
		TypeHello: "hello", TypeRegister: "register", TypeRegisterStop: "register-stop",
		TypeJoinPrune: "join-prune", TypeAssert: "assert", TypeBootstrap: "bootstrap", 12: "type-12",
	} {
		if got := typ.String(); got != want {
			t.Errorf("%d: %q, want %q", typ, got, want)
		}
	}
	if StarG(rp).Kind().String() != "(*,G)" || SG(src1).Kind().String() != "(S,G)" || SGRpt(src1).Kind().String() != "(S,G,rpt)" {
		t.Error("EntryKind strings")
	}
}

// refChecksum is the IPv6 upper-layer checksum written out from RFC 8200
// §8.1 and RFC 1071 without internal/inet: the pseudo-header (source,
// destination, 32-bit length, three zero octets, next header 103) then the
// message, summed as 16-bit words with end-around carry.
func refChecksum(src, dst netip.Addr, msg []byte) uint16 {
	return pseudoSum(src, dst, 103, msg)
}

func udpChecksum(src, dst netip.Addr, udp []byte) uint16 {
	c := pseudoSum(src, dst, 17, udp)
	if c == 0 {
		c = 0xffff
	}
	return c
}

func pseudoSum(src, dst netip.Addr, next byte, msg []byte) uint16 {
	var ph []byte
	s, d := src.As16(), dst.As16()
	ph = append(ph, s[:]...)
	ph = append(ph, d[:]...)
	n := len(msg)
	ph = append(ph, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0, 0, 0, next)
	all := append(ph, msg...)
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var sum uint32
	for i := 0; i < len(all); i += 2 {
		sum += uint32(all[i])<<8 | uint32(all[i+1])
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
