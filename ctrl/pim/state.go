package pim

import (
	"net/netip"
	"slices"
	"time"
)

// groupState is everything the Router knows of one group: its (*,G)
// entry and its (S,G) entries, each with the (S,G,rpt) state of S.
type groupState struct {
	g   netip.Addr
	wc  *wcState
	src map[netip.Addr]*sgState
}

// wcState is a (*,G) entry.
type wcState struct {
	down   map[int]*downstream // DownstreamJPState(*,G,I)
	up     upstream            // Upstream (*,G) state
	assert map[int]*assertFSM  // (*,G) assert state per interface
}

// sgState is an (S,G) entry and the (S,G,rpt) state of S.
type sgState struct {
	s       netip.Addr
	down    map[int]*downstream // DownstreamJPState(S,G,I)
	rptDown map[int]*downstream // DownstreamJPState(S,G,rpt,I)
	up      upstream            // Upstream (S,G) state
	rptUp   rptUpState          // Upstream (S,G,rpt) state
	assert  map[int]*assertFSM  // (S,G) assert state per interface
	active  bool                // SetSourceActive: the KAT held running
	kat     slot                // Keepalive Timer (§4.1.2)
	spt     bool                // SPTbit(S,G)
	reg     RegisterState       // DR: Register state (§4.4.1)
	regRP   netip.Addr          // the RP registered to
	rst     slot                // Register-Stop Timer
	pmbr    netip.Addr          // RP: PMBR(S,G), the first Border-bit registrar
}

// rptUpState is the upstream (S,G,rpt) state (§4.5.9).
type rptUpState uint8

const (
	rptNotJoined rptUpState = iota // RPTNotJoined(G)
	rptNotPruned                   // NotPruned(S,G,rpt)
	rptPruned                      // Pruned(S,G,rpt)
)

func (r *Router) group(g netip.Addr) *groupState {
	gs, ok := r.groups[g]
	if !ok {
		gs = &groupState{g: g, src: make(map[netip.Addr]*sgState)}
		r.groups[g] = gs
	}
	return gs
}

func (gs *groupState) ssm(r *Router) bool { return r.cfg.RPs.IsSSM(gs.g) }

func (gs *groupState) rp(r *Router) netip.Addr {
	rp, _ := r.cfg.RPs.RP(gs.g)
	return rp
}

// full reports whether MaxEntries forbids a new entry.
func (r *Router) full() bool {
	return r.cfg.MaxEntries > 0 && r.entries >= r.cfg.MaxEntries
}

// ensureWC returns the (*,G) entry, creating it (beyond MaxEntries: nil).
func (r *Router) ensureWC(gs *groupState) *wcState {
	if gs.wc == nil {
		if r.full() {
			return nil
		}
		gs.wc = &wcState{down: make(map[int]*downstream), assert: make(map[int]*assertFSM)}
		r.entries++
	}
	return gs.wc
}

// ensureSG returns the (S,G) entry, creating it (beyond MaxEntries: nil).
func (r *Router) ensureSG(gs *groupState, s netip.Addr) *sgState {
	e, ok := gs.src[s]
	if !ok {
		if r.full() {
			return nil
		}
		e = &sgState{s: s, down: make(map[int]*downstream), rptDown: make(map[int]*downstream), assert: make(map[int]*assertFSM)}
		gs.src[s] = e
		r.entries++
	}
	return e
}

func ds(m map[int]*downstream, ifx int) *downstream {
	d, ok := m[ifx]
	if !ok {
		d = &downstream{}
		m[ifx] = d
	}
	return d
}

// dropIface forgets everything of gs on an interface being removed.
func (gs *groupState) dropIface(r *Router, ifx int) {
	if wc := gs.wc; wc != nil {
		if d, ok := wc.down[ifx]; ok {
			d.reset()
			delete(wc.down, ifx)
		}
	}
	for _, e := range gs.src {
		for _, m := range []map[int]*downstream{e.down, e.rptDown} {
			if d, ok := m[ifx]; ok {
				d.reset()
				delete(m, ifx)
			}
		}
	}
	gs.dropAsserts(r, ifx)
	r.dirty[gs.g] = struct{}{}
}

// gc removes the entries that hold no state (RFC 7761 §4.5: NoInfo
// everywhere, NotJoined, no assert state, no local listener, no data).
func (r *Router) gc(gs *groupState) {
	before := r.entries
	defer func() {
		if r.entries < before && len(r.starved) > 0 {
			// Room: the groups whose listeners were refused try again.
			for g := range r.starved {
				r.dirty[g] = struct{}{}
			}
			clear(r.starved)
		}
	}()
	local := func(s netip.Addr) bool {
		for _, ri := range r.ifaces {
			if m, ok := ri.local[gs.g]; ok {
				if !s.IsValid() && m.exclude || s.IsValid() && m.has(s) {
					return true
				}
			}
		}
		return false
	}
	prune := func(m map[int]*downstream) {
		for ifx, d := range m {
			if d.state == dsNoInfo {
				d.reset()
				delete(m, ifx)
			}
		}
	}
	pruneAsserts := func(m map[int]*assertFSM) {
		for ifx, a := range m {
			if a.state == asNoInfo {
				a.at.stop()
				delete(m, ifx)
			}
		}
	}
	for s, e := range gs.src {
		prune(e.down)
		prune(e.rptDown)
		pruneAsserts(e.assert)
		if len(e.down) == 0 && len(e.rptDown) == 0 && len(e.assert) == 0 && !e.up.joined && e.rptUp != rptPruned && !e.katRunning() && !e.spt && e.reg == RegNoInfo && !local(s) {
			e.up.jt.stop()
			e.kat.stop()
			e.rst.stop()
			delete(gs.src, s)
			r.entries--
		}
	}
	if wc := gs.wc; wc != nil {
		prune(wc.down)
		pruneAsserts(wc.assert)
		if len(wc.down) == 0 && len(wc.assert) == 0 && !wc.up.joined && !local(netip.Addr{}) {
			wc.up.jt.stop()
			gs.wc = nil
			r.entries--
		}
	}
	if gs.wc == nil && len(gs.src) == 0 && !r.hasLocal(gs.g) {
		delete(r.groups, gs.g)
	}
}

// hasLocal reports whether any interface has listeners for g.
func (r *Router) hasLocal(g netip.Addr) bool {
	for _, ri := range r.ifaces {
		if _, ok := ri.local[g]; ok {
			return true
		}
	}
	return false
}

// ifset is a set of interfaces.
type ifset map[int]bool

func (s ifset) sorted() []int {
	out := make([]int, 0, len(s))
	for i, ok := range s {
		if ok {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

func (s ifset) empty() bool {
	for _, ok := range s {
		if ok {
			return false
		}
	}
	return true
}

// The §4.1.6 macros, for one group.

// iAmDR is I_am_DR(I), true with IgnoreDRState.
func (ri *rIface) iAmDR() bool { return ri.opt.IgnoreDRState || ri.ifc.IsDR() }

func (r *Router) lostAssertWC(gs *groupState, ri *rIface) bool {
	if ri.opt.IgnoreAssertState || gs.wc == nil {
		return false
	}
	a, ok := gs.wc.assert[ri.index]
	return ok && a.state == asLoser && ri.index != r.rpfIface(gs.rp(r))
}

func (r *Router) lostAssertSG(e *sgState, ri *rIface) bool {
	if ri.opt.IgnoreAssertState || e == nil {
		return false
	}
	a, ok := e.assert[ri.index]
	return ok && a.state == asLoser && ri.index != r.rpfIface(e.s)
}

func assertWinner(m map[int]*assertFSM, ifx int) bool {
	a, ok := m[ifx]
	return ok && a.state == asWinner
}

// localWC is local_receiver_include(*,G,I).
func (gs *groupState) localWC(r *Router, ri *rIface) bool {
	m, ok := ri.local[gs.g]
	return ok && m.exclude && !gs.ssm(r)
}

// has reports whether s is one of the membership's sources (sorted:
// SetLocalMembership sorts them), by binary search: a group with many
// sources is asked for each of them.
func (m localMembership) has(s netip.Addr) bool {
	_, ok := slices.BinarySearchFunc(m.sources, s, netip.Addr.Compare)
	return ok
}

// localSG is local_receiver_include(S,G,I).
func (gs *groupState) localSG(ri *rIface, s netip.Addr) bool {
	m, ok := ri.local[gs.g]
	return ok && !m.exclude && m.has(s)
}

// localExcl is local_receiver_exclude(S,G,I).
func (gs *groupState) localExcl(r *Router, ri *rIface, s netip.Addr) bool {
	m, ok := ri.local[gs.g]
	return ok && m.exclude && !gs.ssm(r) && m.has(s)
}

// olists are the interface sets of one group's entries.
type olists struct {
	immWC  ifset // immediate_olist(*,G)
	inclWC ifset // pim_include(*,G), for OIf.Local
}

func inState(m map[int]*downstream, ifx int, states ...dsState) bool {
	d, ok := m[ifx]
	return ok && slices.Contains(states, d.state)
}

// wcOlist computes immediate_olist(*,G) = joins(*,G) + pim_include(*,G)
// - lost_assert(*,G), and pim_include(*,G).
func (r *Router) wcOlist(gs *groupState) olists {
	o := olists{immWC: ifset{}, inclWC: ifset{}}
	if gs.ssm(r) {
		return o
	}
	for ifx, ri := range r.ifaces {
		lost := r.lostAssertWC(gs, ri)
		var joined, winner bool
		if gs.wc != nil {
			joined = inState(gs.wc.down, ifx, dsJoin, dsPrunePending)
			winner = assertWinner(gs.wc.assert, ifx)
		}
		incl := (ri.iAmDR() && !lost || winner) && gs.localWC(r, ri)
		o.inclWC[ifx] = incl
		o.immWC[ifx] = (joined || incl) && !lost
	}
	return o
}

// sgOlists computes, for S: inherited_olist(S,G,rpt), immediate_olist(S,G),
// inherited_olist(S,G) and pim_include(S,G)+pim_include(*,G)-pim_exclude(S,G)
// (the local part). lost_assert(S,G,rpt) is taken as lost_assert(S,G).
func (r *Router) sgOlists(gs *groupState, e *sgState, o olists) (rpt, imm, inh, local ifset) {
	rpt, imm, inh, local = ifset{}, ifset{}, ifset{}, ifset{}
	ssm := gs.ssm(r)
	for ifx, ri := range r.ifaces {
		lostWC := r.lostAssertWC(gs, ri)
		lostSG := r.lostAssertSG(e, ri)
		var wcJoined bool
		var winWC bool
		if gs.wc != nil && !ssm {
			wcJoined = inState(gs.wc.down, ifx, dsJoin, dsPrunePending)
			winWC = assertWinner(gs.wc.assert, ifx)
		}
		pruned := inState(e.rptDown, ifx, dsPruned, dsPruneTmp)
		excl := (ri.iAmDR() && !lostWC || winWC) && gs.localExcl(r, ri, e.s)
		inclSG := (ri.iAmDR() && !lostSG || assertWinner(e.assert, ifx)) && gs.localSG(ri, e.s)
		rpt[ifx] = (wcJoined && !pruned || o.inclWC[ifx] && !excl) && !lostWC && !lostSG
		imm[ifx] = (inState(e.down, ifx, dsJoin, dsPrunePending) || inclSG) && !lostSG
		inh[ifx] = rpt[ifx] || imm[ifx]
		local[ifx] = inclSG || o.inclWC[ifx] && !excl
	}
	return rpt, imm, inh, local
}

// route builds the Route of the (*,G) entry (e nil) or of (S,G).
func (r *Router) route(gs *groupState, e *sgState) Route {
	o := r.wcOlist(gs)
	rp := gs.rp(r)
	rt := Route{Group: gs.g, RP: rp}
	var set, local ifset
	// expiry is when the downstream join state on ifx runs out (zero:
	// never, Holdtime 0xffff, or no join state) and whether there is any.
	expiry := func(ifx int) (time.Time, bool) {
		var t time.Time
		joined := false
		for _, m := range []map[int]*downstream{wcDown(gs), sgDown(e)} {
			if d, ok := m[ifx]; ok && (d.state == dsJoin || d.state == dsPrunePending) {
				joined = true
				if d.et.when.After(t) {
					t = d.et.when
				}
			}
		}
		return t, joined
	}
	if e == nil {
		rt.Flags = FlagWC | FlagRPT
		rt.RPFIface = r.rpfIface(rp)
		_, rt.UpstreamNeighbor = r.rpfPrimeWC(gs)
		rt.Joined = gs.wc != nil && gs.wc.up.joined
		set, local = o.immWC, o.inclWC
	} else {
		rt.Source = e.s
		rpt, _, inh, loc := r.sgOlists(gs, e, o)
		local = loc
		// A directly connected source with data, and any source at the RP
		// (the RP tree has no incoming interface there), come in on
		// RPF_interface(S).
		if e.spt || e.up.joined || gs.ssm(r) || e.katRunning() && r.directlyConnected(e.s) || gs.iAmRP(r) {
			rt.Flags = FlagSPT
			rt.RPFIface = r.rpfIface(e.s)
			_, rt.UpstreamNeighbor = r.rpfPrimeSG(gs, e)
			set = inh
		} else {
			rt.Flags = FlagRPT
			rt.RPFIface = r.rpfIface(rp)
			_, rt.UpstreamNeighbor = r.rpfPrimeWC(gs)
			set = rpt
		}
		rt.Joined = e.up.joined
		if e.spt {
			rt.Flags |= FlagSPTBit
		}
		switch e.reg {
		case RegJoin:
			rt.Flags |= FlagRegister
		case RegJoinPending:
			rt.Flags |= FlagJoinPending
		case RegPrune:
			rt.Flags |= FlagRegisterPrune
		}
	}
	if gs.iAmRP(r) {
		rt.Flags |= FlagLocalRP
	}
	for _, ifx := range set.sorted() {
		if ifx == rt.RPFIface {
			continue
		}
		exp, joined := expiry(ifx)
		rt.OIfs = append(rt.OIfs, OIf{Ifindex: ifx, Expires: exp, Joined: joined, Local: local[ifx]})
	}
	return rt
}

func wcDown(gs *groupState) map[int]*downstream {
	if gs.wc == nil {
		return nil
	}
	return gs.wc.down
}

func sgDown(e *sgState) map[int]*downstream {
	if e == nil {
		return nil
	}
	return e.down
}

// sameRoute compares routes without the expiry times.
func sameRoute(a, b Route) bool {
	if a.Source != b.Source || a.Group != b.Group || a.RP != b.RP || a.RPFIface != b.RPFIface ||
		a.UpstreamNeighbor != b.UpstreamNeighbor || a.Joined != b.Joined || a.Flags != b.Flags || len(a.OIfs) != len(b.OIfs) {
		return false
	}
	for i := range a.OIfs {
		if a.OIfs[i].Ifindex != b.OIfs[i].Ifindex || a.OIfs[i].Local != b.OIfs[i].Local {
			return false
		}
	}
	return true
}

// settle runs, for every dirty group, the upstream state machines on the
// new downstream state (JoinDesired, PruneDesired, RPF' changes), the
// assert machines' conditions, removes empty entries, reports the routes
// that changed and flushes the Join/Prune batches.
func (r *Router) settle() {
	var ups []RouteUpdate
	for len(r.dirty) > 0 {
		groups := make([]netip.Addr, 0, len(r.dirty))
		for g := range r.dirty {
			groups = append(groups, g)
		}
		clear(r.dirty)
		slices.SortFunc(groups, netip.Addr.Compare)
		for _, g := range groups {
			gs, ok := r.groups[g]
			if ok {
				r.settleGroup(gs)
				r.gc(gs)
			}
			ups = r.export(g, ups)
		}
	}
	r.flush()
	if len(ups) > 0 {
		r.outbox.add(routerOut{routes: ups})
	}
}

// export compares group g's routes with those last reported.
func (r *Router) export(g netip.Addr, ups []RouteUpdate) []RouteUpdate {
	cur := map[netip.Addr]Route{} // by source; invalid for (*,G)
	if gs, ok := r.groups[g]; ok {
		if gs.wc != nil {
			cur[netip.Addr{}] = r.route(gs, nil)
		}
		for s, e := range gs.src {
			cur[s] = r.route(gs, e)
		}
	}
	old := r.exported[g]
	var changed []RouteUpdate
	for s, rt := range old {
		if _, ok := cur[s]; !ok {
			changed = append(changed, RouteUpdate{Route: rt, Deleted: true})
		}
	}
	for s, rt := range cur {
		if o, ok := old[s]; !ok || !sameRoute(o, rt) {
			changed = append(changed, RouteUpdate{Route: rt})
		}
	}
	if len(cur) == 0 {
		delete(r.exported, g)
	} else {
		r.exported[g] = cur
	}
	slices.SortFunc(changed, func(a, b RouteUpdate) int { return a.Source.Compare(b.Source) })
	return append(ups, changed...)
}
