package pim

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Unicast PIM between the test routers: a tucast delivers each message,
// through the clock (AfterFunc 0), to the port registered for its
// destination address, as the unicast FIB would, and records it.

var (
	addrDR  = netip.MustParseAddr("2001:db8:d::1") // the first-hop DR's address
	addrLH  = netip.MustParseAddr("2001:db8:e::1") // the last-hop router's
	addrBad = netip.MustParseAddr("2001:db8:bad::1")
)

type tucast struct {
	n    *tnet
	mu   sync.Mutex
	to   map[netip.Addr]*tport
	sent []tusent
}

type tusent struct {
	at       time.Duration
	src, dst netip.Addr
	msg      Message
}

func newUcast(n *tnet) *tucast { return &tucast{n: n, to: map[netip.Addr]*tport{}} }

func (u *tucast) register(a netip.Addr, p *tport) {
	u.mu.Lock()
	u.to[a] = p
	u.mu.Unlock()
}

// sender is the UnicastSender of one router.
func (u *tucast) sender() UnicastSender { return tuSender{u} }

type tuSender struct{ u *tucast }

func (s tuSender) SendUnicast(src, dst netip.Addr, b []byte) error {
	u := s.u
	t := u.n.t
	if err := Verify(src, dst, b); err != nil {
		t.Errorf("unicast %v -> %v: bad checksum: %v", src, dst, err)
	}
	m, err := Parse(b)
	if err != nil {
		t.Errorf("unicast %v -> %v: unparsable: %v", src, dst, err)
		return nil
	}
	u.mu.Lock()
	u.sent = append(u.sent, tusent{at: u.n.clk.Now().Sub(t0), src: src, dst: dst, msg: m})
	p := u.to[dst]
	u.mu.Unlock()
	if p != nil {
		u.n.clk.AfterFunc(0, func() {
			if d := p.ifc.HandlePacket(Packet{Src: src, Dst: dst, HopLimit: 64, Payload: b}); d != DropNone {
				t.Errorf("unicast %v -> %v dropped by %s: %v", src, dst, p.ifc.Name(), d)
			}
		})
	}
	return nil
}

func (u *tucast) take() []tusent {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.sent
	u.sent = nil
	return s
}

// ofType keeps the messages of type t.
func ofType(ss []tusent, t MessageType) []tusent {
	var out []tusent
	for _, s := range ss {
		if s.msg.Type() == t {
			out = append(out, s)
		}
	}
	return out
}

// dataPacket is an IPv6 packet from s to g with a UDP-like payload of n
// octets.
func dataPacket(s, g netip.Addr, n int) []byte {
	p := make([]byte, ipv6HeaderLen+n)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:6], uint16(n))
	p[6] = 17
	p[7] = 64
	s16, g16 := s.As16(), g.As16()
	copy(p[8:24], s16[:])
	copy(p[24:40], g16[:])
	for i := range n {
		p[ipv6HeaderLen+i] = byte(i)
	}
	return p
}

// tdata records what a Router hands out through OnRegisterData.
type tdata struct {
	mu  sync.Mutex
	got []RegisterData
}

func (d *tdata) on(x RegisterData) {
	d.mu.Lock()
	d.got = append(d.got, x)
	d.mu.Unlock()
}

func (d *tdata) take() []RegisterData {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.got
	d.got = nil
	return g
}

func (rt *trouter) regState(s, g netip.Addr) RegisterState { return rt.r.RegisterState(s, g) }

// katLeft is how long the (S,G) Keepalive Timer has to run; -1: no entry.
func (rt *trouter) katLeft(s, g netip.Addr) time.Duration {
	rt.r.mu.Lock()
	defer rt.r.mu.Unlock()
	e := rt.r.sg(s, g)
	if e == nil {
		return -1
	}
	return rt.r.remaining(&e.kat)
}

func (rt *trouter) sptBit(s, g netip.Addr) bool {
	rt.r.mu.Lock()
	defer rt.r.mu.Unlock()
	e := rt.r.sg(s, g)
	return e != nil && e.spt
}

func fatalIf(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
