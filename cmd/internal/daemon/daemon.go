// Package daemon wires hotcastd together: the configuration, the pinned
// dataplane, the route table, the protocols and the local API.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/cmd/internal/config"
	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/ctrl/mroute"
	"github.com/hotcast/hotcast/ctrl/vrrp6"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Daemon is one running hotcastd.
type Daemon struct {
	cfg *config.Config
	log *slog.Logger

	dp     *bpf.Dataplane
	table  *mroute.Table
	ifaces map[string]*iface
	byIdx  map[int]*iface

	proxy *proxy // upstream mld-proxy, nil in static mode

	services []rbsService
	backups  []*backup

	wg sync.WaitGroup
}

// iface is a configured interface as the daemon sees it.
type iface struct {
	cfg       *config.Interface
	index     int
	mac       net.HardwareAddr
	linkLocal netip.Addr

	mld     *mld.Interface
	mldConn *mld.Conn

	vrrp     []*vrrpGroup
	vrrpConn *vrrp6.Conn

	backup *backup     // the hot-backup profile bound here, if any
	master atomic.Bool // the tracked VRRP6 group is Master
	logger *slog.Logger
}

func (i *iface) log() *slog.Logger { return i.logger }

// New resolves the configuration against the system; Run starts it.
func New(cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	d := &Daemon{cfg: cfg, log: log, ifaces: map[string]*iface{}, byIdx: map[int]*iface{}}
	for i := range cfg.Interfaces {
		ic := &cfg.Interfaces[i]
		nl, err := net.InterfaceByName(ic.Name)
		if err != nil {
			return nil, fmt.Errorf("interfaces[%d] %s: %w", i, ic.Name, err)
		}
		ifc := &iface{cfg: ic, index: nl.Index, mac: nl.HardwareAddr, logger: log.With("interface", ic.Name)}
		if len(ifc.mac) != 6 {
			return nil, fmt.Errorf("interfaces[%d] %s: not an Ethernet interface", i, ic.Name)
		}
		d.ifaces[ic.Name] = ifc
		d.byIdx[nl.Index] = ifc
	}
	return d, nil
}

// Run brings the router up and serves until ctx ends. On return the pinned
// dataplane stays: forwarding goes on until the next start adopts it or
// Cleanup removes it.
func (d *Daemon) Run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := d.ensureAddresses(); err != nil {
		return err
	}
	if err := d.openDataplane(); err != nil {
		return err
	}
	defer func() {
		cancel()
		d.stopProtocols()
		d.wg.Wait()
		d.dp.Close()
	}()
	if err := d.startMLD(ctx); err != nil {
		return err
	}
	if err := d.startRBS(ctx); err != nil {
		return err
	}
	if err := d.startVRRP(ctx); err != nil {
		return err
	}
	if err := d.startProxy(ctx); err != nil {
		return err
	}
	srv, err := d.serveAPI(ctx)
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := d.serveMetrics(ctx); err != nil {
		return err
	}
	d.log.Info("hotcastd up", "sysname", d.cfg.Sysname, "interfaces", len(d.ifaces), "adopted", d.dp.Adopted())

	// Routes learned before a restart stay until MLD had a chance to
	// relearn them (a Multicast Address Listening Interval), then go.
	grace := time.NewTimer(d.relearnGrace())
	defer grace.Stop()
	for {
		select {
		case <-ctx.Done():
			d.log.Info("hotcastd stopping; the pinned dataplane keeps forwarding")
			return nil
		case <-grace.C:
			if err := d.table.Prune(); err != nil {
				d.log.Error("prune routes from before the restart", "err", err)
			}
		}
	}
}

func (d *Daemon) relearnGrace() time.Duration {
	g := time.Duration(0)
	for _, ic := range d.cfg.Interfaces {
		if !ic.MLD.Enable {
			continue
		}
		mali := time.Duration(ic.MLD.Robustness)*ic.MLD.QueryInterval + ic.MLD.MaxResponseTime
		g = max(g, mali)
	}
	return max(g, time.Second)
}

func (d *Daemon) ensureAddresses() error {
	for _, ifc := range d.ifaces {
		// A router keeps its configured addresses across a link flap
		// (Linux flushes IPv6 addresses on link down by default): the RBS
		// session, VRRP and MLD sources must survive a cable pull.
		p := "/proc/sys/net/ipv6/conf/" + ifc.cfg.Name + "/keep_addr_on_down"
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
			d.log.Warn("keep addresses on link down", "interface", ifc.cfg.Name, "err", err)
		}
		if len(ifc.cfg.Addresses) == 0 {
			continue
		}
		l, err := netlink.LinkByIndex(ifc.index)
		if err != nil {
			return fmt.Errorf("interface %s: %w", ifc.cfg.Name, err)
		}
		have, err := netlink.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			return fmt.Errorf("interface %s: list addresses: %w", ifc.cfg.Name, err)
		}
		for _, p := range ifc.cfg.Addresses {
			if hasAddr(have, p) {
				continue
			}
			a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
			if err := netlink.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("interface %s: add %s: %w", ifc.cfg.Name, p, err)
			}
		}
	}
	return nil
}

func hasAddr(have []netlink.Addr, p netip.Prefix) bool {
	for _, a := range have {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == p.Addr() {
			return true
		}
	}
	return false
}

func (d *Daemon) openDataplane() error {
	opts := bpf.Options{PinPath: d.cfg.BPF.PinPath, Logger: d.log.With("component", "bpf")}
	switch d.cfg.BPF.XDPMode {
	case config.XDPGeneric:
		opts.XDPFlags = link.XDPGenericMode
	default:
		opts.XDPFlags = link.XDPDriverMode
	}
	dp, err := bpf.Open(opts)
	if err != nil {
		return fmt.Errorf("open dataplane: %w", err)
	}
	d.dp = dp
	fail := func(err error) error {
		dp.Close()
		return err
	}

	// Interfaces no longer configured lose their program.
	for _, name := range dp.Attached() {
		if _, ok := d.ifaces[name]; !ok || !d.cfg.Multicast.RoutingEnable {
			d.log.Info("detaching interface no longer configured", "interface", name)
			if err := dp.Detach(name); err != nil {
				return fail(err)
			}
		}
	}
	if d.cfg.Multicast.RoutingEnable {
		for _, ifc := range d.ifaces {
			// A tracked interface starts muted (VRRP decides); a restarted
			// daemon keeps the gate it finds.
			gate := bpf.GateForward
			if ifc.cfg.MulticastTrackVRRP6 != 0 {
				gate = bpf.GateMuted
			}
			clone := ifc.cfg.Egress == config.EgressClone
			cur, err := dp.EnsureIface(ifc.index, bpf.Iface{Gate: gate, SrcMAC: ifc.mac, MAC: ifc.mac, Clone: clone})
			if err != nil {
				return fail(err)
			}
			// Keep the gate (and a VRRP virtual source MAC) a previous run
			// left; apply this configuration's MAC and egress mode.
			want := cur
			want.MAC, want.Clone = ifc.mac, clone
			if ifc.cfg.MulticastTrackVRRP6 == 0 {
				want.SrcMAC = ifc.mac
			}
			if want.MAC.String() != cur.MAC.String() || want.SrcMAC.String() != cur.SrcMAC.String() || want.Clone != cur.Clone {
				if err := dp.SetIface(ifc.index, want); err != nil {
					return fail(err)
				}
			}
			if err := dp.Attach(ifc.cfg.Name, ifc.index); err != nil {
				return fail(err)
			}
		}
	}

	up := 0
	if u := d.ifaces[d.cfg.Multicast.Upstream.Interface]; u != nil {
		up = u.index
	}
	d.table = mroute.New(dp, up, d.log.With("component", "mroute"))
	existing, err := dp.Routes()
	if err != nil {
		return fail(err)
	}
	adopted := make([]bpf.Route, 0, len(existing))
	for _, r := range existing {
		adopted = append(adopted, r.Route)
	}
	d.table.Adopt(adopted)
	if err := d.table.SetStatic(d.staticRoutes(d.cfg)); err != nil {
		return fail(fmt.Errorf("install static routes: %w", err))
	}
	return nil
}

func (d *Daemon) startMLD(ctx context.Context) error {
	for _, ifc := range d.ifaces {
		mc := ifc.cfg.MLD
		if !mc.Enable {
			continue
		}
		ll, err := linkLocal(ifc.index)
		if err != nil {
			return fmt.Errorf("interface %s: %w", ifc.cfg.Name, err)
		}
		ifc.linkLocal = ll
		log := d.log.With("component", "mld", "interface", ifc.cfg.Name)
		conn, err := mld.Listen(ifc.cfg.Name, ll, log)
		if err != nil {
			return fmt.Errorf("interface %s: mld socket: %w", ifc.cfg.Name, err)
		}
		ifc.mldConn = conn
		cfg := mld.DefaultConfig(ifc.cfg.Name, ll)
		cfg.Version = mc.Version
		cfg.QueryInterval = mc.QueryInterval
		cfg.QueryResponseInterval = mc.MaxResponseTime
		cfg.Robustness = int(mc.Robustness)
		cfg.LastListenerQueryInterval = mc.LastListenerQueryInterval
		cfg.RequireRouterAlert = mc.RequireRouterAlert
		cfg.MaxGroups = mc.MaxGroups
		cfg.Sender = conn
		cfg.Logger = log
		cfg.OnUpdates = func(us []mld.Update) { d.applyMLD(ifc, us, log) }
		m, err := mld.New(cfg)
		if err != nil {
			return fmt.Errorf("interface %s: mld: %w", ifc.cfg.Name, err)
		}
		ifc.mld = m
		if ifc.cfg.MulticastTrackVRRP6 != 0 {
			m.SetQuerierAllowed(false) // VRRP6 Master turns it on
		}
		m.Start()
		d.readMLD(ctx, conn, log, func(p mld.Packet) {
			// The reference's backup hears no reports on its access
			// link; this knob reproduces that while Backup.
			if mc.IgnoreReportsWhileBackup && ifc.cfg.MulticastTrackVRRP6 != 0 && !ifc.master.Load() {
				return
			}
			m.HandlePacket(p)
		})
	}
	return nil
}

// readMLD hands every MLD message read from conn to handle until ctx ends
// or conn is closed.
func (d *Daemon) readMLD(ctx context.Context, conn *mld.Conn, log *slog.Logger, handle func(mld.Packet)) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			p, err := conn.Read(ctx)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return
				}
				log.Warn("mld read", "err", err)
				continue
			}
			handle(p)
		}
	}()
}

func (d *Daemon) stopProtocols() {
	d.shutdownVRRP()
	d.stopProxy()
	for _, ifc := range d.ifaces {
		if ifc.mld != nil {
			ifc.mld.Stop()
		}
		if ifc.mldConn != nil {
			ifc.mldConn.Close()
		}
	}
}

// staticRoutes resolves a configuration's static routes to ifindexes.
func (d *Daemon) staticRoutes(cfg *config.Config) []mroute.StaticRoute {
	out := make([]mroute.StaticRoute, 0, len(cfg.Multicast.StaticRoutes))
	for _, r := range cfg.Multicast.StaticRoutes {
		sr := mroute.StaticRoute{Source: r.Source, Group: r.Group, IIf: d.ifaces[r.Incoming].index}
		for _, o := range r.Interfaces {
			sr.OIfs = append(sr.OIfs, d.ifaces[o].index)
		}
		out = append(out, sr)
	}
	return out
}

// linkScope reports whether g is an interface- or link-local (or reserved
// scope) multicast group, which is never routed.
func linkScope(g netip.Addr) bool {
	return g.As16()[1]&0x0f <= 2
}

// linkLocal returns the interface's link-local address, waiting briefly
// for the kernel to assign it after the link comes up.
func linkLocal(index int) (netip.Addr, error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		l, err := netlink.LinkByIndex(index)
		if err != nil {
			return netip.Addr{}, err
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			return netip.Addr{}, err
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				return ip, nil
			}
		}
		if time.Now().After(deadline) {
			return netip.Addr{}, errors.New("no usable link-local address")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Cleanup removes what a configuration's daemon pinned and attached, and
// its API socket.
func Cleanup(cfg *config.Config) error {
	err := bpf.Cleanup(cfg.BPF.PinPath)
	if rerr := os.Remove(cfg.API.Socket); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	// Remove the per-router parent only when empty.
	_ = os.Remove(filepath.Dir(cfg.BPF.PinPath))
	return err
}
