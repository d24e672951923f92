package mroute

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/hotcast/hotcast/bpf"
)

// In protocol mode the protocol's routes are the learned routes: a
// membership derives nothing, static routes win on their keys, a group's
// routes are replaced whole, and Prune keeps what the protocol still has.
func TestProtocolMode(t *testing.T) {
	dp := &fakeDP{routes: map[bpf.RouteKey]bpf.Route{}}
	tb := New(dp, 0, nil)
	tb.UseProtocol()
	star := netip.IPv6Unspecified()
	g2 := netip.MustParseAddr("ff0e::1:2")
	stale := bpf.Route{RouteKey: bpf.RouteKey{Source: star, Group: netip.MustParseAddr("ff3e::dead")}, IIf: 4, OIfs: []int{5}}
	dp.routes[stale.RouteKey] = stale
	tb.Adopt([]bpf.Route{stale})

	if err := tb.SetMembership(g, 2, &Membership{Star: true}); err != nil {
		t.Fatal(err)
	}
	if len(dp.routes) != 1 {
		t.Fatalf("a membership derived routes in protocol mode: %v", dp.routes)
	}
	pimStar := bpf.Route{RouteKey: bpf.RouteKey{Source: star, Group: g}, IIf: 3, OIfs: []int{2}, Flags: bpf.RoutePunt}
	pimSG := bpf.Route{RouteKey: bpf.RouteKey{Source: s1, Group: g}, IIf: 4, OIfs: []int{2}}
	if err := tb.SetProtocolRoutes(map[netip.Addr][]bpf.Route{g: {pimSG, pimStar}}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dp.routes[pimStar.RouteKey], pimStar) || !reflect.DeepEqual(dp.routes[pimSG.RouteKey], pimSG) {
		t.Fatalf("protocol routes not applied: %v", dp.routes)
	}
	// A static (S,G) on the same key wins; the protocol's (*,G) stays.
	if err := tb.SetStatic([]StaticRoute{{Source: s1, Group: g, IIf: 7, OIfs: []int{8}}}); err != nil {
		t.Fatal(err)
	}
	if r := dp.routes[pimSG.RouteKey]; r.IIf != 7 || r.Flags&bpf.RouteStatic == 0 {
		t.Errorf("static route did not win its key: %+v", r)
	}
	if _, ok := dp.routes[pimStar.RouteKey]; !ok {
		t.Errorf("protocol (*,G) lost beside a static (S,G)")
	}
	// Replacing a group's routes whole: the (*,G) goes, another group comes.
	g2r := bpf.Route{RouteKey: bpf.RouteKey{Source: s1, Group: g2}, IIf: 4, OIfs: []int{2, 3}}
	if err := tb.SetProtocolRoutes(map[netip.Addr][]bpf.Route{g: nil, g2: {g2r}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := dp.routes[pimStar.RouteKey]; ok {
		t.Errorf("(*,G) left after its group's routes were removed")
	}
	if r := dp.routes[pimSG.RouteKey]; r.IIf != 7 {
		t.Errorf("static route lost with the protocol's: %+v", r)
	}
	if err := tb.Prune(); err != nil {
		t.Fatal(err)
	}
	if _, ok := dp.routes[stale.RouteKey]; ok {
		t.Errorf("adopted route nothing asked for survived Prune")
	}
	if _, ok := dp.routes[g2r.RouteKey]; !ok {
		t.Errorf("Prune removed a protocol route")
	}
	// Misfiled routes are refused whole.
	if err := tb.SetProtocolRoutes(map[netip.Addr][]bpf.Route{g: {g2r}}); err == nil {
		t.Errorf("a route filed under another group was accepted")
	}
	if err := tb.SetUpstream(9); err == nil {
		t.Errorf("SetUpstream accepted in protocol mode")
	}
	plain := New(&fakeDP{routes: map[bpf.RouteKey]bpf.Route{}}, up, nil)
	if err := plain.SetProtocolRoutes(map[netip.Addr][]bpf.Route{g: {g2r}}); err == nil {
		t.Errorf("protocol routes accepted without UseProtocol")
	}
}
