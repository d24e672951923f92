package vrrp6

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// AddrActions is implemented by Actions that follow a change of the
// virtual address list made by Reconfigure (the daemon moves the fast-path
// and interface addresses of a Master). OnVirtualAddrs is called with the
// Router's lock held, in whatever state the router is, before a Master
// announces the new addresses; the same rule as for Actions applies.
type AddrActions interface {
	OnVirtualAddrs(c AddrChange)
}

// AddrChange is handed to AddrActions when Reconfigure changes the virtual
// addresses.
type AddrChange struct {
	Interface  string
	VRID       uint8
	State      State
	VirtualMAC net.HardwareAddr
	// Old and New are the address lists before and after (copies).
	Old, New []netip.Addr
}

// Reconfigure applies a changed configuration to a running virtual router
// without restarting it, as an operator changing "vrrp6 vrid N priority",
// "timer advertise", "preempt-mode" or "virtual-ip" on VRP, or reloading
// keepalived, expects. It runs under the Router's lock like every other
// event; Interface, VRID and LinkLocal identify the router and cannot
// change. Running timers keep going; the new values act from the next
// event that uses them (RFC 9568 §6.4):
//
//   - Priority (and the tracked interfaces): a Master's next advert
//     carries the new priority; a Backup compares it with the Master's
//     next advert (with Preempt_Mode it discards a now lower-priority
//     advert and takes over when its Master_Down_Timer expires; a preempt
//     delay starts at once against the last Master heard, as for a tracked
//     interface), and computes Master_Down_Interval from it on the next
//     advert it accepts. A router that becomes the address owner (255)
//     takes over at once.
//   - AdvertInterval: a Master's adverts carry it from the next one on;
//     a shorter interval also brings the pending advert forward, so the
//     change never waits for a long old interval. A Backup has no timer of
//     its own built from it (it follows the Master's interval), except
//     before it has heard any Master.
//   - NoPreempt, PreemptDelay: a Backup re-evaluates at once: disabling
//     preemption or the delay stops a running preempt delay.
//   - AcceptMode: reported by the next transition.
//   - VirtualAddrs: AddrActions (if the Actions implement it) is told; a
//     Master sends an unsolicited Neighbor Advertisement for each added
//     address at once, and its next advert carries the new list.
func (r *Router) Reconfigure(cfg Config) error {
	cfg.VirtualAddrs = slices.Clone(cfg.VirtualAddrs)
	cfg.Track = slices.Clone(cfg.Track)
	cfg.TrackBFD = slices.Clone(cfg.TrackBFD)
	if err := cfg.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cfg.Interface != r.cfg.Interface || cfg.VRID != r.cfg.VRID {
		return fmt.Errorf("vrrp6 vrid %d on %s: reconfigure as vrid %d on %s: interface and vrid cannot change",
			r.cfg.VRID, r.cfg.Interface, cfg.VRID, cfg.Interface)
	}
	if cfg.LinkLocal.WithZone("") != r.cfg.LinkLocal.WithZone("") {
		return fmt.Errorf("vrrp6 vrid %d on %s: reconfigure: link-local address %v cannot change to %v",
			r.cfg.VRID, r.cfg.Interface, r.cfg.LinkLocal, cfg.LinkLocal)
	}
	old := r.cfg
	r.cfg = cfg
	for name := range r.trackedDown {
		if !slices.ContainsFunc(cfg.Track, func(t Track) bool { return t.Name == name }) {
			delete(r.trackedDown, name)
		}
	}
	for name := range r.bfdDown {
		if !slices.ContainsFunc(cfg.TrackBFD, func(t TrackBFD) bool { return t.Session == name }) {
			delete(r.bfdDown, name)
		}
	}
	oldPrio, oldAdv := r.effPrio, r.advInt
	r.effPrio = r.effectivePriority()
	r.advInt = uint16(cfg.AdvertInterval / centisecond)
	addrs := !slices.Equal(old.VirtualAddrs, cfg.VirtualAddrs)
	r.log.Info("vrrp6 reconfigured", "state", r.state,
		"priority", r.effPrio, "old_priority", oldPrio,
		"advert_interval", cfg.AdvertInterval, "old_advert_interval", csToDuration(oldAdv),
		"preempt", r.preemptMode(), "preempt_delay", cfg.PreemptDelay, "accept_mode", cfg.AcceptMode,
		"virtual_ips", cfg.VirtualAddrs)
	if addrs {
		if aa, ok := r.actions.(AddrActions); ok {
			aa.OnVirtualAddrs(AddrChange{
				Interface: cfg.Interface, VRID: cfg.VRID, State: r.state, VirtualMAC: VirtualMAC(cfg.VRID),
				Old: slices.Clone(old.VirtualAddrs), New: slices.Clone(cfg.VirtualAddrs),
			})
		}
	}
	switch r.state {
	case StateMaster:
		r.masterPrio = r.effPrio
		if r.advInt < oldAdv && r.adver.t != nil {
			// The pending advert was due one old interval after the last
			// one; bring it to one new interval after it if that is
			// sooner.
			last := r.adver.deadline.Add(-csToDuration(oldAdv))
			if due := last.Add(csToDuration(r.advInt)); due.Before(r.adver.deadline) {
				r.arm(&r.adver, max(due.Sub(r.clock.Now()), 0), r.adverTick)
			}
		}
		if addrs {
			for _, vip := range cfg.VirtualAddrs {
				if !slices.Contains(old.VirtualAddrs, vip) {
					r.sendNA(vip)
				}
			}
		}
	case StateBackup:
		if !r.masterAddr.IsValid() {
			// No Master heard since Startup: Master_Adver_Interval is
			// still our own Advertisement_Interval (RFC 9568 §6.4.1).
			r.masterAdvInt = r.advInt
		}
		if r.effPrio == PriorityOwner {
			r.becomeMaster(ReasonPreempt)
			return nil
		}
		if !r.preemptMode() || r.cfg.PreemptDelay == 0 {
			r.stop(&r.preempt)
		}
		if r.effPrio != oldPrio || old.NoPreempt != cfg.NoPreempt || old.PreemptDelay != cfg.PreemptDelay {
			r.evaluatePreempt()
		}
	}
	return nil
}

// adverTick is the Adver_Timer expiry of a Master (RFC 9568 §6.4.3).
func (r *Router) adverTick() {
	if r.state != StateMaster {
		return
	}
	r.sendAdvert(r.effPrio)
	r.armAdver()
}

// sendNA sends one unsolicited Neighbor Advertisement for vip from the
// virtual MAC, as a new Master does (RFC 9568 §6.4.2).
func (r *Router) sendNA(vip netip.Addr) {
	frame, err := BuildUnsolicitedNA(r.cfg.VRID, vip, vip)
	if err == nil {
		err = r.sender.SendUnsolicitedNA(frame)
	}
	if err != nil {
		r.stats.SendErrors++
		r.log.Warn("vrrp6 send neighbor advertisement", "target", vip, "err", err)
		return
	}
	r.stats.NASent++
}

// WithState calls f with the current state while holding the Router's
// lock: no transition runs until f returns, so what f applies from the
// state cannot be overtaken by a concurrent OnTransition (the daemon
// re-evaluates a multicast gate this way after its tracking changed). f
// must not call the Router's methods.
func (r *Router) WithState(f func(State)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.state)
}
