package pim

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hotcast/hotcast/internal/clock"
)

// Timer values of RFC 7761 §4.11 for the join/prune and assert machines.
const (
	DefaultJoinPrunePeriod   = 60 * time.Second  // t_periodic
	DefaultJoinPruneHoldtime = 210 * time.Second // J/P_HoldTime: 3.5 × t_periodic
	AssertTime               = 180 * time.Second // Assert_Time
	AssertOverrideInterval   = 3 * time.Second   // Assert_Override_Interval
	// DefaultMaxEntries bounds the (*,G) plus (S,G) entries: a flood of
	// joins from a neighbour cannot grow the state further.
	DefaultMaxEntries = 16384
	// DefaultMTU is the link MTU the Join/Prune messages are packed for.
	DefaultMTU = 1500
	minMTU     = 1280
)

// RouterConfig configures the multicast routing state of one router.
type RouterConfig struct {
	// RPs maps groups to RPs and holds the SSM range; nil: no RP, and the
	// default SSM range.
	RPs *RPSet
	// RPF answers RPF_interface and MRIB.next_hop; required.
	RPF RPF

	JoinPrunePeriod   time.Duration // t_periodic, default 60 s
	JoinPruneHoldtime time.Duration // Holdtime of the J/Ps sent, default 210 s; whole seconds
	MTU               int           // default 1500; at least 1280
	MaxEntries        int           // default DefaultMaxEntries; negative: no limit

	Clock  clock.Clock  // default clock.System
	Rand   Rand         // default math/rand/v2
	Logger *slog.Logger // default: discard

	// Addresses are the router's own routable unicast addresses (a
	// loopback's, the interfaces' global ones): RP(G) being one makes
	// this router the RP of G (I_am_RP(G): no upstream towards the RP,
	// Registers received); Registers are sent from the first one, and
	// Register-Stops are accepted when sent to any of them.
	Addresses []netip.Addr
	// Unicast sends Null-Registers and Register-Stops (SendRegister's
	// Registers too); nil: they are not sent.
	Unicast UnicastSender
	// AcceptRegister, when not nil, is the list of prefixes the RP
	// accepts Registers from (the DRs' addresses, the outer source);
	// others are dropped and counted (RegDropUnauthorized).
	AcceptRegister []netip.Prefix
	// AcceptRegisterSources, when not nil, limits the inner sources
	// (S) the RP accepts Registers for (RegDropSourceDenied).
	AcceptRegisterSources []netip.Prefix
	// OnRegisterData receives the packets the RP decapsulated from the
	// Registers handed to HandleMessage, to forward out of their OIfs;
	// called without the Router's lock held.
	OnRegisterData func(RegisterData)
	// SPTSwitch is SwitchToSptDesired on a last-hop router: default
	// SPTImmediate.
	SPTSwitch SPTSwitchPolicy

	KeepalivePeriod         time.Duration // Keepalive_Period, default 210 s
	RegisterSuppressionTime time.Duration // Register_Suppression_Time, default 60 s
	RegisterProbeTime       time.Duration // Register_Probe_Time, default 5 s

	// OnRoutes receives the routes that changed, in the order of the
	// changes, never with the Router's lock held (it may call back into
	// the Router). A route's expiry times moving alone is no change.
	OnRoutes func([]RouteUpdate)
}

// IfaceOptions are the per-interface options of the Router.
type IfaceOptions struct {
	// IgnoreDRState: act as if DR on this interface, creating join state
	// for its local listeners whatever the DR election says (hotcast's
	// `pim ipv6 ignore dr-state`, for the standby of a VRRP6 pair).
	IgnoreDRState bool
	// IgnoreAssertState: never send an Assert on this interface, and
	// never lose forwarding onto it because of one received (hotcast's
	// `pim ipv6 ignore assert-state`).
	IgnoreAssertState bool
}

// RouteFlags describe a Route.
type RouteFlags uint8

// Route flags.
const (
	FlagWC  RouteFlags = 1 << iota // (*,G): Source is invalid
	FlagRPT                        // the route follows the RP tree: RPFIface is towards the RP
	FlagSPT                        // (S,G) on the shortest-path tree: RPFIface is towards S
	// FlagRegister: (S,G) of a directly connected source whose DR this
	// router is, in Register state Join: the data path encapsulates
	// every packet to the RP (ShouldRegister, BuildRegister) besides
	// forwarding it out of OIfs.
	FlagRegister
	FlagJoinPending   // Register state Join-Pending: a Null-Register probes the RP
	FlagRegisterPrune // Register state Prune: the RP sent a Register-Stop
	FlagLocalRP       // this router is RP(G)
	// FlagSPTBit: SPTbit(S,G) is set (§4.5.8, Update_SPTbit): native data
	// arrived on RPF_interface(S) while joined; the RP then stops
	// forwarding this source's Registers, a last hop prunes S off the
	// RP tree.
	FlagSPTBit
)

func (f RouteFlags) String() string {
	s := ""
	for _, x := range []struct {
		f RouteFlags
		n string
	}{{FlagWC, "WC"}, {FlagRPT, "RPT"}, {FlagSPT, "SPT"}, {FlagRegister, "Register"},
		{FlagJoinPending, "JoinPending"}, {FlagRegisterPrune, "RegisterPrune"}, {FlagLocalRP, "LocalRP"},
		{FlagSPTBit, "SPTbit"}} {
		if f&x.f != 0 {
			if s != "" {
				s += "|"
			}
			s += x.n
		}
	}
	return s
}

// OIf is one outgoing interface of a Route.
type OIf struct {
	Ifindex int
	// Joined: downstream join state (Join or Prune-Pending, (*,G) or
	// (S,G)) put the interface in the list.
	Joined bool
	// Expires is when that join state runs out (its Expiry Timer); zero
	// when it never does (a Join with Holdtime 0xffff) or when only local
	// listeners (MLD) put the interface there (Joined false).
	Expires time.Time
	Local   bool // local listeners want the traffic (pim_include)
}

// Route is the forwarding state of one (*,G) or (S,G) entry: traffic of
// Group (from Source, or any source for (*,G)) arriving on RPFIface goes
// out of OIfs (RFC 7761 §4.1.6: immediate_olist(*,G), inherited_olist(S,G)
// or, for an (S,G) entry still on the RP tree, inherited_olist(S,G,rpt)).
// An (S,G) route with no OIfs overrides the (*,G) route: the source is
// pruned.
type Route struct {
	Source, Group netip.Addr
	RP            netip.Addr // RP(G); invalid for SSM
	RPFIface      int        // 0: no route to the source or RP, or this router is the RP
	// UpstreamNeighbor is RPF'(*,G) or RPF'(S,G): the neighbour the
	// joins go to; invalid when there is none (directly connected
	// source, this router is the RP, or no PIM neighbour that way).
	UpstreamNeighbor netip.Addr
	// Joined: the upstream state machine is Joined (JoinDesired).
	Joined bool
	OIfs   []OIf // by Ifindex
	Flags  RouteFlags
}

// RouteUpdate is one changed route; Deleted means the entry is gone.
type RouteUpdate struct {
	Route
	Deleted bool
}

// JPDropReason is why the Router ignored a Join/Prune, or one group set or
// entry of one.
type JPDropReason uint8

// Join/Prune drop reasons.
const (
	JPDropNone         JPDropReason = iota
	JPDropUnknownIface              // not an interface of the Router
	JPDropNotNeighbor               // the sender sent no Hello
	JPDropNotForUs                  // Upstream Neighbor is neither us nor a neighbour we join through
	JPDropBadGroup                  // group set: not a routable multicast group, or a range
	JPDropBadSource                 // entry: not a unicast /128 source, or W without R
	JPDropNoRP                      // (*,G) entry for a group with no RP, or an SSM group
	JPDropRPMismatch                // (*,G) entry naming another RP than RP(G)
	JPDropStateLimit                // new state beyond MaxEntries
	JPDropNotRunning                // interface stopped
	numJPDropReasons
)

func (r JPDropReason) String() string {
	switch r {
	case JPDropNone:
		return "none"
	case JPDropUnknownIface:
		return "unknown-interface"
	case JPDropNotNeighbor:
		return "not-neighbor"
	case JPDropNotForUs:
		return "not-for-us"
	case JPDropBadGroup:
		return "bad-group"
	case JPDropBadSource:
		return "bad-source"
	case JPDropNoRP:
		return "no-rp"
	case JPDropRPMismatch:
		return "rp-mismatch"
	case JPDropStateLimit:
		return "state-limit"
	case JPDropNotRunning:
		return "not-running"
	}
	return fmt.Sprintf("jp-drop-%d", uint8(r))
}

// RouterStats are the Router's counters.
type RouterStats struct {
	JPRx       uint64 // Join/Prunes addressed to this router, processed
	JPSeen     uint64 // Join/Prunes to another router, used for suppression and override
	JPTx       uint64 // Join/Prunes sent
	JPDrops    [numJPDropReasons]uint64
	AssertRx   uint64
	AssertTx   uint64
	AssertDrop uint64 // ignored: interface with IgnoreAssertState, unknown sender, bad fields
	TxErrors   uint64

	RegisterTx     uint64 // Registers built (BuildRegister, SendRegister)
	NullRegisterTx uint64
	RegisterRx     uint64 // Registers accepted for processing
	RegisterDecap  uint64 // decapsulated packets handed out for forwarding
	RegisterStopTx uint64
	RegisterStopRx uint64                    // Register-Stops accepted from RP(G)
	RegisterDrops  [numRegDropReasons]uint64 // Registers and Register-Stops ignored, by reason
}

// Router holds the join/prune, assert and local-membership state of
// RFC 7761 §4.5 and §4.6 across the PIM interfaces of one router, and
// derives the routes from it.
//
// Inputs: Received messages (HandleMessage: Join/Prune and Assert from
// Interface's OnMessage), neighbour events (HandleEvent: Interface's
// OnEvent), local membership (SetLocalMembership, from MLD), route
// changes (RPFChanged), and the hooks for the data path (DataArrived,
// SetSourceActive, SetSPTBit, DataOnOIF; ShouldRegister, BuildRegister
// and SendRegister for a registering DR; HandleRegister and
// HandleRegisterStop, also reached through HandleMessage). Outputs:
// Join/Prune and Assert messages through Interface.Send, Null-Registers
// and Register-Stops through RouterConfig.Unicast, decapsulated packets
// (OnRegisterData), and RouteUpdates (OnRoutes, and the Routes snapshot).
//
// Concurrency: as Interface. One mutex serialises every state change,
// timers included; messages and OnRoutes are delivered without it held,
// in order. The Router calls Interface methods with its mutex held, so an
// Interface's callbacks (delivered without the Interface's mutex) may call
// the Router, but nothing may call the Router while holding an Interface's
// mutex.
type Router struct {
	cfg RouterConfig
	log *slog.Logger

	mu       sync.Mutex
	ifaces   map[int]*rIface
	byName   map[string]int
	groups   map[netip.Addr]*groupState
	entries  int // (*,G) and (S,G) entries
	rpf      map[netip.Addr]rpfResult
	dirty    map[netip.Addr]struct{}
	starved  map[netip.Addr]struct{}             // groups whose listeners' entries MaxEntries refused
	exported map[netip.Addr]map[netip.Addr]Route // by group, source
	batches  map[nbrKey]*jpBatch
	stats    RouterStats

	outbox outbox[routerOut]
}

// nbrKey is an upstream neighbour on an interface: a J/P batch's target.
type nbrKey struct {
	ifx int
	nbr netip.Addr
}

type rpfResult struct {
	route RPFRoute
	ok    bool
}

type routerOut struct {
	ifc    *Interface
	msg    Message
	routes []RouteUpdate
	uni    *UnicastPIM
}

// rIface is one PIM interface of the Router.
type rIface struct {
	index int
	ifc   *Interface
	opt   IfaceOptions
	local map[netip.Addr]localMembership // by group
}

// localMembership is what MLD reports for one group on one interface.
type localMembership struct {
	exclude bool
	sources []netip.Addr // sorted: included, or excluded when exclude
}

// NewRouter returns an empty Router. Add interfaces with AddInterface.
func NewRouter(cfg RouterConfig) (*Router, error) {
	if cfg.RPF == nil {
		return nil, fmt.Errorf("pim router: no rpf")
	}
	if cfg.JoinPrunePeriod <= 0 {
		cfg.JoinPrunePeriod = DefaultJoinPrunePeriod
	}
	if cfg.JoinPruneHoldtime <= 0 {
		cfg.JoinPruneHoldtime = cfg.JoinPrunePeriod * holdtimeNum / holdtimeDen
	}
	cfg.JoinPruneHoldtime = cfg.JoinPruneHoldtime.Truncate(time.Second)
	if cfg.JoinPruneHoldtime < cfg.JoinPrunePeriod || cfg.JoinPruneHoldtime >= HoldtimeForever*time.Second {
		return nil, fmt.Errorf("pim router: join/prune holdtime %v: must be from the period %v to 65534s", cfg.JoinPruneHoldtime, cfg.JoinPrunePeriod)
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < minMTU || cfg.MTU > maxMessageLen {
		return nil, fmt.Errorf("pim router: mtu %d: must be from 1280 to 65535", cfg.MTU)
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.KeepalivePeriod <= 0 {
		cfg.KeepalivePeriod = KeepalivePeriod
	}
	if cfg.RegisterSuppressionTime <= 0 {
		cfg.RegisterSuppressionTime = DefaultRegisterSuppressionTime
	}
	if cfg.RegisterProbeTime <= 0 {
		cfg.RegisterProbeTime = DefaultRegisterProbeTime
	}
	if 2*cfg.RegisterProbeTime >= cfg.RegisterSuppressionTime {
		return nil, fmt.Errorf("pim router: register probe time %v: must be less than half the suppression time %v", cfg.RegisterProbeTime, cfg.RegisterSuppressionTime)
	}
	addrs := make([]netip.Addr, 0, len(cfg.Addresses))
	for _, a := range cfg.Addresses {
		a = a.WithZone("").Unmap()
		if !validSource(a) {
			return nil, fmt.Errorf("pim router: address %v: must be a routable IPv6 unicast address", a)
		}
		addrs = append(addrs, a)
	}
	cfg.Addresses = addrs
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Rand == nil {
		cfg.Rand = systemRand{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Router{
		cfg:      cfg,
		log:      cfg.Logger,
		ifaces:   make(map[int]*rIface),
		byName:   make(map[string]int),
		groups:   make(map[netip.Addr]*groupState),
		rpf:      make(map[netip.Addr]rpfResult),
		dirty:    make(map[netip.Addr]struct{}),
		starved:  make(map[netip.Addr]struct{}),
		exported: make(map[netip.Addr]map[netip.Addr]Route),
		batches:  make(map[nbrKey]*jpBatch),
	}, nil
}

// AddInterface makes ifc, the PIM interface of ifindex, one of the
// Router's. Its Config.OnEvent and OnMessage should pass what they get to
// HandleEvent and HandleMessage.
func (r *Router) AddInterface(ifindex int, ifc *Interface, opt IfaceOptions) error {
	if ifindex <= 0 || ifc == nil {
		return fmt.Errorf("pim router: add interface %d: invalid", ifindex)
	}
	r.mu.Lock()
	if _, ok := r.ifaces[ifindex]; ok {
		r.mu.Unlock()
		return fmt.Errorf("pim router: add interface %d (%s): already added", ifindex, ifc.Name())
	}
	if _, ok := r.byName[ifc.Name()]; ok {
		r.mu.Unlock()
		return fmt.Errorf("pim router: add interface %d: name %q already added", ifindex, ifc.Name())
	}
	r.ifaces[ifindex] = &rIface{index: ifindex, ifc: ifc, opt: opt, local: make(map[netip.Addr]localMembership)}
	r.byName[ifc.Name()] = ifindex
	r.markAll()
	r.settle()
	r.unlock()
	return nil
}

// SetIfaceOptions changes an interface's options.
func (r *Router) SetIfaceOptions(ifindex int, opt IfaceOptions) {
	r.mu.Lock()
	if ri, ok := r.ifaces[ifindex]; ok && ri.opt != opt {
		ri.opt = opt
		if opt.IgnoreAssertState {
			for _, gs := range r.groups {
				gs.dropAsserts(r, ifindex)
			}
		}
		r.markAll()
		r.settle()
	}
	r.unlock()
}

// RemoveInterface forgets an interface and all state on it.
func (r *Router) RemoveInterface(ifindex int) {
	r.mu.Lock()
	if ri, ok := r.ifaces[ifindex]; ok {
		for _, gs := range r.groups {
			gs.dropIface(r, ifindex)
		}
		delete(r.byName, ri.ifc.Name())
		delete(r.ifaces, ifindex)
		r.markAll()
		r.settle()
	}
	r.unlock()
}

// SetRPSet replaces the RP mapping and SSM range.
func (r *Router) SetRPSet(s *RPSet) {
	r.mu.Lock()
	r.cfg.RPs = s
	r.markAll()
	r.settle()
	r.unlock()
}

// RPFChanged makes the Router look every source and RP up again: call it
// when the unicast routes change (NetlinkRPF.Watch). Entries whose
// RPF'(*,G) or RPF'(S,G) changed send a Join to the new neighbour and a
// Prune to the old one (§4.5.6, §4.5.7).
func (r *Router) RPFChanged() {
	r.mu.Lock()
	clear(r.rpf)
	r.markAll()
	r.settle()
	r.unlock()
}

// HandleEvent takes an Interface's neighbour and DR events: a neighbour
// going away or a DR change re-derives every entry (RPF', pim_include);
// a restarted upstream neighbour (new Generation ID) gets the joins of
// the entries joined through it within t_override (§4.5.6, §4.5.7); an
// assert winner that went away or restarted is forgotten (§4.6).
func (r *Router) HandleEvent(ev Event) {
	r.mu.Lock()
	if ifx, ok := r.byName[ev.Interface]; ok {
		switch ev.Kind {
		case NeighborRestarted:
			r.upstreamGenIDChanged(ifx, ev.Neighbor)
			for _, gs := range r.groups {
				gs.forgetWinner(r, ifx, ev.Neighbor)
			}
		case NeighborDown:
			for _, gs := range r.groups {
				gs.forgetWinner(r, ifx, ev.Neighbor)
			}
		}
		r.markAll()
		r.settle()
	}
	r.unlock()
}

// SetLocalMembership sets what local listeners on ifindex want of group
// (from MLD): exclude with the excluded sources (EXCLUDE {} is any
// source: (*,G)), or include with the wanted sources (none: no
// listener). These are the local_receiver_include/exclude inputs of the
// pim_include and pim_exclude macros (§4.1.6); they count on an
// interface where this router is DR, or has IgnoreDRState, or won the
// assert. In an SSM group only included sources count.
func (r *Router) SetLocalMembership(ifindex int, group netip.Addr, exclude bool, sources []netip.Addr) error {
	group = group.WithZone("")
	if !routable(group) {
		return fmt.Errorf("pim local membership %v: not a routable multicast group", group)
	}
	srcs := make([]netip.Addr, 0, len(sources))
	for _, s := range sources {
		s = s.WithZone("").Unmap()
		if !validSource(s) {
			return fmt.Errorf("pim local membership %v: source %v is not unicast", group, s)
		}
		srcs = append(srcs, s)
	}
	slices.SortFunc(srcs, netip.Addr.Compare)
	srcs = slices.Compact(srcs)
	r.mu.Lock()
	defer r.unlock()
	ri, ok := r.ifaces[ifindex]
	if !ok {
		return fmt.Errorf("pim local membership %v: interface %d not added", group, ifindex)
	}
	m := localMembership{exclude: exclude, sources: srcs}
	if !exclude && len(srcs) == 0 {
		delete(ri.local, group)
	} else {
		ri.local[group] = m
		gs := r.group(group)
		if exclude && !gs.ssm(r) {
			r.ensureWC(gs)
		}
		if !exclude || !gs.ssm(r) {
			for _, s := range srcs {
				r.ensureSG(gs, s)
			}
		}
	}
	r.dirty[group] = struct{}{}
	r.settle()
	return nil
}

// SetSourceActive is the (S,G) Keepalive Timer input (§4.1.2): data from
// S to G is arriving (true) or stopped (false). With it, JoinDesired(S,G)
// holds while inherited_olist(S,G) is not empty: the last-hop switch to
// the SPT and the register machinery use it. True holds the KAT running
// until false, whatever its timer (DataArrived) says.
func (r *Router) SetSourceActive(s, g netip.Addr, active bool) {
	r.setSGFlag(s, g, func(e *sgState) { e.active = active }, active)
}

// SetSPTBit is the SPTbit(S,G) input (§4.5.8, set by Update_SPTbit when
// data arrives on RPF_interface(S)): with it and RPF'(*,G) != RPF'(S,G),
// the router prunes S off the RP tree (PruneDesired(S,G,rpt), §4.5.9),
// and the (S,G) route takes the SPT's interface.
func (r *Router) SetSPTBit(s, g netip.Addr, spt bool) {
	r.setSGFlag(s, g, func(e *sgState) { e.spt = spt }, spt)
}

func (r *Router) setSGFlag(s, g netip.Addr, set func(*sgState), create bool) {
	s, g = s.WithZone("").Unmap(), g.WithZone("")
	if !validSource(s) || !routable(g) {
		return
	}
	r.mu.Lock()
	gs := r.groups[g]
	var e *sgState
	if gs != nil {
		e = gs.src[s]
	}
	if e == nil && create {
		gs = r.group(g)
		e = r.ensureSG(gs, s)
	}
	if e != nil {
		set(e)
		r.dirty[g] = struct{}{}
		r.settle()
	}
	r.unlock()
}

// Routes returns every entry's route, (*,G) before (S,G), by group and
// source.
func (r *Router) Routes() []Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Route, 0, len(r.exported))
	for _, gs := range r.groups {
		if gs.wc != nil {
			out = append(out, r.route(gs, nil))
		}
		for _, e := range gs.src {
			out = append(out, r.route(gs, e))
		}
	}
	sortRoutes(out)
	return out
}

func sortRoutes(rs []Route) {
	slices.SortFunc(rs, func(a, b Route) int {
		if c := a.Group.Compare(b.Group); c != 0 {
			return c
		}
		return a.Source.Compare(b.Source)
	})
}

// Stats returns the counters.
func (r *Router) Stats() RouterStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// unlock releases the mutex after delivering the outbox.
func (r *Router) unlock() { r.outbox.unlock(&r.mu, r.deliver, &r.stats.TxErrors) }

func (r *Router) deliver(items []routerOut) (errs uint64) {
	for _, it := range items {
		switch {
		case it.msg != nil:
			if err := it.ifc.Send(it.msg); err != nil {
				errs++
				r.log.Debug("pim router send failed", slog.Any("error", err))
			}
		case it.uni != nil:
			if r.cfg.Unicast != nil {
				if err := r.cfg.Unicast.SendUnicast(it.uni.Src, it.uni.Dst, it.uni.Payload); err != nil {
					errs++
					r.log.Debug("pim router unicast send failed", slog.Any("error", err))
				}
			}
		case it.routes != nil:
			if r.cfg.OnRoutes != nil {
				r.cfg.OnRoutes(it.routes)
			}
		}
	}
	return errs
}

// arm (re)starts s to call f with the mutex held after d; the state is
// settled after f.
func (r *Router) arm(s *slot, d time.Duration, f func()) {
	s.stop()
	gen := s.gen
	s.when = r.cfg.Clock.Now().Add(d)
	s.t = r.cfg.Clock.AfterFunc(d, func() {
		r.mu.Lock()
		if s.gen != gen {
			r.mu.Unlock()
			return
		}
		s.t = nil
		s.when = time.Time{}
		f()
		r.settle()
		r.unlock()
	})
}

// remaining is how long until s fires; 0 when stopped.
func (r *Router) remaining(s *slot) time.Duration {
	if !s.running() {
		return 0
	}
	return max(s.when.Sub(r.cfg.Clock.Now()), 0)
}

func (r *Router) randDelay(max time.Duration) time.Duration {
	return time.Duration(r.cfg.Rand.Int64N(int64(max) + 1))
}

func (r *Router) markAll() {
	for g := range r.groups {
		r.dirty[g] = struct{}{}
	}
}

// lookup is the cached RPF route to a.
func (r *Router) lookup(a netip.Addr) (RPFRoute, bool) {
	if res, ok := r.rpf[a]; ok {
		return res.route, res.ok
	}
	rt, err := r.cfg.RPF.Lookup(a)
	res := rpfResult{route: rt, ok: err == nil}
	if err != nil {
		r.log.Debug("pim rpf lookup failed", slog.String("addr", a.String()), slog.Any("error", err))
	}
	r.rpf[a] = res
	return res.route, res.ok
}

// rpfIface is RPF_interface(a): 0 when there is no route.
func (r *Router) rpfIface(a netip.Addr) int {
	if !a.IsValid() || r.isOwn(a) {
		return 0
	}
	rt, ok := r.lookup(a)
	if !ok {
		return 0
	}
	return rt.Ifindex
}

// nbr is NBR(RPF_interface(a), MRIB.next_hop(a)) (§4.1.6): the PIM
// neighbour, by primary address, that the next hop towards a is, or a
// itself when it is on the link; invalid when neither is a neighbour.
func (r *Router) nbr(a netip.Addr) (int, netip.Addr) {
	if !a.IsValid() || r.isOwn(a) {
		return 0, netip.Addr{}
	}
	rt, ok := r.lookup(a)
	if !ok {
		return 0, netip.Addr{}
	}
	ri, ok := r.ifaces[rt.Ifindex]
	if !ok {
		return rt.Ifindex, netip.Addr{}
	}
	hop := rt.Nexthop
	if !hop.IsValid() {
		hop = a
	}
	if n, ok := ri.ifc.Neighbor(hop); ok {
		return rt.Ifindex, n.Address
	}
	return rt.Ifindex, netip.Addr{}
}

func validSource(s netip.Addr) bool {
	return s.Is6() && !s.Is4In6() && !s.IsMulticast() && !s.IsUnspecified() && !s.IsLoopback() && !s.IsLinkLocalUnicast()
}

// queue adds a message to send on ifx.
func (r *Router) queue(ifx int, m Message) {
	ri, ok := r.ifaces[ifx]
	if !ok {
		return
	}
	switch m.Type() {
	case TypeJoinPrune:
		r.stats.JPTx++
	case TypeAssert:
		r.stats.AssertTx++
	}
	r.outbox.add(routerOut{ifc: ri.ifc, msg: m})
}
