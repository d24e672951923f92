package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/cmd/internal/config"
	"github.com/hotcast/hotcast/ctrl/vrrp6"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// vrrpGroup is one configured VRRP6 group and what the daemon remembers of
// its transitions.
type vrrpGroup struct {
	ifc    *iface
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
		if !ifc.linkLocal.IsValid() {
			ll, err := linkLocal(ifc.index)
			if err != nil {
				return fmt.Errorf("interface %s: %w", ifc.cfg.Name, err)
			}
			ifc.linkLocal = ll
		}
		if err := d.dp.AttachTC(ifc.cfg.Name, ifc.index); err != nil {
			return err
		}
		log := d.log.With("component", "vrrp6", "interface", ifc.cfg.Name)
		conn, err := vrrp6.Listen(ifc.cfg.Name, log)
		if err != nil {
			return fmt.Errorf("interface %s: vrrp6 socket: %w", ifc.cfg.Name, err)
		}
		ifc.vrrpConn = conn
		demux := vrrp6.NewDemux(ifc.cfg.Name, log)
		for i := range ifc.cfg.VRRP6 {
			gc := &ifc.cfg.VRRP6[i]
			g := &vrrpGroup{ifc: ifc, cfg: gc}
			rc := vrrp6.Config{
				Interface: ifc.cfg.Name, VRID: gc.VRID, Priority: gc.Priority,
				AdvertInterval: gc.AdvertiseInterval, NoPreempt: !gc.Preempt,
				PreemptDelay: gc.PreemptDelay, AcceptMode: gc.AcceptMode,
				LinkLocal: ifc.linkLocal, VirtualAddrs: gc.VirtualIPs,
			}
			for _, t := range gc.TrackInterfaces {
				rc.Track = append(rc.Track, vrrp6.Track{Name: t.Name, Reduced: t.Reduced})
			}
			r, err := vrrp6.NewRouter(rc, vrrp6.SystemClock{}, conn, actionsFunc(func(tr vrrp6.Transition) { d.onTransition(g, tr) }), log)
			if err != nil {
				return fmt.Errorf("interface %s: %w", ifc.cfg.Name, err)
			}
			g.router = r
			if err := demux.Add(r); err != nil {
				return err
			}
			ifc.vrrp = append(ifc.vrrp, g)
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := conn.Serve(demux); err != nil && ctx.Err() == nil {
				log.Error("vrrp6 socket", "err", err)
			}
		}()
	}
	d.watchTracked(ctx)
	for _, ifc := range d.ifaces {
		for _, g := range ifc.vrrp {
			if err := g.router.Start(); err != nil {
				return fmt.Errorf("interface %s: vrrp6 vrid %d: %w", ifc.cfg.Name, g.cfg.VRID, err)
			}
		}
	}
	return nil
}

type actionsFunc func(vrrp6.Transition)

func (f actionsFunc) OnTransition(tr vrrp6.Transition) { f(tr) }

// onTransition applies a VRRP6 state change. It runs under the router's
// lock, before the first advert as Master: the fast path is switched first
// (map writes only: virtual MAC, virtual IPs, gate and source MAC), then
// the MLD querier role; addresses and the NIC filter follow asynchronously
// (they are not on the forwarding path).
func (d *Daemon) onTransition(g *vrrpGroup, tr vrrp6.Transition) {
	ifc := g.ifc
	master := tr.To == vrrp6.StateMaster
	log := d.log.With("component", "vrrp6", "interface", ifc.cfg.Name, "vrid", tr.VRID)
	if err := d.dp.SetVRRPMaster(ifc.index, tr.VRID, tr.VirtualAddrs, master); err != nil {
		log.Error("fast path virtual mac", "err", err)
	}
	if ifc.cfg.MulticastTrackVRRP6 == tr.VRID {
		clone := ifc.cfg.Egress == config.EgressClone
		e := bpf.Iface{Gate: bpf.GateMuted, SrcMAC: ifc.mac, MAC: ifc.mac, Clone: clone}
		if master {
			e = bpf.Iface{Gate: bpf.GateForward, SrcMAC: tr.VirtualMAC, MAC: ifc.mac, Clone: clone}
		}
		if err := d.dp.SetIface(ifc.index, e); err != nil {
			log.Error("multicast gate", "err", err)
		}
		delay := time.Since(tr.Time)
		g.mu.Lock()
		g.gateDelay = delay
		g.mu.Unlock()
		log.Info("multicast gate follows vrrp6", "state", tr.To, "gate_write_delay", delay)
		ifc.master.Store(master)
		if ifc.mld != nil {
			ifc.mld.SetQuerierAllowed(master)
		}
	}
	// The hot-backup profile bound to this VRRP6 group follows its role:
	// Master sends, Backup receives.
	for _, b := range d.backups {
		if b.cfg.VRRP6.Interface == ifc.cfg.Name && b.cfg.VRRP6.VRID == tr.VRID {
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

// syncVirtualAddrs puts the virtual IPs on the interface (nodad) and the
// virtual MAC in its unicast filter while Master, and removes them while
// Backup (RFC 9568 6.4; "bridge fdb add VMAC dev IF self").
func (d *Daemon) syncVirtualAddrs(ifc *iface, vips []netip.Addr, vmac net.HardwareAddr, master bool) {
	log := d.log.With("component", "vrrp6", "interface", ifc.cfg.Name)
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
	fdb := &netlink.Neigh{LinkIndex: ifc.index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT, HardwareAddr: vmac}
	if master {
		if err := netlink.NeighAppend(fdb); err != nil && !errors.Is(err, unix.EEXIST) {
			log.Debug("virtual mac unicast filter", "err", err)
		}
	} else if err := netlink.NeighDel(fdb); err != nil {
		log.Debug("virtual mac unicast filter removal", "err", err)
	}
}

// watchTracked follows link state: a VRRP interface going down is a
// Shutdown event for its groups (they leave Master at once, so the gate is
// muted and the router waits its preempt delay when the link returns),
// coming up a Startup; tracked interfaces lower priorities (VRP "track
// interface ... reduced").
func (d *Daemon) watchTracked(ctx context.Context) {
	tracked := map[string][]*vrrpGroup{}
	own := map[string]*iface{}
	for _, ifc := range d.ifaces {
		if len(ifc.vrrp) > 0 {
			own[ifc.cfg.Name] = ifc
		}
		for _, g := range ifc.vrrp {
			for _, t := range g.cfg.TrackInterfaces {
				tracked[t.Name] = append(tracked[t.Name], g)
			}
		}
	}
	if len(tracked) == 0 && len(own) == 0 {
		return
	}
	linkState := map[string]bool{}
	setOwn := func(name string, up bool) {
		ifc := own[name]
		if ifc == nil || linkState[name] == up {
			return
		}
		linkState[name] = up
		for _, g := range ifc.vrrp {
			if up {
				if err := g.router.Start(); err != nil {
					d.log.Warn("vrrp6 start on link up", "interface", name, "err", err)
				}
			} else {
				g.router.Shutdown()
			}
		}
	}
	for name := range own {
		linkState[name] = true // Start() below brings them up
	}
	set := func(name string, up bool) {
		for _, g := range tracked[name] {
			if err := g.router.SetTrackedDown(name, !up); err != nil {
				d.log.Warn("track interface", "interface", name, "err", err)
			}
		}
	}
	for name := range tracked {
		if l, err := netlink.LinkByName(name); err == nil {
			set(name, l.Attrs().OperState == netlink.OperUp || l.Attrs().Flags&net.FlagUp != 0 && l.Attrs().OperState == netlink.OperUnknown)
		} else {
			set(name, false)
		}
	}
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	if err := netlink.LinkSubscribe(ch, done); err != nil {
		d.log.Error("watch tracked interfaces", "err", err)
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case u := <-ch:
				name := u.Attrs().Name
				up := u.Attrs().OperState == netlink.OperUp
				if _, ok := tracked[name]; ok {
					set(name, up)
				}
				setOwn(name, up)
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
