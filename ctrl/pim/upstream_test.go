package pim

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestUpstreamStarG walks §4.5.6: JoinDesired from local membership, the
// periodic Join Timer, See Join (suppression), See Prune (override), the
// upstream neighbour's GenID change, RPF' change, JoinDesired false.
func TestUpstreamStarG(t *testing.T) {
	n, r, down, up := oneRouter(t, true, nil)
	up.fakeNeighbor(llV, 1, 4)
	down.ifc.SetDRPriority(10)
	if err := r.r.SetLocalMembership(1, testG, true, nil); err != nil {
		t.Fatal(err)
	}
	// NotJoined, JoinDesired -> true: Join(*,G) to RPF'(*,G), JT = t_periodic.
	wantEntries(t, "first join", jpEntries(r.take()), "if2 fe80::99 ff1e::1234 join (*,G) 2001:db8:ff::1")
	if rt, _ := r.route(netip.Addr{}, testG); !rt.Joined || len(rt.OIfs) != 1 || !rt.OIfs[0].Local || !rt.OIfs[0].Expires.IsZero() {
		t.Errorf("route %+v", rt)
	}
	n.run(59 * time.Second)
	wantEntries(t, "before t_periodic", jpEntries(r.take()))
	n.run(time.Second)
	wantEntries(t, "JT expiry", jpEntries(r.take()), "if2 fe80::99 ff1e::1234 join (*,G) 2001:db8:ff::1")

	// See Join(*,G) to RPF'(*,G): JT = max(JT, t_joinsuppress); with the
	// fixed draw, t_suppressed = 1.1 + 0.5 × 0.3 = 1.25 × 60 s = 75 s.
	n.run(10 * time.Second)
	up.inject(llV, jpTo(llU, 210, gset(testG, []Source{StarG(testRP)}, nil)))
	n.run(74 * time.Second)
	wantEntries(t, "suppressed", jpEntries(r.take()))
	n.run(time.Second)
	wantEntries(t, "after t_suppressed", jpEntries(r.take()), "if2 fe80::99 ff1e::1234 join (*,G) 2001:db8:ff::1")

	// See Prune(*,G) to RPF'(*,G): JT = min(JT, t_override), t_override =
	// 0.5 × 2.5 s.
	n.run(10 * time.Second)
	up.inject(llV, jpTo(llU, 210, gset(testG, nil, []Source{StarG(testRP)})))
	n.run(1249 * time.Millisecond)
	wantEntries(t, "before t_override", jpEntries(r.take()))
	n.run(time.Millisecond)
	wantEntries(t, "override", jpEntries(r.take()), "if2 fe80::99 ff1e::1234 join (*,G) 2001:db8:ff::1")

	// A J/P to a router that is not a neighbour: dropped, counted.
	if d := r.r.HandleJoinPrune("R-if2", llV, jpTo(netip.MustParseAddr("fe80::77"), 210, gset(testG, nil, []Source{StarG(testRP)}))); d != JPDropNotForUs {
		t.Errorf("J/P to a stranger: %v", d)
	}

	// RPF'(*,G) GenID changes: JT = min(JT, t_override).
	n.run(10 * time.Second)
	up.fakeNeighbor(llU, 1, 99)
	n.run(1250 * time.Millisecond)
	wantEntries(t, "GenID change", jpEntries(r.take()), "if2 fe80::99 ff1e::1234 join (*,G) 2001:db8:ff::1")

	// RPF'(*,G) changes (not by an Assert): Join to the new, Prune to the old.
	r.rpf.Set(rpPfx, RPFRoute{Ifindex: 2, Nexthop: llV})
	r.r.RPFChanged()
	wantEntries(t, "RPF' change", jpEntries(r.take()),
		"if2 fe80::98 ff1e::1234 join (*,G) 2001:db8:ff::1",
		"if2 fe80::99 ff1e::1234 prune (*,G) 2001:db8:ff::1")
	if rt, _ := r.route(netip.Addr{}, testG); rt.UpstreamNeighbor != llV {
		t.Errorf("upstream neighbour %v", rt.UpstreamNeighbor)
	}
	// RPF' gone (no route): a Prune to the old one, nothing to join;
	// a Join when the route returns.
	r.rpf.Delete(rpPfx)
	r.r.RPFChanged()
	wantEntries(t, "no route", jpEntries(r.take()), "if2 fe80::98 ff1e::1234 prune (*,G) 2001:db8:ff::1")
	if rt, _ := r.route(netip.Addr{}, testG); rt.UpstreamNeighbor.IsValid() || rt.RPFIface != 0 {
		t.Errorf("route without RPF %+v", rt)
	}
	r.rpf.Set(rpPfx, RPFRoute{Ifindex: 2, Nexthop: llU})
	r.r.RPFChanged()
	wantEntries(t, "route back", jpEntries(r.take()), "if2 fe80::99 ff1e::1234 join (*,G) 2001:db8:ff::1")

	// Joined, JoinDesired -> false: Prune(*,G), and the entry goes.
	if err := r.r.SetLocalMembership(1, testG, false, nil); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, "leave", jpEntries(r.take()), "if2 fe80::99 ff1e::1234 prune (*,G) 2001:db8:ff::1")
	if len(r.r.Routes()) != 0 {
		t.Errorf("routes left: %+v", r.r.Routes())
	}
	n.run(5 * time.Minute)
	wantEntries(t, "after leaving", jpEntries(r.take()))
}

// TestUpstreamSG walks §4.5.7 with include-mode listeners, and SSM: an SSM
// group gets (S,G) state only, never (*,G).
func TestUpstreamSG(t *testing.T) {
	n, r, down, up := oneRouter(t, true, nil)
	up.fakeNeighbor(llV, 1, 4)
	down.ifc.SetDRPriority(10)
	if err := r.r.SetLocalMembership(1, testSSM, true, nil); err != nil {
		t.Fatal(err)
	}
	if len(r.r.Routes()) != 0 || len(r.take()) != 0 {
		t.Fatal("EXCLUDE {} in an SSM group made state")
	}
	if err := r.r.SetLocalMembership(1, testSSM, false, []netip.Addr{testS}); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, "SSM join", jpEntries(r.take()), "if2 fe80::99 ff3e::1234 join (S,G) 2001:db8:5::10")
	rt, ok := r.route(testS, testSSM)
	if !ok || rt.Flags != FlagSPT || rt.RP.IsValid() || !slices.Equal(r.oifs(testS, testSSM), []int{1}) {
		t.Errorf("SSM route %+v", rt)
	}
	// See Join(S,G): suppressed; See Prune(S,G,rpt) to RPF'(S,G): override.
	up.inject(llV, jpTo(llU, 210, gset(testSSM, []Source{SG(testS)}, nil)))
	n.run(74 * time.Second)
	wantEntries(t, "suppressed (S,G)", jpEntries(r.take()))
	up.inject(llV, jpTo(llU, 210, gset(testSSM, nil, []Source{SGRpt(testS)})))
	n.run(1250 * time.Millisecond)
	wantEntries(t, "override (S,G)", jpEntries(r.take()), "if2 fe80::99 ff3e::1234 join (S,G) 2001:db8:5::10")
	// A (*,G) join for an SSM group from downstream: dropped, counted.
	down.fakeNeighbor(llN2, 1, 5)
	down.inject(llN2, jpTo(llR, 210, gset(testSSM, []Source{StarG(testRP)}, nil)))
	if st := r.r.Stats(); st.JPDrops[JPDropNoRP] != 1 {
		t.Errorf("no-rp drops %d", st.JPDrops[JPDropNoRP])
	}
	if err := r.r.SetLocalMembership(1, testSSM, false, nil); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, "SSM leave", jpEntries(r.take()), "if2 fe80::99 ff3e::1234 prune (S,G) 2001:db8:5::10")
}

// TestLocalMembershipDR: local listeners count only where this router is
// DR, unless IgnoreDRState; a DR change moves the join state.
func TestLocalMembershipDR(t *testing.T) {
	_, r, down, _ := oneRouter(t, true, nil)
	// N1 has priority 1, as R: the higher address, N1 (fe80::21), is DR.
	if down.ifc.IsDR() {
		t.Fatal("R is DR")
	}
	if err := r.r.SetLocalMembership(1, testG, true, nil); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, "not DR", jpEntries(r.take()))
	if rt, ok := r.route(netip.Addr{}, testG); !ok || rt.Joined || len(rt.OIfs) != 0 {
		t.Errorf("non-DR route %+v", rt)
	}
	r.r.SetIfaceOptions(1, IfaceOptions{IgnoreDRState: true})
	wantEntries(t, "ignore-dr-state", jpEntries(r.take()), "if2 fe80::99 ff1e::1234 join (*,G) 2001:db8:ff::1")
	r.r.SetIfaceOptions(1, IfaceOptions{})
	wantEntries(t, "dr-state again", jpEntries(r.take()), "if2 fe80::99 ff1e::1234 prune (*,G) 2001:db8:ff::1")
	down.ifc.SetDRPriority(10) // R becomes DR
	wantEntries(t, "became DR", jpEntries(r.take()), "if2 fe80::99 ff1e::1234 join (*,G) 2001:db8:ff::1")
	// Include and exclude sources: pim_include(S,G) and pim_exclude(S,G).
	if err := r.r.SetLocalMembership(1, testG, true, []netip.Addr{testS}); err != nil {
		t.Fatal(err)
	}
	if rt, ok := r.route(testS, testG); !ok || len(rt.OIfs) != 0 || rt.Flags != FlagRPT {
		t.Errorf("excluded S: route %+v", rt)
	}
	wantEntries(t, "exclude S", jpEntries(r.take()),
		"if2 fe80::99 ff1e::1234 join (*,G) 2001:db8:ff::1",
		"if2 fe80::99 ff1e::1234 prune (S,G,rpt) 2001:db8:5::10")
	if err := r.r.SetLocalMembership(1, testG, false, []netip.Addr{testS2}); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, "include S2", jpEntries(r.take()),
		"if2 fe80::99 ff1e::1234 join (S,G) 2001:db8:5::20",
		"if2 fe80::99 ff1e::1234 prune (*,G) 2001:db8:ff::1")
	if err := r.r.SetLocalMembership(9, testG, true, nil); err == nil {
		t.Error("membership on an unknown interface accepted")
	}
	if err := r.r.SetLocalMembership(1, netip.MustParseAddr("ff02::1"), true, nil); err == nil {
		t.Error("link-scope group accepted")
	}
}

// TestSPTSwitch: the last-hop router's data hooks: with the source active
// and the SPT bit set, the router joins (S,G) towards S and, RPF'(S,G)
// differing from RPF'(*,G), prunes S off the RP tree (§4.5.7, §4.5.9).
func TestSPTSwitch(t *testing.T) {
	_, r, _, up := oneRouter(t, true, func(c *RouterConfig) {})
	up.fakeNeighbor(llV, 1, 4)
	r.rpf.Set(srcPfx, RPFRoute{Ifindex: 2, Nexthop: llV})
	r.r.SetIfaceOptions(1, IfaceOptions{IgnoreDRState: true})
	if err := r.r.SetLocalMembership(1, testG, true, nil); err != nil {
		t.Fatal(err)
	}
	r.take()
	r.r.SetSourceActive(testS, testG, true)
	wantEntries(t, "source active", jpEntries(r.take()), "if2 fe80::98 ff1e::1234 join (S,G) 2001:db8:5::10")
	if rt, _ := r.route(testS, testG); rt.Flags != FlagSPT || rt.UpstreamNeighbor != llV {
		t.Errorf("(S,G) route %+v", rt)
	}
	r.r.SetSPTBit(testS, testG, true)
	wantEntries(t, "spt bit", jpEntries(r.take()),
		"if2 fe80::99 ff1e::1234 join (*,G) 2001:db8:ff::1",
		"if2 fe80::99 ff1e::1234 prune (S,G,rpt) 2001:db8:5::10")
	r.r.SetSourceActive(testS, testG, false)
	r.r.SetSPTBit(testS, testG, false)
	wantEntries(t, "source gone", jpEntries(r.take()),
		"if2 fe80::98 ff1e::1234 prune (S,G) 2001:db8:5::10",
		"if2 fe80::99 ff1e::1234 join (*,G) 2001:db8:ff::1")
	if _, ok := r.route(testS, testG); ok {
		t.Error("(S,G) kept")
	}
}

func TestPackJoinPrunes(t *testing.T) {
	var sets []GroupSet
	total := 0
	for i := range 40 {
		g := netip.AddrFrom16([16]byte{0xff, 0x1e, 14: byte(i >> 8), 15: byte(i)})
		set := GroupSet{Group: SingleGroup(g)}
		for j := range i % 7 * 20 {
			set.Joins = append(set.Joins, SG(netip.AddrFrom16([16]byte{0x20, 0x01, 13: byte(i), 14: byte(j >> 8), 15: byte(j)})))
		}
		set.Prunes = append(set.Prunes, SGRpt(testS))
		total += len(set.Joins) + len(set.Prunes)
		sets = append(sets, set)
	}
	msgs := packJoinPrunes(llU, 210, sets, 1500-ipv6HeaderLen)
	got := 0
	for _, m := range msgs {
		b, err := Marshal(m, llR, AllPIMRouters)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 1460 {
			t.Errorf("message of %d octets", len(b))
		}
		for _, g := range m.Groups {
			got += len(g.Joins) + len(g.Prunes)
		}
	}
	if got != total {
		t.Errorf("%d entries packed, want %d", got, total)
	}
	// Full messages: no more than one in excess of the minimum.
	if min := total*encSourceLen/(1460-26) + 1; len(msgs) > min+len(sets)/10+1 {
		t.Errorf("%d messages for %d entries", len(msgs), total)
	}
}
