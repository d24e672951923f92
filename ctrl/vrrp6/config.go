package vrrp6

import (
	"fmt"
	"net/netip"
	"time"
)

// Defaults and limits of the configurable parameters (RFC 9568 §6.1).
const (
	DefaultAdvertInterval = time.Second
	MinAdvertIntervalDur  = 10 * time.Millisecond
	MaxAdvertIntervalDur  = MaxAdvertInterval * 10 * time.Millisecond // 40.95 s
	DefaultHistory        = 16
	centisecond           = 10 * time.Millisecond
)

// Track makes the effective priority depend on an interface: while it is
// down (SetTrackedDown) the priority is lowered by Reduced, as Huawei's
// "vrrp6 vrid N track interface IF reduced R".
type Track struct {
	Name    string
	Reduced uint8
}

// TrackBFDMode is what a tracked BFD session's failure does to a virtual
// router.
type TrackBFDMode uint8

// Modes of TrackBFD.
const (
	// TrackBFDPeer: the session runs to the other router of the group,
	// on the group's own interface (VRP "vrrp6 vrid N track bfd-session
	// ... peer"). When it fails on a Backup because the peer went silent,
	// the Backup becomes Master at once instead of waiting for
	// Master_Down_Interval, unless the split-brain guard of HandleBFD
	// says the Master is still there.
	TrackBFDPeer TrackBFDMode = iota
	// TrackBFDReduce: while the session is failed the priority is lowered
	// by Reduced (VRP "track bfd-session ... reduced N"), as for a
	// tracked interface.
	TrackBFDReduce
	// TrackBFDStepDown: while the session is failed the priority is 1,
	// and a Master gives up at once with a priority 0 advert, so that the
	// Backup takes over after Skew_Time (RFC 9568 §6.4.2) rather than
	// after its Master_Down_Interval.
	TrackBFDStepDown
)

func (m TrackBFDMode) String() string {
	switch m {
	case TrackBFDPeer:
		return "peer"
	case TrackBFDReduce:
		return "reduce"
	case TrackBFDStepDown:
		return "step-down"
	}
	return fmt.Sprintf("TrackBFDMode(%d)", uint8(m))
}

// TrackBFD makes the virtual router follow a BFD session (see
// Router.HandleBFD).
type TrackBFD struct {
	// Session is the BFD session's name.
	Session string
	Mode    TrackBFDMode
	// Reduced is the priority reduction of TrackBFDReduce (1..255); 0
	// for the other modes.
	Reduced uint8
}

// Config configures one virtual router, identified by (Interface, VRID).
type Config struct {
	// Interface is the name of the interface the virtual router runs on.
	Interface string
	// VRID is the Virtual Router Identifier, 1..255 (RFC 9568 §5.2.3).
	VRID uint8
	// Priority is 1..254, or 255 for the address owner (RFC 9568 §6.1).
	// Priority 0 is reserved for the shutdown advertisement.
	Priority uint8
	// AdvertInterval is Advertisement_Interval: 10ms..40.95s in whole
	// centiseconds; 0 means the default of 1s (RFC 9568 §6.1).
	AdvertInterval time.Duration
	// NoPreempt sets Preempt_Mode to false (the default is true,
	// RFC 9568 §6.1). The owner always preempts.
	NoPreempt bool
	// PreemptDelay delays preemption of a lower-priority Master, as Huawei's
	// "preempt-mode timer delay" and keepalived's preempt_delay: a Backup
	// that hears a lower-priority Master keeps accepting its adverts for
	// PreemptDelay and then takes over. The delay starts at the first
	// advert from a lower-priority Master, so a router that has just
	// started (Initialize -> Backup) waits the full delay once it hears the
	// current Master. It never delays the Master_Down_Timer: with no Master
	// on the link a Backup takes over after Master_Down_Interval as RFC 9568
	// §6.4.2 says. 0 means preempt per RFC 9568 §6.4.2 (discard lower-
	// priority adverts until the Master_Down_Timer fires).
	PreemptDelay time.Duration
	// AcceptMode is Accept_Mode (RFC 9568 §6.1): a non-owner Master accepts
	// packets addressed to the virtual addresses. Reported to Actions.
	AcceptMode bool
	// LinkLocal is the interface's link-local address: the source of the
	// adverts and the "primary address" compared on equal priority
	// (RFC 9568 §5.1.2.1, §6.4.3).
	LinkLocal netip.Addr
	// VirtualAddrs are the virtual IPv6 addresses; the first must be
	// link-local (RFC 9568 §5.2.9).
	VirtualAddrs []netip.Addr
	// Track lists the tracked interfaces and their priority reductions.
	// The effective priority never drops below 1; the owner's stays 255.
	Track []Track
	// TrackBFD lists the tracked BFD sessions.
	TrackBFD []TrackBFD
	// History is how many transitions Status keeps (default 16).
	History int
}

// Validate checks c and fills in defaults. Its errors name the virtual
// router and the offending field.
func (c *Config) Validate() error {
	where := fmt.Sprintf("vrrp6 vrid %d on %q", c.VRID, c.Interface)
	if c.Interface == "" {
		return fmt.Errorf("%s: interface name is empty", where)
	}
	if c.VRID == 0 {
		return fmt.Errorf("%s: vrid 0 is invalid, use 1..255", where)
	}
	if c.Priority == PriorityShutdown {
		return fmt.Errorf("%s: priority 0 is reserved, use 1..255", where)
	}
	if c.AdvertInterval == 0 {
		c.AdvertInterval = DefaultAdvertInterval
	}
	if c.AdvertInterval < MinAdvertIntervalDur || c.AdvertInterval > MaxAdvertIntervalDur {
		return fmt.Errorf("%s: advert interval %v out of range %v..%v", where, c.AdvertInterval, MinAdvertIntervalDur, MaxAdvertIntervalDur)
	}
	if c.AdvertInterval%centisecond != 0 {
		return fmt.Errorf("%s: advert interval %v is not a whole number of centiseconds", where, c.AdvertInterval)
	}
	if c.PreemptDelay < 0 {
		return fmt.Errorf("%s: preempt delay %v is negative", where, c.PreemptDelay)
	}
	if c.Priority == PriorityOwner && c.NoPreempt {
		return fmt.Errorf("%s: the address owner (priority 255) always preempts", where)
	}
	if !c.LinkLocal.Is6() || !c.LinkLocal.IsLinkLocalUnicast() {
		return fmt.Errorf("%s: interface address %v is not an ipv6 link-local address", where, c.LinkLocal)
	}
	if len(c.VirtualAddrs) == 0 || len(c.VirtualAddrs) > 255 {
		return fmt.Errorf("%s: %d virtual addresses, need 1..255", where, len(c.VirtualAddrs))
	}
	seen := make(map[netip.Addr]bool, len(c.VirtualAddrs))
	for i, a := range c.VirtualAddrs {
		if !a.Is6() || a.Is4In6() || a.IsMulticast() || a.IsUnspecified() || a.IsLoopback() {
			return fmt.Errorf("%s: virtual address %d (%v) is not an ipv6 unicast address", where, i, a)
		}
		if seen[a.WithZone("")] {
			return fmt.Errorf("%s: virtual address %v listed twice", where, a)
		}
		seen[a.WithZone("")] = true
	}
	if !c.VirtualAddrs[0].IsLinkLocalUnicast() {
		return fmt.Errorf("%s: first virtual address %v must be link-local (RFC 9568 section 5.2.9)", where, c.VirtualAddrs[0])
	}
	names := make(map[string]bool, len(c.Track))
	for i, t := range c.Track {
		if t.Name == "" {
			return fmt.Errorf("%s: track %d: interface name is empty", where, i)
		}
		if names[t.Name] {
			return fmt.Errorf("%s: track %q listed twice", where, t.Name)
		}
		names[t.Name] = true
		if t.Reduced == 0 {
			return fmt.Errorf("%s: track %q: reduced must be 1..255", where, t.Name)
		}
	}
	sessions := make(map[string]bool, len(c.TrackBFD))
	for i, t := range c.TrackBFD {
		switch {
		case t.Session == "":
			return fmt.Errorf("%s: track bfd %d: session name is empty", where, i)
		case sessions[t.Session]:
			return fmt.Errorf("%s: track bfd %q listed twice", where, t.Session)
		case t.Mode > TrackBFDStepDown:
			return fmt.Errorf("%s: track bfd %q: unknown mode %v", where, t.Session, t.Mode)
		case t.Mode == TrackBFDReduce && t.Reduced == 0:
			return fmt.Errorf("%s: track bfd %q: reduced must be 1..255", where, t.Session)
		case t.Mode != TrackBFDReduce && t.Reduced != 0:
			return fmt.Errorf("%s: track bfd %q: reduced applies to mode reduce only, not %v", where, t.Session, t.Mode)
		}
		sessions[t.Session] = true
	}
	if c.History < 0 {
		return fmt.Errorf("%s: history %d is negative", where, c.History)
	}
	if c.History == 0 {
		c.History = DefaultHistory
	}
	return nil
}

// SkewTime returns Skew_Time in centiseconds for a priority and a
// Master_Adver_Interval in centiseconds, with the integer arithmetic of
// RFC 9568 §6.1: ((256 - Priority) * Master_Adver_Interval) / 256.
func SkewTime(priority uint8, masterAdverInterval uint16) uint16 {
	return uint16((256 - uint32(priority)) * uint32(masterAdverInterval) / 256)
}

// MasterDownInterval returns Master_Down_Interval in centiseconds:
// 3 * Master_Adver_Interval + Skew_Time (RFC 9568 §6.1).
func MasterDownInterval(priority uint8, masterAdverInterval uint16) uint16 {
	return 3*masterAdverInterval + SkewTime(priority, masterAdverInterval)
}

func csToDuration(cs uint16) time.Duration { return time.Duration(cs) * centisecond }
