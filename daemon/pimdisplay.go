package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/hotcast/hotcast/ctrl/pim"
	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/daemon/config"
)

// The PIM displays: the API handlers read d.pimView() and convert it with
// the pure functions below (pimNeighborsOf, pimInterfacesOf,
// pimRoutingTableOf), which the tests run on views of real pim.Router and
// pim.Interface values.

// pimViewErr returns the PIM view, or the error the CLI shows while PIM
// is off.
func (d *Daemon) pimViewErr() (pimView, error) {
	v, ok := d.pimView()
	if !ok {
		return pimView{}, errors.New(api.PIMNotRunning)
	}
	return v, nil
}

func (d *Daemon) pimNeighbors(r *http.Request) (any, error) {
	v, err := d.pimViewErr()
	if err != nil {
		return nil, err
	}
	return pimNeighborsOf(v, r.URL.Query().Get("interface"), time.Now())
}

func (d *Daemon) pimInterfaces(r *http.Request) (any, error) {
	v, err := d.pimViewErr()
	if err != nil {
		return nil, err
	}
	return pimInterfacesOf(v, r.URL.Query().Get("interface"), time.Now())
}

func (d *Daemon) pimRoutes(r *http.Request) (any, error) {
	var group netip.Addr
	if g := r.URL.Query().Get("group"); g != "" {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return nil, fmt.Errorf("group: %w", err)
		}
		if !a.Is6() || a.Is4In6() || !a.IsMulticast() {
			return nil, fmt.Errorf("group %s: not an IPv6 multicast address", g)
		}
		group = a.WithZone("")
	}
	v, err := d.pimViewErr()
	if err != nil {
		return nil, err
	}
	return pimRoutingTableOf(v, group, time.Now()), nil
}

// pimIfaces returns the view's interfaces named name (all when empty); an
// interface without PIM is an error.
func pimIfaces(v pimView, name string) ([]pimIfaceView, error) {
	if name == "" {
		ifs := slices.Clone(v.Ifaces)
		slices.SortStableFunc(ifs, func(a, b pimIfaceView) int { return strings.Compare(a.Name, b.Name) })
		return ifs, nil
	}
	for _, ifc := range v.Ifaces {
		if ifc.Name == name {
			return []pimIfaceView{ifc}, nil
		}
	}
	return nil, fmt.Errorf("interface %s: pim not enabled", name)
}

// pimNeighborsOf is "display pim neighbor [INTERFACE]": the neighbours of
// every PIM interface (or of the one named), by interface then address.
func pimNeighborsOf(v pimView, name string, now time.Time) ([]api.PIMNeighbor, error) {
	ifs, err := pimIfaces(v, name)
	if err != nil {
		return nil, err
	}
	out := []api.PIMNeighbor{}
	for _, ifc := range ifs {
		st := ifc.Ifc.Status()
		for _, n := range st.Neighbors {
			an := api.PIMNeighbor{
				Interface: ifc.Name, Address: n.Address.String(), SecondaryAddresses: []string{},
				Since: n.Since, UptimeSeconds: max(now.Sub(n.Since), 0).Seconds(),
				ExpiresIn: until(now, n.Expires), NeverExpires: n.Forever, Holdtime: secs(n.Holdtime),
				DRPriority: n.DRPriority, GenerationID: n.GenerationID,
				IsDR: st.DR.IsValid() && st.DR == n.Address,
			}
			for _, a := range n.Secondary {
				an.SecondaryAddresses = append(an.SecondaryAddresses, a.String())
			}
			if d := n.LANPruneDelay; d != nil {
				an.LANPruneDelay = &api.PIMLANPruneDelay{
					PropagationDelay: secs(time.Duration(d.PropagationDelay) * time.Millisecond),
					OverrideInterval: secs(time.Duration(d.OverrideInterval) * time.Millisecond),
					Tracking:         d.Tracking,
				}
			}
			out = append(out, an)
		}
	}
	return out, nil
}

// pimMessageTypes are the PIM-SM messages hotcast speaks, the keys of the
// per-type counters.
func pimMessageTypes() []pim.MessageType {
	return []pim.MessageType{pim.TypeHello, pim.TypeJoinPrune, pim.TypeAssert, pim.TypeRegister, pim.TypeRegisterStop}
}

// pimInterfacesOf is "display pim interface [INTERFACE]".
func pimInterfacesOf(v pimView, name string, now time.Time) ([]api.PIMInterface, error) {
	ifs, err := pimIfaces(v, name)
	if err != nil {
		return nil, err
	}
	out := []api.PIMInterface{}
	for _, ifc := range ifs {
		st := ifc.Ifc.Status()
		s := ifc.Ifc.Stats()
		ai := api.PIMInterface{
			Interface: ifc.Name, State: "down", Address: st.Address.String(), GenerationID: st.GenerationID,
			Neighbors: len(st.Neighbors), IsDR: st.IsDR, DRPriority: st.DRPriority,
			HelloInterval: secs(st.HelloPeriod), Holdtime: secs(st.Holdtime), NextHello: until(now, st.NextHello),
			LANDelayEnabled:  st.LANDelayEnabled,
			PropagationDelay: secs(st.EffectivePropagationDelay), OverrideInterval: secs(st.EffectiveOverrideInterval),
			JoinSuppression: st.SuppressionEnabled,
			IgnoreDRState:   ifc.Opt.IgnoreDRState, IgnoreAssertState: ifc.Opt.IgnoreAssertState,
			Received: map[string]uint64{}, Sent: map[string]uint64{},
			Counters: map[string]uint64{
				"send_errors": s.TxErrors, "neighbors_up": s.NeighborsUp, "neighbors_down": s.NeighborsDown,
				"neighbor_restarts": s.NeighborRestarts, "dr_changes": s.DRChanges,
			},
			Drops: map[string]uint64{},
		}
		if st.Running {
			ai.State = "up"
		}
		if st.DR.IsValid() {
			ai.DR = st.DR.String()
		}
		for _, t := range pimMessageTypes() {
			ai.Received[t.String()] = s.Rx[t]
			ai.Sent[t.String()] = s.Tx[t]
		}
		for _, r := range pim.DropReasons() {
			if n := s.Drops[r]; n != 0 {
				ai.Drops[r.String()] = n
			}
		}
		out = append(out, ai)
	}
	return out, nil
}

// pimFlagNames spells RouteFlags one name a flag, lowest bit first.
func pimFlagNames(f pim.RouteFlags) []string {
	out := []string{}
	for b := pim.RouteFlags(1); b != 0; b <<= 1 {
		if f&b != 0 {
			out = append(out, b.String())
		}
	}
	return out
}

// pimRouteOf converts one route; names maps ifindexes to names.
func pimRouteOf(r pim.Route, names map[int]string, now time.Time) api.PIMRoute {
	ar := api.PIMRoute{Group: r.Group.String(), Protocol: "pim-sm", Flags: pimFlagNames(r.Flags),
		Joined: r.Joined, Downstreams: []api.PIMDownstream{}}
	if r.Flags&pim.FlagWC == 0 {
		ar.Source = r.Source.String()
	}
	if r.RP.IsValid() {
		ar.RP = r.RP.String()
	} else if r.Flags&pim.FlagWC == 0 {
		ar.Protocol = "pim-ssm"
	}
	if r.RPFIface != 0 {
		ar.UpstreamInterface = ifName(names, r.RPFIface)
	}
	if r.UpstreamNeighbor.IsValid() {
		ar.UpstreamNeighbor = r.UpstreamNeighbor.String()
	}
	for _, o := range r.OIfs {
		ad := api.PIMDownstream{Interface: ifName(names, o.Ifindex), Joined: o.Joined, Local: o.Local}
		if o.Joined {
			if o.Expires.IsZero() {
				ad.NeverExpires = true
			} else {
				ad.ExpiresIn = until(now, o.Expires)
			}
		}
		ar.Downstreams = append(ar.Downstreams, ad)
	}
	return ar
}

// pimRoutingTableOf is "display pim routing-table [GROUP]": the entries of
// group (every one when invalid), the RPs and the counters.
func pimRoutingTableOf(v pimView, group netip.Addr, now time.Time) api.PIMRoutingTable {
	out := api.PIMRoutingTable{Routes: []api.PIMRoute{}, RPs: []api.PIMRP{}, SPTSwitch: string(v.SPT)}
	if out.SPTSwitch == "" {
		out.SPTSwitch = string(config.DefaultSPTSwitch)
	}
	if v.Router != nil {
		for _, r := range v.Router.Routes() {
			if group.IsValid() && r.Group != group {
				continue
			}
			if r.Flags&pim.FlagWC != 0 {
				out.StarGEntries++
			} else {
				out.SGEntries++
			}
			out.Routes = append(out.Routes, pimRouteOf(r, v.Names, now))
		}
		out.Statistics = pimStatsOf(v.Router.Stats(), v.Data)
	} else {
		out.Statistics = pimStatsOf(pim.RouterStats{}, v.Data)
	}
	for _, rp := range v.RPs {
		g := rp.GroupRange
		if !g.IsValid() {
			g = pim.AllGroups
		}
		out.RPs = append(out.RPs, api.PIMRP{Address: rp.Address.String(), GroupRange: g.String()})
	}
	return out
}

// pimStatsOf converts the router's counters and the data path's.
func pimStatsOf(s pim.RouterStats, d pimDataStats) api.PIMStats {
	out := api.PIMStats{
		JoinPrune:      map[string]uint64{"received": s.JPRx, "seen": s.JPSeen, "sent": s.JPTx},
		JoinPruneDrops: map[string]uint64{},
		Assert:         map[string]uint64{"received": s.AssertRx, "sent": s.AssertTx, "dropped": s.AssertDrop},
		Register: map[string]uint64{
			"sent": s.RegisterTx, "null_sent": s.NullRegisterTx, "received": s.RegisterRx,
			"decapsulated": s.RegisterDecap, "stop_sent": s.RegisterStopTx, "stop_received": s.RegisterStopRx,
		},
		RegisterDrops: map[string]uint64{},
		SendErrors:    s.TxErrors,
		Data:          pimDataCounters(d),
	}
	for _, r := range pimJPDropReasons() {
		if n := s.JPDrops[r]; n != 0 {
			out.JoinPruneDrops[r.String()] = n
		}
	}
	for _, r := range pimRegDropReasons() {
		if n := s.RegisterDrops[r]; n != 0 {
			out.RegisterDrops[r.String()] = n
		}
	}
	return out
}

// pimDataCounters names the data path's counters (the API's keys and the
// metrics' labels).
func pimDataCounters(d pimDataStats) map[string]uint64 {
	return map[string]uint64{
		"data_received": d.DataRx, "data_dropped": d.DataDropped,
		"registers_sent": d.RegistersTx, "register_errors": d.RegisterErrs,
		"decap_forwarded": d.DecapForward, "decap_errors": d.DecapErrs,
		"counter_polls": d.CounterPolls,
	}
}

// pimJPDropReasons lists the Join/Prune drop reasons but none: the
// indexes of RouterStats.JPDrops.
func pimJPDropReasons() []pim.JPDropReason {
	var s pim.RouterStats
	out := make([]pim.JPDropReason, 0, len(s.JPDrops)-1)
	for r := range len(s.JPDrops) {
		if pim.JPDropReason(r) != pim.JPDropNone {
			out = append(out, pim.JPDropReason(r))
		}
	}
	return out
}

// pimRegDropReasons lists the Register drop reasons but none: the
// indexes of RouterStats.RegisterDrops.
func pimRegDropReasons() []pim.RegDropReason {
	var s pim.RouterStats
	out := make([]pim.RegDropReason, 0, len(s.RegisterDrops)-1)
	for r := range len(s.RegisterDrops) {
		if pim.RegDropReason(r) != pim.RegDropNone {
			out = append(out, pim.RegDropReason(r))
		}
	}
	return out
}

// pimRouteCounts counts the router's (*,G) and (S,G) entries.
func pimRouteCounts(routes []pim.Route) (starG, sg int) {
	for _, r := range routes {
		if r.Flags&pim.FlagWC != 0 {
			starG++
		} else {
			sg++
		}
	}
	return starG, sg
}
