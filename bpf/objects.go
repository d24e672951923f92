package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// sharedMaps are the dataplane's maps (include/maps.h), as bpf2go types them.
// They are made once, new (create) or from the pins (openPinned), and every
// program object is then loaded with them as MapReplacements, so all the
// programs share the same maps.
type sharedMaps struct{ ingressMaps }

// namedMap is one of the maps under the name the C code and the pins give
// it (bpf2go's constants).
type namedMap struct {
	name string
	m    **ebpf.Map
}

// all lists every map; TestMapsListed checks that it covers every map of
// every program object.
func (m *sharedMaps) all() []namedMap {
	return []namedMap{
		{ingressMapRoutes, &m.Routes},
		{ingressMapOifSets, &m.OifSets},
		{ingressMapSetMembers, &m.SetMembers},
		{ingressMapRouteStats, &m.RouteStats},
		{ingressMapIfaces, &m.Ifaces},
		{ingressMapReasons, &m.Reasons},
		{ingressMapVmacs, &m.Vmacs},
		{ingressMapVips, &m.Vips},
	}
}

// byName returns the maps by name, as MapReplacements want them.
func (m *sharedMaps) byName() map[string]*ebpf.Map {
	out := make(map[string]*ebpf.Map, len(m.all()))
	for _, nm := range m.all() {
		out[nm.name] = *nm.m
	}
	return out
}

// create makes every map afresh from spec.
func (m *sharedMaps) create(spec *ebpf.CollectionSpec) error {
	if err := spec.LoadAndAssign(&m.ingressMaps, nil); err != nil {
		return fmt.Errorf("create maps: %w", err)
	}
	return nil
}

func (m *sharedMaps) close() {
	for _, nm := range m.all() {
		if *nm.m != nil {
			(*nm.m).Close() // idempotent: a closed map's calls fail, they do not panic
		}
	}
}

// programs are the dataplane's programs, one per object, each loaded with
// the shared maps.
type programs struct {
	ingressPrograms   // HcIngress: XDP, on every attached interface
	devmapPrograms    // HcEgress: the outgoing sets' devmap egress program
	tcegressPrograms  // HcTcEgress: tcx egress, on VRRP6 interfaces
	tcingressPrograms // HcTcIngress: tcx ingress, on every attached interface
}

// namedProg is a program under its name in the object (and in the pins).
type namedProg struct {
	name string
	p    **ebpf.Program
}

func (p *programs) all() []namedProg {
	return []namedProg{
		{ingressProgHcIngress, &p.HcIngress},
		{devmapProgHcEgress, &p.HcEgress},
		{tcegressProgHcTcEgress, &p.HcTcEgress},
		{tcingressProgHcTcIngress, &p.HcTcIngress},
	}
}

// load loads every program against m. ingress is the ingress object's
// spec, which Open has already read for the maps.
func (p *programs) load(ingress *ebpf.CollectionSpec, m *sharedMaps) error {
	opts := &ebpf.CollectionOptions{MapReplacements: m.byName()}
	if err := ingress.LoadAndAssign(&p.ingressPrograms, opts); err != nil {
		return fmt.Errorf("load ingress program: %+v", err)
	}
	if err := loadDevmapObjects(&p.devmapPrograms, opts); err != nil {
		return fmt.Errorf("load devmap program: %+v", err)
	}
	if err := loadTcegressObjects(&p.tcegressPrograms, opts); err != nil {
		return fmt.Errorf("load tc program: %+v", err)
	}
	if err := loadTcingressObjects(&p.tcingressPrograms, opts); err != nil {
		return fmt.Errorf("load tc ingress program: %+v", err)
	}
	return nil
}

func (p *programs) close() {
	for _, np := range p.all() {
		if *np.p != nil {
			(*np.p).Close()
		}
	}
}
