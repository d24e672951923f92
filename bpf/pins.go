package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Pin layout under Options.PinPath (TestPinLayout holds it to what
// earlier versions pinned, so that they are adopted):
//
//	maps/NAME          every map, under its C name (maps.all)
//	progs/NAME         every program, under its C name (programs.all)
//	links/KIND/IFNAME  every link (links.go: xdp, tc, tci), dots in the
//	                   interface name written as colons
const (
	pinMaps  = "maps"
	pinProgs = "progs"
	pinLinks = "links"
)

// linkPin and ifname map interface names to pin names and back: bpffs
// refuses dots (VLAN devices are named eth0.100) and interface names cannot
// contain colons.
func linkPin(ifname string) string { return strings.ReplaceAll(ifname, ".", ":") }
func ifname(pin string) string     { return strings.ReplaceAll(pin, ":", ".") }

// openPinned opens the maps pinned under pinPath, refusing any whose shape
// differs from what spec (this build) declares.
func (m *sharedMaps) openPinned(spec *ebpf.CollectionSpec, pinPath string) error {
	for _, nm := range m.all() {
		p, err := ebpf.LoadPinnedMap(filepath.Join(pinPath, pinMaps, nm.name), nil)
		if err != nil {
			return fmt.Errorf("adopt pinned map %s: %w", nm.name, err)
		}
		if err := compatible(spec.Maps[nm.name], p); err != nil {
			if nm.name == ingressMapReasons && grownCounters(spec.Maps[nm.name], p) {
				// A release with more reasons: the counters move into a
				// map of the new size, pinned in the old one's place.
				np, gerr := growReasons(spec.Maps[nm.name], p, filepath.Join(pinPath, pinMaps, nm.name))
				p.Close()
				if gerr != nil {
					return fmt.Errorf("adopt pinned map %s: %w", nm.name, gerr)
				}
				*nm.m = np
				continue
			}
			p.Close()
			return fmt.Errorf("adopt pinned map %s (run hotcastd --cleanup to start afresh): %w", nm.name, err)
		}
		*nm.m = p
	}
	return nil
}

// grownCounters: the pinned map is the spec's but for fewer entries (the
// reasons counters of an earlier release, before reasons were added).
func grownCounters(spec *ebpf.MapSpec, m *ebpf.Map) bool {
	return m.Type() == spec.Type && m.KeySize() == spec.KeySize && m.ValueSize() == spec.ValueSize &&
		m.MaxEntries() < spec.MaxEntries
}

// growReasons makes the reasons map of this build, copies the pinned one's
// per-CPU counters into it and pins it at pin in the old one's place (the
// old programs keep theirs until the links switch to the new programs; the
// few frames they count meanwhile are not carried over).
func growReasons(spec *ebpf.MapSpec, old *ebpf.Map, pin string) (*ebpf.Map, error) {
	ns := spec.Copy()
	ns.Pinning = ebpf.PinNone
	m, err := ebpf.NewMap(ns)
	if err != nil {
		return nil, fmt.Errorf("grow to %d entries: %w", spec.MaxEntries, err)
	}
	var per []uint64
	for k := uint32(0); k < old.MaxEntries(); k++ {
		if err := old.Lookup(k, &per); err != nil {
			m.Close()
			return nil, fmt.Errorf("read counter %d: %w", k, err)
		}
		if err := m.Put(k, per); err != nil {
			m.Close()
			return nil, fmt.Errorf("copy counter %d: %w", k, err)
		}
	}
	tmp := pin + "_grown" // bpffs names take no dots
	_ = os.Remove(tmp)
	if err := m.Pin(tmp); err != nil {
		m.Close()
		return nil, fmt.Errorf("pin grown map: %w", err)
	}
	if err := os.Rename(tmp, pin); err != nil {
		_ = m.Unpin()
		m.Close()
		return nil, fmt.Errorf("replace the pin: %w", err)
	}
	return m, nil
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
	subs := []string{pinMaps, pinProgs}
	for _, kind := range linkKinds() {
		subs = append(subs, filepath.Join(pinLinks, string(kind)))
	}
	for _, sub := range subs {
		if err := os.MkdirAll(filepath.Join(tmp, sub), 0o700); err != nil {
			return fmt.Errorf("create pin directory: %w", err)
		}
	}
	fail := func(err error) error {
		_ = os.RemoveAll(tmp)
		return err
	}
	for _, nm := range d.maps.all() {
		if err := (*nm.m).Pin(filepath.Join(tmp, pinMaps, nm.name)); err != nil {
			return fail(fmt.Errorf("pin map %s: %w", nm.name, err))
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
	for _, nm := range d.maps.all() {
		if err := (*nm.m).Unpin(); err == nil {
			_ = (*nm.m).Pin(filepath.Join(d.pinPath, pinMaps, nm.name))
		}
	}
	return d.pinPrograms(d.pinPath)
}

// pinPrograms pins (or re-pins, replacing an adopted dataplane's) every
// program under dir.
func (d *Dataplane) pinPrograms(dir string) error {
	for _, np := range d.progs.all() {
		path := filepath.Join(dir, pinProgs, np.name)
		_ = os.Remove(path)
		if err := (*np.p).Pin(path); err != nil {
			return fmt.Errorf("pin program %s: %w", np.name, err)
		}
	}
	return nil
}

// Cleanup removes a pinned dataplane: links (which detaches the programs
// from the interfaces), programs and maps.
func Cleanup(pinPath string) error {
	if pinPath == "" {
		return nil
	}
	var errs []error
	for _, kind := range linkKinds() {
		dir := filepath.Join(pinPath, pinLinks, string(kind))
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if l, err := link.LoadPinnedLink(filepath.Join(dir, e.Name()), nil); err == nil {
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
