package bpf

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
)

// routeSetID reads the set id a route points at in the kernel map.
func routeSetID(t *testing.T, d *Dataplane, k RouteKey) uint32 {
	t.Helper()
	var v ingressHcRoute
	if err := d.maps.Routes.Lookup(k.bpfKey(), &v); err != nil {
		t.Fatalf("route %v: %v", k, err)
	}
	return v.SetId
}

func setInstalled(t *testing.T, d *Dataplane, id uint32) bool {
	t.Helper()
	var inner *ebpf.Map
	err := d.maps.OifSets.Lookup(id, &inner)
	if err == nil {
		inner.Close()
		return true
	}
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return false
	}
	t.Fatalf("oif_sets %d: %v", id, err)
	return false
}

// TestIdleSets: a set whose last route goes stays installed, idle, and the
// next route to the same interfaces takes it again (no kernel map-in-map
// update, which waits for an RCU grace period); PrepareSet installs one
// ahead; DeleteIface reclaims the idle sets naming the interface; when ids
// run out, an idle set is given up for a new one.
func TestIdleSets(t *testing.T) {
	d, env := openTest(t)
	o := env.oifs
	k1 := RouteKey{Group: grpG}
	k2 := RouteKey{Group: grpG2}

	if err := d.ReplaceRoutes([]Route{{RouteKey: k1, IIf: 3, OIfs: []int{o[0], o[1]}}}); err != nil {
		t.Fatal(err)
	}
	id := routeSetID(t, d, k1)
	if err := d.DeleteRoutes([]RouteKey{k1}); err != nil {
		t.Fatal(err)
	}
	if d.SetCount() != 0 || d.IdleSetCount() != 1 || !setInstalled(t, d, id) {
		t.Fatalf("after the last route went: %d in use, %d idle, installed %v", d.SetCount(), d.IdleSetCount(), setInstalled(t, d, id))
	}
	if err := d.ReplaceRoutes([]Route{{RouteKey: k2, IIf: 3, OIfs: []int{o[1], o[0]}}}); err != nil {
		t.Fatal(err)
	}
	if got := routeSetID(t, d, k2); got != id || d.SetCount() != 1 || d.IdleSetCount() != 0 {
		t.Fatalf("same interfaces again: set %d (want %d), %d in use, %d idle", got, id, d.SetCount(), d.IdleSetCount())
	}

	// PrepareSet: installed idle, then used as is.
	if err := d.PrepareSet([]int{o[2]}); err != nil {
		t.Fatal(err)
	}
	if d.IdleSetCount() != 1 {
		t.Fatalf("PrepareSet: %d idle", d.IdleSetCount())
	}
	if err := d.PrepareSet([]int{o[2]}); err != nil || d.IdleSetCount() != 1 {
		t.Fatalf("PrepareSet twice: %v, %d idle", err, d.IdleSetCount())
	}
	if err := d.ReplaceRoutes([]Route{{RouteKey: k1, IIf: 3, OIfs: []int{o[2]}}}); err != nil {
		t.Fatal(err)
	}
	prepared := routeSetID(t, d, k1)
	if d.IdleSetCount() != 0 || d.SetCount() != 2 {
		t.Fatalf("prepared set not taken: %d in use, %d idle", d.SetCount(), d.IdleSetCount())
	}

	// DeleteIface: idle sets naming the interface go, others stay.
	if err := d.DeleteRoutes([]RouteKey{k1, k2}); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteIface(o[2]); err != nil {
		t.Fatal(err)
	}
	if setInstalled(t, d, prepared) || !setInstalled(t, d, id) || d.IdleSetCount() != 1 {
		t.Fatalf("after DeleteIface(%d): set %d installed %v, set %d installed %v, %d idle", o[2], prepared, setInstalled(t, d, prepared), id, setInstalled(t, d, id), d.IdleSetCount())
	}

	// Ids run out: an idle set is reclaimed for a new one.
	d.rt.mu.Lock()
	d.rt.sets.max = d.rt.sets.next
	d.rt.sets.free = nil
	d.rt.mu.Unlock()
	if err := d.ReplaceRoutes([]Route{{RouteKey: k1, IIf: 3, OIfs: []int{o[0]}}}); err != nil {
		t.Fatalf("new set with only an idle one to give up: %v", err)
	}
	if got := routeSetID(t, d, k1); got != id || d.IdleSetCount() != 0 {
		t.Fatalf("new set got id %d (the idle one was %d), %d idle", got, id, d.IdleSetCount())
	}
	if err := d.ReplaceRoutes([]Route{{RouteKey: k2, IIf: 3, OIfs: []int{o[1]}}}); err == nil {
		t.Fatal("a set beyond the limit with no idle one to give up was created")
	}
	if rs, err := d.Routes(); err != nil || len(rs) != 1 || rs[0].Group != grpG {
		t.Fatalf("routes %+v %v", rs, err)
	}
}
