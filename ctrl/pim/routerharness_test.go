package pim

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/clock/clocktest"
)

// A network of Routers on one fake clock: each tlan is a link whose
// ports receive, through the clock (AfterFunc 0), every message the other
// ports send, as ff02::d does on a LAN.

var (
	testRP  = netip.MustParseAddr("2001:db8:ff::1")
	testS   = netip.MustParseAddr("2001:db8:5::10")
	testS2  = netip.MustParseAddr("2001:db8:5::20")
	testG   = netip.MustParseAddr("ff1e::1234")
	testG2  = netip.MustParseAddr("ff1e::5678")
	testSSM = netip.MustParseAddr("ff3e::1234")
	rpPfx   = netip.MustParsePrefix("2001:db8:ff::/48")
	srcPfx  = netip.MustParsePrefix("2001:db8:5::/48")
)

type tnet struct {
	t   *testing.T
	clk *clocktest.Fake
}

type tlan struct {
	n     *tnet
	name  string
	mu    sync.Mutex
	ports []*tport
}

type tport struct {
	rt   *trouter
	ifx  int
	ifc  *Interface
	lan  *tlan
	addr netip.Addr
}

type tsent struct {
	at  time.Duration
	ifx int
	msg Message
}

type trouter struct {
	n    *tnet
	name string
	r    *Router
	rpf  *StaticRPF

	mu      sync.Mutex
	ports   map[int]*tport
	sent    []tsent
	updates []RouteUpdate
	drops   []DropReason
}

func newNet(t *testing.T) *tnet { return &tnet{t: t, clk: clocktest.New(t0)} }

func (n *tnet) lan(name string) *tlan { return &tlan{n: n, name: name} }

func (n *tnet) run(d time.Duration) { n.clk.Advance(d) }

func (n *tnet) router(name string, mod func(*RouterConfig)) *trouter {
	n.t.Helper()
	rt := &trouter{n: n, name: name, rpf: &StaticRPF{}, ports: map[int]*tport{}}
	rps, err := NewRPSet([]StaticRP{{Address: testRP}}, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	cfg := RouterConfig{
		RPs:   rps,
		RPF:   rt.rpf,
		Clock: n.clk,
		Rand:  &fixedRand{frac: 0.5, genIDs: []uint32{1}},
		OnRoutes: func(us []RouteUpdate) {
			rt.mu.Lock()
			rt.updates = append(rt.updates, us...)
			rt.mu.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := NewRouter(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	rt.r = r
	return rt
}

// attach adds interface ifx with link-local ll on lan l and starts it.
func (rt *trouter) attach(ifx int, l *tlan, ll netip.Addr, opt IfaceOptions, mod func(*Config)) *tport {
	t := rt.n.t
	t.Helper()
	p := &tport{rt: rt, ifx: ifx, lan: l, addr: ll}
	cfg := DefaultConfig(fmt.Sprintf("%s-if%d", rt.name, ifx), ll)
	cfg.Clock = rt.n.clk
	cfg.Rand = &fixedRand{frac: 0.5, genIDs: []uint32{uint32(ifx)<<16 | uint32(ll.As16()[15])}}
	cfg.Sender = p
	cfg.OnEvent = rt.r.HandleEvent
	cfg.OnMessage = rt.r.HandleMessage
	if mod != nil {
		mod(&cfg)
	}
	ifc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.ifc = ifc
	if err := rt.r.AddInterface(ifx, ifc, opt); err != nil {
		t.Fatal(err)
	}
	rt.mu.Lock()
	rt.ports[ifx] = p
	rt.mu.Unlock()
	l.mu.Lock()
	l.ports = append(l.ports, p)
	l.mu.Unlock()
	ifc.Start()
	return p
}

func (p *tport) SendPIM(dst netip.Addr, b []byte) error {
	t := p.rt.n.t
	if err := Verify(p.addr, dst, b); err != nil {
		t.Errorf("%s sent a bad checksum: %v", p.ifc.Name(), err)
	}
	m, err := Parse(b)
	if err != nil {
		t.Errorf("%s sent an unparsable message: %v", p.ifc.Name(), err)
		return nil
	}
	if len(b)+ipv6HeaderLen > DefaultMTU {
		t.Errorf("%s sent %d octets: beyond the MTU", p.ifc.Name(), len(b))
	}
	rt := p.rt
	rt.mu.Lock()
	rt.sent = append(rt.sent, tsent{at: rt.n.clk.Now().Sub(t0), ifx: p.ifx, msg: m})
	rt.mu.Unlock()
	p.lan.mu.Lock()
	peers := slices.Clone(p.lan.ports)
	p.lan.mu.Unlock()
	for _, q := range peers {
		if q == p {
			continue
		}
		rt.n.clk.AfterFunc(0, func() {
			d := q.ifc.HandlePacket(Packet{Src: p.addr, Dst: dst, HopLimit: HopLimit, Payload: b})
			if d != DropNone {
				q.rt.mu.Lock()
				q.rt.drops = append(q.rt.drops, d)
				q.rt.mu.Unlock()
			}
		})
	}
	return nil
}

// inject hands port p a message from src as the socket would.
func (p *tport) inject(src netip.Addr, m Message) DropReason {
	p.rt.n.t.Helper()
	b, err := Marshal(m, src, AllPIMRouters)
	if err != nil {
		p.rt.n.t.Fatal(err)
	}
	return p.ifc.HandlePacket(Packet{Src: src, Dst: AllPIMRouters, HopLimit: HopLimit, Payload: b})
}

// fakeNeighbor makes src a neighbour of p that never expires.
func (p *tport) fakeNeighbor(src netip.Addr, prio uint32, genID uint32) {
	p.rt.n.t.Helper()
	h := &Hello{Holdtime: new(uint16(HoldtimeForever)), DRPriority: new(prio), GenerationID: new(genID),
		LANPruneDelay: &LANPruneDelay{PropagationDelay: 500, OverrideInterval: 2500}}
	if d := p.inject(src, h); d != DropNone {
		p.rt.n.t.Fatalf("hello from %v dropped: %v", src, d)
	}
}

// jps returns the Join/Prunes sent so far (and forgets all sent messages).
func (rt *trouter) take() []tsent {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	s := rt.sent
	rt.sent = nil
	return s
}

// jpEntries flattens sent Join/Prunes into "iface up G join|prune kind S" strings.
func jpEntries(ss []tsent) []string {
	var out []string
	for _, s := range ss {
		jp, ok := s.msg.(*JoinPrune)
		if !ok {
			continue
		}
		for _, g := range jp.Groups {
			for _, x := range g.Joins {
				out = append(out, fmt.Sprintf("if%d %v %v join %v %v", s.ifx, jp.UpstreamNeighbor, g.Group.Addr, x.Kind(), x.Addr))
			}
			for _, x := range g.Prunes {
				out = append(out, fmt.Sprintf("if%d %v %v prune %v %v", s.ifx, jp.UpstreamNeighbor, g.Group.Addr, x.Kind(), x.Addr))
			}
		}
	}
	return out
}

func asserts(ss []tsent) []*Assert {
	var out []*Assert
	for _, s := range ss {
		if a, ok := s.msg.(*Assert); ok {
			out = append(out, a)
		}
	}
	return out
}

func jpTo(up netip.Addr, hold uint16, sets ...GroupSet) *JoinPrune {
	return &JoinPrune{UpstreamNeighbor: up, Holdtime: hold, Groups: sets}
}

func gset(g netip.Addr, joins, prunes []Source) GroupSet {
	return GroupSet{Group: SingleGroup(g), Joins: joins, Prunes: prunes}
}

// route finds the (S,G) route (s invalid: (*,G)).
func (rt *trouter) route(s, g netip.Addr) (Route, bool) {
	for _, r := range rt.r.Routes() {
		if r.Source == s && r.Group == g {
			return r, true
		}
	}
	return Route{}, false
}

func (rt *trouter) oifs(s, g netip.Addr) []int {
	r, _ := rt.route(s, g)
	var out []int
	for _, o := range r.OIfs {
		out = append(out, o.Ifindex)
	}
	return out
}

// dsOf reads a downstream state: kind KindStarG, KindSG or KindSGRpt.
func (rt *trouter) dsOf(kind EntryKind, s, g netip.Addr, ifx int) dsState {
	rt.r.mu.Lock()
	defer rt.r.mu.Unlock()
	gs, ok := rt.r.groups[g]
	if !ok {
		return dsNoInfo
	}
	var m map[int]*downstream
	switch kind {
	case KindStarG:
		if gs.wc == nil {
			return dsNoInfo
		}
		m = gs.wc.down
	default:
		e, ok := gs.src[s]
		if !ok {
			return dsNoInfo
		}
		m = e.down
		if kind == KindSGRpt {
			m = e.rptDown
		}
	}
	if d, ok := m[ifx]; ok {
		return d.state
	}
	return dsNoInfo
}

func (rt *trouter) joined(s, g netip.Addr) bool {
	r, ok := rt.route(s, g)
	return ok && r.Joined
}
