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
	"sync/atomic"
	"time"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/mroute"
	"github.com/hotcast/hotcast/ctrl/pim"
	"github.com/hotcast/hotcast/daemon/config"
)

// PIM-SM in the daemon (RFC 7761; docs/pim.md).
//
// The protocol is ctrl/pim's Router with one pim.Interface per `pim: sm`
// interface. What the daemon adds is the machine around it:
//   - transport: a raw socket of protocol 103 per interface (Hellos,
//     Join/Prune, Assert) and one unbound (Registers, Register-Stops);
//   - local membership: every MLD change (and so every RBS-synced entry on
//     a standby, which enters MLD's state) goes to the Router as the
//     interface's local_receiver_include/exclude (applyMLD);
//   - routes: the Router's routes, converted, are the route table's
//     learned routes (mroute protocol mode), so the fast path forwards
//     PIM's olists with PIM's RPF interface as the incoming one;
//   - data arrival (§4.2): the fast path passes what it has no route for,
//     and the punt routes' packets, to the stack; a packet socket per
//     interface reads them (new sources at the DR and the RP, the last
//     hop's switch to the SPT, the packets a DR registers), and the
//     counters of (S,G) routes are polled for the Keepalive Timer and the
//     SPT bit;
//   - at the RP, decapsulated Register data is sent out of the RP tree's
//     interfaces through the same packet sockets.

// PIMConn is an interface's link-local PIM socket (pim.Conn).
type PIMConn interface {
	pim.Sender
	Read(ctx context.Context) (pim.Packet, error)
	Close() error
}

// PIMUnicastConn is the router's socket for unicast PIM: Registers and
// Register-Stops (pim.UnicastConn).
type PIMUnicastConn interface {
	pim.UnicastSender
	Read(ctx context.Context) (pim.UnicastPacket, error)
	Close() error
}

// DataConn reads the multicast data the fast path hands to the stack on
// one interface, and sends IPv6 multicast packets out of it
// (pim.DataConn).
type DataConn interface {
	Read(ctx context.Context) (pim.DataPacket, error)
	WriteIPv6(pkt []byte) error
	Close() error
}

// PIMRPF answers PIM's RPF lookups from the unicast FIB and reports its
// changes (pim.NetlinkRPF).
type PIMRPF interface {
	pim.RPF
	Watch(ctx context.Context, onChange func()) error
}

var (
	_ PIMConn        = (*pim.Conn)(nil)
	_ PIMUnicastConn = (*pim.UnicastConn)(nil)
	_ DataConn       = (*pim.DataConn)(nil)
	_ PIMRPF         = (*pim.NetlinkRPF)(nil)
)

const (
	// pimCounterPoll is how often the (S,G) routes' counters are read:
	// a route whose packets moved is data arrival on its RPF interface
	// (the Keepalive Timer, the SPT bit).
	pimCounterPoll = time.Second
	// pimDataHold is how long after a data packet of an (S,G) the next
	// one is not handed to the Router (Registers are sent for every
	// packet regardless): a flood of misses costs one call per hold.
	pimDataHold = 100 * time.Millisecond
	// pimSeenMax bounds the data hold's memory; beyond it old entries go.
	pimSeenMax = 65536
)

// pimRun is PIM-SM while it runs.
type pimRun struct {
	d      *Daemon
	log    *slog.Logger
	cfg    config.PIM
	router *pim.Router
	rpf    PIMRPF
	uni    PIMUnicastConn

	ifaces []*pimIface       // by name; fixed after start
	byIdx  map[int]*pimIface // fixed after start
	names  map[int]string    // every configured interface; fixed

	routesMu sync.Mutex                              // serialises route application
	routes   map[netip.Addr]map[netip.Addr]pim.Route // the Router's routes, by group, source
	sgKeys   map[netip.Addr]map[bpf.RouteKey]int     // installed (S,G) routes -> incoming interface, by group
	packets  map[bpf.RouteKey]uint64                 // their counters at the last poll

	seenMu sync.Mutex
	seen   map[bpf.RouteKey]time.Time // data hold, by (S,G)

	// sptSeen are the (S,G) punted for their SPT bit whose data the
	// packet socket has seen once (guarded by routesMu): they are
	// punted no more, bit or no bit (the bit's other conditions may not
	// hold; the counter poll goes on).
	sptSeen map[bpf.RouteKey]bool

	stats struct {
		dataRx, dataDropped, registersTx, registerErrs, decapForward, decapErrs, counterPolls atomic.Uint64
	}
}

// pimIface is one PIM interface.
type pimIface struct {
	name  string
	index int
	ifc   *pim.Interface
	conn  PIMConn
	data  DataConn
	opt   pim.IfaceOptions
	cfg   config.InterfacePIM
	owner *iface
}

// startPIM brings PIM up (control path), before MLD so that MLD's first
// memberships find the Router: the RPF source, the Router, an Interface
// with its sockets per PIM interface, the unicast socket, and the
// goroutines that read them, follow the FIB and poll the counters.
func (d *Daemon) startPIM(ctx context.Context) error {
	if !d.cfg.PIMEnabled() {
		return nil
	}
	var pc config.PIM
	if d.cfg.PIM != nil {
		pc = *d.cfg.PIM
	}
	p := &pimRun{d: d, log: d.log.With("component", "pim"), cfg: pc,
		byIdx: map[int]*pimIface{}, names: map[int]string{},
		routes: map[netip.Addr]map[netip.Addr]pim.Route{}, sgKeys: map[netip.Addr]map[bpf.RouteKey]int{},
		packets: map[bpf.RouteKey]uint64{}, seen: map[bpf.RouteKey]time.Time{}, sptSeen: map[bpf.RouteKey]bool{}}
	for _, ifc := range d.ifaces {
		p.names[ifc.index] = ifc.name
	}
	if err := p.start(ctx); err != nil {
		p.stop()
		return err
	}
	d.mu.Lock()
	d.pim = p
	d.mu.Unlock()
	return nil
}

func (p *pimRun) start(ctx context.Context) error {
	d := p.d
	rpf, err := d.sys.PIMRPF()
	if err != nil {
		return fmt.Errorf("pim rpf: %w", err)
	}
	p.rpf = rpf
	var rps []pim.StaticRP
	for _, r := range p.cfg.StaticRPs {
		rps = append(rps, pim.StaticRP{Address: r.Address, Groups: r.GroupRange})
	}
	var ssm []netip.Prefix
	if p.cfg.SSMRange.IsValid() {
		ssm = []netip.Prefix{p.cfg.SSMRange}
	}
	set, err := pim.NewRPSet(rps, ssm)
	if err != nil {
		return fmt.Errorf("pim: %w", err)
	}
	uni, err := d.sys.ListenPIMUnicast()
	if err != nil {
		return fmt.Errorf("pim unicast socket: %w", err)
	}
	p.uni = uni
	policy := pim.SPTImmediate
	if p.cfg.SPTSwitch == config.SPTSwitchNever {
		policy = pim.SPTNever
	}
	rc := pim.RouterConfig{
		RPs: set, RPF: rpf,
		JoinPrunePeriod: p.cfg.JoinPruneInterval, JoinPruneHoldtime: p.cfg.JoinPruneHoldtime,
		Logger:                p.log,
		Addresses:             d.pimAddresses(),
		Unicast:               uni,
		AcceptRegister:        p.cfg.AcceptRegister,
		AcceptRegisterSources: p.cfg.AcceptRegisterSources,
		OnRegisterData:        p.forwardDecap,
		SPTSwitch:             policy,
		OnRoutes:              p.onRoutes,
	}
	r, err := pim.NewRouter(rc)
	if err != nil {
		return fmt.Errorf("pim: %w", err)
	}
	p.router = r

	names := make([]string, 0, len(d.ifaces))
	for name, ifc := range d.ifaces {
		if ifc.cfg.PIM != nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		if err := p.addIface(ctx, d.ifaces[name]); err != nil {
			return onIface(name, err)
		}
	}
	d.group.Go(func() error {
		// A FIB we cannot follow is RPF frozen at the last answers:
		// logged, PIM keeps its state.
		if err := rpf.Watch(ctx, r.RPFChanged); err != nil && ctx.Err() == nil {
			p.log.Error("pim: following the unicast routes stopped", "err", err)
		}
		return nil
	})
	d.group.Go(func() error { p.readUnicast(ctx); return nil })
	d.group.Go(func() error { p.pollCounters(ctx); return nil })
	p.log.Info("pim-sm up", "interfaces", len(p.ifaces), "static_rps", len(rps), "spt_switch", string(p.cfg.SPTSwitch), "addresses", len(rc.Addresses))
	return nil
}

// pimAddresses are the router's own routable addresses for PIM: the
// loopback's, then every interface's configured global ones.
func (d *Daemon) pimAddresses() []netip.Addr {
	var out []netip.Addr
	for _, p := range d.cfg.Loopback.Addresses {
		out = append(out, p.Addr())
	}
	for _, ic := range d.cfg.Interfaces {
		for _, p := range ic.Addresses {
			if a := p.Addr(); !a.IsLinkLocalUnicast() && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

func (p *pimRun) addIface(ctx context.Context, ifc *iface) error {
	d := p.d
	ll, err := d.sys.LinkLocal(ifc.index)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifc.name, err)
	}
	conn, err := d.sys.ListenPIM(ifc.name, ll)
	if err != nil {
		return fmt.Errorf("interface %s: pim socket: %w", ifc.name, err)
	}
	pi := &pimIface{name: ifc.name, index: ifc.index, conn: conn, cfg: *ifc.cfg.PIM, owner: ifc,
		opt: pim.IfaceOptions{IgnoreDRState: ifc.cfg.PIM.IgnoreDRState, IgnoreAssertState: ifc.cfg.PIM.IgnoreAssertState}}
	p.ifaces = append(p.ifaces, pi)
	p.byIdx[ifc.index] = pi
	data, err := d.sys.ListenData(ifc.name)
	if err != nil {
		return fmt.Errorf("interface %s: data socket: %w", ifc.name, err)
	}
	pi.data = data
	c := pim.DefaultConfig(ifc.name, ll)
	for _, a := range ifc.cfg.Addresses {
		if !a.Addr().IsLinkLocalUnicast() {
			c.SecondaryAddresses = append(c.SecondaryAddresses, a.Addr())
		}
	}
	if pi.cfg.HelloInterval > 0 {
		c.HelloPeriod = pi.cfg.HelloInterval
	}
	c.DRPriority = pi.cfg.DRPriority
	c.Sender = conn
	c.Logger = p.log.With("interface", ifc.name)
	c.OnEvent = p.router.HandleEvent
	c.OnMessage = p.router.HandleMessage
	pc, err := pim.New(c)
	if err != nil {
		return fmt.Errorf("interface %s: pim: %w", ifc.name, err)
	}
	pi.ifc = pc
	if err := p.router.AddInterface(ifc.index, pc, pi.opt); err != nil {
		return fmt.Errorf("interface %s: pim: %w", ifc.name, err)
	}
	pc.Start()
	d.group.Go(func() error {
		for {
			pkt, err := conn.Read(ctx)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return nil
				}
				c.Logger.Warn("pim read", "err", err)
				continue
			}
			// Unicast PIM (Registers, Register-Stops) arrives on the
			// unicast socket too: taken from there only.
			if !pkt.Dst.IsMulticast() {
				continue
			}
			pc.HandlePacket(pkt)
		}
	})
	d.group.Go(func() error {
		for {
			dp, err := data.Read(ctx)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return nil
				}
				c.Logger.Warn("pim data read", "err", err)
				continue
			}
			p.dataArrived(pi, dp)
		}
	})
	return nil
}

// stop ends PIM (control path): Hellos with holdtime 0 on every
// interface (the neighbours forget this router at once), sockets closed;
// the goroutines end with the daemon's context. The routes stay in the
// fast path, as every protocol's do across a restart.
func (p *pimRun) stop() {
	for _, pi := range p.ifaces {
		if pi.ifc != nil {
			pi.ifc.Stop()
		}
		if pi.conn != nil {
			pi.conn.Close()
		}
		if pi.data != nil {
			pi.data.Close()
		}
	}
	if p.uni != nil {
		p.uni.Close()
	}
}

// readUnicast hands the Registers and Register-Stops addressed to this
// router to the PIM interface they arrived on (which checks and parses
// them); one arriving on a non-PIM interface is dropped.
func (p *pimRun) readUnicast(ctx context.Context) {
	for {
		up, err := p.uni.Read(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			p.log.Warn("pim unicast read", "err", err)
			continue
		}
		pi := p.byIdx[up.Ifindex]
		if pi == nil {
			p.stats.dataDropped.Add(1)
			p.log.Debug("pim unicast message on a non-pim interface", "ifindex", up.Ifindex, "src", up.Src)
			continue
		}
		pi.ifc.HandlePacket(up.Packet)
	}
}

// setMembership takes one MLD step of an interface (mroute changes) to
// the Router: EXCLUDE mode is exclude with the excluded sources, INCLUDE
// the included ones, a removed membership is INCLUDE {}.
func (p *pimRun) setMembership(ifindex int, cs []mroute.Change) {
	if p.byIdx[ifindex] == nil {
		return
	}
	for _, c := range cs {
		var err error
		switch {
		case c.M == nil:
			err = p.router.SetLocalMembership(ifindex, c.Group, false, nil)
		case c.M.Star:
			err = p.router.SetLocalMembership(ifindex, c.Group, true, c.M.Exclude)
		default:
			err = p.router.SetLocalMembership(ifindex, c.Group, false, c.M.Include)
		}
		if err != nil {
			p.log.Debug("pim local membership", "group", c.Group, "err", err)
		}
	}
}

// clearMembership removes every local membership of an interface (its
// MLD stopped).
func (p *pimRun) clearMembership(ifindex int, groups []netip.Addr) {
	cs := make([]mroute.Change, len(groups))
	for i, g := range groups {
		cs[i] = mroute.Change{Group: g}
	}
	p.setMembership(ifindex, cs)
}

// onRoutes applies the Router's route changes to the route table, one
// batch per call (the Router's OnRoutes, without its lock held).
func (p *pimRun) onRoutes(us []pim.RouteUpdate) {
	p.routesMu.Lock()
	defer p.routesMu.Unlock()
	groups := map[netip.Addr]bool{}
	defer func() { p.apply(groups) }()
	for _, u := range us {
		g := u.Group
		src := u.Source
		if u.Flags&pim.FlagWC != 0 || !src.IsValid() {
			src = netip.IPv6Unspecified()
		}
		byS := p.routes[g]
		if u.Deleted {
			delete(byS, src)
			if len(byS) == 0 {
				delete(p.routes, g)
			}
		} else {
			if byS == nil {
				byS = map[netip.Addr]pim.Route{}
				p.routes[g] = byS
			}
			byS[src] = u.Route
		}
		groups[g] = true
	}
}

// apply writes the fast-path routes of groups from the Router's routes
// (routesMu held).
func (p *pimRun) apply(groups map[netip.Addr]bool) {
	change := make(map[netip.Addr][]bpf.Route, len(groups))
	for g := range groups {
		old := p.sgKeys[g]
		keys := map[bpf.RouteKey]int{}
		var rs []bpf.Route
		for src, r := range p.routes[g] {
			br, ok := p.fastRoute(src, r)
			if !ok {
				continue
			}
			rs = append(rs, br)
			if !br.IsStar() {
				keys[br.RouteKey] = br.IIf
			}
		}
		for k := range old {
			if _, ok := keys[k]; !ok {
				delete(p.packets, k)
				delete(p.sptSeen, k)
			}
		}
		if len(keys) == 0 {
			delete(p.sgKeys, g)
		} else {
			p.sgKeys[g] = keys
		}
		change[g] = rs
	}
	if err := p.d.table.SetProtocolRoutes(change); err != nil {
		p.log.Error("pim: apply routes", "groups", len(change), "err", err)
	}
}

// fastRoute is the fast path's form of a PIM route; false when the fast
// path has no use for it:
//   - no incoming interface (no route to the source or the RP, or the
//     RP's own (*,G)): its data arrives by Register, or is a miss the
//     packet socket sees (a new source at the RP);
//   - an incoming interface that is not this router's.
//
// A (*,G) with local receivers on a router that switches to the SPT is
// a punt route (each new source is seen and joined); an (S,G) the DR
// registers is one too (each packet goes into a Register).
func (p *pimRun) fastRoute(src netip.Addr, r pim.Route) (bpf.Route, bool) {
	if r.RPFIface == 0 || p.names[r.RPFIface] == "" {
		return bpf.Route{}, false
	}
	br := bpf.Route{RouteKey: bpf.RouteKey{Source: src, Group: r.Group}, IIf: r.RPFIface}
	local := false
	for _, o := range r.OIfs {
		if o.Ifindex == r.RPFIface || p.names[o.Ifindex] == "" {
			continue
		}
		br.OIfs = append(br.OIfs, o.Ifindex)
		local = local || o.Local
	}
	slices.Sort(br.OIfs)
	switch {
	case r.Flags&pim.FlagRegister != 0:
		br.Flags |= bpf.RoutePunt
	case br.IsStar() && local && p.cfg.SPTSwitch != config.SPTSwitchNever:
		br.Flags |= bpf.RoutePunt
	case !br.IsStar() && r.Joined && r.Flags&pim.FlagSPT != 0 && r.Flags&pim.FlagSPTBit == 0 && !p.sptSeen[br.RouteKey]:
		// Joined on the source tree, the SPT bit not yet set: the first
		// native packet must reach Update_SPTbit at once, not at the
		// next counter poll. Until then the RP would forward both the
		// native packets and their Registers' copies (duplicates), and
		// a last hop would keep S on the RP tree.
		br.Flags |= bpf.RoutePunt
	}
	return br, true
}

// dataArrived is one data packet the fast path handed to the stack on an
// interface: encapsulated in a Register when the (S,G) is registering,
// and, at most once per pimDataHold per (S,G), given to the Router as
// data arrival (§4.2).
func (p *pimRun) dataArrived(pi *pimIface, dp pim.DataPacket) {
	p.stats.dataRx.Add(1)
	s, g := dp.Src, dp.Group
	// After data arrival: a new source's first packet is what puts its
	// Register state in Join, and it is registered too.
	defer func() {
		if p.router.ShouldRegister(s, g) {
			if err := p.router.SendRegister(s, g, dp.Packet); err != nil {
				p.stats.registerErrs.Add(1)
				p.log.Debug("pim register", "source", s, "group", g, "err", err)
			} else {
				p.stats.registersTx.Add(1)
			}
		}
	}()
	k := bpf.RouteKey{Source: s, Group: g}
	now := time.Now()
	p.seenMu.Lock()
	last, ok := p.seen[k]
	hold := ok && now.Sub(last) < pimDataHold
	if !hold {
		if len(p.seen) >= pimSeenMax {
			for sk, t := range p.seen {
				if now.Sub(t) >= pimDataHold {
					delete(p.seen, sk)
				}
			}
		}
		if len(p.seen) < pimSeenMax {
			p.seen[k] = now
		} else {
			hold = true // a flood of distinct sources: shed it
		}
	}
	p.seenMu.Unlock()
	if hold {
		p.stats.dataDropped.Add(1)
		return
	}
	p.router.DataArrived(pi.index, s, g)
	p.sptDataSeen(k)
}

// sptDataSeen: the packet socket saw data of k; if k is punted for its
// SPT bit, it is punted no more (the Router's route update, when the bit
// was set, has re-applied the group already; otherwise this does).
func (p *pimRun) sptDataSeen(k bpf.RouteKey) {
	p.routesMu.Lock()
	defer p.routesMu.Unlock()
	if _, installed := p.sgKeys[k.Group][k]; !installed || p.sptSeen[k] {
		return
	}
	r, ok := p.routes[k.Group][k.Source]
	if !ok || !r.Joined || r.Flags&pim.FlagSPT == 0 {
		return
	}
	p.sptSeen[k] = true
	if r.Flags&pim.FlagSPTBit == 0 {
		p.apply(map[netip.Addr]bool{k.Group: true})
	}
}

// forwardDecap sends a packet the RP took out of a Register out of the
// RP tree's interfaces (the Router's OnRegisterData), hop limit
// decremented, each through the interface's packet socket; a muted
// interface (a tracked VRRP6 group's Backup) gets nothing.
func (p *pimRun) forwardDecap(rd pim.RegisterData) {
	if len(rd.Packet) < 40 || rd.Packet[7] <= 1 {
		p.stats.decapErrs.Add(1)
		return
	}
	pkt := slices.Clone(rd.Packet)
	pkt[7]--
	for _, o := range rd.OIfs {
		pi := p.byIdx[o]
		if pi == nil || pi.data == nil || !pi.owner.master.Load() {
			continue
		}
		if err := pi.data.WriteIPv6(pkt); err != nil {
			p.stats.decapErrs.Add(1)
			p.log.Debug("pim register data out", "interface", pi.name, "err", err)
			continue
		}
		p.stats.decapForward.Add(1)
	}
}

// pollCounters reads the installed (S,G) routes' counters every
// pimCounterPoll: one whose packets moved had data on its incoming
// interface (the fast path forwarded it unseen), which keeps its
// Keepalive Timer running and sets its SPT bit.
func (p *pimRun) pollCounters(ctx context.Context) {
	t := time.NewTicker(pimCounterPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.routesMu.Lock()
		var keys []bpf.RouteKey
		for _, ks := range p.sgKeys {
			for k := range ks {
				keys = append(keys, k)
			}
		}
		p.routesMu.Unlock()
		if len(keys) == 0 {
			continue
		}
		cs, err := p.d.dp.Counters(keys)
		if err != nil {
			p.log.Warn("pim: read route counters", "err", err)
			continue
		}
		p.stats.counterPolls.Add(1)
		type arrival struct {
			iif  int
			s, g netip.Addr
		}
		var moved []arrival
		p.routesMu.Lock()
		for k, c := range cs {
			iif, ok := p.sgKeys[k.Group][k]
			if !ok {
				continue
			}
			if c.Packets != p.packets[k] {
				p.packets[k] = c.Packets
				moved = append(moved, arrival{iif, k.Source, k.Group})
			}
		}
		p.routesMu.Unlock()
		for _, a := range moved {
			p.router.DataArrived(a.iif, a.s, a.g)
		}
	}
}

// view is the API's snapshot of PIM.
func (p *pimRun) view() pimView {
	v := pimView{Router: p.router, Names: p.names, RPs: slices.Clone(p.cfg.StaticRPs), SPT: p.cfg.SPTSwitch}
	for _, pi := range p.ifaces {
		if pi.ifc == nil {
			continue
		}
		v.Ifaces = append(v.Ifaces, pimIfaceView{Name: pi.name, Index: pi.index, Ifc: pi.ifc, Opt: pi.opt, Cfg: pi.cfg})
	}
	v.Data = pimDataStats{
		DataRx: p.stats.dataRx.Load(), DataDropped: p.stats.dataDropped.Load(),
		RegistersTx: p.stats.registersTx.Load(), RegisterErrs: p.stats.registerErrs.Load(),
		DecapForward: p.stats.decapForward.Load(), DecapErrs: p.stats.decapErrs.Load(),
		CounterPolls: p.stats.counterPolls.Load(),
	}
	return v
}

// stopPIM stops PIM (control path).
func (d *Daemon) stopPIM() {
	d.mu.Lock()
	p := d.pim
	d.pim = nil
	d.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// pimRunning returns the running PIM, or nil.
func (d *Daemon) pimRunning() *pimRun {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.pim
}

// pimView is what the API and metrics handlers read of PIM: a snapshot of
// the running router's parts (each safe to call concurrently).
type pimView struct {
	Router *pim.Router
	Ifaces []pimIfaceView    // PIM interfaces, by name
	Names  map[int]string    // every configured interface's name by ifindex
	Data   pimDataStats      // the daemon's data-path hooks
	RPs    []config.StaticRP // the configured static RPs
	SPT    config.SPTSwitch  // the SPT switch policy
}

// pimIfaceView is one PIM interface.
type pimIfaceView struct {
	Name  string
	Index int
	Ifc   *pim.Interface
	Opt   pim.IfaceOptions
	Cfg   config.InterfacePIM
}

// pimDataStats count what the daemon's data-path hooks did.
type pimDataStats struct {
	DataRx       uint64 // data packets read from the packet sockets (misses, punted routes)
	DataDropped  uint64 // data packets not handed to the Router: data hold, flood, non-PIM interface
	RegistersTx  uint64 // Registers sent (encapsulated data)
	RegisterErrs uint64 // Registers that failed to build or send
	DecapForward uint64 // decapsulated copies sent out of an interface (at the RP)
	DecapErrs    uint64
	CounterPolls uint64 // route counter reads (the Keepalive Timer's data arrival)
}

// pimView returns the running PIM's snapshot; false when PIM is off.
func (d *Daemon) pimView() (pimView, bool) {
	p := d.pimRunning()
	if p == nil {
		return pimView{}, false
	}
	return p.view(), true
}
