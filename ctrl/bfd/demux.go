package bfd

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/hotcast/hotcast/internal/clock"
)

// Demux owns the sessions of a system: it allocates their local
// discriminators and hands each received packet to its session, selected
// by Your Discriminator or, while that is 0, by the interface and source
// address (RFC 5880 §6.3, RFC 5881 §3). Packets for no session are
// validated and counted here.
type Demux struct {
	log *slog.Logger

	mu       sync.Mutex
	byDiscr  map[uint32]*Session
	byPeer   map[peerKey]*Session
	byName   map[string]*Session
	received uint64
	drops    [NumDropReasons]uint64
}

type peerKey struct {
	ifname string
	peer   netip.Addr // without zone
}

// DemuxStats counts the packets the Demux handled itself.
type DemuxStats struct {
	Received uint64
	Drops    [NumDropReasons]uint64
}

// NewDemux returns an empty Demux. A nil log discards.
func NewDemux(log *slog.Logger) *Demux {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Demux{
		log:     log,
		byDiscr: make(map[uint32]*Session),
		byPeer:  make(map[peerKey]*Session),
		byName:  make(map[string]*Session),
	}
}

// NewSession creates a session (see NewSession) with a random local
// discriminator unique among the Demux's sessions and registers it. Names
// and (interface, peer) pairs must be unique.
func (d *Demux) NewSession(cfg Config, clk clock.Clock, sender Sender, obs Observer, log *slog.Logger) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key := peerKey{cfg.Interface, cfg.Peer.WithZone("")}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.byName[cfg.Name]; ok {
		return nil, fmt.Errorf("bfd session %q: name in use", cfg.Name)
	}
	if o, ok := d.byPeer[key]; ok {
		return nil, fmt.Errorf("bfd session %q: peer %v on %s already has session %q", cfg.Name, cfg.Peer, cfg.Interface, o.cfg.Name)
	}
	var discr uint32
	for discr == 0 || d.byDiscr[discr] != nil {
		var b [4]byte
		if _, err := crand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("bfd session %q: discriminator: %w", cfg.Name, err)
		}
		discr = binary.BigEndian.Uint32(b[:])
	}
	s, err := NewSession(cfg, discr, clk, sender, obs, log)
	if err != nil {
		return nil, err
	}
	d.byDiscr[discr], d.byPeer[key], d.byName[cfg.Name] = s, s, s
	return s, nil
}

// Remove unregisters s (it does not Close it).
func (d *Demux) Remove(s *Session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byDiscr[s.localDiscr] != s {
		return
	}
	delete(d.byDiscr, s.localDiscr)
	delete(d.byPeer, peerKey{s.cfg.Interface, s.cfg.Peer.WithZone("")})
	delete(d.byName, s.cfg.Name)
}

// Session returns the session called name, or nil.
func (d *Demux) Session(name string) *Session {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.byName[name]
}

// Sessions returns the registered sessions ordered by name.
func (d *Demux) Sessions() []*Session {
	d.mu.Lock()
	defer d.mu.Unlock()
	ss := make([]*Session, 0, len(d.byName))
	for _, s := range d.byName {
		ss = append(ss, s)
	}
	slices.SortFunc(ss, func(a, b *Session) int { return strings.Compare(a.cfg.Name, b.cfg.Name) })
	return ss
}

// HandlePacket dispatches a received packet to its session, which
// validates and counts it; anything else is validated and counted here:
// DropUnknownDiscr when Your Discriminator selects no session, DropNoSession
// when it is 0 and no session has the packet's interface and source.
func (d *Demux) HandlePacket(rx Received) {
	var s *Session
	d.mu.Lock()
	yours := uint32(0)
	if len(rx.Payload) >= HeaderLen {
		yours = binary.BigEndian.Uint32(rx.Payload[8:12])
	}
	if yours != 0 {
		s = d.byDiscr[yours]
	} else if rx.Interface != "" {
		s = d.byPeer[peerKey{rx.Interface, rx.Src.WithZone("")}]
	}
	if s != nil {
		d.mu.Unlock()
		s.HandlePacket(rx)
		return
	}
	defer d.mu.Unlock()
	d.received++
	reason, err := d.check(rx, yours)
	d.drops[reason]++
	if d.log.Enabled(context.Background(), slog.LevelDebug) {
		d.log.Debug("bfd packet dropped", "src", rx.Src, "interface", rx.Interface, "reason", reason, "err", err)
	}
}

// check finds the reason for dropping a packet that matched no session,
// in the order of the session's own checks.
func (d *Demux) check(rx Received, yours uint32) (DropReason, error) {
	if rx.HopLimit != HopLimit {
		return DropHopLimit, fmt.Errorf("hop limit %d", rx.HopLimit)
	}
	var p Packet
	if err := Parse(rx.Payload, &p); err != nil {
		return DropReasonOf(err), err
	}
	if yours != 0 {
		return DropUnknownDiscr, fmt.Errorf("your discriminator %d", yours)
	}
	return DropNoSession, errors.New("no session for this interface and source")
}

// Stats returns the Demux's own counters.
func (d *Demux) Stats() DemuxStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return DemuxStats{Received: d.received, Drops: d.drops}
}
