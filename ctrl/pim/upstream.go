package pim

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// The upstream join/prune state machines of RFC 7761 §4.5.6 ((*,G)),
// §4.5.7 ((S,G)) and §4.5.9 ((S,G,rpt)), the Join Timer with join
// suppression and prune override on a LAN, and the Join/Prune batches.

// upstream is an Upstream (*,G) or (S,G) state: NotJoined or Joined, the
// Join Timer, and RPF' as last evaluated.
type upstream struct {
	joined bool
	jt     slot
	// suppressed: the JT was increased to t_joinsuppress; the entry is
	// not sent early with another entry's periodic batch.
	suppressed bool
	// override: the JT was decreased to t_override; when it fires only
	// this entry is sent.
	override bool
	ifx      int
	nbr      netip.Addr
	// The entry's group and its source entry in a Join/Prune.
	g   netip.Addr
	src Source
}

// rpfPrimeWC is RPF'(*,G) (§4.1.6): the assert winner on RPF_interface(RP)
// if this router lost the assert there, else NBR(RPF_interface(RP),
// MRIB.next_hop(RP)).
func (r *Router) rpfPrimeWC(gs *groupState) (int, netip.Addr) {
	rp := gs.rp(r)
	if !rp.IsValid() {
		return 0, netip.Addr{}
	}
	ifx, n := r.nbr(rp)
	if gs.wc != nil {
		if a, ok := gs.wc.assert[ifx]; ok && a.state == asLoser {
			return ifx, a.winner
		}
	}
	return ifx, n
}

// rpfPrimeSG is RPF'(S,G), the same towards S.
func (r *Router) rpfPrimeSG(gs *groupState, e *sgState) (int, netip.Addr) {
	ifx, n := r.nbr(e.s)
	if a, ok := e.assert[ifx]; ok && a.state == asLoser {
		return ifx, a.winner
	}
	return ifx, n
}

// settleGroup evaluates JoinDesired(*,G), JoinDesired(S,G) and
// PruneDesired(S,G,rpt) for one group and steps the upstream machines.
func (r *Router) settleGroup(gs *groupState) {
	r.ensureLocal(gs)
	o := r.wcOlist(gs)
	rp := gs.rp(r)
	wcIfx, wcNbr := r.rpfPrimeWC(gs)
	if wc := gs.wc; wc != nil {
		// JoinDesired(*,G) = immediate_olist(*,G) != NULL (no (*,*,RP)),
		// the RPF interface left out: nothing to forward onto there.
		jd := rp.IsValid() && !without(o.immWC, r.rpfIface(rp)).empty()
		_, viaAssert := wc.assert[wcIfx]
		r.stepUpstream(&wc.up, gs.g, StarG(rp), jd, wcIfx, wcNbr, viaAssert)
	}
	rptJD := gs.wc != nil && gs.wc.up.joined // RPTJoinDesired(G)
	for _, s := range sortedSources(gs) {
		e := gs.src[s]
		rpt, imm, inh, _ := r.sgOlists(gs, e, o)
		// JoinDesired(S,G) = immediate_olist(S,G) != NULL OR
		// (KeepaliveTimer(S,G) running AND inherited_olist(S,G) != NULL).
		ifx, n := r.rpfPrimeSG(gs, e)
		jd := !without(imm, ifx).empty() || e.katRunning() && !without(inh, ifx).empty()
		_, viaAssert := e.assert[ifx]
		r.stepUpstream(&e.up, gs.g, SG(s), jd, ifx, n, viaAssert)
		// PruneDesired(S,G,rpt) = RPTJoinDesired(G) AND
		// (inherited_olist(S,G,rpt) == NULL OR
		//  (SPTbit(S,G) AND RPF'(*,G) != RPF'(S,G))).
		pd := rptJD && (without(rpt, r.rpfIface(rp)).empty() || e.spt && (wcIfx != ifx || wcNbr != n))
		switch {
		case !rptJD:
			e.rptUp = rptNotJoined
		case pd:
			// Send Prune(S,G,rpt), with the group's Join(*,G). An entry
			// made just now was NotPruned in all but name (the (S,G,rpt)
			// state of every source exists implicitly while (*,G) is
			// joined).
			if e.rptUp != rptPruned {
				r.batch(wcIfx, wcNbr).add(gs.g, StarG(rp), true)
			}
			e.rptUp = rptPruned
		default:
			if e.rptUp == rptPruned {
				// Send Join(S,G,rpt): a Join(*,G) without the prune.
				r.batch(wcIfx, wcNbr).add(gs.g, StarG(rp), true)
			}
			e.rptUp = rptNotPruned
		}
		r.stepRegister(gs, e)
	}
	r.settleAsserts(gs, o)
}

// ensureLocal makes the entries local listeners need: (*,G) for EXCLUDE
// mode (not in SSM), (S,G) for included sources; again at each settle, so
// that entries refused at MaxEntries come when there is room.
func (r *Router) ensureLocal(gs *groupState) {
	for _, ri := range r.ifaces {
		m, ok := ri.local[gs.g]
		switch {
		case !ok:
		case m.exclude && !gs.ssm(r):
			if r.ensureWC(gs) == nil {
				r.starved[gs.g] = struct{}{}
			}
		case !m.exclude:
			for _, s := range m.sources {
				if r.ensureSG(gs, s) == nil {
					r.starved[gs.g] = struct{}{}
				}
			}
		}
	}
}

// without is s less interface ifx.
func without(s ifset, ifx int) ifset {
	if !s[ifx] {
		return s
	}
	out := make(ifset, len(s))
	for i, ok := range s {
		out[i] = ok && i != ifx
	}
	return out
}

func sortedSources(gs *groupState) []netip.Addr {
	ss := make([]netip.Addr, 0, len(gs.src))
	for s := range gs.src {
		ss = append(ss, s)
	}
	slices.SortFunc(ss, netip.Addr.Compare)
	return ss
}

// stepUpstream is one evaluation of the upstream (*,G) or (S,G) machine:
// JoinDesired changes and RPF' changes (§4.5.6, §4.5.7).
func (r *Router) stepUpstream(u *upstream, g netip.Addr, src Source, jd bool, ifx int, n netip.Addr, viaAssert bool) {
	oldIfx, oldNbr := u.ifx, u.nbr
	u.ifx, u.nbr, u.g, u.src = ifx, n, g, src
	switch {
	case !u.joined && jd:
		u.joined = true
		r.batch(ifx, n).add(g, src, true)
		r.armJT(u, r.cfg.JoinPrunePeriod)
	case u.joined && !jd:
		u.joined = false
		u.jt.stop()
		r.batch(oldIfx, oldNbr).add(g, src, false)
	case u.joined && (oldIfx != ifx || oldNbr != n):
		if viaAssert && oldIfx == ifx {
			// RPF' changed because of an Assert: JT = min(JT, t_override).
			r.overrideJT(u)
			return
		}
		r.batch(ifx, n).add(g, src, true)
		if ri, ok := r.ifaces[oldIfx]; ok && oldNbr.IsValid() {
			if _, alive := ri.ifc.Neighbor(oldNbr); alive {
				r.batch(oldIfx, oldNbr).add(g, src, false)
			}
		}
		r.armJT(u, r.cfg.JoinPrunePeriod)
	}
}

// armJT sets the Join Timer; when it fires, the entry is sent with every
// other entry joined through the same neighbour that is not being
// suppressed, and all of them restart their timers: one message (or as
// few as the MTU allows) per upstream neighbour per period.
func (r *Router) armJT(u *upstream, d time.Duration) {
	u.suppressed, u.override = false, false
	r.arm(&u.jt, d, func() { r.joinTimerExpired(u) })
}

func (r *Router) joinTimerExpired(u *upstream) {
	switch {
	case !u.joined:
	case !u.nbr.IsValid(): // no RPF' (directly connected source, no neighbour): nothing to send
		r.armJT(u, r.cfg.JoinPrunePeriod)
	case u.override:
		r.batch(u.ifx, u.nbr).add(u.g, u.src, true)
		r.armJT(u, r.cfg.JoinPrunePeriod)
	default:
		r.periodic(u)
	}
}

// periodic sends the joins of every entry joined through u's neighbour
// that is due or not suppressed, and restarts their Join Timers.
func (r *Router) periodic(due *upstream) {
	ifx, nbr := due.ifx, due.nbr
	b := r.batch(ifx, nbr)
	take := func(u *upstream) bool {
		return u.joined && u.ifx == ifx && u.nbr == nbr && (u == due || !u.suppressed)
	}
	for _, gs := range r.groups {
		if wc := gs.wc; wc != nil && take(&wc.up) {
			b.add(gs.g, StarG(gs.rp(r)), true)
			r.armJT(&wc.up, r.cfg.JoinPrunePeriod)
		}
		for _, e := range gs.src {
			if take(&e.up) {
				b.add(gs.g, SG(e.s), true)
				r.armJT(&e.up, r.cfg.JoinPrunePeriod)
			}
		}
	}
}

// suppressJT is See Join to RPF' on a LAN: JT = max(JT, t_joinsuppress),
// t_joinsuppress = min(t_suppressed, the seen message's Holdtime).
func (r *Router) suppressJT(u *upstream, hold uint16) {
	ri, ok := r.ifaces[u.ifx]
	if !ok || !u.joined {
		return
	}
	t := ri.ifc.TSuppressed(r.cfg.JoinPrunePeriod)
	if ht, forever := holdDuration(hold); !forever {
		t = min(t, ht)
	}
	if t > r.remaining(&u.jt) {
		r.arm(&u.jt, t, func() { r.joinTimerExpired(u) })
		u.suppressed, u.override = true, false
	}
}

// overrideJT is See Prune to RPF', and RPF' changing by an Assert:
// JT = min(JT, t_override).
func (r *Router) overrideJT(u *upstream) {
	ri, ok := r.ifaces[u.ifx]
	if !ok || !u.joined {
		return
	}
	t := ri.ifc.TOverride()
	if t < r.remaining(&u.jt) {
		r.arm(&u.jt, t, func() { r.joinTimerExpired(u) })
		u.suppressed, u.override = false, true
	}
}

// upstreamGenIDChanged: RPF' sent a new Generation ID; every entry joined
// through it sends its join within one t_override, in one batch
// (§4.5.6, §4.5.7).
func (r *Router) upstreamGenIDChanged(ifx int, nbr netip.Addr) {
	ri, ok := r.ifaces[ifx]
	if !ok {
		return
	}
	t := ri.ifc.TOverride()
	for _, gs := range r.groups {
		ups := []*upstream{}
		if gs.wc != nil {
			ups = append(ups, &gs.wc.up)
		}
		for _, e := range gs.src {
			ups = append(ups, &e.up)
		}
		for _, u := range ups {
			if u.joined && u.ifx == ifx && u.nbr == nbr && t < r.remaining(&u.jt) {
				r.arm(&u.jt, t, func() { r.joinTimerExpired(u) })
				u.suppressed, u.override = false, false
			}
		}
	}
}

// seen processes a Join/Prune from another router to nbr, one of our
// upstream neighbours on ri: join suppression and prune override for
// our entries joined through nbr (§4.5.6, §4.5.7, §4.5.9).
func (r *Router) seen(ri *rIface, nbr netip.Addr, jp *JoinPrune) {
	to := func(u *upstream) bool { return u.joined && u.ifx == ri.index && u.nbr == nbr }
	for _, set := range jp.Groups {
		gs, ok := r.groups[set.Group.Addr]
		if !ok || set.Group.MaskLen != maxMaskLen {
			continue
		}
		for _, s := range set.Joins {
			switch s.Kind() {
			case KindStarG:
				if gs.wc != nil && to(&gs.wc.up) {
					r.suppressJT(&gs.wc.up, jp.Holdtime)
				}
			case KindSG:
				if e, ok := gs.src[s.Addr]; ok && to(&e.up) {
					r.suppressJT(&e.up, jp.Holdtime)
				}
			}
		}
		for _, s := range set.Prunes {
			switch s.Kind() {
			case KindStarG:
				if gs.wc != nil && to(&gs.wc.up) {
					r.overrideJT(&gs.wc.up)
				}
				for _, e := range gs.src { // See Prune(*,G) to RPF'(S,G)
					if to(&e.up) {
						r.overrideJT(&e.up)
					}
				}
			case KindSG:
				if e, ok := gs.src[s.Addr]; ok && to(&e.up) {
					r.overrideJT(&e.up)
				}
			case KindSGRpt:
				e, ok := gs.src[s.Addr]
				if ok && to(&e.up) { // See Prune(S,G,rpt) to RPF'(S,G)
					r.overrideJT(&e.up)
				}
				// NotPruned(S,G,rpt): override the prune with our (*,G) join.
				if gs.wc != nil && to(&gs.wc.up) && (!ok || e.rptUp != rptPruned) {
					r.overrideJT(&gs.wc.up)
				}
			}
		}
	}
}

// jpBatch collects the entries to send to one upstream neighbour.
type jpBatch struct {
	sets map[netip.Addr]*GroupSet
	// in says which list of its group's set a source is in (true: Joins),
	// so that adding one is not a scan of the set: a group with many
	// sources gets them all in one batch.
	in map[netip.Addr]map[Source]bool
}

// batch returns the batch for nbr on ifx; entries for no neighbour go
// nowhere.
func (r *Router) batch(ifx int, nbr netip.Addr) *jpBatch {
	if _, ok := r.ifaces[ifx]; !ok || !nbr.IsValid() {
		return &jpBatch{sets: map[netip.Addr]*GroupSet{}}
	}
	k := nbrKey{ifx, nbr}
	b, ok := r.batches[k]
	if !ok {
		b = &jpBatch{sets: map[netip.Addr]*GroupSet{}}
		r.batches[k] = b
	}
	return b
}

// add puts src in the group's joins or prunes, out of the other list.
func (b *jpBatch) add(g netip.Addr, src Source, join bool) {
	if !src.Addr.IsValid() {
		return
	}
	set, ok := b.sets[g]
	if !ok {
		set = &GroupSet{Group: SingleGroup(g)}
		b.sets[g] = set
	}
	if b.in == nil {
		b.in = map[netip.Addr]map[Source]bool{}
	}
	in := b.in[g]
	if in == nil {
		in = map[Source]bool{}
		b.in[g] = in
	}
	was, had := in[src]
	if had && was == join {
		return
	}
	in[src] = join
	if join {
		if had {
			set.Prunes = slices.DeleteFunc(set.Prunes, func(x Source) bool { return x == src })
		}
		set.Joins = append(set.Joins, src)
	} else {
		if had {
			set.Joins = slices.DeleteFunc(set.Joins, func(x Source) bool { return x == src })
		}
		set.Prunes = append(set.Prunes, src)
	}
}

// flush turns the batches into Join/Prune messages. A group's Join(*,G)
// carries the Prune(S,G,rpt) of every source in Pruned(S,G,rpt), so each
// (*,G) join restates the router's whole RP-tree prune list (§4.5.9).
func (r *Router) flush() {
	if len(r.batches) == 0 {
		return
	}
	keys := make([]nbrKey, 0, len(r.batches))
	for k := range r.batches {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b nbrKey) int {
		return cmp.Or(cmp.Compare(a.ifx, b.ifx), a.nbr.Compare(b.nbr))
	})
	hold := uint16(r.cfg.JoinPruneHoldtime / time.Second)
	maxLen := r.cfg.MTU - ipv6HeaderLen
	for _, k := range keys {
		b := r.batches[k]
		sets := make([]GroupSet, 0, len(b.sets))
		for g, set := range b.sets {
			if gs, ok := r.groups[g]; ok && slices.ContainsFunc(set.Joins, func(s Source) bool { return s.Kind() == KindStarG }) {
				for _, s := range sortedSources(gs) {
					if gs.src[s].rptUp == rptPruned {
						b.add(g, SGRpt(s), false)
					}
				}
			}
			sortSources(set.Joins)
			sortSources(set.Prunes)
			if len(set.Joins)+len(set.Prunes) > 0 {
				sets = append(sets, *set)
			}
		}
		slices.SortFunc(sets, func(a, b GroupSet) int { return a.Group.Addr.Compare(b.Group.Addr) })
		for _, m := range packJoinPrunes(k.nbr, hold, sets, maxLen) {
			r.queue(k.ifx, m)
		}
	}
	clear(r.batches)
}

// sortSources puts (*,G) first, then by address and kind.
func sortSources(ss []Source) {
	slices.SortFunc(ss, func(a, b Source) int {
		ka, kb := a.Kind() != KindStarG, b.Kind() != KindStarG
		if ka != kb {
			if !ka {
				return -1
			}
			return 1
		}
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Kind(), b.Kind()))
	})
}

// packJoinPrunes packs group sets into Join/Prune messages of at most
// maxLen octets (PIM header included) and 255 groups; a group set too
// large for one message is split across several, joins first.
func packJoinPrunes(up netip.Addr, hold uint16, sets []GroupSet, maxLen int) []*JoinPrune {
	var out []*JoinPrune
	cur := &JoinPrune{UpstreamNeighbor: up, Holdtime: hold}
	size := headerLen + jpFixedLen
	next := func() {
		if len(cur.Groups) > 0 {
			out = append(out, cur)
		}
		cur = &JoinPrune{UpstreamNeighbor: up, Holdtime: hold}
		size = headerLen + jpFixedLen
	}
	for _, set := range sets {
		joins, prunes := set.Joins, set.Prunes
		for len(joins)+len(prunes) > 0 {
			if len(cur.Groups) == maxJPGroups || size+jpGroupHdrLen+encSourceLen > maxLen {
				next()
			}
			room := min((maxLen-size-jpGroupHdrLen)/encSourceLen, maxJPSources)
			nj := min(len(joins), room)
			np := min(len(prunes), room-nj)
			cur.Groups = append(cur.Groups, GroupSet{Group: set.Group, Joins: joins[:nj:nj], Prunes: prunes[:np:np]})
			size += jpGroupHdrLen + (nj+np)*encSourceLen
			joins, prunes = joins[nj:], prunes[np:]
		}
	}
	next()
	for _, m := range out {
		for i := range m.Groups {
			if len(m.Groups[i].Joins) == 0 {
				m.Groups[i].Joins = nil
			}
			if len(m.Groups[i].Prunes) == 0 {
				m.Groups[i].Prunes = nil
			}
		}
	}
	return out
}
