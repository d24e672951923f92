package pim

import (
	"log/slog"
	"net/netip"
)

// The assert state machines of RFC 7761 §4.6, enough to elect one
// forwarder per LAN: the (S,G) machine (§4.6.1) for Asserts with the RPT
// bit clear and the (*,G) machine (§4.6.2) for those with it set; states
// NoInfo, I am Assert Winner, I am Assert Loser, with the Assert Timer.
// Simplifications: SPTbit(S,G) in CouldAssert(S,G,I) is taken as "the
// (S,G) entry is on the SPT" (SPT bit, Joined or SSM), and
// lost_assert(S,G,rpt,I) as lost_assert(S,G,I). An interface with
// IgnoreAssertState has no assert state: Asserts received there are
// counted and ignored, and none is sent.

type assertState uint8

const (
	asNoInfo assertState = iota
	asWinner
	asLoser
)

func (s assertState) String() string { return [...]string{"NoInfo", "Winner", "Loser"}[s] }

// assertMetric is an assert metric (§4.6.3); lower is better but for the
// address, where the higher wins.
type assertMetric struct {
	rpt          bool
	pref, metric uint32
	addr         netip.Addr
}

// infiniteMetric is the metric of an AssertCancel and of a router that
// cannot assert.
var infiniteMetric = assertMetric{rpt: true, pref: maxMetricPref, metric: 0xffffffff}

func (a assertMetric) infinite() bool {
	return a.pref == infiniteMetric.pref && a.metric == infiniteMetric.metric
}

// better reports whether a is preferred over b.
func (a assertMetric) better(b assertMetric) bool {
	switch {
	case a.rpt != b.rpt:
		return !a.rpt
	case a.pref != b.pref:
		return a.pref < b.pref
	case a.metric != b.metric:
		return a.metric < b.metric
	}
	return a.addr.Compare(b.addr) > 0
}

// assertFSM is the assert state of one entry on one interface.
type assertFSM struct {
	state  assertState
	at     slot
	winner netip.Addr   // AssertWinner; this router's address when Winner
	metric assertMetric // AssertWinnerMetric
	src    netip.Addr   // the source Asserts name ((*,G): of the triggering data)
}

// couldAssertWC is CouldAssert(*,G,I).
func (r *Router) couldAssertWC(gs *groupState, ri *rIface, o olists) bool {
	if ri.opt.IgnoreAssertState || gs.wc == nil || ri.index == r.rpfIface(gs.rp(r)) {
		return false
	}
	return inState(gs.wc.down, ri.index, dsJoin, dsPrunePending) || o.inclWC[ri.index]
}

// couldAssertSG is CouldAssert(S,G,I): the entry is on the SPT and this
// router would forward S onto I, its own (S,G) assert state aside.
func (r *Router) couldAssertSG(gs *groupState, e *sgState, ri *rIface, o olists) bool {
	if ri.opt.IgnoreAssertState || !(e.spt || e.up.joined || gs.ssm(r)) || ri.index == r.rpfIface(e.s) {
		return false
	}
	ifx := ri.index
	wcJoined := gs.wc != nil && inState(gs.wc.down, ifx, dsJoin, dsPrunePending) && !inState(e.rptDown, ifx, dsPruned, dsPruneTmp)
	return inState(e.down, ifx, dsJoin, dsPrunePending) || gs.localSG(ri, e.s) || wcJoined || o.inclWC[ifx] && !gs.localExcl(r, ri, e.s)
}

func (r *Router) metricTo(a netip.Addr, rpt bool, ri *rIface) assertMetric {
	rt, ok := r.lookup(a)
	if !ok {
		return infiniteMetric
	}
	return assertMetric{rpt: rpt, pref: min(rt.Preference, maxMetricPref), metric: rt.Metric, addr: ri.ifc.Address()}
}

// myMetricWC is my_assert_metric for (*,G): rpt_assert_metric(G,I).
func (r *Router) myMetricWC(gs *groupState, ri *rIface, o olists) assertMetric {
	if !r.couldAssertWC(gs, ri, o) {
		return infiniteMetric
	}
	return r.metricTo(gs.rp(r), true, ri)
}

// myMetricSG is my_assert_metric(S,G,I): spt_assert_metric when
// CouldAssert(S,G,I), else rpt_assert_metric when CouldAssert(*,G,I).
func (r *Router) myMetricSG(gs *groupState, e *sgState, ri *rIface, o olists) assertMetric {
	if r.couldAssertSG(gs, e, ri, o) {
		return r.metricTo(e.s, false, ri)
	}
	return r.myMetricWC(gs, ri, o)
}

// assertCtx is one entry's view for the assert machine on one interface.
type assertCtx struct {
	m        map[int]*assertFSM
	my       assertMetric
	could    bool // CouldAssert
	tracking bool // AssertTrackingDesired: we forward there, or it is our RPF interface and we are joined
	group    netip.Addr
	source   netip.Addr // S; for (*,G) the source of the triggering packet or Assert
	rpt      bool
}

func (r *Router) wcCtx(gs *groupState, ri *rIface, o olists, src netip.Addr) assertCtx {
	// AssertTrackingDesired(*,G,I) = CouldAssert(*,G,I) OR
	// (local_receiver_include(*,G,I) AND (I_am_DR(I) OR AssertWinner is
	// me)) OR (RPF_interface(RP(G)) == I AND RPTJoinDesired(G)).
	c := r.couldAssertWC(gs, ri, o)
	local := gs.localWC(r, ri) && (ri.iAmDR() || assertWinner(gs.wc.assert, ri.index))
	up := ri.index == r.rpfIface(gs.rp(r)) && gs.wc.up.joined
	return assertCtx{m: gs.wc.assert, my: r.myMetricWC(gs, ri, o), could: c, tracking: c || local || up, group: gs.g, source: src, rpt: true}
}

func (r *Router) sgCtx(gs *groupState, e *sgState, ri *rIface, o olists) assertCtx {
	// AssertTrackingDesired(S,G,I), with the (*,G) parts of it.
	c := r.couldAssertSG(gs, e, ri, o)
	cwc := r.couldAssertWC(gs, ri, o)
	dr := ri.iAmDR() || assertWinner(e.assert, ri.index)
	local := gs.localSG(ri, e.s) && dr || gs.localWC(r, ri) && !gs.localExcl(r, ri, e.s) && dr
	up := ri.index == r.rpfIface(e.s) && e.up.joined
	return assertCtx{m: e.assert, my: r.myMetricSG(gs, e, ri, o), could: c || cwc, tracking: c || cwc || local || up, group: gs.g, source: e.s}
}

// HandleAssert processes an Assert received on the named interface from
// src (§4.6.1, §4.6.2).
func (r *Router) HandleAssert(iface string, src netip.Addr, a *Assert) {
	r.mu.Lock()
	defer r.unlock()
	src = src.WithZone("")
	ifx, ok := r.byName[iface]
	ri := r.ifaces[ifx]
	g := a.Group.Addr
	switch {
	case !ok:
		r.stats.AssertDrop++
		return
	case ri.opt.IgnoreAssertState:
		r.stats.AssertDrop++
		return
	case a.Group.MaskLen != maxMaskLen || !routable(g):
		r.stats.AssertDrop++
		return
	}
	if n, ok := ri.ifc.Neighbor(src); !ok || n.Address != src {
		r.stats.AssertDrop++
		return
	}
	r.stats.AssertRx++
	gs, ok := r.groups[g]
	if !ok {
		return
	}
	o := r.wcOlist(gs)
	recv := assertMetric{rpt: a.RPT, pref: a.MetricPreference, metric: a.Metric, addr: src}
	s := a.Source.WithZone("")
	if a.RPT {
		if gs.wc == nil {
			return
		}
		r.assertReceived(ri, r.wcCtx(gs, ri, o, s), src, recv)
	} else {
		if !validSource(s) {
			r.stats.AssertDrop++
			return
		}
		e, ok := gs.src[s]
		if !ok {
			// Only state we forward or join with: S through our (*,G).
			if !r.couldAssertWC(gs, ri, o) {
				return
			}
			if e = r.ensureSG(gs, s); e == nil {
				return
			}
		}
		r.assertReceived(ri, r.sgCtx(gs, e, ri, o), src, recv)
	}
	r.dirty[g] = struct{}{}
	r.settle()
}

func (r *Router) assertReceived(ri *rIface, c assertCtx, src netip.Addr, recv assertMetric) {
	st, ok := c.m[ri.index]
	if !ok {
		st = &assertFSM{}
		c.m[ri.index] = st
	}
	// An AssertCancel (infinite metric) is never preferred (§4.6.1).
	preferred := !recv.infinite() && recv.better(c.my)
	switch st.state {
	case asNoInfo, asWinner:
		switch {
		case !preferred && c.could:
			r.assertWin(ri, c, st) // inferior: (re)assert
		case preferred && c.tracking:
			r.assertLose(ri, c, st, src, recv)
		}
	case asLoser:
		switch {
		case src == st.winner && preferred:
			r.assertLose(ri, c, st, src, recv) // refresh
		case src == st.winner:
			st.state, st.winner = asNoInfo, netip.Addr{} // inferior or cancel from the winner
			st.at.stop()
		case preferred && recv.better(st.metric):
			r.assertLose(ri, c, st, src, recv)
		}
	}
}

// assertWin: send Assert, AT = Assert_Time - Assert_Override_Interval.
func (r *Router) assertWin(ri *rIface, c assertCtx, st *assertFSM) {
	st.state, st.winner, st.metric = asWinner, ri.ifc.Address(), c.my
	if c.source.IsValid() {
		st.src = c.source
	}
	r.sendAssert(ri, c.group, st.src, c.rpt, c.my)
	m, g := c.m, c.group
	r.arm(&st.at, AssertTime-AssertOverrideInterval, func() { r.assertWinnerRefresh(ri, m, g, st) })
}

// assertWinnerRefresh is the Winner's AT expiry: send Assert, restart AT.
func (r *Router) assertWinnerRefresh(ri *rIface, m map[int]*assertFSM, g netip.Addr, st *assertFSM) {
	if m[ri.index] == st && st.state == asWinner {
		r.sendAssert(ri, g, st.src, st.metric.rpt, st.metric)
		r.arm(&st.at, AssertTime-AssertOverrideInterval, func() { r.assertWinnerRefresh(ri, m, g, st) })
	}
}

// assertLose: store the winner, AT = Assert_Time.
func (r *Router) assertLose(ri *rIface, c assertCtx, st *assertFSM, src netip.Addr, recv assertMetric) {
	if st.state != asLoser || st.winner != src {
		r.log.Info("pim assert lost", slog.String("iface", ri.ifc.Name()), slog.String("group", c.group.String()),
			slog.String("source", c.source.String()), slog.String("winner", src.String()))
	}
	st.state, st.winner, st.metric = asLoser, src, recv
	g := c.group
	r.arm(&st.at, AssertTime, func() {
		st.state, st.winner = asNoInfo, netip.Addr{}
		r.dirty[g] = struct{}{}
	})
}

func (r *Router) sendAssert(ri *rIface, g, s netip.Addr, rpt bool, m assertMetric) {
	if ri.opt.IgnoreAssertState {
		return
	}
	if !s.IsValid() {
		s = netip.IPv6Unspecified()
	}
	r.queue(ri.index, &Assert{Group: SingleGroup(g), Source: s, RPT: rpt, MetricPreference: m.pref, Metric: m.metric})
}

// settleAsserts applies the conditions of the assert machines: a Winner
// that can no longer assert sends AssertCancel; a Loser that no longer
// tracks the assert, or whose own metric became better, forgets it.
func (r *Router) settleAsserts(gs *groupState, o olists) {
	check := func(c assertCtx, ri *rIface) {
		st, ok := c.m[ri.index]
		if !ok {
			return
		}
		switch st.state {
		case asWinner:
			if !c.could {
				r.sendAssert(ri, c.group, st.src, c.rpt, infiniteMetric)
				st.state = asNoInfo
				st.at.stop()
			} else if st.metric != c.my {
				st.metric = c.my
			}
		case asLoser:
			if !c.tracking || c.my.better(st.metric) {
				st.state, st.winner = asNoInfo, netip.Addr{}
				st.at.stop()
			}
		}
	}
	for ifx, ri := range r.ifaces {
		if gs.wc != nil {
			if _, ok := gs.wc.assert[ifx]; ok {
				check(r.wcCtx(gs, ri, o, netip.Addr{}), ri)
			}
		}
		for _, e := range gs.src {
			if _, ok := e.assert[ifx]; ok {
				check(r.sgCtx(gs, e, ri, o), ri)
			}
		}
	}
}

// DataOnOIF is the data-path hook of the assert machines: an (S,G)
// packet arrived on ifindex, an interface the entry forwards onto (a
// LAN with another forwarder). If this router could assert there and has
// no assert state yet, it sends an (S,G) Assert, or a (*,G) one when it
// forwards S only through (*,G) state, and becomes the Winner until a
// better Assert arrives (§4.6.1, §4.6.2). The caller rate-limits.
func (r *Router) DataOnOIF(ifindex int, s, g netip.Addr) {
	r.mu.Lock()
	defer r.unlock()
	gs := r.groups[g.WithZone("")]
	if gs == nil {
		return
	}
	r.dataOnOIF(ifindex, gs, s.WithZone(""))
	r.dirty[gs.g] = struct{}{}
	r.settle()
}

// dataOnOIF is DataOnOIF with the mutex held, without the settle.
func (r *Router) dataOnOIF(ifindex int, gs *groupState, s netip.Addr) {
	ri, ok := r.ifaces[ifindex]
	if !ok || ri.opt.IgnoreAssertState {
		return
	}
	o := r.wcOlist(gs)
	if e, ok := gs.src[s]; ok && r.couldAssertSG(gs, e, ri, o) {
		if st, ok := e.assert[ifindex]; !ok || st.state == asNoInfo {
			c := r.sgCtx(gs, e, ri, o)
			st = &assertFSM{}
			e.assert[ifindex] = st
			r.assertWin(ri, c, st)
		}
	} else if gs.wc != nil && r.couldAssertWC(gs, ri, o) {
		if st, ok := gs.wc.assert[ifindex]; !ok || st.state == asNoInfo {
			c := r.wcCtx(gs, ri, o, s)
			st = &assertFSM{}
			gs.wc.assert[ifindex] = st
			r.assertWin(ri, c, st)
		}
	}
}

// forgetWinner: the assert winner nbr on ifx went away or restarted
// (§4.6.1: the winner's NLT expired or its GenID changed): back to NoInfo.
func (gs *groupState) forgetWinner(r *Router, ifx int, nbr netip.Addr) {
	f := func(m map[int]*assertFSM) {
		if st, ok := m[ifx]; ok && st.state == asLoser && st.winner == nbr {
			st.state, st.winner = asNoInfo, netip.Addr{}
			st.at.stop()
			r.dirty[gs.g] = struct{}{}
		}
	}
	if gs.wc != nil {
		f(gs.wc.assert)
	}
	for _, e := range gs.src {
		f(e.assert)
	}
}

// dropAsserts forgets the assert state on ifx.
func (gs *groupState) dropAsserts(r *Router, ifx int) {
	f := func(m map[int]*assertFSM) {
		if st, ok := m[ifx]; ok {
			st.at.stop()
			delete(m, ifx)
			r.dirty[gs.g] = struct{}{}
		}
	}
	if gs.wc != nil {
		f(gs.wc.assert)
	}
	for _, e := range gs.src {
		f(e.assert)
	}
}
