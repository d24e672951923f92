//go:build linux

package pim

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hotcast/hotcast/internal/clock/clocktest"
	"github.com/hotcast/hotcast/internal/netnstest"
)

// TestNetlinkRPF: in a namespace with a veth to a peer, a route added
// towards the RP through the peer's link-local address makes the RPF
// lookup return the veth and that next hop, Watch reports the change, and
// a Router fed by it joins towards the peer (a PIM neighbour there); the
// route's removal takes it all back.
func TestNetlinkRPF(t *testing.T) {
	nsA := netnstest.New(t, "rpfa")
	nsB := netnstest.New(t, "rpfb")
	a, b := netnstest.Veth(t, nsA, "rpf0", nsB, "rpf1")
	a.AddAddr(t, "2001:db8:77::1/64")
	peer := b.WaitLinkLocal(t)
	a.WaitLinkLocal(t)
	h := nsA.Handle(t)
	nsh, err := netns.GetFromPath(nsA.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	rpf := NewNetlinkRPF(h, &nsh)
	rp := netip.MustParseAddr("2001:db8:99::1")

	if _, err := rpf.Lookup(rp); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("lookup without a route: %v", err)
	}
	if r, err := rpf.Lookup(netip.MustParseAddr("2001:db8:77::9")); err != nil || r.Ifindex != a.Index || r.Nexthop.IsValid() {
		t.Fatalf("on-link lookup: %+v, %v", r, err)
	}

	// A Router with the veth as a PIM interface and the peer as neighbour.
	clk := clocktest.New(t0)
	rps, _ := NewRPSet([]StaticRP{{Address: rp}}, nil)
	router, err := NewRouter(RouterConfig{RPs: rps, RPF: rpf, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig("rpf0", netip.MustParseAddr("fe80::1"))
	cfg.Clock = clk
	cfg.OnEvent, cfg.OnMessage = router.HandleEvent, router.HandleMessage
	ifc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ifc.Start()
	if err := router.AddInterface(a.Index, ifc, IfaceOptions{IgnoreDRState: true}); err != nil {
		t.Fatal(err)
	}
	hello, _ := Marshal(&Hello{Holdtime: new(uint16(HoldtimeForever)), GenerationID: new(uint32(7))}, peer, AllPIMRouters)
	if d := ifc.HandlePacket(Packet{Src: peer, Dst: AllPIMRouters, HopLimit: 1, Payload: hello}); d != DropNone {
		t.Fatalf("hello: %v", d)
	}
	// Listeners on a second interface.
	d := netnstest.Dummy(t, nsA, "rpfd")
	dcfg := DefaultConfig("rpfd", netip.MustParseAddr("fe80::2"))
	dcfg.Clock = clk
	difc, err := New(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	difc.Start()
	if err := router.AddInterface(d.Index, difc, IfaceOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := router.SetLocalMembership(d.Index, testG, true, nil); err != nil {
		t.Fatal(err)
	}

	changed := make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- rpf.Watch(ctx, func() {
			router.RPFChanged()
			changed <- struct{}{}
		})
	}()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch: %v", err)
		}
	}()
	time.Sleep(50 * time.Millisecond) // let the subscription start
	waitRoute := func(what string, ok func(Route) bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			rs := router.Routes()
			if len(rs) == 1 && ok(rs[0]) {
				return
			}
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("%s: routes %+v", what, rs)
			}
		}
	}

	_, dst, _ := net.ParseCIDR("2001:db8:99::/48")
	route := &netlink.Route{LinkIndex: a.Index, Dst: dst, Gw: net.IP(peer.AsSlice())}
	if err := h.RouteAdd(route); err != nil {
		t.Fatal(err)
	}
	waitRoute("after the route was added", func(r Route) bool {
		return r.RPFIface == a.Index && r.UpstreamNeighbor == peer && r.Joined
	})
	if r, err := rpf.Lookup(rp); err != nil || r.Ifindex != a.Index || r.Nexthop != peer || r.Preference != 1 { // RTPROT_BOOT: static
		t.Errorf("lookup with the route: %+v, %v", r, err)
	}
	if err := h.RouteDel(route); err != nil {
		t.Fatal(err)
	}
	waitRoute("after the route was removed", func(r Route) bool { return r.RPFIface == 0 && !r.UpstreamNeighbor.IsValid() })
	if _, err := rpf.Lookup(rp); !errors.Is(err, ErrNoRoute) {
		t.Errorf("lookup after the removal: %v", err)
	}
}
