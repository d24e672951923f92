// Package mldbackup converts between MLD router state (ctrl/mld) and the
// entries the remote backup service replicates (sync/rbs). Times travel as
// remaining milliseconds, so the two routers' clocks need not agree.
package mldbackup

import (
	"time"

	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/sync/rbs"
)

// remaining converts an absolute timer to milliseconds left: 0 for a
// stopped timer (the zero time), at least 1 for a running one, so that a
// timer about to fire is not mistaken for a stopped one.
func remaining(now, t time.Time) uint32 {
	if t.IsZero() {
		return 0
	}
	d := t.Sub(now).Milliseconds()
	return uint32(min(max(d, 1), int64(^uint32(0))))
}

func deadline(now time.Time, ms uint32) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(ms) * time.Millisecond)
}

// ToEntry is the entry replicated for g, with timers relative to now.
func ToEntry(g mld.GroupState, now time.Time) rbs.MLDEntry {
	e := rbs.MLDEntry{Group: g.Group, FilterMode: rbs.FilterInclude, Compat: uint8(g.Compat), GroupTimerMs: remaining(now, g.Expires), V1HostMs: remaining(now, g.V1HostExpires), LastReporter: g.LastReporter}
	if g.Mode == mld.Exclude {
		e.FilterMode = rbs.FilterExclude
	}
	if e.Compat == 0 {
		e.Compat = 2
	}
	for _, s := range g.Sources {
		e.Sources = append(e.Sources, rbs.MLDSource{Addr: s.Addr, TimerMs: remaining(now, s.Expires)})
	}
	return e
}

// FromEntry is the synced group state for a replicated entry, with timers
// restarted from now.
func FromEntry(e rbs.MLDEntry, now time.Time) mld.GroupState {
	g := mld.GroupState{Group: e.Group, Mode: mld.Include, Compat: int(e.Compat), Expires: deadline(now, e.GroupTimerMs), V1HostExpires: deadline(now, e.V1HostMs), LastReporter: e.LastReporter, Synced: true}
	if e.FilterMode == rbs.FilterExclude {
		g.Mode = mld.Exclude
	}
	for _, s := range e.Sources {
		g.Sources = append(g.Sources, mld.SourceState{Addr: s.Addr, Expires: deadline(now, s.TimerMs)})
	}
	return g
}
