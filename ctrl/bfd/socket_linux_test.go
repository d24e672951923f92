//go:build linux

package bfd

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv6"

	"github.com/hotcast/hotcast/internal/netnstest"
)

// sys is one hotcast BFD system in a namespace: a Listener, a Demux and
// one session with its Conn.
type sys struct {
	t     *testing.T
	ns    *netnstest.NS
	link  *netnstest.Link
	local netip.Addr
	l     *Listener
	d     *Demux
	c     *Conn
	s     *Session
	tap   *tap
	done  chan error
}

// tap sits between the Listener and the Demux and remembers what arrived.
type tap struct {
	h  Handler
	mu sync.Mutex
	rx []tapped
}

type tapped struct {
	at       time.Time
	srcPort  int
	hopLimit int
	dst      netip.Addr
	p        Packet
	err      error
}

func (tp *tap) HandlePacket(rx Received) {
	var p Packet
	err := Parse(rx.Payload, &p)
	tp.mu.Lock()
	tp.rx = append(tp.rx, tapped{time.Now(), rx.SrcPort, rx.HopLimit, rx.Dst, p, err})
	tp.mu.Unlock()
	tp.h.HandlePacket(rx)
}

func (tp *tap) since(t time.Time) []tapped {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var out []tapped
	for _, x := range tp.rx {
		if !x.at.Before(t) {
			out = append(out, x)
		}
	}
	return out
}

// newSys opens the Listener on link and serves it; sessions come with
// addSession.
func newSys(t *testing.T, link *netnstest.Link, local netip.Addr) *sys {
	t.Helper()
	x := &sys{t: t, ns: link.NS, link: link, local: local, d: NewDemux(nil), done: make(chan error, 1)}
	x.tap = &tap{h: x.d}
	link.NS.Do(t, func() error {
		var err error
		x.l, err = Listen(link.Name)
		return err
	})
	go func() { x.done <- x.l.Serve(x.tap) }()
	t.Cleanup(func() {
		x.l.Close()
		if err := <-x.done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if x.s != nil {
			x.s.Close()
			x.c.Close()
		}
	})
	return x
}

// addSession (re)creates the system's session towards peer: a new Conn
// and a new discriminator, as after a restart.
func (x *sys) addSession(peer netip.Addr, tx, rx time.Duration, mult uint8) {
	x.t.Helper()
	if x.s != nil {
		x.s.Close()
		x.d.Remove(x.s)
		x.c.Close()
	}
	x.link.NS.Do(x.t, func() error {
		var err error
		x.c, err = Dial(x.link.Name, x.local, peer)
		return err
	})
	cfg := Config{Name: "peer", Interface: x.link.Name, Local: x.local, Peer: peer, DesiredMinTx: tx, RequiredMinRx: rx, DetectMult: mult}
	s, err := x.d.NewSession(cfg, nil, x.c, nil, nil)
	if err != nil {
		x.t.Fatal(err)
	}
	x.s = s
	if err := s.Start(); err != nil {
		x.t.Fatal(err)
	}
}

func waitState(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// Two hotcast sessions across a veth pair, over link-local addresses,
// come Up over the real sockets: port 3784, source ports 49152-65535, hop
// limit 255. A packet with hop limit 64 is dropped and counted. When one
// side stops, the other goes Down with diag 1 about one Detection Time
// after its last packet; restarted, the side comes back Up.
func TestVethSessionsUp(t *testing.T) {
	nsA, nsB := netnstest.New(t, "bfa"), netnstest.New(t, "bfb")
	la, lb := netnstest.Veth(t, nsA, "bfd0", nsB, "bfd1")
	llA, llB := la.WaitLinkLocal(t), lb.WaitLinkLocal(t)
	a, b := newSys(t, la, llA), newSys(t, lb, llB)
	// Timers loose enough that a loaded 2-core box does not flap them
	// (Go timers fire up to ~30 ms late there, and whole-process stalls of
	// ~100 ms were seen while other tests ran): this test is about the
	// sockets; the timing is measured in BenchmarkSendLoopJitter.
	const (
		tx   = 50 * time.Millisecond
		mult = 5
	)
	a.addSession(llB, tx, tx, mult)
	b.addSession(llA, tx, tx, mult)
	took := waitState(t, "both Up", 5*time.Second, func() bool { return a.s.State() == StateUp && b.s.State() == StateUp })
	t.Logf("Up after %v", took)
	time.Sleep(20 * tx)
	for _, x := range []*sys{a, b} {
		st := x.s.Status()
		if st.State != StateUp || st.TxInterval != tx || st.DetectTime != mult*tx || st.Polling || st.Stats.Dropped() != 0 {
			for _, tr := range st.Transitions {
				t.Logf("%s: %v %v -> %v %v", x.link.Name, tr.Time.Format("15:04:05.000000"), tr.From, tr.To, tr.Diag)
			}
			t.Errorf("%s: %v tx %v detect %v polling %v drops %v", x.link.Name, st.State, st.TxInterval, st.DetectTime, st.Polling, st.Stats.Drops)
		}
		if st.Stats.Received < 10 || st.Stats.SendErrors != 0 {
			t.Errorf("%s: received %d, send errors %d", x.link.Name, st.Stats.Received, st.Stats.SendErrors)
		}
		rx := x.tap.since(time.Now().Add(-10 * tx))
		if len(rx) < 8 {
			t.Fatalf("%s: %d packets in %v", x.link.Name, len(rx), 10*tx)
		}
		for _, r := range rx {
			if r.err != nil || r.hopLimit != HopLimit || r.srcPort < MinSourcePort || r.srcPort > MaxSourcePort || r.p.State != StateUp {
				for _, tr := range st.Transitions {
					t.Logf("%s: %v %v -> %v %v", x.link.Name, tr.Time.Format("15:04:05.000000"), tr.From, tr.To, tr.Diag)
				}
				t.Errorf("%s received at %v: port %d hop limit %d %+v %v", x.link.Name, r.at.Format("15:04:05.000000"), r.srcPort, r.hopLimit, r.p, r.err)
				break
			}
			if r.srcPort != rx[0].srcPort {
				t.Errorf("%s: source port changed %d -> %d", x.link.Name, rx[0].srcPort, r.srcPort)
				break
			}
		}
		t.Logf("%s: %d packets in %v from port %d, dst %v", x.link.Name, len(rx), 10*tx, rx[0].srcPort, rx[0].dst)
	}

	// Hop limit 64: a valid packet for b's session from an off-link
	// sender is dropped.
	before := b.s.Status().Stats.Drops[DropHopLimit]
	la.NS.Do(t, func() error {
		c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: llA.AsSlice(), Zone: la.Name})
		if err != nil {
			return err
		}
		defer c.Close()
		if err := ipv6.NewPacketConn(c).SetHopLimit(64); err != nil {
			return err
		}
		pkt, err := (&Packet{State: StateUp, DetectMult: 3, MyDiscr: a.s.LocalDiscr(), YourDiscr: b.s.LocalDiscr(), DesiredMinTx: 50000, RequiredMinRx: 50000}).Marshal()
		if err != nil {
			return err
		}
		_, err = c.WriteToUDP(pkt, &net.UDPAddr{IP: llB.AsSlice(), Zone: la.Name, Port: Port})
		return err
	})
	waitState(t, "hop limit drop", 2*time.Second, func() bool { return b.s.Status().Stats.Drops[DropHopLimit] == before+1 })

	// a stops: b goes Down with diag 1.
	a.s.Close()
	stopped := time.Now()
	took = waitState(t, "b Down", 2*time.Second, func() bool { return b.s.State() == StateDown })
	st := b.s.Status()
	if st.LocalDiag != DiagControlDetectionTimeExpired {
		t.Errorf("b diag %v", st.LocalDiag)
	}
	lastFromA := b.tap.since(stopped.Add(-2 * tx))
	var last time.Time
	for _, r := range lastFromA {
		if r.p.MyDiscr == a.s.LocalDiscr() && r.hopLimit == HopLimit {
			last = r.at
		}
	}
	t.Logf("b Down %v after a stopped, %v after its last packet from a (detection time %v)", took, st.LastChange.Sub(last), mult*tx)

	// a restarts with a new discriminator: Up again.
	a.addSession(llB, tx, tx, mult)
	took = waitState(t, "Up again", 5*time.Second, func() bool { return a.s.State() == StateUp && b.s.State() == StateUp })
	t.Logf("Up again after %v", took)
	if b.s.Status().RemoteDiscr != a.s.LocalDiscr() {
		t.Error("b does not know a's new discriminator")
	}
}

// Dial keeps to RFC 5881's source ports, and two sessions get two ports.
func TestDialSourcePorts(t *testing.T) {
	ns := netnstest.New(t, "bfp")
	l := netnstest.Dummy(t, ns, "bfd0")
	ll := l.WaitLinkLocal(t)
	peer := netip.MustParseAddr("fe80::99")
	seen := map[int]bool{}
	var conns []*Conn
	ns.Do(t, func() error {
		for range 20 {
			c, err := Dial(l.Name, ll, peer)
			if err != nil {
				return err
			}
			conns = append(conns, c)
			if p := c.SourcePort(); p < MinSourcePort || p > MaxSourcePort || seen[p] {
				return errors.New("bad or repeated source port " + c.String())
			}
			seen[c.SourcePort()] = true
		}
		return nil
	})
	for _, c := range conns {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}
	ns.Do(t, func() error {
		if _, err := Listen("nosuch0"); err == nil {
			return errors.New("listen on a missing interface succeeded")
		}
		if _, err := Dial(l.Name, ll, netip.MustParseAddr("10.0.0.1")); err == nil {
			return errors.New("dial to ipv4 succeeded")
		}
		return nil
	})
}
