package mldbackup

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/sync/rbs"
)

func TestRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	peer := now.Add(time.Hour) // the receiver's clock differs
	g := mld.GroupState{
		Group: netip.MustParseAddr("ff0e::1:1"), Mode: mld.Exclude, Compat: 1,
		Expires: now.Add(11 * time.Second), V1HostExpires: now.Add(5 * time.Second),
		LastReporter: netip.MustParseAddr("fe80::99"),
		Sources: []mld.SourceState{
			{Addr: netip.MustParseAddr("2001:db8::1")},                                    // excluded: timer 0
			{Addr: netip.MustParseAddr("2001:db8::2"), Expires: now.Add(3 * time.Second)}, // requested
		},
	}
	e := ToEntry(g, now)
	if e.FilterMode != rbs.FilterExclude || e.GroupTimerMs != 11000 || e.V1HostMs != 5000 || e.Sources[0].TimerMs != 0 || e.Sources[1].TimerMs != 3000 {
		t.Fatalf("entry %+v", e)
	}
	back := FromEntry(e, peer)
	want := g
	want.Synced = true
	want.Expires, want.V1HostExpires = peer.Add(11*time.Second), peer.Add(5*time.Second)
	want.Sources = []mld.SourceState{{Addr: g.Sources[0].Addr}, {Addr: g.Sources[1].Addr, Expires: peer.Add(3 * time.Second)}}
	if !reflect.DeepEqual(back, want) {
		t.Fatalf("round trip:\n got  %+v\n want %+v", back, want)
	}
}

func TestTimersAboutToFireStayRunning(t *testing.T) {
	now := time.Now()
	g := mld.GroupState{Group: netip.MustParseAddr("ff0e::2"), Mode: mld.Include,
		Sources: []mld.SourceState{{Addr: netip.MustParseAddr("2001:db8::1"), Expires: now.Add(-time.Millisecond)}}}
	if e := ToEntry(g, now); e.Sources[0].TimerMs != 1 || e.Compat != 2 || e.FilterMode != rbs.FilterInclude {
		t.Fatalf("entry %+v: a running (overdue) timer must travel as 1 ms, not 0 (stopped)", e)
	}
}
