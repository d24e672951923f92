package daemon

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/hotcast/hotcast/cmd/internal/config"
	"github.com/vishvananda/netlink"
)

// ErrNeedsRestart is returned by Reload for changes it cannot apply in
// place; the running configuration stays in force.
var ErrNeedsRestart = errors.New("needs a restart")

// Reload applies a new configuration (SIGHUP) in place, touching only what
// changed, as a router's configuration commit does:
//
//   - multicast.static-routes: as a difference (unchanged routes are not
//     rewritten);
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
//   - interfaces added or removed (not bound to a hot-backup profile): the
//     fast path is attached and the protocols started, or the protocols
//     stopped, the memberships removed and the programs detached and
//     unpinned;
//   - api: a changed socket or metrics address gets a new listener.
//
// Anything else (sysname, bpf, multicast.routing-enable and upstream, the
// remote backup services and profiles, an interface's addresses, egress
// or profile binding, MLD on or off on a profile's interface) is refused
// as a whole with ErrNeedsRestart and the list of what cannot be applied:
// then nothing at all is applied and the running configuration stays
// (hotcastd can be restarted, which is hitless for the fast path). A step
// that fails while applying is logged and left out; the running
// configuration records what was applied.
func (d *Daemon) Reload(next *config.Config) error {
	d.ctl.Lock()
	defer d.ctl.Unlock()
	if !d.running {
		return errors.New("reload: not running")
	}
	changes := config.Diff(d.cfg, next)
	if len(changes) == 0 {
		d.log.Info("reload: nothing changed")
		return nil
	}
	var list []string
	for _, c := range changes {
		list = append(list, c.String())
	}
	if refused := d.refused(next, changes); len(refused) > 0 {
		d.log.Error("reload refused: nothing applied, the running configuration stays", "refused", refused, "changes", list)
		return fmt.Errorf("reload: %s: %w (nothing applied)", strings.Join(refused, "; "), ErrNeedsRestart)
	}
	p, err := d.prepare(next)
	if err != nil {
		d.log.Error("reload failed: nothing applied, the running configuration stays", "err", err, "changes", list)
		return fmt.Errorf("reload: %w", err)
	}
	d.log.Info("reload: applying", "changes", list)
	errs := d.apply(next, changes, p)
	if len(errs) > 0 {
		err := errors.Join(errs...)
		d.log.Error("reload: applied in part", "err", err)
		return fmt.Errorf("reload: %w", err)
	}
	d.log.Info("reload: applied", "changes", len(list))
	return nil
}

// refused lists the changes Reload cannot apply in place, with why.
func (d *Daemon) refused(next *config.Config, changes []config.Change) []string {
	old := d.cfg
	var out []string
	no := func(c config.Change, why string) { out = append(out, c.String()+" ("+why+")") }
	for _, c := range changes {
		name, rest, isIf := interfacePath(c.Path)
		switch {
		case c.Path == "multicast.static-routes", c.Path == "api":
		case c.Path == "sysname":
			no(c, "it names the socket, the pins and this router to its RBS peer")
		case c.Path == "bpf":
			no(c, "the dataplane is opened and pinned at start")
		case c.Path == "multicast.routing-enable":
			no(c, "it attaches or detaches the fast path on every interface")
		case c.Path == "multicast.upstream":
			no(c, "it is the incoming interface of every learned route and the mld-proxy host")
		case strings.HasPrefix(c.Path, "remote-backup-"):
			no(c, "hot-backup sessions and profiles are set up at start")
		case !isIf:
			no(c, "not applied in place")
		case rest == "" && c.Op == config.Added:
			if ic := next.Interface(name); ic.RemoteBackupProfile != "" || boundToProfile(next, name) {
				no(c, "it is bound to a remote backup profile")
			}
		case rest == "" && c.Op == config.Removed:
			if ic := old.Interface(name); ic.RemoteBackupProfile != "" || boundToProfile(old, name) {
				no(c, "it is bound to a remote backup profile")
			}
		case rest == "mld":
			o, n := old.Interface(name).MLD, next.Interface(name).MLD
			if o.Enable != n.Enable && (boundToProfile(old, name) || old.Interface(name).RemoteBackupProfile != "") {
				no(c, "the remote backup profile replicates this interface's MLD state")
			}
		case rest == "multicast-track-vrrp6", strings.HasPrefix(rest, "vrrp6["):
		case rest == "addresses":
			no(c, "interface addresses are set at start")
		case rest == "egress":
			no(c, "routes through the interface are built for its egress mode")
		default:
			no(c, "not applied in place")
		}
	}
	return out
}

// interfacePath splits "interfaces[NAME].rest" into NAME and rest.
func interfacePath(path string) (name, rest string, ok bool) {
	s, ok := strings.CutPrefix(path, "interfaces[")
	if !ok {
		return "", "", false
	}
	i := strings.IndexByte(s, ']')
	if i < 0 {
		return "", "", false
	}
	return s[:i], strings.TrimPrefix(s[i+1:], "."), true
}

// boundToProfile: a remote backup profile tracks a VRRP6 group on the
// interface (its MLD state is what the profile replicates).
func boundToProfile(c *config.Config, name string) bool {
	return slices.ContainsFunc(c.Profiles, func(p config.RBP) bool { return p.VRRP6.Interface == name })
}

// prepared is what Reload acquires before changing anything: the added
// interfaces resolved against the system and new listeners.
type prepared struct {
	added   map[string]*iface
	api     net.Listener // the new API socket, if it changed
	metrics net.Listener // the new metrics listener, if it changed and is on
}

func (p *prepared) close() {
	if p.api != nil {
		p.api.Close()
	}
	if p.metrics != nil {
		p.metrics.Close()
	}
}

func (d *Daemon) prepare(next *config.Config) (*prepared, error) {
	p := &prepared{added: map[string]*iface{}}
	for i := range next.Interfaces {
		ic := &next.Interfaces[i]
		if d.ifaces[ic.Name] != nil {
			continue
		}
		nl, err := net.InterfaceByName(ic.Name)
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
	if s := next.API.Socket; s != d.cfg.API.Socket {
		l, err := listenAPI(s)
		if err != nil {
			return nil, err
		}
		p.api = l
	}
	if m := next.API.MetricsListen; m != d.cfg.API.MetricsListen && m != "" {
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
// is unchanged undisturbed: interfaces are added first (static routes may
// use them), then the static routes change, then the interfaces that stay
// are changed, then the removed ones go (static routes no longer use
// them), and last the listeners. d.cfg ends as what was applied.
func (d *Daemon) apply(next *config.Config, changes []config.Change, p *prepared) []error {
	var errs []error
	old := d.cfg
	touched := map[string]bool{} // interfaces present before and after, changed
	static := false
	for _, c := range changes {
		name, rest, isIf := interfacePath(c.Path)
		switch {
		case c.Path == "multicast.static-routes":
			static = true
		case isIf && rest != "":
			touched[name] = true
		}
	}

	for _, ic := range next.Interfaces {
		if ifc := p.added[ic.Name]; ifc != nil {
			if err := d.addIface(ifc); err != nil {
				errs = append(errs, err)
			}
		}
	}
	staticOK := true
	if static {
		if err := d.setStatic(next); err != nil {
			errs = append(errs, err)
			staticOK = false
		}
	}
	for _, ic := range next.Interfaces {
		if touched[ic.Name] {
			errs = append(errs, d.changeIface(d.ifaces[ic.Name], &ic)...)
		}
	}
	for _, ic := range old.Interfaces {
		if next.Interface(ic.Name) == nil {
			if err := d.removeIface(d.ifaces[ic.Name]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	api := d.swapServers(next, p)

	// The running configuration: next, but what failed keeps its old
	// value.
	run := *next
	run.API = api
	if !staticOK {
		run.Multicast.StaticRoutes = old.Multicast.StaticRoutes
	}
	run.Interfaces = make([]config.Interface, 0, len(d.ifaces))
	for _, ic := range next.Interfaces {
		if ifc := d.ifaces[ic.Name]; ifc != nil {
			run.Interfaces = append(run.Interfaces, *ifc.cfg)
		}
	}
	d.cfg = &run
	return errs
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
func (d *Daemon) addIface(ifc *iface) error {
	log := ifc.log()
	if err := d.ensureIfaceAddresses(ifc); err != nil {
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
		if err := d.startIfaceMLD(d.ctx, ifc); err != nil {
			errs = append(errs, err)
			applied.MLD.Enable = false
		}
	}
	for i := range want.VRRP6 {
		if err := d.addGroup(ifc, &want.VRRP6[i]); err != nil {
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

// changeIface applies the changes of an interface that stays: MLD,
// VRRP6 groups and gate tracking, each left as it was if it fails.
func (d *Daemon) changeIface(ifc *iface, want *config.Interface) []error {
	old := ifc.cfg
	w := *want
	want = &w
	// What follows the tracked group and the report filter see the new
	// interface configuration from now on (a group shutting down below
	// no longer moves a gate that now tracks another group).
	d.publishCfg(ifc, want)
	applied := *want
	var errs []error

	switch o, n := old.MLD, want.MLD; {
	case o.Enable && !n.Enable:
		d.stopIfaceMLD(ifc)
	case !o.Enable && n.Enable:
		if err := d.startIfaceMLD(d.ctx, ifc); err != nil {
			errs = append(errs, err)
			applied.MLD = o
		}
	case n.Enable && o != n:
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

	// VRRP6: removed groups first, then changed, then added.
	var groups []config.VRRP6
	for _, g := range slices.Clone(ifc.vrrp) {
		if want.Group(g.vrid) == nil {
			d.removeGroup(ifc, g)
		}
	}
	for _, gc := range want.VRRP6 {
		oc := old.Group(gc.VRID)
		switch {
		case oc == nil:
			if err := d.addGroup(ifc, &gc); err != nil {
				errs = append(errs, err)
				continue
			}
		case !vrrpEqual(oc, &gc):
			g := ifc.group(gc.VRID)
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
	if old.MulticastTrackVRRP6 != applied.MulticastTrackVRRP6 {
		d.resyncGate(ifc)
	}
	return errs
}

func vrrpEqual(a, b *config.VRRP6) bool {
	return a.VRID == b.VRID && slices.Equal(a.VirtualIPs, b.VirtualIPs) && a.Priority == b.Priority &&
		a.Preempt == b.Preempt && a.PreemptDelay == b.PreemptDelay && a.AdvertiseInterval == b.AdvertiseInterval &&
		a.AcceptMode == b.AcceptMode && slices.Equal(a.TrackInterfaces, b.TrackInterfaces)
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
func (d *Daemon) addGroup(ifc *iface, gc *config.VRRP6) error {
	if ifc.vrrpConn == nil {
		if err := d.openVRRP(d.ctx, ifc); err != nil {
			return err
		}
	}
	d.watchLinks(d.ctx)
	g, err := d.newVRRPGroup(ifc, gc)
	if err != nil {
		if len(ifc.vrrp) == 0 {
			d.closeVRRP(ifc)
		}
		return err
	}
	d.initTracking(g.router, gc.TrackInterfaces)
	up := true
	if l, err := netlink.LinkByIndex(ifc.index); err == nil {
		up = linkUp(l)
	}
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
func (d *Daemon) swapServers(next *config.Config, p *prepared) config.API {
	if p.api != nil {
		old := d.api
		d.api = d.serveAPI(d.ctx, p.api, next.API.Socket)
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
