package bpf

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// TestRoutesReadTheKernel: the routes map is the state of record. A route
// written into the map behind the API's back is listed, one deleted behind
// its back is not, and an interface the kernel takes out of an outgoing
// set (its device went) is gone from the routes' outgoing interfaces.
func TestRoutesReadTheKernel(t *testing.T) {
	d, env := openTest(t)
	o := env.oifs
	k1 := RouteKey{Source: srcS, Group: grpG}
	k2 := RouteKey{Group: grpG2}
	if err := d.ReplaceRoutes([]Route{{RouteKey: k1, IIf: 3, OIfs: []int{o[0], o[1]}, Flags: RouteStatic}}); err != nil {
		t.Fatal(err)
	}
	var v1 ingressHcRoute
	if err := d.maps.Routes.Lookup(k1.bpfKey(), &v1); err != nil {
		t.Fatal(err)
	}

	// Written behind the API's back, pointing at k1's set.
	if err := d.maps.Routes.Put(k2.bpfKey(), ingressHcRoute{Iif: 4, SetId: v1.SetId, StatsIdx: v1.StatsIdx + 1, Flags: uint32(RouteSynced)}); err != nil {
		t.Fatal(err)
	}
	rs, err := d.Routes()
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{
		{RouteKey: k1, IIf: 3, OIfs: []int{o[0], o[1]}, Flags: RouteStatic},
		{RouteKey: k2.normalize(), IIf: 4, OIfs: []int{o[0], o[1]}, Flags: RouteSynced},
	}
	if got := routesOf(rs); !slices.EqualFunc(got, want, routeEqual) {
		t.Fatalf("routes %+v, want %+v", got, want)
	}
	if r, ok, err := d.Route(k2); err != nil || !ok || !routeEqual(r, want[1]) {
		t.Fatalf("route %s: %+v %v %v", k2, r, ok, err)
	}

	// The kernel drops a deleted device from the sets.
	h := env.ns.Handle(t)
	l, err := h.LinkByName("dummy1")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	if r, ok, err := d.Route(k1); err != nil || !ok || !slices.Equal(r.OIfs, []int{o[0]}) {
		t.Fatalf("route %s after dummy1 went: %+v %v %v, want only %d out", k1, r, ok, err, o[0])
	}

	// Deleted behind the API's back.
	if err := d.maps.Routes.Delete(k2.bpfKey()); err != nil {
		t.Fatal(err)
	}
	if rs, err := d.Routes(); err != nil || len(rs) != 1 || rs[0].RouteKey != k1 {
		t.Fatalf("routes after the map lost %s: %+v %v", k2, rs, err)
	}
	if _, ok, err := d.Route(k2); err != nil || ok {
		t.Fatalf("route %s deleted from the map still read: %v %v", k2, ok, err)
	}
}

func routesOf(rs []RouteStats) []Route {
	out := make([]Route, len(rs))
	for i, r := range rs {
		out[i] = r.Route
	}
	return out
}

func routeEqual(a, b Route) bool {
	return a.RouteKey == b.RouteKey && a.IIf == b.IIf && a.Flags == b.Flags && slices.Equal(a.OIfs, b.OIfs)
}

// TestReplaceKeepsCounters: a replaced route keeps its counter slot and its
// counts and gives back the set it leaves; a deleted route's slot is free
// again, and the next new route takes it with its counts zeroed.
func TestReplaceKeepsCounters(t *testing.T) {
	d, env := openTest(t)
	o := env.oifs
	const n = 64
	g := func(i int) RouteKey {
		return RouteKey{Source: srcS, Group: netip.AddrFrom16([16]byte{0xff, 0x3e, 15: byte(i)})}
	}
	var rs []Route
	for i := range n {
		rs = append(rs, Route{RouteKey: g(i), IIf: 2, OIfs: []int{o[0]}})
	}
	if err := d.ReplaceRoutes(rs); err != nil {
		t.Fatal(err)
	}
	// Give every route its own count.
	slot := map[RouteKey]uint32{}
	for i := range n {
		var v ingressHcRoute
		if err := d.maps.Routes.Lookup(g(i).bpfKey(), &v); err != nil {
			t.Fatal(err)
		}
		slot[g(i)] = v.StatsIdx
		per := make([]ingressHcCounter, ebpf.MustPossibleCPU())
		per[0].Packets = uint64(1000 + i)
		if err := d.maps.RouteStats.Put(v.StatsIdx, per); err != nil {
			t.Fatal(err)
		}
	}

	replace := func(from, to int, oif int) {
		t.Helper()
		var rs []Route
		for i := from; i < to; i++ {
			rs = append(rs, Route{RouteKey: g(i), IIf: 2, OIfs: []int{oif}})
		}
		if err := d.ReplaceRoutes(rs); err != nil {
			t.Fatal(err)
		}
	}
	replace(0, 40, o[1])
	replace(40, 42, o[2])
	check := func(live func(i int) bool, oif func(i int) int) {
		t.Helper()
		got, err := d.Routes()
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		for j := range n {
			if !live(j) {
				continue
			}
			if i >= len(got) {
				t.Fatalf("%d routes, want more", len(got))
			}
			r := got[i]
			if r.RouteKey != g(j) || r.Packets != uint64(1000+j) || !slices.Equal(r.OIfs, []int{oif(j)}) {
				t.Fatalf("route %d: %+v, want %s with %d packets to %d", j, r, g(j), 1000+j, oif(j))
			}
			var v ingressHcRoute
			if err := d.maps.Routes.Lookup(g(j).bpfKey(), &v); err != nil || v.StatsIdx != slot[g(j)] {
				t.Fatalf("route %d: counter slot %d, was %d (%v)", j, v.StatsIdx, slot[g(j)], err)
			}
			i++
		}
		if i != len(got) {
			t.Fatalf("%d routes, want %d", len(got), i)
		}
	}
	oifAfterReplace := func(i int) int {
		switch {
		case i < 40:
			return o[1]
		case i < 42:
			return o[2]
		}
		return o[0]
	}
	check(func(int) bool { return true }, oifAfterReplace)
	if d.SetCount() != 3 || d.IdleSetCount() != 0 || d.rt.stats.inUse() != n || d.rt.stats.next != n {
		t.Fatalf("after replacing: %d sets in use, %d idle, %d counter slots in use of %d", d.SetCount(), d.IdleSetCount(), d.rt.stats.inUse(), d.rt.stats.next)
	}

	var del []RouteKey
	for i := 20; i < 60; i++ {
		del = append(del, g(i))
	}
	del = append(del, g(200), g(201)) // unknown
	if err := d.DeleteRoutes(del); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteRoutes([]RouteKey{g(0), g(0), g(202)}); err != nil { // twice, and unknown
		t.Fatal(err)
	}
	check(func(i int) bool { return i > 0 && (i < 20 || i >= 60) }, oifAfterReplace)
	if d.SetCount() != 2 || d.IdleSetCount() != 1 || d.rt.stats.inUse() != 23 {
		t.Fatalf("after deleting: %d sets in use, %d idle, %d counter slots in use", d.SetCount(), d.IdleSetCount(), d.rt.stats.inUse())
	}
	// A freed slot is taken again, its old counts zeroed.
	if err := d.ReplaceRoutes([]Route{{RouteKey: g(100), IIf: 2}}); err != nil {
		t.Fatal(err)
	}
	if rs := routeStats(t, d, g(100)); rs.Packets != 0 || d.rt.stats.next != n {
		t.Fatalf("new route on a freed slot: %d packets, %d slots made", rs.Packets, d.rt.stats.next)
	}
}

// BenchmarkReplace100k replaces 100 000 installed routes with others of
// the same keys and other outgoing sets (counters kept), as a resync does.
func BenchmarkReplace100k(b *testing.B) {
	ns := netnstest.New(b, "bpf")
	var oifs []int
	for i := range 4 {
		oifs = append(oifs, netnstest.Dummy(b, ns, fmt.Sprintf("dummy%d", i)).Index)
	}
	ns.Enter(b)
	d, err := Open(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	rs := manyRoutes(100_000, oifs)
	if err := d.ReplaceRoutes(rs); err != nil {
		b.Fatal(err)
	}
	alt := manyRoutes(100_000, append(oifs[1:], oifs[0]))
	for b.Loop() {
		if err := d.ReplaceRoutes(alt); err != nil {
			b.Fatal(err)
		}
		rs, alt = alt, rs
	}
}

// TestLargeBatchInTwoHalves: a batch above parallelFrom is written by two
// BPF_MAP_UPDATE_BATCH calls at once; every route lands once, with its
// own counters slot, and replacing the batch keeps them.
func TestLargeBatchInTwoHalves(t *testing.T) {
	d, env := openTest(t)
	n := parallelFrom + 1001
	rs := make([]Route, n)
	for i := range rs {
		g := netip.AddrFrom16([16]byte{0xff, 0x0e, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
		rs[i] = Route{RouteKey: RouteKey{Group: g}, IIf: 3, OIfs: []int{env.oifs[0]}, Flags: RouteSynced}
	}
	if err := d.ReplaceRoutes(rs); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		got, err := d.Routes()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d routes in the map, want %d", len(got), n)
		}
		slots := map[uint32]bool{}
		for i, r := range got {
			if r.Group != rs[i].Group || r.IIf != 3 || !slices.Equal(r.OIfs, rs[i].OIfs) {
				t.Fatalf("route %d: %+v, want %+v", i, r.Route, rs[i])
			}
			var v ingressHcRoute
			if err := d.maps.Routes.Lookup(r.RouteKey.bpfKey(), &v); err != nil {
				t.Fatal(err)
			}
			if slots[v.StatsIdx] {
				t.Fatalf("counters slot %d twice", v.StatsIdx)
			}
			slots[v.StatsIdx] = true
		}
	}
	check()
	for i := range rs {
		rs[i].IIf = 3
	}
	if err := d.ReplaceRoutes(rs); err != nil {
		t.Fatal(err)
	}
	check()
	if u := d.rt.stats.inUse(); u != n {
		t.Fatalf("%d counter slots in use, want %d", u, n)
	}
}
