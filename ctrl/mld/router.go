package mld

import (
	"errors"
	"fmt"
	"github.com/hotcast/hotcast/internal/inet"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Well-known addresses (RFC 4291 §2.7.1, RFC 3810 §11).
var (
	AllNodes      = netip.MustParseAddr("ff02::1")
	AllMLDv2Route = netip.MustParseAddr("ff02::16")
)

// Sender transmits one MLD message. The transport adds the IPv6 header
// with hop limit 1, a Hop-by-Hop Router Alert option (RFC 3810 §5) and the
// interface's link-local source address.
type Sender interface {
	SendMLD(dst netip.Addr, icmp []byte) error
}

// Packet is one received MLD message with what the transport learned from
// the IPv6 header.
type Packet struct {
	Src, Dst    netip.Addr // Dst may be invalid if unknown: the checksum is then not verified here
	HopLimit    int
	RouterAlert bool   // a Hop-by-Hop Router Alert option was present
	Payload     []byte // the ICMPv6 message
}

// Config configures one MLD router interface. Start from DefaultConfig:
// zero durations and counts are replaced by the RFC 3810 §9 defaults in New,
// but RequireRouterAlert is taken as given.
type Config struct {
	Name    string     // interface name, for logs
	Address netip.Addr // the interface's link-local address (querier election, RFC 3810 §7.6.2)
	Version int        // 1 (MLDv1 only, RFC 3810 §8.3.1) or 2

	QueryInterval             time.Duration // RFC 3810 §9.2, default 125 s
	QueryResponseInterval     time.Duration // §9.3 (Maximum Response Delay of general queries), default 10 s
	Robustness                int           // §9.1, default 2
	LastListenerQueryInterval time.Duration // §9.8, default 1 s
	LastListenerQueryCount    int           // §9.9, default Robustness
	StartupQueryInterval      time.Duration // §9.6, default QueryInterval/4
	StartupQueryCount         int           // §9.7, default Robustness

	RequireRouterAlert bool // drop messages without a Router Alert option (RFC 3810 §5)
	MaxGroups          int  // refuse new groups beyond this, default 4096; negative: no limit

	Clock  Clock        // default SystemClock
	Sender Sender       // required to send queries; nil: never send
	Logger *slog.Logger // default: discard

	// OnChange is called after every change of a group's state: creation,
	// filter mode or source change, timer refresh by a report, import.
	OnChange func(GroupState)
	// OnDelete is called after a group's state is removed.
	OnDelete func(group netip.Addr)
	// OnUpdates, when set, replaces OnChange and OnDelete: it receives the
	// same events, in the same order, but every run of them between two
	// sent messages in calls of up to MaxUpdateRun updates (an Import of
	// 100 000 entries is 7 calls), so the consumer can apply them in
	// batches whose temporary memory stays bounded. The slice is only
	// valid during the call.
	OnUpdates func([]Update)
}

// MaxUpdateRun is the most updates one OnUpdates call carries. A consumer
// that turns a run into a route batch allocates per update (changes,
// routes, map keys): in runs of 16384 a 100 000-entry import needs 7 such
// batches' worth of memory at a time, not 100 000 (fresh memory is what a
// cold standby pays for most: its first touch costs this VM about 15 µs
// per 4 KiB page).
const MaxUpdateRun = 16384

// Update is one group's change as delivered to Config.OnUpdates: its new
// state, or its removal.
type Update struct {
	Group   netip.Addr
	Deleted bool
	State   GroupState // when not Deleted
}

// DefaultConfig returns the RFC 3810 §9 defaults for an MLDv2 interface.
func DefaultConfig(name string, linkLocal netip.Addr) Config {
	return Config{
		Name:                      name,
		Address:                   linkLocal,
		Version:                   2,
		QueryInterval:             125 * time.Second,
		QueryResponseInterval:     10 * time.Second,
		Robustness:                2,
		LastListenerQueryInterval: time.Second,
		RequireRouterAlert:        true,
		MaxGroups:                 4096,
	}
}

func (c *Config) setDefaults() error {
	if c.Version == 0 {
		c.Version = 2
	}
	if c.Version != 1 && c.Version != 2 {
		return fmt.Errorf("version %d: must be 1 or 2", c.Version)
	}
	if !c.Address.IsValid() || !c.Address.Is6() || !c.Address.IsLinkLocalUnicast() {
		return fmt.Errorf("address %v: must be an IPv6 link-local address", c.Address)
	}
	c.Address = c.Address.WithZone("")
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.QueryInterval, 125*time.Second)
	def(&c.QueryResponseInterval, 10*time.Second)
	def(&c.LastListenerQueryInterval, time.Second)
	def(&c.StartupQueryInterval, c.QueryInterval/4)
	if c.Robustness <= 0 {
		c.Robustness = 2
	}
	if c.LastListenerQueryCount <= 0 {
		c.LastListenerQueryCount = c.Robustness
	}
	if c.StartupQueryCount <= 0 {
		c.StartupQueryCount = c.Robustness
	}
	if c.QueryResponseInterval >= c.QueryInterval {
		return fmt.Errorf("query response interval %v: must be less than the query interval %v (RFC 3810 §9.3)",
			c.QueryResponseInterval, c.QueryInterval)
	}
	if c.MaxGroups == 0 {
		c.MaxGroups = 4096
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Interface is the MLD router state of one interface.
//
// Concurrency: every exported method may be called from any goroutine. A
// mutex serialises all state changes, including timer callbacks, so the
// state machine is single-threaded. Sender.SendMLD, OnChange and OnDelete
// are called without the mutex held, in the order the state changed, by
// whichever goroutine drains the outbox; they may call back into the
// Interface (their own effects are then delivered after they return). With
// a fake clock advanced by the test goroutine, everything caused by a call
// has been delivered when the call returns.
type Interface struct {
	cfg   Config
	clock Clock
	log   *slog.Logger

	mu     sync.Mutex
	groups map[netip.Addr]*group

	running        bool
	querierAllowed bool
	isQuerier      bool
	querier        netip.Addr // current querier, invalid if unknown
	oqp            slot       // Other Querier Present timer (§7.6.2)
	gq             slot       // next general query
	startupLeft    int

	// Effective values: configured, or learned from the querier's
	// queries (RFC 3810 §5.1.8, §5.1.9) while another router is querier.
	qrv int
	qi  time.Duration

	stats counters

	importGen uint64  // generation of the last Import
	slab      []group // zero groups for Import's new ones (see slabGroup)

	// Changes waiting for commit: the groups touched (each once, see
	// group.dirty; a group replaced by a new one may appear twice) and the
	// published groups deleted. Slices, not sets: an Import of 100 000
	// groups must not build (and then clear, at every later commit) a map
	// of 100 000 addresses.
	dirty []netip.Addr
	gone  []netip.Addr

	expiries expiryHeap // the groups' expiry deadlines (see reschedule)
	expSlot  slot       // fires at the earliest of them
	expAt    time.Time  // the deadline expSlot is armed for

	// What commit queued for delivery: messages and runs of updates, in
	// order; a run's updates are the next ones in updates.
	outbox   []outEvent
	updates  []Update
	draining bool
}

// outEvent is a message to send (payload non-nil) or a run of n updates.
type outEvent struct {
	dst     netip.Addr
	payload []byte
	n       int
}

// slot is a restartable timer. Stale callbacks (fired after Stop or a
// restart) are recognised by the generation number and ignored.
type slot struct {
	t    Timer
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
func (i *Interface) arm(s *slot, d time.Duration, f func(now time.Time)) {
	s.stop()
	gen := s.gen
	if d < 0 {
		d = 0
	}
	s.when = i.clock.Now().Add(d)
	s.t = i.clock.AfterFunc(d, func() {
		i.mu.Lock()
		if s.gen != gen {
			i.mu.Unlock()
			return
		}
		s.t = nil
		s.when = time.Time{}
		f(i.clock.Now())
		i.commit()
		i.unlock()
	})
}

// New returns the MLD state of one interface. Call Start to begin querying.
func New(cfg Config) (*Interface, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("mld interface %q: %w", cfg.Name, err)
	}
	i := &Interface{
		cfg:            cfg,
		clock:          cfg.Clock,
		log:            cfg.Logger.With(slog.String("iface", cfg.Name)),
		groups:         make(map[netip.Addr]*group),
		querierAllowed: true,
		qrv:            cfg.Robustness,
		qi:             cfg.QueryInterval,
	}
	return i, nil
}

// Start begins the querier role: [Startup Query Count] general queries
// [Startup Query Interval] apart, then one every [Query Interval]
// (RFC 3810 §7.6.2, §9.6, §9.7).
func (i *Interface) Start() {
	i.mu.Lock()
	if !i.running {
		i.running = true
		for _, g := range i.groups { // arm the timers of state learned while stopped
			i.touch(g)
		}
		if i.querierAllowed && !i.oqp.running() {
			i.becomeQuerier(i.cfg.StartupQueryCount)
		}
	}
	i.commit()
	i.unlock()
}

// Stop stops all timers and sending. Group state is kept but no longer
// ages until Start is called again.
func (i *Interface) Stop() {
	i.mu.Lock()
	i.running = false
	i.isQuerier = false
	i.gq.stop()
	i.oqp.stop()
	i.stopExpiries()
	for _, g := range i.groups {
		g.rexmit.stop()
	}
	i.unlock()
}

// unlock releases the mutex after delivering the outbox. Only one
// goroutine drains at a time, so deliveries keep their order.
func (i *Interface) unlock() {
	if i.draining {
		i.mu.Unlock()
		return
	}
	i.draining = true
	for {
		ev, ups := i.outbox, i.updates
		i.outbox, i.updates = nil, nil
		if len(ev) == 0 {
			i.draining = false
			i.mu.Unlock()
			return
		}
		i.mu.Unlock()
		errs := i.deliver(ev, ups)
		i.mu.Lock()
		i.stats.TxErrors += errs
	}
}

func (i *Interface) deliver(evs []outEvent, ups []Update) (errs uint64) {
	for _, ev := range evs {
		if ev.payload != nil {
			if i.cfg.Sender == nil {
				continue
			}
			if err := i.cfg.Sender.SendMLD(ev.dst, ev.payload); err != nil {
				errs++
				i.log.Warn("mld send failed", slog.String("dst", ev.dst.String()), slog.Any("error", err))
			}
			continue
		}
		run := ups[:ev.n:ev.n]
		ups = ups[ev.n:]
		if i.cfg.OnUpdates != nil {
			for len(run) > 0 {
				k := min(len(run), MaxUpdateRun)
				i.cfg.OnUpdates(run[:k:k])
				run = run[k:]
			}
			continue
		}
		for _, u := range run {
			switch {
			case !u.Deleted:
				if i.cfg.OnChange != nil {
					i.cfg.OnChange(u.State)
				}
			case i.cfg.OnDelete != nil:
				i.cfg.OnDelete(u.Group)
			}
		}
	}
	return errs
}

// commit runs due expirations of changed groups, re-arms their timers and
// queues their notifications, sorted by group. Called with the mutex held
// at the end of every operation.
func (i *Interface) commit() {
	if len(i.dirty) == 0 && len(i.gone) == 0 {
		return
	}
	now := i.clock.Now()
	keys := i.dirty
	slices.SortFunc(keys, netip.Addr.Compare)
	keys = slices.Compact(keys) // a group replaced by a new one (upsert) is there twice
	for _, a := range keys {
		if g, ok := i.groups[a]; ok {
			g.dirty = false
			i.expire(g, now) // may delete g: then it joins gone
		}
	}
	gone := i.gone
	slices.SortFunc(gone, netip.Addr.Compare)
	gone = slices.Compact(gone)
	n0 := len(i.updates)
	i.updates = slices.Grow(i.updates, len(keys)+len(gone))
	emit := func(a netip.Addr, deleted bool) {
		if g, ok := i.groups[a]; ok {
			i.reschedule(g)
			g.published = true
			i.updates = append(i.updates, Update{Group: a, State: i.snapshot(g)})
		} else if deleted {
			i.updates = append(i.updates, Update{Group: a, Deleted: true})
		}
	}
	// Both sorted: one merge walk, each address once.
	k, d := 0, 0
	for k < len(keys) || d < len(gone) {
		switch {
		case d == len(gone) || (k < len(keys) && keys[k].Less(gone[d])):
			emit(keys[k], false)
			k++
		case k == len(keys) || gone[d].Less(keys[k]):
			emit(gone[d], true)
			d++
		default:
			emit(keys[k], true)
			k++
			d++
		}
	}
	// Keep the buffers for the next commit unless a bulk change grew them.
	i.dirty, i.gone = reuse(keys), reuse(gone)
	if n := len(i.updates) - n0; n > 0 {
		if m := len(i.outbox); m > 0 && i.outbox[m-1].payload == nil {
			i.outbox[m-1].n += n // the run goes on
		} else {
			i.outbox = append(i.outbox, outEvent{n: n})
		}
	}
}

// reuse empties a buffer of addresses for the next commit, or drops it when
// a bulk change made it large.
func reuse(b []netip.Addr) []netip.Addr {
	if cap(b) > 4096 {
		return nil
	}
	return b[:0]
}

func (i *Interface) touch(g *group) {
	if !g.dirty {
		g.dirty = true
		i.dirty = append(i.dirty, g.addr)
	}
}

// Derived timer values (RFC 3810 §9).
func (i *Interface) mali() time.Duration { // Multicast Address Listening Interval, §9.4
	return time.Duration(i.qrv)*i.qi + i.cfg.QueryResponseInterval
}
func (i *Interface) oqpi() time.Duration { // Other Querier Present Timeout, §9.5
	return time.Duration(i.qrv)*i.qi + i.cfg.QueryResponseInterval/2
}
func (i *Interface) llqc() int { // Last Listener Query Count, §9.9
	if i.qrv != i.cfg.Robustness {
		return i.qrv // learned robustness wins over the configured count
	}
	return i.cfg.LastListenerQueryCount
}
func (i *Interface) llqt() time.Duration { // Last Listener Query Time, §9.10
	return time.Duration(i.llqc()) * i.cfg.LastListenerQueryInterval
}

// canQuery reports whether this router may start query sequences now.
func (i *Interface) canQuery() bool { return i.running && i.querierAllowed && i.isQuerier }

// mayRetransmit reports whether already started last-listener query
// sequences may go on. They do across a querier -> non-querier change
// (FRR missed this) but not when querying is administratively off.
func (i *Interface) mayRetransmit() bool { return i.running && i.querierAllowed }

// ---- Querier election and general queries (RFC 3810 §7.6.2) ----

func (i *Interface) becomeQuerier(startup int) {
	if !i.isQuerier {
		i.log.Info("mld querier", slog.String("querier", i.cfg.Address.String()))
	}
	i.isQuerier = true
	i.querier = i.cfg.Address
	i.qrv, i.qi = i.cfg.Robustness, i.cfg.QueryInterval
	i.startupLeft = startup
	i.generalQueryTick(i.clock.Now())
}

func (i *Interface) generalQueryTick(time.Time) {
	if !i.canQuery() {
		return
	}
	i.sendGeneralQuery()
	next := i.qi
	if i.startupLeft > 0 {
		i.startupLeft--
		if i.startupLeft > 0 {
			next = i.cfg.StartupQueryInterval
		}
	}
	i.arm(&i.gq, next, i.generalQueryTick)
}

func (i *Interface) sendGeneralQuery() {
	q := &Query{Version: i.cfg.Version, Group: netip.Addr{}}
	if i.cfg.Version == 1 {
		q.MaxRespCode = uint16(min(i.cfg.QueryResponseInterval.Milliseconds(), 0xffff))
	} else {
		q.MaxRespCode = EncodeMaxRespCode(i.cfg.QueryResponseInterval)
		if i.qrv <= 7 { // §5.1.8: 0 when above 7
			q.QRV = uint8(i.qrv)
		}
		q.QQIC = EncodeQQIC(i.qi)
	}
	i.stats.TxGeneralQueries++
	i.queueSend(AllNodes, q)
}

func (i *Interface) queueSend(dst netip.Addr, m Message) {
	b, err := Marshal(m, i.cfg.Address, dst)
	if err != nil { // cannot happen with the addresses built here
		i.log.Error("mld marshal failed", slog.Any("error", err))
		return
	}
	i.outbox = append(i.outbox, outEvent{dst: dst, payload: b})
}

func (i *Interface) otherQuerierExpired(now time.Time) {
	i.log.Info("mld other querier present timer expired", slog.String("querier", i.querier.String()))
	i.querier = netip.Addr{}
	i.qrv, i.qi = i.cfg.Robustness, i.cfg.QueryInterval
	if i.running && i.querierAllowed {
		i.becomeQuerier(0)
	}
}

func (i *Interface) handleQuery(p Packet, q *Query) {
	now := i.clock.Now()
	if q.Version == 1 {
		i.stats.RxQueriesV1++
		if i.cfg.Version == 2 {
			// §8.3.1: MLDv1 routers on the link need the administrator to
			// configure MLDv1 here.
			i.log.Warn("mld v1 query received on an MLDv2 interface", slog.String("src", p.Src.String()))
		}
	} else {
		i.stats.RxQueriesV2++
	}
	if p.Src == i.cfg.Address {
		return // our own query looped back
	}
	// Election: the lowest address is querier (§7.6.2).
	if p.Src.Less(i.cfg.Address) {
		if i.isQuerier {
			i.log.Info("mld querier lost", slog.String("querier", p.Src.String()))
		}
		i.isQuerier = false
		i.gq.stop()
		i.querier = p.Src
		if q.Version == 2 {
			if q.QRV != 0 {
				i.qrv = int(q.QRV)
			}
			if q.QQIC != 0 {
				i.qi = q.QueryInterval()
			}
		}
		if i.running {
			i.arm(&i.oqp, i.oqpi(), i.otherQuerierExpired)
		}
	}
	if q.IsGeneral() || q.Suppress {
		return
	}
	// §7.6.1: a query with a clear S flag lowers the timers it asks about
	// to the Last Listener Query Time, here the querier's Maximum Response
	// Delay times its robustness.
	g := i.groups[q.Group]
	if g == nil {
		return
	}
	deadline := now.Add(q.MaxResponseDelay() * time.Duration(i.qrv))
	changed := false
	if len(q.Sources) == 0 {
		if g.mode == Exclude && g.timer.After(deadline) {
			g.timer = deadline
			changed = true
		}
	} else {
		for _, a := range q.Sources {
			if s := g.sources[a]; s != nil && s.timer.After(deadline) {
				s.timer = deadline
				changed = true
			}
		}
	}
	if changed {
		i.touch(g)
	}
}

// ---- Packet reception and validation (RFC 3810 §5.1.14, §5.2.13, §6.2) ----

// HandlePacket validates and processes one received MLD message. Invalid
// messages are counted by reason in Stats and change nothing.
func (i *Interface) HandlePacket(p Packet) {
	i.mu.Lock()
	i.handlePacket(p)
	i.commit()
	i.unlock()
}

func (i *Interface) handlePacket(p Packet) {
	if r, ok := i.validate(p); !ok {
		i.stats.Drops[r]++
		return
	}
	m, err := Parse(p.Payload)
	if err != nil {
		i.stats.Drops[parseDropReason(err)]++
		return
	}
	switch m := m.(type) {
	case *Query:
		if !p.Src.IsLinkLocalUnicast() { // §5.1.14
			i.stats.Drops[DropSourceNotLinkLocal]++
			return
		}
		if !m.IsGeneral() && !m.Group.IsMulticast() {
			i.stats.Drops[DropBadGroup]++
			return
		}
		i.handleQuery(p, m)
	case *V1Report:
		i.stats.RxReportsV1++
		i.handleV1(p.Src, m.Group, false)
	case *V1Done:
		i.stats.RxDonesV1++
		i.handleV1(p.Src, m.Group, true)
	case *V2Report:
		if i.cfg.Version == 1 { // an MLDv1 router does not know type 143 (§8.3.1)
			i.stats.Drops[DropVersionMismatch]++
			return
		}
		i.stats.RxReportsV2++
		for _, r := range m.Records {
			i.handleRecord(p.Src, r)
		}
	}
}

// validate applies the IPv6-level checks common to all MLD messages.
func (i *Interface) validate(p Packet) (DropReason, bool) {
	switch {
	case len(p.Payload) < 4:
		return DropTruncated, false
	case p.HopLimit != 1:
		return DropHopLimit, false
	case i.cfg.RequireRouterAlert && !p.RouterAlert:
		return DropNoRouterAlert, false
	case !p.Src.IsValid() || p.Src.IsUnspecified():
		// Reports from :: are discarded by routers (§5.2.13); so are
		// queries (§5.1.14).
		return DropSourceUnspecified, false
	case !p.Src.IsLinkLocalUnicast():
		return DropSourceNotLinkLocal, false
	}
	if p.Dst.IsValid() {
		if err := Verify(p.Src.WithZone(""), p.Dst.WithZone(""), p.Payload); err != nil {
			return DropBadChecksum, false
		}
	}
	return 0, true
}

func parseDropReason(err error) DropReason {
	switch {
	case errors.Is(err, ErrBadLength):
		return DropBadLength
	case errors.Is(err, ErrUnknownType):
		return DropUnknownType
	case errors.Is(err, ErrBadRecord):
		return DropBadRecord
	}
	return DropTruncated
}

// groupDropReason says why reports about group g are ignored, if they are:
// not multicast, scope below link-local (RFC 4291 §2.7: reserved and
// interface-local), or ff02::1, which is never reported (RFC 3810 §6).
func groupDropReason(g netip.Addr) (DropReason, bool) {
	switch {
	case !g.Is6() || g.Is4In6() || !g.IsMulticast():
		return DropBadGroup, true
	case inet.MulticastScope(g) < 2 || g == AllNodes:
		return DropGroupScope, true
	}
	return 0, false
}

// IsSSM reports whether g is in the IPv6 source-specific multicast range
// ff3x::/32 (RFC 4607 §1, RFC 3306 §6 with plen 0).
func IsSSM(g netip.Addr) bool {
	b := g.As16()
	return g.Is6() && b[0] == 0xff && b[1]>>4 == 3 && b[2] == 0 && b[3] == 0
}

// handleV1 processes an MLDv1 Report (done=false) or Done: on an MLDv2
// interface as IS_EX({}) / TO_IN({}) with the Older Version Host Present
// timer set (RFC 3810 §8.3.2).
func (i *Interface) handleV1(src, addr netip.Addr, done bool) {
	if r, bad := groupDropReason(addr); bad {
		i.stats.Drops[r]++
		return
	}
	if IsSSM(addr) { // RFC 4604 §2.2.1: no MLDv1 for SSM addresses
		i.stats.Drops[DropSSMExclude]++
		return
	}
	now := i.clock.Now()
	if done {
		g := i.groups[addr]
		if g == nil {
			return // INCLUDE({}) + TO_IN({}) is a no-op
		}
		g.lastReporter = src
		g.synced = false
		i.applyRecord(g, ChangeToInclude, nil, now)
		i.touch(g)
		return
	}
	i.withGroup(addr, func(g *group) {
		g.lastReporter = src
		g.v1Host = now.Add(i.mali()) // Older Version Host Present Timeout, §9.13
		i.applyRecord(g, ModeIsExclude, nil, now)
	})
}

// handleRecord processes one MLDv2 multicast address record.
func (i *Interface) handleRecord(src netip.Addr, r Record) {
	i.stats.RxRecords++
	if r.Type < minRecordType || r.Type > maxRecordType { // §5.2.12
		i.stats.Drops[DropUnknownRecord]++
		return
	}
	if reason, bad := groupDropReason(r.Group); bad {
		i.stats.Drops[reason]++
		return
	}
	for _, s := range r.Sources {
		if !s.Is6() || s.IsMulticast() || s.IsUnspecified() || s.IsLoopback() {
			i.stats.Drops[DropBadSource]++
			return
		}
	}
	if IsSSM(r.Group) && (r.Type == ModeIsExclude || r.Type == ChangeToExclude) {
		i.stats.Drops[DropSSMExclude]++ // RFC 4604 §2.2.1
		return
	}
	srcs := dedup(r.Sources)
	now := i.clock.Now()
	i.withGroup(r.Group, func(g *group) {
		g.lastReporter = src
		typ := r.Type
		if g.v1Host.After(now) || i.cfg.Version == 1 {
			// MLDv1 compatibility mode (§8.3.2): BLOCK is ignored, so are
			// the sources of TO_EX.
			switch typ {
			case BlockOldSources:
				return
			case ChangeToExclude:
				srcs = nil
			}
		}
		i.applyRecord(g, typ, srcs, now)
	})
}

// withGroup runs f on the state of addr, creating it (INCLUDE({})) when
// missing. A new group is kept only if f leaves state in it and MaxGroups
// allows.
func (i *Interface) withGroup(addr netip.Addr, f func(g *group)) {
	g := i.groups[addr]
	if g != nil {
		g.synced = false
		f(g)
		i.touch(g)
		return
	}
	g = newGroup(addr)
	f(g)
	if g.empty() {
		return
	}
	if i.cfg.MaxGroups > 0 && len(i.groups) >= i.cfg.MaxGroups {
		i.stats.Drops[DropMaxGroups]++
		return
	}
	i.groups[addr] = g
	i.log.Debug("mld group created", slog.String("group", addr.String()))
	i.touch(g)
}

func dedup(in []netip.Addr) []netip.Addr {
	if len(in) < 2 {
		return in
	}
	out := slices.Clone(in)
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// Stats returns a copy of the counters.
func (i *Interface) Stats() Stats {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.stats.snapshot()
}

// Status describes the interface for display.
type Status struct {
	Name                      string
	Version                   int
	Address                   netip.Addr
	Running                   bool
	QuerierAllowed            bool
	IsQuerier                 bool
	Querier                   netip.Addr // invalid if none known
	QueryInterval             time.Duration
	QueryResponseInterval     time.Duration
	Robustness                int
	LastListenerQueryInterval time.Duration
	LastListenerQueryCount    int
	MulticastListeningInt     time.Duration // MALI, §9.4
	OtherQuerierPresentInt    time.Duration // §9.5
	OtherQuerierRemaining     time.Duration // 0 when not running
	NextGeneralQuery          time.Duration // 0 when none scheduled
	Groups                    int
	Stats                     Stats
}

// Status returns the current querier state, timers and counters.
func (i *Interface) Status() Status {
	i.mu.Lock()
	defer i.mu.Unlock()
	now := i.clock.Now()
	rem := func(s *slot) time.Duration {
		if !s.running() {
			return 0
		}
		return max(s.when.Sub(now), 0)
	}
	return Status{
		Name:                      i.cfg.Name,
		Version:                   i.cfg.Version,
		Address:                   i.cfg.Address,
		Running:                   i.running,
		QuerierAllowed:            i.querierAllowed,
		IsQuerier:                 i.isQuerier,
		Querier:                   i.querier,
		QueryInterval:             i.qi,
		QueryResponseInterval:     i.cfg.QueryResponseInterval,
		Robustness:                i.qrv,
		LastListenerQueryInterval: i.cfg.LastListenerQueryInterval,
		LastListenerQueryCount:    i.llqc(),
		MulticastListeningInt:     i.mali(),
		OtherQuerierPresentInt:    i.oqpi(),
		OtherQuerierRemaining:     rem(&i.oqp),
		NextGeneralQuery:          rem(&i.gq),
		Groups:                    len(i.groups),
		Stats:                     i.stats.snapshot(),
	}
}

// SetQuerierAllowed switches the querier role on or off administratively
// (VRRP6 tracking: only the VRRP Master queries). While off the interface
// sends no queries at all, including pending last-listener queries, but
// keeps processing reports and tracking the other querier. Switching it on
// sends a general query at once (with the startup sequence if no other
// querier is present) so that hosts refresh entries synced from the peer.
func (i *Interface) SetQuerierAllowed(allowed bool) {
	i.mu.Lock()
	defer func() { i.commit(); i.unlock() }()
	if allowed == i.querierAllowed {
		return
	}
	i.querierAllowed = allowed
	if !allowed {
		if i.isQuerier {
			i.log.Info("mld querier role disabled")
			i.querier = netip.Addr{}
		}
		i.isQuerier = false
		i.gq.stop()
		for _, g := range i.groups {
			g.stopRetransmissions()
		}
		return
	}
	if !i.running {
		return
	}
	if i.oqp.running() {
		i.sendGeneralQuery() // refresh only; the elected querier stays
		return
	}
	i.becomeQuerier(i.cfg.StartupQueryCount)
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(dst netip.Addr, icmp []byte) error

// SendMLD implements Sender.
func (f SenderFunc) SendMLD(dst netip.Addr, icmp []byte) error { return f(dst, icmp) }
