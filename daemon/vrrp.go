package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/ctrl/vrrp6"
	"github.com/hotcast/hotcast/daemon/config"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// vrrpGroup is one configured VRRP6 group and what the daemon remembers of
// its transitions. cfg is guarded by Daemon.mu (a reload replaces it).
type vrrpGroup struct {
	ifc    *iface
	vrid   uint8
	cfg    *config.VRRP6
	router *vrrp6.Router

	mu         sync.Mutex
	gateDelay  time.Duration // last transition -> gate written
	lastMaster bool
}

// startVRRP starts one socket and demultiplexer per interface with VRRP6
// groups, and one state machine per group.
func (d *Daemon) startVRRP(ctx context.Context) error {
	for _, ifc := range d.ifaces {
		if len(ifc.cfg.VRRP6) == 0 {
			continue
		}
		if err := d.openVRRP(ctx, ifc); err != nil {
			return err
		}
		gs := make([]*vrrpGroup, 0, len(ifc.cfg.VRRP6))
		for i := range ifc.cfg.VRRP6 {
			g, err := d.newVRRPGroup(ifc, &ifc.cfg.VRRP6[i])
			if err != nil {
				return err
			}
			gs = append(gs, g)
		}
		d.mu.Lock()
		ifc.vrrp = gs
		d.mu.Unlock()
	}
	have := false
	for _, ifc := range d.ifaces {
		for _, g := range ifc.vrrp {
			have = true
			d.initTracking(g.router, g.cfg.TrackInterfaces)
		}
	}
	if have {
		d.watchLinks(ctx)
	}
	for _, ifc := range d.ifaces {
		for _, g := range ifc.vrrp {
			if err := g.router.Start(); err != nil {
				return fmt.Errorf("interface %s: vrrp6 vrid %d: %w", ifc.name, g.vrid, err)
			}
		}
	}
	return nil
}

// openVRRP opens an interface's VRRP6 socket and demultiplexer and serves
// it (control path).
func (d *Daemon) openVRRP(ctx context.Context, ifc *iface) error {
	ll := ifc.linkLocal
	if !ll.IsValid() {
		var err error
		if ll, err = linkLocal(ifc.index); err != nil {
			return fmt.Errorf("interface %s: %w", ifc.name, err)
		}
	}
	// The virtual MAC is accepted, and Neighbor Solicitations for the
	// virtual IPs answered, by the fast path alone: without multicast
	// routing an interface with VRRP6 gets it all the same (at start
	// openDataplane attached it already; a reload may add its first
	// group). With routing every interface has it.
	if !d.cfg.Multicast.RoutingEnable {
		if err := d.attachIface(ifc); err != nil {
			return fmt.Errorf("interface %s: %w", ifc.name, err)
		}
	}
	if err := d.dp.AttachTC(ifc.name, ifc.index); err != nil {
		return err
	}
	log := d.log.With("component", "vrrp6", "interface", ifc.name)
	conn, err := vrrp6.Listen(ifc.name, log)
	if err != nil {
		return fmt.Errorf("interface %s: vrrp6 socket: %w", ifc.name, err)
	}
	demux := vrrp6.NewDemux(ifc.name, log)
	d.mu.Lock()
	ifc.linkLocal, ifc.vrrpConn, ifc.demux = ll, conn, demux
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := conn.Serve(demux); err != nil && ctx.Err() == nil {
			log.Error("vrrp6 socket", "err", err)
		}
	}()
	return nil
}

// closeVRRP closes an interface's VRRP6 socket once it has no group left
// (control path).
func (d *Daemon) closeVRRP(ifc *iface) {
	d.mu.Lock()
	conn := ifc.vrrpConn
	ifc.vrrpConn, ifc.demux = nil, nil
	d.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// routerConfig maps a group's configuration to the state machine's.
func routerConfig(ifc *iface, gc *config.VRRP6) vrrp6.Config {
	rc := vrrp6.Config{
		Interface: ifc.name, VRID: gc.VRID, Priority: gc.Priority,
		AdvertInterval: gc.AdvertiseInterval, NoPreempt: !gc.Preempt,
		PreemptDelay: gc.PreemptDelay, AcceptMode: gc.AcceptMode,
		LinkLocal: ifc.linkLocal, VirtualAddrs: gc.VirtualIPs,
	}
	for _, t := range gc.TrackInterfaces {
		rc.Track = append(rc.Track, vrrp6.Track{Name: t.Name, Reduced: t.Reduced})
	}
	return rc
}

// newVRRPGroup creates a group's state machine (in Initialize) on an
// interface whose socket is open, and registers it with the demultiplexer.
func (d *Daemon) newVRRPGroup(ifc *iface, gc *config.VRRP6) (*vrrpGroup, error) {
	g := &vrrpGroup{ifc: ifc, vrid: gc.VRID, cfg: gc}
	log := d.log.With("component", "vrrp6", "interface", ifc.name)
	r, err := vrrp6.NewRouter(routerConfig(ifc, gc), vrrp6.SystemClock{}, ifc.vrrpConn, vrrpActions{d, g}, log)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifc.name, err)
	}
	g.router = r
	if err := ifc.demux.Add(r); err != nil {
		return nil, err
	}
	return g, nil
}

// vrrpActions are a group's vrrp6.Actions and vrrp6.AddrActions.
type vrrpActions struct {
	d *Daemon
	g *vrrpGroup
}

func (a vrrpActions) OnTransition(tr vrrp6.Transition) { a.d.onTransition(a.g, tr) }

func (a vrrpActions) OnVirtualAddrs(c vrrp6.AddrChange) { a.d.onVirtualAddrs(a.g, c) }

// onTransition applies a VRRP6 state change. It runs under the router's
// lock, before the first advert as Master: the fast path is switched first
// (map writes only: virtual MAC, virtual IPs, gate and source MAC), then
// the MLD querier role; addresses and the NIC filter follow asynchronously
// (they are not on the forwarding path).
func (d *Daemon) onTransition(g *vrrpGroup, tr vrrp6.Transition) {
	ifc := g.ifc
	master := tr.To == vrrp6.StateMaster
	log := d.log.With("component", "vrrp6", "interface", ifc.name, "vrid", tr.VRID)
	if err := d.dp.SetVRRPMaster(ifc.index, tr.VRID, tr.VirtualAddrs, master); err != nil {
		log.Error("fast path virtual mac", "err", err)
	}
	ifc.gateMu.Lock()
	d.mu.RLock()
	cfg, m := ifc.cfg, ifc.mld
	d.mu.RUnlock()
	if cfg.MulticastTrackVRRP6 == tr.VRID {
		d.applyGate(ifc, cfg, m, master, tr.VirtualMAC, log)
		delay := time.Since(tr.Time)
		g.mu.Lock()
		g.gateDelay = delay
		g.mu.Unlock()
		log.Info("multicast gate follows vrrp6", "state", tr.To, "gate_write_delay", delay)
	}
	ifc.gateMu.Unlock()
	// The hot-backup profile bound to this VRRP6 group follows its role:
	// Master sends, Backup receives.
	for _, b := range d.backupsSnapshot() {
		if b.cfg.VRRP6.Interface == ifc.name && b.cfg.VRRP6.VRID == tr.VRID {
			b.setRole(master)
		}
	}
	g.mu.Lock()
	changed := g.lastMaster != master
	g.lastMaster = master
	g.mu.Unlock()
	if changed || master {
		go d.syncVirtualAddrs(ifc, tr.VirtualAddrs, tr.VirtualMAC, master)
	}
}

// applyGate makes an interface's multicast forwarding follow its tracked
// group: forward with the virtual MAC as source while Master, muted
// otherwise; the MLD querier role with it. ifc.gateMu held.
func (d *Daemon) applyGate(ifc *iface, cfg *config.Interface, m *mld.Interface, master bool, vmac net.HardwareAddr, log *slog.Logger) {
	clone := cfg.Egress == config.EgressClone
	e := bpf.Iface{Gate: bpf.GateMuted, SrcMAC: ifc.mac, MAC: ifc.mac, Clone: clone}
	if master {
		e = bpf.Iface{Gate: bpf.GateForward, SrcMAC: vmac, MAC: ifc.mac, Clone: clone}
	}
	if err := d.setIface(ifc, e); err != nil {
		log.Error("multicast gate", "err", err)
	}
	ifc.master.Store(master)
	if m != nil {
		m.SetQuerierAllowed(master)
	}
}

// setIface writes an interface's fast-path entry (gate, source MAC) and
// keeps whether it routes, which attachIface decided.
func (d *Daemon) setIface(ifc *iface, e bpf.Iface) error {
	if cur, err := d.dp.Iface(ifc.index); err == nil {
		e.NoRoute = cur.NoRoute
	}
	return d.dp.SetIface(ifc.index, e)
}

// resyncGate re-evaluates what follows an interface's tracked group after
// multicast-track-vrrp6 changed (control path). Untracked, the interface
// forwards with its own MAC and MLD queries; tracked, it takes the group's
// state under the group's lock, so no transition comes in between.
func (d *Daemon) resyncGate(ifc *iface) {
	cfg := ifc.cfg
	log := d.log.With("component", "vrrp6", "interface", ifc.name)
	if cfg.MulticastTrackVRRP6 == 0 {
		ifc.gateMu.Lock()
		clone := cfg.Egress == config.EgressClone
		if err := d.setIface(ifc, bpf.Iface{Gate: bpf.GateForward, SrcMAC: ifc.mac, MAC: ifc.mac, Clone: clone}); err != nil {
			log.Error("multicast gate", "err", err)
		}
		ifc.master.Store(false)
		if ifc.mld != nil {
			ifc.mld.SetQuerierAllowed(true)
		}
		ifc.gateMu.Unlock()
		log.Info("multicast gate no longer tracks vrrp6: forward")
		return
	}
	var g *vrrpGroup
	for _, x := range ifc.vrrp {
		if x.vrid == cfg.MulticastTrackVRRP6 {
			g = x
		}
	}
	if g == nil { // validation makes the tracked group exist
		return
	}
	g.router.WithState(func(s vrrp6.State) {
		ifc.gateMu.Lock()
		defer ifc.gateMu.Unlock()
		d.mu.RLock()
		cur, m := ifc.cfg, ifc.mld
		d.mu.RUnlock()
		if cur.MulticastTrackVRRP6 != g.vrid {
			return
		}
		d.applyGate(ifc, cur, m, s == vrrp6.StateMaster, vrrp6.VirtualMAC(g.vrid), log)
		log.Info("multicast gate follows vrrp6", "vrid", g.vrid, "state", s)
	})
}

// onVirtualAddrs follows a reconfigured virtual address list. It runs
// under the router's lock; a Master moves the fast-path addresses at once
// and the interface addresses asynchronously, as a transition does.
func (d *Daemon) onVirtualAddrs(g *vrrpGroup, c vrrp6.AddrChange) {
	if c.State != vrrp6.StateMaster {
		return
	}
	ifc := g.ifc
	var gone []netip.Addr
	for _, a := range c.Old {
		if !slices.Contains(c.New, a) {
			gone = append(gone, a)
		}
	}
	log := d.log.With("component", "vrrp6", "interface", ifc.name, "vrid", c.VRID)
	if err := d.dp.SetVRRPMaster(ifc.index, c.VRID, gone, false); err != nil {
		log.Error("fast path virtual ips", "err", err)
	}
	if err := d.dp.SetVRRPMaster(ifc.index, c.VRID, c.New, true); err != nil {
		log.Error("fast path virtual ips", "err", err)
	}
	go func() {
		d.syncAddrs(ifc, gone, false)
		d.syncAddrs(ifc, c.New, true)
	}()
}

// syncVirtualAddrs puts the virtual IPs on the interface (nodad) and the
// virtual MAC in its unicast filter while Master, and removes them while
// Backup (RFC 9568 6.4; "bridge fdb add VMAC dev IF self").
func (d *Daemon) syncVirtualAddrs(ifc *iface, vips []netip.Addr, vmac net.HardwareAddr, master bool) {
	d.syncAddrs(ifc, vips, master)
	log := d.log.With("component", "vrrp6", "interface", ifc.name)
	fdb := &netlink.Neigh{LinkIndex: ifc.index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT, HardwareAddr: vmac}
	if master {
		if err := netlink.NeighAppend(fdb); err != nil && !errors.Is(err, unix.EEXIST) {
			log.Debug("virtual mac unicast filter", "err", err)
		}
	} else if err := netlink.NeighDel(fdb); err != nil {
		log.Debug("virtual mac unicast filter removal", "err", err)
	}
}

// syncAddrs adds (master) or removes virtual IPs on the interface.
func (d *Daemon) syncAddrs(ifc *iface, vips []netip.Addr, master bool) {
	if len(vips) == 0 {
		return
	}
	log := d.log.With("component", "vrrp6", "interface", ifc.name)
	l, err := netlink.LinkByIndex(ifc.index)
	if err != nil {
		log.Error("virtual addresses", "err", err)
		return
	}
	for _, a := range vips {
		bits := 128
		if !a.IsLinkLocalUnicast() {
			bits = 64
		}
		na := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, 128)}, Flags: unix.IFA_F_NODAD}
		if master {
			if err := netlink.AddrAdd(l, na); err != nil && !errors.Is(err, unix.EEXIST) {
				log.Warn("add virtual ip", "addr", a, "err", err)
			}
		} else if err := netlink.AddrDel(l, na); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
			log.Warn("remove virtual ip", "addr", a, "err", err)
		}
	}
}

// linkUp reports whether a link is operationally up (or up with an
// unknown operational state, as dummy interfaces are).
func linkUp(l netlink.Link) bool {
	a := l.Attrs()
	return a.OperState == netlink.OperUp || a.Flags&net.FlagUp != 0 && a.OperState == netlink.OperUnknown
}

// initTracking gives a group's router the current state of the interfaces
// it tracks (at start, and when a reload adds or changes the group).
func (d *Daemon) initTracking(r *vrrp6.Router, tracks []config.Track) {
	for _, t := range tracks {
		up := false
		if l, err := netlink.LinkByName(t.Name); err == nil {
			up = linkUp(l)
		}
		if err := r.SetTrackedDown(t.Name, !up); err != nil {
			d.log.Warn("track interface", "interface", t.Name, "err", err)
		}
	}
}

// watchLinks follows link state (once started, for the daemon's life): a
// VRRP interface going down is a Shutdown event for its groups (they leave
// Master at once, so the gate is muted and the router waits its preempt
// delay when the link returns), coming up a Startup; tracked interfaces
// lower priorities (VRP "track interface ... reduced"). Which groups an
// interface concerns is looked up at each change, so groups a reload adds
// or removes are followed.
func (d *Daemon) watchLinks(ctx context.Context) {
	if d.linkWatch {
		return
	}
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	if err := netlink.LinkSubscribe(ch, done); err != nil {
		d.log.Error("watch links", "err", err)
		return
	}
	d.linkWatch = true
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer close(done)
		// Groups are started with their link taken as up.
		linkState := map[string]bool{}
		for {
			select {
			case <-ctx.Done():
				return
			case u := <-ch:
				name := u.Attrs().Name
				up := u.Attrs().OperState == netlink.OperUp
				var own, tracking []*vrrpGroup
				d.mu.RLock()
				if ifc := d.ifaces[name]; ifc != nil {
					own = ifc.vrrp
				}
				for _, ifc := range d.ifaces {
					for _, g := range ifc.vrrp {
						if slices.ContainsFunc(g.cfg.TrackInterfaces, func(t config.Track) bool { return t.Name == name }) {
							tracking = append(tracking, g)
						}
					}
				}
				d.mu.RUnlock()
				for _, g := range tracking {
					if err := g.router.SetTrackedDown(name, !up); err != nil {
						d.log.Debug("track interface", "interface", name, "err", err)
					}
				}
				was, known := linkState[name]
				linkState[name] = up
				if known && was == up || !known && up {
					continue
				}
				for _, g := range own {
					if !up {
						g.router.Shutdown()
					} else if g.router.State() == vrrp6.StateInitialize {
						if err := g.router.Start(); err != nil {
							d.log.Warn("vrrp6 start on link up", "interface", name, "err", err)
						}
					}
				}
			}
		}
	}()
}

// shutdownVRRP sends priority 0 adverts so the Backup takes over after
// Skew_Time (RFC 9568 6.4.3), and closes the sockets.
func (d *Daemon) shutdownVRRP() {
	for _, ifc := range d.ifaces {
		for _, g := range ifc.vrrp {
			g.router.Shutdown()
		}
	}
	for _, ifc := range d.ifaces {
		if ifc.vrrpConn != nil {
			ifc.vrrpConn.Close()
		}
	}
}
