package mld

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"
)

// ErrLocalEntry is returned by Upsert when the group was learned from a
// local report: local state wins over the peer's.
var ErrLocalEntry = errors.New("mld: group has locally learned state")

// Upsert installs a group replicated from the hot-backup peer, marked
// Synced. Times are absolute on this router's clock (see
// GroupState.Rebase); timers restart from them and expire normally, already
// expired ones at once. A locally learned group is left alone
// (ErrLocalEntry). OnChange fires as for local changes.
func (i *Interface) Upsert(st GroupState) error {
	i.mu.Lock()
	defer func() { i.commit(); i.unlock() }()
	_, err := i.upsert(st)
	return err
}

// upsert is Upsert with the mutex held; it returns the group's state now
// (nil if it has none).
func (i *Interface) upsert(st GroupState) (*group, error) {
	if reason, bad := groupDropReason(st.Group); bad {
		return nil, fmt.Errorf("upsert %v: %v: %w", st.Group, reason, ErrNotMulticast)
	}
	g := i.groups[st.Group]
	if g != nil && !g.synced {
		return g, fmt.Errorf("upsert %v: %w", st.Group, ErrLocalEntry)
	}
	ng := i.slabGroup(st.Group)
	ng.mode = st.Mode
	ng.synced = true
	ng.lastReporter = st.LastReporter
	ng.v1Host = st.V1HostExpires
	if st.Mode == Exclude {
		ng.timer = st.Expires
		if ng.timer.IsZero() { // EXCLUDE needs a running filter timer
			ng.timer = i.clock.Now()
		}
	}
	for _, s := range st.Sources {
		if st.Mode == Include && s.Expires.IsZero() {
			continue
		}
		ng.put(s.Addr, &source{timer: s.Expires})
	}
	if g == nil {
		if ng.empty() {
			return nil, nil
		}
		if i.cfg.MaxGroups > 0 && len(i.groups) >= i.cfg.MaxGroups {
			i.stats.Drops[DropMaxGroups]++
			return nil, fmt.Errorf("upsert %v: %d groups: %w", st.Group, len(i.groups), ErrMaxGroups)
		}
	} else {
		g.stopExpiry()
		g.rexmit.stop()
		ng.published = g.published // its deletion must be delivered
	}
	i.groups[st.Group] = ng
	i.touch(ng)
	return ng, nil
}

// slabGroup is newGroup, taken from i.slab while an Import provides one.
func (i *Interface) slabGroup(addr netip.Addr) *group {
	if len(i.slab) == 0 {
		return newGroup(addr)
	}
	g := &i.slab[0]
	i.slab = i.slab[1:]
	g.addr = addr
	return g
}

// ErrMaxGroups is returned by Upsert and Import when MaxGroups is reached.
var ErrMaxGroups = errors.New("mld: too many groups")

// Import replaces the Synced groups with states (a bulk transfer from the
// peer): each is upserted and Synced groups missing from states are
// deleted. Locally learned groups are kept. The errors of refused entries
// are joined.
func (i *Interface) Import(states []GroupState) error {
	return i.ImportFunc(len(states), func(k int) GroupState { return states[k] })
}

// ImportFunc is Import of the n states state(0) ... state(n-1), for a
// caller that converts them from its own form: no slice of all of them is
// made. state is called with the interface's mutex held and must not call
// back into the Interface.
func (i *Interface) ImportFunc(n int, state func(int) GroupState) error {
	i.mu.Lock()
	defer func() { i.commit(); i.unlock() }()
	// Groups this import keeps carry its generation (no set of 100 000
	// addresses to build).
	i.importGen++
	i.reserve(n)
	var errs []error
	for k := range n {
		if len(i.slab) == 0 && n >= 1024 {
			// Groups in blocks (of up to 4096: a block lives while any of
			// its groups does), not one allocation each.
			i.slab = make([]group, min(n-k, 4096))
		}
		g, err := i.upsert(state(k))
		if err != nil && !errors.Is(err, ErrLocalEntry) {
			errs = append(errs, err)
		}
		if g != nil {
			g.importGen = i.importGen
		}
	}
	clear(i.slab) // the rest of the last block (slabGroup expects zero groups)
	i.slab = nil
	for _, g := range i.groups {
		if g.synced && g.importGen != i.importGen {
			i.deleteGroup(g)
		}
	}
	return errors.Join(errs...)
}

// reserve makes room for n more groups at once when they are many: a map
// grown one group at a time rehashes all of them about log2(n) times.
func (i *Interface) reserve(n int) {
	if n < 1024 {
		return
	}
	i.dirty = slices.Grow(i.dirty, n)
	i.expiries = slices.Grow(i.expiries, n)
	if n <= len(i.groups) {
		return
	}
	m := make(map[netip.Addr]*group, n+len(i.groups)/4)
	maps.Copy(m, i.groups)
	i.groups = m
}

// Delete removes a Synced group (the peer's entry went away). It reports
// whether it did; locally learned groups are not deleted.
func (i *Interface) Delete(group netip.Addr) bool {
	i.mu.Lock()
	defer func() { i.commit(); i.unlock() }()
	g := i.groups[group]
	if g == nil || !g.synced {
		return false
	}
	i.deleteGroup(g)
	return true
}

// Now returns the interface clock's time, for GroupState.Rebase.
func (i *Interface) Now() time.Time { return i.clock.Now() }

// DisownAll marks every group Synced: the hot-backup peer has become the
// authority (this router went Backup), so its next batch replaces or
// deletes these entries instead of being refused as local (ErrLocalEntry).
// Timers keep running; a local report makes a group local again.
func (i *Interface) DisownAll() {
	i.mu.Lock()
	defer func() { i.commit(); i.unlock() }()
	for _, g := range i.groups {
		if !g.synced {
			g.synced = true
			i.touch(g)
		}
	}
}
