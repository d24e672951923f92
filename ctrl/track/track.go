// Package track is multicast-track-vrrp6: it makes an interface follow
// the state of one of its VRRP6 groups. A Master's interface forwards
// multicast with the group's virtual MAC as source, answers for the
// virtual addresses in the fast path, queries as the MLD querier and sends
// its hot-backup entries; a Backup's interface is muted, holding its
// routes, and receives entries.
//
// ctrl/vrrp6 reports transitions as events (Transition, VirtualAddrs)
// from under its router's lock, before its first advert as Master. The
// tracker writes the fast path at once, in the caller's goroutine: map
// writes only (package bpf, whose locks are leaves: it calls nobody), so
// the gate opens before the advert goes out, as a switchover must. All
// that follows and may take other packages' locks (the MLD querier role,
// the hot-backup profiles' roles, the host's addresses) is queued and
// applied in order by one goroutine (Run), which holds nothing while it
// calls them. The tracker's own state is under one lock, a leaf apart
// from the fast-path calls: the lock order is vrrp6 -> track -> bpf, by
// structure, and nothing calls back up.
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

// event is one entry of the follow-up queue: calls to make off the
// caller's goroutine, in order.
type event struct {
	follow []Follower // each told master
	master bool
	host   func(Host) // the host's addresses, after the followers
	synced chan struct{}
}

// Tracker applies VRRP6 transitions to the interfaces that follow them.
type Tracker struct {
	fp   Fastpath
	host Host
	log  *slog.Logger

	mu     sync.Mutex // the state below; held across fast-path writes only
	ifaces map[int]*iface
	status map[statusKey]Status

	qmu    sync.Mutex // the queue's: a leaf, held for an append or a swap
	queue  []event
	notify chan struct{}
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
	if len(e.follow) == 0 && e.host == nil && e.synced == nil {
		return
	}
	t.qmu.Lock()
	t.queue = append(t.queue, e)
	t.qmu.Unlock()
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// Transition applies a group's state change to the fast path now and
// queues what follows (vrrp6.Actions.OnTransition calls it under the
// router's lock: it takes only the tracker's lock and bpf's).
func (t *Tracker) Transition(ifindex int, tr vrrp6.Transition) {
	master := tr.To == vrrp6.StateMaster
	log := t.log.With("interface", tr.Interface, "vrid", tr.VRID)
	t.mu.Lock()
	ifc := t.iface(ifindex)
	g := ifc.groups[tr.VRID]
	if g == nil {
		g = &group{}
		ifc.groups[tr.VRID] = g
	}
	changed := !g.known || g.master != master
	g.known, g.master, g.vmac, g.vips = true, master, tr.VirtualMAC, slices.Clone(tr.VirtualAddrs)
	if err := t.fp.SetVRRPMaster(ifindex, tr.VRID, tr.VirtualAddrs, master); err != nil {
		log.Error("fast path virtual mac", "err", err)
	}
	st := Status{Master: master}
	var follow []Follower
	tracked := ifc.cfg.Track == tr.VRID && ifc.cfg.MAC != nil
	if tracked {
		follow = t.gate(ifc, master, tr.VirtualMAC, log)
		st.GateDelay = time.Since(tr.Time)
	}
	t.status[statusKey{ifindex, tr.VRID}] = st
	follow = append(follow, ifc.cfg.Profiles[tr.VRID]...)
	t.mu.Unlock()
	if tracked {
		log.Info("multicast gate follows vrrp6", "state", tr.To, "gate_write_delay", st.GateDelay)
	}
	e := event{follow: follow, master: master}
	if changed || master {
		vips, vmac := slices.Clone(tr.VirtualAddrs), tr.VirtualMAC
		e.host = func(h Host) { h.SetVirtual(ifindex, vips, vmac, master) }
	}
	t.post(e)
}

// gate writes the interface's entry (t.mu held) and returns the querier
// to tell, if any.
func (t *Tracker) gate(ifc *iface, master bool, vmac net.HardwareAddr, log *slog.Logger) []Follower {
	if err := t.fp.SetIface(ifc.cfg.Index, Entry(ifc.cfg, master, vmac)); err != nil {
		log.Error("multicast gate", "err", err)
	}
	return t.querier(ifc)
}

func (t *Tracker) querier(ifc *iface) []Follower {
	if ifc.cfg.Querier == nil {
		return nil
	}
	return []Follower{ifc.cfg.Querier}
}

// VirtualAddrs applies a Master's changed virtual address list to the
// fast path now and queues the host's addresses.
func (t *Tracker) VirtualAddrs(ifindex int, c vrrp6.AddrChange) {
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
	t.mu.Lock()
	if err := t.fp.SetVRRPMaster(ifindex, c.VRID, gone, false); err != nil {
		log.Error("fast path virtual ips", "err", err)
	}
	if err := t.fp.SetVRRPMaster(ifindex, c.VRID, c.New, true); err != nil {
		log.Error("fast path virtual ips", "err", err)
	}
	if g := t.iface(ifindex).groups[c.VRID]; g != nil {
		g.vips = slices.Clone(c.New)
	}
	t.mu.Unlock()
	added := slices.Clone(c.New)
	t.post(event{host: func(h Host) { h.MoveVirtual(ifindex, gone, added) }})
}

// Configure takes an interface's (new) tracking configuration. A changed
// tracked group (or egress, or routing) is applied from the state the
// tracker last saw of it; before any transition of it, the gate is left as
// found (a restarted daemon keeps its predecessor's) and the querier role
// is withheld. The querier is told its role in any case (MLD may have been
// restarted with a new handle).
func (t *Tracker) Configure(cfg Iface) {
	log := t.log.With("interface", cfg.Name)
	t.mu.Lock()
	ifc := t.iface(cfg.Index)
	old := ifc.cfg
	ifc.cfg = cfg
	var msg string
	master := false
	switch {
	case cfg.Track == 0:
		master = true // untracked: always the querier
		if old.Track != 0 || old.MAC == nil {
			t.gate(ifc, false, nil, log)
			if old.Track != 0 {
				msg = "multicast gate no longer tracks vrrp6: forward"
			}
		}
	default:
		if g := ifc.groups[cfg.Track]; g != nil && g.known {
			master = g.master
			if old.Track != cfg.Track || old.Clone != cfg.Clone || old.NoRoute != cfg.NoRoute {
				t.gate(ifc, g.master, g.vmac, log)
				msg = "multicast gate follows vrrp6"
			}
		}
	}
	follow := t.querier(ifc)
	t.mu.Unlock()
	if msg != "" {
		log.Info(msg, "vrid", cfg.Track, "master", master)
	}
	// Profiles follow transitions only: one bound later is given its role
	// by whoever binds it (a role change has effects: DisownAll).
	t.post(event{follow: follow, master: master})
}

// Remove forgets an interface (no longer tracked, or gone).
func (t *Tracker) Remove(ifindex int) {
	t.mu.Lock()
	delete(t.ifaces, ifindex)
	for k := range t.status {
		if k.ifindex == ifindex {
			delete(t.status, k)
		}
	}
	t.mu.Unlock()
}

// Sync returns once everything queued before it has been applied, or ctx
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
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.status[statusKey{ifindex, vrid}]
	return s, ok
}

// Run applies the queued follow-ups in order until ctx ends.
func (t *Tracker) Run(ctx context.Context) error {
	for {
		t.qmu.Lock()
		batch := t.queue
		t.queue = nil
		t.qmu.Unlock()
		for _, e := range batch {
			for _, f := range e.follow {
				f.FollowMaster(e.master)
			}
			if e.host != nil && t.host != nil {
				e.host(t.host)
			}
			if e.synced != nil {
				close(e.synced)
			}
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

// iface returns the state of ifindex, made on first use (t.mu held).
func (t *Tracker) iface(ifindex int) *iface {
	ifc := t.ifaces[ifindex]
	if ifc == nil {
		ifc = &iface{cfg: Iface{Index: ifindex}, groups: map[uint8]*group{}}
		t.ifaces[ifindex] = ifc
	}
	return ifc
}
