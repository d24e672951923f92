package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/daemon/config"
	"github.com/hotcast/hotcast/internal/inet"
)

// proxy is the RFC 4605 host side on the upstream interface: it reports
// the union of the downstream memberships so that an upstream router or
// snooping switch sends the traffic (multicast.upstream.mode: mld-proxy).
type proxy struct {
	name   string // the upstream interface
	host   *mld.Host
	conn   MLDConn
	sender *proxySender
}

// proxySender is the proxy host's Sender: the upstream socket until the
// proxy stops, nothing after (the host's retransmission timers may still
// fire).
type proxySender struct {
	conn    MLDConn
	stopped atomic.Bool
}

func (s *proxySender) SendMLD(dst netip.Addr, icmp []byte) error {
	if s.stopped.Load() {
		return nil
	}
	return s.conn.SendMLD(dst, icmp)
}

// startProxy starts the mld-proxy host on the upstream interface when up
// says so, and reports every current downstream group (control path).
func (d *Daemon) startProxy(ctx context.Context, up config.Upstream) error {
	if up.Mode != config.UpstreamMLDProxy {
		return nil
	}
	ifc := d.ifaces[up.Interface]
	if ifc == nil {
		return fmt.Errorf("mld-proxy: upstream interface %q is not configured", up.Interface)
	}
	ll, err := d.sys.LinkLocal(ifc.index)
	if err != nil {
		return fmt.Errorf("upstream %s: %w", ifc.name, err)
	}
	log := d.log.With("component", "mld-proxy", "interface", ifc.name)
	conn, err := d.sys.ListenMLD(ifc.name, ll, log)
	if err != nil {
		return fmt.Errorf("upstream %s: mld socket: %w", ifc.name, err)
	}
	snd := &proxySender{conn: conn}
	h, err := mld.NewHost(mld.HostConfig{Name: ifc.name, Address: ll, Sender: snd, Logger: log})
	if err != nil {
		conn.Close()
		return fmt.Errorf("upstream %s: %w", ifc.name, err)
	}
	d.proxy.Store(&proxy{name: ifc.name, host: h, conn: conn, sender: snd})
	d.readMLD(ctx, conn, log, h.HandlePacket)
	// Memberships learned before the proxy started.
	var groups []netip.Addr
	for _, m := range d.mldInstances() {
		for _, g := range m.Groups() {
			if !inet.LinkScope(g.Group) {
				groups = append(groups, g.Group)
			}
		}
	}
	d.refreshProxy(groups...)
	log.Info("mld-proxy started", "groups", len(groups))
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

// stopProxy stops the mld-proxy host, if one runs. With leave (a reload
// moved the upstream or turned the proxy off) it first reports that it
// no longer listens to any group (RFC 3810 §6.1 state-change reports to
// INCLUDE {}), so that the upstream stops sending through this interface
// at once; without (hotcastd stopping, the pinned fast path forwarding
// on), upstream keeps its state until it times out.
func (d *Daemon) stopProxy(leave bool) {
	p := d.proxy.Swap(nil)
	if p == nil {
		return
	}
	if leave {
		p.host.SetMemberships(nil)
	}
	p.sender.stopped.Store(true)
	p.conn.Close()
	if leave {
		d.log.Info("mld-proxy stopped", "interface", p.name)
	}
}
