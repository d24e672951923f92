// Package mroute turns multicast membership into forwarding routes. MLD (or
// RBS, for synced entries) says which interfaces want which (source,
// group); static routes come from the configuration; the Table computes the
// union and applies only the difference to the dataplane, in batches.
//
// Membership and routes are kept apart on purpose: RBS replicates
// membership, and the standby derives the same routes with the same
// function (Derive).
package mroute

import (
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"

	"github.com/hotcast/hotcast/bpf"
)

// Dataplane is the part of bpf.Dataplane the table drives. Neither method
// keeps its slice after it returns: the table reuses them.
type Dataplane interface {
	ReplaceRoutes([]bpf.Route) error
	DeleteRoutes([]bpf.RouteKey) error
}

// Membership is one interface's wish for one group (RFC 3810 7.2 router
// state reduced to forwarding): Star (EXCLUDE mode) forwards every source
// but Exclude; otherwise only the Include sources.
type Membership struct {
	Star    bool
	Include []netip.Addr
	Exclude []netip.Addr
	Synced  bool // learned through RBS, not from this router's hosts
}

// StaticRoute is a configured route: (*,G) when Source is invalid.
type StaticRoute struct {
	Source, Group netip.Addr
	IIf           int
	OIfs          []int
}

// Table holds the inputs and what was last applied. Both are kept per
// group in small sorted slices (a group typically has one interface and one
// route), not per-group maps: a standby importing 100 000 groups must not
// allocate 200 000 maps.
type Table struct {
	log *slog.Logger
	dp  Dataplane

	mu       sync.Mutex
	upstream int
	static   map[netip.Addr][]StaticRoute // by group
	members  map[netip.Addr][]member      // by group, sorted by oif
	applied  map[netip.Addr][]bpf.Route   // by group, sorted by source ((*,G) first)

	// protocol: a routing protocol (PIM) owns the learned routes: the
	// routes of a group are its static routes and proto's, and
	// memberships are kept (for display and the protocol) but derive
	// nothing. Set once, before any input.
	protocol bool
	proto    map[netip.Addr][]bpf.Route // by group, sorted by source

	// Scratch of apply, kept between calls up to keepScratch entries: a
	// batch backup applies 100 000 groups in runs of mld.MaxUpdateRun,
	// and one buffer for all the runs is fresh memory a cold standby
	// does not pay for seven times (bench/rbs.md).
	putBuf  []bpf.Route
	todoBuf []applyNext
}

// keepScratch is the most entries of apply's scratch the table keeps
// (about 1.5 MiB each, at mld.MaxUpdateRun); a larger apply (a resync of
// every group) drops its buffers after use.
const keepScratch = 1 << 15

// applyNext is one group apply changes: its routes wanted and the applied
// routes it deletes.
type applyNext struct {
	group netip.Addr
	want  []bpf.Route
	gone  []bpf.Route
}

// member is one interface's membership in a group.
type member struct {
	oif int
	m   Membership
}

// Change is one interface's new membership in a group; a nil M removes it.
type Change struct {
	Group netip.Addr
	M     *Membership
}

// New returns a table applying to dp; upstream is the incoming interface of
// learned routes.
func New(dp Dataplane, upstream int, log *slog.Logger) *Table {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Table{
		log:      log,
		dp:       dp,
		upstream: upstream,
		static:   map[netip.Addr][]StaticRoute{},
		members:  map[netip.Addr][]member{},
		applied:  map[netip.Addr][]bpf.Route{},
	}
}

// UseProtocol hands the learned routes to a routing protocol: from now on
// the routes of a group are its static routes (which win on the same key)
// and those given to SetProtocolRoutes; memberships derive nothing (the
// protocol counts them in its own routes: PIM's local receivers). Call it
// before any other input.
func (t *Table) UseProtocol() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.protocol = true
	t.proto = map[netip.Addr][]bpf.Route{}
}

// SetProtocolRoutes replaces the protocol's routes of each group in rs (a
// group with no routes loses them) and applies the difference in one
// batch. Every route must be of the group it is filed under.
func (t *Table) SetProtocolRoutes(rs map[netip.Addr][]bpf.Route) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.protocol {
		return fmt.Errorf("protocol routes: the table has no routing protocol")
	}
	groups := make([]netip.Addr, 0, len(rs))
	for g, list := range rs {
		for _, r := range list {
			if r.Group != g {
				return fmt.Errorf("protocol route %s filed under group %s", r.RouteKey, g)
			}
		}
		groups = append(groups, g)
	}
	for g, list := range rs {
		if len(list) == 0 {
			delete(t.proto, g)
			continue
		}
		list = slices.Clone(list)
		slices.SortFunc(list, func(a, b bpf.Route) int { return a.Source.Compare(b.Source) })
		t.proto[g] = list
	}
	return t.applyGroups(groups)
}

// protoRoutes are a group's routes in protocol mode: the static ones,
// then the protocol's on other keys.
func (t *Table) protoRoutes(g netip.Addr) []bpf.Route {
	st := t.static[g]
	if len(st) == 0 {
		return t.proto[g]
	}
	out := derive(g, t.upstream, st, nil)
	for _, r := range t.proto[g] {
		if !slices.ContainsFunc(out, func(s bpf.Route) bool { return s.Source == r.Source }) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b bpf.Route) int { return a.Source.Compare(b.Source) })
	return out
}

// Adopt records routes already in the dataplane (a restarted daemon), so
// the next changes are computed against them instead of flushing.
func (t *Table) Adopt(rs []bpf.Route) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range rs {
		cur := t.applied[r.Group]
		i, found := slices.BinarySearchFunc(cur, r.Source, routeBySource)
		if found {
			cur[i] = r
		} else {
			cur = slices.Insert(cur, i, r)
		}
		t.applied[r.Group] = cur
	}
}

func routeBySource(r bpf.Route, s netip.Addr) int { return r.Source.Compare(s) }

// SetStatic replaces the static routes and applies the difference.
func (t *Table) SetStatic(rs []StaticRoute) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	groups := map[netip.Addr]bool{}
	for g := range t.static {
		groups[g] = true
	}
	t.static = map[netip.Addr][]StaticRoute{}
	for _, r := range rs {
		t.static[r.Group] = append(t.static[r.Group], r)
		groups[r.Group] = true
	}
	return t.applyGroups(slices.Collect(maps.Keys(groups)))
}

// SetMembership sets (or with m nil, removes) one interface's membership in
// a group and applies the resulting routes at once.
func (t *Table) SetMembership(group netip.Addr, oif int, m *Membership) error {
	return t.SetMemberships(oif, []Change{{Group: group, M: m}})
}

// SetMemberships applies a batch of one interface's changes (everything MLD
// changed in one step, or an RBS batch backup) as one dataplane update.
func (t *Table) SetMemberships(oif int, cs []Change) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.members = reserve(t.members, len(cs))
	groups := make([]netip.Addr, 0, len(cs))
	for _, c := range cs {
		t.setMembership(c.Group, oif, c.M)
		groups = append(groups, c.Group)
	}
	return t.applyGroups(groups)
}

// reserve makes room in m for n more groups at once when they are many (a
// batch backup): a map grown one group at a time rehashes them all about
// log2(n) times.
func reserve[V any](m map[netip.Addr]V, n int) map[netip.Addr]V {
	if n < 1024 || n <= len(m) {
		return m
	}
	r := make(map[netip.Addr]V, n+len(m)/4)
	maps.Copy(r, m)
	return r
}

func (t *Table) setMembership(group netip.Addr, oif int, m *Membership) {
	ms := t.members[group]
	i, found := slices.BinarySearchFunc(ms, oif, func(e member, o int) int { return e.oif - o })
	switch {
	case m == nil && found:
		ms = slices.Delete(ms, i, i+1)
		if len(ms) == 0 {
			delete(t.members, group)
			return
		}
	case m == nil:
		return
	case found:
		ms[i].m = *m
	default:
		ms = slices.Insert(ms, i, member{oif, *m})
	}
	t.members[group] = ms
}

// ReplaceInterface replaces every membership of oif with ms in one batch
// (an interface going away with ms nil).
func (t *Table) ReplaceInterface(oif int, ms map[netip.Addr]Membership) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var groups []netip.Addr
	for g, byIf := range t.members {
		if slices.ContainsFunc(byIf, func(e member) bool { return e.oif == oif }) {
			if _, keep := ms[g]; !keep {
				t.setMembership(g, oif, nil)
				groups = append(groups, g)
			}
		}
	}
	for g, m := range ms {
		t.setMembership(g, oif, &m)
		groups = append(groups, g)
	}
	return t.applyGroups(groups)
}

// Prune deletes applied routes of groups the table has no input for (left
// over from before a restart), after the caller's grace period.
func (t *Table) Prune() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var groups []netip.Addr
	for g := range t.applied {
		_, m := t.members[g]
		if t.protocol {
			_, m = t.proto[g]
		}
		if !m {
			if _, ok := t.static[g]; !ok {
				groups = append(groups, g)
			}
		}
	}
	return t.applyGroups(groups)
}

// Routes returns the routes the table last applied, sorted.
func (t *Table) Routes() []bpf.Route {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []bpf.Route
	for _, rs := range t.applied {
		out = append(out, rs...)
	}
	sortRoutes(out)
	return out
}

func sortRoutes(rs []bpf.Route) {
	slices.SortFunc(rs, func(a, b bpf.Route) int {
		if c := a.Group.Compare(b.Group); c != 0 {
			return c
		}
		return a.Source.Compare(b.Source)
	})
}

// SetUpstream makes ifindex the incoming interface of learned routes
// (multicast.upstream.interface changed): every group is derived again
// with it and the routes that change are rewritten in one batch. Static
// routes keep their own incoming interface. Routes adopted from before a
// restart that nothing has asked for again (waiting for Prune) move to
// the new upstream as well, unless they were static. If the dataplane
// refuses the batch, the table keeps the old upstream and returns the
// error.
func (t *Table) SetUpstream(ifindex int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.upstream
	if ifindex == old {
		return nil
	}
	if t.protocol {
		return fmt.Errorf("upstream %d: the routing protocol finds the incoming interfaces", ifindex)
	}
	t.upstream = ifindex
	groups := make([]netip.Addr, 0, len(t.applied)+len(t.members))
	for g := range t.applied {
		groups = append(groups, g)
	}
	for g := range t.members {
		if _, ok := t.applied[g]; !ok {
			groups = append(groups, g)
		}
	}
	for g := range t.static {
		_, a := t.applied[g]
		_, m := t.members[g]
		if !a && !m {
			groups = append(groups, g)
		}
	}
	putErr, delErr := t.apply(groups, func(g netip.Addr) []bpf.Route {
		if t.members[g] != nil || t.static[g] != nil {
			return derive(g, ifindex, t.static[g], t.members[g])
		}
		// Adopted, waiting for Prune: keep it, from the new upstream.
		rs := slices.Clone(t.applied[g])
		for i := range rs {
			if rs[i].IIf == old && rs[i].Flags&bpf.RouteStatic == 0 {
				rs[i].IIf = ifindex
			}
		}
		return rs
	})
	if putErr != nil {
		t.upstream = old
		return fmt.Errorf("upstream %d: %w", ifindex, putErr)
	}
	if delErr != nil {
		return fmt.Errorf("upstream %d: %w", ifindex, delErr)
	}
	return nil
}

// applyGroups recomputes the routes of the given groups and applies the
// difference: one batch of replaces, one batch of deletes. The record of
// what is applied changes only with the dataplane.
func (t *Table) applyGroups(groups []netip.Addr) error {
	var slab routeSlab
	putErr, delErr := t.apply(groups, func(g netip.Addr) []bpf.Route {
		if t.protocol {
			return t.protoRoutes(g)
		}
		if r, ok := slab.star(g, t.upstream, t.static[g], t.members[g], len(groups)); ok {
			return r
		}
		return derive(g, t.upstream, t.static[g], t.members[g])
	})
	if putErr != nil {
		return putErr
	}
	return delErr
}

// apply is applyGroups with the wanted routes of a group (sorted by
// source) given by routes. A failed replace batch applies nothing (putErr);
// routes a failed delete batch left stay on record (delErr).
func (t *Table) apply(groups []netip.Addr, routes func(netip.Addr) []bpf.Route) (putErr, delErr error) {
	if len(groups) > 1 && !slices.IsSortedFunc(groups, netip.Addr.Compare) {
		groups = slices.Clone(groups)
		slices.SortFunc(groups, netip.Addr.Compare)
	}
	groups = slices.Compact(groups) // in place: only adjacent duplicates move
	t.applied = reserve(t.applied, len(groups))
	put := slices.Grow(t.putBuf[:0], len(groups))
	todo := slices.Grow(t.todoBuf[:0], len(groups))
	defer func() {
		// Keep the buffers, without what they point at.
		clear(put)
		clear(todo)
		t.putBuf, t.todoBuf = nil, nil
		if cap(put) <= keepScratch {
			t.putBuf = put[:0]
		}
		if cap(todo) <= keepScratch {
			t.todoBuf = todo[:0]
		}
	}()
	var del []bpf.RouteKey
	for _, g := range groups {
		want := routes(g)
		cur := t.applied[g]
		n := applyNext{group: g, want: want}
		changed := len(want) != len(cur)
		// Both sorted by source: one merge walk.
		i, j := 0, 0
		for i < len(want) || j < len(cur) {
			var c int
			switch {
			case i == len(want):
				c = 1
			case j == len(cur):
				c = -1
			default:
				c = want[i].Source.Compare(cur[j].Source)
			}
			switch {
			case c < 0:
				put = append(put, want[i])
				changed = true
				i++
			case c > 0:
				del = append(del, cur[j].RouteKey)
				n.gone = append(n.gone, cur[j])
				changed = true
				j++
			default:
				if !sameRoute(want[i], cur[j]) {
					put = append(put, want[i])
					changed = true
				}
				i++
				j++
			}
		}
		if changed {
			todo = append(todo, n)
		}
	}
	if len(put) > 0 {
		if err := t.dp.ReplaceRoutes(put); err != nil {
			return fmt.Errorf("apply %d routes: %w", len(put), err), nil
		}
	}
	var derr error
	if len(del) > 0 {
		if derr = t.dp.DeleteRoutes(del); derr != nil {
			derr = fmt.Errorf("delete %d routes: %w", len(del), derr)
		}
	}
	for _, n := range todo {
		rs := n.want
		if derr != nil && len(n.gone) > 0 {
			// Still in the dataplane: keep them on record.
			rs = append(slices.Clone(rs), n.gone...)
			slices.SortFunc(rs, func(a, b bpf.Route) int { return a.Source.Compare(b.Source) })
		}
		if len(rs) == 0 {
			delete(t.applied, n.group)
		} else {
			t.applied[n.group] = rs
		}
	}
	if len(put)+len(del) > 0 {
		t.log.Debug("routes applied", "replaced", len(put), "deleted", len(del))
	}
	return nil, derr
}

func sameRoute(a, b bpf.Route) bool {
	return a.IIf == b.IIf && a.Flags == b.Flags && slices.Equal(a.OIfs, b.OIfs)
}

// Derive computes the routes of one group from its static routes and its
// per-interface memberships:
//   - (*,G) toward every interface that wants all sources (EXCLUDE mode,
//     or a static (*,G));
//   - (S,G) for every source named anywhere whose set of interfaces differs
//     from the (*,G) one: the (*,G) interfaces that do not exclude S, plus
//     the interfaces that include S. An (S,G) with no interface is kept
//     only when a (*,G) exists, to block S.
//
// Outgoing interfaces are sorted; the incoming interface is the static
// route's when there is one, else upstream. Routes are flagged static when
// a static route contributes and synced when every learned contributor is
// synced.
func Derive(group netip.Addr, upstream int, static []StaticRoute, members map[int]Membership) []bpf.Route {
	ms := make([]member, 0, len(members))
	for oif, m := range members {
		ms = append(ms, member{oif, m})
	}
	slices.SortFunc(ms, func(a, b member) int { return a.oif - b.oif })
	return derive(group, upstream, static, ms)
}

// derive is Derive on the table's form of the memberships (sorted by oif).
func derive(group netip.Addr, upstream int, static []StaticRoute, members []member) []bpf.Route {
	if r, ok := deriveStar(group, upstream, static, members); ok {
		return r
	}
	type star struct {
		oifs    map[int]bool
		exclude map[int]map[netip.Addr]bool
	}
	st := star{oifs: map[int]bool{}, exclude: map[int]map[netip.Addr]bool{}}
	include := map[netip.Addr]map[int]bool{} // S -> oifs including it
	sources := map[netip.Addr]bool{}
	staticKeys := map[bpf.RouteKey]int{} // key -> static incoming
	learned, synced := false, true

	for _, r := range static {
		k := bpf.RouteKey{Source: r.Source, Group: group}
		if !r.Source.IsValid() || r.Source.IsUnspecified() {
			k.Source = netip.IPv6Unspecified()
			for _, o := range r.OIfs {
				st.oifs[o] = true
				st.exclude[o] = nil // a static (*,G) excludes nothing
			}
		} else {
			sources[r.Source] = true
			if include[r.Source] == nil {
				include[r.Source] = map[int]bool{}
			}
			for _, o := range r.OIfs {
				include[r.Source][o] = true
			}
		}
		staticKeys[k] = r.IIf
	}
	for _, e := range members {
		oif, m := e.oif, e.m
		learned = true
		synced = synced && m.Synced
		if m.Star {
			ex := map[netip.Addr]bool{}
			for _, s := range m.Exclude {
				ex[s] = true
				sources[s] = true
			}
			if prev, ok := st.exclude[oif]; ok && st.oifs[oif] {
				// Already star (static): the union excludes nothing more.
				if prev == nil {
					ex = nil
				}
			}
			st.oifs[oif] = true
			st.exclude[oif] = ex
		}
		for _, s := range m.Include {
			sources[s] = true
			if include[s] == nil {
				include[s] = map[int]bool{}
			}
			include[s][oif] = true
		}
	}

	flags := func(k bpf.RouteKey) (bpf.RouteFlags, int) {
		var f bpf.RouteFlags
		iif := upstream
		if in, ok := staticKeys[k]; ok {
			f |= bpf.RouteStatic
			iif = in
		} else if learned && synced {
			f |= bpf.RouteSynced
		}
		return f, iif
	}
	var out []bpf.Route
	starOIfs := sortedKeys(st.oifs)
	if len(starOIfs) > 0 {
		k := bpf.RouteKey{Source: netip.IPv6Unspecified(), Group: group}
		f, iif := flags(k)
		out = append(out, bpf.Route{RouteKey: k, IIf: iif, OIfs: starOIfs, Flags: f})
	}
	for _, s := range sortedAddrs(sources) {
		set := map[int]bool{}
		for _, o := range starOIfs {
			if !st.exclude[o][s] {
				set[o] = true
			}
		}
		for o := range include[s] {
			set[o] = true
		}
		oifs := sortedKeys(set)
		k := bpf.RouteKey{Source: s, Group: group}
		_, isStatic := staticKeys[k]
		if !isStatic && slices.Equal(oifs, starOIfs) && len(starOIfs) > 0 {
			continue // the (*,G) route already says it
		}
		if len(oifs) == 0 && len(starOIfs) == 0 && !isStatic {
			continue
		}
		f, iif := flags(k)
		out = append(out, bpf.Route{RouteKey: k, IIf: iif, OIfs: oifs, Flags: f})
	}
	return out
}

// deriveStar is the common case without maps: no static route and every
// interface in EXCLUDE mode excluding nothing gives one (*,G) route.
func deriveStar(group netip.Addr, upstream int, static []StaticRoute, members []member) ([]bpf.Route, bool) {
	if len(static) > 0 || len(members) == 0 {
		return nil, false
	}
	synced := true
	for _, e := range members {
		if !e.m.Star || len(e.m.Exclude) > 0 || len(e.m.Include) > 0 {
			return nil, false
		}
		synced = synced && e.m.Synced
	}
	oifs := make([]int, len(members))
	for i, e := range members {
		oifs[i] = e.oif // members are sorted by oif
	}
	var f bpf.RouteFlags
	if synced {
		f = bpf.RouteSynced
	}
	return []bpf.Route{{RouteKey: bpf.RouteKey{Source: netip.IPv6Unspecified(), Group: group}, IIf: upstream, OIfs: oifs, Flags: f}}, true
}

// routeSlab hands out the (*,G) routes of one apply from a few large
// allocations instead of two small ones per group (the route and its
// interface list): a 100 000-group batch is 200 000 objects less for the
// allocator and the GC. The routes keep the slab alive while any of them
// is applied; nothing appends to or writes into an applied route.
type routeSlab struct {
	routes []bpf.Route
	oifs   []int
	last   []int // the previous route's interfaces, shared when equal
}

// star is deriveStar with the route (and its interfaces) from the slab;
// hint is how many groups the apply has.
func (s *routeSlab) star(group netip.Addr, upstream int, static []StaticRoute, members []member, hint int) ([]bpf.Route, bool) {
	if len(static) > 0 || len(members) == 0 {
		return nil, false
	}
	synced := true
	for _, e := range members {
		if !e.m.Star || len(e.m.Exclude) > 0 || len(e.m.Include) > 0 {
			return nil, false
		}
		synced = synced && e.m.Synced
	}
	if hint < 64 {
		return deriveStar(group, upstream, static, members)
	}
	oifs := s.last
	if !slices.EqualFunc(oifs, members, func(o int, e member) bool { return o == e.oif }) {
		if cap(s.oifs)-len(s.oifs) < len(members) {
			s.oifs = make([]int, 0, max(len(members), min(hint, 4096)))
		}
		n := len(s.oifs)
		for _, e := range members {
			s.oifs = append(s.oifs, e.oif) // members are sorted by oif
		}
		oifs = s.oifs[n:len(s.oifs):len(s.oifs)]
		s.last = oifs
	}
	var f bpf.RouteFlags
	if synced {
		f = bpf.RouteSynced
	}
	if len(s.routes) == cap(s.routes) {
		s.routes = make([]bpf.Route, 0, min(hint, 16384))
	}
	s.routes = append(s.routes, bpf.Route{RouteKey: bpf.RouteKey{Source: netip.IPv6Unspecified(), Group: group}, IIf: upstream, OIfs: oifs, Flags: f})
	n := len(s.routes)
	return s.routes[n-1 : n : n], true
}

func sortedKeys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
