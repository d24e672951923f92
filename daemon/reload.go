package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/hotcast/hotcast/daemon/config"
	"github.com/hotcast/hotcast/sync/rbs"
)

// ErrNeedsRestart is returned by Reload for changes it cannot apply in
// place; the running configuration stays in force.
var ErrNeedsRestart = errors.New("needs a restart")

// Reload applies a new configuration (SIGHUP) in place, touching only what
// changed, as a router's configuration commit does:
//
//   - multicast.static-routes: as a difference (unchanged routes are not
//     rewritten);
//   - multicast.upstream: a new interface becomes the incoming interface
//     of every learned route (one batch); the mld-proxy host starts, stops
//     (leaving its groups upstream) or moves with the mode and interface;
//   - interfaces[X].addresses: the addresses no longer configured are
//     removed from X, the new ones added as at start-up;
//   - interfaces[X].mld: the new parameters go to the running MLD router
//     (learned groups and their routes stay; RFC 3810 timers already
//     running keep going); enable starts MLD on X, disable stops it (X's
//     groups and their memberships go);
//   - interfaces[X].vrrp6[N]: a changed group is reconfigured in its
//     running state machine (RFC 9568: a Master advertises a new priority
//     in its next advert, a Backup compares with the next advert it
//     hears); an added group starts, a removed one shuts down (priority 0
//     if Master, virtual addresses and gate released);
//   - interfaces[X].multicast-track-vrrp6: the gate follows the newly
//     tracked group's state (forwards when untracked);
//   - interfaces added or removed: the fast path is attached and the
//     protocols started, or the protocols stopped, the memberships removed
//     and the programs detached and unpinned;
//   - remote-backup-services and remote-backup-profiles: a changed service
//     is stopped and started anew, an added one started, a removed one
//     stopped; a profile added, changed or on a replaced service is bound
//     (anew) in its VRRP6 group's current role, a removed one unbound and
//     withdrawn from the peer. MLD state and routes stay meanwhile (a
//     standby keeps its synced entries until the new session's batch);
//   - interfaces[X].remote-backup-profile: displayed from then on (the
//     profile itself binds to its vrrp6.interface);
//   - api: a changed socket or metrics address gets a new listener.
//
// Anything else (sysname, bpf, multicast.routing-enable, an interface's
// egress) is refused as a whole with ErrNeedsRestart and the list of what
// cannot be applied: then nothing at all is applied and the running
// configuration stays (hotcastd can be restarted, which is hitless for
// the fast path). A step that fails while applying is logged and left
// out; the running configuration records what was applied.
func (d *Daemon) Reload(next *config.Config) error {
	if !d.started.Load() {
		return errors.New("reload: not running")
	}
	req := reloadRequest{next: next, done: make(chan error, 1)}
	select {
	case d.reloads <- req:
		return <-req.done
	case <-d.stopped:
		return errors.New("reload: not running")
	}
}

// reloadRequest is a Reload handed to Run's goroutine.
type reloadRequest struct {
	next *config.Config
	done chan error
}

// reload applies a configuration on Run's goroutine (the control path:
// start-up, reloads and shutdown run there one after the other), with
// Run's context: what it starts lives as long as the daemon.
func (d *Daemon) reload(ctx context.Context, next *config.Config) error {
	cs := config.Diff(d.cfg, next)
	bc := config.DiffBFD(d.cfg, next)
	pc := config.DiffPIM(d.cfg, next)
	if cs.Empty() && bc.Empty() && pc.Empty() {
		d.log.Info("reload: nothing changed")
		return nil
	}
	list := append(append(cs.Strings(), bc.Strings()...), pc.Strings()...)
	refused := append(refused(&cs), pc.Refused()...) // PIM is set up at start
	if bc.RealtimePriority && d.bfd != nil {
		refused = append(refused, "bfd.realtime-priority "+config.Modified.String()+" (the engine thread is set up at start)")
	}
	if len(refused) > 0 {
		d.log.Error("reload refused: nothing applied, the running configuration stays", "refused", refused, "changes", list)
		return fmt.Errorf("reload: %s: %w (nothing applied)", strings.Join(refused, "; "), ErrNeedsRestart)
	}
	p, err := d.prepare(next, &cs)
	if err != nil {
		d.log.Error("reload failed: nothing applied, the running configuration stays", "err", err, "changes", list)
		return fmt.Errorf("reload: %w", err)
	}
	d.log.Info("reload: applying", "changes", list)
	errs := d.apply(ctx, next, &cs, p)
	errs = append(errs, d.reloadBFD(ctx, next, bc)...)
	if len(errs) > 0 {
		err := errors.Join(errs...)
		d.log.Error("reload: applied in part", "err", err)
		return fmt.Errorf("reload: %w", err)
	}
	d.log.Info("reload: applied", "changes", len(list))
	return nil
}

// refused lists the changes Reload cannot apply in place, with why, in the
// order of the change set. Every other field of the change set is applied
// by apply (TestChangeSetHandled keeps the two in step).
func refused(cs *config.ChangeSet) []string {
	var out []string
	no := func(path, why string) { out = append(out, path+" "+config.Modified.String()+" ("+why+")") }
	if cs.Sysname {
		no(config.PathSysname, "it names the socket, the pins and this router to its RBS peer")
	}
	if cs.BPF {
		no(config.PathBPF, "the dataplane is opened and pinned at start")
	}
	if cs.RoutingEnable {
		no(config.PathRoutingEnable, "it attaches or detaches the fast path on every interface")
	}
	for i := range cs.Interfaces {
		if ic := &cs.Interfaces[i]; ic.Egress {
			no(ic.Path()+"."+config.KeyEgress, "routes through the interface are built for its egress mode")
		}
	}
	return out
}

// prepared is what Reload acquires before changing anything: the added
// interfaces resolved against the system, new listeners and the hot-backup
// services to start.
type prepared struct {
	added    map[string]*iface
	api      net.Listener // the new API socket, if it changed
	metrics  net.Listener // the new metrics listener, if it changed and is on
	rbs      rbsPlan
	services map[string]*rbs.Service // built, not running
}

func (p *prepared) close() {
	if p.api != nil {
		p.api.Close()
	}
	if p.metrics != nil {
		p.metrics.Close()
	}
}

func (d *Daemon) prepare(next *config.Config, cs *config.ChangeSet) (*prepared, error) {
	p := &prepared{added: map[string]*iface{}}
	for i := range next.Interfaces {
		ic := &next.Interfaces[i]
		if ch := cs.Interface(ic.Name); ch == nil || ch.Op != config.Added {
			continue
		}
		nl, err := d.sys.Interface(ic.Name)
		if err != nil {
			return nil, fmt.Errorf("interfaces[%d] %s: %w", i, ic.Name, err)
		}
		if d.byIdx[nl.Index] != nil {
			return nil, fmt.Errorf("interfaces[%d] %s: ifindex %d is already configured as %s", i, ic.Name, nl.Index, d.byIdx[nl.Index].name)
		}
		icc := *ic
		ifc, err := newIface(&icc, nl, d.log)
		if err != nil {
			return nil, fmt.Errorf("interfaces[%d] %w", i, err)
		}
		p.added[ic.Name] = ifc
	}
	p.rbs = planRBS(d.cfg, next, cs)
	svcs, err := d.prepareRBS(next, &p.rbs)
	if err != nil {
		return nil, err
	}
	p.services = svcs
	if s := next.API.Socket; cs.API && s != d.cfg.API.Socket {
		l, err := listenAPI(s)
		if err != nil {
			return nil, err
		}
		p.api = l
	}
	if m := next.API.MetricsListen; cs.API && m != d.cfg.API.MetricsListen && m != "" {
		l, err := listenMetrics(m)
		if err != nil {
			p.close()
			return nil, err
		}
		p.metrics = l
	}
	return p, nil
}

// apply makes the running daemon match next, in an order that keeps what
// is unchanged undisturbed and what is in use in place while used:
// interfaces are added first (static routes, the upstream and profiles may
// use them); the profiles and services that go are unbound and stopped
// (before the MLD routers they use may stop); the static routes and the
// upstream change; an mld-proxy that no longer serves its interface stops;
// the interfaces that stay change; a new mld-proxy starts (MLD is off on
// its interface by then); the new services and profiles start (their MLD
// routers and VRRP6 groups run by then); the removed interfaces go (static
// routes, the upstream and profiles no longer use them); last the
// listeners. d.cfg ends as what was applied.
func (d *Daemon) apply(ctx context.Context, next *config.Config, cs *config.ChangeSet, p *prepared) []error {
	var errs []error
	old := d.cfg

	for _, ic := range next.Interfaces {
		if ifc := p.added[ic.Name]; ifc != nil {
			if err := d.addIface(ctx, ifc); err != nil {
				errs = append(errs, err)
			}
		}
	}
	d.dropRBS(&p.rbs)
	staticOK := true
	if cs.StaticRoutes {
		if err := d.setStatic(next); err != nil {
			errs = append(errs, err)
			staticOK = false
		}
	}
	up, err := d.moveUpstream(old.Multicast.Upstream, next.Multicast.Upstream)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ic := range next.Interfaces {
		// An interface that stays, with parts changed.
		if ch := cs.Interface(ic.Name); ch != nil && ch.Op == config.Modified {
			errs = append(errs, d.changeIface(ctx, d.ifaces[ic.Name], &ic, ch)...)
		}
	}
	if next.Multicast.Upstream.Mode == config.UpstreamMLDProxy && up.Interface == next.Multicast.Upstream.Interface && d.proxy.Load() == nil {
		if err := d.startProxy(ctx, next.Multicast.Upstream); err != nil {
			errs = append(errs, err)
		} else {
			up.Mode = config.UpstreamMLDProxy
		}
	}
	errs = append(errs, d.addRBS(ctx, next, &p.rbs, p.services)...)
	for _, ch := range cs.Interfaces {
		if ifc := d.ifaces[ch.Name]; ch.Op == config.Removed && ifc != nil {
			if err := d.removeIface(ifc); err != nil {
				errs = append(errs, err)
			}
		}
	}
	api := old.API
	if cs.API {
		api = d.swapServers(ctx, next, p)
	}

	// The running configuration: next, but what failed keeps its old
	// value.
	run := *next
	run.API = api
	run.Multicast.Upstream = up
	if !staticOK {
		run.Multicast.StaticRoutes = old.Multicast.StaticRoutes
	}
	run.Services, run.Profiles = d.rbsRecord()
	run.Interfaces = make([]config.Interface, 0, len(d.ifaces))
	for _, ic := range next.Interfaces {
		if ifc := d.ifaces[ic.Name]; ifc != nil {
			run.Interfaces = append(run.Interfaces, *ifc.cfg)
		}
	}
	d.cfg = &run
	return errs
}

// moveUpstream applies a changed multicast.upstream up to starting a new
// mld-proxy, which waits until the interfaces changed: a new interface
// becomes the incoming interface of the learned routes, and a running
// proxy that no longer serves the upstream (mode static, or another
// interface) stops and leaves its groups there. It returns the upstream
// now in force (mode mld-proxy only while a proxy runs).
func (d *Daemon) moveUpstream(old, next config.Upstream) (config.Upstream, error) {
	cur := old
	if d.proxy.Load() == nil {
		cur.Mode = config.UpstreamStatic
	}
	if old == next {
		return cur, nil
	}
	var err error
	if next.Interface != old.Interface {
		idx := 0
		if ifc := d.ifaces[next.Interface]; ifc != nil {
			idx = ifc.index
		}
		if err = d.table.SetUpstream(idx); err != nil {
			err = fmt.Errorf("upstream %s: %w", next.Interface, err)
		} else {
			cur.Interface = next.Interface
			d.log.Info("reload: upstream interface moved", "from", old.Interface, "to", next.Interface, "ifindex", idx)
		}
	}
	if p := d.proxy.Load(); p != nil && (next.Mode != config.UpstreamMLDProxy || p.name != next.Interface) {
		d.stopProxy(true)
		cur.Mode = config.UpstreamStatic
	}
	return cur, err
}

// setStatic applies next's static routes as a difference.
func (d *Daemon) setStatic(next *config.Config) error {
	for _, r := range next.Multicast.StaticRoutes {
		for _, n := range append([]string{r.Incoming}, r.Interfaces...) {
			if d.ifaces[n] == nil {
				return fmt.Errorf("static routes: interface %s is not running", n)
			}
		}
	}
	routes := d.staticRoutes(next)
	if err := d.table.SetStatic(routes); err != nil {
		return fmt.Errorf("static routes: %w", err)
	}
	d.log.Info("reload: static routes applied", "routes", len(routes))
	return nil
}

// addIface brings up an interface added by a reload as start-up does:
// addresses, fast path, then its protocols.
func (d *Daemon) addIface(ctx context.Context, ifc *iface) error {
	log := ifc.log()
	if err := d.ensureIfaceAddresses(ifc, ifc.cfg.Addresses); err != nil {
		log.Warn("reload: interface addresses", "err", err)
	}
	if d.cfg.Multicast.RoutingEnable {
		if err := d.attachIface(ifc); err != nil {
			_ = d.dp.Detach(ifc.name)
			return fmt.Errorf("interface %s: %w", ifc.name, err)
		}
	}
	d.mu.Lock()
	d.ifaces[ifc.name] = ifc
	d.byIdx[ifc.index] = ifc
	d.mu.Unlock()
	want := ifc.cfg
	applied := *want
	applied.VRRP6 = nil
	var errs []error
	if want.MLD.Enable {
		if err := d.startIfaceMLD(ctx, ifc); err != nil {
			errs = append(errs, err)
			applied.MLD.Enable = false
		}
	}
	for i := range want.VRRP6 {
		if err := d.addGroup(ctx, ifc, &want.VRRP6[i]); err != nil {
			errs = append(errs, err)
			continue
		}
		applied.VRRP6 = append(applied.VRRP6, want.VRRP6[i])
	}
	d.publishCfg(ifc, &applied)
	log.Info("reload: interface added", "ifindex", ifc.index, "mld", applied.MLD.Enable, "vrrp6_groups", len(applied.VRRP6))
	return errors.Join(errs...)
}

// removeIface takes down an interface a reload removed: its protocols (a
// Master VRRP6 group sends priority 0 and releases its addresses), its
// memberships, then its fast path (the links are unpinned, so the
// programs leave the interface).
func (d *Daemon) removeIface(ifc *iface) error {
	for _, g := range slices.Clone(ifc.vrrp) {
		d.removeGroup(ifc, g)
	}
	d.closeVRRP(ifc)
	d.stopIfaceMLD(ifc)
	var errs []error
	if err := d.table.ReplaceInterface(ifc.index, nil); err != nil {
		errs = append(errs, err)
	}
	if err := d.dp.Detach(ifc.name); err != nil {
		errs = append(errs, err)
	}
	if err := d.dp.DeleteIface(ifc.index); err != nil {
		errs = append(errs, err)
	}
	d.mu.Lock()
	delete(d.ifaces, ifc.name)
	delete(d.byIdx, ifc.index)
	d.mu.Unlock()
	ifc.log().Info("reload: interface removed")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("interface %s: remove: %w", ifc.name, err)
	}
	return nil
}

// changeIface applies the changes ch of an interface that stays:
// addresses, MLD, VRRP6 groups and gate tracking, each left as it was if
// it fails (its remote-backup-profile binding is only displayed: the new
// configuration is published).
func (d *Daemon) changeIface(ctx context.Context, ifc *iface, want *config.Interface, ch *config.InterfaceChange) []error {
	old := ifc.cfg
	w := *want
	want = &w
	// What follows the tracked group and the report filter see the new
	// interface configuration from now on (a group shutting down below
	// no longer moves a gate that now tracks another group).
	d.publishCfg(ifc, want)
	applied := *want
	var errs []error

	if ch.Addresses {
		if err := d.changeAddresses(ifc, old.Addresses, want.Addresses); err != nil {
			// Recorded as before, so that the next reload tries again.
			errs = append(errs, err)
			applied.Addresses = old.Addresses
		}
	}

	switch o, n := old.MLD, want.MLD; {
	case !ch.MLD:
	case o.Enable && !n.Enable:
		d.stopIfaceMLD(ifc)
	case !o.Enable && n.Enable:
		if err := d.startIfaceMLD(ctx, ifc); err != nil {
			errs = append(errs, err)
			applied.MLD = o
		}
	case n.Enable:
		if err := ifc.mld.SetParams(mldParams(n)); err != nil {
			errs = append(errs, fmt.Errorf("interface %s: %w", ifc.name, err))
			applied.MLD = o
		}
	}
	if o, n := old.MLD, applied.MLD; o != n {
		ifc.log().Info("reload: mld applied", "enable", n.Enable, "version", n.Version, "query_interval", n.QueryInterval,
			"robustness", n.Robustness, "max_response_time", n.MaxResponseTime,
			"last_listener_query_interval", n.LastListenerQueryInterval, "max_groups", n.MaxGroups)
	}

	// VRRP6: removed groups first, then changed and added ones in the
	// order of the new configuration.
	var groups []config.VRRP6
	for _, gch := range ch.VRRP6 {
		if g := ifc.group(gch.VRID); gch.Op == config.Removed && g != nil {
			d.removeGroup(ifc, g)
		}
	}
	for _, gc := range want.VRRP6 {
		switch ch.Group(gc.VRID) {
		case config.Added:
			if err := d.addGroup(ctx, ifc, &gc); err != nil {
				errs = append(errs, err)
				continue
			}
		case config.Modified:
			oc, g := old.Group(gc.VRID), ifc.group(gc.VRID) // recorded groups run
			if err := g.router.Reconfigure(routerConfig(ifc, &gc)); err != nil {
				errs = append(errs, fmt.Errorf("interface %s: %w", ifc.name, err))
				groups = append(groups, *oc)
				continue
			}
			d.initTracking(g.router, gc.TrackInterfaces)
			ifc.log().Info("reload: vrrp6 group reconfigured", "vrid", gc.VRID, "priority", gc.Priority,
				"advertise_interval", gc.AdvertiseInterval, "preempt", gc.Preempt, "preempt_delay", gc.PreemptDelay,
				"accept_mode", gc.AcceptMode, "virtual_ips", gc.VirtualIPs)
		}
		groups = append(groups, gc)
	}
	applied.VRRP6 = groups
	if len(ifc.vrrp) == 0 {
		d.closeVRRP(ifc)
	}
	d.publishCfg(ifc, &applied)
	if ch.TrackVRRP6 {
		d.resyncGate(ifc)
	}
	return errs
}

// changeAddresses makes the interface's configured addresses follow a
// reload: those no longer configured are removed first (a prefix length
// change is a removal and an addition), then the new ones are added as at
// start-up. Other addresses (link-local, VRRP6 virtual IPs, addresses
// not configured in hotcast) are left alone.
func (d *Daemon) changeAddresses(ifc *iface, old, want []netip.Prefix) error {
	var gone []netip.Prefix
	for _, p := range old {
		if !slices.Contains(want, p) {
			gone = append(gone, p)
		}
	}
	err := d.removeIfaceAddresses(ifc, gone)
	if aerr := d.ensureIfaceAddresses(ifc, want); aerr != nil {
		err = errors.Join(err, aerr)
	}
	if err != nil {
		return err
	}
	ifc.log().Info("reload: addresses applied", "addresses", want, "removed", gone)
	return nil
}

func (ifc *iface) group(vrid uint8) *vrrpGroup {
	for _, g := range ifc.vrrp {
		if g.vrid == vrid {
			return g
		}
	}
	return nil
}

// publishCfg makes cfg the interface's configuration for every reader,
// with its groups' configuration.
func (d *Daemon) publishCfg(ifc *iface, cfg *config.Interface) {
	d.mu.Lock()
	ifc.cfg = cfg
	for _, g := range ifc.vrrp {
		if gc := cfg.Group(g.vrid); gc != nil {
			g.cfg = gc
		}
	}
	d.mu.Unlock()
	ifc.ignoreReports.Store(ignoreReports(cfg))
}

// addGroup starts a VRRP6 group a reload added (the interface's socket is
// opened for its first group). It starts in Backup as at start-up, unless
// the link is down: the link watcher starts it when the link comes up.
func (d *Daemon) addGroup(ctx context.Context, ifc *iface, gc *config.VRRP6) error {
	if ifc.vrrpConn == nil {
		if err := d.openVRRP(ctx, ifc); err != nil {
			return err
		}
	}
	d.watchLinks(ctx)
	g, err := d.newVRRPGroup(ifc, gc)
	if err != nil {
		if len(ifc.vrrp) == 0 {
			d.closeVRRP(ifc)
		}
		return err
	}
	d.initTracking(g.router, gc.TrackInterfaces)
	up, ok := d.sys.LinkUp(ifc.name)
	up = up || !ok
	if up {
		if err := g.router.Start(); err != nil {
			ifc.demux.Remove(g.vrid)
			return fmt.Errorf("interface %s: vrrp6 vrid %d: %w", ifc.name, g.vrid, err)
		}
	}
	d.mu.Lock()
	ifc.vrrp = append(slices.Clone(ifc.vrrp), g)
	d.mu.Unlock()
	ifc.log().Info("reload: vrrp6 group added", "vrid", g.vrid, "started", up)
	return nil
}

// removeGroup shuts down a VRRP6 group a reload removed: it no longer gets
// adverts, then leaves its state as on shutdown (a Master sends priority 0
// and its transition releases the virtual addresses, and the gate if it
// is still tracked).
func (d *Daemon) removeGroup(ifc *iface, g *vrrpGroup) {
	d.mu.Lock()
	ifc.vrrp = slices.DeleteFunc(slices.Clone(ifc.vrrp), func(x *vrrpGroup) bool { return x == g })
	d.mu.Unlock()
	if ifc.demux != nil {
		ifc.demux.Remove(g.vrid)
	}
	was := g.router.State()
	g.router.Shutdown()
	ifc.log().Info("reload: vrrp6 group removed", "vrid", g.vrid, "was", was)
}

// swapServers puts the API and metrics on their new listeners and returns
// the api section now in force.
func (d *Daemon) swapServers(ctx context.Context, next *config.Config, p *prepared) config.API {
	if p.api != nil {
		old := d.api
		d.api = d.serveAPI(ctx, p.api, next.API.Socket)
		if old != nil {
			old.close()
		}
		d.log.Info("reload: api socket moved", "socket", next.API.Socket)
	}
	if m := next.API.MetricsListen; m != d.cfg.API.MetricsListen {
		if d.metrics != nil {
			d.metrics.close()
			d.metrics = nil
		}
		if p.metrics != nil {
			d.metrics = d.serveMetrics(p.metrics, m)
		}
		d.log.Info("reload: metrics listener changed", "listen", m)
	}
	return next.API
}
