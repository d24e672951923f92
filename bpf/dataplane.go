// Package bpf loads, pins and drives hotcast's XDP fast path. It is the only
// code that touches the BPF maps: MLD, VRRP6 and RBS go through its API.
//
// By file:
//
//	dataplane.go  Open and Close: what a Dataplane is made of
//	objects.go    the loader: the typed maps, created once and shared by
//	              every program object, and the typed programs
//	pins.go       the pin layout under Options.PinPath; pinning a new
//	              dataplane, opening a pinned one's maps, Cleanup
//	adopt.go      adopting a pinned dataplane: what the Go side rebuilds
//	              from the kernel's maps
//	links.go      the programs attached to interfaces (pinned bpf_links)
//	ifaces.go     the ifaces map: gate, source MAC, clone and no-route
//	sets.go       the outgoing-set allocator (oif_sets, set_members)
//	routes.go     the routes map and its counters (route_stats)
//	vrrp.go       the vmacs and vips maps (the VRRP6 fast path)
//	reasons.go    the per-verdict frame counters (reasons)
//	types.go      the types of the API
//
// The kernel's maps are the state of record. Routes and Route read the
// routes map and the outgoing sets it points at, never a Go copy; a route
// write reads what it replaces from the map. The Go side keeps only what
// allocation needs: the outgoing sets that exist and how many routes use
// each, the free counter slots and the interfaces that replicate by
// cloning, all rebuilt from the maps when a pinned dataplane is adopted.
//
// Locks: linkTable.mu (attach, detach) and routing.mu (routes, sets,
// counter slots, clone interfaces) guard disjoint state and neither is
// taken while holding the other. Writes of the ifaces, vmacs and vips maps
// need no lock: each is one map update.
package bpf

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf/link"
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
	adopted bool

	maps  sharedMaps
	progs programs
	links *linkTable
	rt    *routing
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
	d := &Dataplane{log: log, pinPath: opts.PinPath}
	defer func() {
		if err != nil {
			d.closeFDs()
		}
	}()

	if d.pinPath != "" {
		if err := ensureBPFFS(d.pinPath); err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(d.pinPath, pinMaps)); err == nil {
			d.adopted = true
		}
	}
	spec, err := loadIngress()
	if err != nil {
		return nil, fmt.Errorf("load ingress spec: %w", err)
	}
	if d.adopted {
		err = d.maps.openPinned(spec, d.pinPath)
	} else {
		err = d.maps.create(spec)
	}
	if err != nil {
		return nil, err
	}
	if err := d.progs.load(spec, &d.maps); err != nil {
		return nil, err
	}
	d.links = newLinkTable(log, d.pinPath, opts.XDPFlags, &d.progs)
	d.rt = newRouting(&d.maps, d.progs.HcEgress, spec.Maps[ingressMapOifSets].InnerMap.Copy())

	if d.adopted {
		if err := d.adopt(); err != nil {
			return nil, err
		}
		log.Info("adopted pinned dataplane", "pin_path", d.pinPath, "routes", d.rt.stats.inUse(), "sets", len(d.rt.sets.byID), "links", len(d.links.byKey))
	} else if d.pinPath != "" {
		if err := d.pinNew(); err != nil {
			return nil, err
		}
		log.Info("pinned new dataplane", "pin_path", d.pinPath)
	}
	return d, nil
}

// Adopted reports whether Open took over a pinned dataplane.
func (d *Dataplane) Adopted() bool { return d.adopted }

// Close releases this process's handles. Pinned programs, maps and links
// stay: forwarding goes on without the daemon. Without a pin path,
// everything is detached and freed.
func (d *Dataplane) Close() error {
	d.links.close()
	d.rt.mu.Lock() // no route write half done
	defer d.rt.mu.Unlock()
	d.maps.close()
	d.progs.close()
	return nil
}

// closeFDs undoes a failed Open.
func (d *Dataplane) closeFDs() {
	if d.links != nil {
		d.links.close()
	}
	d.maps.close()
	d.progs.close()
}
