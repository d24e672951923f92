package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/hotcast/hotcast/cmd/internal/config"
	"github.com/hotcast/hotcast/ctrl/mld"
)

// proxy is the RFC 4605 host side on the upstream interface: it reports
// the union of the downstream memberships so that an upstream router or
// snooping switch sends the traffic (multicast.upstream.mode: mld-proxy).
type proxy struct {
	host *mld.Host
	conn *mld.Conn
}

func (d *Daemon) startProxy(ctx context.Context) error {
	if d.cfg.Multicast.Upstream.Mode != config.UpstreamMLDProxy {
		return nil
	}
	up := d.ifaces[d.cfg.Multicast.Upstream.Interface]
	ll, err := linkLocal(up.index)
	if err != nil {
		return fmt.Errorf("upstream %s: %w", up.cfg.Name, err)
	}
	log := d.log.With("component", "mld-proxy", "interface", up.cfg.Name)
	conn, err := mld.Listen(up.cfg.Name, ll, log)
	if err != nil {
		return fmt.Errorf("upstream %s: mld socket: %w", up.cfg.Name, err)
	}
	h, err := mld.NewHost(mld.HostConfig{Name: up.cfg.Name, Address: ll, Sender: conn, Logger: log})
	if err != nil {
		conn.Close()
		return fmt.Errorf("upstream %s: %w", up.cfg.Name, err)
	}
	d.proxy.Store(&proxy{host: h, conn: conn})
	d.readMLD(ctx, conn, log, h.HandlePacket)
	// Memberships learned before the proxy started.
	var groups []netip.Addr
	for _, ifc := range d.ifaces {
		if ifc.mld == nil {
			continue
		}
		for _, g := range ifc.mld.Groups() {
			if !linkScope(g.Group) {
				groups = append(groups, g.Group)
			}
		}
	}
	d.refreshProxy(groups...)
	return nil
}

// refreshProxy recomputes the upstream membership of the given groups as
// the union of the downstream records (RFC 4605 4.1 / RFC 3810 merging
// rules): any EXCLUDE makes EXCLUDE with the intersection of the exclude
// lists minus every included source; otherwise INCLUDE with the union. The
// proxy host gets one membership change for all of them.
func (d *Daemon) refreshProxy(groups ...netip.Addr) {
	p := d.proxy.Load()
	if p == nil || len(groups) == 0 {
		return
	}
	next := make(map[netip.Addr]*mld.Membership, len(groups))
	downstream := d.mldInstances()
	for _, g := range groups {
		if _, done := next[g]; !done {
			next[g] = proxyMembership(downstream, g)
		}
	}
	p.host.UpdateMemberships(next)
}

// proxyMembership merges one group's downstream records; nil: no listener.
func proxyMembership(downstream []*mld.Interface, group netip.Addr) *mld.Membership {
	var (
		anyEx, anyIn bool
		exclude      map[netip.Addr]bool
		include      = map[netip.Addr]bool{}
	)
	for _, m := range downstream {
		// One lookup per interface: a change must not copy every group.
		if g, ok := m.Group(group); ok {
			star, inc, exc := g.Forwarding()
			if star {
				ex := map[netip.Addr]bool{}
				for _, s := range exc {
					if !anyEx || exclude[s] {
						ex[s] = true
					}
				}
				exclude, anyEx = ex, true
			} else {
				anyIn = anyIn || len(inc) > 0
				for _, s := range inc {
					include[s] = true
				}
			}
		}
	}
	switch {
	case anyEx:
		var ex []netip.Addr
		for s := range exclude {
			if !include[s] {
				ex = append(ex, s)
			}
		}
		slices.SortFunc(ex, netip.Addr.Compare)
		return &mld.Membership{Mode: mld.Exclude, Sources: ex}
	case anyIn:
		var in []netip.Addr
		for s := range include {
			in = append(in, s)
		}
		slices.SortFunc(in, netip.Addr.Compare)
		return &mld.Membership{Mode: mld.Include, Sources: in}
	}
	return nil
}

func (d *Daemon) stopProxy() {
	if p := d.proxy.Load(); p != nil {
		p.conn.Close()
	}
}
