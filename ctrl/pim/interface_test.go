package pim

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/clock/clocktest"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// fixedRand draws every delay as frac of its range and every Generation ID
// from genIDs in turn.
type fixedRand struct {
	mu     sync.Mutex
	frac   float64
	genIDs []uint32
}

func (r *fixedRand) Int64N(n int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return min(int64(float64(n)*r.frac), n-1)
}

func (r *fixedRand) Uint32() uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.genIDs[0]
	if len(r.genIDs) > 1 {
		r.genIDs = r.genIDs[1:]
	}
	return g
}

type sent struct {
	at  time.Duration // since t0
	dst netip.Addr
	raw []byte
	msg Message
}

// harness is an Interface on a fake clock that records what it sends and
// reports.
type harness struct {
	t   *testing.T
	clk *clocktest.Fake
	ifc *Interface
	cfg Config

	mu     sync.Mutex
	sent   []sent
	events []Event
	recv   []Received
	// peers receive every message sent, as on a LAN, through the clock.
	peers []*harness
}

func (h *harness) SendPIM(dst netip.Addr, b []byte) error {
	if err := Verify(h.cfg.Address, dst, b); err != nil {
		h.t.Errorf("sent a message with a bad checksum: %v", err)
	}
	m, err := Parse(b)
	if err != nil {
		h.t.Errorf("sent an unparsable message: %v", err)
	}
	h.mu.Lock()
	h.sent = append(h.sent, sent{at: h.clk.Now().Sub(t0), dst: dst, raw: b, msg: m})
	peers := h.peers
	h.mu.Unlock()
	for _, p := range peers {
		h.clk.AfterFunc(0, func() {
			p.ifc.HandlePacket(Packet{Src: h.cfg.Address, Dst: dst, HopLimit: HopLimit, Payload: b})
		})
	}
	return nil
}

func newHarness(t *testing.T, clk *clocktest.Fake, ll netip.Addr, mod func(*Config)) *harness {
	t.Helper()
	if clk == nil {
		clk = clocktest.New(t0)
	}
	h := &harness{t: t, clk: clk}
	cfg := DefaultConfig("eth0", ll)
	cfg.Clock = clk
	cfg.Rand = &fixedRand{frac: 0.5, genIDs: []uint32{0x1111, 0x2222, 0x3333}}
	cfg.Sender = h
	cfg.OnEvent = func(e Event) { h.mu.Lock(); h.events = append(h.events, e); h.mu.Unlock() }
	cfg.OnMessage = func(r Received) { h.mu.Lock(); h.recv = append(h.recv, r); h.mu.Unlock() }
	if mod != nil {
		mod(&cfg)
	}
	ifc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.ifc, h.cfg = ifc, cfg
	return h
}

// hellos returns the Hellos sent so far and forgets them.
func (h *harness) hellos() []sent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []sent
	for _, s := range h.sent {
		if s.msg.Type() == TypeHello {
			out = append(out, s)
		}
	}
	h.sent = nil
	return out
}

func (h *harness) takeEvents() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.events
	h.events = nil
	return e
}

// deliver hands the Interface a message from src as the socket would.
func (h *harness) deliver(src netip.Addr, m Message) DropReason {
	h.t.Helper()
	b, err := Marshal(m, src, AllPIMRouters)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.ifc.HandlePacket(Packet{Src: src, Dst: AllPIMRouters, HopLimit: HopLimit, Payload: b})
}

// hello delivers a Hello from src that must be accepted.
func (h *harness) hello(src netip.Addr, m *Hello) {
	h.t.Helper()
	if r := h.deliver(src, m); r != DropNone {
		h.t.Fatalf("hello from %v dropped: %v", src, r)
	}
}

func helloFrom(hold uint16, prio *uint32, genID uint32) *Hello {
	return &Hello{Holdtime: new(hold), DRPriority: prio, GenerationID: new(genID),
		LANPruneDelay: &LANPruneDelay{PropagationDelay: 500, OverrideInterval: 2500}}
}

func kinds(evs []Event) []string {
	var s []string
	for _, e := range evs {
		x := e.Kind.String()
		switch e.Kind {
		case NeighborDown:
			x += "(" + e.Neighbor.String() + "," + e.Reason.String() + ")"
		case NeighborUp, NeighborRestarted:
			x += "(" + e.Neighbor.String() + ")"
		case DRChanged:
			x += "(" + e.NewDR.String() + ")"
		}
		s = append(s, x)
	}
	return s
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"global address", func(c *Config) { c.Address = glob1 }, "link-local"},
		{"ipv4 address", func(c *Config) { c.Address = netip.MustParseAddr("192.0.2.1") }, "link-local"},
		{"link-local secondary", func(c *Config) { c.SecondaryAddresses = []netip.Addr{llB} }, "secondary address 0"},
		{"sub-second hello", func(c *Config) { c.HelloPeriod = 500 * time.Millisecond }, "hello period"},
		{"holdtime below hello", func(c *Config) { c.Holdtime = 10 * time.Second }, "holdtime"},
		{"fractional holdtime", func(c *Config) { c.Holdtime = 100500 * time.Millisecond }, "holdtime"},
		{"holdtime 65536s", func(c *Config) { c.Holdtime = 65536 * time.Second }, "holdtime"},
		{"propagation delay 40s", func(c *Config) { c.PropagationDelay = 40 * time.Second }, "propagation delay"},
		{"override interval 70s", func(c *Config) { c.OverrideInterval = 70 * time.Second }, "override interval"},
	} {
		cfg := DefaultConfig("eth0", llA)
		tc.mod(&cfg)
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"eth0"`) {
			t.Errorf("%s: New error %v, want one naming eth0 and %q", tc.name, err, tc.want)
		}
	}
	h := newHarness(t, nil, llA, func(c *Config) { c.HelloPeriod = 0; c.Holdtime = 0 })
	if h.ifc.cfg.HelloPeriod != 30*time.Second || h.ifc.cfg.Holdtime != 105*time.Second {
		t.Errorf("defaults: hello %v holdtime %v", h.ifc.cfg.HelloPeriod, h.ifc.cfg.Holdtime)
	}
	h = newHarness(t, nil, llA, func(c *Config) { c.HelloPeriod = 10 * time.Second; c.Holdtime = 0 })
	if h.ifc.cfg.Holdtime != 35*time.Second {
		t.Errorf("holdtime for a 10s hello period: %v, want 3.5 × 10s", h.ifc.cfg.Holdtime)
	}
}

// TestHelloSchedule: the first Hello after rand(0, Triggered_Hello_Delay),
// then one every Hello_Period, with the configured options (RFC 7761
// §4.3.1, §4.9.2).
func TestHelloSchedule(t *testing.T) {
	h := newHarness(t, nil, llA, func(c *Config) {
		c.Rand = &fixedRand{frac: 0.6, genIDs: []uint32{0xcafe}}
		c.SecondaryAddresses = []netip.Addr{glob1}
		c.DRPriority = 7
		c.Tracking = true
	})
	h.ifc.Start()
	h.clk.Advance(3*time.Second - time.Nanosecond)
	if s := h.hellos(); len(s) != 0 {
		t.Fatalf("hello before rand(0,5s) = 3s: %+v", s)
	}
	h.clk.Advance(time.Nanosecond + 95*time.Second)
	s := h.hellos()
	var at []time.Duration
	for _, x := range s {
		at = append(at, x.at)
		if x.dst != AllPIMRouters {
			t.Errorf("hello to %v", x.dst)
		}
	}
	if want := []time.Duration{3 * time.Second, 33 * time.Second, 63 * time.Second, 93 * time.Second}; !slices.Equal(at, want) {
		t.Fatalf("hellos at %v, want %v", at, want)
	}
	want := &Hello{
		Holdtime:      new(uint16(105)),
		LANPruneDelay: &LANPruneDelay{Tracking: true, PropagationDelay: 500, OverrideInterval: 2500},
		DRPriority:    new(uint32(7)),
		GenerationID:  new(uint32(0xcafe)),
		Addresses:     []netip.Addr{glob1},
	}
	for _, x := range s {
		if !reflect.DeepEqual(x.msg, want) {
			t.Fatalf("hello %#v, want %#v", x.msg, want)
		}
	}
	if st := h.ifc.Status(); !st.Running || st.GenerationID != 0xcafe || st.NextHello.Sub(t0) != 123*time.Second || !st.IsDR {
		t.Errorf("status %+v", st)
	}

	// Without the LAN Prune Delay option.
	h = newHarness(t, nil, llA, func(c *Config) { c.SendLANPruneDelay = false })
	h.ifc.Start()
	h.clk.Advance(5 * time.Second)
	if s := h.hellos(); len(s) != 1 || s[0].msg.(*Hello).LANPruneDelay != nil {
		t.Fatalf("hellos %+v", s)
	}
}

// TestFirstHelloRandom: with real randomness the first Hello's delay is
// spread over [0, 5 s].
func TestFirstHelloRandom(t *testing.T) {
	seen := map[time.Duration]bool{}
	for seed := range uint64(40) {
		h := newHarness(t, nil, llA, func(c *Config) { c.Rand = rand.New(rand.NewPCG(seed, 1)) })
		h.ifc.Start()
		h.clk.Advance(TriggeredHelloDelay)
		s := h.hellos()
		if len(s) != 1 || s[0].at > TriggeredHelloDelay {
			t.Fatalf("seed %d: hellos %+v", seed, s)
		}
		seen[s[0].at] = true
	}
	if len(seen) < 30 {
		t.Errorf("only %d distinct first-hello delays in 40 starts", len(seen))
	}
}

// TestTriggeredHello: a new neighbour or a new Generation ID brings a Hello
// within Triggered_Hello_Delay, without moving the periodic one (§4.3.1).
func TestTriggeredHello(t *testing.T) {
	h := newHarness(t, nil, llA, func(c *Config) { c.Rand = &fixedRand{frac: 0, genIDs: []uint32{1}} })
	h.ifc.Start()
	h.clk.Advance(0) // first hello at 0
	h.clk.Advance(10 * time.Second)
	h.hellos()
	h.ifc.cfg.Rand.(*fixedRand).frac = 0.8 // triggered delays: 4 s
	h.hello(llB, helloFrom(105, new(uint32(1)), 42))
	h.hello(llC, helloFrom(105, new(uint32(1)), 43)) // pending trigger kept
	h.clk.Advance(20 * time.Second)                  // to 30 s
	var at []time.Duration
	for _, s := range h.hellos() {
		at = append(at, s.at)
	}
	if want := []time.Duration{14 * time.Second, 30 * time.Second}; !slices.Equal(at, want) {
		t.Fatalf("hellos at %v, want a triggered one at 14s and the periodic one at 30s", at)
	}
	// A restart at 58 s: the periodic Hello at 60 s comes before a 4 s
	// trigger would, so it is the only one.
	h.clk.Advance(28 * time.Second)
	h.hello(llB, helloFrom(105, new(uint32(1)), 99))
	h.clk.Advance(10 * time.Second)
	at = nil
	for _, s := range h.hellos() {
		at = append(at, s.at)
	}
	if want := []time.Duration{60 * time.Second}; !slices.Equal(at, want) {
		t.Fatalf("hellos at %v, want %v", at, want)
	}
	// A refresh from a known neighbour triggers nothing.
	h.clk.Advance(time.Second) // 69 s
	h.hello(llB, helloFrom(105, new(uint32(1)), 99))
	h.clk.Advance(10 * time.Second)
	if s := h.hellos(); len(s) != 0 {
		t.Fatalf("hello after a refresh: %+v", s)
	}
}

// TestNeighborLiveness: the Neighbor Liveness Timer is the advertised
// Holdtime, 105 s without the option, never for 0xffff; Holdtime 0 is a
// goodbye (RFC 7761 §4.3.1, §4.3.2, §4.9.2).
func TestNeighborLiveness(t *testing.T) {
	h := newHarness(t, nil, llA, nil)
	h.ifc.Start()
	h.clk.Advance(5 * time.Second)
	h.takeEvents()
	h.hello(llB, helloFrom(10, new(uint32(1)), 1))
	h.clk.Advance(9 * time.Second)
	h.hello(llB, helloFrom(10, new(uint32(1)), 1)) // refresh at 14 s: expires at 24 s
	h.clk.Advance(10*time.Second - time.Nanosecond)
	if _, ok := h.ifc.Neighbor(llB); !ok {
		t.Fatal("neighbor gone before its refreshed holdtime")
	}
	h.clk.Advance(time.Nanosecond)
	if _, ok := h.ifc.Neighbor(llB); ok {
		t.Fatal("neighbor kept past its holdtime")
	}
	if got, want := kinds(h.takeEvents()), []string{"neighbor-up(fe80::2)", "dr-changed(fe80::2)", "neighbor-down(fe80::2,expired)", "dr-changed(fe80::1)"}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}

	h.hello(llC, &Hello{DRPriority: new(uint32(1))}) // no Holdtime option: 105 s
	n, _ := h.ifc.Neighbor(llC)
	if n.Holdtime != 105*time.Second || n.Forever || n.Expires.Sub(h.clk.Now()) != 105*time.Second {
		t.Fatalf("neighbor without holdtime option: %+v", n)
	}
	h.clk.Advance(105 * time.Second)
	if _, ok := h.ifc.Neighbor(llC); ok {
		t.Fatal("neighbor without holdtime option kept past 105 s")
	}

	h.hello(llB, helloFrom(HoldtimeForever, new(uint32(1)), 1))
	h.clk.Advance(100 * time.Hour)
	if n, ok := h.ifc.Neighbor(llB); !ok || !n.Forever || !n.Expires.IsZero() {
		t.Fatalf("holdtime 0xffff neighbor: %+v %v", n, ok)
	}
	h.takeEvents()
	h.hello(llB, helloFrom(HoldtimeGoodbye, nil, 1))
	if _, ok := h.ifc.Neighbor(llB); ok {
		t.Fatal("neighbor kept after holdtime 0")
	}
	h.hello(llC, helloFrom(HoldtimeGoodbye, nil, 1)) // unknown: nothing happens
	if got, want := kinds(h.takeEvents()), []string{"neighbor-down(fe80::2,goodbye)", "dr-changed(fe80::1)"}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	st := h.ifc.Stats()
	if st.NeighborsUp != 3 || st.NeighborsDown != 3 || st.Rx[TypeHello] != 6 {
		t.Errorf("stats %+v", st)
	}
}

// TestDRElection: highest priority, then highest address; when any
// neighbour lacks the DR Priority option, highest address only (RFC 7761
// §4.3.2).
func TestDRElection(t *testing.T) {
	p := func(v uint32) *uint32 { return &v }
	for _, tc := range []struct {
		name  string
		mine  uint32
		neigh map[netip.Addr]*uint32
		want  netip.Addr
	}{
		{"alone", 1, nil, llA},
		{"higher priority wins", 1, map[netip.Addr]*uint32{llB: p(1), llC: p(5)}, llC},
		{"higher priority beats a higher address", 10, map[netip.Addr]*uint32{llB: p(5), llC: p(5)}, llA},
		{"tie to the highest address", 5, map[netip.Addr]*uint32{llB: p(5), llC: p(5)}, llC},
		{"priority 0 can win a tie", 0, map[netip.Addr]*uint32{llB: p(0)}, llB},
		{"one without the option: addresses only", 100, map[netip.Addr]*uint32{llB: p(200), llC: nil}, llC},
		{"one without the option: my priority is ignored too", 100, map[netip.Addr]*uint32{llB: nil}, llB},
		{"numeric, not textual, address order", 1, map[netip.Addr]*uint32{netip.MustParseAddr("fe80::10"): p(1), netip.MustParseAddr("fe80::9"): p(1)}, netip.MustParseAddr("fe80::10")},
	} {
		h := newHarness(t, nil, llA, func(c *Config) { c.DRPriority = tc.mine })
		h.ifc.Start()
		for a, prio := range tc.neigh {
			h.hello(a, helloFrom(105, prio, 1))
		}
		if dr := h.ifc.DR(); dr != tc.want {
			t.Errorf("%s: DR %v, want %v", tc.name, dr, tc.want)
		}
		if h.ifc.IsDR() != (tc.want == llA) {
			t.Errorf("%s: IsDR %v", tc.name, h.ifc.IsDR())
		}
	}

	// Changes: a neighbour that drops the option, our own priority, the DR
	// leaving.
	h := newHarness(t, nil, llA, func(c *Config) { c.DRPriority = 10 })
	h.ifc.Start()
	h.hello(llB, helloFrom(105, new(uint32(5)), 1))
	h.hello(llC, helloFrom(105, new(uint32(1)), 1))
	h.hello(llB, helloFrom(105, nil, 1)) // llB drops the option: llC has the highest address
	h.hello(llB, helloFrom(105, new(uint32(20)), 1))
	h.ifc.SetDRPriority(30)
	h.hello(llA.Next().Next().Next(), helloFrom(105, new(uint32(30)), 1)) // fe80::4, same priority, higher address
	h.hello(netip.MustParseAddr("fe80::4"), helloFrom(HoldtimeGoodbye, nil, 1))
	var drs []string
	for _, e := range h.takeEvents() {
		if e.Kind == DRChanged {
			drs = append(drs, e.NewDR.String()+map[bool]string{true: "*", false: ""}[e.IsDR])
		}
	}
	if want := []string{"fe80::1*", "fe80::3", "fe80::2", "fe80::1*", "fe80::4", "fe80::1*"}; !slices.Equal(drs, want) {
		t.Fatalf("DR changes %v, want %v", drs, want)
	}
	if st := h.ifc.Stats(); st.DRChanges != 6 {
		t.Errorf("DRChanges %d", st.DRChanges)
	}
}

// TestGenerationIDChange: a Hello with a new Generation ID resets what is
// known of the neighbour and is reported; the same ID, or one appearing
// where there was none, is a plain refresh (RFC 7761 §4.3.1).
func TestGenerationIDChange(t *testing.T) {
	h := newHarness(t, nil, llA, nil)
	h.ifc.Start()
	first := &Hello{Holdtime: new(uint16(105)), DRPriority: new(uint32(3)), GenerationID: new(uint32(1)),
		LANPruneDelay: &LANPruneDelay{PropagationDelay: 900, OverrideInterval: 3000}, Addresses: []netip.Addr{glob1}}
	h.hello(llB, first)
	h.clk.Advance(20 * time.Second)
	h.hello(llB, first)
	n, _ := h.ifc.Neighbor(llB)
	if !n.Since.Equal(t0) || len(n.Secondary) != 1 {
		t.Fatalf("neighbor after a refresh: %+v", n)
	}
	h.takeEvents()
	h.clk.Advance(10 * time.Second)
	h.hello(llB, &Hello{Holdtime: new(uint16(105)), GenerationID: new(uint32(2))})
	n, ok := h.ifc.Neighbor(llB)
	if !ok || *n.GenerationID != 2 || n.DRPriority != nil || n.LANPruneDelay != nil || n.Secondary != nil || n.Since.Sub(t0) != 30*time.Second {
		t.Fatalf("neighbor after a restart: %+v", n)
	}
	if _, ok := h.ifc.Neighbor(glob1); ok {
		t.Error("the old incarnation's secondary address still finds the neighbor")
	}
	evs := h.takeEvents()
	if got := kinds(evs); !slices.Equal(got, []string{"neighbor-restarted(fe80::2)"}) {
		t.Fatalf("events %v", got)
	}
	if evs[0].Interface != "eth0" || evs[0].Time.Sub(t0) != 30*time.Second {
		t.Errorf("event %+v", evs[0])
	}
	h.hello(llC, &Hello{Holdtime: new(uint16(105))})
	h.hello(llC, &Hello{Holdtime: new(uint16(105)), GenerationID: new(uint32(5))})
	for _, e := range h.takeEvents() {
		if e.Kind == NeighborRestarted {
			t.Errorf("restart reported for a first Generation ID: %+v", e)
		}
	}
	if st := h.ifc.Stats(); st.NeighborRestarts != 1 {
		t.Errorf("NeighborRestarts %d", st.NeighborRestarts)
	}
}

// TestLANPruneDelay: Effective_Propagation_Delay, Effective_Override_Interval,
// Suppression_Enabled and the timers drawn from them (RFC 7761 §4.3.3,
// §4.11).
func TestLANPruneDelay(t *testing.T) {
	lpd := func(tr bool, pd, oi uint16) *Hello {
		return &Hello{Holdtime: new(uint16(105)), DRPriority: new(uint32(1)), GenerationID: new(uint32(1)),
			LANPruneDelay: &LANPruneDelay{Tracking: tr, PropagationDelay: pd, OverrideInterval: oi}}
	}
	type want struct {
		enabled  bool
		prop, ov time.Duration
		suppr    bool
	}
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		tracking bool
		send     bool
		neigh    []*Hello
		want     want
	}{
		{"alone", false, true, nil, want{true, 500 * ms, 2500 * ms, true}},
		{"largest values win", false, true, []*Hello{lpd(false, 800, 1000), lpd(false, 100, 4000)}, want{true, 800 * ms, 4000 * ms, true}},
		{"ours is the largest", false, true, []*Hello{lpd(false, 10, 20)}, want{true, 500 * ms, 2500 * ms, true}},
		{"one without the option: defaults", false, true, []*Hello{lpd(true, 800, 9000), {Holdtime: new(uint16(105))}}, want{false, 500 * ms, 2500 * ms, true}},
		{"we do not send it: defaults", true, false, []*Hello{lpd(true, 800, 9000)}, want{false, 500 * ms, 2500 * ms, true}},
		{"everyone tracks: no suppression", true, true, []*Hello{lpd(true, 500, 2500), lpd(true, 500, 2500)}, want{true, 500 * ms, 2500 * ms, false}},
		{"one neighbour does not track", true, true, []*Hello{lpd(true, 500, 2500), lpd(false, 500, 2500)}, want{true, 500 * ms, 2500 * ms, true}},
		{"we do not track", false, true, []*Hello{lpd(true, 500, 2500)}, want{true, 500 * ms, 2500 * ms, true}},
	} {
		h := newHarness(t, nil, llA, func(c *Config) { c.Tracking = tc.tracking; c.SendLANPruneDelay = tc.send })
		h.ifc.Start()
		for j, hl := range tc.neigh {
			h.hello(netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(10 + j)}), hl)
		}
		got := want{h.ifc.LANDelayEnabled(), h.ifc.EffectivePropagationDelay(), h.ifc.EffectiveOverrideInterval(), h.ifc.SuppressionEnabled()}
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
		if jp := h.ifc.JPOverrideInterval(); jp != tc.want.prop+tc.want.ov {
			t.Errorf("%s: J/P_Override_Interval %v", tc.name, jp)
		}
		st := h.ifc.Status()
		if st.LANDelayEnabled != got.enabled || st.EffectivePropagationDelay != got.prop || st.EffectiveOverrideInterval != got.ov || st.SuppressionEnabled != got.suppr {
			t.Errorf("%s: status %+v", tc.name, st)
		}
	}

	// The random timers stay in their ranges.
	h := newHarness(t, nil, llA, func(c *Config) { c.Rand = rand.New(rand.NewPCG(7, 7)) })
	h.ifc.Start()
	h.hello(llB, lpd(false, 500, 4000))
	for range 1000 {
		if d := h.ifc.TOverride(); d < 0 || d > 4*time.Second {
			t.Fatalf("t_override %v outside [0, 4s]", d)
		}
		if d := h.ifc.TSuppressed(60 * time.Second); d < 66*time.Second || d > 84*time.Second {
			t.Fatalf("t_suppressed %v outside [66s, 84s]", d)
		}
	}
	h = newHarness(t, nil, llA, func(c *Config) { c.Tracking = true })
	h.ifc.Start()
	h.hello(llB, lpd(true, 500, 2500))
	if d := h.ifc.TSuppressed(60 * time.Second); d != 0 {
		t.Errorf("t_suppressed %v with suppression disabled, want 0", d)
	}
}

// TestSecondaryAddresses: a neighbour is found by its secondary addresses;
// one claimed by a later Hello of another neighbour moves to it (§4.3.4).
func TestSecondaryAddresses(t *testing.T) {
	h := newHarness(t, nil, llA, nil)
	h.ifc.Start()
	g2 := netip.MustParseAddr("2001:db8:a::2")
	h.hello(llB, &Hello{Holdtime: new(uint16(105)), Addresses: []netip.Addr{glob1, g2, glob1, llB}})
	n, ok := h.ifc.Neighbor(g2)
	if !ok || n.Address != llB || !slices.Equal(n.Secondary, []netip.Addr{glob1, g2}) {
		t.Fatalf("Neighbor(%v) = %+v, %v", g2, n, ok)
	}
	h.hello(llC, &Hello{Holdtime: new(uint16(105)), Addresses: []netip.Addr{g2}})
	if n, _ := h.ifc.Neighbor(g2); n.Address != llC {
		t.Errorf("secondary address claimed later still finds %v", n.Address)
	}
	if n, _ := h.ifc.Neighbor(llB); !slices.Equal(n.Secondary, []netip.Addr{glob1}) {
		t.Errorf("llB secondary %v", n.Secondary)
	}
	if _, ok := h.ifc.Neighbor(netip.MustParseAddr("fe80::2%eth0")); !ok {
		t.Error("a zoned address does not find the neighbor")
	}
}

// TestHostileInput: every bad packet is dropped and counted under its
// reason, with no state change and nothing reported.
func TestHostileInput(t *testing.T) {
	h := newHarness(t, nil, llA, func(c *Config) { c.MaxNeighbors = 3 })
	h.ifc.Start()
	h.hello(llB, helloFrom(105, new(uint32(1)), 1))
	h.clk.Advance(time.Minute)
	h.hellos()
	h.takeEvents()
	before := h.ifc.Neighbors()

	good, err := Marshal(helloFrom(105, new(uint32(50)), 2), llC, AllPIMRouters)
	if err != nil {
		t.Fatal(err)
	}
	jp := &JoinPrune{UpstreamNeighbor: llA, Holdtime: 210, Groups: []GroupSet{{Group: SingleGroup(grp1), Joins: []Source{StarG(rp)}}}}
	jpFromC, _ := Marshal(jp, llC, AllPIMRouters)
	badCk := append([]byte(nil), good...)
	badCk[3] ^= 1
	withCk := func(src netip.Addr, b []byte) []byte {
		b = append([]byte(nil), b...)
		c := Checksum(src, AllPIMRouters, b)
		b[2], b[3] = byte(c>>8), byte(c)
		return b
	}
	self, _ := Marshal(helloFrom(105, new(uint32(1)), 0x1111), llA, AllPIMRouters)
	regMcast, _ := Marshal(&Register{Packet: innerPacket(src1, grp1, nil)}, dr, AllPIMRouters)
	regLL, _ := Marshal(&Register{Packet: innerPacket(src1, grp1, nil)}, llC, rp)
	bootstrap := withCk(llC, mustHex(t, "2400 0000 0000 0000"))
	for _, tc := range []struct {
		name string
		p    Packet
		want DropReason
	}{
		{"bad checksum", Packet{Src: llC, Dst: AllPIMRouters, HopLimit: 1, Payload: badCk}, DropBadChecksum},
		{"checksum for another source", Packet{Src: llB, Dst: AllPIMRouters, HopLimit: 1, Payload: good}, DropBadChecksum},
		{"hop limit 255", Packet{Src: llC, Dst: AllPIMRouters, HopLimit: 255, Payload: good}, DropBadHopLimit},
		{"hop limit 0", Packet{Src: llC, Dst: AllPIMRouters, HopLimit: 0, Payload: good}, DropBadHopLimit},
		{"global source", Packet{Src: glob1, Dst: AllPIMRouters, HopLimit: 1, Payload: withCk(glob1, good)}, DropBadSource},
		{"ipv4 source", Packet{Src: netip.MustParseAddr("192.0.2.1"), Dst: AllPIMRouters, HopLimit: 1, Payload: good}, DropBadSource},
		{"no destination", Packet{Src: llC, HopLimit: 1, Payload: good}, DropBadDestination},
		{"unicast destination", Packet{Src: llC, Dst: llA, HopLimit: 1, Payload: func() []byte { b, _ := Marshal(helloFrom(105, nil, 2), llC, llA); return b }()}, DropBadDestination},
		{"our own hello", Packet{Src: llA, Dst: AllPIMRouters, HopLimit: 1, Payload: self}, DropLoopback},
		{"join/prune from a non-neighbor", Packet{Src: llC, Dst: AllPIMRouters, HopLimit: 1, Payload: jpFromC}, DropNotNeighbor},
		{"truncated header", Packet{Src: llC, Dst: AllPIMRouters, HopLimit: 1, Payload: []byte{0x20, 0}}, DropTruncated},
		{"truncated option", Packet{Src: llC, Dst: AllPIMRouters, HopLimit: 1, Payload: withCk(llC, good[:len(good)-1])}, DropTruncated},
		{"bad option length", Packet{Src: llC, Dst: AllPIMRouters, HopLimit: 1, Payload: withCk(llC, mustHex(t, "2000 0000 0001 0001 69"))}, DropMalformed},
		{"version 1", Packet{Src: llC, Dst: AllPIMRouters, HopLimit: 1, Payload: withCk(llC, mustHex(t, "1000 0000"))}, DropBadVersion},
		{"bootstrap", Packet{Src: llC, Dst: AllPIMRouters, HopLimit: 1, Payload: bootstrap}, DropUnsupportedType},
		{"register to a multicast address", Packet{Src: dr, Dst: AllPIMRouters, HopLimit: 64, Payload: regMcast}, DropBadDestination},
		{"register from a link-local address", Packet{Src: llC, Dst: rp, HopLimit: 64, Payload: regLL}, DropBadSource},
	} {
		if got := h.ifc.HandlePacket(tc.p); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// A Hello flood from forged sources: the table stops at MaxNeighbors.
	for j := range 100 {
		src := netip.AddrFrom16([16]byte{0xfe, 0x80, 14: 1, 15: byte(j)})
		h.deliver(src, helloFrom(105, new(uint32(1)), uint32(j)))
	}
	if n := len(h.ifc.Neighbors()); n != 3 {
		t.Errorf("%d neighbors after a flood, want MaxNeighbors 3", n)
	}
	st := h.ifc.Stats()
	if st.Drops[DropTooManyNeighbors] != 98 {
		t.Errorf("too-many-neighbors drops %d, want 98", st.Drops[DropTooManyNeighbors])
	}
	for r, n := range map[DropReason]uint64{DropBadChecksum: 2, DropBadHopLimit: 2, DropBadSource: 3, DropBadDestination: 3,
		DropLoopback: 1, DropNotNeighbor: 1, DropTruncated: 2, DropMalformed: 1, DropBadVersion: 1, DropUnsupportedType: 1} {
		if st.Drops[r] != n {
			t.Errorf("drops[%v] = %d, want %d", r, st.Drops[r], n)
		}
	}
	if st.Rx[TypeJoinPrune] != 0 || st.Rx[TypeRegister] != 0 {
		t.Errorf("rx counted for dropped messages: %v", st.Rx)
	}
	after := h.ifc.Neighbors()
	if !reflect.DeepEqual(after[0], before[0]) {
		t.Errorf("neighbor changed by dropped packets:\n%+v\n%+v", before[0], after[0])
	}
	if len(h.recv) != 0 {
		t.Errorf("dropped messages delivered: %+v", h.recv)
	}
	for _, e := range h.takeEvents() {
		if e.Kind != NeighborUp && e.Kind != DRChanged {
			t.Errorf("event from hostile input: %+v", e)
		}
	}
	// Stopped: everything is dropped.
	h.ifc.Stop()
	if r := h.ifc.HandlePacket(Packet{Src: llC, Dst: AllPIMRouters, HopLimit: 1, Payload: good}); r != DropNotRunning {
		t.Errorf("stopped: %v", r)
	}
	if got := len(DropReasons()); got != int(numDropReasons)-1 {
		t.Errorf("DropReasons lists %d", got)
	}
	for _, r := range DropReasons() {
		if strings.HasPrefix(r.String(), "drop-") {
			t.Errorf("drop reason %d has no name", r)
		}
	}
}

// TestMessagesDelivered: Join/Prune and Assert from a neighbour, Register
// and Register-Stop between unicast addresses, reach OnMessage.
func TestMessagesDelivered(t *testing.T) {
	h := newHarness(t, nil, llA, nil)
	h.ifc.Start()
	h.hello(llB, helloFrom(105, new(uint32(1)), 1))
	jp := &JoinPrune{UpstreamNeighbor: llA, Holdtime: 210, Groups: []GroupSet{{Group: SingleGroup(grp1), Joins: []Source{StarG(rp)}}}}
	as := &Assert{Group: SingleGroup(grp1), Source: src1, MetricPreference: 1, Metric: 1}
	if r := h.deliver(llB, jp); r != DropNone {
		t.Fatal(r)
	}
	if r := h.deliver(llB.WithZone("eth0"), as); r != DropNone {
		t.Fatal(r)
	}
	reg := &Register{Packet: innerPacket(src1, grp1, []byte("x"))}
	b, _ := Marshal(reg, dr, rp)
	if r := h.ifc.HandlePacket(Packet{Src: dr, Dst: rp, HopLimit: 63, Payload: b}); r != DropNone {
		t.Fatal(r)
	}
	stop := &RegisterStop{Group: SingleGroup(grp1), Source: src1}
	b, _ = Marshal(stop, rp, dr)
	if r := h.ifc.HandlePacket(Packet{Src: rp, Dst: dr, HopLimit: 60, Payload: b}); r != DropNone {
		t.Fatal(r)
	}
	want := []Received{
		{Interface: "eth0", Src: llB, Dst: AllPIMRouters, Message: jp},
		{Interface: "eth0", Src: llB, Dst: AllPIMRouters, Message: as},
		{Interface: "eth0", Src: dr, Dst: rp, Message: reg},
		{Interface: "eth0", Src: rp, Dst: dr, Message: stop},
	}
	if !reflect.DeepEqual(h.recv, want) {
		t.Fatalf("received:\n%+v\nwant\n%+v", h.recv, want)
	}
	st := h.ifc.Stats()
	if st.Rx[TypeJoinPrune] != 1 || st.Rx[TypeAssert] != 1 || st.Rx[TypeRegister] != 1 || st.Rx[TypeRegisterStop] != 1 || st.Rx[TypeHello] != 1 {
		t.Errorf("rx %v", st.Rx)
	}
}

// TestStopStart: Stop says goodbye (Holdtime 0), forgets the neighbours
// and sends nothing more; Start again picks a new Generation ID.
func TestStopStart(t *testing.T) {
	h := newHarness(t, nil, llA, nil)
	h.ifc.Start()
	h.clk.Advance(time.Minute)
	h.hello(llB, helloFrom(105, new(uint32(9)), 1))
	h.hellos()
	h.takeEvents()
	h.ifc.Stop()
	s := h.hellos()
	if len(s) != 1 || *s[0].msg.(*Hello).Holdtime != 0 || *s[0].msg.(*Hello).GenerationID != 0x1111 {
		t.Fatalf("goodbye %+v", s)
	}
	evs := h.takeEvents()
	if got, want := kinds(evs), []string{"neighbor-down(fe80::2,stopped)", "dr-changed(invalid IP)"}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if evs[1].OldDR != llB || evs[1].IsDR {
		t.Errorf("DR event %+v", evs[1])
	}
	h.clk.Advance(time.Hour)
	if s := h.hellos(); len(s) != 0 {
		t.Fatalf("hellos while stopped: %d", len(s))
	}
	if h.ifc.IsDR() || len(h.ifc.Neighbors()) != 0 || h.ifc.Status().Running {
		t.Error("state left after Stop")
	}
	h.ifc.Stop() // twice: nothing
	if s := h.hellos(); len(s) != 0 {
		t.Fatal("second Stop sent a hello")
	}
	h.ifc.Start()
	h.clk.Advance(5 * time.Second)
	if s := h.hellos(); len(s) != 1 || *s[0].msg.(*Hello).GenerationID != 0x2222 {
		t.Fatalf("hello after restart %+v", s)
	}
	if !h.ifc.IsDR() {
		t.Error("not DR alone after restart")
	}
}

// TestEnsureHelloSent: before the first Join/Prune a Hello goes out at
// once, unless one already has (RFC 7761 §4.3.1).
func TestEnsureHelloSent(t *testing.T) {
	h := newHarness(t, nil, llA, nil)
	h.ifc.EnsureHelloSent() // stopped: nothing
	h.ifc.Start()
	h.ifc.EnsureHelloSent()
	if s := h.hellos(); len(s) != 1 || s[0].at != 0 {
		t.Fatalf("hellos %+v", s)
	}
	h.ifc.EnsureHelloSent()
	if s := h.hellos(); len(s) != 0 {
		t.Fatalf("second EnsureHelloSent sent %d", len(s))
	}
	h.clk.Advance(5 * time.Second) // the scheduled first Hello still comes
	if s := h.hellos(); len(s) != 1 {
		t.Fatalf("scheduled hello: %d", len(s))
	}
}

// TestLAN: three Interfaces on one fake LAN find each other, agree on the
// DR, and notice when one leaves or dies.
func TestLAN(t *testing.T) {
	clk := clocktest.New(t0)
	prio := map[netip.Addr]uint32{llA: 10, llB: 20, llC: 5}
	var hs []*harness
	for j, ll := range []netip.Addr{llA, llB, llC} {
		hs = append(hs, newHarness(t, clk, ll, func(c *Config) {
			c.DRPriority = prio[ll]
			c.Rand = rand.New(rand.NewPCG(uint64(j), 3))
		}))
	}
	for _, h := range hs {
		for _, o := range hs {
			if o != h {
				h.peers = append(h.peers, o)
			}
		}
	}
	for _, h := range hs {
		h.ifc.Start()
	}
	clk.Advance(10 * time.Second) // first and triggered Hellos
	for _, h := range hs {
		if n := len(h.ifc.Neighbors()); n != 2 {
			t.Fatalf("%v: %d neighbors", h.cfg.Address, n)
		}
		if dr := h.ifc.DR(); dr != llB {
			t.Fatalf("%v: DR %v, want %v", h.cfg.Address, dr, llB)
		}
	}
	// B stops: A and C hear its goodbye at once and elect A.
	hs[1].ifc.Stop()
	clk.Advance(0)
	for _, h := range []*harness{hs[0], hs[2]} {
		if dr := h.ifc.DR(); dr != llA {
			t.Fatalf("%v after B's goodbye: DR %v", h.cfg.Address, dr)
		}
	}
	// C dies silently (unplugged): A times it out after its holdtime.
	hs[0].peers = nil
	hs[2].peers = nil
	c, _ := hs[0].ifc.Neighbor(llC)
	if c.Holdtime != 105*time.Second {
		t.Fatalf("C's holdtime %v", c.Holdtime)
	}
	clk.Advance(c.Expires.Sub(clk.Now()) - time.Nanosecond)
	if _, ok := hs[0].ifc.Neighbor(llC); !ok {
		t.Fatal("C timed out early")
	}
	clk.Advance(time.Nanosecond)
	if _, ok := hs[0].ifc.Neighbor(llC); ok {
		t.Fatal("C not timed out 105 s after its last hello")
	}
	var downs []string
	for _, e := range hs[0].takeEvents() {
		if e.Kind == NeighborDown {
			downs = append(downs, e.Neighbor.String()+" "+e.Reason.String())
		}
	}
	if want := []string{"fe80::2 goodbye", "fe80::3 expired"}; !slices.Equal(downs, want) {
		t.Errorf("A saw %v, want %v", downs, want)
	}
}

// TestConcurrentUse runs packets, timers and readers at once under the
// race detector.
func TestConcurrentUse(t *testing.T) {
	h := newHarness(t, nil, llA, nil)
	h.ifc.Start()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(g + 2)})
			for k := range 200 {
				h.deliver(src, helloFrom(uint16(10+k%5), new(uint32(k%3)), uint32(k/50)))
				_ = h.ifc.Status()
				_ = h.ifc.TOverride()
			}
		}()
	}
	for range 50 {
		h.clk.Advance(time.Second)
	}
	wg.Wait()
	h.clk.Advance(time.Minute)
	if n := len(h.ifc.Neighbors()); n != 0 {
		t.Errorf("%d neighbors a minute after the last hello", n)
	}
	if !h.ifc.IsDR() {
		t.Error("not DR alone")
	}
}

// interfaceFrames are the Hellos an Interface with secondary addresses and
// the T bit sends over a minute and at Stop, as raw frames for tshark.
func interfaceFrames(t *testing.T) []wireFrame {
	h := newHarness(t, nil, llA, func(c *Config) {
		c.SecondaryAddresses = []netip.Addr{glob1}
		c.Tracking = true
		c.DRPriority = 200
	})
	h.ifc.Start()
	h.clk.Advance(time.Minute)
	h.ifc.Stop()
	var fs []wireFrame
	for j, s := range h.hellos() {
		fs = append(fs, wireFrame{name: "interface-hello-" + string(rune('a'+j)), m: s.msg, src: llA, dst: s.dst, hopLimit: HopLimit, pim: s.raw})
	}
	if len(fs) != 3 {
		t.Fatalf("interface sent %d hellos, want 2 and a goodbye", len(fs))
	}
	return fs
}
