package pim

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	llR  = netip.MustParseAddr("fe80::1")  // the router under test, downstream link
	llRu = netip.MustParseAddr("fe80::2")  // its upstream link
	llN1 = netip.MustParseAddr("fe80::21") // downstream neighbours
	llN2 = netip.MustParseAddr("fe80::22")
	llU  = netip.MustParseAddr("fe80::99") // the upstream neighbour (RPF' of RP and S)
	llV  = netip.MustParseAddr("fe80::98") // another upstream neighbour
)

// oneRouter is R with a downstream link (ifindex 1) holding neighbours
// N1 and N2 (none when single) and an upstream link (ifindex 2) holding U,
// the next hop towards the RP and S.
func oneRouter(t *testing.T, single bool, mod func(*RouterConfig)) (*tnet, *trouter, *tport, *tport) {
	n := newNet(t)
	r := n.router("R", mod)
	r.rpf.Set(rpPfx, RPFRoute{Ifindex: 2, Nexthop: llU, Preference: 1, Metric: 10})
	r.rpf.Set(srcPfx, RPFRoute{Ifindex: 2, Nexthop: llU, Preference: 1, Metric: 10})
	down := r.attach(1, n.lan("d"), llR, IfaceOptions{}, nil)
	up := r.attach(2, n.lan("u"), llRu, IfaceOptions{}, nil)
	down.fakeNeighbor(llN1, 1, 1)
	if !single {
		down.fakeNeighbor(llN2, 1, 2)
	}
	up.fakeNeighbor(llU, 1, 3)
	n.run(10 * time.Second) // first Hellos
	r.take()
	return n, r, down, up
}

func wantEntries(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: sent\n\t%q\nwant\n\t%q", what, got, want)
	}
}

// TestDownstreamStarG walks the rows of RFC 7761 §4.5.2's table.
func TestDownstreamStarG(t *testing.T) {
	n, r, down, _ := oneRouter(t, false, nil)
	wc := StarG(testRP)
	state := func() dsState { return r.dsOf(KindStarG, netip.Addr{}, testG, 1) }

	// NoInfo, Receive Join(*,G): -> Join, ET = holdtime.
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{wc}, nil)))
	if state() != dsJoin || !slices.Equal(r.oifs(netip.Addr{}, testG), []int{1}) {
		t.Fatalf("after Join(*,G): %v, oifs %v", state(), r.oifs(netip.Addr{}, testG))
	}
	wantEntries(t, "upstream on the first join", jpEntries(r.take()), "if2 fe80::99 ff1e::1234 join (*,G) 2001:db8:ff::1")
	rt, _ := r.route(netip.Addr{}, testG)
	if rt.OIfs[0].Expires != t0.Add(10*time.Second+210*time.Second) || rt.RPFIface != 2 || rt.UpstreamNeighbor != llU || rt.Flags != FlagWC|FlagRPT {
		t.Errorf("route %+v", rt)
	}

	// Join, Receive Join(*,G): ET = max(ET, HT).
	n.run(100 * time.Second)
	down.inject(llN1, jpTo(llR, 10, gset(testG, []Source{wc}, nil)))
	if rt, _ := r.route(netip.Addr{}, testG); rt.OIfs[0].Expires != t0.Add(220*time.Second) {
		t.Errorf("a shorter holdtime moved ET to %v", rt.OIfs[0].Expires.Sub(t0))
	}
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{wc}, nil)))
	if rt, _ := r.route(netip.Addr{}, testG); rt.OIfs[0].Expires != t0.Add(320*time.Second) {
		t.Errorf("a longer holdtime left ET at %v", rt.OIfs[0].Expires.Sub(t0))
	}

	// Join, Receive Prune(*,G): -> Prune-Pending for J/P_Override_Interval
	// (3 s); still forwarding meanwhile.
	r.take()
	down.inject(llN2, jpTo(llR, 210, gset(testG, nil, []Source{wc})))
	if state() != dsPrunePending {
		t.Fatalf("after Prune(*,G): %v", state())
	}
	n.run(2900 * time.Millisecond)
	if state() != dsPrunePending || len(r.oifs(netip.Addr{}, testG)) != 1 {
		t.Fatalf("before the override interval: %v, oifs %v", state(), r.oifs(netip.Addr{}, testG))
	}
	// Prune-Pending, Receive Join(*,G): -> Join, PPT cancelled.
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{wc}, nil)))
	n.run(5 * time.Second)
	if state() != dsJoin {
		t.Fatalf("override: %v", state())
	}
	wantEntries(t, "overridden prune", jpEntries(r.take()))

	// Prune-Pending, PPT expires: -> NoInfo, PruneEcho, and upstream Prune.
	down.inject(llN2, jpTo(llR, 210, gset(testG, nil, []Source{wc})))
	n.run(3 * time.Second)
	if state() != dsNoInfo {
		t.Fatalf("after the PPT: %v", state())
	}
	wantEntries(t, "prune echo and upstream prune", jpEntries(r.take()),
		"if1 fe80::1 ff1e::1234 prune (*,G) 2001:db8:ff::1",
		"if2 fe80::99 ff1e::1234 prune (*,G) 2001:db8:ff::1")
	if _, ok := r.route(netip.Addr{}, testG); ok {
		t.Error("(*,G) route kept after the last downstream state went")
	}

	// NoInfo, Receive Prune(*,G): nothing.
	down.inject(llN1, jpTo(llR, 210, gset(testG, nil, []Source{wc})))
	if state() != dsNoInfo || len(r.take()) != 0 {
		t.Error("prune in NoInfo did something")
	}

	// Join, ET expires: -> NoInfo.
	down.inject(llN1, jpTo(llR, 30, gset(testG, []Source{wc}, nil)))
	n.run(29 * time.Second)
	if state() != dsJoin {
		t.Fatalf("before ET: %v", state())
	}
	n.run(time.Second)
	if state() != dsNoInfo {
		t.Fatalf("after ET: %v", state())
	}
	// Routes reported: added, and deleted, as they changed.
	r.mu.Lock()
	var adds, dels int
	for _, u := range r.updates {
		if u.Source.IsValid() || u.Group != testG {
			t.Errorf("update for %v,%v", u.Source, u.Group)
		}
		if u.Deleted {
			dels++
		} else if len(u.OIfs) == 1 {
			adds++
		}
	}
	r.mu.Unlock()
	if adds != 2 || dels != 2 {
		t.Errorf("route updates: %d with the oif, %d deletions; want 2 and 2", adds, dels)
	}
}

// TestDownstreamSinglePrune: with one neighbour on the link, a Prune
// takes effect at once and is not echoed (§4.5.2, §4.5.3).
func TestDownstreamSinglePrune(t *testing.T) {
	_, r, down, _ := oneRouter(t, true, nil)
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{SG(testS)}, nil)))
	if r.dsOf(KindSG, testS, testG, 1) != dsJoin {
		t.Fatal("Join(S,G) not taken")
	}
	if rt, _ := r.route(testS, testG); rt.Flags != FlagSPT || !rt.Joined || rt.RPFIface != 2 || len(rt.OIfs) != 1 {
		t.Errorf("(S,G) route %+v", rt)
	}
	r.take()
	down.inject(llN1, jpTo(llR, 210, gset(testG, nil, []Source{SG(testS)})))
	if r.dsOf(KindSG, testS, testG, 1) != dsNoInfo {
		t.Fatal("prune from the only neighbour not at once")
	}
	wantEntries(t, "upstream prune, no echo", jpEntries(r.take()), "if2 fe80::99 ff1e::1234 prune (S,G) 2001:db8:5::10")
}

// TestDownstreamSG: §4.5.3 rows: Join, Prune-Pending, Join override, PPT.
func TestDownstreamSG(t *testing.T) {
	n, r, down, _ := oneRouter(t, false, nil)
	state := func() dsState { return r.dsOf(KindSG, testS, testG, 1) }
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{SG(testS)}, nil)))
	wantEntries(t, "(S,G) join upstream", jpEntries(r.take()), "if2 fe80::99 ff1e::1234 join (S,G) 2001:db8:5::10")
	down.inject(llN2, jpTo(llR, 210, gset(testG, nil, []Source{SG(testS)})))
	if state() != dsPrunePending {
		t.Fatalf("%v", state())
	}
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{SG(testS)}, nil)))
	if state() != dsJoin {
		t.Fatalf("%v", state())
	}
	down.inject(llN2, jpTo(llR, 210, gset(testG, nil, []Source{SG(testS)})))
	n.run(3 * time.Second)
	if state() != dsNoInfo {
		t.Fatalf("%v", state())
	}
	wantEntries(t, "echo and upstream prune", jpEntries(r.take()),
		"if1 fe80::1 ff1e::1234 prune (S,G) 2001:db8:5::10",
		"if2 fe80::99 ff1e::1234 prune (S,G) 2001:db8:5::10")
}

// TestDownstreamSGRpt walks §4.5.4: Prune(S,G,rpt) to Prune-Pending and
// Pruned, Join(*,G) with and without the prune in the same message (the
// temporary states and End of Message), Join(S,G,rpt), ET expiry.
func TestDownstreamSGRpt(t *testing.T) {
	n, r, down, _ := oneRouter(t, false, nil)
	wc, rpt := StarG(testRP), SGRpt(testS)
	state := func() dsState { return r.dsOf(KindSGRpt, testS, testG, 1) }
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{wc}, nil)))
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{wc}, []Source{rpt})))
	if state() != dsPrunePending {
		t.Fatalf("NoInfo + Prune(S,G,rpt): %v", state())
	}
	if got := r.oifs(testS, testG); !slices.Equal(got, []int{1}) {
		t.Errorf("Prune-Pending: S forwarded on %v, want [1]", got)
	}
	n.run(3 * time.Second)
	if state() != dsPruned {
		t.Fatalf("PPT expiry: %v", state())
	}
	rt, ok := r.route(testS, testG)
	if !ok || len(rt.OIfs) != 0 || rt.Flags != FlagRPT || rt.RPFIface != 2 {
		t.Errorf("pruned S: route %+v (want RPT, no oifs)", rt)
	}
	if got := r.oifs(netip.Addr{}, testG); !slices.Equal(got, []int{1}) {
		t.Errorf("(*,G) oifs %v", got)
	}
	// The router has (*,G) joined and S's inherited_olist(S,G,rpt) is
	// empty: PruneDesired(S,G,rpt), so its (*,G) join carries the prune.
	r.take()
	n.run(60 * time.Second)
	wantEntries(t, "periodic (*,G) join with the rpt prune", jpEntries(r.take()),
		"if2 fe80::99 ff1e::1234 join (*,G) 2001:db8:ff::1",
		"if2 fe80::99 ff1e::1234 prune (S,G,rpt) 2001:db8:5::10")

	// Pruned, Join(*,G) with the prune again: PruneTmp, then Pruned.
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{wc}, []Source{rpt})))
	if state() != dsPruned {
		t.Fatalf("Join(*,G)+Prune(S,G,rpt) in Pruned: %v", state())
	}
	// Pruned, Join(*,G) alone: PruneTmp, End of Message: NoInfo.
	down.inject(llN2, jpTo(llR, 210, gset(testG, []Source{wc}, nil)))
	if state() != dsNoInfo || len(r.oifs(testS, testG)) != 0 && !slices.Equal(r.oifs(testS, testG), []int{1}) {
		t.Fatalf("Join(*,G) alone in Pruned: %v", state())
	}
	if _, ok := r.route(testS, testG); ok {
		t.Error("(S,G,rpt) entry kept after its prune went")
	}
	// Join(S,G,rpt): Prune-Pending -> NoInfo.
	down.inject(llN1, jpTo(llR, 210, gset(testG, nil, []Source{rpt})))
	down.inject(llN2, jpTo(llR, 210, gset(testG, []Source{rpt}, nil)))
	if state() != dsNoInfo {
		t.Fatalf("Join(S,G,rpt) in Prune-Pending: %v", state())
	}
	// Pruned, ET expires: NoInfo.
	down.inject(llN1, jpTo(llR, 20, gset(testG, []Source{wc}, []Source{rpt})))
	n.run(3 * time.Second)
	if state() != dsPruned {
		t.Fatalf("%v", state())
	}
	n.run(17 * time.Second)
	if state() != dsNoInfo {
		t.Fatalf("after ET: %v", state())
	}
}

// A Join with Holdtime 0xffff is held until pruned (§4.9.5): the route's
// interface is Joined with no expiry, which is not the same as a local
// listener's entry (Joined false, no expiry).
func TestDownstreamJoinForever(t *testing.T) {
	_, r, down, _ := oneRouter(t, false, nil)
	down.inject(llN1, jpTo(llR, 0xffff, gset(testG, []Source{StarG(testRP)}, nil)))
	rt, ok := r.route(netip.Addr{}, testG)
	if !ok || len(rt.OIfs) != 1 {
		t.Fatalf("route %+v %v", rt, ok)
	}
	if o := rt.OIfs[0]; !o.Joined || !o.Expires.IsZero() || o.Local {
		t.Errorf("OIf %+v, want joined, never expiring, not local", o)
	}
	// ET = max(ET, HT): a 210 s join after it keeps it forever.
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{StarG(testRP)}, nil)))
	if rt, _ := r.route(netip.Addr{}, testG); !rt.OIfs[0].Joined || !rt.OIfs[0].Expires.IsZero() {
		t.Errorf("a 210 s join after it: OIf %+v", rt.OIfs[0])
	}
}
