package vrrp6

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/clock/clocktest"
)

type fakeClock = clocktest.Fake

func newFakeClock() *fakeClock {
	return clocktest.New(time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC))
}

// node is a Router's Sender and Actions in tests. With a lan it delivers
// its frames to the other nodes through the fake clock (never while the
// sending Router's lock is held).
type node struct {
	t     *testing.T
	r     *Router
	clock *fakeClock
	lan   *lan
	mu    sync.Mutex
	sent  [][]byte // advert frames
	nas   [][]byte // NA frames
	trans []Transition
	// sentAtTransition records len(sent) when each transition happened.
	sentAtTransition []int
	unplugged        bool
}

type lan struct{ nodes []*node }

func (n *node) SendAdvert(frame []byte) error {
	n.mu.Lock()
	n.sent = append(n.sent, frame)
	unplugged := n.unplugged
	n.mu.Unlock()
	if n.lan == nil || unplugged {
		return nil
	}
	f, err := ParseAdvertFrame(frame)
	if err != nil {
		n.t.Errorf("node sent a bad advert frame: %v", err)
		return nil
	}
	for _, o := range n.lan.nodes {
		if o == n || o.r == nil {
			continue
		}
		o := o
		n.clock.AfterFunc(0, func() {
			o.mu.Lock()
			down := o.unplugged
			o.mu.Unlock()
			if !down {
				o.r.HandleAdvert(f.IP.Src, f.IP.Dst, int(f.IP.HopLimit), frame[ethHeaderLen+ipv6HeaderLen:])
			}
		})
	}
	return nil
}

func (n *node) SendUnsolicitedNA(frame []byte) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nas = append(n.nas, frame)
	return nil
}

func (n *node) OnTransition(t Transition) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.trans = append(n.trans, t)
	n.sentAtTransition = append(n.sentAtTransition, len(n.sent))
}

// lastAdvert parses the last advert frame n sent.
func (n *node) lastAdvert() *AdvertFrame {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.sent) == 0 {
		n.t.Fatal("no advert sent")
	}
	f, err := ParseAdvertFrame(n.sent[len(n.sent)-1])
	if err != nil {
		n.t.Fatal(err)
	}
	return f
}

func (n *node) numSent() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.sent)
}

func (n *node) lastTransition() Transition {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.trans) == 0 {
		n.t.Fatal("no transition")
	}
	return n.trans[len(n.trans)-1]
}

var testVIPs = []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::50")}

func testConfig(prio uint8, ll string) Config {
	return Config{
		Interface:    "ge0",
		VRID:         1,
		Priority:     prio,
		LinkLocal:    netip.MustParseAddr(ll),
		VirtualAddrs: testVIPs,
	}
}

func newNode(t *testing.T, clock *fakeClock, cfg Config) *node {
	t.Helper()
	n := &node{t: t, clock: clock}
	r, err := NewRouter(cfg, clock, n, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.r = r
	return n
}

// payload builds a VRRP packet from src to ff02::12.
func payload(t *testing.T, vrid, prio uint8, ivalCS uint16, src netip.Addr, addrs []netip.Addr) []byte {
	t.Helper()
	b, err := (&Advert{VRID: vrid, Priority: prio, MaxAdvertInterval: ivalCS, Addrs: addrs}).Marshal(src, GroupAddr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
