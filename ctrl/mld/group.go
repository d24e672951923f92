package mld

import (
	"net/netip"
	"slices"
	"time"
)

// FilterMode is the router filter mode of a multicast address (RFC 3810 §7.2).
type FilterMode uint8

// Filter modes.
const (
	Include FilterMode = iota
	Exclude
)

func (m FilterMode) String() string {
	if m == Exclude {
		return "EXCLUDE"
	}
	return "INCLUDE"
}

// group is the per multicast address state of RFC 3810 §7.2: filter mode,
// filter timer and source records. Timers are absolute deadlines; the zero
// time is a timer of 0 (in EXCLUDE mode: the source is blocked).
type group struct {
	addr    netip.Addr
	mode    FilterMode
	timer   time.Time // filter timer, EXCLUDE mode only
	sources map[netip.Addr]*source

	v1Host       time.Time // Older Version Host Present timer (§8.3.2)
	lastReporter netip.Addr
	synced       bool
	importGen    uint64 // the last Import that carried this group
	dirty        bool   // in Interface.dirty, waiting for commit
	published    bool   // its state was delivered (a deletion must be)

	grpRetrans int       // pending multicast-address-specific query transmissions (§7.6.3.1)
	expiresAt  time.Time // the earliest deadline above, queued in Interface.expiries; zero: none
	expiryGen  uint64    // the queued entry of expiresAt (older ones are stale)
	rexmit     slot      // next last-listener query transmission
}

type source struct {
	timer   time.Time
	retrans int // pending multicast-address-and-source-specific query transmissions (§7.6.3.2)
}

func newGroup(addr netip.Addr) *group {
	return &group{addr: addr} // sources made on the first one: most groups have none
}

// put sets source a's record, creating the map if needed.
func (g *group) put(a netip.Addr, s *source) {
	if g.sources == nil {
		g.sources = make(map[netip.Addr]*source)
	}
	g.sources[a] = s
}

func (g *group) empty() bool { return g.mode == Include && len(g.sources) == 0 }

func (g *group) stopRetransmissions() {
	g.grpRetrans = 0
	for _, s := range g.sources {
		s.retrans = 0
	}
	g.rexmit.stop()
}

// setTimer sets (creating if needed) the timer of source a.
func (g *group) setTimer(a netip.Addr, t time.Time) {
	if s := g.sources[a]; s != nil {
		s.timer = t
		return
	}
	g.put(a, &source{timer: t})
}

// applyRecord applies one record to g per the tables of RFC 3810 §7.4.1
// (current-state records) and §7.4.2 (state-change records), with the
// queries they call for (§7.6.3). In the comments A and B are the sources
// of an INCLUDE state and of the record, X the sources with a running
// timer and Y those with timer 0 in EXCLUDE mode.
func (i *Interface) applyRecord(g *group, typ RecordType, b []netip.Addr, now time.Time) {
	if i.applyRecordState(g, typ, b, now) {
		i.sendSpecificQueries(g, now)
	}
}

// applyRecordState changes the state and marks the queries to send; it
// reports whether any were marked.
func (i *Interface) applyRecordState(g *group, typ RecordType, b []netip.Addr, now time.Time) (send bool) {
	mali := now.Add(i.mali())
	inB := make(map[netip.Addr]bool, len(b))
	for _, a := range b {
		inB[a] = true
	}
	if g.mode == Include {
		switch typ {
		case ModeIsInclude, AllowNewSources:
			// INCLUDE (A+B); (B)=MALI
			for _, a := range b {
				g.setTimer(a, mali)
			}
		case ModeIsExclude, ChangeToExclude:
			// EXCLUDE (A*B, B-A); (B-A)=0; Delete (A-B); Filter Timer=MALI
			// TO_EX also: Send Q(MA, A*B)
			var both []netip.Addr
			for a := range g.sources {
				if !inB[a] {
					delete(g.sources, a)
				} else {
					both = append(both, a)
				}
			}
			for _, a := range b {
				if g.sources[a] == nil {
					g.put(a, &source{}) // timer 0: excluded
				}
			}
			g.mode = Exclude
			g.timer = mali
			if typ == ChangeToExclude {
				send = i.querySources(g, both, now)
			}
		case ChangeToInclude:
			// INCLUDE (A+B); (B)=MALI; Send Q(MA, A-B)
			var aMinusB []netip.Addr
			for a := range g.sources {
				if !inB[a] {
					aMinusB = append(aMinusB, a)
				}
			}
			for _, a := range b {
				g.setTimer(a, mali)
			}
			send = i.querySources(g, aMinusB, now)
		case BlockOldSources:
			// INCLUDE (A); Send Q(MA, A*B)
			var both []netip.Addr
			for _, a := range b {
				if g.sources[a] != nil {
					both = append(both, a)
				}
			}
			send = i.querySources(g, both, now)
		}
		return send
	}
	// EXCLUDE (X, Y)
	switch typ {
	case ModeIsInclude, AllowNewSources:
		// EXCLUDE (X+A, Y-A); (A)=MALI
		for _, a := range b {
			g.setTimer(a, mali)
		}
	case ModeIsExclude, ChangeToExclude:
		// EXCLUDE (A-Y, Y*A); Delete (X-A); Delete (Y-A); Filter Timer=MALI
		// IS_EX: (A-X-Y)=MALI
		// TO_EX: (A-X-Y)=Filter Timer; Send Q(MA, A-Y)
		for a := range g.sources {
			if !inB[a] {
				delete(g.sources, a)
			}
		}
		newT := mali
		if typ == ChangeToExclude {
			newT = g.timer
		}
		var aMinusY []netip.Addr
		for _, a := range b {
			s := g.sources[a]
			if s == nil {
				g.put(a, &source{timer: newT})
				aMinusY = append(aMinusY, a)
			} else if !s.timer.IsZero() {
				aMinusY = append(aMinusY, a)
			}
		}
		if typ == ChangeToExclude {
			send = i.querySources(g, aMinusY, now)
		}
		g.timer = mali
	case BlockOldSources:
		// EXCLUDE (X+(A-Y), Y); (A-X-Y)=Filter Timer; Send Q(MA, A-Y)
		var aMinusY []netip.Addr
		for _, a := range b {
			s := g.sources[a]
			if s == nil {
				g.put(a, &source{timer: g.timer})
				aMinusY = append(aMinusY, a)
			} else if !s.timer.IsZero() {
				aMinusY = append(aMinusY, a)
			}
		}
		send = i.querySources(g, aMinusY, now)
	case ChangeToInclude:
		// EXCLUDE (X+A, Y-A); (A)=MALI; Send Q(MA, X-A); Send Q(MA)
		var xMinusA []netip.Addr
		for a, s := range g.sources {
			if !s.timer.IsZero() && !inB[a] {
				xMinusA = append(xMinusA, a)
			}
		}
		for _, a := range b {
			g.setTimer(a, mali)
		}
		send = i.queryGroup(g, now)
		send = i.querySources(g, xMinusA, now) || send
	}
	return send
}

// queryGroup marks "Send Q(MA)" (RFC 3810 §7.6.3.1): lower the filter
// timer to LLQT; the caller then sends a multicast-address-specific query
// now, and sendSpecificQueries [Last Listener Query Count]-1 more every
// [Last Listener Query Interval]. Only the querier does this; other
// routers lower their timers when they hear the querier's query (§7.6.1).
func (i *Interface) queryGroup(g *group, now time.Time) bool {
	if !i.canQuery() {
		return false
	}
	if llqt := now.Add(i.llqt()); g.mode == Exclude && g.timer.After(llqt) {
		g.timer = llqt
	}
	g.grpRetrans = i.llqc()
	return true
}

// querySources marks "Send Q(MA, X)" (RFC 3810 §7.6.3.2) for the sources
// of X whose timer is above LLQT, lowering their timers to LLQT.
func (i *Interface) querySources(g *group, x []netip.Addr, now time.Time) bool {
	if !i.canQuery() || len(x) == 0 || i.cfg.Version == 1 {
		return false
	}
	llqt := now.Add(i.llqt())
	found := false
	for _, a := range x {
		if s := g.sources[a]; s != nil && s.timer.After(llqt) {
			s.timer = llqt
			s.retrans = i.llqc()
			found = true
		}
	}
	return found
}

// maxQuerySources keeps a query within the IPv6 minimum MTU: 1280 - 40
// (IPv6) - 8 (Hop-by-Hop) - 28 (query) = 1204 octets of sources.
const maxQuerySources = 75

// sendSpecificQueries sends one round of the pending specific queries of g
// and schedules the next round. The S flag is set on the group query when
// the filter timer is above LLQT (a report refreshed it); source queries
// are split in an S=1 query for sources whose timer is above LLQT and an
// S=0 one for the others (§7.6.3.1, §7.6.3.2).
func (i *Interface) sendSpecificQueries(g *group, now time.Time) {
	llqt := now.Add(i.llqt())
	var mrc uint16
	if i.cfg.Version == 1 {
		mrc = uint16(min(i.cfg.LastListenerQueryInterval.Milliseconds(), 0xffff))
	} else {
		mrc = EncodeMaxRespCode(i.cfg.LastListenerQueryInterval)
	}
	mk := func(suppress bool, srcs []netip.Addr) *Query {
		q := &Query{Version: i.cfg.Version, MaxRespCode: mrc, Group: g.addr, Sources: srcs}
		if q.Version == 2 {
			q.Suppress = suppress
			if i.qrv <= 7 {
				q.QRV = uint8(i.qrv)
			}
			q.QQIC = EncodeQQIC(i.qi)
		}
		return q
	}
	if g.grpRetrans > 0 {
		g.grpRetrans--
		i.stats.TxGroupQueries++
		i.queueSend(g.addr, mk(g.mode == Exclude && g.timer.After(llqt), nil))
	}
	var sup, nosup []netip.Addr
	for a, s := range g.sources {
		if s.retrans <= 0 {
			continue
		}
		s.retrans--
		if s.timer.After(llqt) {
			sup = append(sup, a)
		} else {
			nosup = append(nosup, a)
		}
	}
	for _, set := range []struct {
		s    bool
		srcs []netip.Addr
	}{{true, sup}, {false, nosup}} {
		slices.SortFunc(set.srcs, netip.Addr.Compare)
		for chunk := range slices.Chunk(set.srcs, maxQuerySources) {
			i.stats.TxGroupSourceQueries++
			i.queueSend(g.addr, mk(set.s, chunk))
		}
	}
	pending := g.grpRetrans > 0
	for _, s := range g.sources {
		pending = pending || s.retrans > 0
	}
	if pending {
		i.arm(&g.rexmit, i.cfg.LastListenerQueryInterval, func(now time.Time) {
			if cur := i.groups[g.addr]; cur != g || !i.mayRetransmit() {
				return
			}
			i.sendSpecificQueries(g, now)
			i.touch(g)
		})
	} else {
		g.rexmit.stop()
	}
}

// expire applies every timer of g that is due (RFC 3810 §7.2, §7.5, §8.3.2).
func (i *Interface) expire(g *group, now time.Time) {
	due := func(t time.Time) bool { return !t.IsZero() && !t.After(now) }
	if due(g.v1Host) {
		g.v1Host = time.Time{}
	}
	for a, s := range g.sources {
		if !due(s.timer) {
			continue
		}
		s.retrans = 0
		if g.mode == Include {
			delete(g.sources, a) // §7.3: INCLUDE, source timer expires: stop forwarding, delete
		} else {
			s.timer = time.Time{} // §7.3: EXCLUDE: the source moves to the excluded list
		}
	}
	if g.mode == Exclude && due(g.timer) {
		// §7.5: switch to INCLUDE with the sources that still have a
		// running timer; delete the excluded ones.
		g.mode = Include
		g.timer = time.Time{}
		g.grpRetrans = 0
		for a, s := range g.sources {
			if s.timer.IsZero() {
				delete(g.sources, a)
			}
		}
	}
	if g.empty() {
		i.deleteGroup(g)
	}
}

func (i *Interface) deleteGroup(g *group) {
	g.stopExpiry()
	g.rexmit.stop()
	delete(i.groups, g.addr)
	if g.published {
		i.gone = append(i.gone, g.addr)
	}
	i.log.Debug("mld group deleted", "group", g.addr.String())
}

// reschedule queues g's expiry at its earliest deadline.
func (i *Interface) reschedule(g *group) {
	if !i.running {
		g.stopExpiry()
		return
	}
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	consider(g.v1Host)
	if g.mode == Exclude {
		consider(g.timer)
	}
	for _, s := range g.sources {
		consider(s.timer)
	}
	if next.IsZero() {
		g.stopExpiry()
		return
	}
	if next.Equal(g.expiresAt) {
		return
	}
	g.expiresAt = next
	g.expiryGen++
	i.expiries.push(expiry{when: next, g: g, gen: g.expiryGen})
	i.compactExpiries()
	if !i.expSlot.running() || next.Before(i.expAt) {
		i.armExpiries()
	}
}

// stopExpiry forgets g's queued expiry (its heap entry goes stale).
func (g *group) stopExpiry() {
	g.expiresAt = time.Time{}
	g.expiryGen++
}

// The groups' expiries share one timer: a heap of deadlines and one slot
// armed at the earliest. A group per runtime timer cost a standby that
// imports 100 000 groups 100 000 timers and their closures, for deadlines
// that are mostly the same. Entries are not removed when a deadline moves
// (a report refreshes it): they go stale (expiryGen) and are dropped when
// they come to the top, or all at once when they outnumber the live ones.
type expiry struct {
	when time.Time
	g    *group
	gen  uint64
}

type expiryHeap []expiry

func (h expiryHeap) less(a, b int) bool { return h[a].when.Before(h[b].when) }

func (h *expiryHeap) push(e expiry) {
	*h = append(*h, e)
	s := *h
	for c := len(s) - 1; c > 0; {
		p := (c - 1) / 2
		if !s.less(c, p) {
			break
		}
		s[c], s[p] = s[p], s[c]
		c = p
	}
}

func (h *expiryHeap) pop() expiry {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = expiry{}
	s = s[:last]
	s.down(0)
	*h = s
	return top
}

func (h expiryHeap) down(p int) {
	for {
		c := 2*p + 1
		if c >= len(h) {
			return
		}
		if r := c + 1; r < len(h) && h.less(r, c) {
			c = r
		}
		if !h.less(c, p) {
			return
		}
		h[c], h[p] = h[p], h[c]
		p = c
	}
}

func (e expiry) live(i *Interface) bool {
	return e.gen == e.g.expiryGen && i.groups[e.g.addr] == e.g
}

// compactExpiries drops the stale entries once they are most of the heap.
func (i *Interface) compactExpiries() {
	h := i.expiries
	if len(h) < 1024 || len(h) < 2*len(i.groups) {
		return
	}
	live := h[:0]
	for _, e := range h {
		if e.live(i) {
			live = append(live, e)
		}
	}
	clear(h[len(live):])
	for k := len(live)/2 - 1; k >= 0; k-- {
		live.down(k)
	}
	i.expiries = live
}

// armExpiries arms the slot at the earliest live deadline.
func (i *Interface) armExpiries() {
	for len(i.expiries) > 0 && !i.expiries[0].live(i) {
		i.expiries.pop()
	}
	if len(i.expiries) == 0 {
		i.expSlot.stop()
		return
	}
	when := i.expiries[0].when
	if i.expSlot.running() && i.expAt.Equal(when) {
		return
	}
	i.expAt = when
	i.arm(&i.expSlot, when.Sub(i.clock.Now()), i.expire0)
}

// expire0 touches every group whose deadline has come (commit expires
// them and queues their next deadlines), then re-arms the slot.
func (i *Interface) expire0(now time.Time) {
	for len(i.expiries) > 0 {
		e := i.expiries[0]
		if !e.live(i) {
			i.expiries.pop()
			continue
		}
		if e.when.After(now) {
			break
		}
		i.expiries.pop()
		e.g.expiresAt = time.Time{}
		i.touch(e.g)
	}
	i.armExpiries()
}

// stopExpiries stops the expiry timer and forgets every deadline (Stop).
func (i *Interface) stopExpiries() {
	i.expSlot.stop()
	clear(i.expiries)
	i.expiries = i.expiries[:0]
	for _, g := range i.groups {
		g.expiresAt = time.Time{}
	}
}

// SourceState is one source record of a group.
type SourceState struct {
	Addr    netip.Addr
	Expires time.Time // zero: timer 0, i.e. excluded in EXCLUDE mode
}

// GroupState is a snapshot of one multicast address record (RFC 3810
// §7.2), used for display, for the daemon's forwarding state and for
// replication to the hot-backup peer.
type GroupState struct {
	Group         netip.Addr
	Mode          FilterMode
	Sources       []SourceState // sorted by address
	Expires       time.Time     // filter timer; zero in INCLUDE mode
	Compat        int           // 1 (MLDv1 compatibility mode, §8.3.2) or 2
	V1HostExpires time.Time     // Older Version Host Present timer; zero if not running
	LastReporter  netip.Addr
	Synced        bool // learned from the hot-backup peer, not from a local report
}

// Forwarding describes the forwarding state of g (RFC 3810 §7.3): in
// EXCLUDE mode (star) traffic from every source except exclude is
// forwarded; in INCLUDE mode only traffic from include.
func (g GroupState) Forwarding() (star bool, include, exclude []netip.Addr) {
	for _, s := range g.Sources {
		if g.Mode == Exclude && s.Expires.IsZero() {
			exclude = append(exclude, s.Addr)
		} else if g.Mode == Include && !s.Expires.IsZero() {
			include = append(include, s.Addr)
		}
	}
	return g.Mode == Exclude, include, exclude
}

// Rebase returns g with every running timer moved by to-from: the sync
// layer uses it to carry remaining times from the peer's clock to ours.
func (g GroupState) Rebase(from, to time.Time) GroupState {
	d := to.Sub(from)
	mv := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return t.Add(d)
	}
	g.Expires = mv(g.Expires)
	g.V1HostExpires = mv(g.V1HostExpires)
	g.Sources = slices.Clone(g.Sources)
	for k := range g.Sources {
		g.Sources[k].Expires = mv(g.Sources[k].Expires)
	}
	return g
}

func (i *Interface) snapshot(g *group) GroupState {
	st := GroupState{
		Group:         g.addr,
		Mode:          g.mode,
		Compat:        2,
		V1HostExpires: g.v1Host,
		LastReporter:  g.lastReporter,
		Synced:        g.synced,
	}
	if g.mode == Exclude {
		st.Expires = g.timer
	}
	if i.cfg.Version == 1 || !g.v1Host.IsZero() {
		st.Compat = 1
	}
	st.Sources = make([]SourceState, 0, len(g.sources))
	for a, s := range g.sources {
		st.Sources = append(st.Sources, SourceState{Addr: a, Expires: s.timer})
	}
	slices.SortFunc(st.Sources, func(a, b SourceState) int { return a.Addr.Compare(b.Addr) })
	return st
}

// Groups returns a snapshot of every group, sorted by address.
func (i *Interface) Groups() []GroupState {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.collect(func(*group) bool { return true })
}

// Group returns the state of one group, if the interface has it.
func (i *Interface) Group(addr netip.Addr) (GroupState, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	g := i.groups[addr]
	if g == nil {
		return GroupState{}, false
	}
	return i.snapshot(g), true
}

// Export returns the locally learned groups (not Synced), sorted by
// address: what this router replicates to its hot-backup peer.
func (i *Interface) Export() []GroupState {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.collect(func(g *group) bool { return !g.synced })
}

func (i *Interface) collect(keep func(*group) bool) []GroupState {
	out := make([]GroupState, 0, len(i.groups))
	for _, g := range i.groups {
		if keep(g) {
			out = append(out, i.snapshot(g))
		}
	}
	slices.SortFunc(out, func(a, b GroupState) int { return a.Group.Compare(b.Group) })
	return out
}
