package bfd

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hotcast/hotcast/internal/clock"
)

// Config is one single-hop session towards a peer on an interface.
type Config struct {
	// Name identifies the session (what track-bfd refers to).
	Name string
	// Interface is the interface the peer is on; packets received on
	// another interface are not this session's.
	Interface string
	// Local is the source address of the session's packets. It is the
	// socket's business; the state machine only reports it.
	Local netip.Addr
	// Peer is the remote system's address, the source of the packets this
	// session accepts and the destination of those it sends.
	Peer netip.Addr
	// DesiredMinTx is bfd.DesiredMinTxInterval once the session is Up;
	// until then at least SlowTxInterval is sent (RFC 5880 §6.8.3).
	DesiredMinTx time.Duration
	// RequiredMinRx is bfd.RequiredMinRxInterval.
	RequiredMinRx time.Duration
	// DetectMult is bfd.DetectMult.
	DetectMult uint8
	// Passive sessions send nothing until they have heard the peer
	// (RFC 5880 §6.1).
	Passive bool
}

// Validate checks c.
func (c *Config) Validate() error {
	if err := validateTimers(c.DesiredMinTx, c.RequiredMinRx, c.DetectMult); err != nil {
		return fmt.Errorf("bfd session %q: %w", c.Name, err)
	}
	switch {
	case c.Name == "":
		return errors.New("bfd session: name is empty")
	case c.Interface == "":
		return fmt.Errorf("bfd session %q: interface is empty", c.Name)
	case !c.Peer.Is6() || c.Peer.Is4In6() || c.Peer.IsUnspecified() || c.Peer.IsMulticast():
		return fmt.Errorf("bfd session %q: peer %v is not an ipv6 unicast address", c.Name, c.Peer)
	case c.Local.IsValid() && (!c.Local.Is6() || c.Local.Is4In6() || c.Local.IsMulticast()):
		return fmt.Errorf("bfd session %q: local address %v is not an ipv6 unicast address", c.Name, c.Local)
	}
	return nil
}

func validateTimers(tx, rx time.Duration, mult uint8) error {
	const most = time.Duration(0xffffffff) * time.Microsecond
	switch {
	case tx < time.Microsecond || tx > most:
		return fmt.Errorf("desired min tx %v out of range 1µs..%v", tx, most)
	case rx < time.Microsecond || rx > most:
		return fmt.Errorf("required min rx %v out of range 1µs..%v", rx, most)
	case mult == 0:
		return errors.New("detect multiplier is 0")
	}
	return nil
}

// Sender puts one BFD Control packet (the UDP payload) on the wire towards
// the session's peer. It is called with the session's lock held.
type Sender interface {
	Send(pkt []byte) error
}

// StateChange is handed to the Observer on every state change.
type StateChange struct {
	Name      string
	Interface string
	Peer      netip.Addr
	From, To  State
	// Diag is bfd.LocalDiag after the change: why the session went down.
	Diag        Diag
	LocalDiscr  uint32
	RemoteDiscr uint32
	Time        time.Time
	// RemoteState is the peer's state as last received (Down after a
	// Detection Time expiry, which resets it).
	RemoteState State
	// LastRx is when the last packet from the peer arrived before the
	// change (its kernel arrival time when the receiver gave one), and
	// DetectTime the Detection Time in force then: a Down by expiry (diag
	// ControlDetectionTimeExpired) was due at LastRx + DetectTime and
	// declared at Time.
	LastRx     time.Time
	DetectTime time.Duration
	// Failed says whether the session counts as failed for whoever tracks
	// it (VRRP6, remote backup services), after this change: set when it
	// goes from Up to Down, unless the peer signalled AdminDown (RFC 5882
	// §3.2: that is no path failure); cleared when it comes Up or is put in
	// AdminDown locally. A session that has never been Up has not failed.
	Failed bool
}

// Silent reports whether the change is a failure in which the peer went
// silent (the Detection Time expired), as opposed to a peer that signals
// Down and so is alive.
func (c StateChange) Silent() bool {
	return c.Failed && c.To == StateDown && c.Diag == DiagControlDetectionTimeExpired
}

// Observer learns of state changes. OnStateChange is called synchronously
// with the session's lock held, before the next packet is sent: it must
// not call the session's methods.
type Observer interface {
	OnStateChange(c StateChange)
}

// TransitionRecord is one entry of the transition history.
type TransitionRecord struct {
	Time     time.Time
	From, To State
	Diag     Diag
}

const maxHistory = 16

// Received is one packet read from the wire.
type Received struct {
	Src, Dst netip.Addr
	SrcPort  int
	// Interface is the interface the packet arrived on ("" when unknown:
	// then it is not checked).
	Interface string
	// HopLimit is the received IPv6 hop limit, -1 when the kernel gave none.
	HopLimit int
	Payload  []byte
	// Time is the packet's arrival (the kernel's receive timestamp); zero
	// means now. The Detection Time is judged against it: a packet that
	// arrived in time keeps the session Up even when it is handled after
	// the deadline, and one that arrived after the deadline does not
	// save a session whose timer has not run yet.
	Time time.Time
}

// Session is one BFD session in asynchronous mode, running the state
// machine of RFC 5880 §6.2 and §6.8. All methods are safe for concurrent
// use.
type Session struct {
	cfg    Config
	clock  clock.Clock
	sender Sender
	obs    Observer
	log    *slog.Logger

	mu      sync.Mutex
	rng     *rand.Rand
	running bool
	closed  bool

	// RFC 5880 §6.8.1 state variables; intervals in microseconds.
	state, remoteState State
	localDiscr         uint32
	remoteDiscr        uint32
	localDiag          Diag
	detectMult         uint8
	remoteMinRx        uint32 // bfd.RemoteMinRxInterval
	remoteDemand       bool   // bfd.RemoteDemandMode

	// The timers: cfgTx and cfgRx are the configured values; advTx and
	// advRx bfd.DesiredMinTxInterval and bfd.RequiredMinRxInterval as sent;
	// txBasis and rxBasis the values in force for the transmit interval
	// and the Detection Time, which lag behind advTx and advRx while a
	// Poll Sequence runs (RFC 5880 §6.8.3).
	cfgTx, cfgRx     uint32
	advTx, advRx     uint32
	txBasis, rxBasis uint32
	polling          bool

	// From the last packet received.
	remoteDesiredTx uint32
	remoteMult      uint8
	remoteDiag      Diag

	// rxCaughtUp, when set, says up to when the receive socket has been
	// read: an expiry is put off while packets that arrived before the
	// deadline may still be queued (a flood in front of them), for at
	// most one more Detection Time.
	rxCaughtUp func() time.Time

	tx          rtimer
	txIval      time.Duration // the interval the pending transmission was scheduled with
	lastTx      time.Time
	det         rtimer
	detDeadline time.Time
	lastRx      time.Time

	lastChange time.Time
	upSince    time.Time
	failed     bool
	// expired holds LastRx and the Detection Time for the StateChange of
	// a Down by expiry, whose remote variables are reset before it.
	expired     *expiry
	sendFailing bool
	buf         [HeaderLen]byte
	stats       Stats
	history     []TransitionRecord
}

type expiry struct {
	lastRx time.Time
	detect time.Duration
}

type rtimer struct {
	t        clock.Timer
	deadline time.Time
	gen      uint64
}

// NewSession validates cfg and returns a stopped session with local
// discriminator discr (nonzero, unique on this system: Demux.NewSession
// allocates one). Call Start. A nil clock means clock.System, a nil
// observer none, a nil log discards.
func NewSession(cfg Config, discr uint32, clk clock.Clock, sender Sender, obs Observer, log *slog.Logger) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if discr == 0 {
		return nil, fmt.Errorf("bfd session %q: local discriminator is 0", cfg.Name)
	}
	if sender == nil {
		return nil, fmt.Errorf("bfd session %q: sender is required", cfg.Name)
	}
	if clk == nil {
		clk = clock.System{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var seed [16]byte
	_, _ = crand.Read(seed[:])
	s := &Session{
		cfg:         cfg,
		clock:       clk,
		sender:      sender,
		obs:         obs,
		log:         log.With("bfd_session", cfg.Name, "interface", cfg.Interface, "peer", cfg.Peer),
		rng:         rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))),
		state:       StateDown,
		remoteState: StateDown,
		localDiscr:  discr,
		detectMult:  cfg.DetectMult,
		remoteMinRx: 1,
		cfgTx:       Microseconds(cfg.DesiredMinTx),
		cfgRx:       Microseconds(cfg.RequiredMinRx),
	}
	s.updateTimersLocked(clk.Now())
	return s, nil
}

// Name returns the configured name.
func (s *Session) Name() string { return s.cfg.Name }

// Config returns the session's configuration, with the timers of the
// last SetTimers.
func (s *Session) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// LocalDiscr returns bfd.LocalDiscr.
func (s *Session) LocalDiscr() uint32 { return s.localDiscr }

// State returns bfd.SessionState.
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Start begins transmitting in state Down (RFC 5880 §6.8.1 initial
// values). A closed session cannot be started again.
func (s *Session) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("bfd session %q: start: closed", s.cfg.Name)
	}
	if s.running {
		return fmt.Errorf("bfd session %q: start: already running", s.cfg.Name)
	}
	s.running = true
	now := s.clock.Now()
	s.lastChange = now
	s.updateTimersLocked(now)
	s.armTx(0, s.txBasisInterval())
	s.log.Info("bfd session started", "local_discr", s.localDiscr, "state", s.state)
	return nil
}

// Close stops the session's timers: it sends nothing more and handles no
// packets (the peer sees it as a failure and goes Down after its Detection
// Time). For an orderly stop, call SetAdminDown first and Close after the
// peer's Detection Time (RFC 5880 §6.8.16).
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running, s.closed = false, true
	s.stop(&s.tx)
	s.stop(&s.det)
}

// SetAdminDown puts the session in AdminDown with bfd.LocalDiag diag
// (DiagAdminDown, or DiagPathDown when an outside signal says the path
// failed; RFC 5880 §6.8.16, §6.8.17). The session keeps sending AdminDown
// at the slow rate, so the peer goes Down with diag 3 and stays there.
func (s *Session) SetAdminDown(diag Diag) error {
	if diag > MaxDiag {
		return fmt.Errorf("bfd session %q: diag %d out of range", s.cfg.Name, diag)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != StateAdminDown {
		s.transition(StateAdminDown, diag)
	}
	return nil
}

// SetAdminUp leaves AdminDown for Down (RFC 5880 §6.8.16); the session
// then comes Up again with the peer.
func (s *Session) SetAdminUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == StateAdminDown {
		s.transition(StateDown, DiagNone)
	}
}

// SetTimers changes bfd.DesiredMinTxInterval, bfd.RequiredMinRxInterval
// and bfd.DetectMult. While Up a changed interval starts a Poll Sequence;
// an increased transmit interval takes effect, and a reduced receive
// interval enters the Detection Time, only when it ends (RFC 5880 §6.8.3).
// The multiplier is sent with the next packet (RFC 5880 §6.8.12).
func (s *Session) SetTimers(desiredMinTx, requiredMinRx time.Duration, mult uint8) error {
	if err := validateTimers(desiredMinTx, requiredMinRx, mult); err != nil {
		return fmt.Errorf("bfd session %q: %w", s.cfg.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.DesiredMinTx, s.cfg.RequiredMinRx, s.cfg.DetectMult = desiredMinTx, requiredMinRx, mult
	s.cfgTx, s.cfgRx, s.detectMult = Microseconds(desiredMinTx), Microseconds(requiredMinRx), mult
	s.updateTimersLocked(s.clock.Now())
	return nil
}

// HandlePacket processes one received packet. Invalid packets and those
// RFC 5880 §6.8.6 discards are dropped and counted by reason.
func (s *Session) HandlePacket(rx Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Received++
	var p Packet
	reason, err := s.receive(rx, &p)
	if err != nil {
		s.stats.Drops[reason]++
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("bfd packet dropped", "src", rx.Src, "reason", reason, "err", err)
		}
	}
}

func (s *Session) receive(rx Received, p *Packet) (DropReason, error) {
	if !s.running {
		return DropNotRunning, errors.New("session not running")
	}
	if rx.HopLimit != HopLimit {
		return DropHopLimit, fmt.Errorf("hop limit %d", rx.HopLimit)
	}
	if err := Parse(rx.Payload, p); err != nil {
		return DropReasonOf(err), err
	}
	if p.YourDiscr != 0 && p.YourDiscr != s.localDiscr {
		return DropUnknownDiscr, fmt.Errorf("your discriminator %d is not %d", p.YourDiscr, s.localDiscr)
	}
	if rx.Src.WithZone("") != s.cfg.Peer.WithZone("") || (rx.Interface != "" && rx.Interface != s.cfg.Interface) {
		return DropPeerMismatch, fmt.Errorf("from %v on %q, session is %v on %q", rx.Src, rx.Interface, s.cfg.Peer, s.cfg.Interface)
	}
	if len(p.Auth) > 0 {
		return DropAuth, fmt.Errorf("auth type %d: no authentication in use", p.AuthType())
	}
	return s.process(p, rx.Time)
}

// process is the reception of RFC 5880 §6.8.6 after the checks; arrived
// is the packet's arrival time (zero: now).
func (s *Session) process(p *Packet, arrived time.Time) (DropReason, error) {
	now := s.clock.Now()
	at := now
	if !arrived.IsZero() && arrived.Before(now) {
		at = arrived
	}
	if s.det.t != nil && at.After(s.detDeadline) {
		// The Detection Time ran out before this packet arrived; its
		// timer has not run yet (the receiving thread woke late, or the
		// packet overtook the timer in the same wake). It expires first,
		// so that a late wake does not hide a real gap.
		s.stop(&s.det)
		s.expireDetect(now)
	}
	s.remoteDiscr = p.MyDiscr
	s.remoteState = p.State
	s.remoteDemand = p.Demand
	s.remoteMinRx = p.RequiredMinRx
	s.remoteDesiredTx = p.DesiredMinTx
	s.remoteMult = p.DetectMult
	s.remoteDiag = p.Diag
	if p.Final && s.polling {
		// The Poll Sequence is over: the new intervals are in force.
		s.polling = false
		s.stats.PollsCompleted++
		s.txBasis, s.rxBasis = s.advTx, s.advRx
	}
	// The transmit interval and Detection Time follow the received
	// intervals (RFC 5880 §6.8.2, §6.8.4); a new Poll Sequence may be due.
	s.updateTimersLocked(now)
	if s.state == StateAdminDown {
		return DropAdminDown, errors.New("local session is AdminDown")
	}
	if p.State == StateAdminDown {
		if s.state != StateDown {
			s.transition(StateDown, DiagNeighborSignaledDown)
		}
	} else {
		switch s.state {
		case StateDown:
			switch p.State {
			case StateDown:
				s.transition(StateInit, s.localDiag)
			case StateInit:
				s.transition(StateUp, DiagNone)
			}
		case StateInit:
			if p.State == StateInit || p.State == StateUp {
				s.transition(StateUp, DiagNone)
			}
		case StateUp:
			if p.State == StateDown {
				s.transition(StateDown, DiagNeighborSignaledDown)
			}
		}
	}
	if p.Poll {
		// Answer at once, whatever the timers, the state or Demand mode.
		s.stats.PollsReceived++
		if s.send(false, true) {
			s.stats.FinalsSent++
		}
	}
	// Received, for the Detection Time (RFC 5880 §6.8.4).
	s.lastRx = at
	s.refreshDetect(now)
	return 0, nil
}

// transition changes bfd.SessionState and bfd.LocalDiag, adjusts the
// timers (slow rate when not Up, a Poll Sequence on the way Up) and tells
// the Observer.
func (s *Session) transition(to State, diag Diag) {
	from := s.state
	now := s.clock.Now()
	s.state, s.localDiag = to, diag
	s.lastChange = now
	switch {
	case to == StateUp:
		s.upSince = now
		s.stats.UpCount++
	case from == StateUp:
		s.upSince = time.Time{}
		s.stats.DownCount++
	}
	switch {
	case to == StateUp || to == StateAdminDown:
		s.failed = false
	case s.remoteState == StateAdminDown:
		s.failed = false
	case from == StateUp:
		s.failed = true
	}
	lastRx, detect := s.lastRx, s.detectTime()
	if s.expired != nil {
		lastRx, detect = s.expired.lastRx, s.expired.detect
		s.expired = nil
	}
	if len(s.history) == maxHistory {
		s.history = slices.Delete(s.history, 0, 1)
	}
	s.history = append(s.history, TransitionRecord{Time: now, From: from, To: to, Diag: diag})
	s.log.Info("bfd session state changed", "from", from, "to", to, "diag", diag,
		"local_discr", s.localDiscr, "remote_discr", s.remoteDiscr)
	s.updateTimersLocked(now)
	if s.running && s.periodicAllowed() {
		// Tell the peer at once, as FRR's and BIRD's bfd do, rather than
		// at the next periodic transmission (up to 1 s away when the new
		// state is slow, and a peer that went Down would otherwise keep
		// this side waiting for its own Detection Time). The periodic
		// schedule restarts from this packet.
		s.send(s.polling, false)
		s.lastTx = now
		iv := s.txBasisInterval()
		s.armTx(s.jitter(iv), iv)
	}
	if s.obs != nil {
		s.obs.OnStateChange(StateChange{
			Name: s.cfg.Name, Interface: s.cfg.Interface, Peer: s.cfg.Peer,
			From: from, To: to, Diag: diag,
			LocalDiscr: s.localDiscr, RemoteDiscr: s.remoteDiscr, Time: now,
			RemoteState: s.remoteState, LastRx: lastRx, DetectTime: detect, Failed: s.failed,
		})
	}
}

// updateTimersLocked brings the advertised intervals in line with the
// configuration and the state (RFC 5880 §6.8.3) and re-times the pending
// transmission and the Detection Time.
func (s *Session) updateTimersLocked(now time.Time) {
	wantTx, wantRx := s.cfgTx, s.cfgRx
	if s.state != StateUp {
		// Not Up: at least 1 s, at once, and no Poll Sequence to run.
		wantTx = max(wantTx, Microseconds(SlowTxInterval))
		s.polling = false
		s.advTx, s.advRx = wantTx, wantRx
		s.txBasis, s.rxBasis = wantTx, wantRx
	} else if !s.polling && (wantTx != s.advTx || wantRx != s.advRx) {
		// A reduced transmit interval and an increased receive interval
		// are safe at once; the others wait for the Final.
		s.txBasis = min(s.advTx, wantTx)
		s.rxBasis = max(s.advRx, wantRx)
		s.advTx, s.advRx = wantTx, wantRx
		s.polling = true
		s.stats.PollSequences++
		s.log.Debug("bfd poll sequence started", "desired_min_tx_us", wantTx, "required_min_rx_us", wantRx)
	}
	if !s.running {
		return
	}
	s.retimeTx(now)
	s.refreshDetect(now)
}

// txInterval is the negotiated transmit interval, the larger of the
// DesiredMinTx in force and bfd.RemoteMinRxInterval (RFC 5880 §6.8.2);
// false when the peer wants no periodic packets (RemoteMinRx 0).
func (s *Session) txInterval() (time.Duration, bool) {
	if s.remoteMinRx == 0 {
		return 0, false
	}
	return Duration(max(s.txBasis, s.remoteMinRx)), true
}

// txBasisInterval is the interval the transmit timer runs at: the
// negotiated one, or the local one while no periodic packets are due.
func (s *Session) txBasisInterval() time.Duration {
	if iv, ok := s.txInterval(); ok {
		return iv
	}
	return Duration(s.txBasis)
}

// DetectTime is the Detection Time in force: the peer's Detect Mult times
// the larger of the RequiredMinRx in force and the peer's last Desired
// Min TX (RFC 5880 §6.8.4); 0 before a packet was received.
func (s *Session) detectTime() time.Duration {
	return time.Duration(s.remoteMult) * Duration(max(s.rxBasis, s.remoteDesiredTx))
}

// jitter reduces iv by a random 0-25%, or 10-25% with Detect Mult 1
// (RFC 5880 §6.8.7).
func (s *Session) jitter(iv time.Duration) time.Duration {
	spread := 0.25
	if s.detectMult == 1 {
		spread = 0.15
	}
	return time.Duration(float64(iv) * (0.75 + spread*s.rng.Float64()))
}

// armTx schedules the next periodic transmission after d, iv being the
// interval it was drawn from.
func (s *Session) armTx(d, iv time.Duration) {
	s.txIval = iv
	s.arm(&s.tx, d, s.fireTx)
}

// retimeTx moves the pending transmission when the transmit interval
// changed: a shorter one is honoured at once (RFC 5880 §6.8.7), a longer
// one is not undercut. The pending transmission moves to the last one plus
// the new, jittered interval (or now).
func (s *Session) retimeTx(now time.Time) {
	if s.tx.t == nil {
		return
	}
	iv := s.txBasisInterval()
	if iv == s.txIval {
		return
	}
	next := s.lastTx.Add(s.jitter(iv))
	if iv < s.txIval && !next.Before(s.tx.deadline) {
		s.txIval = iv
		return
	}
	s.armTx(max(next.Sub(now), 0), iv)
}

func (s *Session) fireTx() {
	now := s.clock.Now()
	if s.periodicAllowed() {
		s.send(s.polling, false)
		s.lastTx = now
	}
	iv := s.txBasisInterval()
	s.armTx(s.jitter(iv), iv)
}

// periodicAllowed applies the transmission rules of RFC 5880 §6.8.7.
func (s *Session) periodicAllowed() bool {
	switch {
	case s.cfg.Passive && s.remoteDiscr == 0:
		return false
	case s.remoteMinRx == 0:
		return false
	case s.remoteDemand && s.state == StateUp && s.remoteState == StateUp && !s.polling:
		return false
	}
	return true
}

// send builds a packet from the state variables (RFC 5880 §6.8.7) and
// hands it to the Sender; it reports whether it went.
func (s *Session) send(poll, final bool) bool {
	p := Packet{
		Diag:          s.localDiag,
		State:         s.state,
		Poll:          poll && !final,
		Final:         final,
		DetectMult:    s.detectMult,
		MyDiscr:       s.localDiscr,
		YourDiscr:     s.remoteDiscr,
		DesiredMinTx:  s.advTx,
		RequiredMinRx: s.advRx,
	}
	n, err := p.MarshalTo(s.buf[:])
	if err == nil {
		err = s.sender.Send(s.buf[:n])
	}
	if err != nil {
		s.stats.SendErrors++
		if !s.sendFailing {
			s.log.Warn("bfd send failed", "err", err)
		}
		s.sendFailing = true
		return false
	}
	if s.sendFailing {
		s.log.Info("bfd send works again")
	}
	s.sendFailing = false
	s.stats.Sent++
	return true
}

// refreshDetect moves the Detection Time deadline to the last reception
// plus the Detection Time in force. The timer is re-armed only when the
// deadline comes earlier than it is set for: a later deadline is picked up
// when it fires, so a packet costs no timer operation.
func (s *Session) refreshDetect(now time.Time) {
	if s.remoteMult == 0 || s.lastRx.IsZero() {
		s.stop(&s.det)
		return
	}
	s.detDeadline = s.lastRx.Add(s.detectTime())
	if s.det.t != nil && !s.det.deadline.After(s.detDeadline) {
		return
	}
	s.arm(&s.det, s.detDeadline.Sub(now), s.fireDetect)
}

func (s *Session) fireDetect() {
	now := s.clock.Now()
	if now.Before(s.detDeadline) {
		s.arm(&s.det, s.detDeadline.Sub(now), s.fireDetect)
		return
	}
	if s.rxCaughtUp != nil && s.rxCaughtUp().Before(s.detDeadline) && now.Before(s.detDeadline.Add(s.detectTime())) {
		s.stats.DetectDeferred++
		s.arm(&s.det, detectRecheck, s.fireDetect)
		return
	}
	s.expireDetect(now)
}

// detectRecheck is how soon a put-off expiry is looked at again.
const detectRecheck = 50 * time.Microsecond

// expireDetect is the expiry of the Detection Time.
func (s *Session) expireDetect(now time.Time) {
	s.expired = &expiry{lastRx: s.lastRx, detect: s.detectTime()}
	// RFC 5880 §6.8.1: bfd.RemoteDiscr is zeroed when the detection timer
	// expires; the other remote variables return to their initial values.
	s.remoteDiscr = 0
	s.remoteState = StateDown
	s.remoteMinRx = 1
	s.remoteDemand = false
	s.remoteMult = 0
	s.lastRx = time.Time{}
	if s.state == StateInit || s.state == StateUp {
		s.stats.DetectExpired++
		s.stats.LastDetectLateness = now.Sub(s.expired.lastRx.Add(s.expired.detect))
		s.transition(StateDown, DiagControlDetectionTimeExpired)
		return
	}
	s.expired = nil
	s.updateTimersLocked(now)
}

// arm (re)starts rt; fire runs with s.mu held unless rt was stopped or
// re-armed in the meantime.
func (s *Session) arm(rt *rtimer, d time.Duration, fire func()) {
	s.stop(rt)
	gen := rt.gen
	rt.deadline = s.clock.Now().Add(d)
	rt.t = s.clock.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if rt.t == nil || rt.gen != gen || !s.running {
			return // stopped or re-armed after this callback was scheduled
		}
		rt.t = nil
		fire()
	})
}

func (s *Session) stop(rt *rtimer) {
	if rt.t != nil {
		rt.t.Stop()
		rt.t = nil
	}
	rt.gen++
}

// Status is a snapshot of a session for display.
type Status struct {
	Name      string
	Interface string
	Local     netip.Addr
	Peer      netip.Addr
	Passive   bool
	Running   bool

	State, RemoteState      State
	LocalDiscr, RemoteDiscr uint32
	LocalDiag, RemoteDiag   Diag
	DetectMult              uint8
	RemoteDetectMult        uint8

	// Configured intervals.
	DesiredMinTx, RequiredMinRx time.Duration
	// SentMinTx and SentMinRx: bfd.DesiredMinTxInterval and
	// bfd.RequiredMinRxInterval as sent now (1 s floor when not Up).
	SentMinTx, SentMinRx time.Duration
	// Received from the peer: Desired Min TX and Required Min RX.
	RemoteDesiredMinTx, RemoteRequiredMinRx time.Duration
	// TxInterval is the negotiated transmit interval before jitter (0 when
	// the peer wants no periodic packets); DetectTime the Detection Time
	// (0 before anything was received).
	TxInterval   time.Duration
	DetectTime   time.Duration
	Polling      bool
	RemoteDemand bool

	LastChange time.Time
	// UpSince is when the session came Up (zero unless Up).
	UpSince time.Time
	LastRx  time.Time
	LastTx  time.Time
	// Failed is StateChange.Failed as of now.
	Failed      bool
	Transitions []TransitionRecord
	Stats       Stats
}

// Status returns a snapshot of s.
func (s *Session) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	iv, _ := s.txInterval()
	return Status{
		Name:                s.cfg.Name,
		Interface:           s.cfg.Interface,
		Local:               s.cfg.Local,
		Peer:                s.cfg.Peer,
		Passive:             s.cfg.Passive,
		Running:             s.running,
		State:               s.state,
		RemoteState:         s.remoteState,
		LocalDiscr:          s.localDiscr,
		RemoteDiscr:         s.remoteDiscr,
		LocalDiag:           s.localDiag,
		RemoteDiag:          s.remoteDiag,
		DetectMult:          s.detectMult,
		RemoteDetectMult:    s.remoteMult,
		DesiredMinTx:        s.cfg.DesiredMinTx,
		RequiredMinRx:       s.cfg.RequiredMinRx,
		SentMinTx:           Duration(s.advTx),
		SentMinRx:           Duration(s.advRx),
		RemoteDesiredMinTx:  Duration(s.remoteDesiredTx),
		RemoteRequiredMinRx: Duration(s.remoteMinRx),
		TxInterval:          iv,
		DetectTime:          s.detectTime(),
		Polling:             s.polling,
		RemoteDemand:        s.remoteDemand,
		LastChange:          s.lastChange,
		UpSince:             s.upSince,
		LastRx:              s.lastRx,
		LastTx:              s.lastTx,
		Failed:              s.failed,
		Transitions:         slices.Clone(s.history),
		Stats:               s.stats,
	}
}
