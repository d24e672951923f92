package pim

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// TestJoinPruneHostile: J/Ps the Router must not act on leave no state,
// are counted by reason, and do not panic.
func TestJoinPruneHostile(t *testing.T) {
	n, r, down, _ := oneRouter(t, false, func(c *RouterConfig) { c.MaxEntries = 50 })
	stranger := netip.MustParseAddr("fe80::66")
	wc := StarG(testRP)
	noState := func(what string) {
		t.Helper()
		if rs := r.r.Routes(); len(rs) != 0 {
			t.Errorf("%s made state: %+v", what, rs)
		}
	}

	// From a router that sent no Hello: the Interface drops it, and the
	// Router drops it too when handed one.
	if d := down.inject(stranger, jpTo(llR, 210, gset(testG, []Source{wc}, nil))); d != DropNotNeighbor {
		t.Errorf("J/P from a non-neighbour: %v", d)
	}
	if d := r.r.HandleJoinPrune(down.ifc.Name(), stranger, jpTo(llR, 210, gset(testG, []Source{wc}, nil))); d != JPDropNotNeighbor {
		t.Errorf("Router: J/P from a non-neighbour: %v", d)
	}
	if d := r.r.HandleJoinPrune("nosuch", llN1, jpTo(llR, 210, gset(testG, []Source{wc}, nil))); d != JPDropUnknownIface {
		t.Errorf("unknown interface: %v", d)
	}
	noState("non-neighbour")

	// Upstream Neighbor not us (and not a neighbour): dropped.
	if d := r.r.HandleJoinPrune(down.ifc.Name(), llN1, jpTo(stranger, 210, gset(testG, []Source{wc}, nil))); d != JPDropNotForUs {
		t.Errorf("J/P to a stranger: %v", d)
	}
	// To another neighbour: used for suppression only, no downstream state.
	if d := r.r.HandleJoinPrune(down.ifc.Name(), llN1, jpTo(llN2, 210, gset(testG, []Source{wc}, nil))); d != JPDropNone {
		t.Errorf("J/P to a neighbour: %v", d)
	}
	noState("J/P to another router")

	// Bad group sets and entries: skipped and counted.
	bad := jpTo(llR, 210,
		gset(netip.MustParseAddr("ff02::1"), []Source{wc}, nil),                   // link scope
		GroupSet{Group: Group{Addr: testG, MaskLen: 16}, Joins: []Source{wc}},     // a range
		gset(netip.MustParseAddr("2001:db8::1"), []Source{SG(testS)}, nil),        // unicast "group"
		gset(testG, []Source{{Addr: testS, MaskLen: 64, Sparse: true}}, nil),      // source range
		gset(testG, []Source{SG(netip.MustParseAddr("ff1e::9"))}, nil),            // multicast source
		gset(testG, []Source{{Addr: testS, MaskLen: 128, Wildcard: true}}, nil),   // W without R
		gset(testG, []Source{StarG(netip.MustParseAddr("2001:db8:ff::99"))}, nil), // wrong RP
		gset(testSSM, []Source{wc}, nil),                                          // (*,G) in SSM
		gset(testG, []Source{SG(netip.MustParseAddr("fe80::5"))}, nil),            // link-local source
	)
	r.r.HandleJoinPrune(down.ifc.Name(), llN1, bad)
	noState("bad entries")
	st := r.r.Stats()
	for reason, want := range map[JPDropReason]uint64{JPDropBadGroup: 3, JPDropBadSource: 4, JPDropRPMismatch: 1, JPDropNoRP: 1} {
		if st.JPDrops[reason] != want {
			t.Errorf("%v drops: %d, want %d", reason, st.JPDrops[reason], want)
		}
	}

	// On the wire: truncated group sets and unknown address families are
	// dropped by the Interface before the Router sees them.
	good, err := Marshal(jpTo(llR, 210, gset(testG, []Source{wc, SG(testS)}, nil)), llN1, AllPIMRouters)
	if err != nil {
		t.Fatal(err)
	}
	send := func(b []byte) DropReason {
		b = append([]byte(nil), b...)
		binary.BigEndian.PutUint16(b[2:], 0)
		binary.BigEndian.PutUint16(b[2:], Checksum(llN1, AllPIMRouters, b))
		return down.ifc.HandlePacket(Packet{Src: llN1, Dst: AllPIMRouters, HopLimit: 1, Payload: b})
	}
	if d := send(good[:len(good)-7]); d != DropTruncated {
		t.Errorf("truncated source list: %v", d)
	}
	if d := send(good[:headerLen+jpFixedLen+10]); d != DropTruncated {
		t.Errorf("truncated group header: %v", d)
	}
	fam := append([]byte(nil), good...)
	fam[headerLen+jpFixedLen] = 1 // group address family IPv4
	if d := send(fam); d != DropMalformed {
		t.Errorf("IPv4 group family: %v", d)
	}
	fam = append([]byte(nil), good...)
	fam[headerLen] = 29 // upstream neighbour: an unknown family
	if d := send(fam); d != DropMalformed {
		t.Errorf("unknown family: %v", d)
	}
	noState("malformed packets")

	// A flood of joins: state stops at MaxEntries, the rest is counted.
	for i := range 40 {
		var sets []GroupSet
		for j := range 10 {
			g := netip.AddrFrom16([16]byte{0xff, 0x1e, 13: 1, 14: byte(i), 15: byte(j)})
			sets = append(sets, gset(g, []Source{wc, SG(testS)}, nil))
		}
		if d := down.inject(llN1, jpTo(llR, 210, sets...)); d != DropNone {
			t.Fatalf("flood message %d: %v", i, d)
		}
	}
	if got := len(r.r.Routes()); got != 50 {
		t.Errorf("%d routes after the flood, want MaxEntries 50", got)
	}
	if st := r.r.Stats(); st.JPDrops[JPDropStateLimit] != 800-50 {
		t.Errorf("state-limit drops %d, want 750", st.JPDrops[JPDropStateLimit])
	}
	// The state expires with its holdtime and the limit frees up.
	n.run(211 * time.Second)
	if got := len(r.r.Routes()); got != 0 {
		t.Errorf("%d routes after the holdtime", got)
	}
}

// TestLocalMembershipAtLimit: listeners refused at MaxEntries get their
// entry once there is room.
func TestLocalMembershipAtLimit(t *testing.T) {
	n, r, down, _ := oneRouter(t, false, func(c *RouterConfig) { c.MaxEntries = 1 })
	r.r.SetIfaceOptions(1, IfaceOptions{IgnoreDRState: true})
	down.inject(llN1, jpTo(llR, 30, gset(testG2, []Source{StarG(testRP)}, nil)))
	if err := r.r.SetLocalMembership(1, testG, true, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.route(netip.Addr{}, testG); ok {
		t.Fatal("entry beyond MaxEntries")
	}
	n.run(31 * time.Second) // G2's join expires
	if !r.joined(netip.Addr{}, testG) {
		t.Errorf("listeners' entry not made when room came: %+v", r.r.Routes())
	}
}
