package bfd

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/clock/clocktest"
)

var t0 = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

func newFakeClock() *clocktest.Fake { return clocktest.New(t0) }

// sent is one packet a session handed to its Sender.
type sent struct {
	at time.Time
	p  Packet
}

// end is one system in a test: a Demux with one session, the session's
// Sender and Observer. Its packets reach the other end's Demux through
// the fake clock after latency, never while the sending session's lock is
// held.
type end struct {
	t       *testing.T
	clk     *clocktest.Fake
	demux   *Demux
	s       *Session
	iface   string
	addr    netip.Addr
	peer    *end
	latency time.Duration

	mu      sync.Mutex
	sent    []sent
	changes []StateChange
	// cut drops everything sent; drop drops the packets it returns true
	// for.
	cut  bool
	drop func(Packet) bool
}

func (e *end) Send(b []byte) error {
	var p Packet
	if err := Parse(b, &p); err != nil {
		e.t.Errorf("%s sent a bad packet: %v", e.iface, err)
		return nil
	}
	e.mu.Lock()
	e.sent = append(e.sent, sent{e.clk.Now(), p})
	lost := e.cut || (e.drop != nil && e.drop(p))
	e.mu.Unlock()
	if e.peer == nil || lost {
		return nil
	}
	payload := append([]byte(nil), b...)
	to := e.peer
	e.clk.AfterFunc(e.latency, func() {
		to.demux.HandlePacket(Received{Src: e.addr, Dst: to.addr, SrcPort: 49152, Interface: to.iface, HopLimit: HopLimit, Payload: payload})
	})
	return nil
}

func (e *end) OnStateChange(c StateChange) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.changes = append(e.changes, c)
}

func (e *end) setCut(cut bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cut = cut
}

func (e *end) setDrop(f func(Packet) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.drop = f
}

// sentSince returns the packets sent at or after t.
func (e *end) sentSince(t time.Time) []sent {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []sent
	for _, s := range e.sent {
		if !s.at.Before(t) {
			out = append(out, s)
		}
	}
	return out
}

func (e *end) lastSent() sent {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.sent) == 0 {
		e.t.Fatal("nothing sent")
	}
	return e.sent[len(e.sent)-1]
}

func (e *end) stateChanges() []StateChange {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]StateChange(nil), e.changes...)
}

func testCfg(name, iface, peer string, tx, rx time.Duration, mult uint8) Config {
	return Config{Name: name, Interface: iface, Peer: netip.MustParseAddr(peer), DesiredMinTx: tx, RequiredMinRx: rx, DetectMult: mult}
}

// newEnd makes a system with one session (not started). The session's
// jitter comes from a fixed seed, so runs repeat.
func newEnd(t *testing.T, clk *clocktest.Fake, iface, addr string, cfg Config) *end {
	t.Helper()
	e := &end{t: t, clk: clk, demux: NewDemux(nil), iface: iface, addr: netip.MustParseAddr(addr)}
	e.newSession(cfg)
	return e
}

// newSession replaces the end's session by a new one (a restart of the
// system: a new discriminator).
func (e *end) newSession(cfg Config) {
	e.t.Helper()
	if e.s != nil {
		e.s.Close()
		e.demux.Remove(e.s)
	}
	s, err := e.demux.NewSession(cfg, e.clk, e, e, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	s.rng = rand.New(rand.NewPCG(uint64(len(e.iface)), uint64(s.localDiscr)))
	e.s = s
}

// pair makes two systems, a (a0, fe80::a) and b (b0, fe80::b), each with a
// session towards the other with the given timers.
func pair(t *testing.T, tx, rx time.Duration, mult uint8) (*clocktest.Fake, *end, *end) {
	t.Helper()
	clk := newFakeClock()
	a := newEnd(t, clk, "a0", "fe80::a", testCfg("to-b", "a0", "fe80::b", tx, rx, mult))
	b := newEnd(t, clk, "b0", "fe80::b", testCfg("to-a", "b0", "fe80::a", tx, rx, mult))
	a.peer, b.peer = b, a
	return clk, a, b
}

// advanceUntil advances the clock in steps until cond holds, failing after
// limit; it returns the time taken.
func advanceUntil(t *testing.T, clk *clocktest.Fake, step, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := clk.Now()
	for !cond() {
		if clk.Now().Sub(start) >= limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		clk.Advance(step)
	}
	return clk.Now().Sub(start)
}

func bothUp(a, b *end) func() bool {
	return func() bool { return a.s.State() == StateUp && b.s.State() == StateUp }
}

// script is a peer played by the test: it injects packets into a
// session's Demux.
type script struct {
	t     *testing.T
	clk   *clocktest.Fake
	e     *end // the system under test
	src   netip.Addr
	discr uint32

	mu     sync.Mutex
	next   Packet // what the periodic loop sends (MyDiscr and YourDiscr filled in)
	every  time.Duration
	gen    int
	hopLim int
}

func newScript(t *testing.T, e *end, src string, discr uint32) *script {
	return &script{t: t, clk: e.clk, e: e, src: netip.MustParseAddr(src), discr: discr, hopLim: HopLimit}
}

// inject delivers p at once (MyDiscr defaults to the script's).
func (sc *script) inject(p Packet) {
	sc.t.Helper()
	if p.MyDiscr == 0 {
		p.MyDiscr = sc.discr
	}
	b, err := p.Marshal()
	if err != nil {
		sc.t.Fatal(err)
	}
	sc.injectRaw(b, sc.hopLim)
}

func (sc *script) injectRaw(b []byte, hopLimit int) {
	sc.e.demux.HandlePacket(Received{Src: sc.src, Interface: sc.e.iface, HopLimit: hopLimit, Payload: b})
}

// loop sends p every d (until stopLoop), with Your Discriminator set to the
// session's local discriminator.
func (sc *script) loop(d time.Duration, p Packet) {
	sc.mu.Lock()
	sc.gen++
	gen := sc.gen
	sc.next, sc.every = p, d
	sc.mu.Unlock()
	var tick func()
	tick = func() {
		sc.mu.Lock()
		if sc.gen != gen {
			sc.mu.Unlock()
			return
		}
		p := sc.next
		sc.mu.Unlock()
		p.YourDiscr = sc.e.s.LocalDiscr()
		sc.inject(p)
		sc.clk.AfterFunc(d, tick)
	}
	sc.clk.AfterFunc(0, tick)
}

// update changes what the loop sends from its next tick on.
func (sc *script) update(f func(p *Packet)) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	f(&sc.next)
}

func (sc *script) stopLoop() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.gen++
}

// bringUp takes e's session Up against the script: Down, then Up, then
// keeps sending Up every d with the given intervals, answering nothing.
func (sc *script) bringUp(d time.Duration, tx, rx uint32) {
	sc.t.Helper()
	sc.inject(Packet{State: StateDown, DetectMult: 3, DesiredMinTx: tx, RequiredMinRx: rx})
	if st := sc.e.s.State(); st != StateInit {
		sc.t.Fatalf("after Down: %v, want Init", st)
	}
	sc.loop(d, Packet{State: StateUp, DetectMult: 3, DesiredMinTx: tx, RequiredMinRx: rx})
	sc.clk.Advance(0)
	if st := sc.e.s.State(); st != StateUp {
		sc.t.Fatalf("after Up: %v, want Up", st)
	}
}

// intervals returns the gaps between consecutive packets of ps.
func intervals(ps []sent) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ps); i++ {
		out = append(out, ps[i].at.Sub(ps[i-1].at))
	}
	return out
}

// periodic drops the Finals from ps: what is left are the periodic
// transmissions.
func periodic(ps []sent) []sent {
	var out []sent
	for _, s := range ps {
		if !s.p.Final {
			out = append(out, s)
		}
	}
	return out
}
