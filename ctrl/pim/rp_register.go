package pim

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"
)

// The RP's side of registering (RFC 7761 §4.4.2) and the DR's receipt
// of Register-Stop (§4.4.1).

// RegDropReason is why the Router ignored a Register or Register-Stop.
type RegDropReason uint8

// Register and Register-Stop drop reasons.
const (
	RegDropNone         RegDropReason = iota
	RegDropNotForUs                   // outer destination is not one of the router's addresses
	RegDropUnauthorized               // outer source outside AcceptRegister
	RegDropSourceDenied               // inner source outside AcceptRegisterSources
	RegDropBadInner                   // inner packet not IPv6 from a unicast source to a routable group
	RegDropSSM                        // group in the SSM range
	RegDropNotRP                      // not RP(G) at the outer destination: Register-Stop sent
	RegDropPMBR                       // Border bit from another PMBR than the first: Register-Stop sent
	RegDropStateLimit                 // new (S,G) beyond MaxEntries
	RegDropBadStop                    // Register-Stop: not a routable group /128, or a bad source
	RegDropStopNotRP                  // Register-Stop from an address other than RP(G)
	numRegDropReasons
)

func (r RegDropReason) String() string {
	switch r {
	case RegDropNone:
		return "none"
	case RegDropNotForUs:
		return "not-for-us"
	case RegDropUnauthorized:
		return "unauthorized"
	case RegDropSourceDenied:
		return "source-denied"
	case RegDropBadInner:
		return "bad-inner-packet"
	case RegDropSSM:
		return "ssm-group"
	case RegDropNotRP:
		return "not-rp"
	case RegDropPMBR:
		return "pmbr-mismatch"
	case RegDropStateLimit:
		return "state-limit"
	case RegDropBadStop:
		return "bad-register-stop"
	case RegDropStopNotRP:
		return "register-stop-not-from-rp"
	}
	return fmt.Sprintf("reg-drop-%d", uint8(r))
}

// RegisterData is a packet the RP decapsulated from a Register, to
// forward out of OIfs (inherited_olist(S,G,rpt), §4.4.2). Packet is the
// inner IPv6 packet, IPv6 header first; the daemon sends it unchanged.
type RegisterData struct {
	Source, Group netip.Addr
	OIfs          []int // sorted
	Packet        []byte
}

// HandleRegister processes a Register from src to dst (the outer IPv6
// addresses; the checksum was verified by the Interface, over the PIM
// header only) as §4.4.2's packet_arrives_on_rp_tunnel: checks the
// addresses, AcceptRegister and AcceptRegisterSources and the inner
// packet, then, at RP(G): sends a Register-Stop when the SPT bit is set
// or nobody downstream wants the source, restarts the Keepalive Timer
// (which joins the SPT towards S when inherited_olist(S,G) is not
// empty), and returns the inner packet to forward on the RP tree unless
// the SPT bit is set or it is a Null-Register (no OIfs: nothing to send).
// Not RP(G): a Register-Stop to src. Drops are counted by reason; a
// dropped Register changes no state.
//
// HandleMessage calls it for received Registers and hands a non-empty
// result to RouterConfig.OnRegisterData; a direct caller forwards the
// result itself.
func (r *Router) HandleRegister(src, dst netip.Addr, reg *Register) (RegisterData, RegDropReason) {
	r.mu.Lock()
	defer r.unlock()
	d, why := r.handleRegister(src.WithZone(""), dst.WithZone(""), reg)
	if why != RegDropNone {
		r.stats.RegisterDrops[why]++
		r.log.Debug("pim register dropped", slog.String("src", src.String()), slog.String("dst", dst.String()), slog.String("reason", why.String()))
	}
	r.settle()
	return d, why
}

func (r *Router) handleRegister(src, dst netip.Addr, reg *Register) (RegisterData, RegDropReason) {
	if !r.isOwn(dst) {
		return RegisterData{}, RegDropNotForUs
	}
	if r.cfg.AcceptRegister != nil && !slices.ContainsFunc(r.cfg.AcceptRegister, func(p netip.Prefix) bool { return p.Contains(src) }) {
		return RegisterData{}, RegDropUnauthorized
	}
	s, g, err := checkInner(reg.Packet)
	if err != nil {
		return RegisterData{}, RegDropBadInner
	}
	if r.cfg.AcceptRegisterSources != nil && !slices.ContainsFunc(r.cfg.AcceptRegisterSources, func(p netip.Prefix) bool { return p.Contains(s) }) {
		return RegisterData{}, RegDropSourceDenied
	}
	if r.cfg.RPs.IsSSM(g) {
		return RegisterData{}, RegDropSSM
	}
	r.stats.RegisterRx++
	rp, ok := r.cfg.RPs.RP(g)
	if !ok || !r.isOwn(rp) || dst != rp {
		r.sendRegisterStop(dst, src, s, g)
		return RegisterData{}, RegDropNotRP
	}
	gs := r.group(g)
	e := r.ensureSG(gs, s)
	if e == nil {
		r.gc(gs)
		return RegisterData{}, RegDropStateLimit
	}
	r.dirty[g] = struct{}{}
	if reg.Border {
		if !e.pmbr.IsValid() {
			e.pmbr = src
		} else if src != e.pmbr {
			r.sendRegisterStop(dst, src, s, g)
			return RegisterData{}, RegDropPMBR
		}
	}
	o := r.wcOlist(gs)
	rpt, _, inh, _ := r.sgOlists(gs, e, o)
	// SwitchToSptDesired(S,G) is true at the RP.
	sent := false
	if e.spt || without(inh, r.rpfIface(s)).empty() {
		r.sendRegisterStop(dst, src, s, g)
		sent = true
	}
	if sent {
		r.setKAT(gs, e, r.cfg.rpKeepalivePeriod())
	} else {
		r.setKAT(gs, e, r.cfg.KeepalivePeriod)
	}
	if e.spt || reg.Null {
		return RegisterData{}, RegDropNone
	}
	oifs := without(rpt, r.rpfIface(s)).sorted()
	if len(oifs) == 0 {
		return RegisterData{}, RegDropNone
	}
	r.stats.RegisterDecap++
	return RegisterData{Source: s, Group: g, OIfs: oifs, Packet: slices.Clone(reg.Packet)}, RegDropNone
}

// rpKeepalivePeriod is RP_Keepalive_Period: 3 × Register_Suppression_Time
// + Register_Probe_Time.
func (c *RouterConfig) rpKeepalivePeriod() time.Duration {
	return 3*c.RegisterSuppressionTime + c.RegisterProbeTime
}

// sendRegisterStop sends Register-Stop(S,G) from the RP address to the
// DR.
func (r *Router) sendRegisterStop(from, to, s, g netip.Addr) {
	m := &RegisterStop{Group: SingleGroup(g), Source: s}
	b, err := Marshal(m, from, to)
	if err != nil {
		r.log.Debug("pim register-stop not sent", slog.Any("error", err))
		return
	}
	r.stats.RegisterStopTx++
	r.sendUnicast(UnicastPIM{Src: from, Dst: to, Message: m, Payload: b})
}

// HandleRegisterStop processes a Register-Stop from src to dst at the DR
// (§4.4.1): from RP(G) to one of the router's addresses, it moves the
// Register state of (S,G) (of every source of G for the wildcard source
// ::) from Join or Join-Pending to Prune with the Register-Stop Timer.
// Others are dropped and counted, changing nothing.
func (r *Router) HandleRegisterStop(src, dst netip.Addr, rs *RegisterStop) RegDropReason {
	r.mu.Lock()
	defer r.unlock()
	why := r.handleRegisterStop(src.WithZone(""), dst.WithZone(""), rs)
	if why != RegDropNone {
		r.stats.RegisterDrops[why]++
		r.log.Debug("pim register-stop dropped", slog.String("src", src.String()), slog.String("reason", why.String()))
	}
	r.settle()
	return why
}

func (r *Router) handleRegisterStop(src, dst netip.Addr, rs *RegisterStop) RegDropReason {
	if !r.isOwn(dst) {
		return RegDropNotForUs
	}
	g, s := rs.Group.Addr.WithZone(""), rs.Source.WithZone("")
	if rs.Group.MaskLen != maxMaskLen || rs.Group.Bidir || !routable(g) || !s.Is6() || !s.IsUnspecified() && !validSource(s) {
		return RegDropBadStop
	}
	if rp, ok := r.cfg.RPs.RP(g); !ok || rp != src {
		return RegDropStopNotRP
	}
	r.stats.RegisterStopRx++
	gs := r.groups[g]
	if gs == nil {
		return RegDropNone
	}
	for _, e := range gs.src {
		if s.IsUnspecified() || e.s == s {
			r.registerStopReceived(gs, e)
		}
	}
	r.dirty[g] = struct{}{}
	return RegDropNone
}
