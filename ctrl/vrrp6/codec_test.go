package vrrp6

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

var (
	testSrc = netip.MustParseAddr("fe80::2")
	testVIP = []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::50")}
)

// refChecksum is an independent, byte-oriented implementation of the
// RFC 8200 §8.1 pseudo-header checksum used to cross-check checksum().
func refChecksum(src, dst netip.Addr, next uint8, payload []byte) uint16 {
	var ph []byte
	s, d := src.As16(), dst.As16()
	ph = append(ph, s[:]...)
	ph = append(ph, d[:]...)
	ph = binary.BigEndian.AppendUint32(ph, uint32(len(payload)))
	ph = append(ph, 0, 0, 0, next)
	ph = append(ph, payload...)
	if len(ph)%2 == 1 {
		ph = append(ph, 0)
	}
	var sum uint32
	for i := 0; i < len(ph); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ph[i:]))
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func TestMarshalWireFormat(t *testing.T) {
	a := &Advert{VRID: 1, Priority: 200, MaxAdvertInterval: 100, Addrs: testVIP}
	b, err := a.Marshal(testSrc, GroupAddr)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x31, 0x01, 200, 2, // version 3, type 1, vrid 1, priority 200, 2 addrs
		0x00, 0x64, 0x00, 0x00, // rsvd 0, max adver int 100 cs, checksum (filled below)
		0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50,
	}
	binary.BigEndian.PutUint16(want[6:8], refChecksum(testSrc, GroupAddr, IPProtocol, want))
	if !bytes.Equal(b, want) {
		t.Fatalf("marshal:\n got % x\nwant % x", b, want)
	}
	if err := VerifyChecksum(testSrc, GroupAddr, b); err != nil {
		t.Fatalf("verify own checksum: %v", err)
	}
	// A different source address in the pseudo-header must fail.
	if err := VerifyChecksum(netip.MustParseAddr("fe80::3"), GroupAddr, b); !errors.Is(err, ErrBadChecksum) {
		t.Fatalf("verify with other src: got %v, want ErrBadChecksum", err)
	}
}

func TestChecksumMatchesReference(t *testing.T) {
	for n := 0; n < 40; n++ {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*37 + n)
		}
		if got, want := checksum(testSrc, GroupAddr, 112, p), refChecksum(testSrc, GroupAddr, 112, p); got != want {
			t.Fatalf("len %d: checksum %#04x, reference %#04x", n, got, want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []Advert{
		{VRID: 1, Priority: 200, MaxAdvertInterval: 100, Addrs: testVIP},
		{VRID: 255, Priority: 0, MaxAdvertInterval: 1, Addrs: testVIP[:1]},
		{VRID: 7, Priority: 255, MaxAdvertInterval: MaxAdvertInterval, Addrs: []netip.Addr{netip.MustParseAddr("::ffff:10.0.0.1")}},
	}
	for _, a := range tests {
		b, err := a.Marshal(testSrc, GroupAddr)
		if err != nil {
			t.Fatalf("%+v: %v", a, err)
		}
		if err := VerifyChecksum(testSrc, GroupAddr, b); err != nil {
			t.Fatalf("%+v: %v", a, err)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("%+v: parse: %v", a, err)
		}
		if !reflect.DeepEqual(*got, a) {
			t.Fatalf("round trip: got %+v, want %+v", *got, a)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good, err := (&Advert{VRID: 1, Priority: 100, MaxAdvertInterval: 100, Addrs: testVIP}).Marshal(testSrc, GroupAddr)
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short header", good[:7], ErrTruncated},
		{"version 2", mod(func(b []byte) []byte { b[0] = 0x21; return b }), ErrBadVersion},
		{"type 2", mod(func(b []byte) []byte { b[0] = 0x32; return b }), ErrBadType},
		{"vrid 0", mod(func(b []byte) []byte { b[1] = 0; return b }), ErrBadVRID},
		{"count 0", mod(func(b []byte) []byte { b[3] = 0; return b }), ErrNoAddresses},
		{"count 3 for 2 addresses", mod(func(b []byte) []byte { b[3] = 3; return b }), ErrTruncated},
		{"count 1 for 2 addresses", mod(func(b []byte) []byte { b[3] = 1; return b }), ErrCountMismatch},
		{"truncated address", good[:len(good)-1], ErrTruncated},
		{"trailing byte", append(bytes.Clone(good), 0), ErrCountMismatch},
		{"interval 0", mod(func(b []byte) []byte { b[4], b[5] = 0xf0, 0; return b }), ErrBadInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse(tt.b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse: got (%v, %v), want %v", a, err, tt.want)
			}
		})
	}
	// Reserved bits are ignored on receive (RFC 9568 §5.2.6).
	b := mod(func(b []byte) []byte { b[4] |= 0xf0; return b })
	a, err := Parse(b)
	if err != nil || a.MaxAdvertInterval != 100 {
		t.Fatalf("reserved bits set: got (%+v, %v), want interval 100", a, err)
	}
	// A flipped bit anywhere fails the checksum.
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		if err := VerifyChecksum(testSrc, GroupAddr, b); !errors.Is(err, ErrBadChecksum) {
			t.Fatalf("bit flip at %d: got %v, want ErrBadChecksum", i, err)
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		a    Advert
		src  netip.Addr
		want error
	}{
		{"vrid 0", Advert{VRID: 0, MaxAdvertInterval: 100, Addrs: testVIP}, testSrc, ErrBadVRID},
		{"interval 0", Advert{VRID: 1, MaxAdvertInterval: 0, Addrs: testVIP}, testSrc, ErrBadInterval},
		{"interval 4096", Advert{VRID: 1, MaxAdvertInterval: 4096, Addrs: testVIP}, testSrc, ErrBadInterval},
		{"no addresses", Advert{VRID: 1, MaxAdvertInterval: 100}, testSrc, ErrNoAddresses},
		{"ipv4 address", Advert{VRID: 1, MaxAdvertInterval: 100, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}, testSrc, ErrBadAddress},
		{"ipv4 source", Advert{VRID: 1, MaxAdvertInterval: 100, Addrs: testVIP}, netip.MustParseAddr("10.0.0.1"), ErrBadAddress},
		{"256 addresses", Advert{VRID: 1, MaxAdvertInterval: 100, Addrs: make([]netip.Addr, 256)}, testSrc, ErrTooManyAddrs},
	}
	for _, tt := range tests {
		if _, err := tt.a.Marshal(tt.src, GroupAddr); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

// maxFuzzLen bounds fuzz inputs: 8 + 16*63 bytes still covers every
// branch, and the minimizer stalls on multi-kilobyte inputs.
// TestRoundTripMaxAddresses covers 255 addresses.
const maxFuzzLen = 1016

func TestRoundTripMaxAddresses(t *testing.T) {
	a := &Advert{VRID: 9, Priority: 1, MaxAdvertInterval: 100, Addrs: make([]netip.Addr, 255)}
	for i := range a.Addrs {
		a.Addrs[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
	}
	b, err := a.Marshal(testSrc, GroupAddr)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 8+16*255 || b[3] != 255 {
		t.Fatalf("length %d, count %d", len(b), b[3])
	}
	got, err := Parse(b)
	if err != nil || !reflect.DeepEqual(got, a) || VerifyChecksum(testSrc, GroupAddr, b) != nil {
		t.Fatalf("round trip of 255 addresses: %v", err)
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// survives parse -> marshal -> parse unchanged with a valid checksum.
func FuzzParse(f *testing.F) {
	good, _ := (&Advert{VRID: 1, Priority: 200, MaxAdvertInterval: 100, Addrs: testVIP}).Marshal(testSrc, GroupAddr)
	f.Add(good)
	f.Add(good[:8])                                                               // regression: header only, count 2
	f.Add([]byte{0x31, 1, 0, 0, 0, 100, 0, 0})                                    // regression: count 0
	f.Add(append(bytes.Clone(good), 0))                                           // regression: trailing byte
	f.Add([]byte{0x31, 1, 0, 1, 0xf0, 0, 0, 0})                                   // regression: interval 0 under reserved bits
	f.Add(append([]byte{0x31, 9, 255, 1, 0xff, 0xff, 0, 0}, make([]byte, 16)...)) // max interval + rsvd
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxFuzzLen {
			return // long address lists only slow down minimization
		}
		_ = VerifyChecksum(testSrc, GroupAddr, b)
		a, err := Parse(b)
		if err != nil {
			return
		}
		out, err := a.Marshal(testSrc, GroupAddr)
		if err != nil {
			t.Fatalf("marshal of parsed %+v: %v", a, err)
		}
		if err := VerifyChecksum(testSrc, GroupAddr, out); err != nil {
			t.Fatalf("checksum of marshaled: %v", err)
		}
		a2, err := Parse(out)
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if !reflect.DeepEqual(a, a2) {
			t.Fatalf("round trip: %+v != %+v", a, a2)
		}
		// Only the reserved bits and the checksum may differ.
		if !bytes.Equal(out[8:], b[8:]) || !bytes.Equal(out[:4], b[:4]) {
			t.Fatalf("re-marshaled bytes differ:\n in % x\nout % x", b, out)
		}
	})
}
