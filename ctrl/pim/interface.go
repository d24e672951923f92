package pim

import (
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

// Timer values of RFC 7761 §4.11 and the LAN Prune Delay defaults of
// §4.3.3.
const (
	DefaultHelloPeriod      = 30 * time.Second
	TriggeredHelloDelay     = 5 * time.Second
	DefaultPropagationDelay = 500 * time.Millisecond  // Propagation_delay_default
	DefaultOverrideInterval = 2500 * time.Millisecond // t_override_default
	DefaultDRPriority       = 1
	// DefaultHelloHoldtime is Default_Hello_Holdtime, 3.5 × the default
	// Hello_Period: a neighbour's liveness when its Hello has no Holdtime
	// option (§4.3.2).
	DefaultHelloHoldtime = 105 * time.Second
	// DefaultMaxNeighbors bounds the neighbour table of one interface: a
	// Hello flood from many forged sources cannot grow it further.
	DefaultMaxNeighbors = 128

	// holdtimeFactor: Default_Hello_Holdtime is 3.5 × Hello_Period.
	holdtimeNum, holdtimeDen = 7, 2
)

// Sender puts a PIM message on the interface's link: an IPv6 packet of next
// header 103 from the interface's link-local address (Config.Address, which
// the checksum covers) to dst, with hop limit 1 when dst is ALL-PIM-ROUTERS.
type Sender interface {
	SendPIM(dst netip.Addr, msg []byte) error
}

// Rand is the randomness the interface needs: *rand.Rand of math/rand/v2
// satisfies it (tests seed one); the default uses math/rand/v2's
// top-level functions.
type Rand interface {
	Int64N(n int64) int64
	Uint32() uint32
}

type systemRand struct{}

func (systemRand) Int64N(n int64) int64 { return rand.Int64N(n) }
func (systemRand) Uint32() uint32       { return rand.Uint32() }

// Config configures PIM on one interface. Start from DefaultConfig: New
// replaces zero durations with the RFC 7761 defaults, but takes DRPriority
// (0 is a valid priority) and SendLANPruneDelay as given.
type Config struct {
	Name string // interface name, for logs and events
	// Address is the interface's link-local address: the source of every
	// Hello, Join/Prune and Assert, and the router's primary address on
	// the link for DR election (RFC 7761 §4.3.2, §4.3.4).
	Address netip.Addr
	// SecondaryAddresses are sent in the Address List option: the
	// interface's global addresses, which neighbours' RPF lookups return
	// as next hops (RFC 7761 §4.3.4).
	SecondaryAddresses []netip.Addr

	HelloPeriod time.Duration // Hello_Period, default 30 s (§4.11)
	// Holdtime is what Hellos advertise: whole seconds, at least
	// HelloPeriod, at most 65535 s (never expire); default
	// 3.5 × HelloPeriod (Default_Hello_Holdtime).
	Holdtime   time.Duration
	DRPriority uint32 // sent in every Hello; DefaultConfig: 1

	// SendLANPruneDelay adds the LAN Prune Delay option (§4.3.3) with the
	// three values below; without it this router's Hellos turn the LAN's
	// prune delay negotiation off.
	SendLANPruneDelay bool
	PropagationDelay  time.Duration // whole ms, at most 32767 ms; default 500 ms
	OverrideInterval  time.Duration // whole ms, at most 65535 ms; default 2500 ms
	// Tracking is the T bit: this router is willing to disable join
	// suppression (it sends every join instead of suppressing it).
	Tracking bool

	MaxNeighbors int // default DefaultMaxNeighbors; negative: no limit

	Clock  clock.Clock  // default clock.System
	Rand   Rand         // default math/rand/v2
	Sender Sender       // required to send Hellos; nil: never send
	Logger *slog.Logger // default: discard

	// OnEvent is called after every neighbour or DR change.
	OnEvent func(Event)
	// OnMessage receives the messages the neighbour code does not consume:
	// Join/Prune and Assert from neighbours, Register and Register-Stop.
	OnMessage func(Received)
}

// DefaultConfig returns the RFC 7761 defaults for an interface with
// link-local address ll, LAN Prune Delay option included, T bit clear.
func DefaultConfig(name string, ll netip.Addr) Config {
	return Config{
		Name:              name,
		Address:           ll,
		HelloPeriod:       DefaultHelloPeriod,
		DRPriority:        DefaultDRPriority,
		SendLANPruneDelay: true,
		PropagationDelay:  DefaultPropagationDelay,
		OverrideInterval:  DefaultOverrideInterval,
		MaxNeighbors:      DefaultMaxNeighbors,
	}
}

func (c *Config) setDefaults() error {
	if !c.Address.Is6() || !c.Address.IsLinkLocalUnicast() {
		return fmt.Errorf("address %v: must be an IPv6 link-local address", c.Address)
	}
	c.Address = c.Address.WithZone("")
	c.SecondaryAddresses = slices.Clone(c.SecondaryAddresses)
	for i, a := range c.SecondaryAddresses {
		if !a.Is6() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
			return fmt.Errorf("secondary address %d (%v): must be a routable IPv6 unicast address", i, a)
		}
		c.SecondaryAddresses[i] = a.WithZone("")
	}
	if c.HelloPeriod <= 0 {
		c.HelloPeriod = DefaultHelloPeriod
	}
	if c.HelloPeriod < time.Second {
		return fmt.Errorf("hello period %v: must be at least 1s", c.HelloPeriod)
	}
	if c.Holdtime <= 0 {
		c.Holdtime = (c.HelloPeriod * holdtimeNum / holdtimeDen).Truncate(time.Second)
	}
	if c.Holdtime%time.Second != 0 || c.Holdtime < c.HelloPeriod || c.Holdtime > HoldtimeForever*time.Second {
		return fmt.Errorf("holdtime %v: must be whole seconds from the hello period %v to 65535s", c.Holdtime, c.HelloPeriod)
	}
	if c.PropagationDelay <= 0 {
		c.PropagationDelay = DefaultPropagationDelay
	}
	if c.OverrideInterval <= 0 {
		c.OverrideInterval = DefaultOverrideInterval
	}
	if c.PropagationDelay%time.Millisecond != 0 || c.PropagationDelay > maxPropagationDelay*time.Millisecond {
		return fmt.Errorf("propagation delay %v: must be whole milliseconds up to 32767ms", c.PropagationDelay)
	}
	if c.OverrideInterval%time.Millisecond != 0 || c.OverrideInterval > 0xffff*time.Millisecond {
		return fmt.Errorf("override interval %v: must be whole milliseconds up to 65535ms", c.OverrideInterval)
	}
	if c.MaxNeighbors == 0 {
		c.MaxNeighbors = DefaultMaxNeighbors
	}
	if c.Clock == nil {
		c.Clock = clock.System{}
	}
	if c.Rand == nil {
		c.Rand = systemRand{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Packet is one received PIM message with what the transport learned from
// the IPv6 header.
type Packet struct {
	Src, Dst netip.Addr
	HopLimit int
	Payload  []byte // PIM header first
}

// Received is a validated message handed to Config.OnMessage.
type Received struct {
	Interface string
	Src, Dst  netip.Addr
	Message   Message
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// NeighborUp: a Hello from a new neighbour (RFC 7761 §4.3.1).
	NeighborUp EventKind = iota + 1
	// NeighborDown: a neighbour is gone; Reason says why.
	NeighborDown
	// NeighborRestarted: an existing neighbour's Hello carried a new
	// Generation ID: it restarted and lost its state, and this router
	// reset its own record of it (§4.3.1). The upstream state machines
	// must resend their joins to it (§4.5.5, §4.5.7).
	NeighborRestarted
	// DRChanged: the elected DR of the link changed (§4.3.2).
	DRChanged
)

func (k EventKind) String() string {
	switch k {
	case NeighborUp:
		return "neighbor-up"
	case NeighborDown:
		return "neighbor-down"
	case NeighborRestarted:
		return "neighbor-restarted"
	case DRChanged:
		return "dr-changed"
	}
	return fmt.Sprintf("event-%d", uint8(k))
}

// DownReason says why a neighbour went away.
type DownReason uint8

// Neighbour down reasons.
const (
	ReasonNone DownReason = iota
	// ReasonExpired: the Neighbor Liveness Timer ran out (§4.3.2).
	ReasonExpired
	// ReasonGoodbye: the neighbour sent a Hello with Holdtime 0 (§4.3.1).
	ReasonGoodbye
	// ReasonStopped: PIM stopped on this interface.
	ReasonStopped
)

func (r DownReason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonExpired:
		return "expired"
	case ReasonGoodbye:
		return "goodbye"
	case ReasonStopped:
		return "stopped"
	}
	return fmt.Sprintf("reason-%d", uint8(r))
}

// Event is a neighbour or DR change on an interface.
type Event struct {
	Kind      EventKind
	Interface string
	Time      time.Time
	// Neighbor is the neighbour's primary (link-local) address for the
	// neighbour events.
	Neighbor netip.Addr
	Reason   DownReason // NeighborDown
	// OldDR and NewDR for DRChanged; NewDR is invalid after Stop. IsDR
	// tells whether NewDR is this router.
	OldDR, NewDR netip.Addr
	IsDR         bool
}

// Neighbor is a snapshot of one neighbour's state (RFC 7761 §4.3.2: the
// information recorded from its Hellos).
type Neighbor struct {
	Address   netip.Addr   // primary address: the Hellos' link-local source
	Secondary []netip.Addr // Address List option (§4.3.4)
	// GenerationID, DRPriority and LANPruneDelay are nil when the
	// neighbour's last Hello lacked the option.
	GenerationID  *uint32
	DRPriority    *uint32
	LANPruneDelay *LANPruneDelay
	// Holdtime is the advertised holdtime, or Default_Hello_Holdtime
	// (105 s) when the Hello had no Holdtime option; Forever for 0xffff.
	Holdtime time.Duration
	Forever  bool
	Since    time.Time // when it became a neighbour (or last restarted)
	Expires  time.Time // zero when Forever
}

// DropReason is why HandlePacket discarded a packet.
type DropReason uint8

// Drop reasons.
const (
	DropNone             DropReason = iota
	DropNotRunning                  // PIM is stopped on the interface
	DropTruncated                   // shorter than its structure says
	DropBadChecksum                 // checksum over the pseudo-header wrong
	DropBadVersion                  // not PIMv2
	DropUnsupportedType             // a type this router does not speak
	DropMalformed                   // bad encoded address, option or field
	DropBadDestination              // link-local message not to ALL-PIM-ROUTERS, or unicast one to a multicast address
	DropBadHopLimit                 // link-local message with hop limit other than 1
	DropBadSource                   // link-local message not from a link-local address, or unicast one from one
	DropLoopback                    // our own message
	DropNotNeighbor                 // Join/Prune or Assert from a router that sent no Hello
	DropTooManyNeighbors            // Hello from a new neighbour beyond MaxNeighbors
	numDropReasons
)

func (r DropReason) String() string {
	switch r {
	case DropNone:
		return "none"
	case DropNotRunning:
		return "not-running"
	case DropTruncated:
		return "truncated"
	case DropBadChecksum:
		return "bad-checksum"
	case DropBadVersion:
		return "bad-version"
	case DropUnsupportedType:
		return "unsupported-type"
	case DropMalformed:
		return "malformed"
	case DropBadDestination:
		return "bad-destination"
	case DropBadHopLimit:
		return "bad-hop-limit"
	case DropBadSource:
		return "bad-source"
	case DropLoopback:
		return "loopback"
	case DropNotNeighbor:
		return "not-neighbor"
	case DropTooManyNeighbors:
		return "too-many-neighbors"
	}
	return fmt.Sprintf("drop-%d", uint8(r))
}

// DropReasons lists every drop reason but DropNone, for exporting counters.
func DropReasons() []DropReason {
	rs := make([]DropReason, 0, numDropReasons-1)
	for r := DropNone + 1; r < numDropReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// Stats are the interface's counters.
type Stats struct {
	Rx, Tx   [16]uint64 // accepted / sent messages by MessageType
	TxErrors uint64
	Drops    [numDropReasons]uint64 // by DropReason

	NeighborsUp      uint64
	NeighborsDown    uint64
	NeighborRestarts uint64 // Generation ID changes
	DRChanges        uint64
}

// Interface is the PIM neighbour state of one interface: it sends Hellos,
// keeps the neighbour table, elects the DR and computes the LAN Prune Delay
// values (RFC 7761 §4.3).
//
// Concurrency: every exported method may be called from any goroutine; a
// mutex serialises all state changes, timer callbacks included.
// Sender.SendPIM, OnEvent and OnMessage are called without the mutex held,
// in the order the state changed, by whichever goroutine drains the outbox;
// they may call back into the Interface. With a fake clock advanced by the
// test goroutine, everything a call caused has been delivered when it
// returns.
type Interface struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	running   bool
	genID     uint32
	helloSent bool // since Start
	hello     slot // periodic Hello Timer (§4.3.1)
	triggered slot // triggered Hello, rand(0, Triggered_Hello_Delay)
	neighbors map[netip.Addr]*neighbor
	dr        netip.Addr // invalid while stopped
	stats     Stats

	outbox outbox[outItem]
}

type neighbor struct {
	Neighbor
	liveness slot
}

// outItem is a message to send (payload non-nil), an event or a message
// for OnMessage.
type outItem struct {
	payload []byte
	event   *Event
	recv    *Received
}

// slot is a restartable timer; a callback that fires after stop or a
// restart is recognised by the generation number and ignored.
type slot struct {
	t    clock.Timer
	gen  uint64
	when time.Time
}

func (s *slot) stop() {
	if s.t != nil {
		s.t.Stop()
		s.t = nil
	}
	s.gen++
	s.when = time.Time{}
}

func (s *slot) running() bool { return s.t != nil }

// arm (re)starts s to call f with the mutex held after d.
func (i *Interface) arm(s *slot, d time.Duration, f func()) {
	s.stop()
	gen := s.gen
	s.when = i.cfg.Clock.Now().Add(d)
	s.t = i.cfg.Clock.AfterFunc(d, func() {
		i.mu.Lock()
		if s.gen != gen {
			i.mu.Unlock()
			return
		}
		s.t = nil
		s.when = time.Time{}
		f()
		i.unlock()
	})
}

// New returns the PIM state of one interface, stopped. Call Start.
func New(cfg Config) (*Interface, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("pim interface %q: %w", cfg.Name, err)
	}
	return &Interface{
		cfg:       cfg,
		log:       cfg.Logger.With(slog.String("iface", cfg.Name)),
		neighbors: make(map[netip.Addr]*neighbor),
	}, nil
}

// Start enables PIM on the interface: a new Generation ID, and the first
// Hello after rand(0, Triggered_Hello_Delay) so that routers powered on
// together do not synchronise (RFC 7761 §4.3.1). The router is DR until it
// hears a better neighbour.
func (i *Interface) Start() {
	i.mu.Lock()
	if !i.running {
		i.running = true
		i.genID = i.cfg.Rand.Uint32()
		i.helloSent = false
		i.arm(&i.hello, i.randDelay(TriggeredHelloDelay), i.periodicHello)
		i.electDR()
	}
	i.unlock()
}

// Stop sends a Hello with Holdtime 0 so that neighbours forget this router
// at once (RFC 7761 §4.3.1), stops the timers and forgets every neighbour,
// reporting each (ReasonStopped) and then the DR as invalid.
func (i *Interface) Stop() {
	i.mu.Lock()
	if i.running {
		i.queueHello(HoldtimeGoodbye)
		i.running = false
		i.hello.stop()
		i.triggered.stop()
		for _, a := range i.sortedNeighbors() {
			i.removeNeighbor(i.neighbors[a], ReasonStopped)
		}
		i.electDR()
	}
	i.unlock()
}

// EnsureHelloSent sends a Hello now unless one has been sent since Start:
// a router MUST do so before its first Join/Prune or Assert on an
// interface (RFC 7761 §4.3.1).
func (i *Interface) EnsureHelloSent() {
	i.mu.Lock()
	if i.running && !i.helloSent {
		i.queueHello(i.holdtimeSeconds())
	}
	i.unlock()
}

// SetDRPriority changes the priority this router advertises, re-runs the
// DR election and tells the neighbours with a triggered Hello.
func (i *Interface) SetDRPriority(p uint32) {
	i.mu.Lock()
	if p != i.cfg.DRPriority {
		i.cfg.DRPriority = p
		if i.running {
			i.electDR()
			i.triggerHello()
		}
	}
	i.unlock()
}

// unlock releases the mutex after delivering the outbox (in order, one
// goroutine at a time).
func (i *Interface) unlock() { i.outbox.unlock(&i.mu, i.deliver, &i.stats.TxErrors) }

func (i *Interface) deliver(items []outItem) (errs uint64) {
	for _, it := range items {
		switch {
		case it.payload != nil:
			if err := i.cfg.Sender.SendPIM(AllPIMRouters, it.payload); err != nil {
				errs++
				i.log.Warn("pim send failed", slog.Any("error", err))
			}
		case it.event != nil:
			if i.cfg.OnEvent != nil {
				i.cfg.OnEvent(*it.event)
			}
		case it.recv != nil:
			if i.cfg.OnMessage != nil {
				i.cfg.OnMessage(*it.recv)
			}
		}
	}
	return errs
}

func (i *Interface) randDelay(max time.Duration) time.Duration {
	return time.Duration(i.cfg.Rand.Int64N(int64(max) + 1))
}

func (i *Interface) holdtimeSeconds() uint16 { return uint16(i.cfg.Holdtime / time.Second) }

// helloMessage is the Hello this router sends with holdtime hold.
func (i *Interface) helloMessage(hold uint16) *Hello {
	h := &Hello{
		Holdtime:     new(hold),
		DRPriority:   new(i.cfg.DRPriority),
		GenerationID: new(i.genID),
		Addresses:    slices.Clone(i.cfg.SecondaryAddresses),
	}
	if i.cfg.SendLANPruneDelay {
		h.LANPruneDelay = &LANPruneDelay{
			Tracking:         i.cfg.Tracking,
			PropagationDelay: uint16(i.cfg.PropagationDelay / time.Millisecond),
			OverrideInterval: uint16(i.cfg.OverrideInterval / time.Millisecond),
		}
	}
	return h
}

func (i *Interface) queueHello(hold uint16) {
	if i.cfg.Sender == nil {
		return
	}
	b, err := Marshal(i.helloMessage(hold), i.cfg.Address, AllPIMRouters)
	if err != nil { // the configuration was validated: cannot happen
		i.log.Error("pim hello marshal failed", slog.Any("error", err))
		return
	}
	i.helloSent = true
	i.stats.Tx[TypeHello]++
	i.outbox.add(outItem{payload: b})
}

// periodicHello is the Hello Timer's expiry: send, re-arm for Hello_Period
// (§4.3.1).
func (i *Interface) periodicHello() {
	i.queueHello(i.holdtimeSeconds())
	i.triggered.stop()
	i.arm(&i.hello, i.cfg.HelloPeriod, i.periodicHello)
}

// triggerHello schedules a Hello after rand(0, Triggered_Hello_Delay) for
// a new or restarted neighbour, without moving the periodic Hello (§4.3.1).
// A triggered Hello already pending is kept, and none is needed when the
// periodic one comes first.
func (i *Interface) triggerHello() {
	if i.triggered.running() {
		return
	}
	d := i.randDelay(TriggeredHelloDelay)
	if i.hello.running() && !i.hello.when.After(i.cfg.Clock.Now().Add(d)) {
		return
	}
	i.arm(&i.triggered, d, func() { i.queueHello(i.holdtimeSeconds()) })
}

func (i *Interface) queueEvent(ev Event) {
	ev.Interface = i.cfg.Name
	ev.Time = i.cfg.Clock.Now()
	i.outbox.add(outItem{event: &ev})
}

func (i *Interface) sortedNeighbors() []netip.Addr {
	as := make([]netip.Addr, 0, len(i.neighbors))
	for a := range i.neighbors {
		as = append(as, a)
	}
	slices.SortFunc(as, netip.Addr.Compare)
	return as
}

func (i *Interface) removeNeighbor(n *neighbor, why DownReason) {
	n.liveness.stop()
	delete(i.neighbors, n.Address)
	i.stats.NeighborsDown++
	i.log.Info("pim neighbor down", slog.String("neighbor", n.Address.String()), slog.String("reason", why.String()))
	i.queueEvent(Event{Kind: NeighborDown, Neighbor: n.Address, Reason: why})
}

// HandlePacket validates one received PIM packet and processes it: Hellos
// update the neighbour table; Join/Prune and Assert from neighbours, and
// Register and Register-Stop, go to Config.OnMessage. It returns the drop
// reason (DropNone when accepted), which is also counted.
//
// Hello, Join/Prune and Assert must come from a link-local address other
// than this router's, to ALL-PIM-ROUTERS, with hop limit 1 (RFC 7761
// §4.9); Join/Prune and Assert only from a neighbour, one that has sent a
// Hello (forged link-local messages, §6.1.1). Register and Register-Stop
// must be unicast between routable addresses; their further checks belong
// to the RP and DR code.
func (i *Interface) HandlePacket(p Packet) DropReason {
	i.mu.Lock()
	r := i.handlePacket(p)
	if r != DropNone {
		i.stats.Drops[r]++
	}
	i.unlock()
	return r
}

func (i *Interface) handlePacket(p Packet) DropReason {
	if !i.running {
		return DropNotRunning
	}
	src, dst := p.Src.WithZone(""), p.Dst.WithZone("")
	if !src.Is6() {
		return DropBadSource
	}
	if !dst.Is6() {
		return DropBadDestination
	}
	if len(p.Payload) < headerLen {
		return DropTruncated
	}
	if err := Verify(src, dst, p.Payload); err != nil {
		return DropBadChecksum
	}
	m, err := Parse(p.Payload)
	switch {
	case err == nil:
	case errors.Is(err, ErrTruncated):
		return DropTruncated
	case errors.Is(err, ErrBadVersion):
		return DropBadVersion
	case errors.Is(err, ErrUnknownType):
		return DropUnsupportedType
	default:
		i.log.Debug("pim malformed message", slog.String("src", src.String()), slog.Any("error", err))
		return DropMalformed
	}
	switch m.Type() {
	case TypeRegister, TypeRegisterStop:
		if dst.IsMulticast() {
			return DropBadDestination
		}
		if src.IsLinkLocalUnicast() || src.IsMulticast() || src.IsUnspecified() {
			return DropBadSource
		}
		i.accept(src, dst, m)
		return DropNone
	}
	switch {
	case dst != AllPIMRouters:
		return DropBadDestination
	case p.HopLimit != HopLimit:
		return DropBadHopLimit
	case !src.IsLinkLocalUnicast():
		return DropBadSource
	case src == i.cfg.Address:
		return DropLoopback
	}
	if h, ok := m.(*Hello); ok {
		if r := i.handleHello(src, h); r != DropNone {
			return r
		}
		i.stats.Rx[TypeHello]++
		return DropNone
	}
	if _, ok := i.neighbors[src]; !ok {
		return DropNotNeighbor
	}
	i.accept(src, dst, m)
	return DropNone
}

func (i *Interface) accept(src, dst netip.Addr, m Message) {
	i.stats.Rx[m.Type()]++
	i.outbox.add(outItem{recv: &Received{Interface: i.cfg.Name, Src: src, Dst: dst, Message: m}})
}

// handleHello records a Hello from src (RFC 7761 §4.3.1, §4.3.2): a new
// neighbour, a refresh, a restart (new Generation ID) or a goodbye
// (Holdtime 0).
func (i *Interface) handleHello(src netip.Addr, h *Hello) DropReason {
	now := i.cfg.Clock.Now()
	n, known := i.neighbors[src]
	hold := uint16(DefaultHelloHoldtime / time.Second)
	if h.Holdtime != nil {
		hold = *h.Holdtime
	}
	if hold == HoldtimeGoodbye {
		if known {
			i.removeNeighbor(n, ReasonGoodbye)
			i.electDR()
		}
		return DropNone
	}
	restarted := known && n.GenerationID != nil && h.GenerationID != nil && *n.GenerationID != *h.GenerationID
	switch {
	case !known:
		if i.cfg.MaxNeighbors > 0 && len(i.neighbors) >= i.cfg.MaxNeighbors {
			return DropTooManyNeighbors
		}
		n = &neighbor{Neighbor: Neighbor{Address: src, Since: now}}
		i.neighbors[src] = n
		i.stats.NeighborsUp++
		i.log.Info("pim neighbor up", slog.String("neighbor", src.String()))
		i.queueEvent(Event{Kind: NeighborUp, Neighbor: src})
		i.triggerHello()
	case restarted:
		i.log.Info("pim neighbor restarted", slog.String("neighbor", src.String()),
			slog.Uint64("old_genid", uint64(*n.GenerationID)), slog.Uint64("new_genid", uint64(*h.GenerationID)))
		// Forget what the old incarnation told us; the Hello below is all
		// that is known of the new one.
		n.liveness.stop()
		n.Neighbor = Neighbor{Address: src, Since: now}
		i.stats.NeighborRestarts++
		i.queueEvent(Event{Kind: NeighborRestarted, Neighbor: src})
		i.triggerHello()
	}
	n.GenerationID = clonePtr(h.GenerationID)
	n.DRPriority = clonePtr(h.DRPriority)
	n.LANPruneDelay = clonePtr(h.LANPruneDelay)
	i.setSecondary(n, h.Addresses)
	n.Holdtime = time.Duration(hold) * time.Second
	n.Forever = hold == HoldtimeForever
	if n.Forever {
		n.liveness.stop()
		n.Expires = time.Time{}
	} else {
		n.Expires = now.Add(n.Holdtime)
		i.arm(&n.liveness, n.Holdtime, func() {
			if cur, ok := i.neighbors[src]; ok && cur == n {
				i.removeNeighbor(n, ReasonExpired)
				i.electDR()
			}
		})
	}
	i.electDR()
	return DropNone
}

// setSecondary records n's Address List. An address is one neighbour's
// only: one listed by the neighbour whose Hello came last is taken off any
// other's list; the neighbour's own primary address, link-local and
// multicast entries are left out (RFC 7761 §4.3.4).
func (i *Interface) setSecondary(n *neighbor, addrs []netip.Addr) {
	var sec []netip.Addr
	for _, a := range addrs {
		if a == n.Address || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() || slices.Contains(sec, a) {
			continue
		}
		sec = append(sec, a)
		for _, o := range i.neighbors {
			if o != n {
				o.Secondary = slices.DeleteFunc(o.Secondary, func(x netip.Addr) bool { return x == a })
			}
		}
	}
	n.Secondary = sec
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	return new(*p)
}

// electDR runs the election of RFC 7761 §4.3.2 and reports a change: the
// highest DR priority wins, ties to the highest address; if any neighbour
// lacks the DR Priority option, priorities are ignored and the highest
// address wins. This router always sends the option.
func (i *Interface) electDR() {
	var dr netip.Addr
	if i.running {
		dr = i.cfg.Address
		usePrio := true
		for _, n := range i.neighbors {
			if n.DRPriority == nil {
				usePrio = false
				break
			}
		}
		prio := i.cfg.DRPriority
		for _, a := range i.sortedNeighbors() {
			n := i.neighbors[a]
			better := a.Compare(dr) > 0
			if usePrio {
				p := *n.DRPriority
				better = p > prio || p == prio && a.Compare(dr) > 0
			}
			if better {
				dr = a
				if usePrio {
					prio = *n.DRPriority
				}
			}
		}
	}
	if dr == i.dr {
		return
	}
	old := i.dr
	i.dr = dr
	i.stats.DRChanges++
	isDR := dr.IsValid() && dr == i.cfg.Address
	i.log.Info("pim dr changed", slog.String("old", old.String()), slog.String("new", dr.String()), slog.Bool("is_dr", isDR))
	i.queueEvent(Event{Kind: DRChanged, OldDR: old, NewDR: dr, IsDR: isDR})
}

// DR returns the link's elected DR, invalid while stopped.
func (i *Interface) DR() netip.Addr {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.dr
}

// IsDR reports whether this router is the link's DR (RFC 7761 §4.3.2).
func (i *Interface) IsDR() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.running && i.dr == i.cfg.Address
}

func (n *neighbor) snapshot() Neighbor {
	s := n.Neighbor
	s.Secondary = slices.Clone(n.Secondary)
	s.GenerationID = clonePtr(n.GenerationID)
	s.DRPriority = clonePtr(n.DRPriority)
	s.LANPruneDelay = clonePtr(n.LANPruneDelay)
	return s
}

// Neighbors returns the neighbour table, by address.
func (i *Interface) Neighbors() []Neighbor {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]Neighbor, 0, len(i.neighbors))
	for _, a := range i.sortedNeighbors() {
		out = append(out, i.neighbors[a].snapshot())
	}
	return out
}

// Neighbor finds the neighbour with primary or secondary address a: RPF
// lookups return a next hop that may be either (RFC 7761 §4.3.4).
func (i *Interface) Neighbor(a netip.Addr) (Neighbor, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	a = a.WithZone("")
	if n, ok := i.neighbors[a]; ok {
		return n.snapshot(), true
	}
	for _, n := range i.neighbors {
		if slices.Contains(n.Secondary, a) {
			return n.snapshot(), true
		}
	}
	return Neighbor{}, false
}

// Status is a snapshot of the interface, for the operator view.
type Status struct {
	Name         string
	Address      netip.Addr
	Running      bool
	GenerationID uint32
	DRPriority   uint32
	DR           netip.Addr
	IsDR         bool
	HelloPeriod  time.Duration
	Holdtime     time.Duration
	NextHello    time.Time
	Neighbors    []Neighbor
	// The LAN Prune Delay values in force (§4.3.3).
	LANDelayEnabled           bool
	EffectivePropagationDelay time.Duration
	EffectiveOverrideInterval time.Duration
	SuppressionEnabled        bool
}

// Status returns a snapshot of the interface.
func (i *Interface) Status() Status {
	i.mu.Lock()
	defer i.mu.Unlock()
	s := Status{
		Name:                      i.cfg.Name,
		Address:                   i.cfg.Address,
		Running:                   i.running,
		GenerationID:              i.genID,
		DRPriority:                i.cfg.DRPriority,
		DR:                        i.dr,
		IsDR:                      i.running && i.dr == i.cfg.Address,
		HelloPeriod:               i.cfg.HelloPeriod,
		Holdtime:                  i.cfg.Holdtime,
		NextHello:                 i.hello.when,
		LANDelayEnabled:           i.lanDelayEnabled(),
		EffectivePropagationDelay: i.effectivePropagationDelay(),
		EffectiveOverrideInterval: i.effectiveOverrideInterval(),
		SuppressionEnabled:        i.suppressionEnabled(),
	}
	if i.triggered.running() && i.triggered.when.Before(s.NextHello) {
		s.NextHello = i.triggered.when
	}
	for _, a := range i.sortedNeighbors() {
		s.Neighbors = append(s.Neighbors, i.neighbors[a].snapshot())
	}
	return s
}

// Stats returns the counters.
func (i *Interface) Stats() Stats {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.stats
}

// Name returns the interface name of the configuration.
func (i *Interface) Name() string { return i.cfg.Name }

// Address returns the interface's link-local address.
func (i *Interface) Address() netip.Addr { return i.cfg.Address }

// ownsAddress reports whether a is this router's address on the link:
// the link-local one or a secondary one (what a Join/Prune's Upstream
// Neighbor field may name, §4.3.4).
func (i *Interface) ownsAddress(a netip.Addr) bool {
	a = a.WithZone("")
	return a == i.cfg.Address || slices.Contains(i.cfg.SecondaryAddresses, a)
}

// NeighborCount returns the number of neighbours on the link.
func (i *Interface) NeighborCount() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.neighbors)
}

// ErrNotRunning is returned (wrapped) by Send while PIM is stopped on the
// interface.
var ErrNotRunning = errors.New("pim: interface not running")

// Send puts a Join/Prune or Assert of the Router on the link, to
// ALL-PIM-ROUTERS, after a first Hello if none has been sent since Start
// (RFC 7761 §4.3.1). Delivery errors are counted in Stats.TxErrors.
func (i *Interface) Send(m Message) error {
	i.mu.Lock()
	if !i.running {
		i.mu.Unlock()
		return fmt.Errorf("send %v on %s: %w", m.Type(), i.cfg.Name, ErrNotRunning)
	}
	b, err := Marshal(m, i.cfg.Address, AllPIMRouters)
	if err != nil {
		i.mu.Unlock()
		return fmt.Errorf("send %v on %s: %w", m.Type(), i.cfg.Name, err)
	}
	if i.cfg.Sender != nil {
		if !i.helloSent {
			i.queueHello(i.holdtimeSeconds())
		}
		i.stats.Tx[m.Type()]++
		i.outbox.add(outItem{payload: b})
	}
	i.unlock()
	return nil
}
