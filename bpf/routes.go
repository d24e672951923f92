package bpf

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// routing is what writing routes needs beside the kernel's maps, under one
// lock: a write takes outgoing sets and counter slots together, so the
// routes map and the allocators agree.
//
// The routes are only in the routes map: reads (Routes, Route) go there.
// What routing keeps per route is what it allocated for it, its counter
// slot and its reference on an outgoing set, so that replacing or deleting
// the route gives them back without asking the kernel first (a lookup
// would be a second system call on every join and leave). It is rebuilt
// from the routes map on adoption.
type routing struct {
	mu    sync.Mutex
	held  map[ingressHcRouteKey]holding // by route
	sets  setAlloc
	stats slots
	clone map[int]bool // clone-mode egress interfaces (ifaces map)

	// ReplaceRoutes' scratch, kept between calls up to keepScratch
	// routes: a batch backup writes 100 000 routes in runs of 16 384,
	// and fresh memory for every run is what a cold standby pays for
	// most (bench/rbs.md).
	keys []ingressHcRouteKey
	vals []ingressHcRoute
	next map[ingressHcRouteKey]pendingRoute
}

// keepScratch is the most routes of ReplaceRoutes' scratch kept for the
// next call (about 3 MiB); a larger call drops its scratch after use.
const keepScratch = 1 << 15

// pendingRoute is a route of a ReplaceRoutes call: what it will hold, and
// its index in the call's keys and values.
type pendingRoute struct {
	holding
	i int
}

// holding is what a route in the map holds.
type holding struct {
	set  *oifSet // nil: none
	slot uint32  // in route_stats
}

func newRouting(m *sharedMaps, egress *ebpf.Program, inner *ebpf.MapSpec) *routing {
	return &routing{
		held:  map[ingressHcRouteKey]holding{},
		sets:  newSetAlloc(m, egress, inner),
		stats: slots{counters: m.RouteStats},
		clone: map[int]bool{},
	}
}

func (rt *routing) setClone(ifindex int, on bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if on {
		rt.clone[ifindex] = true
	} else {
		delete(rt.clone, ifindex)
	}
}

// slots allocates the routes' counter slots in route_stats, one per route.
type slots struct {
	counters *ebpf.Map // route_stats
	free     []uint32
	next     uint32
}

func (s *slots) inUse() int { return int(s.next) - len(s.free) }

func (s *slots) alloc() (uint32, error) {
	if n := len(s.free); n > 0 {
		idx := s.free[n-1]
		s.free = s.free[:n-1]
		// A reused slot may hold an old route's counts.
		zero := make([]ingressHcCounter, ebpf.MustPossibleCPU())
		if err := s.counters.Put(idx, zero); err != nil {
			s.free = append(s.free, idx)
			return 0, fmt.Errorf("reset counters %d: %w", idx, err)
		}
		return idx, nil
	}
	if s.next >= maxRoutes {
		return 0, fmt.Errorf("routes exhausted (%d)", maxRoutes)
	}
	idx := s.next
	s.next++
	return idx, nil
}

func (s *slots) release(idx ...uint32) { s.free = append(s.free, idx...) }

// ReplaceRoutes adds or replaces routes in one batch map update. A route's
// counters survive a replace. When a key appears twice, the last one wins.
func (d *Dataplane) ReplaceRoutes(rs []Route) error {
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	rt := d.rt
	rt.mu.Lock()
	defer rt.mu.Unlock()

	keys := slices.Grow(rt.keys[:0], len(rs))
	vals := slices.Grow(rt.vals[:0], len(rs))
	next := rt.next
	if next == nil || len(rs) > keepScratch {
		next = make(map[ingressHcRouteKey]pendingRoute, len(rs))
	}
	defer func() {
		clear(next) // keeps its room; drops the sets it points at
		rt.keys, rt.vals = nil, nil
		if len(rs) <= keepScratch {
			rt.keys, rt.vals, rt.next = keys[:0], vals[:0], next
		}
	}()
	var fresh []uint32 // counter slots taken for new routes
	undo := func() {
		for _, n := range next {
			rt.sets.release(n.set)
		}
		rt.stats.release(fresh...)
	}
	for _, r := range rs {
		key := r.bpfKey()
		s, err := rt.sets.acquire(normalizeOIfs(r.OIfs))
		if err != nil {
			undo()
			return err
		}
		prev, dup := next[key]
		slot := prev.slot
		if dup {
			// The key came earlier in rs: this one wins, in its place.
			rt.sets.release(prev.set)
		} else if cur, exists := rt.held[key]; exists {
			slot = cur.slot
		} else {
			if slot, err = rt.stats.alloc(); err != nil {
				rt.sets.release(s)
				undo()
				return err
			}
			fresh = append(fresh, slot)
		}
		flags := r.Flags &^ routeClone
		if s != nil && slices.ContainsFunc(s.oifs, func(o int) bool { return rt.clone[o] }) {
			flags |= routeClone
		}
		val := ingressHcRoute{Iif: uint32(r.IIf), SetId: setID(s), StatsIdx: slot, Flags: uint32(flags)}
		p := pendingRoute{holding{set: s, slot: slot}, len(keys)}
		if dup {
			p.i = prev.i
			vals[p.i] = val
		} else {
			keys = append(keys, key)
			vals = append(vals, val)
		}
		next[key] = p
	}
	if len(keys) > 0 {
		if err := batchUpdate(d.maps.Routes, keys, vals); err != nil {
			undo()
			return fmt.Errorf("install %d routes: %w", len(keys), err)
		}
	}
	// The routes point at their new sets now: the old ones can go.
	if len(next) >= 1024 && len(next) > len(rt.held) {
		// A batch backup: room for all at once, not a rehash per doubling.
		held := make(map[ingressHcRouteKey]holding, len(rt.held)+len(next))
		maps.Copy(held, rt.held)
		rt.held = held
	}
	for k, p := range next {
		if cur, ok := rt.held[k]; ok {
			rt.sets.release(cur.set)
		}
		rt.held[k] = p.holding
	}
	return nil
}

// parallelFrom is the batch size from which batchUpdate splits the kernel's
// work between two CPUs: inserting a route costs the kernel about 1 µs
// (an element allocated per route: the map is BPF_F_NO_PREALLOC), a
// 100 000-route batch backup 100 ms on one CPU.
const parallelFrom = 8192

// batchUpdate writes keys[i] = vals[i] (keys distinct) with
// BPF_MAP_UPDATE_BATCH: one call, or one per half on two threads at once
// for a large batch on a machine with more than one CPU (the hash map's
// locks are per bucket).
func batchUpdate(m *ebpf.Map, keys []ingressHcRouteKey, vals []ingressHcRoute) error {
	if len(keys) < parallelFrom || runtime.NumCPU() < 2 {
		_, err := m.BatchUpdate(keys, vals, nil)
		return err
	}
	half := len(keys) / 2
	done := make(chan error, 1)
	go func() {
		_, err := m.BatchUpdate(keys[:half], vals[:half], nil)
		done <- err
	}()
	_, err := m.BatchUpdate(keys[half:], vals[half:], nil)
	return errors.Join(<-done, err)
}

// DeleteRoutes removes routes in one batch; unknown keys are ignored.
func (d *Dataplane) DeleteRoutes(keys []RouteKey) error {
	rt := d.rt
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var bkeys []ingressHcRouteKey
	var gone []holding
	seen := make(map[ingressHcRouteKey]bool, len(keys))
	for _, k := range keys {
		bk := k.bpfKey()
		h, ok := rt.held[bk]
		if !ok || seen[bk] {
			continue
		}
		seen[bk] = true
		bkeys = append(bkeys, bk)
		gone = append(gone, h)
	}
	if len(bkeys) == 0 {
		return nil
	}
	if _, err := d.maps.Routes.BatchDelete(bkeys, nil); err != nil {
		return fmt.Errorf("delete %d routes: %w", len(bkeys), err)
	}
	for i, k := range bkeys {
		delete(rt.held, k)
		rt.stats.release(gone[i].slot)
		rt.sets.release(gone[i].set)
	}
	return nil
}

// dumpChunk is the routes read per BPF_MAP_LOOKUP_BATCH: more than any hash
// bucket holds (else the kernel answers ENOSPC).
const dumpChunk = 4096

// dumpRoutes reads the whole routes map in batches. n is how many routes
// it holds (the caller holds rt.mu), or -1 when that is not known yet
// (adoption); a batch takes them all when they are few, so a small map
// costs one small read.
func dumpRoutes(m *ebpf.Map, n int) ([]ingressHcRouteKey, []ingressHcRoute, error) {
	chunk := dumpChunk
	if n >= 0 {
		chunk = min(dumpChunk, n+1)
	}
	keys := make([]ingressHcRouteKey, 0, max(n, 0)+chunk)
	vals := make([]ingressHcRoute, 0, cap(keys))
	var c ebpf.MapBatchCursor
	for {
		n := len(keys)
		keys = slices.Grow(keys, chunk)[:n+chunk]
		vals = slices.Grow(vals, chunk)[:n+chunk]
		got, err := m.BatchLookup(&c, keys[n:], vals[n:], nil)
		keys, vals = keys[:n+got], vals[:n+got]
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return keys, vals, nil
		}
		if errors.Is(err, unix.ENOSPC) && chunk < dumpChunk {
			// A bucket holds more than the batch: the map holds more
			// than n (written behind the allocator's back).
			chunk = dumpChunk
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read routes: %w", err)
		}
	}
}

// Routes returns every route in the routes map with its counters, sorted by
// group then source. The outgoing interfaces are those of the set it
// points at, as the kernel has them.
func (d *Dataplane) Routes() ([]RouteStats, error) {
	d.rt.mu.Lock()
	defer d.rt.mu.Unlock()
	keys, vals, err := dumpRoutes(d.maps.Routes, d.rt.stats.inUse())
	if err != nil {
		return nil, err
	}
	out := make([]RouteStats, 0, len(keys))
	oifs := map[uint32][]int{} // by set id: each read once
	var per []ingressHcCounter
	for i, k := range keys {
		r, err := d.route(k, vals[i], oifs)
		if err != nil {
			return nil, err
		}
		rs := RouteStats{Route: r}
		if err := d.maps.RouteStats.Lookup(vals[i].StatsIdx, &per); err != nil {
			return nil, fmt.Errorf("read counters of %s: %w", r.RouteKey, err)
		}
		for _, c := range per {
			rs.Packets += c.Packets
			rs.Bytes += c.Bytes
		}
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b RouteStats) int {
		if c := a.Group.Compare(b.Group); c != 0 {
			return c
		}
		return a.Source.Compare(b.Source)
	})
	return out, nil
}

// Route reads one route from the routes map, with the outgoing interfaces
// of the set it points at.
func (d *Dataplane) Route(k RouteKey) (Route, bool, error) {
	d.rt.mu.Lock()
	defer d.rt.mu.Unlock()
	var v ingressHcRoute
	bk := k.bpfKey()
	if err := d.maps.Routes.Lookup(bk, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return Route{}, false, nil
		}
		return Route{}, false, fmt.Errorf("read route %s: %w", k, err)
	}
	r, err := d.route(bk, v, nil)
	return r, err == nil, err
}

// Counters reads the packet and byte counters of the routes named by keys
// (summed over CPUs), without the routes' interfaces: what a control plane
// polls to see which routes carry traffic. A key with no route is left
// out of the answer.
func (d *Dataplane) Counters(keys []RouteKey) (map[RouteKey]Counter, error) {
	d.rt.mu.Lock()
	defer d.rt.mu.Unlock()
	out := make(map[RouteKey]Counter, len(keys))
	var per []ingressHcCounter
	for _, k := range keys {
		var v ingressHcRoute
		if err := d.maps.Routes.Lookup(k.bpfKey(), &v); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return nil, fmt.Errorf("read route %s: %w", k, err)
		}
		if err := d.maps.RouteStats.Lookup(v.StatsIdx, &per); err != nil {
			return nil, fmt.Errorf("read counters of %s: %w", k, err)
		}
		var c Counter
		for _, x := range per {
			c.Packets += x.Packets
			c.Bytes += x.Bytes
		}
		out[k.normalize()] = c
	}
	return out, nil
}

// route is a routes map entry as a Route; sets caches the sets' members
// (nil: no cache).
func (d *Dataplane) route(k ingressHcRouteKey, v ingressHcRoute, sets map[uint32][]int) (Route, error) {
	r := Route{RouteKey: keyFromBPF(k), IIf: int(v.Iif), Flags: RouteFlags(v.Flags) &^ routeClone}
	if v.SetId == 0 {
		return r, nil
	}
	oifs, ok := sets[v.SetId]
	if !ok {
		var err error
		if oifs, err = d.rt.sets.read(v.SetId); err != nil {
			return Route{}, fmt.Errorf("route %s: %w", r.RouteKey, err)
		}
		if sets != nil {
			sets[v.SetId] = oifs
		}
	}
	r.OIfs = slices.Clone(oifs)
	return r, nil
}

// MaxRoutes is the capacity of the routes map (HC_MAX_ROUTES): a batch
// that would take it beyond is refused whole.
const MaxRoutes = maxRoutes

// RoutesMemory is the kernel memory of the routes map and of its counters
// (route_stats), in bytes, as the kernel accounts it (the memlock line
// of the maps' fdinfo).
func (d *Dataplane) RoutesMemory() (routes, stats int64, err error) {
	if routes, err = mapMemlock(d.maps.Routes); err != nil {
		return 0, 0, err
	}
	if stats, err = mapMemlock(d.maps.RouteStats); err != nil {
		return 0, 0, err
	}
	return routes, stats, nil
}

func mapMemlock(m *ebpf.Map) (int64, error) {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(m.FD()))
	if err != nil {
		return 0, fmt.Errorf("map memory: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "memlock:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("map memory: %q: %w", line, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("map memory: no memlock in fdinfo of fd %d", m.FD())
}
