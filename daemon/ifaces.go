package daemon

import "slices"

// needsFastPath reports whether an interface gets the XDP and TC
// programs: every interface when multicast routing is on, and those with
// VRRP6 groups anyway (their virtual MAC is accepted, and the Neighbor
// Solicitations for their virtual IPs answered, only there). Control path.
func (d *Daemon) needsFastPath(ifc *iface) bool {
	return d.cfg.Multicast.RoutingEnable || len(ifc.cfg.VRRP6) > 0
}

// ifaceList returns the configured interfaces ordered by ifindex: a
// snapshot, to use without d.mu.
func (d *Daemon) ifaceList() []*iface {
	d.mu.RLock()
	out := make([]*iface, 0, len(d.ifaces))
	for _, ifc := range d.ifaces {
		out = append(out, ifc)
	}
	d.mu.RUnlock()
	slices.SortFunc(out, func(a, b *iface) int { return a.index - b.index })
	return out
}

// ifNames returns the configured interfaces' names by ifindex (a
// snapshot).
func (d *Daemon) ifNames() map[int]string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make(map[int]string, len(d.byIdx))
	for idx, ifc := range d.byIdx {
		out[idx] = ifc.name
	}
	return out
}
