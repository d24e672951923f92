package pim

import (
	"errors"
	"net/netip"
	"testing"
)

func TestRPSet(t *testing.T) {
	rpA, rpB := netip.MustParseAddr("2001:db8:ff::1"), netip.MustParseAddr("2001:db8:ff::2")
	s, err := NewRPSet([]StaticRP{{Address: rpA}, {Address: rpB, Groups: netip.MustParsePrefix("ff1e:10::/32")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		g      string
		rp     netip.Addr
		ssm    bool
		hasRP  bool
		routed bool
	}{
		{"ff1e::1", rpA, false, true, true},
		{"ff1e:10::1", rpB, false, true, true},
		{"ff05::1", rpA, false, true, true},
		{"ff3e::1234", netip.Addr{}, true, false, true},
		{"ff35::1", netip.Addr{}, true, false, true},
		{"ff3e:40:2001:db8::1", rpA, false, true, true}, // plen 64: unicast-prefix-based, not ff3x::/32
		{"ff02::1", rpA, false, true, false},
	} {
		g := netip.MustParseAddr(tc.g)
		rp, ok := s.RP(g)
		if rp != tc.rp || ok != tc.hasRP || s.IsSSM(g) != tc.ssm || routable(g) != tc.routed {
			t.Errorf("%s: RP %v %v, SSM %v, routable %v; want %v %v %v %v", tc.g, rp, ok, s.IsSSM(g), routable(g), tc.rp, tc.hasRP, tc.ssm, tc.routed)
		}
	}
	var none *RPSet
	if _, ok := none.RP(netip.MustParseAddr("ff1e::1")); ok || !none.IsSSM(netip.MustParseAddr("ff3e::1")) {
		t.Error("nil RPSet: want no RP and the default SSM range")
	}
	custom, err := NewRPSet(nil, []netip.Prefix{netip.MustParsePrefix("ff1e:99::/32")})
	if err != nil || !custom.IsSSM(netip.MustParseAddr("ff1e:99::1")) || custom.IsSSM(netip.MustParseAddr("ff3e::1")) {
		t.Errorf("custom SSM range: %v", err)
	}
	for _, bad := range [][]StaticRP{
		{{Address: netip.MustParseAddr("fe80::1")}},
		{{Address: netip.MustParseAddr("ff1e::1")}},
		{{Address: rpA, Groups: netip.MustParsePrefix("2001:db8::/32")}},
		{{Address: rpA}, {Address: rpB}},
	} {
		if _, err := NewRPSet(bad, nil); err == nil {
			t.Errorf("NewRPSet(%v) accepted", bad)
		}
	}
}

func TestStaticRPF(t *testing.T) {
	var f StaticRPF
	if _, err := f.Lookup(netip.MustParseAddr("2001:db8::1")); !errors.Is(err, ErrNoRoute) {
		t.Errorf("empty table: %v", err)
	}
	f.Set(netip.MustParsePrefix("2001:db8::/32"), RPFRoute{Ifindex: 1})
	f.Set(netip.MustParsePrefix("2001:db8:1::/48"), RPFRoute{Ifindex: 2, Nexthop: llB})
	if r, _ := f.Lookup(netip.MustParseAddr("2001:db8:1::5")); r.Ifindex != 2 || r.Nexthop != llB {
		t.Errorf("longest match: %+v", r)
	}
	f.Delete(netip.MustParsePrefix("2001:db8:1::/48"))
	if r, _ := f.Lookup(netip.MustParseAddr("2001:db8:1::5")); r.Ifindex != 1 {
		t.Errorf("after delete: %+v", r)
	}
}
