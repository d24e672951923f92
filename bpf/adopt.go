package bpf

import (
	"errors"
	"fmt"
	"net"
)

// adopt takes over a pinned dataplane whose maps Open has opened: it
// rebuilds the allocators (outgoing sets and their references, counter
// slots) from the maps, points every set at the new egress program and
// every pinned link at the new programs. Nothing is flushed: traffic keeps
// flowing.
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
	if err := d.adoptRoutes(live); err != nil {
		return err
	}
	if err := d.pinPrograms(d.pinPath); err != nil {
		return err
	}
	return d.links.adopt()
}

// adoptRoutes rebuilds from the routes map what each route holds (counter
// slot, set reference) and which slots are free, after dropping the routes
// whose incoming interface is gone and moving those whose set the kernel
// emptied (to none) or left equal to another (to that one).
func (d *Dataplane) adoptRoutes(live map[int]bool) error {
	rt := d.rt
	keys, vals, err := dumpRoutes(d.maps.Routes, -1)
	if err != nil {
		return fmt.Errorf("read pinned routes: %w", err)
	}
	var dead []ingressHcRouteKey
	kept := 0
	ids := map[uint32]bool{}
	used := map[uint32]bool{} // counter slots
	for i, k := range keys {
		v := vals[i]
		if !live[int(v.Iif)] {
			dead = append(dead, k)
			continue
		}
		keys[kept], vals[kept] = k, v
		kept++
		if v.SetId != 0 {
			ids[v.SetId] = true
		}
		used[v.StatsIdx] = true
		rt.stats.next = max(rt.stats.next, v.StatsIdx+1)
	}
	keys, vals = keys[:kept], vals[:kept]
	if len(dead) > 0 {
		if _, err := d.maps.Routes.BatchDelete(dead, nil); err != nil {
			return fmt.Errorf("delete %d routes from interfaces that are gone: %w", len(dead), err)
		}
		d.log.Info("adoption: dropped routes whose incoming interface is gone", "routes", len(dead))
	}
	for i := uint32(0); i < rt.stats.next; i++ {
		if !used[i] {
			rt.stats.free = append(rt.stats.free, i)
		}
	}

	idList := make([]uint32, 0, len(ids))
	for id := range ids {
		idList = append(idList, id)
	}
	redo, err := rt.sets.adopt(idList)
	if err != nil {
		return err
	}
	var mkeys []ingressHcRouteKey
	var mvals []ingressHcRoute
	for i, v := range vals {
		if v.SetId == 0 {
			rt.held[keys[i]] = holding{slot: v.StatsIdx}
			continue
		}
		s, moved := redo[v.SetId]
		if !moved {
			s = rt.sets.byID[v.SetId]
		}
		if s != nil {
			s.refs++
		}
		rt.held[keys[i]] = holding{set: s, slot: v.StatsIdx}
		if moved {
			if s == nil {
				v.Flags &^= uint32(routeClone)
			} // else the members are what they were, or fewer: the clone bit stands
			v.SetId = setID(s)
			mkeys = append(mkeys, keys[i])
			mvals = append(mvals, v)
		}
	}
	if len(mkeys) > 0 {
		if _, err := d.maps.Routes.BatchUpdate(mkeys, mvals, nil); err != nil {
			return fmt.Errorf("move %d routes off emptied outgoing sets: %w", len(mkeys), err)
		}
	}
	if err := rt.sets.adopted(redo); err != nil {
		return err
	}
	if len(redo) > 0 {
		d.log.Info("adoption: outgoing sets lost interfaces that are gone", "sets", len(redo), "routes_moved", len(mkeys))
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
// interfaces that are not live.
func (d *Dataplane) dropDeadInterfaces(live map[int]bool) error {
	var gone []uint32
	var ik uint32
	var iv ingressHcIface
	it := d.maps.Ifaces.Iterate()
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
	mit := d.maps.Vmacs.Iterate()
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
	vit := d.maps.Vips.Iterate()
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
		errs = append(errs, ignoreMissing(d.maps.Ifaces.Delete(k)))
	}
	for _, k := range vmacs {
		errs = append(errs, ignoreMissing(d.maps.Vmacs.Delete(k)))
	}
	for _, k := range vips {
		errs = append(errs, ignoreMissing(d.maps.Vips.Delete(k)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("forget interfaces that are gone: %w", err)
	}
	if len(gone)+len(vmacs)+len(vips) > 0 {
		d.log.Info("adoption: forgot interfaces that are gone", "ifindexes", gone, "virtual_macs", len(vmacs), "virtual_ips", len(vips))
	}
	return nil
}
