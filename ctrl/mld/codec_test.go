package mld

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var (
	llA   = netip.MustParseAddr("fe80::1")
	llB   = netip.MustParseAddr("fe80::2")
	llC   = netip.MustParseAddr("fe80::3")
	allNd = netip.MustParseAddr("ff02::1")
	mld2R = netip.MustParseAddr("ff02::16")
	grp1  = netip.MustParseAddr("ff0e::1234")
	grp2  = netip.MustParseAddr("ff05::99")
	ssm1  = netip.MustParseAddr("ff3e::8000:1")
	s1    = netip.MustParseAddr("2001:db8::1")
	s2    = netip.MustParseAddr("2001:db8::2")
	s3    = netip.MustParseAddr("2001:db8::3")
	s4    = netip.MustParseAddr("2001:db8::4")
)

// TestMaxRespCodeFormula checks the decoder against RFC 3810 §5.1.3 written
// out independently, and the encoder's round trip over every code.
func TestMaxRespCodeFormula(t *testing.T) {
	prev := time.Duration(-1)
	for c := 0; c <= 0xffff; c++ {
		code := uint16(c)
		var want int64
		if c < 32768 {
			want = int64(c)
		} else {
			exp := (c >> 12) & 0x7
			mant := c & 0xfff
			want = int64(mant|0x1000) << (exp + 3)
		}
		got := DecodeMaxRespCode(code)
		if got != time.Duration(want)*time.Millisecond {
			t.Fatalf("DecodeMaxRespCode(%#x) = %v, want %d ms", code, got, want)
		}
		if got <= prev {
			t.Fatalf("DecodeMaxRespCode not strictly monotonic at %#x: %v <= %v", code, got, prev)
		}
		prev = got
		if enc := EncodeMaxRespCode(got); DecodeMaxRespCode(enc) != got || enc != code {
			t.Fatalf("EncodeMaxRespCode(%v) = %#x, want %#x", got, enc, code)
		}
	}
	for _, tc := range []struct {
		d    time.Duration
		want uint16
	}{
		{0, 0}, {-time.Second, 0}, {10 * time.Second, 10000}, {32767 * time.Millisecond, 32767},
		{32768 * time.Millisecond, 0x8000}, {32775 * time.Millisecond, 0x8000}, {32776 * time.Millisecond, 0x8001},
		{3 * time.Hour, 0xffff}, {time.Hour, 0xeb77}, {8387584 * time.Millisecond, 0xffff},
	} {
		if got := EncodeMaxRespCode(tc.d); got != tc.want {
			t.Errorf("EncodeMaxRespCode(%v) = %#x, want %#x", tc.d, got, tc.want)
		}
		// Rounding down: never advertise more than asked for.
		if tc.d > 0 && DecodeMaxRespCode(EncodeMaxRespCode(tc.d)) > tc.d {
			t.Errorf("EncodeMaxRespCode(%v) rounds up", tc.d)
		}
	}
}

func TestQQICFormula(t *testing.T) {
	prev := time.Duration(-1)
	for c := 0; c <= 0xff; c++ {
		code := uint8(c)
		var want int64
		if c < 128 {
			want = int64(c)
		} else {
			exp := (c >> 4) & 0x7
			mant := c & 0xf
			want = int64(mant|0x10) << (exp + 3)
		}
		got := DecodeQQIC(code)
		if got != time.Duration(want)*time.Second {
			t.Fatalf("DecodeQQIC(%#x) = %v, want %d s", code, got, want)
		}
		if got <= prev {
			t.Fatalf("DecodeQQIC not strictly monotonic at %#x", code)
		}
		prev = got
		if enc := EncodeQQIC(got); enc != code {
			t.Fatalf("EncodeQQIC(%v) = %#x, want %#x", got, enc, code)
		}
		if DecodeQQIC(EncodeQQIC(DecodeQQIC(code))) != got {
			t.Fatalf("decode(encode(decode(%#x))) != decode", code)
		}
	}
	for _, tc := range []struct {
		d    time.Duration
		want uint8
	}{
		{125 * time.Second, 125}, {127 * time.Second, 127}, {128 * time.Second, 0x80},
		{135 * time.Second, 0x80}, {136 * time.Second, 0x81}, {1500 * time.Millisecond, 1},
		{10 * time.Hour, 0xff}, {0, 0},
	} {
		if got := EncodeQQIC(tc.d); got != tc.want {
			t.Errorf("EncodeQQIC(%v) = %#x, want %#x", tc.d, got, tc.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Message
		len  int
	}{
		{"v1 general query", &Query{Version: 1, MaxRespCode: 10000}, 24},
		{"v1 specific query", &Query{Version: 1, MaxRespCode: 1000, Group: grp1}, 24},
		{"v2 general query", &Query{Version: 2, MaxRespCode: EncodeMaxRespCode(10 * time.Second), QRV: 2, QQIC: 125}, 28},
		{"v2 source query", &Query{Version: 2, MaxRespCode: 1000, Group: grp1, Suppress: true, QRV: 7, QQIC: 0x8f, Sources: []netip.Addr{s1, s2}}, 60},
		{"v1 report", &V1Report{Group: grp1}, 24},
		{"v1 done", &V1Done{Group: grp2}, 24},
		{"v2 report empty", &V2Report{}, 8},
		{"v2 report", &V2Report{Records: []Record{
			{Type: ModeIsInclude, Group: grp1, Sources: []netip.Addr{s1}},
			{Type: ChangeToExclude, Group: grp2},
			{Type: BlockOldSources, Group: grp1, Sources: []netip.Addr{s2, s3}},
		}}, 8 + 36 + 20 + 52},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Marshal(tc.m, llA, allNd)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if len(b) != tc.len {
				t.Fatalf("len = %d, want %d", len(b), tc.len)
			}
			if err := Verify(llA, allNd, b); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if err := Verify(llB, allNd, b); !errors.Is(err, ErrBadChecksum) {
				t.Fatalf("Verify with other source = %v, want ErrBadChecksum", err)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.m) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, tc.m)
			}
		})
	}
}

// TestChecksumKnownVector checks against a v2 report captured from a Linux
// host (fe80::1 -> ff02::16, TO_EX {} for ff02::1:ff00:1), computed by hand.
func TestChecksumKnownVector(t *testing.T) {
	b, _ := hex.DecodeString("8f00000000000001" + "04000000" + "ff0200000000000000000001ff000001")
	src := netip.MustParseAddr("fe80::1")
	// Independent computation: sum the pseudo-header and message as 16-bit words.
	var words []uint16
	for _, a := range []netip.Addr{src, mld2R} {
		x := a.As16()
		for i := 0; i < 16; i += 2 {
			words = append(words, uint16(x[i])<<8|uint16(x[i+1]))
		}
	}
	words = append(words, 0, uint16(len(b)), 0, 58)
	for i := 0; i < len(b); i += 2 {
		words = append(words, uint16(b[i])<<8|uint16(b[i+1]))
	}
	var sum uint32
	for _, w := range words {
		sum += uint32(w)
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	want := ^uint16(sum)
	if got := Checksum(src, mld2R, b); got != want {
		t.Fatalf("Checksum = %#04x, want %#04x", got, want)
	}
	b[2], b[3] = byte(want>>8), byte(want)
	if err := Verify(src, mld2R, b); err != nil {
		t.Fatal(err)
	}
	// Odd length exercises the padding byte.
	odd := append(append([]byte(nil), b...), 0x7f)
	if Checksum(src, mld2R, odd) == Checksum(src, mld2R, b) {
		t.Fatal("odd trailing byte ignored by Checksum")
	}
}

func TestParseErrors(t *testing.T) {
	rec := func(typ, aux byte, ns int, extra int) []byte {
		b := []byte{0x8f, 0, 0, 0, 0, 0, 0, 1, typ, aux, byte(ns >> 8), byte(ns)}
		b = append(b, make([]byte, 16+extra)...)
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short header", []byte{130, 0, 0}, ErrTruncated},
		{"unknown type", []byte{128, 0, 0, 0, 0, 0, 0, 0}, ErrUnknownType},
		{"short query", make24(130)[:20], ErrTruncated},
		{"query 25", append(make24(130), 0), ErrBadLength},
		{"query 27", append(make24(130), 0, 0, 0), ErrBadLength},
		{"v2 query sources past end", append(make24(130), 0, 0, 0, 2), ErrTruncated},
		{"short v1 report", make24(131)[:23], ErrTruncated},
		{"short done", make24(132)[:8], ErrTruncated},
		{"short v2 report", []byte{143, 0, 0, 0, 0, 0, 0}, ErrTruncated},
		{"v2 report records past end", []byte{143, 0, 0, 0, 0, 0, 0, 1}, ErrTruncated},
		{"record sources past end", rec(1, 0, 1, 0), ErrBadRecord},
		{"record aux past end", rec(1, 1, 0, 3), ErrBadRecord},
		{"huge record count", []byte{143, 0, 0, 0, 0, 0, 0xff, 0xff}, ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse = %v, %v; want %v", m, err, tc.want)
			}
		})
	}
}

func make24(typ byte) []byte {
	b := make([]byte, 24)
	b[0] = typ
	return b
}

func TestParseAuxAndTrailing(t *testing.T) {
	// Two records, the first with 8 octets of aux data, then 3 trailing octets.
	b := []byte{0x8f, 0, 0, 0, 0, 0, 0, 2}
	b = append(b, 5, 2, 0, 1)
	g := grp1.As16()
	b = append(b, g[:]...)
	s := s1.As16()
	b = append(b, s[:]...)
	b = append(b, 1, 2, 3, 4, 5, 6, 7, 8)
	b = append(b, 9 /* unknown type, kept */, 0, 0, 0)
	b = append(b, g[:]...)
	b = append(b, 0xaa, 0xbb, 0xcc)
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &V2Report{Records: []Record{
		{Type: AllowNewSources, Group: grp1, Sources: []netip.Addr{s1}},
		{Type: 9, Group: grp1},
	}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %#v, want %#v", m, want)
	}
	// Trailing and aux octets count in the checksum (RFC 3810 §5.2.11).
	ck := Checksum(llA, mld2R, b)
	b[2], b[3] = byte(ck>>8), byte(ck)
	if err := Verify(llA, mld2R, b); err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := Verify(llA, mld2R, b); !errors.Is(err, ErrBadChecksum) {
		t.Fatalf("trailing octet not covered by checksum: %v", err)
	}
}

func TestMarshalErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Message
	}{
		{"query version 3", &Query{Version: 3}},
		{"ipv4 group", &Query{Version: 2, Group: netip.MustParseAddr("239.1.1.1")}},
		{"invalid source", &Query{Version: 2, Sources: []netip.Addr{{}}}},
		{"record without group", &V2Report{Records: []Record{{Type: 1}}}},
		{"zoned source", &V2Report{Records: []Record{{Type: 1, Group: grp1, Sources: []netip.Addr{llA.WithZone("eth0")}}}}},
	} {
		if _, err := Marshal(tc.m, llA, allNd); err == nil {
			t.Errorf("%s: Marshal succeeded", tc.name)
		}
	}
}
