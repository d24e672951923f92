package rbs

import (
	"fmt"
	"net/netip"
	"slices"
)

// FilterMode is the router filter mode of a multicast address record
// (RFC 3810 §7.2).
type FilterMode uint8

// Filter modes.
const (
	FilterInclude FilterMode = 1
	FilterExclude FilterMode = 2
)

func (f FilterMode) String() string {
	switch f {
	case FilterInclude:
		return "include"
	case FilterExclude:
		return "exclude"
	}
	return fmt.Sprintf("filter(%d)", uint8(f))
}

// MLDSource is one source record of an MLD entry (RFC 3810 §7.2).
type MLDSource struct {
	Addr netip.Addr
	// TimerMs is the remaining source timer in milliseconds; 0 in EXCLUDE
	// mode means the source is in the Exclude List (RFC 3810 §7.2.3).
	TimerMs uint32
}

// MLDEntry is the replicated state of one multicast address on the
// profile's interface. It is deliberately independent of the MLD state
// machine package: the daemon converts in both directions.
type MLDEntry struct {
	// Group is the multicast address (ff00::/8), the key of the entry.
	Group      netip.Addr
	FilterMode FilterMode
	// Compat is the group compatibility mode (RFC 3810 §8.3.2): 1 or 2.
	Compat uint8
	// GroupTimerMs is the remaining Filter Timer, 0 = not running.
	GroupTimerMs uint32
	// V1HostMs is the remaining Older Version Host Present timer,
	// 0 = not running.
	V1HostMs uint32
	// LastReporter is the source of the last report; the zero Addr (or ::)
	// means none. Zones are not carried.
	LastReporter netip.Addr
	Sources      []MLDSource
}

// Equal reports whether e and o encode identically.
func (e MLDEntry) Equal(o MLDEntry) bool {
	norm := func(a netip.Addr) netip.Addr {
		if !a.IsValid() || a.IsUnspecified() {
			return netip.Addr{}
		}
		return a.WithZone("")
	}
	if norm(e.Group) != norm(o.Group) || e.FilterMode != o.FilterMode || e.Compat != o.Compat ||
		e.GroupTimerMs != o.GroupTimerMs || e.V1HostMs != o.V1HostMs ||
		norm(e.LastReporter) != norm(o.LastReporter) || len(e.Sources) != len(o.Sources) {
		return false
	}
	for i := range e.Sources {
		if norm(e.Sources[i].Addr) != norm(o.Sources[i].Addr) || e.Sources[i].TimerMs != o.Sources[i].TimerMs {
			return false
		}
	}
	return true
}

// Clone returns a deep copy of e.
func (e MLDEntry) Clone() MLDEntry {
	e.Sources = slices.Clone(e.Sources)
	return e
}

func validGroup(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && a.IsMulticast()
}

func (e *MLDEntry) validate() error {
	if !validGroup(e.Group) {
		return invalid("group %v is not an IPv6 multicast address", e.Group)
	}
	if e.FilterMode != FilterInclude && e.FilterMode != FilterExclude {
		return invalid("group %v: %s", e.Group, e.FilterMode)
	}
	if e.Compat != 1 && e.Compat != 2 {
		return invalid("group %v: compatibility mode %d", e.Group, e.Compat)
	}
	if r := e.LastReporter; r.IsValid() && (!r.Is6() || r.IsMulticast()) {
		return invalid("group %v: last reporter %v", e.Group, r)
	}
	if len(e.Sources) > MaxSources {
		return invalid("group %v: %d sources exceeds %d", e.Group, len(e.Sources), MaxSources)
	}
	seen := make(map[netip.Addr]bool, len(e.Sources))
	for i, s := range e.Sources {
		a := s.Addr.WithZone("")
		if !a.Is6() || a.IsUnspecified() || a.IsMulticast() {
			return invalid("group %v: source %d: %v is not an IPv6 unicast address", e.Group, i, s.Addr)
		}
		if seen[a] {
			return invalid("group %v: duplicate source %v", e.Group, a)
		}
		seen[a] = true
	}
	return nil
}

// entryFixedLen is the size of an MLD entry without sources.
const entryFixedLen = 16 + 1 + 1 + 4 + 4 + 16 + 2

// sourceLen is the size of one source record.
const sourceLen = 16 + 4

func (e *MLDEntry) append(b []byte) ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	b = appendAddr(b, e.Group)
	b = append(b, byte(e.FilterMode), e.Compat)
	b = appendU32(b, e.GroupTimerMs)
	b = appendU32(b, e.V1HostMs)
	b = appendAddr(b, e.LastReporter)
	b = appendU16(b, uint16(len(e.Sources)))
	for _, s := range e.Sources {
		b = appendAddr(b, s.Addr)
		b = appendU32(b, s.TimerMs)
	}
	return b, nil
}

func (d *decoder) mldEntry() (MLDEntry, error) {
	if d.err != nil {
		return MLDEntry{}, d.err
	}
	if len(d.b) < entryFixedLen {
		return MLDEntry{}, fmt.Errorf("mld entry: need %d bytes, have %d: %w", entryFixedLen, len(d.b), ErrTruncated)
	}
	g := d.addr()
	fm := FilterMode(d.u8())
	compat := d.u8()
	gt := d.u32()
	v1 := d.u32()
	rep := d.addr()
	n := int(d.u16())
	if n > MaxSources {
		return MLDEntry{}, invalid("group %v: %d sources exceeds %d", g, n, MaxSources)
	}
	if n*sourceLen > len(d.b) {
		return MLDEntry{}, fmt.Errorf("group %v: %d sources need %d bytes, have %d: %w", g, n, n*sourceLen, len(d.b), ErrTruncated)
	}
	var srcs []MLDSource
	if n > 0 {
		srcs = make([]MLDSource, n)
		for i := range srcs {
			srcs[i] = MLDSource{Addr: d.addr(), TimerMs: d.u32()}
		}
	}
	if d.err != nil {
		return MLDEntry{}, d.err
	}
	e := MLDEntry{Group: g, FilterMode: fm, Compat: compat, GroupTimerMs: gt, V1HostMs: v1, LastReporter: rep, Sources: srcs}
	if err := e.validate(); err != nil {
		return MLDEntry{}, err
	}
	return e, nil
}
