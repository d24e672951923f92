package vrrp6

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hotcast/hotcast/internal/clock"
)

// State is a virtual router state (RFC 9568 §6.4).
type State uint8

// States of RFC 9568 §6.4. RFC 9568 calls Master "Active".
const (
	StateInitialize State = iota
	StateBackup
	StateMaster
)

func (s State) String() string {
	switch s {
	case StateInitialize:
		return "Initialize"
	case StateBackup:
		return "Backup"
	case StateMaster:
		return "Master"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Reason says why a transition happened.
type Reason uint8

// Transition reasons.
const (
	ReasonNone Reason = iota
	// ReasonStartup: Startup event in Initialize (RFC 9568 §6.4.1).
	ReasonStartup
	// ReasonMasterDownTimerExpired: no advert for Master_Down_Interval
	// (RFC 9568 §6.4.2).
	ReasonMasterDownTimerExpired
	// ReasonPriorityZeroReceived: the Master_Down_Timer, set to Skew_Time
	// on a priority 0 advert, expired (RFC 9568 §6.4.2).
	ReasonPriorityZeroReceived
	// ReasonPreempt: the Master_Down_Timer expired while lower-priority
	// adverts were being discarded in preempt mode (RFC 9568 §6.4.2).
	ReasonPreempt
	// ReasonPreemptDelayExpired: the preempt delay ran out while a
	// lower-priority Master was active.
	ReasonPreemptDelayExpired
	// ReasonHigherPriorityAdvert: a Master heard a higher priority
	// (RFC 9568 §6.4.3).
	ReasonHigherPriorityAdvert
	// ReasonEqualPriorityHigherAddress: a Master heard its own priority
	// from a greater primary address (RFC 9568 §6.4.3).
	ReasonEqualPriorityHigherAddress
	// ReasonShutdown: Shutdown event (RFC 9568 §6.4.2, §6.4.3).
	ReasonShutdown
	// ReasonBFDPeerDown: a Backup's tracked peer BFD session failed, the
	// peer silent and no advert heard since (HandleBFD).
	ReasonBFDPeerDown
	// ReasonBFDStepDown: a Master's tracked step-down BFD session failed.
	ReasonBFDStepDown
)

func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "None"
	case ReasonStartup:
		return "Startup"
	case ReasonMasterDownTimerExpired:
		return "MasterDownTimerExpired"
	case ReasonPriorityZeroReceived:
		return "PriorityZeroReceived"
	case ReasonPreempt:
		return "Preempt"
	case ReasonPreemptDelayExpired:
		return "PreemptDelayExpired"
	case ReasonHigherPriorityAdvert:
		return "HigherPriorityAdvert"
	case ReasonEqualPriorityHigherAddress:
		return "EqualPriorityHigherAddress"
	case ReasonShutdown:
		return "Shutdown"
	case ReasonBFDPeerDown:
		return "BFDPeerDown"
	case ReasonBFDStepDown:
		return "BFDStepDown"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Clock abstracts time so the state machine runs on a fake clock in tests.
type Clock = clock.Clock

// Timer is the part of *time.Timer the Router uses.
type Timer = clock.Timer

// SystemClock is the real Clock.
type SystemClock = clock.System

// Transition is handed to Actions on every state change.
type Transition struct {
	Interface string
	VRID      uint8
	From, To  State
	Reason    Reason
	Time      time.Time
	// VirtualMAC is 00:00:5e:00:02:{VRID}.
	VirtualMAC net.HardwareAddr
	// VirtualAddrs are the configured virtual addresses (a copy). A new
	// Master must answer Neighbor Solicitations for them and join their
	// solicited-node groups (RFC 9568 §6.4.2, §6.4.3).
	VirtualAddrs []netip.Addr
	// Accept is true when a Master must accept packets addressed to the
	// virtual addresses: the owner, or Accept_Mode (RFC 9568 §6.4.3).
	Accept bool
}

// Actions is implemented by the daemon (BPF map updates: gate, source MAC,
// virtual-MAC acceptance, virtual addresses). OnTransition is called
// synchronously on each state change; on the way to Master it is called
// before the first advertisement and Neighbor Advertisement are sent, on
// Shutdown of a Master after the priority 0 advertisement is sent.
//
// It runs with the Router's lock held: it must not call the Router's
// methods (Status, HandleAdvert, ...) synchronously.
type Actions interface {
	OnTransition(t Transition)
}

// Sender puts complete Ethernet frames on the virtual router's interface,
// with the virtual MAC as Ethernet source. The same lock rule as for
// Actions applies.
type Sender interface {
	// SendAdvert sends a frame built by BuildAdvertFrame.
	SendAdvert(frame []byte) error
	// SendUnsolicitedNA sends a frame built by BuildUnsolicitedNA.
	SendUnsolicitedNA(frame []byte) error
}

// TransitionRecord is one entry of the transition history.
type TransitionRecord struct {
	Time     time.Time
	From, To State
	Reason   Reason
}

// Router is one VRRPv3 virtual router for IPv6, one per (interface, VRID),
// running the state machine of RFC 9568 §6.4. All methods are safe for
// concurrent use.
type Router struct {
	cfg     Config
	advInt  uint16 // Advertisement_Interval, centiseconds
	clock   Clock
	sender  Sender
	actions Actions
	log     *slog.Logger

	mu          sync.Mutex
	state       State
	effPrio     uint8
	trackedDown map[string]bool
	bfdDown     map[string]bool
	// lastAdvert is when the last advert with a nonzero priority from
	// another router was accepted for processing (the split-brain guard).
	lastAdvert   time.Time
	masterAdvInt uint16 // Master_Adver_Interval, centiseconds
	masterAddr   netip.Addr
	masterPrio   uint8
	// downCause is the reason reported when the Master_Down_Timer fires.
	downCause  Reason
	masterDown rtimer
	adver      rtimer
	preempt    rtimer

	addrMismatch bool // last advert's addresses differed (log on change)
	ivalMismatch bool // last advert's interval differed while Master
	stats        Stats
	history      []TransitionRecord
}

type rtimer struct {
	t        Timer
	deadline time.Time
	gen      uint64
}

// NewRouter validates cfg and returns a Router in Initialize. Call Start.
// A nil clock means SystemClock; a nil log discards.
func NewRouter(cfg Config, clock Clock, sender Sender, actions Actions, log *slog.Logger) (*Router, error) {
	cfg.VirtualAddrs = slices.Clone(cfg.VirtualAddrs)
	cfg.Track = slices.Clone(cfg.Track)
	cfg.TrackBFD = slices.Clone(cfg.TrackBFD)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sender == nil || actions == nil {
		return nil, errors.New("vrrp6: sender and actions are required")
	}
	if clock == nil {
		clock = SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Router{
		cfg:         cfg,
		advInt:      uint16(cfg.AdvertInterval / centisecond),
		clock:       clock,
		sender:      sender,
		actions:     actions,
		log:         log.With("interface", cfg.Interface, "vrid", cfg.VRID),
		trackedDown: make(map[string]bool),
		bfdDown:     make(map[string]bool),
	}
	r.effPrio = r.effectivePriority()
	r.masterAdvInt = r.advInt
	return r, nil
}

// VRID returns the configured VRID.
func (r *Router) VRID() uint8 { return r.cfg.VRID }

// Interface returns the configured interface name.
func (r *Router) Interface() string { return r.cfg.Interface }

// State returns the current state.
func (r *Router) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

func (r *Router) owner() bool { return r.cfg.Priority == PriorityOwner }

func (r *Router) preemptMode() bool { return !r.cfg.NoPreempt || r.owner() }

// effectivePriority is the configured priority lowered by the reductions
// of the tracked interfaces that are down, never below 1; the owner's
// priority is fixed at 255.
func (r *Router) effectivePriority() uint8 {
	if r.owner() {
		return PriorityOwner
	}
	p := int(r.cfg.Priority)
	for _, t := range r.cfg.Track {
		if r.trackedDown[t.Name] {
			p -= int(t.Reduced)
		}
	}
	for _, t := range r.cfg.TrackBFD {
		if !r.bfdDown[t.Session] {
			continue
		}
		switch t.Mode {
		case TrackBFDReduce:
			p -= int(t.Reduced)
		case TrackBFDStepDown:
			p = -256 // 1 whatever else is tracked
		}
	}
	return uint8(max(p, 1))
}

// Start delivers the Startup event (RFC 9568 §6.4.1): the owner becomes
// Master at once, others become Backup with Master_Adver_Interval set to
// Advertisement_Interval and the Master_Down_Timer running.
func (r *Router) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != StateInitialize {
		return fmt.Errorf("vrrp6 vrid %d on %s: start: already %v", r.cfg.VRID, r.cfg.Interface, r.state)
	}
	if r.effPrio == PriorityOwner {
		r.becomeMaster(ReasonStartup)
		return nil
	}
	r.masterAdvInt = r.advInt
	r.masterAddr, r.masterPrio = netip.Addr{}, 0
	r.downCause = ReasonMasterDownTimerExpired
	r.armMasterDown(r.masterDownInterval())
	r.transition(StateBackup, ReasonStartup)
	return nil
}

// Shutdown delivers the Shutdown event (RFC 9568 §6.4.2, §6.4.3): a
// Master sends an advert with priority 0; all timers stop and the router
// returns to Initialize. Start may be called again.
func (r *Router) Shutdown() {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case StateInitialize:
		return
	case StateBackup:
		r.stop(&r.masterDown)
		r.stop(&r.preempt)
	case StateMaster:
		r.stop(&r.adver)
		r.sendAdvert(PriorityShutdown)
	}
	r.transition(StateInitialize, ReasonShutdown)
}

// SetTrackedDown records the state of a tracked interface and re-evaluates
// the effective priority at once. A Master advertises a changed priority
// immediately; a Backup recomputes Skew_Time and, with a preempt delay,
// starts or cancels it against the current Master's priority.
func (r *Router) SetTrackedDown(name string, down bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.ContainsFunc(r.cfg.Track, func(t Track) bool { return t.Name == name }) {
		return fmt.Errorf("vrrp6 vrid %d on %s: %q is not a tracked interface", r.cfg.VRID, r.cfg.Interface, name)
	}
	if r.trackedDown[name] == down {
		return nil
	}
	r.trackedDown[name] = down
	old := r.effPrio
	r.effPrio = r.effectivePriority()
	if r.effPrio == old {
		return nil
	}
	r.log.Info("vrrp6 effective priority changed", "track", name, "down", down, "old", old, "new", r.effPrio, "state", r.state)
	switch r.state {
	case StateMaster:
		r.sendAdvert(r.effPrio)
		r.armAdver()
	case StateBackup:
		r.evaluatePreempt()
	}
	return nil
}

// evaluatePreempt starts or cancels the preempt delay of a Backup after a
// change of its priority, using the priority of the last Master heard.
func (r *Router) evaluatePreempt() {
	if !r.masterAddr.IsValid() || r.masterPrio == PriorityShutdown {
		return
	}
	if r.preemptMode() && r.effPrio > r.masterPrio {
		if r.cfg.PreemptDelay > 0 && r.preempt.t == nil {
			r.startPreemptDelay()
		}
		return
	}
	r.stop(&r.preempt)
	r.downCause = ReasonMasterDownTimerExpired
}

// HandleAdvert processes one received VRRP packet: src and dst are the IPv6
// source and destination (an invalid dst means ff02::12), hopLimit the
// received hop limit, payload the bytes after the IPv6 header. Invalid
// packets are dropped and counted by reason (RFC 9568 §7.1).
func (r *Router) HandleAdvert(src, dst netip.Addr, hopLimit int, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.AdvertsReceived++
	a, reason, err := checkPacket(src, dst, hopLimit, payload)
	if err == nil {
		reason, err = r.checkLocal(src, a)
	}
	if err != nil {
		r.stats.Drops[reason]++
		r.log.Debug("vrrp6 advert dropped", "src", src, "reason", reason, "err", err)
		return
	}
	r.checkAddrs(src, a)
	if a.Priority == PriorityShutdown {
		r.stats.PriorityZeroReceived++
	} else {
		r.lastAdvert = r.clock.Now()
	}
	switch r.state {
	case StateBackup:
		r.backupRecv(src, a)
	case StateMaster:
		r.masterRecv(src, a)
	}
}

// checkLocal applies the receive checks that depend on this router
// (RFC 9568 §7.1): VRID configured, local router not the owner; and drops
// adverts carrying this router's own link-local address as source.
func (r *Router) checkLocal(src netip.Addr, a *Advert) (DropReason, error) {
	switch {
	case a.VRID != r.cfg.VRID:
		return DropUnknownVRID, fmt.Errorf("vrid %d is not %d", a.VRID, r.cfg.VRID)
	case r.owner():
		return DropLocalOwner, errors.New("local router is the address owner")
	case src.WithZone("") == r.cfg.LinkLocal.WithZone(""):
		// Two routers sharing a link-local address (cloned EUI-64)
		// would otherwise both stay Master.
		return DropOwnAddress, fmt.Errorf("source %v is this router's own address", src)
	case r.state == StateInitialize:
		return DropNotRunning, errors.New("router is in Initialize")
	}
	return 0, nil
}

// checkAddrs compares the advertised addresses with the configured ones
// (RFC 9568 §7.1, MAY verify): a mismatch is counted and logged, not
// dropped.
func (r *Router) checkAddrs(src netip.Addr, a *Advert) {
	match := len(a.Addrs) == len(r.cfg.VirtualAddrs)
	for _, want := range r.cfg.VirtualAddrs {
		if !match {
			break
		}
		match = slices.Contains(a.Addrs, want.WithZone(""))
	}
	if match {
		r.addrMismatch = false
		return
	}
	r.stats.AddressMismatch++
	if !r.addrMismatch {
		r.log.Warn("vrrp6 advert address list differs from configuration", "src", src,
			"advertised", a.Addrs, "configured", r.cfg.VirtualAddrs)
	}
	r.addrMismatch = true
}

// backupRecv is the ADVERTISEMENT event of RFC 9568 §6.4.2.
func (r *Router) backupRecv(src netip.Addr, a *Advert) {
	if a.Priority == PriorityShutdown {
		// The Master is leaving: take over after Skew_Time.
		r.stop(&r.preempt)
		r.downCause = ReasonPriorityZeroReceived
		r.armMasterDown(SkewTime(r.effPrio, r.masterAdvInt))
		return
	}
	r.masterAddr, r.masterPrio = src, a.Priority
	if !r.preemptMode() || a.Priority >= r.effPrio {
		r.stop(&r.preempt)
		r.acceptMaster(a)
		return
	}
	// Preempt_Mode and a lower-priority Master.
	if r.cfg.PreemptDelay > 0 {
		// Keep the current Master while the delay runs (Huawei
		// "preempt-mode timer delay", keepalived preempt_delay).
		if r.preempt.t == nil {
			r.startPreemptDelay()
		}
		r.acceptMaster(a)
		return
	}
	r.stats.LowerPriorityDiscarded++
	r.downCause = ReasonPreempt
}

func (r *Router) acceptMaster(a *Advert) {
	r.masterAdvInt = a.MaxAdvertInterval
	r.downCause = ReasonMasterDownTimerExpired
	r.armMasterDown(r.masterDownInterval())
}

func (r *Router) startPreemptDelay() {
	r.stats.PreemptDelayStarted++
	r.log.Info("vrrp6 preempt delay started", "delay", r.cfg.PreemptDelay,
		"priority", r.effPrio, "master", r.masterAddr, "master_priority", r.masterPrio)
	r.arm(&r.preempt, r.cfg.PreemptDelay, func() {
		if r.state == StateBackup {
			r.becomeMaster(ReasonPreemptDelayExpired)
		}
	})
}

// masterRecv is the ADVERTISEMENT event of RFC 9568 §6.4.3.
func (r *Router) masterRecv(src netip.Addr, a *Advert) {
	if a.MaxAdvertInterval != r.advInt {
		r.stats.IntervalMismatch++
		if !r.ivalMismatch {
			r.log.Warn("vrrp6 advert interval differs from configuration", "src", src,
				"advertised_cs", a.MaxAdvertInterval, "configured_cs", r.advInt)
		}
		r.ivalMismatch = true
	} else {
		r.ivalMismatch = false
	}
	if a.Priority == PriorityShutdown {
		r.sendAdvert(r.effPrio)
		r.armAdver()
		return
	}
	var reason Reason
	switch {
	case a.Priority > r.effPrio:
		reason = ReasonHigherPriorityAdvert
	case a.Priority == r.effPrio && addrGreater(src, r.cfg.LinkLocal):
		reason = ReasonEqualPriorityHigherAddress
	default:
		r.stats.LowerPriorityDiscarded++
		return
	}
	r.stop(&r.adver)
	r.masterAdvInt = a.MaxAdvertInterval
	r.masterAddr, r.masterPrio = src, a.Priority
	r.downCause = ReasonMasterDownTimerExpired
	r.armMasterDown(r.masterDownInterval())
	r.transition(StateBackup, reason)
}

// addrGreater compares IPv6 addresses as unsigned integers in network byte
// order (RFC 9568 §6.4.3).
func addrGreater(a, b netip.Addr) bool {
	x, y := a.As16(), b.As16()
	return slices.Compare(x[:], y[:]) > 0
}

// becomeMaster is the transition to Master of RFC 9568 §6.4.1 and §6.4.2:
// Actions first, then an advert and one unsolicited NA per virtual address,
// then the Adver_Timer.
func (r *Router) becomeMaster(reason Reason) {
	r.stop(&r.masterDown)
	r.stop(&r.preempt)
	r.masterAddr, r.masterPrio = r.cfg.LinkLocal, r.effPrio
	r.ivalMismatch = false
	r.stats.BecameMaster++
	r.transition(StateMaster, reason)
	r.sendAdvert(r.effPrio)
	for _, vip := range r.cfg.VirtualAddrs {
		r.sendNA(vip)
	}
	r.armAdver()
}

func (r *Router) armAdver() {
	r.arm(&r.adver, csToDuration(r.advInt), func() {
		if r.state != StateMaster {
			return
		}
		r.sendAdvert(r.effPrio)
		r.armAdver()
	})
}

func (r *Router) armMasterDown(cs uint16) {
	r.arm(&r.masterDown, csToDuration(cs), func() {
		if r.state == StateBackup {
			r.becomeMaster(r.downCause)
		}
	})
}

func (r *Router) masterDownInterval() uint16 {
	return MasterDownInterval(r.effPrio, r.masterAdvInt)
}

func (r *Router) sendAdvert(prio uint8) {
	a := &Advert{VRID: r.cfg.VRID, Priority: prio, MaxAdvertInterval: r.advInt, Addrs: r.cfg.VirtualAddrs}
	frame, err := BuildAdvertFrame(a, r.cfg.LinkLocal)
	if err == nil {
		err = r.sender.SendAdvert(frame)
	}
	if err != nil {
		r.stats.SendErrors++
		r.log.Warn("vrrp6 send advert", "priority", prio, "err", err)
		return
	}
	r.stats.AdvertsSent++
	if prio == PriorityShutdown {
		r.stats.PriorityZeroSent++
	}
}

func (r *Router) transition(to State, reason Reason) {
	from := r.state
	r.state = to
	now := r.clock.Now()
	if len(r.history) >= r.cfg.History {
		r.history = slices.Delete(r.history, 0, len(r.history)-r.cfg.History+1)
	}
	r.history = append(r.history, TransitionRecord{Time: now, From: from, To: to, Reason: reason})
	r.log.Info("vrrp6 state change", "from", from, "to", to, "reason", reason,
		"priority", r.effPrio, "master", r.masterAddr, "master_priority", r.masterPrio)
	r.actions.OnTransition(Transition{
		Interface:    r.cfg.Interface,
		VRID:         r.cfg.VRID,
		From:         from,
		To:           to,
		Reason:       reason,
		Time:         now,
		VirtualMAC:   VirtualMAC(r.cfg.VRID),
		VirtualAddrs: slices.Clone(r.cfg.VirtualAddrs),
		Accept:       r.owner() || r.cfg.AcceptMode,
	})
}

// arm (re)starts rt; fire runs with r.mu held unless rt was stopped or
// re-armed in the meantime.
func (r *Router) arm(rt *rtimer, d time.Duration, fire func()) {
	r.stop(rt)
	gen := rt.gen
	rt.deadline = r.clock.Now().Add(d)
	rt.t = r.clock.AfterFunc(d, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if rt.t == nil || rt.gen != gen {
			return // stopped or re-armed after this callback was scheduled
		}
		rt.t = nil
		fire()
	})
}

func (r *Router) stop(rt *rtimer) {
	if rt.t != nil {
		rt.t.Stop()
		rt.t = nil
	}
	rt.gen++
}

func (r *Router) remaining(rt *rtimer, now time.Time) time.Duration {
	if rt.t == nil {
		return 0
	}
	return max(rt.deadline.Sub(now), 0)
}
