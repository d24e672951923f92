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
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/ctrl/mroute"
	"github.com/hotcast/hotcast/ctrl/track"
	"github.com/hotcast/hotcast/ctrl/vrrp6"
	"github.com/hotcast/hotcast/daemon/config"
	"github.com/hotcast/hotcast/internal/hugeheap"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// Daemon is one running hotcastd.
//
// Concurrency: the control path (start-up, every reload, shutdown) runs on
// Run's goroutine, one step after the other; Reload hands its
// configuration to that goroutine. What a reload changes (the interface
// maps, and the iface and vrrpGroup fields marked so) the control path
// changes with mu held, so it reads it without mu and every other
// goroutine (API and metrics handlers, protocol callbacks, the link
// watcher) reads it under mu.RLock. mu is a leaf: nobody holding it calls
// into a protocol, the tracker or the dataplane, and protocol callbacks
// that need it take it themselves (readers take a snapshot and let go).
// VRRP6 transitions reach the gates through the tracker's queue (ctrl/track),
// whose lock is a leaf too.
type Daemon struct {
	cfg *config.Config // the running configuration; control path only
	log *slog.Logger
	sys System // the machine: Kernel, or a test's fake

	dp    Dataplane
	table *mroute.Table
	track *track.Tracker // multicast-track-vrrp6: transitions to gates

	started   atomic.Bool        // Run was called: Reload waits for its loop
	reloads   chan reloadRequest // Reload -> Run's goroutine
	stopped   chan struct{}      // closed when Run returns: no more reloads
	linkWatch bool               // the link watcher runs (control path)
	api       *httpServer        // the local API
	metrics   *httpServer        // Prometheus, nil when off

	mu     sync.RWMutex
	ifaces map[string]*iface // by name; guarded by mu
	byIdx  map[int]*iface    // by ifindex; guarded by mu

	// proxy is the upstream mld-proxy, nil in static mode; set by the
	// control path (start-up, a reload) while MLD callbacks may read it.
	proxy atomic.Pointer[proxy]

	// The remote backup services and the profiles bound to interfaces;
	// guarded by mu, replaced (never modified in place) by the control
	// path.
	services   []*rbsService
	backups    []*backup
	profileSeq int // numbers profiles for display; control path

	// bfd is the BFD engine, nil without sessions; set by the control
	// path (start-up, a reload) before any group tracks a session, and
	// read by API and metrics handlers through bfdSessions. bfdWatch
	// (control path only) follows each session into the VRRP6 groups.
	// pim is PIM-SM, nil when no interface runs it; set by the control
	// path at start-up, read by MLD callbacks and the API under mu.
	pim *pimRun

	bfd      BFDManager
	bfdMu    sync.RWMutex // guards bfd for readers off the control path
	bfdWatch map[string]*bfdWatch

	// heapOnce: the heap is marked for huge pages once (daemon/heap.go).
	heapOnce sync.Once
	// prefault makes a standby's heap resident as a batch begins: nil
	// unless prepareHeap marked the heap.
	prefault atomic.Pointer[hugeheap.Prefaulter]

	// group owns every goroutine Run starts (protocol readers, the
	// tracker, the link watcher, services); set by Run before bringUp,
	// waited for by shutdown (or a failed start). A goroutine that
	// returns an error ends the daemon with it.
	group *errgroup.Group
}

// iface is a configured interface as the daemon sees it. name, index, mac
// and logger never change. The fields below "guarded by Daemon.mu" change
// on reload (see Daemon); cfg and vrrp are replaced, never modified in
// place. While a hot-backup profile is bound to the interface (backup),
// its mld stays: a reload unbinds the profile before it stops MLD, and
// binds one only to a running MLD router.
type iface struct {
	name  string
	index int
	mac   net.HardwareAddr

	// guarded by Daemon.mu
	cfg       *config.Interface
	linkLocal netip.Addr
	mld       *mld.Interface
	mldConn   MLDConn
	mldRun    *mldRun
	vrrp      []*vrrpGroup
	vrrpConn  VRRPConn
	demux     *vrrp6.Demux
	backup    *backup // the hot-backup profile bound here, if any

	master atomic.Bool // the tracked VRRP6 group is Master (set by the tracker)
	// ignoreReports is mld.ignore-reports-while-backup with a tracked
	// group (read for every MLD message, so not under mu).
	ignoreReports atomic.Bool
	logger        *slog.Logger
}

func (i *iface) log() *slog.Logger { return i.logger }

// New resolves the configuration against the running machine (Kernel);
// Run starts it.
func New(cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	return NewOn(Kernel{}, cfg, log)
}

// NewOn resolves the configuration against sys; Run starts it.
func NewOn(sys System, cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	d := &Daemon{cfg: cfg, log: log, sys: sys, ifaces: map[string]*iface{}, byIdx: map[int]*iface{},
		reloads: make(chan reloadRequest), stopped: make(chan struct{})}
	for i := range cfg.Interfaces {
		ic := &cfg.Interfaces[i]
		nl, err := sys.Interface(ic.Name)
		if err != nil {
			return nil, fmt.Errorf("interfaces[%d] %s: %w", i, ic.Name, err)
		}
		ifc, err := newIface(ic, nl, log)
		if err != nil {
			return nil, fmt.Errorf("interfaces[%d] %w", i, err)
		}
		d.ifaces[ic.Name] = ifc
		d.byIdx[nl.Index] = ifc
	}
	return d, nil
}

func newIface(ic *config.Interface, nl *net.Interface, log *slog.Logger) (*iface, error) {
	ifc := &iface{name: ic.Name, cfg: ic, index: nl.Index, mac: nl.HardwareAddr, logger: log.With("interface", ic.Name)}
	if len(ifc.mac) != 6 {
		return nil, fmt.Errorf("%s: not an Ethernet interface", ic.Name)
	}
	ifc.ignoreReports.Store(ignoreReports(ic))
	return ifc, nil
}

// ignoreReports: drop MLD reports on the interface while its tracked group
// is Backup.
func ignoreReports(ic *config.Interface) bool {
	return ic.MLD.IgnoreReportsWhileBackup && ic.MulticastTrackVRRP6 != 0
}

// Run brings the router up and serves until ctx ends, or until one of its
// goroutines fails (Run returns that error). On return the pinned
// dataplane stays: forwarding goes on until the next start adopts it or
// Cleanup removes it. A start-up failure returns a *StartError after
// undoing what the failed start made (see bringUp).
func (d *Daemon) Run(ctx context.Context) error {
	d.started.Store(true)
	defer close(d.stopped)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	d.group = g
	d.prepareHeap() // THP for a standby's heap: daemon/heap.go
	if err := d.bringUp(gctx, cancel); err != nil {
		return err
	}
	// Routes learned before a restart stay until MLD had a chance to
	// relearn them (a Multicast Address Listening Interval), then go.
	grace := time.NewTimer(d.relearnGrace())
	defer grace.Stop()
	for {
		select {
		case <-gctx.Done():
			d.log.Info("hotcastd stopping; the pinned dataplane keeps forwarding")
			if err := d.shutdown(cancel); err != nil {
				return fmt.Errorf("hotcastd failed: %w", err)
			}
			return nil
		case r := <-d.reloads:
			r.done <- d.reload(gctx, r.next)
		case <-grace.C:
			if err := d.table.Prune(); err != nil {
				d.log.Error("prune routes from before the restart", "err", err)
			}
		}
	}
}

// StartError is a start-up phase that failed: which phase, on which
// interface (when one), and why. Everything the failed start made has
// been undone when Run returns it.
type StartError struct {
	Phase     string // addresses, dataplane, pim, mld, rbs, bfd, vrrp6, mld-proxy, api, metrics
	Interface string // "" when the phase failed as a whole
	Err       error
}

func (e *StartError) Error() string { return "start: " + e.Phase + ": " + e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// Errno names the system error under the failure (EADDRINUSE, ...), or "".
func (e *StartError) Errno() string {
	var en unix.Errno
	if errors.As(e.Err, &en) {
		if n := unix.ErrnoName(en); n != "" {
			return n
		}
		return fmt.Sprintf("errno %d", int(en))
	}
	return ""
}

// ifaceError marks a start-up error as one interface's (its text already
// names the interface), so that StartError can say which.
type ifaceError struct {
	name string
	err  error
}

func (e *ifaceError) Error() string { return e.err.Error() }
func (e *ifaceError) Unwrap() error { return e.err }

func onIface(name string, err error) error {
	if err == nil {
		return nil
	}
	return &ifaceError{name: name, err: err}
}

func startError(phase string, err error) error {
	se := &StartError{Phase: phase, Err: err}
	var ie *ifaceError
	if errors.As(err, &ie) {
		se.Interface = ie.name
	}
	return se
}

// bringUp runs the start-up phases in order (a Reload waits for Run's
// loop): addresses, then the dataplane (open or adopt, attach), then the
// protocols and servers. When a phase fails, what the earlier phases made
// is undone before it returns: protocols and servers stopped and their
// goroutines joined, and a dataplane this start created unpinned and
// detached (an adopted one keeps forwarding as it was, less interfaces
// this start attached). Nothing in here recovers a panic, and no lock is
// held across it: a panic kills the process with its stack.
func (d *Daemon) bringUp(ctx context.Context, cancel context.CancelFunc) error {
	if err := d.ensureAddresses(); err != nil {
		return startError("addresses", err)
	}
	attachedBefore, err := d.openDataplane()
	if err != nil {
		return startError("dataplane", err)
	}
	d.track = track.New(d.dp, hostAddrs{d.sys, d.log.With("component", "vrrp6")}, d.log.With("component", "track"))
	if phase, err := d.start(ctx); err != nil {
		_ = d.stop(cancel) // the goroutines' errors come after err
		d.undoDataplane(attachedBefore)
		return startError(phase, err)
	}
	return nil
}

// stop cancels what Run started and joins its goroutines: it returns the
// first error one of them ended with.
func (d *Daemon) stop(cancel context.CancelFunc) error {
	cancel()
	d.closeServers()
	d.stopProtocols()
	return d.group.Wait()
}

// shutdown stops what Run started; the pinned dataplane stays.
func (d *Daemon) shutdown(cancel context.CancelFunc) error {
	err := d.stop(cancel)
	d.dp.Close()
	return err
}

// undoDataplane takes back what a failed start did to the dataplane: one
// it created is removed whole (pins, and so the attachments they hold);
// one it adopted loses only the interfaces this start attached.
func (d *Daemon) undoDataplane(attachedBefore []string) {
	if !d.dp.Adopted() {
		d.dp.Close()
		if err := d.sys.CleanupDataplane(d.cfg.BPF.PinPath); err != nil {
			d.log.Error("start failed: remove the dataplane it created", "pin_path", d.cfg.BPF.PinPath, "err", err)
		}
		return
	}
	undoAttach(d.dp, attachedBefore, d.log)
	d.dp.Close()
}

// attacher is the part of the dataplane undoAttach needs.
type attacher interface {
	Attached() []string
	Detach(name string) error
}

// undoAttach detaches the interfaces attached since before was taken.
func undoAttach(dp attacher, before []string, log *slog.Logger) {
	had := make(map[string]bool, len(before))
	for _, n := range before {
		had[n] = true
	}
	for _, n := range dp.Attached() {
		if !had[n] {
			if err := dp.Detach(n); err != nil {
				log.Error("start failed: detach", "interface", n, "err", err)
			}
		}
	}
}

// start brings up the protocols and the servers (control path). On
// failure it names the phase that failed.
func (d *Daemon) start(ctx context.Context) (phase string, err error) {
	d.group.Go(func() error { return d.track.Run(ctx) }) // ends with ctx, nil
	if d.usesMLD() {
		d.log.Info("mld receive route", "route", mld.ReceiveRoute)
	}
	// PIM before MLD: MLD's first memberships are PIM's local receivers.
	if err := d.startPIM(ctx); err != nil {
		return "pim", err
	}
	for _, ifc := range d.ifaces {
		if ifc.cfg.MLD.Enable {
			if err := d.startIfaceMLD(ctx, ifc); err != nil {
				return "mld", onIface(ifc.name, err)
			}
		}
	}
	if err := d.startRBS(ctx); err != nil {
		return "rbs", err
	}
	if err := d.startBFD(ctx); err != nil {
		return "bfd", err
	}
	// The tracker knows every interface before the first transition
	// (those running MLD were handed over by startIfaceMLD).
	for _, ifc := range d.ifaces {
		if !ifc.cfg.MLD.Enable {
			d.resyncGate(ifc)
		}
	}
	if err := d.startVRRP(ctx); err != nil {
		return "vrrp6", err
	}
	if err := d.startProxy(ctx, d.cfg.Multicast.Upstream); err != nil {
		return "mld-proxy", onIface(d.cfg.Multicast.Upstream.Interface, err)
	}
	l, err := listenAPI(d.cfg.API.Socket)
	if err != nil {
		return "api", err
	}
	d.api = d.serveAPI(ctx, l, d.cfg.API.Socket)
	if addr := d.cfg.API.MetricsListen; addr != "" {
		l, err := listenMetrics(addr)
		if err != nil {
			return "metrics", err
		}
		d.metrics = d.serveMetrics(l, addr)
	}
	d.log.Info("hotcastd up", "interfaces", len(d.ifaces), "adopted", d.dp.Adopted())
	return "", nil
}

// usesMLD: an interface runs the MLD router, or the upstream the proxy.
func (d *Daemon) usesMLD() bool {
	if d.cfg.Multicast.Upstream.Mode == config.UpstreamMLDProxy {
		return true
	}
	for _, ifc := range d.ifaces {
		if ifc.cfg.MLD.Enable {
			return true
		}
	}
	return false
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
		if err := d.ensureIfaceAddresses(ifc, ifc.cfg.Addresses); err != nil {
			return onIface(ifc.name, err)
		}
	}
	return d.ensureLoopback()
}

// ensureLoopback puts the loopback addresses on their interface (VRP's
// LoopBack0: an RP address, a router address PIM counts as its own).
func (d *Daemon) ensureLoopback() error {
	lb := d.cfg.Loopback
	if len(lb.Addresses) == 0 {
		return nil
	}
	name := lb.Interface
	if name == "" {
		name = config.DefaultLoopbackInterface
	}
	nl, err := d.sys.Interface(name)
	if err != nil {
		return fmt.Errorf("loopback %s: %w", name, err)
	}
	have, err := d.sys.Addrs(nl.Index)
	if err != nil {
		return fmt.Errorf("loopback %s: %w", name, err)
	}
	for _, p := range lb.Addresses {
		if slices.Contains(have, p.Addr()) {
			continue
		}
		if err := d.sys.AddAddr(nl.Index, p); err != nil {
			return fmt.Errorf("loopback %s: add %s: %w", name, p, err)
		}
	}
	return nil
}

// ensureIfaceAddresses puts addrs on the interface (those it lacks), with
// the interface keeping its addresses across a link flap.
func (d *Daemon) ensureIfaceAddresses(ifc *iface, addrs []netip.Prefix) error {
	// A router keeps its configured addresses across a link flap (Linux
	// flushes IPv6 addresses on link down by default): the RBS session,
	// VRRP and MLD sources must survive a cable pull.
	if err := d.sys.KeepAddrOnDown(ifc.name); err != nil {
		d.log.Warn("keep addresses on link down", "interface", ifc.name, "err", err)
	}
	if len(addrs) == 0 {
		return nil
	}
	have, err := d.sys.Addrs(ifc.index)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifc.name, err)
	}
	for _, p := range addrs {
		if slices.Contains(have, p.Addr()) {
			continue
		}
		if err := d.sys.AddAddr(ifc.index, p); err != nil {
			return fmt.Errorf("interface %s: add %s: %w", ifc.name, p, err)
		}
	}
	return nil
}

// removeIfaceAddresses takes addrs off the interface (a reload removed
// them from its configuration); an address already gone is no error.
func (d *Daemon) removeIfaceAddresses(ifc *iface, addrs []netip.Prefix) error {
	var errs []error
	for _, p := range addrs {
		if err := d.sys.DelAddr(ifc.index, p); err != nil {
			errs = append(errs, fmt.Errorf("interface %s: remove %s: %w", ifc.name, p, err))
		}
	}
	return errors.Join(errs...)
}

// openDataplane opens (or adopts) the pinned dataplane, attaches the
// configured interfaces and reconciles the routes. It returns the
// interfaces that were attached before it ran, for undoDataplane; on
// failure it has undone its own work.
func (d *Daemon) openDataplane() (attachedBefore []string, err error) {
	opts := bpf.Options{PinPath: d.cfg.BPF.PinPath, Logger: d.log.With("component", "bpf")}
	switch d.cfg.BPF.XDPMode {
	case config.XDPGeneric:
		opts.XDPFlags = link.XDPGenericMode
	default:
		opts.XDPFlags = link.XDPDriverMode
	}
	dp, err := d.sys.OpenDataplane(opts)
	if err != nil {
		return nil, fmt.Errorf("open dataplane: %w", err)
	}
	d.dp = dp
	before := dp.Attached()
	fail := func(err error) ([]string, error) {
		d.undoDataplane(before)
		return nil, err
	}

	// Interfaces no longer configured, or that neither route nor run
	// VRRP6, lose their program.
	for _, name := range dp.Attached() {
		if ifc, ok := d.ifaces[name]; !ok || !d.needsFastPath(ifc) {
			d.log.Info("detaching interface no longer configured", "interface", name)
			if err := dp.Detach(name); err != nil {
				return fail(err)
			}
		}
	}
	for _, ifc := range d.ifaces {
		if d.needsFastPath(ifc) {
			if err := d.attachIface(ifc); err != nil {
				return fail(onIface(ifc.name, err))
			}
		}
	}

	up := 0
	if u := d.ifaces[d.cfg.Multicast.Upstream.Interface]; u != nil {
		up = u.index
	}
	d.table = mroute.New(dp, up, d.log.With("component", "mroute"))
	if d.cfg.PIMEnabled() {
		d.table.UseProtocol() // PIM's routes are the learned routes
	}
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
	return before, nil
}

// attachIface puts the fast path on an interface: its entry in the ifaces
// map and the ingress programs. Without multicast.routing-enable (an
// interface attached for VRRP6 alone) the entry says the interface does
// not route: its multicast goes to the stack.
func (d *Daemon) attachIface(ifc *iface) error {
	// A tracked interface starts muted (VRRP decides); a restarted daemon
	// keeps the gate (and a VRRP virtual source MAC) it finds, and takes
	// this configuration's MAC, egress mode and routing.
	initial := track.Entry(d.trackIface(ifc), false, nil)
	cur, err := d.dp.EnsureIface(ifc.index, initial)
	if err != nil {
		return err
	}
	want := cur
	want.MAC, want.Clone, want.NoRoute = initial.MAC, initial.Clone, initial.NoRoute
	if ifc.cfg.MulticastTrackVRRP6 == 0 {
		want.SrcMAC = initial.SrcMAC
	}
	if want.MAC.String() != cur.MAC.String() || want.SrcMAC.String() != cur.SrcMAC.String() || want.Clone != cur.Clone || want.NoRoute != cur.NoRoute {
		if err := d.dp.SetIface(ifc.index, want); err != nil {
			return err
		}
	}
	return d.dp.Attach(ifc.name, ifc.index)
}

// readMLD hands every MLD message read from conn to handle until ctx ends
// or conn is closed.
func (d *Daemon) readMLD(ctx context.Context, conn MLDConn, log *slog.Logger, handle func(mld.Packet)) {
	d.group.Go(func() error {
		for {
			p, err := conn.Read(ctx)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return nil
				}
				log.Warn("mld read", "err", err)
				continue
			}
			handle(p)
		}
	})
}

func (d *Daemon) stopProtocols() {
	d.shutdownVRRP()
	d.stopBFD() // after VRRP6: a group leaving Master is no BFD failure
	d.stopProxy(false)
	d.stopPIM()
	for _, ifc := range d.ifaces {
		if ifc.mld != nil {
			ifc.mld.Stop()
		}
		if ifc.mldConn != nil {
			ifc.mldConn.Close()
		}
	}
}

// closeServers closes the API and metrics servers.
func (d *Daemon) closeServers() {
	if d.api != nil {
		d.api.close()
	}
	if d.metrics != nil {
		d.metrics.close()
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
