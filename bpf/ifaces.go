package bpf

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/cilium/ebpf"
)

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
	if err := d.maps.Ifaces.Put(uint32(ifindex), v); err != nil {
		return fmt.Errorf("set interface %d: %w", ifindex, err)
	}
	d.rt.setClone(ifindex, ifc.Clone)
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
		if cur.Clone {
			d.rt.setClone(ifindex, true)
		}
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
	if err := d.maps.Ifaces.Lookup(uint32(ifindex), &v); err != nil {
		return Iface{}, fmt.Errorf("interface %d: %w", ifindex, err)
	}
	return Iface{
		Gate: v.Gate, SrcMAC: net.HardwareAddr(slices.Clone(v.SrcMac[:])), MAC: net.HardwareAddr(slices.Clone(v.Mac[:])),
		Clone: v.Flags&ifaceFlagClone != 0, NoRoute: v.Flags&ifaceFlagNoRoute != 0,
	}, nil
}

// DeleteIface removes an interface's entry: copies toward it are dropped.
func (d *Dataplane) DeleteIface(ifindex int) error {
	if err := d.maps.Ifaces.Delete(uint32(ifindex)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete interface %d: %w", ifindex, err)
	}
	// Idle sets naming the interface go: the kernel empties their devmap
	// entries when the device goes, and a later device may get its index.
	d.rt.mu.Lock()
	defer d.rt.mu.Unlock()
	return d.rt.sets.reclaimIdle(func(s *oifSet) bool { return slices.Contains(s.oifs, ifindex) }, 0)
}
