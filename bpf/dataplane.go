// Package bpf loads, pins and drives hotcast's XDP fast path. It is the only
// code that touches the BPF maps: MLD, VRRP6 and RBS go through its API.
package bpf

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Shapes of the maps, mirrored from include/hotcast.h and checked against
// the loaded specs by TestSpecLimits.
const (
	maxRoutes  = 131072
	maxOIfSets = 16384
	maxSetOIfs = 32
)

// Pin layout under Options.PinPath.
const (
	pinMaps  = "maps"
	pinProgs = "progs"
	pinLinks = "links"
)

// mapNames are the shared maps, created once and handed to every object.
var mapNames = []string{"routes", "oif_sets", "route_stats", "ifaces", "reasons", "vmacs", "vips", "set_members"}

// Kinds of links, each pinned under links/KIND/IFNAME.
const (
	linkXDP = "xdp" // hc_ingress on every interface
	linkTC  = "tc"  // hc_tc_egress (tcx) on VRRP interfaces
	linkTCI = "tci" // hc_tc_ingress (tcx) on VRRP interfaces
)

// Options configure Open.
type Options struct {
	// PinPath is the bpffs directory holding the pinned dataplane. Empty
	// means nothing is pinned (tests) and everything goes with Close.
	PinPath string
	// XDPFlags chooses the attach mode (driver mode by default).
	XDPFlags link.XDPAttachFlags
	Logger   *slog.Logger
}

// Dataplane is a loaded (or adopted) fast path.
type Dataplane struct {
	log     *slog.Logger
	pinPath string
	flags   link.XDPAttachFlags
	adopted bool

	ingress *ebpf.Program
	egress  *ebpf.Program
	tc      *ebpf.Program
	tci     *ebpf.Program
	maps    map[string]*ebpf.Map
	inner   *ebpf.MapSpec

	mu        sync.Mutex
	links     map[string]link.Link // by KIND/IFNAME
	routes    map[RouteKey]installed
	sets      map[string]*oifSet // by canonical member list, idle ones too
	setByID   map[uint32]*oifSet
	idleSets  int // sets no route uses (refs 0), kept installed
	freeSets  []uint32
	nextSet   uint32
	maxSets   uint32 // ids below it are usable: maxOIfSets (tests lower it)
	freeStats []uint32
	nextStats uint32
	clone     map[int]bool // clone-mode egress interfaces
}

type installed struct {
	iif   int
	set   *oifSet // nil: empty set
	stats uint32
	flags RouteFlags
}

type oifSet struct {
	id   uint32
	oifs []int // sorted
	refs int
}

// Open loads the programs and maps. With a PinPath that already holds a
// dataplane it adopts it: the pinned maps (and so the routes) stay, new
// programs replace the old ones in place through the pinned links, and
// forwarding never stops. Otherwise it builds a new dataplane and pins it
// atomically (in a temporary directory renamed into place).
func Open(opts Options) (_ *Dataplane, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dataplane{
		log:       log,
		pinPath:   opts.PinPath,
		flags:     opts.XDPFlags,
		maps:      map[string]*ebpf.Map{},
		links:     map[string]link.Link{},
		routes:    map[RouteKey]installed{},
		sets:      map[string]*oifSet{},
		setByID:   map[uint32]*oifSet{},
		nextSet:   1,
		maxSets:   maxOIfSets,
		nextStats: 0,
		clone:     map[int]bool{},
	}
	defer func() {
		if err != nil {
			d.closeFDs()
		}
	}()

	ingSpec, err := loadIngress()
	if err != nil {
		return nil, fmt.Errorf("load ingress spec: %w", err)
	}
	devSpec, err := loadDevmap()
	if err != nil {
		return nil, fmt.Errorf("load devmap spec: %w", err)
	}
	d.inner = ingSpec.Maps["oif_sets"].InnerMap.Copy()

	if d.pinPath != "" {
		if err := ensureBPFFS(d.pinPath); err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(d.pinPath, pinMaps)); err == nil {
			d.adopted = true
		}
	}
	for _, name := range mapNames {
		spec := ingSpec.Maps[name]
		var m *ebpf.Map
		if d.adopted {
			m, err = ebpf.LoadPinnedMap(filepath.Join(d.pinPath, pinMaps, name), nil)
			if err != nil {
				return nil, fmt.Errorf("adopt pinned map %s: %w", name, err)
			}
			if err := compatible(spec, m); err != nil {
				m.Close()
				return nil, fmt.Errorf("adopt pinned map %s (run hotcastd --cleanup to start afresh): %w", name, err)
			}
		} else {
			m, err = ebpf.NewMap(spec)
			if err != nil {
				return nil, fmt.Errorf("create map %s: %w", name, err)
			}
		}
		d.maps[name] = m
	}

	var ing ingressObjects
	if err := ingSpec.LoadAndAssign(&ing, &ebpf.CollectionOptions{MapReplacements: d.maps}); err != nil {
		return nil, fmt.Errorf("load ingress program: %+v", err)
	}
	closeMaps(ing.ingressMaps)
	d.ingress = ing.HcIngress
	var dev devmapObjects
	if err := devSpec.LoadAndAssign(&dev, &ebpf.CollectionOptions{MapReplacements: d.maps}); err != nil {
		return nil, fmt.Errorf("load devmap program: %+v", err)
	}
	closeMaps(dev.devmapMaps)
	d.egress = dev.HcEgress
	tcSpec, err := loadTcegress()
	if err != nil {
		return nil, fmt.Errorf("load tc spec: %w", err)
	}
	var tco tcegressObjects
	if err := tcSpec.LoadAndAssign(&tco, &ebpf.CollectionOptions{MapReplacements: d.maps}); err != nil {
		return nil, fmt.Errorf("load tc program: %+v", err)
	}
	closeMaps(tco.tcegressMaps)
	d.tc = tco.HcTcEgress
	tciSpec, err := loadTcingress()
	if err != nil {
		return nil, fmt.Errorf("load tc ingress spec: %w", err)
	}
	var tcio tcingressObjects
	if err := tciSpec.LoadAndAssign(&tcio, &ebpf.CollectionOptions{MapReplacements: d.maps}); err != nil {
		return nil, fmt.Errorf("load tc ingress program: %+v", err)
	}
	closeMaps(tcio.tcingressMaps)
	d.tci = tcio.HcTcIngress

	if d.adopted {
		if err := d.adopt(); err != nil {
			return nil, err
		}
		log.Info("adopted pinned dataplane", "pin_path", d.pinPath, "routes", len(d.routes), "sets", len(d.setByID), "links", len(d.links))
	} else if d.pinPath != "" {
		if err := d.pinNew(); err != nil {
			return nil, err
		}
		log.Info("pinned new dataplane", "pin_path", d.pinPath)
	}
	return d, nil
}

func closeMaps(ms any) {
	switch m := ms.(type) {
	case ingressMaps:
		m.Close()
	case devmapMaps:
		m.Close()
	case tcegressMaps:
		m.Close()
	case tcingressMaps:
		m.Close()
	}
}

// compatible reports whether a pinned map has the shape this build expects.
func compatible(spec *ebpf.MapSpec, m *ebpf.Map) error {
	switch {
	case m.Type() != spec.Type:
		return fmt.Errorf("type %s, want %s", m.Type(), spec.Type)
	case m.KeySize() != spec.KeySize:
		return fmt.Errorf("key size %d, want %d", m.KeySize(), spec.KeySize)
	case m.ValueSize() != spec.ValueSize:
		return fmt.Errorf("value size %d, want %d", m.ValueSize(), spec.ValueSize)
	case m.MaxEntries() != spec.MaxEntries:
		return fmt.Errorf("max entries %d, want %d", m.MaxEntries(), spec.MaxEntries)
	}
	return nil
}

// pinNew pins maps and programs into a temporary directory, then renames it
// into place, so a half-pinned dataplane is never visible.
func (d *Dataplane) pinNew() error {
	// bpffs refuses names with dots.
	tmp := d.pinPath + "_tmp_" + strconv.Itoa(os.Getpid())
	_ = os.RemoveAll(tmp)
	for _, sub := range []string{pinMaps, pinProgs, filepath.Join(pinLinks, linkXDP), filepath.Join(pinLinks, linkTC), filepath.Join(pinLinks, linkTCI)} {
		if err := os.MkdirAll(filepath.Join(tmp, sub), 0o700); err != nil {
			return fmt.Errorf("create pin directory: %w", err)
		}
	}
	fail := func(err error) error {
		_ = os.RemoveAll(tmp)
		return err
	}
	for name, m := range d.maps {
		if err := m.Pin(filepath.Join(tmp, pinMaps, name)); err != nil {
			return fail(fmt.Errorf("pin map %s: %w", name, err))
		}
	}
	if err := d.pinPrograms(tmp); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(filepath.Dir(d.pinPath), 0o700); err != nil {
		return fail(fmt.Errorf("create pin parent: %w", err))
	}
	if err := os.Rename(tmp, d.pinPath); err != nil {
		return fail(fmt.Errorf("move pins into place: %w", err))
	}
	// Pinned objects remember their path: re-point them at the final one.
	for name, m := range d.maps {
		if err := m.Unpin(); err == nil {
			_ = m.Pin(filepath.Join(d.pinPath, pinMaps, name))
		}
	}
	return d.pinPrograms(d.pinPath)
}

func (d *Dataplane) pinPrograms(dir string) error {
	for name, p := range map[string]*ebpf.Program{"hc_ingress": d.ingress, "hc_egress": d.egress, "hc_tc_egress": d.tc, "hc_tc_ingress": d.tci} {
		path := filepath.Join(dir, pinProgs, name)
		_ = os.Remove(path)
		if err := p.Pin(path); err != nil {
			return fmt.Errorf("pin program %s: %w", name, err)
		}
	}
	return nil
}

// adopt rebuilds the Go view (routes, sets, counters slots) from the pinned
// maps, points every set at the new egress program and every pinned link at
// the new ingress program. Nothing is flushed: traffic keeps flowing.
//
// What belonged to interfaces that no longer exist in this network
// namespace (the daemon died and its namespace or veths were made again)
// goes: routes arriving on them, their ifaces, vmacs and vips entries, and
// their pinned links, which are severed (the interface of that name now is
// attached afresh by Attach). The kernel already took them out of the
// outgoing sets.
func (d *Dataplane) adopt() error {
	live, err := liveIfindexes()
	if err != nil {
		return err
	}
	if err := d.dropDeadInterfaces(live); err != nil {
		return err
	}
	var (
		k   ingressHcRouteKey
		v   ingressHcRoute
		ids = map[uint32]bool{}
	)
	maxStats := int64(-1)
	usedStats := map[uint32]bool{}
	routeSet := map[RouteKey]uint32{}
	cloneBit := map[RouteKey]RouteFlags{}
	var dead []ingressHcRouteKey
	it := d.maps["routes"].Iterate()
	for it.Next(&k, &v) {
		if !live[int(v.Iif)] {
			dead = append(dead, k)
			continue
		}
		key := keyFromBPF(k)
		d.routes[key] = installed{iif: int(v.Iif), stats: v.StatsIdx, flags: RouteFlags(v.Flags) &^ routeClone}
		if v.SetId != 0 {
			ids[v.SetId] = true
			routeSet[key] = v.SetId
			cloneBit[key] = RouteFlags(v.Flags) & routeClone
		}
		usedStats[v.StatsIdx] = true
		maxStats = max(maxStats, int64(v.StatsIdx))
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read pinned routes: %w", err)
	}
	if len(dead) > 0 {
		if _, err := d.maps["routes"].BatchDelete(dead, nil); err != nil {
			return fmt.Errorf("delete %d routes from interfaces that are gone: %w", len(dead), err)
		}
		d.log.Info("adoption: dropped routes whose incoming interface is gone", "routes", len(dead))
	}
	redo := map[uint32]*oifSet{} // set id -> the set its routes move to
	for id := range ids {
		var inner *ebpf.Map
		if err := d.maps["oif_sets"].Lookup(id, &inner); err != nil {
			return fmt.Errorf("read pinned set %d: %w", id, err)
		}
		var ifx uint32
		var oifs []int
		iit := inner.Iterate()
		var val devmapVal
		for iit.Next(&ifx, &val) {
			oifs = append(oifs, int(ifx))
		}
		if err := iit.Err(); err != nil {
			inner.Close()
			return fmt.Errorf("read pinned set %d: %w", id, err)
		}
		slices.Sort(oifs)
		// The kernel removed interfaces that went from the set: the
		// members clone mode replicates to must follow.
		if err := d.syncSetMembers(id, oifs); err != nil {
			inner.Close()
			return err
		}
		// Swap in the new egress program, entry by entry (each update is
		// atomic for the datapath).
		for _, o := range oifs {
			if err := inner.Put(uint32(o), devmapVal{Ifindex: uint32(o), ProgFD: uint32(d.egress.FD())}); err != nil {
				inner.Close()
				return fmt.Errorf("update egress program in set %d: %w", id, err)
			}
		}
		inner.Close()
		d.nextSet = max(d.nextSet, id+1)
		// A set the kernel emptied, or left equal to another, is
		// replaced in its routes (by none, or by the other) below.
		if len(oifs) == 0 {
			redo[id] = nil
			continue
		}
		if o, ok := d.sets[setName(oifs)]; ok {
			redo[id] = o
			continue
		}
		s := &oifSet{id: id, oifs: oifs}
		d.sets[setName(oifs)] = s
		d.setByID[id] = s
	}
	var rkeys []ingressHcRouteKey
	var rvals []ingressHcRoute
	for key, id := range routeSet {
		r := d.routes[key]
		s, ok := redo[id]
		if !ok {
			s = d.setByID[id]
		}
		r.set = s
		if s != nil {
			s.refs++
		}
		d.routes[key] = r
		if ok {
			flags := r.flags
			if s != nil {
				flags |= cloneBit[key] // the members are what they were, or fewer
			}
			rkeys = append(rkeys, key.bpfKey())
			rvals = append(rvals, ingressHcRoute{Iif: uint32(r.iif), SetId: setID(s), StatsIdx: r.stats, Flags: uint32(flags)})
		}
	}
	if len(rkeys) > 0 {
		if _, err := d.maps["routes"].BatchUpdate(rkeys, rvals, nil); err != nil {
			return fmt.Errorf("move %d routes off emptied outgoing sets: %w", len(rkeys), err)
		}
	}
	for id := range redo {
		if err := ignoreMissing(d.maps["oif_sets"].Delete(id)); err != nil {
			return fmt.Errorf("remove emptied outgoing set %d: %w", id, err)
		}
	}
	if len(redo) > 0 {
		d.log.Info("adoption: outgoing sets lost interfaces that are gone", "sets", len(redo), "routes_moved", len(rkeys))
	}
	for id := uint32(1); id < d.nextSet; id++ {
		if d.setByID[id] == nil {
			d.freeSets = append(d.freeSets, id)
		}
	}
	d.nextStats = uint32(maxStats + 1)
	for i := uint32(0); i < d.nextStats; i++ {
		if !usedStats[i] {
			d.freeStats = append(d.freeStats, i)
		}
	}

	if err := d.pinPrograms(d.pinPath); err != nil {
		return err
	}
	severed := map[string][]string{} // kinds by interface name
	for kind, prog := range map[string]*ebpf.Program{linkXDP: d.ingress, linkTC: d.tc, linkTCI: d.tci} {
		dir := filepath.Join(d.pinPath, pinLinks, kind)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("pinned links: %w", err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("read pinned links: %w", err)
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			l, err := link.LoadPinnedLink(path, nil)
			if err != nil {
				d.log.Warn("dropping unusable pinned link", "path", path, "err", err)
				_ = os.Remove(path)
				continue
			}
			if err := l.Update(prog); err != nil {
				if !errors.Is(err, unix.ENOLINK) {
					l.Close()
					return fmt.Errorf("update pinned link %s/%s: %w", kind, e.Name(), err)
				}
				// Severed: its interface was deleted (maybe made
				// again under the same name).
				_ = l.Unpin()
				l.Close()
				severed[ifname(e.Name())] = append(severed[ifname(e.Name())], kind)
				continue
			}
			d.links[kind+"/"+ifname(e.Name())] = l
		}
	}
	for _, name := range slices.Sorted(maps.Keys(severed)) {
		kinds := severed[name]
		slices.Sort(kinds)
		d.log.Info("pinned links dropped: their interface is gone or was re-created; it is attached afresh", "interface", name, "kinds", kinds)
	}
	return nil
}

// liveIfindexes returns the interface indexes of the calling thread's
// network namespace.
func liveIfindexes() (map[int]bool, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	live := make(map[int]bool, len(ifs))
	for _, i := range ifs {
		live[i.Index] = true
	}
	return live, nil
}

// dropDeadInterfaces deletes the ifaces, vmacs and vips entries of
// interfaces that are not live (adoption).
func (d *Dataplane) dropDeadInterfaces(live map[int]bool) error {
	var gone []uint32
	var ik uint32
	var iv ingressHcIface
	it := d.maps["ifaces"].Iterate()
	for it.Next(&ik, &iv) {
		if !live[int(ik)] {
			gone = append(gone, ik)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read pinned interfaces: %w", err)
	}
	var vmacs []ingressHcVmacKey
	var mk ingressHcVmacKey
	var mv uint32
	mit := d.maps["vmacs"].Iterate()
	for mit.Next(&mk, &mv) {
		if !live[int(mk.Ifindex)] {
			vmacs = append(vmacs, mk)
		}
	}
	if err := mit.Err(); err != nil {
		return fmt.Errorf("read pinned virtual macs: %w", err)
	}
	var vips []ingressHcVipKey
	var vk ingressHcVipKey
	var vv ingressHcVip
	vit := d.maps["vips"].Iterate()
	for vit.Next(&vk, &vv) {
		if !live[int(vk.Ifindex)] {
			vips = append(vips, vk)
		}
	}
	if err := vit.Err(); err != nil {
		return fmt.Errorf("read pinned virtual ips: %w", err)
	}
	var errs []error
	for _, k := range gone {
		errs = append(errs, ignoreMissing(d.maps["ifaces"].Delete(k)))
	}
	for _, k := range vmacs {
		errs = append(errs, ignoreMissing(d.maps["vmacs"].Delete(k)))
	}
	for _, k := range vips {
		errs = append(errs, ignoreMissing(d.maps["vips"].Delete(k)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("forget interfaces that are gone: %w", err)
	}
	if len(gone)+len(vmacs)+len(vips) > 0 {
		d.log.Info("adoption: forgot interfaces that are gone", "ifindexes", gone, "virtual_macs", len(vmacs), "virtual_ips", len(vips))
	}
	return nil
}

func ignoreMissing(err error) error {
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// syncSetMembers makes the member list of set id (clone mode) oifs.
func (d *Dataplane) syncSetMembers(id uint32, oifs []int) error {
	var cur, want ingressHcOifList
	if err := d.maps["set_members"].Lookup(id, &cur); err != nil {
		return fmt.Errorf("read members of set %d: %w", id, err)
	}
	want.Count = uint32(len(oifs))
	for i, o := range oifs {
		want.Ifindex[i] = uint32(o)
	}
	if cur == want {
		return nil
	}
	if err := d.maps["set_members"].Put(id, want); err != nil {
		return fmt.Errorf("update members of set %d: %w", id, err)
	}
	return nil
}

// linkPin and ifname map interface names to pin names and back: bpffs
// refuses dots (VLAN devices are named eth0.100) and interface names cannot
// contain colons.
func linkPin(ifname string) string { return strings.ReplaceAll(ifname, ".", ":") }
func ifname(pin string) string     { return strings.ReplaceAll(pin, ":", ".") }

// devmapVal is the kernel's UAPI struct bpf_devmap_val (linux/bpf.h), the
// value of an outgoing set: the map is declared by size in maps.h, so there
// is no hotcast type for bpf2go to export.
type devmapVal struct {
	Ifindex uint32
	ProgFD  uint32
}

// Adopted reports whether Open took over a pinned dataplane.
func (d *Dataplane) Adopted() bool { return d.adopted }

// Close releases this process's handles. Pinned programs, maps and links
// stay: forwarding goes on without the daemon. Without a pin path,
// everything is detached and freed.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closeFDs()
	return nil
}

func (d *Dataplane) closeFDs() {
	for _, l := range d.links {
		l.Close()
	}
	clear(d.links)
	for _, m := range d.maps {
		m.Close()
	}
	if d.ingress != nil {
		d.ingress.Close()
	}
	if d.egress != nil {
		d.egress.Close()
	}
	if d.tc != nil {
		d.tc.Close()
	}
	if d.tci != nil {
		d.tci.Close()
	}
}

// Cleanup removes a pinned dataplane: links (which detaches the programs
// from the interfaces), programs and maps.
func Cleanup(pinPath string) error {
	if pinPath == "" {
		return nil
	}
	var errs []error
	for _, kind := range []string{linkXDP, linkTC, linkTCI} {
		entries, _ := os.ReadDir(filepath.Join(pinPath, pinLinks, kind))
		for _, e := range entries {
			path := filepath.Join(pinPath, pinLinks, kind, e.Name())
			if l, err := link.LoadPinnedLink(path, nil); err == nil {
				if err := l.Unpin(); err != nil {
					errs = append(errs, fmt.Errorf("unpin link %s/%s: %w", kind, e.Name(), err))
				}
				l.Close()
			}
		}
	}
	if err := os.RemoveAll(pinPath); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", pinPath, err))
	}
	return errors.Join(errs...)
}

// Attach attaches the ingress program to an interface (bpf_link, pinned
// as links/xdp/NAME). With an adopted link already there, it is kept (it
// runs the new program since Open). The caller's goroutine must be in the
// interface's network namespace.
func (d *Dataplane) Attach(name string, ifindex int) error {
	if err := d.attach(linkXDP, name, ifindex); err != nil {
		return err
	}
	// The TC ingress program replicates clone-mode routes arriving here
	// (and restores PACKET_HOST for virtual-MAC frames on VRRP ports).
	return d.attach(linkTCI, name, ifindex)
}

// AttachTC attaches the TC egress program (tcx) of interfaces with VRRP6
// groups: packets sourced from a virtual IP leave with the virtual MAC.
// (The TC ingress program, attached by Attach, makes frames XDP
// re-addressed from the virtual MAC PACKET_HOST on drivers that build the
// skb before XDP: veth, generic.)
func (d *Dataplane) AttachTC(name string, ifindex int) error {
	return d.attach(linkTC, name, ifindex)
}

func (d *Dataplane) attach(kind, name string, ifindex int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := kind + "/" + name
	if l, ok := d.links[key]; ok {
		if info, err := l.Info(); err == nil && linkIfindex(info) == ifindex {
			return nil
		}
		// The interface was recreated: the old link is dead.
		_ = l.Unpin()
		l.Close()
		delete(d.links, key)
	}
	var l link.Link
	var err error
	switch kind {
	case linkXDP:
		l, err = link.AttachXDP(link.XDPOptions{Program: d.ingress, Interface: ifindex, Flags: d.flags})
	case linkTC:
		l, err = link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: d.tc, Attach: ebpf.AttachTCXEgress})
	case linkTCI:
		l, err = link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: d.tci, Attach: ebpf.AttachTCXIngress})
	}
	if err != nil {
		return fmt.Errorf("attach %s to %s: %w", kind, name, err)
	}
	if d.pinPath != "" {
		if err := l.Pin(filepath.Join(d.pinPath, pinLinks, kind, linkPin(name))); err != nil {
			l.Close()
			return fmt.Errorf("pin %s link of %s: %w", kind, name, err)
		}
	}
	d.links[key] = l
	d.log.Info("attached", "kind", kind, "interface", name, "ifindex", ifindex)
	return nil
}

func linkIfindex(info *link.Info) int {
	if x := info.XDP(); x != nil {
		return int(x.Ifindex)
	}
	if t := info.TCX(); t != nil {
		return int(t.Ifindex)
	}
	return -1
}

// Detach removes the programs from an interface and forgets its links.
func (d *Dataplane) Detach(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, kind := range []string{linkXDP, linkTC, linkTCI} {
		key := kind + "/" + name
		l, ok := d.links[key]
		if !ok {
			continue
		}
		delete(d.links, key)
		if d.pinPath != "" {
			if err := l.Unpin(); err != nil {
				errs = append(errs, fmt.Errorf("unpin %s link of %s: %w", kind, name, err))
			}
		}
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// Attached lists the interface names with an XDP link.
func (d *Dataplane) Attached() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var names []string
	for key := range d.links {
		if n, ok := strings.CutPrefix(key, linkXDP+"/"); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Iface is an interface's entry in the ifaces map.
type Iface struct {
	Gate   Gate
	SrcMAC net.HardwareAddr // source MAC of forwarded copies
	MAC    net.HardwareAddr // the interface's own MAC; defaults to SrcMAC
	// Clone makes routes towards this interface replicate in TC with
	// bpf_clone_redirect (copies share one buffer) instead of the XDP
	// devmap broadcast (a page per copy): for skb-bound ports. Set it
	// before installing routes towards the interface.
	Clone bool
	// NoRoute makes the interface a host port for multicast: what arrives
	// there goes to the stack, whatever the routes say. For interfaces
	// attached only for VRRP6 (multicast.routing-enable off).
	NoRoute bool
}

const (
	ifaceFlagClone   = 1 // HC_IFACE_F_CLONE
	ifaceFlagNoRoute = 2 // HC_IFACE_F_NO_ROUTE
)

// SetIface writes an interface's gate and source MAC in one map write (a
// VRRP switchover is exactly this call).
func (d *Dataplane) SetIface(ifindex int, ifc Iface) error {
	var v ingressHcIface
	if len(ifc.SrcMAC) != 6 {
		return fmt.Errorf("interface %d: source mac %q is not 6 bytes", ifindex, ifc.SrcMAC)
	}
	copy(v.SrcMac[:], ifc.SrcMAC)
	own := ifc.MAC
	if own == nil {
		own = ifc.SrcMAC
	}
	if len(own) != 6 {
		return fmt.Errorf("interface %d: mac %q is not 6 bytes", ifindex, own)
	}
	copy(v.Mac[:], own)
	v.Gate = ifc.Gate
	if ifc.Clone {
		v.Flags |= ifaceFlagClone
	}
	if ifc.NoRoute {
		v.Flags |= ifaceFlagNoRoute
	}
	if err := d.maps["ifaces"].Put(uint32(ifindex), v); err != nil {
		return fmt.Errorf("set interface %d: %w", ifindex, err)
	}
	d.mu.Lock()
	if ifc.Clone {
		d.clone[ifindex] = true
	} else {
		delete(d.clone, ifindex)
	}
	d.mu.Unlock()
	return nil
}

// EnsureIface writes the interface's entry only when it has none (a
// restarted daemon keeps the gate the previous one left, so forwarding does
// not pause while VRRP re-learns its state). It returns the entry in force.
// The interface's own outgoing set is prepared too (PrepareSet), so the
// first join there does not wait for the kernel to install it.
func (d *Dataplane) EnsureIface(ifindex int, initial Iface) (Iface, error) {
	if err := d.PrepareSet([]int{ifindex}); err != nil {
		return Iface{}, err
	}
	if cur, err := d.Iface(ifindex); err == nil {
		d.mu.Lock()
		if cur.Clone {
			d.clone[ifindex] = true
		}
		d.mu.Unlock()
		return cur, nil
	}
	return initial, d.SetIface(ifindex, initial)
}

// SetGate changes only the gate of an interface.
func (d *Dataplane) SetGate(ifindex int, g Gate) error {
	cur, err := d.Iface(ifindex)
	if err != nil {
		return err
	}
	cur.Gate = g
	return d.SetIface(ifindex, cur)
}

// Iface reads an interface's entry.
func (d *Dataplane) Iface(ifindex int) (Iface, error) {
	var v ingressHcIface
	if err := d.maps["ifaces"].Lookup(uint32(ifindex), &v); err != nil {
		return Iface{}, fmt.Errorf("interface %d: %w", ifindex, err)
	}
	return Iface{
		Gate: v.Gate, SrcMAC: net.HardwareAddr(slices.Clone(v.SrcMac[:])), MAC: net.HardwareAddr(slices.Clone(v.Mac[:])),
		Clone: v.Flags&ifaceFlagClone != 0, NoRoute: v.Flags&ifaceFlagNoRoute != 0,
	}, nil
}

// DeleteIface removes an interface's entry: copies toward it are dropped.
func (d *Dataplane) DeleteIface(ifindex int) error {
	if err := d.maps["ifaces"].Delete(uint32(ifindex)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete interface %d: %w", ifindex, err)
	}
	// Idle sets naming the interface go: the kernel empties their devmap
	// entries when the device goes, and a later device may get its index.
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reclaimIdleSets(func(s *oifSet) bool { return slices.Contains(s.oifs, ifindex) }, 0)
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

// acquireSet returns the set for oifs (sorted, deduplicated), creating its
// DEVMAP_HASH when new, with one more reference. nil for the empty set.
func (d *Dataplane) acquireSet(oifs []int) (*oifSet, error) {
	if len(oifs) == 0 {
		return nil, nil
	}
	var buf [64]byte
	key := appendSetName(buf[:0], oifs)
	if s, ok := d.sets[string(key)]; ok { // no allocation for the lookup
		if s.refs == 0 {
			d.idleSets--
		}
		s.refs++
		return s, nil
	}
	name := string(key)
	if len(d.freeSets) == 0 && d.nextSet >= d.maxSets {
		// Ids ran out: give up one idle set (each removal waits for an
		// RCU grace period).
		if err := d.reclaimIdleSets(func(*oifSet) bool { return true }, 1); err != nil {
			return nil, err
		}
	}
	var id uint32
	if n := len(d.freeSets); n > 0 {
		id = d.freeSets[n-1]
		d.freeSets = d.freeSets[:n-1]
	} else {
		if d.nextSet >= d.maxSets {
			return nil, fmt.Errorf("outgoing sets exhausted (%d)", d.maxSets-1)
		}
		id = d.nextSet
		d.nextSet++
	}
	inner, err := ebpf.NewMap(d.inner)
	if err != nil {
		d.freeSets = append(d.freeSets, id)
		return nil, fmt.Errorf("create outgoing set: %w", err)
	}
	defer inner.Close()
	for _, o := range oifs {
		if err := inner.Put(uint32(o), devmapVal{Ifindex: uint32(o), ProgFD: uint32(d.egress.FD())}); err != nil {
			d.freeSets = append(d.freeSets, id)
			return nil, fmt.Errorf("outgoing set: add interface %d: %w", o, err)
		}
	}
	var members ingressHcOifList
	members.Count = uint32(len(oifs))
	for i, o := range oifs {
		members.Ifindex[i] = uint32(o)
	}
	if err := d.maps["set_members"].Put(id, members); err != nil {
		d.freeSets = append(d.freeSets, id)
		return nil, fmt.Errorf("outgoing set %d members: %w", id, err)
	}
	if err := d.maps["oif_sets"].Put(id, inner); err != nil {
		d.freeSets = append(d.freeSets, id)
		return nil, fmt.Errorf("install outgoing set %d: %w", id, err)
	}
	s := &oifSet{id: id, oifs: slices.Clone(oifs), refs: 1}
	d.sets[name] = s
	d.setByID[id] = s
	return s, nil
}

// releaseSet drops one reference. A set no route uses stays installed,
// idle, for the next route that wants the same interfaces: adding or
// removing an entry of the oif_sets ARRAY_OF_MAPS from user space waits
// for an RCU grace period in the kernel (10-16 ms measured here), which a
// join or a leave must not pay, and which would hold d.mu meanwhile. Idle
// sets are reclaimed when set ids run out, and when one of their
// interfaces goes (DeleteIface).
func (d *Dataplane) releaseSet(s *oifSet) error {
	if s == nil {
		return nil
	}
	s.refs--
	if s.refs == 0 {
		d.idleSets++
	}
	return nil
}

// reclaimIdleSets uninstalls up to limit (0: all) idle sets that match.
func (d *Dataplane) reclaimIdleSets(match func(*oifSet) bool, limit int) error {
	var errs []error
	n := 0
	for name, s := range d.sets {
		if s.refs != 0 || !match(s) {
			continue
		}
		if n++; limit > 0 && n > limit {
			break
		}
		delete(d.sets, name)
		delete(d.setByID, s.id)
		d.idleSets--
		d.freeSets = append(d.freeSets, s.id)
		if err := d.maps["oif_sets"].Delete(s.id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("remove outgoing set %d: %w", s.id, err))
		}
	}
	return errors.Join(errs...)
}

// PrepareSet installs the outgoing set for oifs, idle, unless it exists:
// the first route towards these interfaces then costs no set creation
// (see releaseSet). The daemon prepares every interface's own set at
// start.
func (d *Dataplane) PrepareSet(oifs []int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, err := d.acquireSet(normalizeOIfs(oifs))
	if err != nil {
		return err
	}
	return d.releaseSet(s)
}

func (d *Dataplane) allocStats() (uint32, error) {
	if n := len(d.freeStats); n > 0 {
		idx := d.freeStats[n-1]
		d.freeStats = d.freeStats[:n-1]
		// A reused slot may hold an old route's counts.
		zero := make([]ingressHcCounter, ebpf.MustPossibleCPU())
		if err := d.maps["route_stats"].Put(idx, zero); err != nil {
			return 0, fmt.Errorf("reset counters %d: %w", idx, err)
		}
		return idx, nil
	}
	if d.nextStats >= maxRoutes {
		return 0, fmt.Errorf("routes exhausted (%d)", maxRoutes)
	}
	idx := d.nextStats
	d.nextStats++
	return idx, nil
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

// ReplaceRoutes adds or replaces routes in one batch map update. A route's
// counters survive a replace. When a key appears twice, the last one wins.
func (d *Dataplane) ReplaceRoutes(rs []Route) error {
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()

	type pending struct {
		installed
		i int // index in keys and vals
	}
	keys := make([]ingressHcRouteKey, 0, len(rs))
	vals := make([]ingressHcRoute, 0, len(rs))
	next := make(map[RouteKey]pending, len(rs))
	var fresh []uint32 // counters slots taken for new routes
	undo := func() {
		for _, n := range next {
			_ = d.releaseSet(n.set)
		}
		d.freeStats = append(d.freeStats, fresh...)
	}
	for _, r := range rs {
		key := r.RouteKey.normalize()
		s, err := d.acquireSet(normalizeOIfs(r.OIfs))
		if err != nil {
			undo()
			return err
		}
		prev, dup := next[key]
		stats := prev.stats
		if dup {
			// The key came earlier in rs: this one wins, in its place.
			_ = d.releaseSet(prev.set)
		} else if cur, exists := d.routes[key]; exists {
			stats = cur.stats
		} else {
			if stats, err = d.allocStats(); err != nil {
				_ = d.releaseSet(s)
				undo()
				return err
			}
			fresh = append(fresh, stats)
		}
		flags := r.Flags &^ routeClone
		if s != nil && slices.ContainsFunc(s.oifs, func(o int) bool { return d.clone[o] }) {
			flags |= routeClone
		}
		val := ingressHcRoute{Iif: uint32(r.IIf), SetId: setID(s), StatsIdx: stats, Flags: uint32(flags)}
		p := pending{installed{iif: r.IIf, set: s, stats: stats, flags: r.Flags &^ routeClone}, len(keys)}
		if dup {
			p.i = prev.i
			vals[p.i] = val
		} else {
			keys = append(keys, key.bpfKey())
			vals = append(vals, val)
		}
		next[key] = p
	}
	if len(keys) > 0 {
		if _, err := d.maps["routes"].BatchUpdate(keys, vals, nil); err != nil {
			undo()
			return fmt.Errorf("install %d routes: %w", len(keys), err)
		}
	}
	// The routes point at their new sets now: the old ones can go.
	var errs []error
	for k, v := range next {
		if cur, ok := d.routes[k]; ok {
			errs = append(errs, d.releaseSet(cur.set))
		}
		d.routes[k] = v.installed
	}
	return errors.Join(errs...)
}

func setID(s *oifSet) uint32 {
	if s == nil {
		return 0
	}
	return s.id
}

// DeleteRoutes removes routes in one batch; unknown keys are ignored.
func (d *Dataplane) DeleteRoutes(keys []RouteKey) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var bkeys []ingressHcRouteKey
	var gone []installed
	seen := map[RouteKey]bool{}
	for _, k := range keys {
		k = k.normalize()
		r, ok := d.routes[k]
		if !ok || seen[k] {
			continue
		}
		seen[k] = true
		bkeys = append(bkeys, k.bpfKey())
		gone = append(gone, r)
	}
	if len(bkeys) == 0 {
		return nil
	}
	if _, err := d.maps["routes"].BatchDelete(bkeys, nil); err != nil {
		return fmt.Errorf("delete %d routes: %w", len(bkeys), err)
	}
	var errs []error
	for k := range seen {
		delete(d.routes, k)
	}
	for _, r := range gone {
		d.freeStats = append(d.freeStats, r.stats)
		errs = append(errs, d.releaseSet(r.set))
	}
	return errors.Join(errs...)
}

// Routes returns every route with its counters, sorted by group then source.
func (d *Dataplane) Routes() ([]RouteStats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]RouteStats, 0, len(d.routes))
	var per []ingressHcCounter
	for k, r := range d.routes {
		rs := RouteStats{Route: Route{RouteKey: k, IIf: r.iif, Flags: r.flags}}
		if r.set != nil {
			rs.OIfs = slices.Clone(r.set.oifs)
		}
		if err := d.maps["route_stats"].Lookup(r.stats, &per); err != nil {
			return nil, fmt.Errorf("read counters of %s: %w", k, err)
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

// Route reads one route back from the kernel's routes map (not from the
// Go view), with its outgoing interfaces from the set it points at.
func (d *Dataplane) Route(k RouteKey) (Route, bool, error) {
	var v ingressHcRoute
	if err := d.maps["routes"].Lookup(k.bpfKey(), &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return Route{}, false, nil
		}
		return Route{}, false, fmt.Errorf("read route %s: %w", k, err)
	}
	r := Route{RouteKey: k.normalize(), IIf: int(v.Iif), Flags: RouteFlags(v.Flags) &^ routeClone}
	d.mu.Lock()
	if s := d.setByID[v.SetId]; s != nil {
		r.OIfs = slices.Clone(s.oifs)
	}
	d.mu.Unlock()
	return r, true, nil
}

// Reasons returns the frame counts by reason, summed over CPUs.
func (d *Dataplane) Reasons() (map[Reason]uint64, error) {
	out := make(map[Reason]uint64, numReasons)
	var per []uint64
	for r := Reason(0); r < numReasons; r++ {
		if err := d.maps["reasons"].Lookup(r, &per); err != nil {
			return nil, fmt.Errorf("read reason %s: %w", ReasonName(r), err)
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		out[r] = sum
	}
	return out, nil
}

// SetCount is the number of distinct outgoing sets in use (idle ones not
// counted).
func (d *Dataplane) SetCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.setByID) - d.idleSets
}

// IdleSetCount is the number of outgoing sets installed that no route uses.
func (d *Dataplane) IdleSetCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.idleSets
}

// SetVRRPMaster installs (master) or removes the fast-path state of a VRRP
// group on an interface: acceptance of its virtual MAC and the virtual IPs
// answered from XDP and sourced with the virtual MAC. Together with
// SetIface (gate, source MAC) this is the whole switchover: map writes only.
func (d *Dataplane) SetVRRPMaster(ifindex int, vrid uint8, vips []netip.Addr, master bool) error {
	key := ingressHcVmacKey{Ifindex: uint32(ifindex), Vrid: uint32(vrid)}
	var errs []error
	if master {
		for _, a := range vips {
			k := ingressHcVipKey{Ifindex: uint32(ifindex), Addr: a.As16()}
			if err := d.maps["vips"].Put(k, ingressHcVip{Vrid: uint32(vrid)}); err != nil {
				errs = append(errs, fmt.Errorf("virtual ip %s: %w", a, err))
			}
		}
		if err := d.maps["vmacs"].Put(key, uint32(1)); err != nil {
			errs = append(errs, fmt.Errorf("virtual mac of vrid %d: %w", vrid, err))
		}
		return errors.Join(errs...)
	}
	if err := d.maps["vmacs"].Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		errs = append(errs, fmt.Errorf("virtual mac of vrid %d: %w", vrid, err))
	}
	for _, a := range vips {
		k := ingressHcVipKey{Ifindex: uint32(ifindex), Addr: a.As16()}
		if err := d.maps["vips"].Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("virtual ip %s: %w", a, err))
		}
	}
	return errors.Join(errs...)
}
