package mld

import (
	"net/netip"
	"testing"
	"time"
)

func TestDisownAllLetsThePeerReplace(t *testing.T) {
	clk := newFakeClock()
	var changes []GroupState
	cfg := DefaultConfig("ge2", netip.MustParseAddr("fe80::1"))
	cfg.Clock = clk
	cfg.OnChange = func(g GroupState) { changes = append(changes, g) }
	ifc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ifc.Start()
	defer ifc.Stop()
	g := netip.MustParseAddr("ff0e::1:1")
	gone := netip.MustParseAddr("ff0e::1:2")
	for _, grp := range []netip.Addr{g, gone} {
		if err := ifc.Upsert(GroupState{Group: grp, Mode: Exclude, Expires: clk.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	// Make both local, as if reported on this link.
	ifc.mu.Lock()
	for _, gr := range ifc.groups {
		gr.synced = false
	}
	ifc.mu.Unlock()
	if err := ifc.Upsert(GroupState{Group: g, Mode: Exclude, Expires: clk.Now().Add(time.Hour)}); err == nil {
		t.Fatal("upsert over a local group accepted before DisownAll")
	}
	changes = nil
	ifc.DisownAll()
	if len(changes) != 2 || !changes[0].Synced {
		t.Fatalf("DisownAll notified %+v", changes)
	}
	// The peer's batch now decides: g refreshed, gone deleted.
	if err := ifc.Import([]GroupState{{Group: g, Mode: Exclude, Expires: clk.Now().Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if st, ok := ifc.Group(g); !ok || st.Group != g || !st.Synced {
		t.Fatalf("Group(%s) = %+v, %v", g, st, ok)
	}
	if _, ok := ifc.Group(gone); ok {
		t.Fatalf("Group(%s) found a deleted group", gone)
	}
	gs := ifc.Groups()
	if len(gs) != 1 || gs[0].Group != g || !gs[0].Expires.Equal(clk.Now().Add(time.Hour)) || !gs[0].Synced {
		t.Fatalf("after import: %+v", gs)
	}
}
