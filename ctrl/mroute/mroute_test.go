package mroute

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/mld"
)

var (
	g  = netip.MustParseAddr("ff3e::1:1")
	s1 = netip.MustParseAddr("2001:db8:40::1")
	s2 = netip.MustParseAddr("2001:db8:40::2")
	un = netip.IPv6Unspecified()
)

const up = 9

func rt(src netip.Addr, oifs []int, f bpf.RouteFlags) bpf.Route {
	return bpf.Route{RouteKey: bpf.RouteKey{Source: src, Group: g}, IIf: up, OIfs: oifs, Flags: f}
}

func TestDerive(t *testing.T) {
	tests := []struct {
		name    string
		static  []StaticRoute
		members map[int]Membership
		want    []bpf.Route
	}{
		{name: "nothing", want: nil},
		{name: "exclude {} on two interfaces", members: map[int]Membership{2: {Star: true}, 3: {Star: true}},
			want: []bpf.Route{rt(un, []int{2, 3}, 0)}},
		{name: "include on one, exclude on another", members: map[int]Membership{2: {Include: []netip.Addr{s1}}, 3: {Star: true}},
			want: []bpf.Route{rt(un, []int{3}, 0), rt(s1, []int{2, 3}, 0)}},
		{name: "exclude a source: (S,G) blocks it", members: map[int]Membership{3: {Star: true, Exclude: []netip.Addr{s1}}},
			want: []bpf.Route{rt(un, []int{3}, 0), rt(s1, []int{}, 0)}},
		{name: "excluded on one, wanted on the other", members: map[int]Membership{2: {Star: true}, 3: {Star: true, Exclude: []netip.Addr{s1}}},
			want: []bpf.Route{rt(un, []int{2, 3}, 0), rt(s1, []int{2}, 0)}},
		{name: "include only: (S,G) per source", members: map[int]Membership{2: {Include: []netip.Addr{s1, s2}}, 3: {Include: []netip.Addr{s2}}},
			want: []bpf.Route{rt(s1, []int{2}, 0), rt(s2, []int{2, 3}, 0)}},
		{name: "all synced", members: map[int]Membership{2: {Star: true, Synced: true}},
			want: []bpf.Route{rt(un, []int{2}, bpf.RouteSynced)}},
		{name: "mixed synced and local is local", members: map[int]Membership{2: {Star: true, Synced: true}, 3: {Star: true}},
			want: []bpf.Route{rt(un, []int{2, 3}, 0)}},
		{name: "static (S,G) with its own iif, merged with learned star", static: []StaticRoute{{Source: s1, Group: g, IIf: 7, OIfs: []int{4}}},
			members: map[int]Membership{2: {Star: true}},
			want:    []bpf.Route{rt(un, []int{2}, 0), {RouteKey: bpf.RouteKey{Source: s1, Group: g}, IIf: 7, OIfs: []int{2, 4}, Flags: bpf.RouteStatic}}},
		{name: "static (*,G) overrides a learned exclusion on its interface", static: []StaticRoute{{Group: g, IIf: up, OIfs: []int{3}}},
			members: map[int]Membership{3: {Star: true, Exclude: []netip.Addr{s1}}},
			want:    []bpf.Route{rt(un, []int{3}, bpf.RouteStatic)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Derive(g, up, tc.static, tc.members)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

type fakeDP struct {
	routes  map[bpf.RouteKey]bpf.Route
	batches int
}

func (f *fakeDP) ReplaceRoutes(rs []bpf.Route) error {
	f.batches++
	for _, r := range rs {
		f.routes[r.RouteKey] = r
	}
	return nil
}

func (f *fakeDP) DeleteRoutes(ks []bpf.RouteKey) error {
	f.batches++
	for _, k := range ks {
		delete(f.routes, k)
	}
	return nil
}

func TestTable(t *testing.T) {
	dp := &fakeDP{routes: map[bpf.RouteKey]bpf.Route{}}
	tb := New(dp, up, nil)
	stale := rt(netip.IPv6Unspecified(), []int{5}, 0)
	stale.Group = netip.MustParseAddr("ff3e::dead")
	dp.routes[stale.RouteKey] = stale
	tb.Adopt([]bpf.Route{stale})

	if err := tb.SetMembership(g, 2, &Membership{Star: true}); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetMembership(g, 3, &Membership{Include: []netip.Addr{s1}}); err != nil {
		t.Fatal(err)
	}
	want := map[bpf.RouteKey]bpf.Route{
		{Source: un, Group: g}: rt(un, []int{2}, 0),
		{Source: s1, Group: g}: rt(s1, []int{2, 3}, 0),
		stale.RouteKey:         stale,
	}
	if !reflect.DeepEqual(dp.routes, want) {
		t.Fatalf("dataplane %+v", dp.routes)
	}
	// Re-applying the same membership writes nothing.
	n := dp.batches
	if err := tb.SetMembership(g, 2, &Membership{Star: true}); err != nil {
		t.Fatal(err)
	}
	if dp.batches != n {
		t.Errorf("unchanged membership caused %d writes", dp.batches-n)
	}
	// Leaving: interface 2 goes; (S,G) remains for 3 only and (*,G) goes.
	if err := tb.SetMembership(g, 2, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := dp.routes[bpf.RouteKey{Source: un, Group: g}]; ok {
		t.Error("(*,G) still there after the last EXCLUDE listener left")
	}
	if r := dp.routes[bpf.RouteKey{Source: s1, Group: g}]; !reflect.DeepEqual(r.OIfs, []int{3}) {
		t.Errorf("(S,G) oifs %v, want [3]", r.OIfs)
	}
	// A batch replaces an interface's whole membership.
	g2 := netip.MustParseAddr("ff3e::2")
	if err := tb.ReplaceInterface(3, map[netip.Addr]Membership{g2: {Star: true, Synced: true}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := dp.routes[bpf.RouteKey{Source: s1, Group: g}]; ok {
		t.Error("(S,G) of a membership absent from the batch survived")
	}
	if r := dp.routes[bpf.RouteKey{Source: un, Group: g2}]; r.Flags != bpf.RouteSynced {
		t.Errorf("synced route flags %v", r.Flags)
	}
	// Prune removes what nobody asked for since the restart.
	if err := tb.Prune(); err != nil {
		t.Fatal(err)
	}
	if _, ok := dp.routes[stale.RouteKey]; ok {
		t.Error("stale adopted route not pruned")
	}
	if len(dp.routes) != 1 {
		t.Errorf("routes after prune: %+v", dp.routes)
	}
	// Static routes stay whatever MLD does.
	if err := tb.SetStatic([]StaticRoute{{Group: g, IIf: up, OIfs: []int{4}}}); err != nil {
		t.Fatal(err)
	}
	if err := tb.ReplaceInterface(3, nil); err != nil {
		t.Fatal(err)
	}
	if r, ok := dp.routes[bpf.RouteKey{Source: un, Group: g}]; !ok || r.Flags != bpf.RouteStatic {
		t.Errorf("static route %+v", r)
	}
}

// TestSetMemberships: a batch of changes of one interface is one dataplane
// write per kind, and gives the same routes as the changes one by one.
func TestSetMemberships(t *testing.T) {
	one := &fakeDP{routes: map[bpf.RouteKey]bpf.Route{}}
	bulk := &fakeDP{routes: map[bpf.RouteKey]bpf.Route{}}
	t1, t2 := New(one, up, nil), New(bulk, up, nil)
	var cs []Change
	for i := range 50 {
		grp := netip.AddrFrom16([16]byte{0xff, 0x3e, 15: byte(i)})
		m := &Membership{Star: true, Synced: i%2 == 0}
		if i%5 == 0 {
			m = &Membership{Include: []netip.Addr{s1, s2}}
		}
		cs = append(cs, Change{Group: grp, M: m})
	}
	// The same group twice in one batch: the last change wins.
	cs = append(cs, Change{Group: cs[3].Group, M: nil})
	for _, c := range cs {
		if err := t1.SetMembership(c.Group, 4, c.M); err != nil {
			t.Fatal(err)
		}
	}
	if err := t2.SetMemberships(4, cs); err != nil {
		t.Fatal(err)
	}
	if bulk.batches != 1 {
		t.Errorf("batch took %d dataplane writes, want 1", bulk.batches)
	}
	if !reflect.DeepEqual(one.routes, bulk.routes) || len(bulk.routes) != 49+10 {
		t.Errorf("batch gave %d routes, one by one %d", len(bulk.routes), len(one.routes))
	}
	if !reflect.DeepEqual(t1.Routes(), t2.Routes()) {
		t.Error("tables disagree")
	}
	// Removing them all in one batch empties the dataplane in one delete.
	for i := range cs {
		cs[i].M = nil
	}
	n := bulk.batches
	if err := t2.SetMemberships(4, cs); err != nil {
		t.Fatal(err)
	}
	if len(bulk.routes) != 0 || len(t2.Routes()) != 0 || bulk.batches != n+1 {
		t.Errorf("after removal: %d routes in the dataplane, %d on record, %d writes", len(bulk.routes), len(t2.Routes()), bulk.batches-n)
	}
}

type failingDelete struct{ fakeDP }

func (f *failingDelete) DeleteRoutes([]bpf.RouteKey) error { return errors.New("boom") }

// TestDeleteFailureKeepsRecord: routes the dataplane failed to delete stay
// on record, so the next change retries them.
func TestDeleteFailureKeepsRecord(t *testing.T) {
	dp := &failingDelete{fakeDP{routes: map[bpf.RouteKey]bpf.Route{}}}
	tb := New(dp, up, nil)
	if err := tb.SetMembership(g, 2, &Membership{Star: true, Exclude: []netip.Addr{s1}}); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetMembership(g, 2, &Membership{Star: true}); err == nil {
		t.Fatal("no error from a failed delete")
	}
	got := tb.Routes()
	if len(got) != 2 || got[1].Source != s1 {
		t.Fatalf("record after a failed delete: %+v", got)
	}
	if !reflect.DeepEqual(got[0], rt(un, []int{2}, 0)) {
		t.Errorf("(*,G) on record %+v", got[0])
	}
}

func TestMLDChanges(t *testing.T) {
	ll := netip.MustParseAddr("ff02::1:3")
	us := []mld.Update{
		{Group: g, State: mld.GroupState{Group: g, Mode: mld.Exclude, Synced: true}},
		{Group: ll, State: mld.GroupState{Group: ll, Mode: mld.Exclude}},
		{Group: g, Deleted: true},
	}
	cs := MLDChanges(us, func(a netip.Addr) bool { return a == ll })
	if len(cs) != 2 || cs[0].Group != g || cs[0].M == nil || !cs[0].M.Star || !cs[0].M.Synced || cs[1].M != nil {
		t.Fatalf("changes %+v", cs)
	}
}

type failingReplace struct{ fakeDP }

func (f *failingReplace) ReplaceRoutes([]bpf.Route) error { return errors.New("boom") }

// TestSetUpstream: moving the upstream rewrites the incoming interface of
// every learned route (and of adopted ones waiting for Prune) in one
// batch; static routes keep theirs; later changes derive with the new
// upstream; a refused batch keeps the old one.
func TestSetUpstream(t *testing.T) {
	const newUp = 11
	dp := &fakeDP{routes: map[bpf.RouteKey]bpf.Route{}}
	tb := New(dp, up, nil)
	orphan := rt(un, []int{5}, 0)
	orphan.Group = netip.MustParseAddr("ff3e::dead")
	orphanStatic := bpf.Route{RouteKey: bpf.RouteKey{Source: s2, Group: orphan.Group}, IIf: up, OIfs: []int{5}, Flags: bpf.RouteStatic}
	for _, r := range []bpf.Route{orphan, orphanStatic} {
		dp.routes[r.RouteKey] = r
	}
	tb.Adopt([]bpf.Route{orphan, orphanStatic})
	g2 := netip.MustParseAddr("ff3e::2")
	if err := tb.SetStatic([]StaticRoute{{Source: s2, Group: g2, IIf: 7, OIfs: []int{4}}}); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetMemberships(2, []Change{{Group: g, M: &Membership{Star: true}}, {Group: g2, M: &Membership{Star: true, Synced: true}}}); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetMembership(g, 3, &Membership{Include: []netip.Addr{s1}}); err != nil {
		t.Fatal(err)
	}
	before := tb.Routes()

	n := dp.batches
	if err := tb.SetUpstream(newUp); err != nil {
		t.Fatal(err)
	}
	if dp.batches != n+1 {
		t.Errorf("SetUpstream took %d dataplane writes, want 1", dp.batches-n)
	}
	iif := func(r bpf.Route) int {
		if r.Flags&bpf.RouteStatic != 0 {
			return r.IIf // static: its own
		}
		return newUp
	}
	after := tb.Routes()
	if len(after) != len(before) || len(after) != 6 {
		t.Fatalf("routes after SetUpstream: %+v, before %+v", after, before)
	}
	for i, r := range after {
		w := before[i]
		w.IIf = iif(w)
		if !reflect.DeepEqual(r, w) {
			t.Errorf("route %d: %+v, want %+v", i, r, w)
		}
		if !reflect.DeepEqual(dp.routes[r.RouteKey], r) {
			t.Errorf("dataplane %+v, table %+v", dp.routes[r.RouteKey], r)
		}
	}
	if r := dp.routes[bpf.RouteKey{Source: s2, Group: g2}]; r.IIf != 7 {
		t.Errorf("static route's incoming interface %d, want 7", r.IIf)
	}
	if r := dp.routes[orphan.RouteKey]; r.IIf != newUp {
		t.Errorf("adopted route's incoming interface %d, want %d", r.IIf, newUp)
	}
	// The same upstream again writes nothing; new memberships derive with
	// the new upstream; Prune still removes the adopted routes.
	n = dp.batches
	if err := tb.SetUpstream(newUp); err != nil || dp.batches != n {
		t.Errorf("SetUpstream to the same interface: %v, %d writes", err, dp.batches-n)
	}
	g3 := netip.MustParseAddr("ff3e::3")
	if err := tb.SetMembership(g3, 2, &Membership{Star: true}); err != nil {
		t.Fatal(err)
	}
	if r := dp.routes[bpf.RouteKey{Source: un, Group: g3}]; r.IIf != newUp {
		t.Errorf("a route learned after the move comes from %d, want %d", r.IIf, newUp)
	}
	if err := tb.Prune(); err != nil {
		t.Fatal(err)
	}
	if _, ok := dp.routes[orphan.RouteKey]; ok {
		t.Error("adopted route not pruned after the move")
	}

	// A refused batch: nothing changes, the old upstream stays.
	fdp := &failingReplace{fakeDP{routes: map[bpf.RouteKey]bpf.Route{}}}
	ft := New(fdp, up, nil)
	ft.members[g] = []member{{oif: 2, m: Membership{Star: true}}}
	ft.applied[g] = []bpf.Route{rt(un, []int{2}, 0)}
	if err := ft.SetUpstream(newUp); err == nil {
		t.Fatal("no error from a refused batch")
	}
	if ft.upstream != up || ft.Routes()[0].IIf != up {
		t.Errorf("after a refused batch: upstream %d, routes %+v", ft.upstream, ft.Routes())
	}
}
