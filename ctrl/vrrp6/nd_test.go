package vrrp6

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"testing"
)

func TestVirtualMAC(t *testing.T) {
	if got := VirtualMAC(1).String(); got != "00:00:5e:00:02:01" {
		t.Fatalf("VirtualMAC(1) = %s", got)
	}
	if got := VirtualMAC(255).String(); got != "00:00:5e:00:02:ff" {
		t.Fatalf("VirtualMAC(255) = %s", got)
	}
	if got := MulticastMAC(GroupAddr).String(); got != "33:33:00:00:00:12" {
		t.Fatalf("MulticastMAC(ff02::12) = %s", got)
	}
}

func TestAdvertFrame(t *testing.T) {
	a := &Advert{VRID: 7, Priority: 120, MaxAdvertInterval: 100, Addrs: testVIP}
	b, err := BuildAdvertFrame(a, testSrc)
	if err != nil {
		t.Fatal(err)
	}
	// Ethernet: dst 33:33:00:00:00:12, src 00:00:5e:00:02:07, IPv6.
	if want := []byte{0x33, 0x33, 0, 0, 0, 0x12, 0, 0, 0x5e, 0, 2, 7, 0x86, 0xdd}; !bytes.Equal(b[:14], want) {
		t.Fatalf("ethernet header % x, want % x", b[:14], want)
	}
	ip := b[14:54]
	if ip[0]>>4 != 6 || ip[6] != 112 || ip[7] != 255 || int(ip[4])<<8|int(ip[5]) != a.Len() {
		t.Fatalf("ipv6 header % x: want version 6, next header 112, hop limit 255, length %d", ip, a.Len())
	}
	f, err := ParseAdvertFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &AdvertFrame{
		EthDst: net.HardwareAddr{0x33, 0x33, 0, 0, 0, 0x12},
		EthSrc: VirtualMAC(7),
		IP:     IPv6Header{TrafficClass: TrafficClassNetworkControl, HopLimit: 255, Src: testSrc, Dst: GroupAddr},
		Advert: *a,
	}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("parse:\n got %+v\nwant %+v", f, want)
	}
	// Ethernet padding after the IPv6 payload is ignored.
	if _, err := ParseAdvertFrame(append(bytes.Clone(b), 0, 0, 0)); err != nil {
		t.Fatalf("padded frame: %v", err)
	}
	// Checksum is verified.
	bad := bytes.Clone(b)
	bad[len(bad)-1] ^= 1
	if _, err := ParseAdvertFrame(bad); !errors.Is(err, ErrBadChecksum) {
		t.Fatalf("corrupt frame: got %v, want ErrBadChecksum", err)
	}
	if _, err := BuildAdvertFrame(a, netip.MustParseAddr("2001:db8::1")); !errors.Is(err, ErrBadLinkLocal) {
		t.Fatalf("global source: got %v, want ErrBadLinkLocal", err)
	}
}

func TestUnsolicitedNA(t *testing.T) {
	target := netip.MustParseAddr("2001:db8::50")
	b, err := BuildUnsolicitedNA(1, target, target)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x33, 0x33, 0, 0, 0, 1, 0, 0, 0x5e, 0, 2, 1, 0x86, 0xdd}; !bytes.Equal(b[:14], want) {
		t.Fatalf("ethernet header % x, want % x", b[:14], want)
	}
	icmp := b[54:]
	// type 136, code 0, flags R|O (0xa0), target, option 2 len 1 + vmac.
	if icmp[0] != 136 || icmp[1] != 0 || icmp[4] != 0xa0 || icmp[24] != 2 || icmp[25] != 1 ||
		!bytes.Equal(icmp[26:32], VirtualMAC(1)) || len(icmp) != 32 {
		t.Fatalf("icmpv6 % x", icmp)
	}
	if c := refChecksum(target, AllNodesAddr, 58, icmp); c != 0 {
		t.Fatalf("icmpv6 checksum does not verify (residual %#04x)", c)
	}
	f, err := ParseNAFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &NAFrame{
		EthDst: net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1},
		EthSrc: VirtualMAC(1),
		IP:     IPv6Header{TrafficClass: TrafficClassNetworkControl, HopLimit: 255, Src: target, Dst: AllNodesAddr},
		NA:     NeighborAdvert{Router: true, Override: true, Target: target, TargetLLA: VirtualMAC(1)},
	}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("parse:\n got %+v\nwant %+v", f, want)
	}
}

func TestNAFrameRoundTripVariants(t *testing.T) {
	for _, na := range []NeighborAdvert{
		{Target: testSrc},
		{Solicited: true, Target: testSrc, TargetLLA: net.HardwareAddr{1, 2, 3, 4, 5, 6}},
		{Router: true, Solicited: true, Override: true, Target: testVIP[1]},
	} {
		f := &NAFrame{EthDst: VirtualMAC(1), EthSrc: VirtualMAC(2),
			IP: IPv6Header{HopLimit: 255, Src: testSrc, Dst: AllNodesAddr}, NA: na}
		b, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseNAFrame(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, f) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, f)
		}
	}
}

func TestParseNAFrameErrors(t *testing.T) {
	target := netip.MustParseAddr("2001:db8::50")
	good, _ := BuildUnsolicitedNA(1, target, target)
	resum := func(b []byte) []byte {
		icmp := b[54:]
		icmp[2], icmp[3] = 0, 0
		c := checksum(target, AllNodesAddr, 58, icmp)
		icmp[2], icmp[3] = byte(c>>8), byte(c)
		return b
	}
	tests := []struct {
		name string
		mod  func(b []byte) []byte
		want error
	}{
		{"short", func(b []byte) []byte { return b[:20] }, ErrTruncated},
		{"ipv4 ethertype", func(b []byte) []byte { b[12], b[13] = 8, 0; return b }, ErrNotIPv6},
		{"ip version 4", func(b []byte) []byte { b[14] = 0x40; return b }, ErrBadIPv6},
		{"next header udp", func(b []byte) []byte { b[20] = 17; return b }, ErrNotNA},
		{"payload length too long", func(b []byte) []byte { b[19]++; return b }, ErrTruncated},
		{"neighbor solicitation", func(b []byte) []byte { b[54] = 135; return resum(b) }, ErrNotNA},
		{"code 1", func(b []byte) []byte { b[55] = 1; return resum(b) }, ErrBadNA},
		{"option length 0", func(b []byte) []byte { b[54+25] = 0; return resum(b) }, ErrBadNA},
		{"option length 2", func(b []byte) []byte { b[54+25] = 2; return resum(b) }, ErrBadNA},
		{"bad checksum", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrBadChecksum},
		{"icmp truncated", func(b []byte) []byte { b[18], b[19] = 0, 20; return b[:54+20] }, ErrTruncated},
	}
	for _, tt := range tests {
		if _, err := ParseNAFrame(tt.mod(bytes.Clone(good))); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

// FuzzAdvertFrame: parse -> marshal -> parse must be stable.
func FuzzAdvertFrame(f *testing.F) {
	good, _ := BuildAdvertFrame(&Advert{VRID: 1, Priority: 200, MaxAdvertInterval: 100, Addrs: testVIP}, testSrc)
	f.Add(good)
	f.Add(good[:54])                // regression: IPv6 header, no payload
	f.Add(append(good, 0, 0, 0, 0)) // regression: Ethernet padding
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 54+maxFuzzLen {
			return
		}
		fr, err := ParseAdvertFrame(b)
		if err != nil {
			return
		}
		out, err := fr.Marshal()
		if err != nil {
			t.Fatalf("marshal of parsed %+v: %v", fr, err)
		}
		fr2, err := ParseAdvertFrame(out)
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if !reflect.DeepEqual(fr, fr2) {
			t.Fatalf("round trip:\n%+v\n%+v", fr, fr2)
		}
	})
}

// FuzzNAFrame: parse -> marshal -> parse must be stable.
func FuzzNAFrame(f *testing.F) {
	target := netip.MustParseAddr("2001:db8::50")
	good, _ := BuildUnsolicitedNA(1, target, target)
	f.Add(good)
	f.Add(good[:54+24])                         // regression: no options, stale payload length
	f.Add(append(good, 1, 1, 0, 0, 0, 0, 0, 0)) // regression: padding after payload
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 54+maxFuzzLen {
			return
		}
		fr, err := ParseNAFrame(b)
		if err != nil {
			return
		}
		out, err := fr.Marshal()
		if err != nil {
			t.Fatalf("marshal of parsed %+v: %v", fr, err)
		}
		fr2, err := ParseNAFrame(out)
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if !reflect.DeepEqual(fr, fr2) {
			t.Fatalf("round trip:\n%+v\n%+v", fr, fr2)
		}
	})
}
