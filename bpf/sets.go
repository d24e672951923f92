package bpf

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/cilium/ebpf"
)

// Shapes of the maps, mirrored from include/hotcast.h and checked against
// the loaded specs by TestSpecLimits.
const (
	maxRoutes  = 131072
	maxOIfSets = 16384
	maxSetOIfs = 32
)

// devmapVal is the kernel's UAPI struct bpf_devmap_val (linux/bpf.h), the
// value of an outgoing set: the map is declared by size in maps.h, so there
// is no hotcast type for bpf2go to export.
type devmapVal struct {
	Ifindex uint32
	ProgFD  uint32
}

// oifSet is an installed outgoing set.
type oifSet struct {
	id   uint32
	oifs []int // sorted
	refs int   // routes pointing at it
}

// setAlloc allocates the outgoing sets: one DEVMAP_HASH per distinct list
// of outgoing interfaces, at an id of the oif_sets ARRAY_OF_MAPS, with the
// same list in set_members (which clone mode replicates to). Routes with
// the same interfaces share a set; a set counts the routes that point at it
// and stays installed, idle, when none does (see release). The sets are the
// kernel's; this is the index that finds one by its members and the count
// of its users, rebuilt from the kernel on adoption.
type setAlloc struct {
	outer   *ebpf.Map     // oif_sets
	members *ebpf.Map     // set_members
	inner   *ebpf.MapSpec // the DEVMAP_HASH of one set
	egress  *ebpf.Program // every set entry's devmap program

	byName map[string]*oifSet // by canonical member list, idle ones too
	byID   map[uint32]*oifSet
	idle   int // sets no route uses (refs 0), kept installed
	free   []uint32
	next   uint32
	max    uint32 // ids below it are usable: maxOIfSets (tests lower it)
}

func newSetAlloc(m *sharedMaps, egress *ebpf.Program, inner *ebpf.MapSpec) setAlloc {
	return setAlloc{
		outer: m.OifSets, members: m.SetMembers, inner: inner, egress: egress,
		byName: map[string]*oifSet{}, byID: map[uint32]*oifSet{}, next: 1, max: maxOIfSets,
	}
}

func setName(oifs []int) string { return string(appendSetName(nil, oifs)) }

// appendSetName appends the canonical name of a sorted member list.
func appendSetName(b []byte, oifs []int) []byte {
	for i, o := range oifs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(o), 10)
	}
	return b
}

func setID(s *oifSet) uint32 {
	if s == nil {
		return 0
	}
	return s.id
}

// inUse is the number of sets routes use; idleCount those they don't.
func (a *setAlloc) inUse() int     { return len(a.byID) - a.idle }
func (a *setAlloc) idleCount() int { return a.idle }

// acquire returns the set for oifs (sorted, deduplicated), creating its
// DEVMAP_HASH when new, with one more reference. nil for the empty set.
func (a *setAlloc) acquire(oifs []int) (*oifSet, error) {
	if len(oifs) == 0 {
		return nil, nil
	}
	var buf [64]byte
	key := appendSetName(buf[:0], oifs)
	if s, ok := a.byName[string(key)]; ok { // no allocation for the lookup
		if s.refs == 0 {
			a.idle--
		}
		s.refs++
		return s, nil
	}
	name := string(key)
	if len(a.free) == 0 && a.next >= a.max {
		// Ids ran out: give up one idle set (each removal waits for an
		// RCU grace period).
		if err := a.reclaimIdle(func(*oifSet) bool { return true }, 1); err != nil {
			return nil, err
		}
	}
	var id uint32
	if n := len(a.free); n > 0 {
		id = a.free[n-1]
		a.free = a.free[:n-1]
	} else {
		if a.next >= a.max {
			return nil, fmt.Errorf("outgoing sets exhausted (%d)", a.max-1)
		}
		id = a.next
		a.next++
	}
	if err := a.install(id, oifs); err != nil {
		a.free = append(a.free, id)
		return nil, err
	}
	s := &oifSet{id: id, oifs: slices.Clone(oifs), refs: 1}
	a.byName[name] = s
	a.byID[id] = s
	return s, nil
}

// install creates set id's DEVMAP_HASH with oifs and puts it in place.
func (a *setAlloc) install(id uint32, oifs []int) error {
	inner, err := ebpf.NewMap(a.inner)
	if err != nil {
		return fmt.Errorf("create outgoing set: %w", err)
	}
	defer inner.Close()
	for _, o := range oifs {
		if err := inner.Put(uint32(o), devmapVal{Ifindex: uint32(o), ProgFD: uint32(a.egress.FD())}); err != nil {
			return fmt.Errorf("outgoing set: add interface %d: %w", o, err)
		}
	}
	if err := a.members.Put(id, memberList(oifs)); err != nil {
		return fmt.Errorf("outgoing set %d members: %w", id, err)
	}
	if err := a.outer.Put(id, inner); err != nil {
		return fmt.Errorf("install outgoing set %d: %w", id, err)
	}
	return nil
}

func memberList(oifs []int) ingressHcOifList {
	var l ingressHcOifList
	l.Count = uint32(len(oifs))
	for i, o := range oifs {
		l.Ifindex[i] = uint32(o)
	}
	return l
}

// release drops one reference. A set no route uses stays installed, idle,
// for the next route that wants the same interfaces: adding or removing an
// entry of the oif_sets ARRAY_OF_MAPS from user space waits for an RCU
// grace period in the kernel (10-16 ms measured here), which a join or a
// leave must not pay, and which would hold the route lock meanwhile. Idle
// sets are reclaimed when set ids run out, and when one of their
// interfaces goes (DeleteIface).
func (a *setAlloc) release(s *oifSet) {
	if s == nil {
		return
	}
	s.refs--
	if s.refs == 0 {
		a.idle++
	}
}

// reclaimIdle uninstalls up to limit (0: all) idle sets that match.
func (a *setAlloc) reclaimIdle(match func(*oifSet) bool, limit int) error {
	var errs []error
	n := 0
	for name, s := range a.byName {
		if s.refs != 0 || !match(s) {
			continue
		}
		if n++; limit > 0 && n > limit {
			break
		}
		delete(a.byName, name)
		delete(a.byID, s.id)
		a.idle--
		a.free = append(a.free, s.id)
		if err := ignoreMissing(a.outer.Delete(s.id)); err != nil {
			errs = append(errs, fmt.Errorf("remove outgoing set %d: %w", s.id, err))
		}
	}
	return errors.Join(errs...)
}

// read returns the members of set id as the kernel has them, sorted: the
// interfaces of its DEVMAP_HASH (the kernel takes out an interface that
// goes). A set that is not installed has none.
func (a *setAlloc) read(id uint32) ([]int, error) {
	var inner *ebpf.Map
	if err := a.outer.Lookup(id, &inner); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read outgoing set %d: %w", id, err)
	}
	defer inner.Close()
	var (
		ifx  uint32
		val  devmapVal
		oifs []int
	)
	it := inner.Iterate()
	for it.Next(&ifx, &val) {
		oifs = append(oifs, int(ifx))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read outgoing set %d: %w", id, err)
	}
	slices.Sort(oifs)
	return oifs, nil
}

// adopt registers the pinned sets ids (the ones routes point at) as the
// kernel left them: set_members made to match the devmap (the kernel took
// out interfaces that went), every entry pointed at this build's egress
// program (each update is atomic for the datapath). It returns the sets
// the routes must leave: emptied (to nil) or left equal to another (to
// that one); those are not registered. References are the caller's to
// count.
func (a *setAlloc) adopt(ids []uint32) (map[uint32]*oifSet, error) {
	slices.Sort(ids)
	redo := map[uint32]*oifSet{}
	for _, id := range ids {
		oifs, err := a.read(id)
		if err != nil {
			return nil, err
		}
		if err := a.syncMembers(id, oifs); err != nil {
			return nil, err
		}
		if err := a.repoint(id, oifs); err != nil {
			return nil, err
		}
		a.next = max(a.next, id+1)
		if len(oifs) == 0 {
			redo[id] = nil
			continue
		}
		if o, ok := a.byName[setName(oifs)]; ok {
			redo[id] = o
			continue
		}
		s := &oifSet{id: id, oifs: oifs}
		a.byName[setName(oifs)] = s
		a.byID[id] = s
	}
	return redo, nil
}

// repoint points every entry of set id at this build's egress program.
func (a *setAlloc) repoint(id uint32, oifs []int) error {
	var inner *ebpf.Map
	if err := a.outer.Lookup(id, &inner); err != nil {
		return fmt.Errorf("read pinned set %d: %w", id, err)
	}
	defer inner.Close()
	for _, o := range oifs {
		if err := inner.Put(uint32(o), devmapVal{Ifindex: uint32(o), ProgFD: uint32(a.egress.FD())}); err != nil {
			return fmt.Errorf("update egress program in set %d: %w", id, err)
		}
	}
	return nil
}

// syncMembers makes the member list of set id (clone mode) oifs.
func (a *setAlloc) syncMembers(id uint32, oifs []int) error {
	var cur ingressHcOifList
	if err := a.members.Lookup(id, &cur); err != nil {
		return fmt.Errorf("read members of set %d: %w", id, err)
	}
	want := memberList(oifs)
	if cur == want {
		return nil
	}
	if err := a.members.Put(id, want); err != nil {
		return fmt.Errorf("update members of set %d: %w", id, err)
	}
	return nil
}

// adopted finishes adoption once the caller has counted the references:
// the emptied or merged sets go, ids not in use are free, and sets no
// route uses are idle.
func (a *setAlloc) adopted(redo map[uint32]*oifSet) error {
	for id := range redo {
		if err := ignoreMissing(a.outer.Delete(id)); err != nil {
			return fmt.Errorf("remove emptied outgoing set %d: %w", id, err)
		}
	}
	for id := uint32(1); id < a.next; id++ {
		if a.byID[id] == nil {
			a.free = append(a.free, id)
		}
	}
	for _, s := range a.byID {
		if s.refs == 0 {
			a.idle++
		}
	}
	return nil
}

// PrepareSet installs the outgoing set for oifs, idle, unless it exists:
// the first route towards these interfaces then costs no set creation
// (see setAlloc.release). The daemon prepares every interface's own set at
// start.
func (d *Dataplane) PrepareSet(oifs []int) error {
	d.rt.mu.Lock()
	defer d.rt.mu.Unlock()
	s, err := d.rt.sets.acquire(normalizeOIfs(oifs))
	if err != nil {
		return err
	}
	d.rt.sets.release(s)
	return nil
}

// SetCount is the number of distinct outgoing sets in use (idle ones not
// counted).
func (d *Dataplane) SetCount() int {
	d.rt.mu.Lock()
	defer d.rt.mu.Unlock()
	return d.rt.sets.inUse()
}

// IdleSetCount is the number of outgoing sets installed that no route uses.
func (d *Dataplane) IdleSetCount() int {
	d.rt.mu.Lock()
	defer d.rt.mu.Unlock()
	return d.rt.sets.idleCount()
}

// normalizeOIfs returns oifs sorted and deduplicated: oifs itself when it
// already is (the route table's are), else a sorted copy.
func normalizeOIfs(oifs []int) []int {
	if slices.IsSorted(oifs) && !hasAdjacentDup(oifs) {
		return oifs
	}
	out := slices.Clone(oifs)
	slices.Sort(out)
	return slices.Compact(out)
}

func hasAdjacentDup(s []int) bool {
	for i := 1; i < len(s); i++ {
		if s[i] == s[i-1] {
			return true
		}
	}
	return false
}

func ignoreMissing(err error) error {
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}
