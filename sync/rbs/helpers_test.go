package rbs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/clock/clocktest"
)

// ---- fake clock ----

type fakeClock = clocktest.Fake

func newFakeClock() *fakeClock {
	return clocktest.New(time.Date(2021, 5, 29, 3, 21, 36, 0, time.UTC))
}

// ---- polling helper (for cross-goroutine state, not for timing) ----

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// ---- in-memory network ----

var (
	addrA = netip.MustParseAddr("2001:db8:10::1") // lower: dials
	addrB = netip.MustParseAddr("2001:db8:10::2") // higher: listens
)

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c *addrConn) LocalAddr() net.Addr  { return c.local }
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

// pipePair returns two connected conns: a from "from", b at "to":port.
func pipePair(from, to netip.Addr) (a, b net.Conn) {
	x, y := net.Pipe()
	fa := fakeAddr(netip.AddrPortFrom(from, 40000).String())
	ta := fakeAddr(netip.AddrPortFrom(to, DefaultPort).String())
	return &addrConn{x, fa, ta}, &addrConn{y, ta, fa}
}

type memListener struct {
	ch     chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newMemListener() *memListener {
	return &memListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *memListener) Addr() net.Addr { return fakeAddr("[2001:db8:10::2]:1025") }

// connect delivers a connection from "from" to the listener and returns
// the client end.
func (l *memListener) connect(t *testing.T, from netip.Addr) net.Conn {
	t.Helper()
	a, b := pipePair(from, addrB)
	select {
	case l.ch <- b:
	case <-time.After(5 * time.Second):
		t.Fatal("listener not accepting")
	}
	return a
}

// ---- entry table usable as Source and Sink ----

type table struct {
	mu       sync.Mutex
	m        map[netip.Addr]MLDEntry
	replaces int
	upserts  int
	deletes  int
	failNext error
	// replaceHook, if set, runs at the start of ReplaceAll (set it before
	// the services run).
	replaceHook func()
}

func newTable() *table { return &table{m: make(map[netip.Addr]MLDEntry)} }

func (t *table) Snapshot(uint32) []MLDEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]MLDEntry, 0, len(t.m))
	for _, e := range t.m {
		out = append(out, e.Clone())
	}
	slices.SortFunc(out, func(a, b MLDEntry) int { return a.Group.Compare(b.Group) })
	return out
}

func (t *table) ReplaceAll(_ uint32, es []MLDEntry) error {
	if t.replaceHook != nil {
		t.replaceHook()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.failNext; err != nil {
		t.failNext = nil
		return err
	}
	t.replaces++
	t.m = make(map[netip.Addr]MLDEntry, len(es))
	for _, e := range es {
		t.m[e.Group] = e.Clone()
	}
	return nil
}

func (t *table) Upsert(_ uint32, e MLDEntry) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.failNext; err != nil {
		t.failNext = nil
		return err
	}
	t.upserts++
	t.m[e.Group] = e.Clone()
	return nil
}

func (t *table) Delete(_ uint32, g netip.Addr) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.deletes++
	delete(t.m, g)
	return nil
}

func (t *table) set(e MLDEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[e.Group] = e.Clone()
}

func (t *table) del(g netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, g)
}

func (t *table) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

func (t *table) counts() (replaces, upserts, deletes int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.replaces, t.upserts, t.deletes
}

func (t *table) equal(o *table) bool {
	a, b := t.Snapshot(0), o.Snapshot(0)
	return slices.EqualFunc(a, b, MLDEntry.Equal)
}

func groupN(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0xff, 0x3e, 14: byte(i >> 8), 15: byte(i)})
}

func entryN(i int, timer uint32) MLDEntry {
	return MLDEntry{Group: groupN(i), FilterMode: FilterInclude, Compat: 2, GroupTimerMs: timer,
		Sources: []MLDSource{{Addr: netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1)), TimerMs: timer}}}
}

// ---- raw peer speaking the protocol from the test ----

type rawPeer struct {
	t    *testing.T
	conn net.Conn
	msgs chan Message
	errc chan error
}

func newRawPeer(t *testing.T, c net.Conn) *rawPeer {
	p := &rawPeer{t: t, conn: c, msgs: make(chan Message, 1<<16), errc: make(chan error, 1)}
	go func() {
		r := NewReader(c)
		for {
			m, _, err := r.ReadMessage()
			if err != nil {
				p.errc <- err
				close(p.msgs)
				return
			}
			p.msgs <- m
		}
	}()
	t.Cleanup(func() { c.Close() })
	return p
}

func (p *rawPeer) send(ms ...Message) {
	p.t.Helper()
	for _, m := range ms {
		if _, err := WriteMessage(p.conn, m); err != nil {
			p.t.Fatalf("raw peer send %s: %v", m.Type(), err)
		}
	}
}

// next returns the next message that is not a Keepalive.
func (p *rawPeer) next() Message {
	p.t.Helper()
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				p.t.Fatalf("raw peer: connection closed: %v", <-p.errc)
			}
			if _, ka := m.(*Keepalive); ka {
				continue
			}
			return m
		case <-time.After(5 * time.Second):
			p.t.Fatal("raw peer: no message")
		}
	}
}

func expect[T Message](p *rawPeer) T {
	p.t.Helper()
	m := p.next()
	v, ok := m.(T)
	if !ok {
		p.t.Fatalf("raw peer: got %T %+v, want %T", m, m, *new(T))
	}
	return v
}

// closed waits for the service to close the connection.
func (p *rawPeer) closed() error {
	p.t.Helper()
	for {
		select {
		case _, ok := <-p.msgs:
			if !ok {
				return <-p.errc
			}
		case <-time.After(5 * time.Second):
			p.t.Fatal("raw peer: connection not closed")
		}
	}
}

// ---- service harness ----

type harness struct {
	t      *testing.T
	clk    *fakeClock
	svc    *Service
	ln     *memListener
	dials  chan net.Conn // dialer side: test supplies the conn for each dial
	cancel context.CancelFunc
	done   chan error
}

// startService runs a service on the given side: dialer (source addrA) or
// listener (source addrB).
func startService(t *testing.T, dialer bool, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, clk: newFakeClock(), ln: newMemListener(), dials: make(chan net.Conn, 16), done: make(chan error, 1)}
	cfg := Config{Name: "service1", SysName: "DUT", Clock: h.clk}
	if dialer {
		cfg.Source, cfg.Peer = addrA, addrB
	} else {
		cfg.Source, cfg.Peer = addrB, addrA
	}
	cfg.Dial = func(ctx context.Context) (net.Conn, error) {
		select {
		case c := <-h.dials:
			if c == nil {
				return nil, errors.New("connection refused")
			}
			return c, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	cfg.Listen = func(context.Context) (net.Listener, error) { return h.ln, nil }
	if mod != nil {
		mod(&cfg)
	}
	h.svc = New(cfg, slog.New(slog.DiscardHandler))
	return h
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.svc.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Error("Run did not return")
	}
}

// peer connects a raw peer to the service (as the listener's remote or as
// the dialer's target) and exchanges Hello.
func (h *harness) peer(hello *Hello) *rawPeer {
	h.t.Helper()
	var c net.Conn
	if h.svc.cfg.Dials() {
		a, b := pipePair(addrA, addrB)
		h.dials <- a
		c = b
	} else {
		c = h.ln.connect(h.t, addrA)
	}
	p := newRawPeer(h.t, c)
	if hello != nil {
		p.send(hello)
	}
	return p
}

func (h *harness) state() SessionState { return h.svc.Status().State }

func (h *harness) waitState(st SessionState) {
	h.t.Helper()
	eventually(h.t, "state "+st.String(), func() bool { return h.state() == st })
}
