package pim

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	llAu = netip.MustParseAddr("fe80::a") // upstream router on the shared LAN
	llBu = netip.MustParseAddr("fe80::b")
	llCu = netip.MustParseAddr("fe80::c")
	llBd = netip.MustParseAddr("fe80::2b") // B and C on the receivers' LAN
	llCd = netip.MustParseAddr("fe80::2c")
)

// threeRouters: A, B and C share LAN u (ifindex 1 on each); B and C
// reach the RP and S through A. With shared, B and C also share the
// receivers' LAN d (ifindex 2), where C is DR (higher address); else
// each has a receivers' LAN of its own. bMetric is B's route metric
// towards RP and S (C's is 10), for the Assert election.
func threeRouters(t *testing.T, shared bool, bOpt IfaceOptions, bMetric uint32) (n *tnet, a, b, c *trouter) {
	n = newNet(t)
	u := n.lan("u")
	a, b, c = n.router("A", nil), n.router("B", nil), n.router("C", nil)
	a.rpf.Set(rpPfx, RPFRoute{Ifindex: 2})
	a.rpf.Set(srcPfx, RPFRoute{Ifindex: 2})
	a.attach(1, u, llAu, IfaceOptions{}, nil)
	a.attach(2, n.lan("a-up"), netip.MustParseAddr("fe80::a2"), IfaceOptions{}, nil)
	for _, x := range []struct {
		r      *trouter
		lu, ld netip.Addr
		metric uint32
		opt    IfaceOptions
		lan    string
	}{{b, llBu, llBd, bMetric, bOpt, "db"}, {c, llCu, llCd, 10, IfaceOptions{}, "dc"}} {
		x.r.rpf.Set(rpPfx, RPFRoute{Ifindex: 1, Nexthop: llAu, Preference: 1, Metric: x.metric})
		x.r.rpf.Set(srcPfx, RPFRoute{Ifindex: 1, Nexthop: llAu, Preference: 1, Metric: x.metric})
		x.r.attach(1, u, x.lu, IfaceOptions{}, nil)
	}
	var d *tlan
	if shared {
		d = n.lan("d")
	}
	for _, x := range []struct {
		r   *trouter
		ll  netip.Addr
		opt IfaceOptions
		lan string
	}{{b, llBd, bOpt, "db"}, {c, llCd, IfaceOptions{}, "dc"}} {
		l := d
		if l == nil {
			l = n.lan(x.lan)
		}
		x.r.attach(2, l, x.ll, x.opt, nil)
	}
	n.run(10 * time.Second) // Hellos
	for _, r := range []*trouter{a, b, c} {
		r.take()
	}
	return n, a, b, c
}

func countJoins(ss []tsent, kind EntryKind) int {
	n := 0
	for _, s := range ss {
		if jp, ok := s.msg.(*JoinPrune); ok {
			for _, g := range jp.Groups {
				for _, x := range g.Joins {
					if x.Kind() == kind {
						n++
					}
				}
			}
		}
	}
	return n
}

func sentWithin(ss []tsent, from, to time.Duration, want string) bool {
	for _, s := range ss {
		if s.at >= from && s.at <= to && slices.Contains(jpEntries([]tsent{s}), want) {
			return true
		}
	}
	return false
}

// TestLANJoinSuppressionAndPruneOverride: B and C join (*,G) through A on
// one LAN. Each suppresses its periodic join when it sees the other's;
// A keeps the state. When C prunes, B overrides within t_override and A
// keeps forwarding; when B prunes too, nobody overrides and A stops
// forwarding after J/P_Override_Interval, echoing the prune.
func TestLANJoinSuppressionAndPruneOverride(t *testing.T) {
	n, a, b, c := threeRouters(t, false, IfaceOptions{}, 10)
	if err := b.r.SetLocalMembership(2, testG, true, nil); err != nil {
		t.Fatal(err)
	}
	n.run(5 * time.Second)
	if err := c.r.SetLocalMembership(2, testG, true, nil); err != nil {
		t.Fatal(err)
	}
	for range 60 {
		n.run(10 * time.Second)
		if a.dsOf(KindStarG, netip.Addr{}, testG, 1) != dsJoin {
			t.Fatalf("A lost the (*,G) join state at %v", n.clk.Now().Sub(t0))
		}
	}
	bj, cj := countJoins(b.take(), KindStarG), countJoins(c.take(), KindStarG)
	// Ten minutes: one router sends every t_periodic, the other stays
	// suppressed (its join timer keeps being pushed to t_suppressed).
	if bj+cj > 13 || min(bj, cj) > 2 {
		t.Errorf("(*,G) joins in 10 min: B %d, C %d; want one router suppressed", bj, cj)
	}
	if got := a.oifs(netip.Addr{}, testG); !slices.Equal(got, []int{1}) {
		t.Fatalf("A forwards on %v", got)
	}

	// C leaves: Prune(*,G) to A; B overrides it.
	start := n.clk.Now().Sub(t0)
	if err := c.r.SetLocalMembership(2, testG, false, nil); err != nil {
		t.Fatal(err)
	}
	n.run(0)
	if a.dsOf(KindStarG, netip.Addr{}, testG, 1) != dsPrunePending {
		t.Fatalf("A after C's prune: %v", a.dsOf(KindStarG, netip.Addr{}, testG, 1))
	}
	n.run(10 * time.Second)
	if !sentWithin(b.take(), start, start+DefaultOverrideInterval, "if1 fe80::a ff1e::1234 join (*,G) 2001:db8:ff::1") {
		t.Error("B did not override C's prune within t_override")
	}
	if a.dsOf(KindStarG, netip.Addr{}, testG, 1) != dsJoin || !slices.Equal(a.oifs(netip.Addr{}, testG), []int{1}) {
		t.Fatalf("A after the override: %v, oifs %v", a.dsOf(KindStarG, netip.Addr{}, testG, 1), a.oifs(netip.Addr{}, testG))
	}
	if got := a.take(); countJoins(got, KindStarG) != 0 || len(jpEntries(got)) != 0 {
		t.Errorf("A sent %q", jpEntries(got))
	}

	// B leaves too: nobody overrides; A prunes after the override interval.
	if err := b.r.SetLocalMembership(2, testG, false, nil); err != nil {
		t.Fatal(err)
	}
	n.run(0)
	n.run(a.ports[1].ifc.JPOverrideInterval() - time.Millisecond)
	if got := a.oifs(netip.Addr{}, testG); !slices.Equal(got, []int{1}) {
		t.Errorf("A stopped forwarding before J/P_Override_Interval: %v", got)
	}
	n.run(2 * time.Millisecond)
	if _, ok := a.route(netip.Addr{}, testG); ok {
		t.Error("A kept (*,G) after the unoverridden prune")
	}
	wantEntries(t, "A's prune echo", jpEntries(a.take()), "if1 fe80::a ff1e::1234 prune (*,G) 2001:db8:ff::1")
	for _, r := range []*trouter{a, b, c} {
		if len(r.drops) != 0 {
			t.Errorf("%s dropped %v", r.name, r.drops)
		}
	}
}

// TestLANDRAndIgnoreDRState: listeners on a LAN that B and C share,
// where C is DR: only C joins, unless B has IgnoreDRState (the VRRP6
// standby), when both pull the stream.
func TestLANDRAndIgnoreDRState(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		n, a, b, c := threeRouters(t, true, IfaceOptions{IgnoreDRState: ignore}, 10)
		if !c.ports[2].ifc.IsDR() {
			t.Fatal("C is not DR")
		}
		for _, r := range []*trouter{b, c} {
			if err := r.r.SetLocalMembership(2, testG, true, nil); err != nil {
				t.Fatal(err)
			}
		}
		n.run(time.Second)
		if !c.joined(netip.Addr{}, testG) || !slices.Equal(c.oifs(netip.Addr{}, testG), []int{2}) {
			t.Errorf("ignore=%v: the DR did not join", ignore)
		}
		if b.joined(netip.Addr{}, testG) != ignore || slices.Equal(b.oifs(netip.Addr{}, testG), []int{2}) != ignore {
			t.Errorf("ignore=%v: B joined %v, oifs %v", ignore, b.joined(netip.Addr{}, testG), b.oifs(netip.Addr{}, testG))
		}
		if joins := countJoins(b.take(), KindStarG); (joins > 0) != ignore {
			t.Errorf("ignore=%v: B sent %d joins", ignore, joins)
		}
		if a.dsOf(KindStarG, netip.Addr{}, testG, 1) != dsJoin {
			t.Errorf("ignore=%v: A has no join state", ignore)
		}
	}
}

// TestLANAssert: B (IgnoreDRState) and C both forward G onto the shared
// LAN. Data on the LAN triggers an Assert; C has the better metric, wins,
// and B stops forwarding there, until C cancels. With IgnoreAssertState
// on B's interface, B never asserts and keeps forwarding whatever C says.
func TestLANAssert(t *testing.T) {
	t.Run("elect", func(t *testing.T) {
		n, _, b, c := threeRouters(t, true, IfaceOptions{IgnoreDRState: true}, 20)
		for _, r := range []*trouter{b, c} {
			if err := r.r.SetLocalMembership(2, testG, true, nil); err != nil {
				t.Fatal(err)
			}
		}
		n.run(time.Second)
		b.take()
		c.take()
		b.r.DataOnOIF(2, testS, testG) // B sees C's copy on the LAN
		n.run(time.Second)
		as := asserts(b.take())
		if len(as) != 1 || !as[0].RPT || as[0].Source != testS || as[0].Metric != 20 {
			t.Fatalf("B's asserts %+v", as)
		}
		if as := asserts(c.take()); len(as) != 1 || as[0].Metric != 10 {
			t.Fatalf("C did not answer the inferior assert: %+v", as)
		}
		if got := b.oifs(netip.Addr{}, testG); len(got) != 0 {
			t.Errorf("the loser B forwards on %v", got)
		}
		if got := c.oifs(netip.Addr{}, testG); !slices.Equal(got, []int{2}) {
			t.Errorf("the winner C forwards on %v", got)
		}
		// The winner refreshes every Assert_Time - Assert_Override_Interval;
		// the loser stays loser.
		n.run(10 * time.Minute)
		if as := asserts(c.take()); len(as) < 3 {
			t.Errorf("C refreshed its assert %d times in 10 min", len(as))
		}
		if got := b.oifs(netip.Addr{}, testG); len(got) != 0 {
			t.Errorf("B forwards on %v after the refreshes", got)
		}
		// C's listeners leave: it can no longer assert, cancels, and B
		// forwards again.
		if err := c.r.SetLocalMembership(2, testG, false, nil); err != nil {
			t.Fatal(err)
		}
		n.run(time.Second)
		if as := asserts(c.take()); len(as) != 1 || as[0].MetricPreference != maxMetricPref {
			t.Errorf("C's assert cancel %+v", as)
		}
		if got := b.oifs(netip.Addr{}, testG); !slices.Equal(got, []int{2}) {
			t.Errorf("B after the cancel forwards on %v", got)
		}
	})
	t.Run("ignore-assert-state", func(t *testing.T) {
		n, _, b, c := threeRouters(t, true, IfaceOptions{IgnoreDRState: true, IgnoreAssertState: true}, 20)
		for _, r := range []*trouter{b, c} {
			if err := r.r.SetLocalMembership(2, testG, true, nil); err != nil {
				t.Fatal(err)
			}
		}
		n.run(time.Second)
		b.r.DataOnOIF(2, testS, testG)
		c.r.DataOnOIF(2, testS, testG)
		n.run(5 * time.Minute)
		if as := asserts(b.take()); len(as) != 0 {
			t.Errorf("B sent asserts %+v", as)
		}
		if as := asserts(c.take()); len(as) == 0 {
			t.Error("C sent no assert")
		}
		if got := b.oifs(netip.Addr{}, testG); !slices.Equal(got, []int{2}) {
			t.Errorf("B with ignore-assert-state forwards on %v", got)
		}
		if st := b.r.Stats(); st.AssertDrop == 0 || st.AssertRx != 0 {
			t.Errorf("B assert counters %+v", st)
		}
	})
}

// TestLANSPTSwitch: B switched to the SPT through C (RPF'(S,G) = C,
// RPF'(*,G) = A): it joins (S,G) to C and prunes S off the RP tree at A,
// which stops forwarding S onto the LAN after the override interval.
func TestLANSPTSwitch(t *testing.T) {
	n, a, b, c := threeRouters(t, false, IfaceOptions{}, 10)
	b.rpf.Set(srcPfx, RPFRoute{Ifindex: 1, Nexthop: llCu})
	c.rpf.Set(srcPfx, RPFRoute{Ifindex: 2}) // S is on C's other link
	if err := b.r.SetLocalMembership(2, testG, true, nil); err != nil {
		t.Fatal(err)
	}
	n.run(time.Second)
	b.r.SetSourceActive(testS, testG, true)
	b.r.SetSPTBit(testS, testG, true)
	n.run(time.Second)
	got := jpEntries(b.take())
	for _, want := range []string{
		"if1 fe80::c ff1e::1234 join (S,G) 2001:db8:5::10",
		"if1 fe80::a ff1e::1234 prune (S,G,rpt) 2001:db8:5::10",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("B sent %q, want %q among them", got, want)
		}
	}
	n.run(5 * time.Second)
	if a.dsOf(KindSGRpt, testS, testG, 1) != dsPruned {
		t.Errorf("A's (S,G,rpt) state %v", a.dsOf(KindSGRpt, testS, testG, 1))
	}
	if rt, ok := a.route(testS, testG); !ok || len(rt.OIfs) != 0 || rt.Flags != FlagRPT {
		t.Errorf("A's route for S %+v", rt)
	}
	if got := a.oifs(netip.Addr{}, testG); !slices.Equal(got, []int{1}) {
		t.Errorf("A's (*,G) oifs %v", got)
	}
	if rt, ok := c.route(testS, testG); !ok || rt.RPFIface != 2 || rt.UpstreamNeighbor.IsValid() || !slices.Equal(c.oifs(testS, testG), []int{1}) {
		t.Errorf("C's route for S %+v", rt)
	}
}
