package e2e

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/internal/labtest"
)

// TestMLD runs the MLD scenarios in parallel, each in its own namespaces,
// sharing one build of the binaries.
func TestMLD(t *testing.T) {
	b := build(t)
	for _, tc := range []struct {
		name string
		f    func(*testing.T, bins)
	}{
		{"JoinForwardLeave", testJoinForwardLeave},
		{"SilentHostExpiresAtMALI", testSilentHostExpires},
		{"QuerierElection", testQuerierElection},
		{"ProxyUpstream", testProxyUpstream},
		{"HostileInput", testHostileInput},
		{"NoLinkScopeRoutes", testNoLinkScopeRoutes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.f(t, b)
		})
	}
}

// testJoinForwardLeave: Linux hosts join with their own stacks (ASM with
// IPV6_JOIN_GROUP, SSM with MCAST_JOIN_SOURCE_GROUP, one host forced to
// MLDv1); hotcast learns them (RFC 3810 §7.4, §8.3.2), installs the routes,
// and the XDP fast path delivers each group to exactly the hosts that
// joined it. Leaves then stop the traffic within the Last Listener Query
// Time (§7.6.3, §9.10), except while another host on the LAN still
// listens.
func testJoinForwardLeave(t *testing.T, b bins) {
	var (
		g1 = netip.MustParseAddr("ff1e::10:1") // ASM: hA and hB on ge1
		gs = netip.MustParseAddr("ff3e::20:1") // SSM: (srcS, gs) by hB on ge1
		g2 = netip.MustParseAddr("ff1e::30:1") // ASM: hC, an MLDv1 host on ge1
		g3 = netip.MustParseAddr("ff1e::40:1") // ASM: hD alone on ge2
		gx = netip.MustParseAddr("ff1e::50:1") // nobody
	)
	l := newLAN(t, b, lanOpts{hosts: []string{"hA", "hB", "hC"}, v1: []string{"hC"}, solo: "hD", snooping: true})
	hA, hB, hC, hD := l.hosts["hA"], l.hosts["hB"], l.hosts["hC"], l.hosts["hD"]
	joinA := hA.joinASM(t, g1)
	joinB := hB.joinASM(t, g1)
	joinBs := hB.joinSSM(t, srcS, gs)
	joinC := hC.joinASM(t, g2)
	hD.joinASM(t, g3)

	// The MLD records, as the hosts' stacks reported them.
	type want struct {
		iface   string
		g       netip.Addr
		mode    string
		sources []string
		version int
		by      *host
	}
	wants := []want{
		{"ge1", g1, "exclude", nil, 2, nil},
		{"ge1", gs, "include", []string{srcS.String()}, 2, hB},
		{"ge1", g2, "exclude", nil, 1, hC},
		{"ge2", g3, "exclude", nil, 2, hD},
	}
	check := func(gs []api.MLDGroup) string {
		for _, w := range wants {
			r := findGroup(gs, w.iface, w.g)
			if r == nil {
				return "no record of " + w.g.String() + " on " + w.iface
			}
			var srcs []string
			for _, s := range r.Sources {
				if s.ExpiresIn > 0 {
					srcs = append(srcs, s.Address)
				}
			}
			if !strings.EqualFold(r.FilterMode, w.mode) || !slices.Equal(srcs, w.sources) || r.Version != w.version {
				return fmt.Sprintf("record %+v, want %s %v version %d", *r, w.mode, w.sources, w.version)
			}
			if w.by != nil && r.LastReporter != w.by.ll.String() {
				return "record " + w.g.String() + " last reporter " + r.LastReporter + ", want " + w.by.ll.String()
			}
			if w.mode == "exclude" && (r.ExpiresIn <= 0 || r.ExpiresIn > mali.Seconds()) {
				return "record " + w.g.String() + " filter timer out of (0, MALI]"
			}
		}
		for _, r := range gs {
			if r.Group == gx.String() {
				return "record of a group nobody joined"
			}
		}
		return ""
	}
	var last string
	t0 := time.Now()
	for last = check(mldGroups(l.d)); last != ""; last = check(mldGroups(l.d)) {
		if time.Since(t0) > 5*time.Second {
			l.dump(t)
			t.Fatalf("memberships not learned: %s", last)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("memberships learned %s after the joins", since(t0))

	ft := fwdTable(l.d)
	for g, w := range map[netip.Addr][]string{
		g1: {"(*, ff1e::10:1) ge3 -> ge1"},
		gs: {"(2001:db8:40::2, ff3e::20:1) ge3 -> ge1"},
		g2: {"(*, ff1e::30:1) ge3 -> ge1"},
		g3: {"(*, ff1e::40:1) ge3 -> ge2"},
		gx: nil,
	} {
		if got := routesOf(ft, g); !slices.Equal(got, w) {
			t.Errorf("routes of %s: %q, want %q", g, got, w)
		}
	}
	if t.Failed() {
		l.dump(t)
		t.FailNow()
	}

	l.snoopingSettled()
	// Traffic: (srcS, *) to every group, and (srcS2, gs), which nobody
	// asked for.
	st := labtest.StartStream(t, l.s0, srcS, []netip.Addr{g1, gs, g2, g3, gx}, 200)
	st2 := labtest.StartStream(t, l.s0, srcS2, []netip.Addr{gs}, 200)
	time.Sleep(time.Second)
	n := st.Stop()
	st2.Stop()
	type rx struct {
		name string
		c    func(netip.Addr) uint64
		want map[netip.Addr]uint64
	}
	rxs := []rx{
		{"ge1 wire", func(g netip.Addr) uint64 { return l.wire.Count(t, g) }, map[netip.Addr]uint64{g1: n, gs: n, g2: n}},
		{"hA", func(g netip.Addr) uint64 { return hA.count(t, g) }, map[netip.Addr]uint64{g1: n}},
		{"hB", func(g netip.Addr) uint64 { return hB.count(t, g) }, map[netip.Addr]uint64{g1: n, gs: n}},
		{"hC", func(g netip.Addr) uint64 { return hC.count(t, g) }, map[netip.Addr]uint64{g2: n}},
		{"hD", func(g netip.Addr) uint64 { return hD.count(t, g) }, map[netip.Addr]uint64{g3: n}},
	}
	// The sinks count every frame to a group, and MLDv1 reports go to the
	// group address (RFC 2710 §3): the switch floods hC's reports of g2 to
	// the other LAN hosts, a few frames (one per general query at most).
	ok := func(name string, g netip.Addr, got, want uint64) bool {
		if g == g2 && want == 0 && (name == "hA" || name == "hB") {
			return got <= 3
		}
		return got == want
	}
	delivered := func() bool {
		for _, r := range rxs {
			for _, g := range []netip.Addr{g1, gs, g2, g3, gx} {
				if !ok(r.name, g, r.c(g), r.want[g]) {
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(3 * time.Second)
	for !delivered() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, r := range rxs {
		for _, g := range []netip.Addr{g1, gs, g2, g3, gx} {
			if got := r.c(g); !ok(r.name, g, got, r.want[g]) {
				t.Errorf("%s received %d frames of %s, want %d (of %d sent)", r.name, got, g, r.want[g], n)
			}
		}
	}
	ft = fwdTable(l.d)
	for _, k := range []struct{ s, g netip.Addr }{{netip.Addr{}, g1}, {srcS, gs}, {netip.Addr{}, g2}, {netip.Addr{}, g3}} {
		if r := findRoute(ft, k.s, k.g); r == nil || r.Packets != n {
			t.Errorf("route (%v, %s): %+v, want %d packets", k.s, k.g, r, n)
		}
	}
	if t.Failed() {
		l.dump(t)
		t.FailNow()
	}

	// Leaves, with traffic running.
	st = labtest.StartStream(t, l.s0, srcS, []netip.Addr{g1, gs, g2}, 200)
	defer st.Stop()

	// hA leaves g1 while hB stays: hotcast queries the group (§7.6.3.1),
	// hB answers, nothing stops.
	sentBefore := mldIfaces(l.d)["ge1"].Sent["group_query"]
	joinA.leave()
	time.Sleep(llqt + 500*time.Millisecond)
	if s := mldIfaces(l.d)["ge1"].Sent["group_query"]; s < sentBefore+robustness {
		t.Errorf("group-specific queries after hA's leave: %d, want at least %d", s-sentBefore, robustness)
	}
	r := findGroup(mldGroups(l.d), "ge1", g1)
	if r == nil || r.LastReporter != hB.ll.String() {
		t.Errorf("g1 after hA left while hB listens: %+v, want kept with last reporter hB %s", r, hB.ll)
	}
	c := hB.count(t, g1)
	labtest.Eventually(t, 2*time.Second, "hB still receiving g1", func() bool { return hB.count(t, g1) > c+20 })

	// The last listener of each group leaves: gone within LLQT.
	leave := func(what string, lst *listener, s, g netip.Addr) {
		t.Helper()
		t0 := time.Now()
		lst.leave()
		for findRoute(fwdTable(l.d), s, g) != nil {
			if time.Since(t0) > llqt+2*time.Second {
				l.dump(t)
				t.Fatalf("%s: route (%v, %s) still there %s after the leave (LLQT %s)", what, s, g, since(t0), llqt)
			}
			time.Sleep(10 * time.Millisecond)
		}
		took := time.Since(t0)
		t.Logf("%s: route gone %s after the leave (LLQT %s)", what, took.Round(time.Millisecond), llqt)
		if took > llqt+700*time.Millisecond {
			t.Errorf("%s: route removed after %s, want within LLQT %s (+700ms)", what, took, llqt)
		}
		if took < llqt-300*time.Millisecond {
			t.Errorf("%s: route removed after %s: before the last-listener queries could be answered (LLQT %s)", what, took, llqt)
		}
		if r := findGroup(mldGroups(l.d), "ge1", g); r != nil {
			t.Errorf("%s: record remains: %+v", what, r)
		}
		time.Sleep(50 * time.Millisecond)
		w := l.wire.Count(t, g)
		time.Sleep(300 * time.Millisecond)
		if w2 := l.wire.Count(t, g); w2 != w {
			t.Errorf("%s: %d frames of %s still sent onto ge1 after the route went", what, w2-w, g)
		}
	}
	leave("ASM, last listener hB", joinB, netip.Addr{}, g1)
	leave("SSM, hB", joinBs, srcS, gs)
	leave("MLDv1 Done, hC", joinC, netip.Addr{}, g2)
	if s := mldIfaces(l.d)["ge1"].Sent["group_source_query"]; s == 0 {
		t.Errorf("no group-and-source-specific query after the SSM leave")
	}
	if f := findGroup(mldGroups(l.d), "ge2", g3); f == nil {
		t.Errorf("hD's membership on ge2 lost by leaves on ge1")
	}
}

// testSilentHostExpires: a host that stops answering (its switch port goes
// down, no Done) is forgotten at the Multicast Address Listening Interval
// after its last report (RFC 3810 §7.4.1, §9.4), not before.
func testSilentHostExpires(t *testing.T, b bins) {
	g := netip.MustParseAddr("ff1e::60:1")
	l := newLAN(t, b, lanOpts{hosts: []string{"hE"}})
	hE := l.hosts["hE"]
	hE.joinASM(t, g)
	labtest.Eventually(t, 5*time.Second, "hE's membership", func() bool {
		return findRoute(fwdTable(l.d), netip.Addr{}, g) != nil
	})
	// Let a general query or two refresh it, as in steady state.
	time.Sleep(queryInterval + respInterval)
	st := labtest.StartStream(t, l.s0, srcS, []netip.Addr{g}, 200)
	defer st.Stop()
	labtest.Eventually(t, 2*time.Second, "traffic at hE", func() bool { return hE.count(t, g) > 10 })

	ipLink(t, l.sw, "set", hE.port, "down")
	cut := time.Now()
	time.Sleep(100 * time.Millisecond) // a report already in flight lands
	r := findGroup(mldGroups(l.d), "ge1", g)
	if r == nil {
		t.Fatalf("group gone at once when the host went silent")
	}
	// The filter timer tells when the last report arrived: MALI before
	// it would expire.
	expiry := time.Now().Add(time.Duration(r.ExpiresIn * float64(time.Second)))
	lastReport := expiry.Add(-mali)
	t.Logf("host silent; last report %s before the cut, filter timer %.2fs", cut.Sub(lastReport).Round(time.Millisecond), r.ExpiresIn)
	if age := cut.Sub(lastReport); age < -200*time.Millisecond || age > queryInterval+respInterval+500*time.Millisecond {
		t.Errorf("last report %s before the cut: not a steady-state refresh (QI %s, QRI %s)", age, queryInterval, respInterval)
	}

	for findRoute(fwdTable(l.d), netip.Addr{}, g) != nil {
		if time.Now().After(expiry.Add(2 * time.Second)) {
			l.dump(t)
			t.Fatalf("group still routed %s after the expected expiry (MALI %s after the last report)", time.Since(expiry), mali)
		}
		time.Sleep(20 * time.Millisecond)
	}
	gone := time.Now()
	life := gone.Sub(lastReport)
	t.Logf("route gone %s after the last report (MALI %s), %s after the cut", life.Round(time.Millisecond), mali, since(cut))
	if life < mali-300*time.Millisecond || life > mali+700*time.Millisecond {
		t.Errorf("group lived %s after the last report, want MALI %s", life, mali)
	}
	if r := findGroup(mldGroups(l.d), "ge1", g); r != nil {
		t.Errorf("record remains: %+v", r)
	}
	time.Sleep(50 * time.Millisecond)
	w := l.wire.Count(t, g)
	time.Sleep(300 * time.Millisecond)
	if w2 := l.wire.Count(t, g); w2 != w {
		t.Errorf("%d frames still sent onto ge1 after expiry", w2-w)
	}
}
