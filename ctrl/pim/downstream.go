package pim

import (
	"net/netip"
	"time"
)

// The downstream per-interface join/prune state machines of RFC 7761
// §4.5.2 ((*,G)), §4.5.3 ((S,G)) and §4.5.4 ((S,G,rpt)). They run with
// the Router's mutex held and mark the group dirty; settle derives the
// rest.

// dsState is a DownstreamJPState.
type dsState uint8

const (
	dsNoInfo dsState = iota
	dsJoin
	dsPrunePending
	// (S,G,rpt) only
	dsPruned
	dsPruneTmp
	dsPrunePendingTmp
)

func (s dsState) String() string {
	return [...]string{"NoInfo", "Join", "Prune-Pending", "Pruned", "PruneTmp", "Prune-Pending-Tmp"}[s]
}

// downstream is one interface's DownstreamJPState with its Expiry Timer
// and Prune-Pending Timer.
type downstream struct {
	state dsState
	et    slot
	ppt   slot
}

func (d *downstream) reset() {
	d.state = dsNoInfo
	d.et.stop()
	d.ppt.stop()
}

// holdDuration is a J/P Holdtime as a duration; 0xffff never expires.
func holdDuration(h uint16) (time.Duration, bool) {
	return time.Duration(h) * time.Second, h == HoldtimeForever
}

// armET starts the Expiry Timer for a received holdtime, or extends it to
// the holdtime if that is later (ET = max(ET, HT)).
func (r *Router) armET(d *downstream, g netip.Addr, hold uint16, onlyExtend bool) {
	ht, forever := holdDuration(hold)
	if forever {
		d.et.stop()
		return
	}
	if onlyExtend && (!d.et.running() && d.state != dsNoInfo || r.remaining(&d.et) >= ht) {
		return
	}
	r.arm(&d.et, ht, func() {
		d.reset()
		r.dirty[g] = struct{}{}
	})
}

// downJoin is Receive Join(*,G) or Join(S,G) on I (§4.5.2, §4.5.3).
func (r *Router) downJoin(d *downstream, g netip.Addr, hold uint16) {
	switch d.state {
	case dsNoInfo:
		d.state = dsJoin
		r.armET(d, g, hold, false)
	case dsJoin:
		r.armET(d, g, hold, true)
	case dsPrunePending:
		d.state = dsJoin
		d.ppt.stop()
		r.armET(d, g, hold, true)
	}
	r.dirty[g] = struct{}{}
}

// downPrune is Receive Prune(*,G) or Prune(S,G) on I: Join goes to
// Prune-Pending for J/P_Override_Interval(I), or at once to NoInfo when
// the sender is the only neighbour; when the Prune-Pending Timer expires
// the state goes, and a PruneEcho is sent if there is more than one
// neighbour (§4.5.2, §4.5.3). echo is the Prune to echo.
func (r *Router) downPrune(d *downstream, ri *rIface, g netip.Addr, echo Source) {
	if d.state != dsJoin {
		return
	}
	if ri.ifc.NeighborCount() <= 1 {
		d.reset()
		r.dirty[g] = struct{}{}
		return
	}
	d.state = dsPrunePending
	r.arm(&d.ppt, ri.ifc.JPOverrideInterval(), func() {
		if d.state != dsPrunePending {
			return
		}
		d.reset()
		r.dirty[g] = struct{}{}
		if ri.ifc.NeighborCount() > 1 {
			r.batch(ri.index, ri.ifc.Address()).add(g, echo, false)
		}
	})
	r.dirty[g] = struct{}{}
}

// rptJoinStarG is Receive Join(*,G) for the (S,G,rpt) machine: Pruned and
// Prune-Pending become their temporary forms, which End of Message undoes
// unless the same message prunes S again (§4.5.4).
func rptJoinStarG(d *downstream) {
	switch d.state {
	case dsPruned:
		d.state = dsPruneTmp
	case dsPrunePending:
		d.state = dsPrunePendingTmp
	}
}

// rptJoin is Receive Join(S,G,rpt): back to NoInfo (§4.5.4).
func (r *Router) rptJoin(d *downstream, g netip.Addr) {
	if d.state != dsNoInfo {
		d.reset()
		r.dirty[g] = struct{}{}
	}
}

// rptPrune is Receive Prune(S,G,rpt) (§4.5.4).
func (r *Router) rptPrune(d *downstream, ri *rIface, g netip.Addr, hold uint16) {
	switch d.state {
	case dsNoInfo:
		d.state = dsPrunePending
		r.armET(d, g, hold, false)
		if ri.ifc.NeighborCount() <= 1 {
			d.state = dsPruned
			break
		}
		r.arm(&d.ppt, ri.ifc.JPOverrideInterval(), func() {
			if d.state == dsPrunePending {
				d.state = dsPruned
				r.dirty[g] = struct{}{}
			}
		})
	case dsPruneTmp:
		d.state = dsPruned
		r.armET(d, g, hold, true)
	case dsPrunePendingTmp:
		d.state = dsPrunePending
		r.armET(d, g, hold, true)
	case dsPruned, dsPrunePending:
		r.armET(d, g, hold, true)
	}
	r.dirty[g] = struct{}{}
}

// rptEndOfMessage: the temporary states go to NoInfo (§4.5.4).
func (r *Router) rptEndOfMessage(d *downstream, g netip.Addr) {
	if d.state == dsPruneTmp || d.state == dsPrunePendingTmp {
		d.reset()
		r.dirty[g] = struct{}{}
	}
}
