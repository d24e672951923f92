package pim

import (
	"log/slog"
	"net/netip"
)

// HandleMessage takes a message an Interface accepted (its OnMessage):
// Join/Prune and Assert, Register (HandleRegister, the decapsulated
// packet to RouterConfig.OnRegisterData) and Register-Stop
// (HandleRegisterStop); Hellos are the Interface's.
func (r *Router) HandleMessage(m Received) {
	switch msg := m.Message.(type) {
	case *JoinPrune:
		r.HandleJoinPrune(m.Interface, m.Src, msg)
	case *Assert:
		r.HandleAssert(m.Interface, m.Src, msg)
	case *Register:
		if d, _ := r.HandleRegister(m.Src, m.Dst, msg); len(d.OIfs) > 0 && r.cfg.OnRegisterData != nil {
			r.cfg.OnRegisterData(d)
		}
	case *RegisterStop:
		r.HandleRegisterStop(m.Src, m.Dst, msg)
	}
}

// HandleJoinPrune processes a Join/Prune received on the named interface
// from src and returns why it was ignored as a whole (JPDropNone when it
// was used). Only a neighbour's J/P counts. One whose Upstream Neighbor
// is this router feeds the downstream machines (§4.5.2-§4.5.4); one to
// another neighbour feeds join suppression and prune override of the
// entries joined through that neighbour. Group sets and entries that are
// not acceptable are skipped and counted; the rest of the message is
// processed.
func (r *Router) HandleJoinPrune(iface string, src netip.Addr, jp *JoinPrune) JPDropReason {
	r.mu.Lock()
	defer r.unlock()
	why := r.handleJP(iface, src.WithZone(""), jp)
	if why != JPDropNone {
		r.stats.JPDrops[why]++
		r.log.Debug("pim join/prune dropped", slog.String("iface", iface), slog.String("src", src.String()), slog.String("reason", why.String()))
	}
	r.settle()
	return why
}

func (r *Router) handleJP(iface string, src netip.Addr, jp *JoinPrune) JPDropReason {
	ifx, ok := r.byName[iface]
	if !ok {
		return JPDropUnknownIface
	}
	ri := r.ifaces[ifx]
	if n, ok := ri.ifc.Neighbor(src); !ok || n.Address != src {
		return JPDropNotNeighbor
	}
	up := jp.UpstreamNeighbor.WithZone("")
	if !ri.ifc.ownsAddress(up) {
		n, ok := ri.ifc.Neighbor(up)
		if !ok {
			return JPDropNotForUs
		}
		r.stats.JPSeen++
		r.seen(ri, n.Address, jp)
		return JPDropNone
	}
	r.stats.JPRx++
	for _, set := range jp.Groups {
		r.downstreamGroup(ri, set, jp.Holdtime)
	}
	return JPDropNone
}

// downstreamGroup runs one group set through the downstream machines in
// the order §4.5 needs: Join(*,G) (which moves the (S,G,rpt) prunes to
// their temporary states first), Prune(*,G), the (S,G) joins and prunes,
// the (S,G,rpt) joins and prunes, then End of Message for (S,G,rpt).
func (r *Router) downstreamGroup(ri *rIface, set GroupSet, hold uint16) {
	g := set.Group.Addr
	if set.Group.MaskLen != maxMaskLen || set.Group.Bidir || !routable(g) {
		r.stats.JPDrops[JPDropBadGroup]++
		return
	}
	rp, hasRP := r.cfg.RPs.RP(g)
	var starJoin, starPrune bool
	var sgJ, sgP, rptJ, rptP []netip.Addr
	classify := func(list []Source, join bool) {
		for _, s := range list {
			a := s.Addr.WithZone("")
			if s.MaskLen != maxMaskLen || !validSource(a) {
				r.stats.JPDrops[JPDropBadSource]++
				continue
			}
			switch s.Kind() {
			case KindStarG:
				switch {
				case !hasRP:
					r.stats.JPDrops[JPDropNoRP]++
				case a != rp:
					r.stats.JPDrops[JPDropRPMismatch]++
				case join:
					starJoin = true
				default:
					starPrune = true
				}
			case KindSG:
				if join {
					sgJ = append(sgJ, a)
				} else {
					sgP = append(sgP, a)
				}
			case KindSGRpt:
				if !hasRP {
					r.stats.JPDrops[JPDropNoRP]++
				} else if join {
					rptJ = append(rptJ, a)
				} else {
					rptP = append(rptP, a)
				}
			default:
				r.stats.JPDrops[JPDropBadSource]++
			}
		}
	}
	classify(set.Joins, true)
	classify(set.Prunes, false)
	if !starJoin && !starPrune && len(sgJ)+len(sgP)+len(rptJ)+len(rptP) == 0 {
		return
	}
	ifx := ri.index
	gs := r.group(g)
	r.dirty[g] = struct{}{}
	if starJoin {
		if wc := r.ensureWC(gs); wc == nil {
			r.stats.JPDrops[JPDropStateLimit]++
			starJoin = false
		} else {
			for _, e := range gs.src {
				if d, ok := e.rptDown[ifx]; ok {
					rptJoinStarG(d)
				}
			}
			r.downJoin(ds(wc.down, ifx), g, hold)
		}
	}
	if starPrune && gs.wc != nil {
		if d, ok := gs.wc.down[ifx]; ok {
			r.downPrune(d, ri, g, StarG(rp))
		}
	}
	for _, s := range sgJ {
		e := r.ensureSG(gs, s)
		if e == nil {
			r.stats.JPDrops[JPDropStateLimit]++
			continue
		}
		r.downJoin(ds(e.down, ifx), g, hold)
	}
	for _, s := range sgP {
		if e, ok := gs.src[s]; ok {
			if d, ok := e.down[ifx]; ok {
				r.downPrune(d, ri, g, SG(s))
			}
		}
	}
	for _, s := range rptJ {
		if e, ok := gs.src[s]; ok {
			if d, ok := e.rptDown[ifx]; ok {
				r.rptJoin(d, g)
			}
		}
	}
	for _, s := range rptP {
		e := r.ensureSG(gs, s)
		if e == nil {
			r.stats.JPDrops[JPDropStateLimit]++
			continue
		}
		r.rptPrune(ds(e.rptDown, ifx), ri, g, hold)
	}
	if starJoin {
		for _, e := range gs.src {
			if d, ok := e.rptDown[ifx]; ok {
				r.rptEndOfMessage(d, g)
			}
		}
	}
}
