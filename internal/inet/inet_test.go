package inet

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// refChecksum is RFC 1071 done the slow, obvious way: the pseudo-header and
// the payload laid out in one buffer, summed as 16-bit words.
func refChecksum(src, dst netip.Addr, next uint8, b []byte) uint16 {
	buf := make([]byte, 0, 40+len(b)+1)
	s, d := src.As16(), dst.As16()
	buf = append(buf, s[:]...)
	buf = append(buf, d[:]...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(b)))
	buf = append(buf, 0, 0, 0, next)
	buf = append(buf, b...)
	if len(buf)%2 == 1 {
		buf = append(buf, 0)
	}
	var sum uint32
	for i := 0; i < len(buf); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(buf[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func TestChecksum(t *testing.T) {
	src, dst := netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::16")
	for _, n := range []int{0, 1, 4, 7, 28, 29, 1500} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + 3)
		}
		want := refChecksum(src, dst, ProtoICMPv6, b)
		if got := Checksum(src, dst, ProtoICMPv6, b, -1); got != want {
			t.Errorf("%d octets: %#04x, want %#04x", n, got, want)
		}
		if n < 4 {
			continue
		}
		// Stored into its field, the checksum verifies to zero; with the
		// field skipped it is the same whatever the field holds.
		b[2], b[3] = 0, 0
		c := Checksum(src, dst, ProtoICMPv6, b, 2)
		binary.BigEndian.PutUint16(b[2:], c)
		if got := Checksum(src, dst, ProtoICMPv6, b, -1); got != 0 {
			t.Errorf("%d octets: stored checksum verifies to %#04x", n, got)
		}
		if got := Checksum(src, dst, ProtoICMPv6, b, 2); got != c {
			t.Errorf("%d octets: field not skipped: %#04x, want %#04x", n, got, c)
		}
	}
}

func TestUDPChecksumNeverZero(t *testing.T) {
	src, dst := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("ff0e::1")
	// Find a payload whose checksum computes to zero: it must go out as
	// 0xffff.
	b := make([]byte, 10)
	for v := range 1 << 16 {
		binary.BigEndian.PutUint16(b[8:], uint16(v))
		if Checksum(src, dst, ProtoUDP, b, 6) == 0 {
			if got := UDPChecksum(src, dst, b); got != 0xffff {
				t.Fatalf("zero checksum sent as %#04x", got)
			}
			return
		}
	}
	t.Fatal("no payload with a zero checksum found")
}

func TestScopes(t *testing.T) {
	for _, tc := range []struct {
		g     string
		scope int
		link  bool
	}{
		{"ff01::1", 1, true}, {"ff02::16", 2, true}, {"ff00::1", 0, true},
		{"ff05::1:3", 5, false}, {"ff0e::1:1", 14, false}, {"ff3e::1:3", 14, false}, {"ff12::1", 2, true},
	} {
		g := netip.MustParseAddr(tc.g)
		if s := MulticastScope(g); s != tc.scope {
			t.Errorf("%s: scope %d, want %d", tc.g, s, tc.scope)
		}
		if l := LinkScope(g); l != tc.link {
			t.Errorf("%s: link scope %v, want %v", tc.g, l, tc.link)
		}
	}
}
