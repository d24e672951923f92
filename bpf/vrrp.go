package bpf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

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
			if err := d.maps.Vips.Put(k, ingressHcVip{Vrid: uint32(vrid)}); err != nil {
				errs = append(errs, fmt.Errorf("virtual ip %s: %w", a, err))
			}
		}
		if err := d.maps.Vmacs.Put(key, uint32(1)); err != nil {
			errs = append(errs, fmt.Errorf("virtual mac of vrid %d: %w", vrid, err))
		}
		return errors.Join(errs...)
	}
	if err := d.maps.Vmacs.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		errs = append(errs, fmt.Errorf("virtual mac of vrid %d: %w", vrid, err))
	}
	for _, a := range vips {
		k := ingressHcVipKey{Ifindex: uint32(ifindex), Addr: a.As16()}
		if err := d.maps.Vips.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("virtual ip %s: %w", a, err))
		}
	}
	return errors.Join(errs...)
}
