package bpf

import (
	"fmt"
	"net/netip"
)

// Gate is an egress interface's forwarding gate.
type Gate = ingressHcGate

// Gate values.
const (
	GateMuted   = ingressHcGateHC_GATE_MUTED
	GateForward = ingressHcGateHC_GATE_FORWARD
)

// RouteFlags mark where a route came from.
type RouteFlags uint32

// Route flags, from HC_ROUTE_F_* in include/hotcast.h.
const (
	RouteStatic RouteFlags = 1 << 0
	RouteSynced RouteFlags = 1 << 1
	// routeClone is set by the dataplane itself on routes whose set has a
	// clone-mode interface (HC_ROUTE_F_CLONE); callers never pass it.
	routeClone RouteFlags = 1 << 2
	// RoutePunt: the control plane reads the route's packets
	// (HC_ROUTE_F_PUNT): they are replicated in TC after the packet
	// sockets saw them, or, with no outgoing interface, passed to the
	// stack (ReasonPassPunt). PIM sets it on a (*,G) whose new sources
	// start the switch to the source tree, and on an (S,G) the DR
	// registers.
	RoutePunt RouteFlags = 1 << 3
)

// RouteKey names a route: (S,G), or (*,G) when Source is the unspecified
// address (or the zero netip.Addr).
type RouteKey struct {
	Source netip.Addr
	Group  netip.Addr
}

// IsStar reports whether k is a (*,G) key.
func (k RouteKey) IsStar() bool { return !k.Source.IsValid() || k.Source.IsUnspecified() }

func (k RouteKey) String() string {
	if k.IsStar() {
		return fmt.Sprintf("(*, %s)", k.Group)
	}
	return fmt.Sprintf("(%s, %s)", k.Source, k.Group)
}

func (k RouteKey) normalize() RouteKey {
	if k.IsStar() {
		k.Source = netip.IPv6Unspecified()
	}
	return k
}

func (k RouteKey) bpfKey() ingressHcRouteKey {
	k = k.normalize()
	return ingressHcRouteKey{Src: k.Source.As16(), Grp: k.Group.As16()}
}

func keyFromBPF(k ingressHcRouteKey) RouteKey {
	return RouteKey{Source: netip.AddrFrom16(k.Src), Group: netip.AddrFrom16(k.Grp)}
}

// Route is one multicast forwarding entry.
type Route struct {
	RouteKey
	IIf   int   // incoming (RPF) interface index
	OIfs  []int // outgoing interface indexes
	Flags RouteFlags
}

// Validate checks what the dataplane cannot represent.
func (r Route) Validate() error {
	if !r.Group.Is6() || r.Group.Is4In6() || !r.Group.IsMulticast() {
		return fmt.Errorf("route %s: group is not an IPv6 multicast address", r.RouteKey)
	}
	if !r.IsStar() && (!r.Source.Is6() || r.Source.IsMulticast()) {
		return fmt.Errorf("route %s: source is not an IPv6 unicast address", r.RouteKey)
	}
	if r.IIf <= 0 {
		return fmt.Errorf("route %s: no incoming interface", r.RouteKey)
	}
	if len(r.OIfs) > maxSetOIfs {
		return fmt.Errorf("route %s: %d outgoing interfaces, at most %d", r.RouteKey, len(r.OIfs), maxSetOIfs)
	}
	for _, o := range r.OIfs {
		if o <= 0 {
			return fmt.Errorf("route %s: bad outgoing interface index %d", r.RouteKey, o)
		}
	}
	return nil
}

// Counter is a route's traffic: packets and bytes the fast path matched.
type Counter struct {
	Packets uint64
	Bytes   uint64
}

// RouteStats is a route with its counters.
type RouteStats struct {
	Route
	Packets uint64
	Bytes   uint64
}
