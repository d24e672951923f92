// Package track is multicast-track-vrrp6: it makes an interface follow
// the state of one of its VRRP6 groups. A Master's interface forwards
// multicast with the group's virtual MAC as source, answers for the
// virtual addresses in the fast path, queries as the MLD querier and sends
// its hot-backup entries; a Backup's interface is muted, holding its
// routes, and receives entries.
//
// ctrl/vrrp6 reports transitions as events (Transition, VirtualAddrs),
// which never block and take no lock but the queue's; one goroutine (Run)
// applies them in order. Everything the tracked interface's state depends
// on goes through that queue, reconfiguration included (Configure,
// Remove), so the tracker needs no lock of its own and calls back into
// nobody who could be holding one: the lock order is the queue.
package track

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/vrrp6"
)

// Fastpath is what a tracked interface writes in the dataplane: map
// writes only, the whole switchover.
type Fastpath interface {
	// SetVRRPMaster installs (master) or removes the group's virtual MAC
	// and virtual IPs: frames to the MAC accepted, NS answered.
	SetVRRPMaster(ifindex int, vrid uint8, vips []netip.Addr, master bool) error
	// SetIface writes the interface's gate and source MAC in one value.
	SetIface(ifindex int, e bpf.Iface) error
}

// Host is what follows on the host, off the forwarding path: the virtual
// IPs on the interface and the virtual MAC in its unicast filter.
type Host interface {
	SetVirtual(ifindex int, vips []netip.Addr, vmac net.HardwareAddr, master bool)
	MoveVirtual(ifindex int, gone, added []netip.Addr)
}

// Follower follows whether a group is Master (the MLD querier role, a
// hot-backup profile's role). It is called on the tracker's goroutine after
// the fast path is written, and must not call back into the tracker's
// caller while holding a lock that caller takes.
type Follower interface {
	FollowMaster(master bool)
}

// FollowerFunc adapts a function to Follower.
type FollowerFunc func(master bool)

// FollowMaster implements Follower.
func (f FollowerFunc) FollowMaster(master bool) { f(master) }

// Iface is one interface's tracking configuration.
type Iface struct {
	Index   int
	Name    string
	MAC     net.HardwareAddr
	Clone   bool  // egress: clone
	NoRoute bool  // routing off: the interface is a host port for multicast
	Track   uint8 // multicast-track-vrrp6 VRID; 0: forward always
	Querier Follower
	// Profiles follow the groups they are bound to (by VRID).
	Profiles map[uint8][]Follower
}

// Entry is the interface's fast-path entry: forwarding with the virtual
// MAC as source while its tracked group is Master (or when it tracks
// none: with its own MAC), muted otherwise. The one place that says what a
// gate looks like.
func Entry(ifc Iface, master bool, vmac net.HardwareAddr) bpf.Iface {
	e := bpf.Iface{Gate: bpf.GateMuted, SrcMAC: ifc.MAC, MAC: ifc.MAC, Clone: ifc.Clone, NoRoute: ifc.NoRoute}
	switch {
	case ifc.Track == 0:
		e.Gate = bpf.GateForward
	case master:
		e.Gate, e.SrcMAC = bpf.GateForward, vmac
	}
	return e
}

// Status is what the tracker last did for a group, for display.
type Status struct {
	Master    bool
	GateDelay time.Duration // transition -> gate written, for the tracked group
}

type group struct {
	known  bool
	master bool
	vmac   net.HardwareAddr
	vips   []netip.Addr
}

type iface struct {
	cfg    Iface
	groups map[uint8]*group
}

// event is one entry of the queue; exactly one field is set.
type event struct {
	tr        *vrrp6.Transition
	addrs     *vrrp6.AddrChange
	ifindex   int
	configure *Iface
	remove    bool
	synced    chan struct{}
}

// Tracker applies VRRP6 transitions to the interfaces that follow them.
type Tracker struct {
	fp   Fastpath
	host Host
	log  *slog.Logger

	qmu    sync.Mutex // the queue's: a leaf, held for an append or a swap
	queue  []event
	notify chan struct{}

	smu    sync.Mutex // status, for display: a leaf
	status map[statusKey]Status

	ifaces map[int]*iface // Run's goroutine only
}

type statusKey struct {
	ifindex int
	vrid    uint8
}

// New returns a tracker writing to fp and host; Run applies what is posted.
func New(fp Fastpath, host Host, log *slog.Logger) *Tracker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tracker{fp: fp, host: host, log: log, notify: make(chan struct{}, 1),
		status: map[statusKey]Status{}, ifaces: map[int]*iface{}}
}

func (t *Tracker) post(e event) {
	t.qmu.Lock()
	t.queue = append(t.queue, e)
	t.qmu.Unlock()
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// Transition posts a group's state change (vrrp6.Actions.OnTransition
// may call it under the router's lock: it only queues).
func (t *Tracker) Transition(ifindex int, tr vrrp6.Transition) {
	t.post(event{ifindex: ifindex, tr: &tr})
}

// VirtualAddrs posts a Master's changed virtual address list.
func (t *Tracker) VirtualAddrs(ifindex int, c vrrp6.AddrChange) {
	t.post(event{ifindex: ifindex, addrs: &c})
}

// Configure posts an interface's (new) tracking configuration. A changed
// tracked group is applied from the state the tracker last saw for it;
// before any transition of it, the gate is left as found (a restarted
// daemon keeps its predecessor's) and the querier role is withheld.
func (t *Tracker) Configure(ifc Iface) {
	t.post(event{ifindex: ifc.Index, configure: &ifc})
}

// Remove posts that an interface is no longer tracked (or gone).
func (t *Tracker) Remove(ifindex int) { t.post(event{ifindex: ifindex, remove: true}) }

// Sync returns once everything posted before it has been applied, or ctx
// ended (Run not running).
func (t *Tracker) Sync(ctx context.Context) error {
	ch := make(chan struct{})
	t.post(event{synced: ch})
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status returns what the tracker last did for a group.
func (t *Tracker) Status(ifindex int, vrid uint8) (Status, bool) {
	t.smu.Lock()
	defer t.smu.Unlock()
	s, ok := t.status[statusKey{ifindex, vrid}]
	return s, ok
}

// Run applies posted events in order until ctx ends.
func (t *Tracker) Run(ctx context.Context) error {
	for {
		t.qmu.Lock()
		batch := t.queue
		t.queue = nil
		t.qmu.Unlock()
		for _, e := range batch {
			t.apply(e)
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.notify:
		}
	}
}

func (t *Tracker) apply(e event) {
	switch {
	case e.synced != nil:
		close(e.synced)
	case e.tr != nil:
		t.transition(e.ifindex, *e.tr)
	case e.addrs != nil:
		t.moveAddrs(e.ifindex, *e.addrs)
	case e.configure != nil:
		t.configure(*e.configure)
	case e.remove:
		delete(t.ifaces, e.ifindex)
		t.smu.Lock()
		for k := range t.status {
			if k.ifindex == e.ifindex {
				delete(t.status, k)
			}
		}
		t.smu.Unlock()
	}
}

func (t *Tracker) iface(ifindex int) *iface {
	ifc := t.ifaces[ifindex]
	if ifc == nil {
		ifc = &iface{cfg: Iface{Index: ifindex}, groups: map[uint8]*group{}}
		t.ifaces[ifindex] = ifc
	}
	return ifc
}

// transition: the fast path first (virtual MAC and IPs, then gate and
// source MAC in one write), then who follows, then the host.
func (t *Tracker) transition(ifindex int, tr vrrp6.Transition) {
	ifc := t.iface(ifindex)
	master := tr.To == vrrp6.StateMaster
	g := ifc.groups[tr.VRID]
	if g == nil {
		g = &group{}
		ifc.groups[tr.VRID] = g
	}
	changed := !g.known || g.master != master
	g.known, g.master, g.vmac, g.vips = true, master, tr.VirtualMAC, slices.Clone(tr.VirtualAddrs)
	log := t.log.With("interface", tr.Interface, "vrid", tr.VRID)
	if err := t.fp.SetVRRPMaster(ifindex, tr.VRID, tr.VirtualAddrs, master); err != nil {
		log.Error("fast path virtual mac", "err", err)
	}
	st := Status{Master: master}
	if ifc.cfg.Track == tr.VRID && ifc.cfg.MAC != nil {
		t.gate(ifc, master, tr.VirtualMAC, log)
		st.GateDelay = time.Since(tr.Time)
		log.Info("multicast gate follows vrrp6", "state", tr.To, "gate_write_delay", st.GateDelay)
	}
	t.smu.Lock()
	t.status[statusKey{ifindex, tr.VRID}] = st
	t.smu.Unlock()
	for _, f := range ifc.cfg.Profiles[tr.VRID] {
		f.FollowMaster(master)
	}
	if (changed || master) && t.host != nil {
		t.host.SetVirtual(ifindex, tr.VirtualAddrs, tr.VirtualMAC, master)
	}
}

// gate writes the interface's entry and the querier role for master.
func (t *Tracker) gate(ifc *iface, master bool, vmac net.HardwareAddr, log *slog.Logger) {
	if err := t.fp.SetIface(ifc.cfg.Index, Entry(ifc.cfg, master, vmac)); err != nil {
		log.Error("multicast gate", "err", err)
	}
	if ifc.cfg.Querier != nil {
		ifc.cfg.Querier.FollowMaster(master || ifc.cfg.Track == 0)
	}
}

func (t *Tracker) moveAddrs(ifindex int, c vrrp6.AddrChange) {
	if c.State != vrrp6.StateMaster {
		return
	}
	var gone []netip.Addr
	for _, a := range c.Old {
		if !slices.Contains(c.New, a) {
			gone = append(gone, a)
		}
	}
	log := t.log.With("interface", c.Interface, "vrid", c.VRID)
	if err := t.fp.SetVRRPMaster(ifindex, c.VRID, gone, false); err != nil {
		log.Error("fast path virtual ips", "err", err)
	}
	if err := t.fp.SetVRRPMaster(ifindex, c.VRID, c.New, true); err != nil {
		log.Error("fast path virtual ips", "err", err)
	}
	if g := t.iface(ifindex).groups[c.VRID]; g != nil {
		g.vips = slices.Clone(c.New)
	}
	if t.host != nil {
		t.host.MoveVirtual(ifindex, gone, c.New)
	}
}

func (t *Tracker) configure(cfg Iface) {
	ifc := t.iface(cfg.Index)
	old := ifc.cfg
	ifc.cfg = cfg
	log := t.log.With("interface", cfg.Name)
	switch {
	case cfg.Track == 0:
		if old.Track != 0 || old.MAC == nil {
			t.gate(ifc, false, nil, log)
			if old.Track != 0 {
				log.Info("multicast gate no longer tracks vrrp6: forward")
			}
		} else if cfg.Querier != nil {
			cfg.Querier.FollowMaster(true)
		}
	default:
		g := ifc.groups[cfg.Track]
		if g != nil && g.known {
			if old.Track != cfg.Track || old.Clone != cfg.Clone || old.NoRoute != cfg.NoRoute {
				t.gate(ifc, g.master, g.vmac, log)
				log.Info("multicast gate follows vrrp6", "vrid", cfg.Track, "master", g.master)
			} else if cfg.Querier != nil {
				cfg.Querier.FollowMaster(g.master)
			}
		} else if cfg.Querier != nil {
			cfg.Querier.FollowMaster(false) // until the group decides
		}
	}
	// Profiles follow transitions only: one bound later is given its role
	// by whoever binds it (a role change has effects: DisownAll).
}
