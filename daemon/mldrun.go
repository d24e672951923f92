package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/daemon/config"
	"github.com/hotcast/hotcast/internal/inet"
)

// mldRun is one MLD router instance started on an interface. Its updates
// go through guard: once stop has run, an update still being delivered by
// the stopped instance (a timer that fired just before) changes nothing,
// so the memberships removed with it stay removed.
type mldRun struct {
	mu      sync.Mutex
	stopped bool
}

func (r *mldRun) guard(f func([]mld.Update)) func([]mld.Update) {
	return func(us []mld.Update) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.stopped {
			f(us)
		}
	}
}

func (r *mldRun) stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
}

// mldParams maps the configuration's MLD keys to the protocol's
// parameters (the counts follow the robustness, RFC 3810 §9.7, §9.9).
func mldParams(mc config.MLD) mld.Params {
	return mld.Params{
		Version:                   mc.Version,
		QueryInterval:             mc.QueryInterval,
		QueryResponseInterval:     mc.MaxResponseTime,
		Robustness:                int(mc.Robustness),
		LastListenerQueryInterval: mc.LastListenerQueryInterval,
		RequireRouterAlert:        mc.RequireRouterAlert,
		MaxGroups:                 mc.MaxGroups,
	}
}

// startIfaceMLD starts the MLD router of one interface (mld.enable): its
// socket, state machine and reader (control path).
func (d *Daemon) startIfaceMLD(ctx context.Context, ifc *iface) error {
	ll, err := d.sys.LinkLocal(ifc.index)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifc.name, err)
	}
	log := d.log.With("component", "mld", "interface", ifc.name)
	conn, err := d.sys.ListenMLD(ifc.name, ll, log)
	if err != nil {
		return fmt.Errorf("interface %s: mld socket: %w", ifc.name, err)
	}
	cfg := mld.DefaultConfig(ifc.name, ll)
	cfg.ApplyParams(mldParams(ifc.cfg.MLD))
	cfg.Sender = conn
	cfg.Logger = log
	run := &mldRun{}
	cfg.OnUpdates = run.guard(func(us []mld.Update) { d.applyMLD(ifc, us, log) })
	m, err := mld.New(cfg)
	if err != nil {
		conn.Close()
		return fmt.Errorf("interface %s: mld: %w", ifc.name, err)
	}
	// On a tracked interface only the VRRP6 Master queries: the tracker
	// hands the role over (resyncGate below) from the state it last saw.
	m.SetQuerierAllowed(ifc.cfg.MulticastTrackVRRP6 == 0)
	d.mu.Lock()
	ifc.linkLocal, ifc.mld, ifc.mldConn, ifc.mldRun = ll, m, conn, run
	d.mu.Unlock()
	d.resyncGate(ifc)
	m.Start()
	d.readMLD(ctx, conn, log, func(p mld.Packet) {
		// The reference's backup hears no reports on its access link;
		// this knob reproduces that while Backup.
		if ifc.ignoreReports.Load() && !ifc.master.Load() {
			return
		}
		m.HandlePacket(p)
	})
	return nil
}

// stopIfaceMLD stops the MLD router of an interface (control path): the
// groups it learned go, with their memberships and so the interface from
// the routes they made.
func (d *Daemon) stopIfaceMLD(ifc *iface) {
	d.mu.Lock()
	m, conn, run := ifc.mld, ifc.mldConn, ifc.mldRun
	ifc.mld, ifc.mldConn, ifc.mldRun = nil, nil, nil
	d.mu.Unlock()
	if m == nil {
		return
	}
	conn.Close()
	m.Stop()
	run.stop()
	var groups []netip.Addr
	for _, g := range m.Groups() {
		if !inet.LinkScope(g.Group) {
			groups = append(groups, g.Group)
		}
	}
	if err := d.table.ReplaceInterface(ifc.index, nil); err != nil {
		ifc.log().Error("remove mld memberships", "err", err)
	}
	if p := d.pimRunning(); p != nil {
		p.clearMembership(ifc.index, groups)
	}
	d.refreshProxy(groups...)
	ifc.log().Info("mld stopped", "groups_dropped", len(groups))
}

// mldInstances returns the running MLD routers (a snapshot).
func (d *Daemon) mldInstances() []*mld.Interface {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]*mld.Interface, 0, len(d.ifaces))
	for _, ifc := range d.ifaces {
		if ifc.mld != nil {
			out = append(out, ifc.mld)
		}
	}
	return out
}
