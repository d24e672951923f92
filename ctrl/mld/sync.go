package mld

import (
	"errors"
	"fmt"
	"net/netip"
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
	return i.upsert(st)
}

func (i *Interface) upsert(st GroupState) error {
	if reason, bad := groupDropReason(st.Group); bad {
		return fmt.Errorf("upsert %v: %v: %w", st.Group, reason, ErrNotMulticast)
	}
	g := i.groups[st.Group]
	if g != nil && !g.synced {
		return fmt.Errorf("upsert %v: %w", st.Group, ErrLocalEntry)
	}
	ng := newGroup(st.Group)
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
			return nil
		}
		if i.cfg.MaxGroups > 0 && len(i.groups) >= i.cfg.MaxGroups {
			i.stats.Drops[DropMaxGroups]++
			return fmt.Errorf("upsert %v: %d groups: %w", st.Group, len(i.groups), ErrMaxGroups)
		}
	} else {
		g.expiry.stop()
		g.rexmit.stop()
	}
	i.groups[st.Group] = ng
	i.touch(ng)
	return nil
}

// ErrMaxGroups is returned by Upsert and Import when MaxGroups is reached.
var ErrMaxGroups = errors.New("mld: too many groups")

// Import replaces the Synced groups with states (a bulk transfer from the
// peer): each is upserted and Synced groups missing from states are
// deleted. Locally learned groups are kept. The errors of refused entries
// are joined.
func (i *Interface) Import(states []GroupState) error {
	i.mu.Lock()
	defer func() { i.commit(); i.unlock() }()
	// Groups this import keeps carry its generation (no set of 100 000
	// addresses to build).
	i.importGen++
	var errs []error
	for _, st := range states {
		if err := i.upsert(st); err != nil && !errors.Is(err, ErrLocalEntry) {
			errs = append(errs, err)
		}
		if g := i.groups[st.Group]; g != nil {
			g.importGen = i.importGen
		}
	}
	for _, g := range i.groups {
		if g.synced && g.importGen != i.importGen {
			i.deleteGroup(g)
		}
	}
	return errors.Join(errs...)
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
