package vrrp6

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// BFDEvent is a tracked BFD session's state as the daemon passes it from
// ctrl/bfd (this package does not import it): one per state change of
// the session, the first one when tracking starts.
type BFDEvent struct {
	// Session is the session's name (TrackBFD.Session).
	Session string
	// Interface is the interface the session runs on.
	Interface string
	// Down is true while the session counts as failed (bfd
	// StateChange.Failed: it went from Up to Down and the peer did not
	// signal AdminDown), false once it is Up again or administratively
	// down. A session that never came Up is not Down.
	Down bool
	// Silent is true when the failure is the peer falling silent: the
	// Detection Time expired (bfd StateChange.Silent). A peer that
	// signals Down is alive.
	Silent bool
	// LastRx is the arrival of the last BFD packet from the peer before
	// the failure (bfd StateChange.LastRx); zero when unknown.
	LastRx time.Time
}

// HandleBFD applies a tracked BFD session's state (see TrackBFDMode). A
// repeated state is no event. It runs under the Router's lock like every
// other event.
//
// The split-brain guard (docs/bfd.md): a failed TrackBFDPeer session
// makes a Backup Master at once only when all of these hold, and
// otherwise is counted and left to the Master_Down_Timer, which still
// takes over by RFC 9568 if the Master's adverts really stopped:
//
//  1. the session runs on the virtual router's own interface: a session
//     on another link (the remote backup service's) says nothing about
//     the LAN, whose Master may be alive and advertising;
//  2. the peer went silent (the Detection Time expired): a peer that
//     signals Down is alive, only its view of this router failed;
//  3. no advert from another router arrived after the session's last BFD
//     packet: a Master heard on the LAN after BFD lost it is alive there.
//
// With a reduce or step-down session nothing makes a Backup Master: only
// the priorities change, and the election stays VRRP's.
func (r *Router) HandleBFD(ev BFDEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.cfg.TrackBFD, func(t TrackBFD) bool { return t.Session == ev.Session })
	if i < 0 {
		return fmt.Errorf("vrrp6 vrid %d on %s: bfd session %q is not tracked", r.cfg.VRID, r.cfg.Interface, ev.Session)
	}
	t := r.cfg.TrackBFD[i]
	if r.bfdDown[t.Session] == ev.Down {
		return nil
	}
	r.bfdDown[t.Session] = ev.Down
	r.log.Info("vrrp6 tracked bfd session", "bfd_session", t.Session, "mode", t.Mode, "down", ev.Down,
		"silent", ev.Silent, "bfd_interface", ev.Interface, "state", r.state)
	if t.Mode == TrackBFDPeer {
		if ev.Down && r.state == StateBackup {
			r.bfdTakeover(ev)
		}
		return nil
	}
	old := r.effPrio
	r.effPrio = r.effectivePriority()
	if t.Mode == TrackBFDStepDown && ev.Down && r.state == StateMaster && !r.owner() {
		r.stepDown()
		return nil
	}
	if r.effPrio == old {
		return nil
	}
	r.log.Info("vrrp6 effective priority changed", "bfd_session", t.Session, "down", ev.Down, "old", old, "new", r.effPrio, "state", r.state)
	switch r.state {
	case StateMaster:
		r.masterPrio = r.effPrio
		r.sendAdvert(r.effPrio)
		r.armAdver()
	case StateBackup:
		r.evaluatePreempt()
	}
	return nil
}

// bfdTakeover is a Backup's failed peer session under the split-brain
// guard of HandleBFD.
func (r *Router) bfdTakeover(ev BFDEvent) {
	since := ev.LastRx
	if since.IsZero() {
		// Unknown: as if BFD had last heard the peer one advert interval
		// and a Skew_Time ago.
		since = r.clock.Now().Add(-csToDuration(r.masterAdvInt + SkewTime(r.effPrio, r.masterAdvInt)))
	}
	switch {
	case ev.Interface != r.cfg.Interface:
		r.stats.BFDRefusedOtherLink++
		r.log.Warn("vrrp6 stays backup: the failed bfd session runs on another link than the virtual router",
			"bfd_session", ev.Session, "bfd_interface", ev.Interface)
	case !ev.Silent:
		r.stats.BFDRefusedSignalled++
		r.log.Info("vrrp6 stays backup: the bfd peer signalled down, so it is alive", "bfd_session", ev.Session)
	case !r.lastAdvert.IsZero() && r.lastAdvert.After(since):
		r.stats.BFDRefusedMasterHeard++
		r.log.Warn("vrrp6 stays backup: an advert arrived after the bfd session's last packet",
			"bfd_session", ev.Session, "last_bfd_rx", ev.LastRx, "last_advert", r.lastAdvert, "master", r.masterAddr)
	default:
		r.stats.BFDTakeovers++
		r.becomeMaster(ReasonBFDPeerDown)
	}
}

// stepDown is a Master giving up on a failed step-down session: a
// priority 0 advert (the Backup takes over after Skew_Time), then Backup
// with the Master_Down_Timer running, so that it takes over again if no
// other router does.
func (r *Router) stepDown() {
	r.stop(&r.adver)
	r.sendAdvert(PriorityShutdown)
	r.stats.BFDStepDowns++
	r.masterAddr, r.masterPrio = netip.Addr{}, 0
	r.masterAdvInt = r.advInt
	r.downCause = ReasonMasterDownTimerExpired
	r.armMasterDown(r.masterDownInterval())
	r.transition(StateBackup, ReasonBFDStepDown)
}
