package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"

	"github.com/hotcast/hotcast/ctrl/track"
	"github.com/hotcast/hotcast/ctrl/vrrp6"
	"github.com/hotcast/hotcast/daemon/config"
	"github.com/vishvananda/netlink"
)

// vrrpGroup is one configured VRRP6 group. cfg is guarded by Daemon.mu
// (a reload replaces it); what its transitions did, the tracker knows.
type vrrpGroup struct {
	ifc    *iface
	vrid   uint8
	cfg    *config.VRRP6
	router *vrrp6.Router
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
		if ll, err = d.sys.LinkLocal(ifc.index); err != nil {
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
	conn, err := d.sys.ListenVRRP(ifc.name, log)
	if err != nil {
		return fmt.Errorf("interface %s: vrrp6 socket: %w", ifc.name, err)
	}
	demux := vrrp6.NewDemux(ifc.name, log)
	d.mu.Lock()
	ifc.linkLocal, ifc.vrrpConn, ifc.demux = ll, conn, demux
	d.mu.Unlock()
	// A VRRP6 router that hears nothing takes over: a socket that fails
	// for good would make two Masters. The daemon ends instead (its
	// groups send priority 0 on the way out; the pinned fast path stays).
	d.group.Go(func() error {
		if err := conn.Serve(demux); err != nil && ctx.Err() == nil {
			return fmt.Errorf("interface %s: vrrp6 socket: %w", ifc.name, err)
		}
		return nil
	})
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
	for _, t := range gc.TrackBFD {
		mode := vrrp6.TrackBFDPeer
		switch t.Mode {
		case config.TrackBFDReduce:
			mode = vrrp6.TrackBFDReduce
		case config.TrackBFDStepDown:
			mode = vrrp6.TrackBFDStepDown
		}
		rc.TrackBFD = append(rc.TrackBFD, vrrp6.TrackBFD{Session: t.Session, Mode: mode, Reduced: t.Reduced})
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

// vrrpActions are a group's vrrp6.Actions and vrrp6.AddrActions. The
// router calls them under its lock: they only post to the tracker.
type vrrpActions struct {
	d *Daemon
	g *vrrpGroup
}

func (a vrrpActions) OnTransition(tr vrrp6.Transition) { a.d.track.Transition(a.g.ifc.index, tr) }

func (a vrrpActions) OnVirtualAddrs(c vrrp6.AddrChange) { a.d.track.VirtualAddrs(a.g.ifc.index, c) }

// trackIface is what the tracker needs of an interface (read under d.mu
// by the control path, which is the only writer).
func (d *Daemon) trackIface(ifc *iface) track.Iface {
	d.mu.RLock()
	cfg, m := ifc.cfg, ifc.mld
	d.mu.RUnlock()
	ti := track.Iface{
		Index: ifc.index, Name: ifc.name, MAC: ifc.mac,
		Clone:   cfg.Egress == config.EgressClone,
		NoRoute: !d.cfg.Multicast.RoutingEnable,
		Track:   cfg.MulticastTrackVRRP6,
		Querier: track.FollowerFunc(func(master bool) {
			// Called on the tracker's goroutine: for the tracked group's
			// Master (or always, untracked) this interface's MLD queries.
			ifc.master.Store(master)
			if m != nil {
				m.SetQuerierAllowed(master)
			}
		}),
		Profiles: map[uint8][]track.Follower{},
	}
	for _, gc := range cfg.VRRP6 {
		vrid := gc.VRID
		// The hot-backup profile bound to this group follows its role
		// (Master sends, Backup receives); profiles are looked up at each
		// transition, so a reload that binds or unbinds one needs no
		// reconfiguration here.
		ti.Profiles[vrid] = []track.Follower{track.FollowerFunc(func(master bool) {
			for _, b := range d.backupsSnapshot() {
				if b.cfg.VRRP6.Interface == ifc.name && b.cfg.VRRP6.VRID == vrid {
					b.setRole(master)
				}
			}
		})}
	}
	return ti
}

// resyncGate hands the tracker an interface's current configuration
// (multicast-track-vrrp6, MLD, egress or groups changed; control path).
// It applies it after every transition posted before, from the state it
// last saw of the tracked group.
func (d *Daemon) resyncGate(ifc *iface) { d.track.Configure(d.trackIface(ifc)) }

// hostAddrs is the tracker's Host: the virtual IPs on the interface
// (nodad) and the virtual MAC in its unicast filter while Master, removed
// while Backup (RFC 9568 6.4; "bridge fdb add VMAC dev IF self"). It runs
// on the tracker's goroutine after the fast path is written.
type hostAddrs struct {
	sys System
	log *slog.Logger
}

func (h hostAddrs) SetVirtual(ifindex int, vips []netip.Addr, vmac net.HardwareAddr, master bool) {
	h.sync(ifindex, vips, master)
	if err := h.sys.SetUnicastMAC(ifindex, vmac, master); err != nil {
		h.log.Debug("virtual mac unicast filter", "ifindex", ifindex, "add", master, "err", err)
	}
}

func (h hostAddrs) MoveVirtual(ifindex int, gone, added []netip.Addr) {
	h.sync(ifindex, gone, false)
	h.sync(ifindex, added, true)
}

// sync adds (master) or removes virtual IPs on the interface: /128 for a
// link-local one, /64 for the others.
func (h hostAddrs) sync(ifindex int, vips []netip.Addr, master bool) {
	for _, a := range vips {
		bits := 128
		if !a.IsLinkLocalUnicast() {
			bits = 64
		}
		p := netip.PrefixFrom(a, bits)
		if master {
			if err := h.sys.AddAddr(ifindex, p); err != nil {
				h.log.Warn("add virtual ip", "ifindex", ifindex, "addr", a, "err", err)
			}
		} else if err := h.sys.DelAddr(ifindex, p); err != nil {
			h.log.Warn("remove virtual ip", "ifindex", ifindex, "addr", a, "err", err)
		}
	}
}

// initTracking gives a group's router the current state of the interfaces
// it tracks (at start, and when a reload adds or changes the group).
func (d *Daemon) initTracking(r *vrrp6.Router, tracks []config.Track) {
	for _, t := range tracks {
		up, _ := d.sys.LinkUp(t.Name)
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
	if err := d.sys.SubscribeLinks(ch, done); err != nil {
		d.log.Error("watch links", "err", err)
		return
	}
	d.linkWatch = true
	d.group.Go(func() error {
		defer close(done)
		// Groups are started with their link taken as up.
		linkState := map[string]bool{}
		for {
			select {
			case <-ctx.Done():
				return nil
			case u, ok := <-ch:
				if !ok {
					// Blind to link changes, VRRP6 would stay Master on a
					// dead link: end the daemon (netlink closed the
					// subscription on a receive error).
					return errors.New("watch links: the netlink subscription ended")
				}
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
	})
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
