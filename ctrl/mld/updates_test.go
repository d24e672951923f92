package mld

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// TestOnUpdatesBatches: with OnUpdates, an Import is one call carrying the
// same events, in the same order, that OnChange/OnDelete get one by one; a
// sent message splits the runs so the order against sends is kept.
func TestOnUpdatesBatches(t *testing.T) {
	type event struct {
		g   netip.Addr
		del bool
		st  GroupState
	}
	run := func(batched bool) ([]event, int) {
		clk := newFakeClock()
		cfg := DefaultConfig("ge2", netip.MustParseAddr("fe80::1"))
		cfg.Clock = clk
		cfg.MaxGroups = -1
		var evs []event
		calls := 0
		if batched {
			cfg.OnUpdates = func(us []Update) {
				calls++
				for _, u := range us {
					evs = append(evs, event{u.Group, u.Deleted, u.State})
				}
			}
		} else {
			cfg.OnChange = func(st GroupState) { calls++; evs = append(evs, event{st.Group, false, st}) }
			cfg.OnDelete = func(g netip.Addr) { calls++; evs = append(evs, event{g, true, GroupState{}}) }
		}
		ifc, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ifc.SetQuerierAllowed(false)
		ifc.Start()
		defer ifc.Stop()
		var sts []GroupState
		for i := range 1000 {
			g := netip.AddrFrom16([16]byte{0xff, 0x0e, 14: byte(i >> 8), 15: byte(i)})
			sts = append(sts, GroupState{Group: g, Mode: Exclude, Expires: clk.Now().Add(time.Duration(i+1) * time.Second), Synced: true})
		}
		if err := ifc.Import(sts); err != nil {
			t.Fatal(err)
		}
		// A second batch drops half of them and expires one more later.
		if err := ifc.Import(sts[:500]); err != nil {
			t.Fatal(err)
		}
		clk.Advance(1500 * time.Millisecond)
		return evs, calls
	}
	one, oneCalls := run(false)
	bulk, bulkCalls := run(true)
	if !reflect.DeepEqual(one, bulk) {
		t.Fatalf("OnUpdates events differ from OnChange/OnDelete: %d vs %d events", len(bulk), len(one))
	}
	if len(one) != 1000+500+500+1 || oneCalls != len(one) {
		t.Fatalf("one by one: %d events in %d calls", len(one), oneCalls)
	}
	if bulkCalls != 3 {
		t.Errorf("OnUpdates called %d times for two imports and one expiry, want 3", bulkCalls)
	}
}

// TestOnUpdatesKeepsOrderWithSends: updates and sent messages interleave
// with OnUpdates as they do with OnChange/OnDelete.
func TestOnUpdatesKeepsOrderWithSends(t *testing.T) {
	run := func(batched bool) []string {
		var order []string
		h := newHarness(t, func(c *Config) {
			if batched {
				c.OnUpdates = func(us []Update) {
					for _, u := range us {
						order = append(order, fmt.Sprintf("update %s deleted=%v", u.Group, u.Deleted))
					}
				}
			}
		})
		if !batched {
			h.ifc.cfg.OnChange = func(st GroupState) { order = append(order, fmt.Sprintf("update %s deleted=false", st.Group)) }
			h.ifc.cfg.OnDelete = func(g netip.Addr) { order = append(order, fmt.Sprintf("update %s deleted=true", g)) }
		}
		h.snd.hook = func(dst netip.Addr) { order = append(order, "send "+dst.String()) }
		g := netip.MustParseAddr("ff0e::1:1")
		h.report(rec(ChangeToExclude, g))
		h.report(rec(ChangeToInclude, g)) // leave: group-specific queries go out
		h.clk.Advance(time.Minute)        // and the group expires
		return order
	}
	one, bulk := run(false), run(true)
	if len(one) < 4 || !reflect.DeepEqual(one, bulk) {
		t.Fatalf("OnUpdates order %q\nOnChange order %q", bulk, one)
	}
}

// TestOnUpdatesRunsAreBounded: an Import larger than MaxUpdateRun comes
// in calls of at most MaxUpdateRun updates, in order, every group once.
func TestOnUpdatesRunsAreBounded(t *testing.T) {
	clk := newFakeClock()
	cfg := DefaultConfig("ge2", netip.MustParseAddr("fe80::1"))
	cfg.Clock = clk
	cfg.MaxGroups = -1
	var sizes []int
	var got []netip.Addr
	cfg.OnUpdates = func(us []Update) {
		sizes = append(sizes, len(us))
		for _, u := range us {
			got = append(got, u.Group)
		}
	}
	ifc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ifc.SetQuerierAllowed(false)
	n := MaxUpdateRun + 10
	sts := make([]GroupState, n)
	for i := range sts {
		g := netip.AddrFrom16([16]byte{0xff, 0x0e, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
		sts[i] = GroupState{Group: g, Mode: Exclude, Expires: clk.Now().Add(time.Minute), Synced: true}
	}
	if err := ifc.Import(sts); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sizes, []int{MaxUpdateRun, 10}) {
		t.Fatalf("calls of %v updates, want [%d 10]", sizes, MaxUpdateRun)
	}
	for i, g := range got {
		if g != sts[i].Group {
			t.Fatalf("update %d is %s, want %s", i, g, sts[i].Group)
		}
	}
}

// TestExpiriesShareOneTimer: groups' deadlines, many of them equal, some
// moved by a refresh, expire each at its own time, through one timer.
func TestExpiriesShareOneTimer(t *testing.T) {
	clk := newFakeClock()
	cfg := DefaultConfig("ge2", netip.MustParseAddr("fe80::1"))
	cfg.Clock = clk
	cfg.MaxGroups = -1
	deleted := map[netip.Addr]time.Time{}
	cfg.OnUpdates = func(us []Update) {
		for _, u := range us {
			if u.Deleted {
				deleted[u.Group] = clk.Now()
			}
		}
	}
	ifc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ifc.SetQuerierAllowed(false)
	ifc.Start()
	defer ifc.Stop()
	t0 := clk.Now()
	grp := func(i int) netip.Addr { return netip.AddrFrom16([16]byte{0xff, 0x0e, 14: byte(i >> 8), 15: byte(i)}) }
	var sts []GroupState
	for i := range 3000 {
		sts = append(sts, GroupState{Group: grp(i), Mode: Exclude, Expires: t0.Add(time.Duration(1+i%3) * time.Second), Synced: true})
	}
	if err := ifc.Import(sts); err != nil {
		t.Fatal(err)
	}
	// Group 0 is refreshed to 10 s; group 1 (due at 2 s) is deleted.
	if err := ifc.Upsert(GroupState{Group: grp(0), Mode: Exclude, Expires: t0.Add(10 * time.Second), Synced: true}); err != nil {
		t.Fatal(err)
	}
	ifc.Delete(grp(1))
	delete(deleted, grp(1))
	for range 12 {
		clk.Advance(500 * time.Millisecond)
	}
	for i := 1; i < 3000; i++ {
		at, ok := deleted[grp(i)]
		want := t0.Add(time.Duration(1+i%3) * time.Second)
		if i == 1 {
			if ok {
				t.Errorf("group 1, deleted before, expired again at %v", at.Sub(t0))
			}
			continue
		}
		if !ok || at.Before(want) || at.After(want.Add(500*time.Millisecond)) {
			t.Fatalf("group %d expired at %v (%v), want %v", i, at.Sub(t0), ok, want.Sub(t0))
		}
	}
	if _, ok := deleted[grp(0)]; ok {
		t.Fatal("group 0 expired before its refreshed deadline")
	}
	if n := ifc.Status().Groups; n != 1 {
		t.Fatalf("%d groups left, want 1 (group 0)", n)
	}
	clk.Advance(5 * time.Second)
	if n := ifc.Status().Groups; n != 0 {
		t.Fatalf("%d groups left after group 0's deadline", n)
	}
}
