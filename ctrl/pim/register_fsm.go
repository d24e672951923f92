package pim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"
)

// The Keepalive Timer (§4.1.2), the data-arrival input of §4.2, the SPT
// switch (§4.2.1, §4.2.2) and the DR's Register state machine (§4.4.1).

// Timer values of RFC 7761 §4.11 for the register machinery.
const (
	KeepalivePeriod                = 210 * time.Second // Keepalive_Period
	DefaultRegisterSuppressionTime = 60 * time.Second  // Register_Suppression_Time
	DefaultRegisterProbeTime       = 5 * time.Second   // Register_Probe_Time
)

// SPTSwitchPolicy is SwitchToSptDesired(S,G) of a last-hop router (§4.2.1).
type SPTSwitchPolicy uint8

const (
	// SPTImmediate switches to the SPT on the first packet of a source
	// (the default, as in most implementations).
	SPTImmediate SPTSwitchPolicy = iota
	// SPTNever stays on the RP tree. The RP itself always joins the SPT
	// towards a registering source.
	SPTNever
)

func (p SPTSwitchPolicy) String() string {
	switch p {
	case SPTImmediate:
		return "immediate"
	case SPTNever:
		return "never"
	}
	return fmt.Sprintf("spt-switch-%d", uint8(p))
}

// RegisterState is the DR's per-(S,G) Register state (§4.4.1).
type RegisterState uint8

// Register states.
const (
	RegNoInfo      RegisterState = iota // NI: not a DR for a registering source
	RegJoin                             // J: data is encapsulated to the RP
	RegJoinPending                      // JP: a Null-Register was sent, waiting for a Register-Stop
	RegPrune                            // P: the RP sent a Register-Stop
)

func (s RegisterState) String() string {
	switch s {
	case RegNoInfo:
		return "NoInfo"
	case RegJoin:
		return "Join"
	case RegJoinPending:
		return "Join-Pending"
	case RegPrune:
		return "Prune"
	}
	return fmt.Sprintf("register-state-%d", uint8(s))
}

// UnicastSender sends the Router's unicast PIM messages (Register,
// Null-Register, Register-Stop): an IPv6 packet of next header 103 from
// src to dst, routed by the unicast FIB; msg is the PIM message, checksum
// included.
type UnicastSender interface {
	SendUnicast(src, dst netip.Addr, msg []byte) error
}

// UnicastPIM is a unicast PIM message ready to send: Payload is Message
// marshalled for Src and Dst.
type UnicastPIM struct {
	Src, Dst netip.Addr
	Message  Message
	Payload  []byte
}

// ErrNotRegistering is returned (wrapped) by BuildRegister when the
// (S,G)'s Register state is not Join.
var ErrNotRegistering = errors.New("pim: not registering")

// ErrBadInnerPacket is returned (wrapped) for a data packet that is not
// an IPv6 packet from the source to the group.
var ErrBadInnerPacket = errors.New("pim: bad inner packet")

// katRunning: the Keepalive Timer runs (or the daemon holds the source
// active with SetSourceActive).
func (e *sgState) katRunning() bool { return e.active || e.kat.running() }

// setKAT (re)starts the Keepalive Timer of (S,G) with d. On expiry the
// SPT bit that data set goes, and the entry may go with it.
func (r *Router) setKAT(gs *groupState, e *sgState, d time.Duration) {
	if r.remaining(&e.kat) >= d && e.kat.running() {
		return // never shorten a running KAT (RP_Keepalive_Period < Keepalive_Period)
	}
	g := gs.g
	r.arm(&e.kat, d, func() {
		if !e.active {
			e.spt = false
		}
		r.dirty[g] = struct{}{}
	})
	r.dirty[g] = struct{}{}
}

// isOwn reports whether a is one of the router's addresses.
func (r *Router) isOwn(a netip.Addr) bool {
	return a.IsValid() && slices.Contains(r.cfg.Addresses, a.WithZone(""))
}

// iAmRP is I_am_RP(G).
func (gs *groupState) iAmRP(r *Router) bool { return r.isOwn(gs.rp(r)) }

// directlyConnected is DirectlyConnected(S): S is on the link of one of
// the Router's interfaces (the route to it has no gateway).
func (r *Router) directlyConnected(s netip.Addr) bool {
	if r.isOwn(s) {
		return false
	}
	rt, ok := r.lookup(s)
	if !ok || rt.Nexthop.IsValid() {
		return false
	}
	_, ok = r.ifaces[rt.Ifindex]
	return ok
}

// couldRegister is CouldRegister(S,G) = I_am_DR(RPF_interface(S)) AND
// KeepaliveTimer(S,G) is running AND DirectlyConnected(S) (§4.4.1), for a
// group with an RP other than this router (an RP that is the first hop
// forwards natively, an SSM group has nobody to register to).
func (r *Router) couldRegister(gs *groupState, e *sgState) bool {
	if !e.katRunning() || gs.ssm(r) || !gs.rp(r).IsValid() || gs.iAmRP(r) || !r.directlyConnected(e.s) {
		return false
	}
	ri, ok := r.ifaces[r.rpfIface(e.s)]
	return ok && ri.iAmDR()
}

// registerStopDelay is (*) of §4.4.1: uniform in (0.5, 1.5) ×
// Register_Suppression_Time, less Register_Probe_Time.
func (r *Router) registerStopDelay() time.Duration {
	sup := r.cfg.RegisterSuppressionTime
	return sup/2 + r.randDelay(sup) - r.cfg.RegisterProbeTime
}

// stepRegister evaluates CouldRegister and an RP change for the
// Register state machine of (S,G) (§4.4.1).
func (r *Router) stepRegister(gs *groupState, e *sgState) {
	could := r.couldRegister(gs, e)
	rp := gs.rp(r)
	switch {
	case e.reg == RegNoInfo && could:
		e.reg, e.regRP = RegJoin, rp // add the register tunnel
	case e.reg != RegNoInfo && !could:
		e.reg, e.regRP = RegNoInfo, netip.Addr{} // remove the tunnel
		e.rst.stop()
	case e.reg != RegNoInfo && e.regRP != rp:
		// RP(G) changed: register to the new RP at once.
		e.reg, e.regRP = RegJoin, rp
		e.rst.stop()
	}
}

// registerStopReceived is the Register-Stop event (§4.4.1): J and JP go
// to P with the Register-Stop Timer at (*).
func (r *Router) registerStopReceived(gs *groupState, e *sgState) {
	if e.reg != RegJoin && e.reg != RegJoinPending {
		return
	}
	e.reg = RegPrune
	r.armRST(gs, e, r.registerStopDelay())
}

func (r *Router) armRST(gs *groupState, e *sgState, d time.Duration) {
	g := gs.g
	r.arm(&e.rst, d, func() { r.rstExpired(g, e) })
	r.dirty[g] = struct{}{}
}

// rstExpired: JP goes to J (tunnel back); P goes to JP, sends a
// Null-Register and waits Register_Probe_Time for a Register-Stop.
func (r *Router) rstExpired(g netip.Addr, e *sgState) {
	gs, ok := r.groups[g]
	if !ok || gs.src[e.s] != e {
		return
	}
	switch e.reg {
	case RegJoinPending:
		e.reg = RegJoin
	case RegPrune:
		e.reg = RegJoinPending
		r.armRST(gs, e, r.cfg.RegisterProbeTime)
		if m, err := r.buildRegister(gs, e, NullRegister(e.s, g)); err == nil {
			r.stats.NullRegisterTx++
			r.sendUnicast(m)
		} else {
			r.log.Debug("pim null-register not sent", slog.String("source", e.s.String()), slog.String("group", g.String()), slog.Any("error", err))
		}
	}
	r.dirty[g] = struct{}{}
}

// sendUnicast queues a unicast message for delivery without the mutex.
func (r *Router) sendUnicast(m UnicastPIM) {
	r.outbox.add(routerOut{uni: &m})
}

func (r *Router) buildRegister(gs *groupState, e *sgState, reg *Register) (UnicastPIM, error) {
	if len(r.cfg.Addresses) == 0 {
		return UnicastPIM{}, fmt.Errorf("register (%v,%v): no router address configured", e.s, gs.g)
	}
	src, dst := r.cfg.Addresses[0], e.regRP
	b, err := Marshal(reg, src, dst)
	if err != nil {
		return UnicastPIM{}, fmt.Errorf("register (%v,%v): %w", e.s, gs.g, err)
	}
	return UnicastPIM{Src: src, Dst: dst, Message: reg, Payload: b}, nil
}

// checkInner verifies that p is one IPv6 packet from a unicast source to
// a routable group (payload length matching, no jumbogram) and returns
// its addresses.
func checkInner(p []byte) (s, g netip.Addr, err error) {
	if len(p) < ipv6HeaderLen || p[0]>>4 != 6 {
		return s, g, fmt.Errorf("%d octets, not an ipv6 header: %w", len(p), ErrBadInnerPacket)
	}
	if pl := int(binary.BigEndian.Uint16(p[4:6])); pl+ipv6HeaderLen != len(p) {
		return s, g, fmt.Errorf("payload length %d in %d octets: %w", pl, len(p), ErrBadInnerPacket)
	}
	s, g = netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
	if !validSource(s) || !routable(g) {
		return s, g, fmt.Errorf("%v -> %v: %w", s, g, ErrBadInnerPacket)
	}
	return s, g, nil
}

// RegisterState returns the DR's Register state of (S,G).
func (r *Router) RegisterState(s, g netip.Addr) RegisterState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.sg(s, g); e != nil {
		return e.reg
	}
	return RegNoInfo
}

// sg finds an (S,G) entry; nil when there is none.
func (r *Router) sg(s, g netip.Addr) *sgState {
	gs := r.groups[g.WithZone("")]
	if gs == nil {
		return nil
	}
	return gs.src[s.WithZone("").Unmap()]
}

// ShouldRegister reports whether the data path must encapsulate packets
// from S to G to the RP: the Register state is Join (§4.4.1, the
// register tunnel is in the olist).
func (r *Router) ShouldRegister(s, g netip.Addr) bool {
	return r.RegisterState(s, g) == RegJoin
}

// BuildRegister encapsulates inner, an IPv6 packet from S to G IPv6
// header first, in a Register to RP(G) from the router's first address
// (RouterConfig.Addresses). It fails when the Register state is not
// Join (ErrNotRegistering) or inner is not from S to G
// (ErrBadInnerPacket). A Register larger than the path MTU is for the
// sender to fragment (IPv6 source fragmentation).
func (r *Router) BuildRegister(s, g netip.Addr, inner []byte) (UnicastPIM, error) {
	is, ig, err := checkInner(inner)
	if err != nil {
		return UnicastPIM{}, fmt.Errorf("register: %w", err)
	}
	s, g = s.WithZone("").Unmap(), g.WithZone("")
	if is != s || ig != g {
		return UnicastPIM{}, fmt.Errorf("register (%v,%v): packet %v -> %v: %w", s, g, is, ig, ErrBadInnerPacket)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.sg(s, g)
	if e == nil || e.reg != RegJoin {
		return UnicastPIM{}, fmt.Errorf("register (%v,%v): %w", s, g, ErrNotRegistering)
	}
	m, err := r.buildRegister(r.groups[g], e, &Register{Packet: slices.Clone(inner)})
	if err != nil {
		return UnicastPIM{}, err
	}
	r.stats.RegisterTx++
	return m, nil
}

// SendRegister is BuildRegister, the message sent through
// RouterConfig.Unicast.
func (r *Router) SendRegister(s, g netip.Addr, inner []byte) error {
	m, err := r.BuildRegister(s, g, inner)
	if err != nil {
		return err
	}
	if r.cfg.Unicast == nil {
		return fmt.Errorf("register (%v,%v): no unicast sender", s, g)
	}
	if err := r.cfg.Unicast.SendUnicast(m.Src, m.Dst, m.Payload); err != nil {
		r.mu.Lock()
		r.stats.TxErrors++
		r.mu.Unlock()
		return fmt.Errorf("register (%v,%v) to %v: %w", s, g, m.Dst, err)
	}
	return nil
}

// DataArrived is the data-path input of §4.2 ("on receipt of data from
// S to G on interface iif"): the daemon calls it for a packet the fast
// path has no route for, and for (S,G) routes whose counters moved since
// the last read. It
//
//   - restarts the Keepalive Timer for a directly connected source
//     arriving on its interface (which makes the DR register it, §4.4.1),
//     and for an (S,G) joined on the SPT with an olist;
//   - sets the SPT bit (Update_SPTbit, §4.2.2) for data on RPF_interface(S);
//   - on the RP tree, with local receivers and the SPTImmediate policy,
//     starts the switch to the SPT (CheckSwitchToSpt, §4.2.1);
//   - for data failing the RPF check on an interface of the olist, runs
//     the assert machines as DataOnOIF does (§4.6).
func (r *Router) DataArrived(iif int, s, g netip.Addr) {
	s, g = s.WithZone("").Unmap(), g.WithZone("")
	if !validSource(s) || !routable(g) {
		return
	}
	r.mu.Lock()
	defer r.unlock()
	if _, ok := r.ifaces[iif]; !ok {
		return
	}
	gs := r.groups[g]
	var e *sgState
	if gs != nil {
		e = gs.src[s]
	}
	rpfS := r.rpfIface(s)
	if iif == rpfS && r.directlyConnected(s) {
		if gs == nil {
			gs = r.group(g)
		}
		if e = r.ensureSG(gs, s); e == nil {
			r.stats.JPDrops[JPDropStateLimit]++
			r.gc(gs)
			return
		}
		r.setKAT(gs, e, r.cfg.KeepalivePeriod)
	}
	if gs == nil {
		return
	}
	o := r.wcOlist(gs)
	if e != nil && iif == rpfS && e.up.joined {
		if _, _, inh, _ := r.sgOlists(gs, e, o); !without(inh, iif).empty() {
			r.setKAT(gs, e, r.cfg.KeepalivePeriod)
		}
	}
	if e != nil {
		r.updateSPTbit(gs, e, iif)
	}
	rpfRP := r.rpfIface(gs.rp(r))
	switch {
	case e != nil && iif == rpfS && e.spt:
	case iif == rpfRP && rpfRP != 0 && (e == nil || !e.spt):
		r.checkSwitchToSPT(gs, e, s, o)
	default:
		r.dataOnOIF(iif, gs, s)
	}
	r.dirty[g] = struct{}{}
	r.settle()
}

// joinDesiredSG is JoinDesired(S,G) (§4.5.7), the RPF interface left out
// of the olists.
func (r *Router) joinDesiredSG(gs *groupState, e *sgState, o olists) bool {
	_, imm, inh, _ := r.sgOlists(gs, e, o)
	ifx, _ := r.rpfPrimeSG(gs, e)
	return !without(imm, ifx).empty() || e.katRunning() && !without(inh, ifx).empty()
}

// updateSPTbit is Update_SPTbit(S,G,iif) (§4.2.2).
func (r *Router) updateSPTbit(gs *groupState, e *sgState, iif int) {
	if e.spt || iif != r.rpfIface(e.s) {
		return
	}
	// The KAT may have just been restarted: settle the upstream machine
	// first so that JoinDesired is the current one.
	o := r.wcOlist(gs)
	if !r.joinDesiredSG(gs, e, o) {
		return
	}
	rp := gs.rp(r)
	rpt, _, _, _ := r.sgOlists(gs, e, o)
	sIfx, sNbr := r.rpfPrimeSG(gs, e)
	wIfx, wNbr := r.rpfPrimeWC(gs)
	a, lost := e.assert[iif]
	if r.directlyConnected(e.s) || r.rpfIface(e.s) != r.rpfIface(rp) ||
		without(rpt, r.rpfIface(rp)).empty() ||
		sIfx == wIfx && sNbr == wNbr && sNbr.IsValid() ||
		lost && a.state == asLoser {
		e.spt = true
		r.dirty[gs.g] = struct{}{}
	}
}

// checkSwitchToSPT is CheckSwitchToSpt(S,G) (§4.2.1): with local
// receivers of S (pim_include(*,G) - pim_exclude(S,G) + pim_include(S,G))
// and SwitchToSptDesired, the KAT starts, and with it JoinDesired(S,G).
func (r *Router) checkSwitchToSPT(gs *groupState, e *sgState, s netip.Addr, o olists) {
	if r.cfg.SPTSwitch != SPTImmediate || gs.ssm(r) {
		return
	}
	probe := e
	if probe == nil {
		probe = &sgState{s: s}
	}
	if _, _, _, local := r.sgOlists(gs, probe, o); local.empty() {
		return
	}
	if e == nil {
		if e = r.ensureSG(gs, s); e == nil {
			r.stats.JPDrops[JPDropStateLimit]++
			return
		}
	}
	r.setKAT(gs, e, r.cfg.KeepalivePeriod)
}
