package pim

import (
	"net/netip"
	"testing"
	"time"
)

// TestDataArrivedAssert: data failing the RPF check on an interface of
// the olist runs the assert machines, as DataOnOIF does (§4.2, §4.6).
func TestDataArrivedAssert(t *testing.T) {
	n, _, b, c := threeRouters(t, true, IfaceOptions{IgnoreDRState: true}, 20)
	for _, r := range []*trouter{b, c} {
		fatalIf(t, r.r.SetLocalMembership(2, testG, true, nil))
	}
	n.run(time.Second)
	b.take()
	c.take()
	b.r.DataArrived(2, testS, testG) // C's copy on the receivers' LAN
	n.run(time.Second)
	if as := asserts(b.take()); len(as) != 1 || !as[0].RPT || as[0].Source != testS {
		t.Fatalf("B's asserts %+v", as)
	}
	if _, ok := b.route(testS, testG); ok {
		t.Error("(S,G) made by data off the RPF interface")
	}
}

// TestDataArrivedTransit: a router forwarding (*,G) for PIM neighbours
// only (no local receivers) does not switch to the SPT; data on an
// interface that is not RPF_interface(S) sets no SPT bit; a source that
// is not directly connected starts no KAT.
func TestDataArrivedTransit(t *testing.T) {
	_, r, down, _ := oneRouter(t, true, nil)
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{StarG(testRP)}, nil)))
	r.take()
	r.r.DataArrived(2, testS, testG)
	if _, ok := r.route(testS, testG); ok {
		t.Fatal("transit router made (S,G)")
	}
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{SG(testS)}, nil)))
	r.take()
	r.r.DataArrived(1, testS, testG) // wrong interface
	if r.sptBit(testS, testG) || r.katLeft(testS, testG) != 0 {
		t.Errorf("data off the RPF interface: SPT bit %v, KAT %v", r.sptBit(testS, testG), r.katLeft(testS, testG))
	}
	r.r.DataArrived(2, testS, testG)
	if !r.sptBit(testS, testG) || r.katLeft(testS, testG) != KeepalivePeriod {
		t.Errorf("data on the SPT: SPT bit %v, KAT %v", r.sptBit(testS, testG), r.katLeft(testS, testG))
	}
	// Garbage in: ignored.
	r.r.DataArrived(9, testS, testG)
	r.r.DataArrived(2, netip.MustParseAddr("fe80::1"), testG)
	r.r.DataArrived(2, testS, netip.MustParseAddr("ff02::1"))
}

// TestLastHopSwitchOnRPTree: a last-hop router with local receivers and
// SPTImmediate starts the KAT and joins (S,G) on the first packet down the
// RP tree; SPTNever does nothing; the KAT runs out 210 s after the last
// packet and the (S,G) join goes with it.
func TestLastHopSwitchOnRPTree(t *testing.T) {
	for _, policy := range []SPTSwitchPolicy{SPTImmediate, SPTNever} {
		t.Run(policy.String(), func(t *testing.T) {
			n, r, _, up := oneRouter(t, true, func(c *RouterConfig) { c.SPTSwitch = policy })
			up.fakeNeighbor(llV, 1, 4)
			r.rpf.Set(srcPfx, RPFRoute{Ifindex: 2, Nexthop: llV})
			r.r.SetIfaceOptions(1, IfaceOptions{IgnoreDRState: true})
			fatalIf(t, r.r.SetLocalMembership(1, testG, true, nil))
			r.take()
			r.r.DataArrived(2, testS, testG)
			got := jpEntries(r.take())
			if policy == SPTNever {
				wantEntries(t, "never", got)
				return
			}
			wantEntries(t, "immediate", got, "if2 fe80::98 ff1e::1234 join (S,G) 2001:db8:5::10")
			// More data on the same interface: RPF'(S,G) (V) and RPF'(*,G)
			// (U) share it, so Update_SPTbit cannot tell the trees apart
			// and leaves the SPT bit clear (§4.2.2): no (S,G,rpt) prune.
			r.r.DataArrived(2, testS, testG)
			if r.sptBit(testS, testG) || len(jpEntries(r.take())) != 0 {
				t.Error("SPT bit set with both trees on one interface")
			}
			// S through U as well: RPF'(S,G) = RPF'(*,G), the SPT bit is
			// set, nothing to prune.
			r.rpf.Set(srcPfx, RPFRoute{Ifindex: 2, Nexthop: llU})
			r.r.RPFChanged()
			r.take()
			r.r.DataArrived(2, testS, testG)
			if !r.sptBit(testS, testG) {
				t.Error("no SPT bit with one upstream")
			}
			for _, e := range jpEntries(r.take()) {
				if contains([]string{e}, "if2 fe80::99 ff1e::1234 prune (S,G,rpt) 2001:db8:5::10") {
					t.Errorf("pruned S off a shared tree: %q", e)
				}
			}
			n.run(KeepalivePeriod - time.Millisecond)
			if !r.joined(testS, testG) {
				t.Fatal("(S,G) left before the KAT expired")
			}
			r.take()
			n.run(time.Millisecond)
			got = jpEntries(r.take())
			if !contains(got, "if2 fe80::99 ff1e::1234 prune (S,G) 2001:db8:5::10") {
				t.Errorf("KAT expired: sent %q", got)
			}
			if _, ok := r.route(testS, testG); ok {
				t.Error("(S,G) kept after the KAT")
			}
		})
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
