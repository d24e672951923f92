package pim

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	llDp = netip.MustParseAddr("fe80::d2") // D on the D-P link
	llDl = netip.MustParseAddr("fe80::d3") // D on the D-L link
	llPl = netip.MustParseAddr("fe80::a1") // P on the P-L link
	llPd = netip.MustParseAddr("fe80::a2") // P on the D-P link
	llLr = netip.MustParseAddr("fe80::e1") // L on the receivers' LAN
	llLp = netip.MustParseAddr("fe80::e2") // L on the P-L link
	llLd = netip.MustParseAddr("fe80::e3") // L on the D-L link
)

// drRPLastHop: D is the DR of S's LAN (ifindex 1), P the RP, L the last
// hop with receivers on its ifindex 1. D-P (D 2, P 2), P-L (P 1, L 2)
// and D-L (D 3, L 3) are point-to-point links: L's RP tree goes through
// P, its SPT straight to D.
func drRPLastHop(t *testing.T, policy SPTSwitchPolicy) (n *tnet, u *tucast, data *tdata, d, p, l *trouter) {
	n = newNet(t)
	u = newUcast(n)
	data = &tdata{}
	d = n.router("D", func(c *RouterConfig) { c.Addresses = []netip.Addr{addrDR}; c.Unicast = u.sender() })
	p = n.router("P", func(c *RouterConfig) {
		c.Addresses = []netip.Addr{testRP}
		c.Unicast = u.sender()
		c.OnRegisterData = data.on
		c.AcceptRegister = []netip.Prefix{netip.PrefixFrom(addrDR, 128)}
	})
	l = n.router("L", func(c *RouterConfig) { c.Addresses = []netip.Addr{addrLH}; c.SPTSwitch = policy })
	d.rpf.Set(srcPfx, RPFRoute{Ifindex: 1})
	d.rpf.Set(rpPfx, RPFRoute{Ifindex: 2, Nexthop: llPd})
	p.rpf.Set(srcPfx, RPFRoute{Ifindex: 2, Nexthop: llDp})
	l.rpf.Set(rpPfx, RPFRoute{Ifindex: 2, Nexthop: llPl})
	l.rpf.Set(srcPfx, RPFRoute{Ifindex: 3, Nexthop: llDl})
	dp, pl, dl := n.lan("dp"), n.lan("pl"), n.lan("dl")
	d.attach(1, n.lan("s"), llD1, IfaceOptions{}, nil)
	dport := d.attach(2, dp, llDp, IfaceOptions{}, nil)
	d.attach(3, dl, llDl, IfaceOptions{}, nil)
	p.attach(1, pl, llPl, IfaceOptions{}, nil)
	pport := p.attach(2, dp, llPd, IfaceOptions{}, nil)
	l.attach(1, n.lan("r"), llLr, IfaceOptions{}, nil)
	l.attach(2, pl, llLp, IfaceOptions{}, nil)
	l.attach(3, dl, llLd, IfaceOptions{}, nil)
	u.register(testRP, pport)
	u.register(addrDR, dport)
	n.run(10 * time.Second) // Hellos
	for _, r := range []*trouter{d, p, l} {
		r.take()
	}
	return n, u, data, d, p, l
}

// TestRegisterEndToEnd: L's receivers join (*,G) to P; S's first packet
// at D is registered to P, which forwards it down the RP tree and joins
// (S,G) to D; with native data on its SPT P sends a Register-Stop at the
// next Register, D stops encapsulating and probes with a Null-Register
// Register_Suppression_Time - Register_Probe_Time later (55 s with the
// tests' mid-range randomness), which P answers. With SPTImmediate L
// joins (S,G) straight to D on the first packet, sets the SPT bit with
// the first packet from D and prunes S off the RP tree; with SPTNever it
// stays on the RP tree.
func TestRegisterEndToEnd(t *testing.T) {
	for _, policy := range []SPTSwitchPolicy{SPTImmediate, SPTNever} {
		t.Run(policy.String(), func(t *testing.T) {
			n, u, data, d, p, l := drRPLastHop(t, policy)
			now := func() time.Duration { return n.clk.Now().Sub(t0) }
			fatalIf(t, l.r.SetLocalMembership(1, testG, true, nil))
			n.run(time.Second)
			if got := p.oifs(netip.Addr{}, testG); !slices.Equal(got, []int{1}) {
				t.Fatalf("P's (*,G) olist %v", got)
			}

			// The first packet: D registers it, P forwards it to L.
			pkt := dataPacket(testS, testG, 64)
			d.r.DataArrived(1, testS, testG)
			if !d.r.ShouldRegister(testS, testG) {
				t.Fatal("D does not register")
			}
			fatalIf(t, d.r.SendRegister(testS, testG, pkt))
			n.run(time.Second)
			got := data.take()
			if len(got) != 1 || !slices.Equal(got[0].OIfs, []int{1}) || !bytes.Equal(got[0].Packet, pkt) {
				t.Fatalf("P decapsulated %+v", got)
			}
			if !slices.Contains(jpEntries(p.take()), fmt.Sprintf("if2 %v %v join (S,G) %v", llDp, testG, testS)) {
				t.Fatal("P did not join (S,G) towards D")
			}
			if d.dsOf(KindSG, testS, testG, 2) != dsJoin || !slices.Equal(d.oifs(testS, testG), []int{2}) {
				t.Fatalf("D's (S,G): %v, olist %v", d.dsOf(KindSG, testS, testG, 2), d.oifs(testS, testG))
			}

			// The decapsulated packet arrives at L on its RP-tree interface.
			l.r.DataArrived(2, testS, testG)
			n.run(time.Second)
			lj := jpEntries(l.take())
			spt := slices.Contains(lj, fmt.Sprintf("if3 %v %v join (S,G) %v", llDl, testG, testS))
			if spt != (policy == SPTImmediate) {
				t.Fatalf("L (%v) sent %q", policy, lj)
			}
			if policy == SPTImmediate {
				if !slices.Equal(d.oifs(testS, testG), []int{2, 3}) {
					t.Fatalf("D's olist %v", d.oifs(testS, testG))
				}
				if l.sptBit(testS, testG) {
					t.Fatal("L's SPT bit before data on the SPT")
				}
			} else if _, ok := l.route(testS, testG); ok {
				t.Fatal("L made (S,G) with SPTNever")
			}

			// Native data from D: P gets it on RPF_interface(S), L on its
			// SPT interface.
			p.r.DataArrived(2, testS, testG)
			if !p.sptBit(testS, testG) {
				t.Fatal("P: no SPT bit")
			}
			if policy == SPTImmediate {
				l.r.DataArrived(3, testS, testG)
				if !l.sptBit(testS, testG) {
					t.Fatal("L: no SPT bit")
				}
				n.run(time.Second)
				if lj := jpEntries(l.take()); !slices.Contains(lj, fmt.Sprintf("if2 %v %v prune (S,G,rpt) %v", llPl, testG, testS)) {
					t.Fatalf("L did not prune S off the RP tree: %q", lj)
				}
				if rt, _ := l.route(testS, testG); rt.RPFIface != 3 || rt.Flags != FlagSPT|FlagSPTBit || !slices.Equal(l.oifs(testS, testG), []int{1}) {
					t.Errorf("L's (S,G) %+v", rt)
				}
				// P has nobody for S any more: it prunes (S,G) off D.
				if !slices.Equal(d.oifs(testS, testG), []int{3}) {
					t.Errorf("D's olist after the RP-tree prune %v", d.oifs(testS, testG))
				}
			}

			// The next Register: P answers with a Register-Stop.
			u.take()
			fatalIf(t, d.r.SendRegister(testS, testG, pkt))
			n.run(0)
			stops := ofType(u.take(), TypeRegisterStop)
			if len(stops) != 1 || stops[0].src != testRP || stops[0].dst != addrDR || len(data.take()) != 0 {
				t.Fatalf("register-stops %+v", stops)
			}
			stopAt := stops[0].at
			if st := d.regState(testS, testG); st != RegPrune || d.r.ShouldRegister(testS, testG) {
				t.Fatalf("D after the Register-Stop: %v", st)
			}
			if rt, _ := d.route(testS, testG); rt.RPFIface != 1 || rt.Flags != FlagSPT|FlagRegisterPrune {
				t.Errorf("D's route %+v", rt)
			}

			// Null-Register 55 s later, answered.
			n.run(stopAt + 55*time.Second - time.Millisecond - now())
			if s := u.take(); len(s) != 0 {
				t.Fatalf("D sent %+v before 55 s", s)
			}
			n.run(time.Millisecond)
			s := u.take()
			if len(s) != 2 || s[0].at != stopAt+55*time.Second || !s[0].msg.(*Register).Null || s[1].msg.Type() != TypeRegisterStop {
				t.Fatalf("probe at %v: %+v", stopAt+55*time.Second, s)
			}
			if st := d.regState(testS, testG); st != RegPrune {
				t.Fatalf("D after the answered probe: %v", st)
			}
			n.run(55 * time.Second)
			if s := u.take(); len(s) != 2 || s[0].at != stopAt+110*time.Second {
				t.Errorf("second probe %+v", s)
			}
			if policy == SPTNever {
				if !slices.Equal(d.oifs(testS, testG), []int{2}) || !slices.Equal(p.oifs(testS, testG), []int{1}) {
					t.Errorf("RP tree: D %v, P %v", d.oifs(testS, testG), p.oifs(testS, testG))
				}
			}
		})
	}
}
