package daemon

import (
	"log/slog"
	"net/netip"
	"slices"
	"testing"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/mroute"
	"github.com/hotcast/hotcast/ctrl/pim"
	"github.com/hotcast/hotcast/daemon/config"
)

// tableDP records what the route table writes.
type tableDP struct{ routes map[bpf.RouteKey]bpf.Route }

func (f *tableDP) ReplaceRoutes(rs []bpf.Route) error {
	for _, r := range rs {
		f.routes[r.RouteKey] = r
	}
	return nil
}

func (f *tableDP) DeleteRoutes(ks []bpf.RouteKey) error {
	for _, k := range ks {
		delete(f.routes, k)
	}
	return nil
}

// PIM's routes become the fast path's: incoming = RPF interface, outgoing
// = the olist less the incoming interface and unknown interfaces; no
// route without an RPF interface (the RP's (*,G)); punt for a (*,G) with
// local receivers when the router switches to the SPT and for an (S,G)
// the DR registers; a deleted PIM route leaves the fast path; the (S,G)
// keys polled for counters follow.
func TestPIMFastRoutes(t *testing.T) {
	for _, spt := range []config.SPTSwitch{config.SPTSwitchImmediate, config.SPTSwitchNever} {
		t.Run(string(spt), func(t *testing.T) {
			dp := &tableDP{routes: map[bpf.RouteKey]bpf.Route{}}
			tb := mroute.New(dp, 0, nil)
			tb.UseProtocol()
			d := &Daemon{table: tb, log: slog.New(slog.DiscardHandler)}
			p := &pimRun{d: d, log: d.log, cfg: config.PIM{SPTSwitch: spt},
				names:  map[int]string{2: "ge2", 3: "ge3", 4: "ge4"},
				routes: map[netip.Addr]map[netip.Addr]pim.Route{}, sgKeys: map[netip.Addr]map[bpf.RouteKey]int{},
				packets: map[bpf.RouteKey]uint64{}, sptSeen: map[bpf.RouteKey]bool{}}
			g := netip.MustParseAddr("ff0e::1:1")
			g2 := netip.MustParseAddr("ff0e::1:2")
			s := netip.MustParseAddr("2001:db8:40::2")
			rp := netip.MustParseAddr("2001:db8:22::22")
			star := pim.Route{Group: g, RP: rp, RPFIface: 3, Joined: true, Flags: pim.FlagWC | pim.FlagRPT,
				OIfs: []pim.OIf{{Ifindex: 2, Local: true}, {Ifindex: 3}, {Ifindex: 9}}}
			sg := pim.Route{Source: s, Group: g, RP: rp, RPFIface: 3, Joined: true, Flags: pim.FlagSPT | pim.FlagSPTBit,
				OIfs: []pim.OIf{{Ifindex: 4, Joined: true}, {Ifindex: 2, Local: true}}}
			rpStar := pim.Route{Group: g2, RP: rp, Flags: pim.FlagWC | pim.FlagRPT | pim.FlagLocalRP,
				OIfs: []pim.OIf{{Ifindex: 2, Joined: true}}}
			reg := pim.Route{Source: s, Group: g2, RP: rp, RPFIface: 4, Flags: pim.FlagSPT | pim.FlagRegister}
			p.onRoutes([]pim.RouteUpdate{{Route: star}, {Route: sg}, {Route: rpStar}, {Route: reg}})

			wantStar := bpf.Route{RouteKey: bpf.RouteKey{Source: netip.IPv6Unspecified(), Group: g}, IIf: 3, OIfs: []int{2}}
			if spt == config.SPTSwitchImmediate {
				wantStar.Flags = bpf.RoutePunt
			}
			wantSG := bpf.Route{RouteKey: bpf.RouteKey{Source: s, Group: g}, IIf: 3, OIfs: []int{2, 4}}
			wantReg := bpf.Route{RouteKey: bpf.RouteKey{Source: s, Group: g2}, IIf: 4, Flags: bpf.RoutePunt}
			for _, w := range []bpf.Route{wantStar, wantSG, wantReg} {
				got, ok := dp.routes[w.RouteKey]
				if !ok || got.IIf != w.IIf || !slices.Equal(got.OIfs, w.OIfs) || got.Flags != w.Flags {
					t.Errorf("route %s: %+v (%v), want %+v", w.RouteKey, got, ok, w)
				}
			}
			if len(dp.routes) != 3 {
				t.Errorf("%d routes in the fast path, want 3 (none for the RP's (*,G)): %v", len(dp.routes), dp.routes)
			}
			if n := len(p.sgKeys[g]) + len(p.sgKeys[g2]); n != 2 {
				t.Errorf("%d (S,G) keys polled, want 2", n)
			}

			// Joined on the SPT, the bit not set yet: punted until the
			// packet socket has seen its data once.
			s2 := netip.MustParseAddr("2001:db8:40::3")
			fresh := pim.Route{Source: s2, Group: g, RP: rp, RPFIface: 3, Joined: true, Flags: pim.FlagSPT,
				OIfs: []pim.OIf{{Ifindex: 2, Local: true}}}
			k2 := bpf.RouteKey{Source: s2, Group: g}
			p.onRoutes([]pim.RouteUpdate{{Route: fresh}})
			if dp.routes[k2].Flags != bpf.RoutePunt {
				t.Errorf("(S,G) joined without its SPT bit: flags %v, want punt", dp.routes[k2].Flags)
			}
			p.sptDataSeen(k2)
			if dp.routes[k2].Flags != 0 {
				t.Errorf("(S,G) whose data was seen: flags %v, want none (the counter poll goes on)", dp.routes[k2].Flags)
			}
			if got := dp.routes[wantSG.RouteKey]; got.Flags != 0 {
				t.Errorf("(S,G) with its SPT bit: flags %v, want none", got.Flags)
			}

			// The (S,G) goes: its route and its polled key too.
			p.packets[wantSG.RouteKey] = 7
			p.onRoutes([]pim.RouteUpdate{{Route: sg, Deleted: true}})
			if _, ok := dp.routes[wantSG.RouteKey]; ok {
				t.Errorf("deleted (S,G) still in the fast path")
			}
			if _, ok := dp.routes[wantStar.RouteKey]; !ok {
				t.Errorf("the (*,G) went with its group's (S,G)")
			}
			if _, ok := p.sgKeys[g][wantSG.RouteKey]; ok {
				t.Errorf("deleted (S,G) still polled")
			}
			if _, ok := p.packets[wantSG.RouteKey]; ok {
				t.Errorf("deleted (S,G)'s counter kept")
			}
		})
	}
}
