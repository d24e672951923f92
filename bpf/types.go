package bpf

import (
	"fmt"
	"net/netip"
)

// Reason says what happened to a frame; the programs count every verdict
// under one. Generated from enum hc_reason.
type Reason = ingressHcReason

// Reason values, from enum hc_reason in include/hotcast.h.
const (
	ReasonForwarded       = ingressHcReasonHC_R_FORWARDED
	ReasonPassNotIPv6     = ingressHcReasonHC_R_PASS_NOT_IPV6
	ReasonPassUnicast     = ingressHcReasonHC_R_PASS_UNICAST
	ReasonPassLocalScope  = ingressHcReasonHC_R_PASS_LOCAL_SCOPE
	ReasonPassRouterAlert = ingressHcReasonHC_R_PASS_ROUTER_ALERT
	ReasonPassMLD         = ingressHcReasonHC_R_PASS_MLD
	ReasonPassPIM         = ingressHcReasonHC_R_PASS_PIM
	ReasonPassVRRP        = ingressHcReasonHC_R_PASS_VRRP
	ReasonPassMiss        = ingressHcReasonHC_R_PASS_MISS
	ReasonPassHopLimit    = ingressHcReasonHC_R_PASS_HOP_LIMIT
	ReasonDropMalformed   = ingressHcReasonHC_R_DROP_MALFORMED
	ReasonDropRPF         = ingressHcReasonHC_R_DROP_RPF
	ReasonDropNoOIF       = ingressHcReasonHC_R_DROP_NO_OIF
	ReasonDropRedirect    = ingressHcReasonHC_R_DROP_REDIRECT
	ReasonDropVMACBackup  = ingressHcReasonHC_R_DROP_VMAC_BACKUP
	ReasonTxNA            = ingressHcReasonHC_R_TX_NA
	ReasonForwardedClone  = ingressHcReasonHC_R_FORWARDED_CLONE
	ReasonDropClone       = ingressHcReasonHC_R_DROP_CLONE
	ReasonEgressSent      = ingressHcReasonHC_R_EGRESS_SENT
	ReasonEgressMuted     = ingressHcReasonHC_R_EGRESS_MUTED
	ReasonEgressUnknown   = ingressHcReasonHC_R_EGRESS_UNKNOWN
	ReasonEgressMalformed = ingressHcReasonHC_R_EGRESS_MALFORMED
	numReasons            = ingressHcReasonHC_R_MAX
)

// reasonNames are the stable names used by display, JSON and metrics.
var reasonNames = [...]string{
	ReasonForwarded:       "forwarded",
	ReasonPassNotIPv6:     "pass_not_ipv6",
	ReasonPassUnicast:     "pass_unicast",
	ReasonPassLocalScope:  "pass_local_scope",
	ReasonPassRouterAlert: "pass_router_alert",
	ReasonPassMLD:         "pass_mld",
	ReasonPassPIM:         "pass_pim",
	ReasonPassVRRP:        "pass_vrrp",
	ReasonPassMiss:        "pass_miss",
	ReasonPassHopLimit:    "pass_hop_limit",
	ReasonDropMalformed:   "drop_malformed",
	ReasonDropRPF:         "drop_rpf",
	ReasonDropNoOIF:       "drop_no_oif",
	ReasonDropRedirect:    "drop_redirect",
	ReasonDropVMACBackup:  "drop_vmac_backup",
	ReasonTxNA:            "tx_na",
	ReasonForwardedClone:  "forwarded_clone",
	ReasonDropClone:       "drop_clone",
	ReasonEgressSent:      "egress_sent",
	ReasonEgressMuted:     "egress_muted",
	ReasonEgressUnknown:   "egress_unknown",
	ReasonEgressMalformed: "egress_malformed",
}

// ReasonName returns the stable name of r.
func ReasonName(r Reason) string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason_%d", uint32(r))
}

// AllReasons lists every reason in order.
func AllReasons() []Reason {
	out := make([]Reason, 0, numReasons)
	for r := Reason(0); r < numReasons; r++ {
		out = append(out, r)
	}
	return out
}

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

// RouteStats is a route with its counters.
type RouteStats struct {
	Route
	Packets uint64
	Bytes   uint64
}
