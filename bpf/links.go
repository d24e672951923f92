package bpf

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// linkKind is a kind of link, pinned under links/KIND/IFNAME.
type linkKind string

const (
	linkXDP linkKind = "xdp" // hc_ingress on every interface
	linkTC  linkKind = "tc"  // hc_tc_egress (tcx) on VRRP interfaces
	linkTCI linkKind = "tci" // hc_tc_ingress (tcx) on every interface
)

func linkKinds() []linkKind { return []linkKind{linkXDP, linkTC, linkTCI} }

type linkKey struct {
	kind linkKind
	name string // interface name
}

// linkTable holds the links of the programs to interfaces, pinned when the
// dataplane is.
type linkTable struct {
	log     *slog.Logger
	pinPath string // "": links are not pinned
	flags   link.XDPAttachFlags
	progs   *programs

	mu    sync.Mutex
	byKey map[linkKey]link.Link
}

func newLinkTable(log *slog.Logger, pinPath string, flags link.XDPAttachFlags, progs *programs) *linkTable {
	return &linkTable{log: log, pinPath: pinPath, flags: flags, progs: progs, byKey: map[linkKey]link.Link{}}
}

func (lt *linkTable) program(kind linkKind) *ebpf.Program {
	switch kind {
	case linkXDP:
		return lt.progs.HcIngress
	case linkTC:
		return lt.progs.HcTcEgress
	default:
		return lt.progs.HcTcIngress
	}
}

// Attach attaches the ingress program to an interface (bpf_link, pinned
// as links/xdp/NAME). With an adopted link already there, it is kept (it
// runs the new program since Open). The caller's goroutine must be in the
// interface's network namespace.
func (d *Dataplane) Attach(name string, ifindex int) error {
	if err := d.links.attach(linkXDP, name, ifindex); err != nil {
		return err
	}
	// The TC ingress program replicates clone-mode routes arriving here
	// (and restores PACKET_HOST for virtual-MAC frames on VRRP ports).
	return d.links.attach(linkTCI, name, ifindex)
}

// AttachTC attaches the TC egress program (tcx) of interfaces with VRRP6
// groups: packets sourced from a virtual IP leave with the virtual MAC.
// (The TC ingress program, attached by Attach, makes frames XDP
// re-addressed from the virtual MAC PACKET_HOST on drivers that build the
// skb before XDP: veth, generic.)
func (d *Dataplane) AttachTC(name string, ifindex int) error {
	return d.links.attach(linkTC, name, ifindex)
}

// Detach removes the programs from an interface and forgets its links.
func (d *Dataplane) Detach(name string) error { return d.links.detach(name) }

// Attached lists the interface names with an XDP link.
func (d *Dataplane) Attached() []string { return d.links.attached() }

func (lt *linkTable) attach(kind linkKind, name string, ifindex int) error {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	key := linkKey{kind, name}
	if l, ok := lt.byKey[key]; ok {
		if info, err := l.Info(); err == nil && linkIfindex(info) == ifindex {
			return nil
		}
		// The interface was recreated: the old link is dead.
		_ = l.Unpin()
		l.Close()
		delete(lt.byKey, key)
	}
	var l link.Link
	var err error
	switch kind {
	case linkXDP:
		l, err = link.AttachXDP(link.XDPOptions{Program: lt.progs.HcIngress, Interface: ifindex, Flags: lt.flags})
	case linkTC:
		l, err = link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: lt.progs.HcTcEgress, Attach: ebpf.AttachTCXEgress})
	case linkTCI:
		l, err = link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: lt.progs.HcTcIngress, Attach: ebpf.AttachTCXIngress})
	}
	if err != nil {
		return fmt.Errorf("attach %s to %s: %w", kind, name, err)
	}
	if lt.pinPath != "" {
		if err := l.Pin(filepath.Join(lt.pinPath, pinLinks, string(kind), linkPin(name))); err != nil {
			l.Close()
			return fmt.Errorf("pin %s link of %s: %w", kind, name, err)
		}
	}
	lt.byKey[key] = l
	lt.log.Info("attached", "kind", kind, "interface", name, "ifindex", ifindex)
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

func (lt *linkTable) detach(name string) error {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	var errs []error
	for _, kind := range linkKinds() {
		key := linkKey{kind, name}
		l, ok := lt.byKey[key]
		if !ok {
			continue
		}
		delete(lt.byKey, key)
		if lt.pinPath != "" {
			if err := l.Unpin(); err != nil {
				errs = append(errs, fmt.Errorf("unpin %s link of %s: %w", kind, name, err))
			}
		}
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

func (lt *linkTable) attached() []string {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	var names []string
	for key := range lt.byKey {
		if key.kind == linkXDP {
			names = append(names, key.name)
		}
	}
	slices.Sort(names)
	return names
}

// adopt takes over the pinned links, each now running this build's program
// of its kind. A link the kernel severed (its interface was deleted, maybe
// made again under the same name) is unpinned and dropped, one log line per
// interface: Attach attaches the interface of that name afresh.
func (lt *linkTable) adopt() error {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	severed := map[string][]linkKind{} // kinds by interface name
	for _, kind := range linkKinds() {
		dir := filepath.Join(lt.pinPath, pinLinks, string(kind))
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
				lt.log.Warn("dropping unusable pinned link", "path", path, "err", err)
				_ = os.Remove(path)
				continue
			}
			if err := l.Update(lt.program(kind)); err != nil {
				if !errors.Is(err, unix.ENOLINK) {
					l.Close()
					return fmt.Errorf("update pinned link %s/%s: %w", kind, e.Name(), err)
				}
				_ = l.Unpin()
				l.Close()
				severed[ifname(e.Name())] = append(severed[ifname(e.Name())], kind)
				continue
			}
			lt.byKey[linkKey{kind, ifname(e.Name())}] = l
		}
	}
	for _, name := range slices.Sorted(maps.Keys(severed)) {
		kinds := severed[name]
		slices.Sort(kinds)
		lt.log.Info("pinned links dropped: their interface is gone or was re-created; it is attached afresh", "interface", name, "kinds", kinds)
	}
	return nil
}

func (lt *linkTable) close() {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	for _, l := range lt.byKey {
		l.Close()
	}
	clear(lt.byKey)
}
