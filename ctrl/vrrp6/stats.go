package vrrp6

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// DropReason classifies a discarded advert (RFC 9568 §7.1).
type DropReason uint8

// Drop reasons.
const (
	DropHopLimit           DropReason = iota // hop limit is not 255
	DropTruncated                            // shorter than its header or its count
	DropBadVersion                           // version is not 3
	DropBadType                              // type is not ADVERTISEMENT
	DropCountMismatch                        // length is not 8 + 16 * count
	DropMalformed                            // vrid 0, count 0 or interval 0
	DropBadChecksum                          // checksum does not verify
	DropUnknownVRID                          // no virtual router with this VRID here
	DropLocalOwner                           // this router is the address owner (priority 255)
	DropSourceNotLinkLocal                   // source is not an IPv6 link-local address
	DropBadDestination                       // destination is not ff02::12
	DropOwnAddress                           // source is this router's own link-local address
	DropNotRunning                           // router is in Initialize
	NumDropReasons
)

func (d DropReason) String() string {
	switch d {
	case DropHopLimit:
		return "HopLimit"
	case DropTruncated:
		return "Truncated"
	case DropBadVersion:
		return "BadVersion"
	case DropBadType:
		return "BadType"
	case DropCountMismatch:
		return "CountMismatch"
	case DropMalformed:
		return "Malformed"
	case DropBadChecksum:
		return "BadChecksum"
	case DropUnknownVRID:
		return "UnknownVRID"
	case DropLocalOwner:
		return "LocalOwner"
	case DropSourceNotLinkLocal:
		return "SourceNotLinkLocal"
	case DropBadDestination:
		return "BadDestination"
	case DropOwnAddress:
		return "OwnAddress"
	case DropNotRunning:
		return "NotRunning"
	}
	return fmt.Sprintf("DropReason(%d)", uint8(d))
}

// Stats are a virtual router's counters.
type Stats struct {
	// AdvertsReceived counts every packet handed to HandleAdvert,
	// including dropped ones.
	AdvertsReceived      uint64
	AdvertsSent          uint64
	PriorityZeroReceived uint64
	PriorityZeroSent     uint64
	NASent               uint64
	SendErrors           uint64
	BecameMaster         uint64
	// IntervalMismatch counts adverts received while Master whose Max
	// Adver Int differs from Advertisement_Interval (processed anyway).
	IntervalMismatch uint64
	// AddressMismatch counts adverts whose address list differs from the
	// configured one (RFC 9568 §7.1; processed anyway).
	AddressMismatch uint64
	// LowerPriorityDiscarded counts adverts discarded by the state machine
	// (RFC 9568 §6.4.2 preempt, §6.4.3 lower priority).
	LowerPriorityDiscarded uint64
	PreemptDelayStarted    uint64
	// BFDTakeovers counts Backups that became Master at once on a failed
	// peer BFD session; the BFDRefused counters the failures HandleBFD
	// did not act on, by the rule that held it back (see HandleBFD);
	// BFDStepDowns counts Masters that stepped down.
	BFDTakeovers          uint64
	BFDRefusedSignalled   uint64
	BFDRefusedOtherLink   uint64
	BFDRefusedMasterHeard uint64
	BFDStepDowns          uint64
	// Drops counts dropped packets by DropReason.
	Drops [NumDropReasons]uint64
}

// Dropped returns the total number of dropped packets.
func (s *Stats) Dropped() uint64 {
	var n uint64
	for _, d := range s.Drops {
		n += d
	}
	return n
}

// DropReasonOf maps a codec error to its drop reason.
func DropReasonOf(err error) DropReason {
	switch {
	case errors.Is(err, ErrTruncated):
		return DropTruncated
	case errors.Is(err, ErrBadVersion):
		return DropBadVersion
	case errors.Is(err, ErrBadType):
		return DropBadType
	case errors.Is(err, ErrCountMismatch):
		return DropCountMismatch
	case errors.Is(err, ErrBadChecksum):
		return DropBadChecksum
	}
	return DropMalformed
}

// checkPacket applies the receive checks of RFC 9568 §7.1 that do not
// depend on the local configuration, in the RFC's order: hop limit 255,
// version, complete packet, checksum; then destination ff02::12 and a
// link-local source (RFC 9568 §5.1.2.1, §5.1.2.2).
func checkPacket(src, dst netip.Addr, hopLimit int, payload []byte) (*Advert, DropReason, error) {
	if hopLimit != HopLimit {
		return nil, DropHopLimit, fmt.Errorf("hop limit %d", hopLimit)
	}
	a, err := Parse(payload)
	if err != nil {
		return nil, DropReasonOf(err), err
	}
	if !dst.IsValid() {
		dst = GroupAddr
	}
	if err := VerifyChecksum(src, dst, payload); err != nil {
		return nil, DropReasonOf(err), err
	}
	if dst.WithZone("") != GroupAddr {
		return nil, DropBadDestination, fmt.Errorf("destination %v", dst)
	}
	if !src.Is6() || !src.IsLinkLocalUnicast() {
		return nil, DropSourceNotLinkLocal, fmt.Errorf("source %v", src)
	}
	return a, 0, nil
}

// Status is a snapshot of a virtual router for display.
type Status struct {
	Interface string
	VRID      uint8
	State     State
	// ConfiguredPriority and EffectivePriority (after tracking).
	ConfiguredPriority, EffectivePriority uint8
	Owner                                 bool
	Preempt                               bool
	PreemptDelay                          time.Duration
	AcceptMode                            bool
	LinkLocal                             netip.Addr
	VirtualAddrs                          []netip.Addr
	VirtualMAC                            string
	// MasterAddr and MasterPriority: this router when Master, else the
	// last Master heard (invalid until one is heard).
	MasterAddr     netip.Addr
	MasterPriority uint8
	// AdvertInterval is Advertisement_Interval; MasterAdverInterval the
	// interval learned from the Master (RFC 9568 §6.1).
	AdvertInterval      time.Duration
	MasterAdverInterval time.Duration
	SkewTime            time.Duration
	MasterDownInterval  time.Duration
	// Time left on the running timers (0 when not running).
	MasterDownRemaining   time.Duration
	AdverRemaining        time.Duration
	PreemptDelayRemaining time.Duration
	TrackedDown           []string
	// TrackedBFDDown lists the tracked BFD sessions that are failed.
	TrackedBFDDown []string
	Transitions    []TransitionRecord
	Stats          Stats
}

// Status returns a snapshot of r.
func (r *Router) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	var down []string
	for _, t := range r.cfg.Track {
		if r.trackedDown[t.Name] {
			down = append(down, t.Name)
		}
	}
	var bfdDown []string
	for _, t := range r.cfg.TrackBFD {
		if r.bfdDown[t.Session] {
			bfdDown = append(bfdDown, t.Session)
		}
	}
	return Status{
		TrackedBFDDown:        bfdDown,
		Interface:             r.cfg.Interface,
		VRID:                  r.cfg.VRID,
		State:                 r.state,
		ConfiguredPriority:    r.cfg.Priority,
		EffectivePriority:     r.effPrio,
		Owner:                 r.owner(),
		Preempt:               r.preemptMode(),
		PreemptDelay:          r.cfg.PreemptDelay,
		AcceptMode:            r.cfg.AcceptMode,
		LinkLocal:             r.cfg.LinkLocal,
		VirtualAddrs:          slices.Clone(r.cfg.VirtualAddrs),
		VirtualMAC:            VirtualMAC(r.cfg.VRID).String(),
		MasterAddr:            r.masterAddr,
		MasterPriority:        r.masterPrio,
		AdvertInterval:        csToDuration(r.advInt),
		MasterAdverInterval:   csToDuration(r.masterAdvInt),
		SkewTime:              csToDuration(SkewTime(r.effPrio, r.masterAdvInt)),
		MasterDownInterval:    csToDuration(r.masterDownInterval()),
		MasterDownRemaining:   r.remaining(&r.masterDown, now),
		AdverRemaining:        r.remaining(&r.adver, now),
		PreemptDelayRemaining: r.remaining(&r.preempt, now),
		TrackedDown:           down,
		Transitions:           slices.Clone(r.history),
		Stats:                 r.stats,
	}
}

// Demux shares one receive socket per interface between the virtual
// routers configured on it, dispatching by VRID. Packets for no configured
// VRID are validated and counted here.
type Demux struct {
	ifname string
	log    *slog.Logger

	mu       sync.Mutex
	routers  map[uint8]*Router
	received uint64
	drops    [NumDropReasons]uint64
}

// DemuxStats counts the packets the Demux handled itself.
type DemuxStats struct {
	Received uint64
	Drops    [NumDropReasons]uint64
}

// NewDemux returns a Demux for interface ifname. A nil log discards.
func NewDemux(ifname string, log *slog.Logger) *Demux {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Demux{ifname: ifname, log: log.With("interface", ifname), routers: make(map[uint8]*Router)}
}

// Add registers r; its interface must be the Demux's and its VRID unused.
func (d *Demux) Add(r *Router) error {
	if r.Interface() != d.ifname {
		return fmt.Errorf("vrrp6 demux %s: router vrid %d is on %s", d.ifname, r.VRID(), r.Interface())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.routers[r.VRID()]; ok {
		return fmt.Errorf("vrrp6 demux %s: vrid %d already registered", d.ifname, r.VRID())
	}
	d.routers[r.VRID()] = r
	return nil
}

// Remove unregisters the router with vrid.
func (d *Demux) Remove(vrid uint8) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.routers, vrid)
}

// Routers returns the registered routers ordered by VRID.
func (d *Demux) Routers() []*Router {
	d.mu.Lock()
	defer d.mu.Unlock()
	rs := make([]*Router, 0, len(d.routers))
	for _, r := range d.routers {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *Router) int { return int(a.VRID()) - int(b.VRID()) })
	return rs
}

// HandleAdvert dispatches a received packet (arguments as
// Router.HandleAdvert) to the router of its VRID, which validates and
// counts it; anything else is validated and counted here.
func (d *Demux) HandleAdvert(src, dst netip.Addr, hopLimit int, payload []byte) {
	d.mu.Lock()
	var r *Router
	if len(payload) >= 2 {
		r = d.routers[payload[1]]
	}
	if r != nil {
		d.mu.Unlock()
		r.HandleAdvert(src, dst, hopLimit, payload)
		return
	}
	defer d.mu.Unlock()
	d.received++
	reason := DropUnknownVRID
	a, why, err := checkPacket(src, dst, hopLimit, payload)
	if err != nil {
		reason = why
	} else {
		err = fmt.Errorf("vrid %d not configured", a.VRID)
	}
	d.drops[reason]++
	d.log.Debug("vrrp6 advert dropped", "src", src, "reason", reason, "err", err)
}

// Stats returns the Demux's own counters.
func (d *Demux) Stats() DemuxStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return DemuxStats{Received: d.received, Drops: d.drops}
}
