package pim

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func assertFrom(s netip.Addr, rpt bool, pref, metric uint32) *Assert {
	return &Assert{Group: SingleGroup(testG), Source: s, RPT: rpt, MetricPreference: pref, Metric: metric}
}

func (rt *trouter) assertState(s netip.Addr, ifx int) (assertState, netip.Addr) {
	rt.r.mu.Lock()
	defer rt.r.mu.Unlock()
	gs, ok := rt.r.groups[testG]
	if !ok {
		return asNoInfo, netip.Addr{}
	}
	m := map[int]*assertFSM(nil)
	if !s.IsValid() {
		if gs.wc == nil {
			return asNoInfo, netip.Addr{}
		}
		m = gs.wc.assert
	} else if e, ok := gs.src[s]; ok {
		m = e.assert
	}
	if a, ok := m[ifx]; ok {
		return a.state, a.winner
	}
	return asNoInfo, netip.Addr{}
}

// TestAssertStarG walks the (*,G) assert machine's rows (§4.6.2) on R,
// which forwards G onto link 1 for N1's join; N2 is the other forwarder.
// R's metric towards the RP is preference 1, metric 10.
func TestAssertStarG(t *testing.T) {
	n, r, down, _ := oneRouter(t, false, nil)
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{StarG(testRP)}, nil)))
	r.take()
	st := func() assertState { s, _ := r.assertState(netip.Addr{}, 1); return s }

	// NoInfo, inferior assert and CouldAssert: send Assert(*,G), Winner.
	down.inject(llN2, assertFrom(testS, true, 1, 100))
	if as := asserts(r.take()); st() != asWinner || len(as) != 1 || !as[0].RPT || as[0].Metric != 10 || as[0].Source != testS {
		t.Fatalf("inferior assert: %v, sent %+v", st(), as)
	}
	// Winner, AT expires (Assert_Time - Assert_Override_Interval): resend.
	n.run(AssertTime - AssertOverrideInterval)
	if as := asserts(r.take()); st() != asWinner || len(as) != 1 {
		t.Fatalf("winner refresh: %v, sent %d", st(), len(as))
	}
	// Winner, preferred assert: Loser, the interface leaves the olist.
	down.inject(llN2, assertFrom(testS, true, 1, 5))
	if s, w := r.assertState(netip.Addr{}, 1); s != asLoser || w != llN2 || len(r.oifs(netip.Addr{}, testG)) != 0 {
		t.Fatalf("preferred assert: %v winner %v, oifs %v", s, w, r.oifs(netip.Addr{}, testG))
	}
	// Loser, AT expires: NoInfo, forwarding again.
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{StarG(testRP)}, nil)))
	n.run(AssertTime)
	if st() != asNoInfo || !slices.Equal(r.oifs(netip.Addr{}, testG), []int{1}) {
		t.Fatalf("loser AT expiry: %v, oifs %v", st(), r.oifs(netip.Addr{}, testG))
	}
	// Loser, inferior assert (or AssertCancel) from the winner: NoInfo.
	down.inject(llN2, assertFrom(testS, true, 1, 5))
	down.inject(llN2, assertFrom(netip.IPv6Unspecified(), true, maxMetricPref, 0xffffffff))
	if st() != asNoInfo {
		t.Fatalf("cancel from the winner: %v", st())
	}
	// Loser, the winner goes away: NoInfo.
	down.inject(llN2, assertFrom(testS, true, 1, 5))
	down.inject(llN2, &Hello{Holdtime: new(uint16(0))})
	if st() != asNoInfo || !slices.Equal(r.oifs(netip.Addr{}, testG), []int{1}) {
		t.Fatalf("winner gone: %v", st())
	}
	// An assert from a non-neighbour is ignored.
	down.inject(llN2, assertFrom(testS, true, 1, 5)) // N2 is no neighbour now
	if st() != asNoInfo {
		t.Fatalf("assert from a non-neighbour: %v", st())
	}
	// Winner, CouldAssert -> false (the join goes): AssertCancel.
	down.fakeNeighbor(llN2, 1, 9)
	down.inject(llN2, assertFrom(testS, true, 1, 100))
	r.take()
	down.inject(llN1, jpTo(llR, 210, gset(testG, nil, []Source{StarG(testRP)})))
	n.run(3 * time.Second)
	if as := asserts(r.take()); len(as) != 1 || as[0].MetricPreference != maxMetricPref || !as[0].RPT {
		t.Errorf("assert cancel: %+v", as)
	}
}

// TestAssertSG: on the RPF interface the (S,G) assert winner becomes
// RPF'(S,G) and the next Join goes to it within t_override; downstream,
// (S,G) asserts prune the loser's interface from the (S,G) olist only,
// and with nothing left to forward it prunes (S,G) upstream (§4.6.1).
func TestAssertSG(t *testing.T) {
	n, r, down, up := oneRouter(t, false, nil)
	down.inject(llN1, jpTo(llR, 210, gset(testG, []Source{StarG(testRP), SG(testS)}, nil)))
	r.take()

	// Asserts on the RPF interface: V beats U; RPF'(S,G) = V.
	up.fakeNeighbor(llV, 1, 4)
	up.inject(llU, assertFrom(testS, false, 1, 50))
	up.inject(llV, assertFrom(testS, false, 1, 20))
	if s, w := r.assertState(testS, 2); s != asLoser || w != llV {
		t.Fatalf("upstream assert: %v %v", s, w)
	}
	if rt, _ := r.route(testS, testG); rt.UpstreamNeighbor != llV {
		t.Errorf("RPF'(S,G) %v, want the assert winner", rt.UpstreamNeighbor)
	}
	n.run(DefaultOverrideInterval)
	sent := r.take()
	if got := jpEntries(sent); !slices.Contains(got, "if2 fe80::98 ff1e::1234 join (S,G) 2001:db8:5::10") {
		t.Errorf("no join to the assert winner within t_override: %q", got)
	}
	if as := asserts(sent); as != nil {
		t.Errorf("asserted on the RPF interface: %+v", as)
	}

	// Downstream: R wins against an inferior assert, then loses.
	down.inject(llN2, assertFrom(testS, false, 1, 100))
	if as := asserts(r.take()); len(as) != 1 || as[0].RPT || as[0].Metric != 10 {
		t.Fatalf("(S,G) assert sent %+v", as)
	}
	down.inject(llN2, assertFrom(testS, false, 0, 100)) // better preference
	if s, w := r.assertState(testS, 1); s != asLoser || w != llN2 {
		t.Fatalf("(S,G) loser: %v %v", s, w)
	}
	if len(r.oifs(testS, testG)) != 0 || !slices.Equal(r.oifs(netip.Addr{}, testG), []int{1}) {
		t.Errorf("(S,G) oifs %v, (*,G) oifs %v", r.oifs(testS, testG), r.oifs(netip.Addr{}, testG))
	}
	if got := jpEntries(r.take()); !slices.Contains(got, "if2 fe80::98 ff1e::1234 prune (S,G) 2001:db8:5::10") {
		t.Errorf("the loser did not prune (S,G) upstream: %q", got)
	}
	// IgnoreAssertState on the downstream link: the loss is forgotten.
	r.r.SetIfaceOptions(1, IfaceOptions{IgnoreAssertState: true})
	if !slices.Equal(r.oifs(testS, testG), []int{1}) {
		t.Errorf("ignore-assert-state: (S,G) oifs %v", r.oifs(testS, testG))
	}
}

// TestRouterConcurrent drives a Router from several goroutines (run
// under -race): messages, membership, RPF changes and timers.
func TestRouterConcurrent(t *testing.T) {
	n, r, down, _ := oneRouter(t, false, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			g := netip.AddrFrom16([16]byte{0xff, 0x1e, 15: byte(i % 20)})
			_ = r.r.SetLocalMembership(1, g, i%2 == 0, nil)
			r.r.RPFChanged()
			_ = r.r.Routes()
		}
	}()
	for i := range 200 {
		g := netip.AddrFrom16([16]byte{0xff, 0x1e, 15: byte(i % 20)})
		down.inject(llN1, jpTo(llR, 210, gset(g, []Source{StarG(testRP)}, []Source{SGRpt(testS)})))
		n.run(time.Second)
	}
	<-done
	check(t, r.r)
}
