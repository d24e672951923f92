package pim

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

var (
	llD1 = netip.MustParseAddr("fe80::d1") // the DR on the source's LAN
	llD2 = netip.MustParseAddr("fe80::d2") // its upstream link
	llX  = netip.MustParseAddr("fe80::d9") // another router on the source's LAN
)

// drRouter is D, DR on the source's LAN (ifindex 1, where S and S2 are),
// reaching the RP through U on ifindex 2. Its unicast messages are
// recorded (none is delivered: the RP is not there).
func drRouter(t *testing.T, mod func(*RouterConfig)) (*tnet, *tucast, *trouter, *tport) {
	n := newNet(t)
	u := newUcast(n)
	d := n.router("D", func(c *RouterConfig) {
		c.Addresses = []netip.Addr{addrDR}
		c.Unicast = u.sender()
		if mod != nil {
			mod(c)
		}
	})
	d.rpf.Set(srcPfx, RPFRoute{Ifindex: 1})
	d.rpf.Set(rpPfx, RPFRoute{Ifindex: 2, Nexthop: llU})
	src := d.attach(1, n.lan("s"), llD1, IfaceOptions{}, nil)
	up := d.attach(2, n.lan("u"), llD2, IfaceOptions{}, nil)
	up.fakeNeighbor(llU, 1, 3)
	n.run(10 * time.Second)
	d.take()
	u.take()
	return n, u, d, src
}

func stopFromRP(g, s netip.Addr) *RegisterStop {
	return &RegisterStop{Group: SingleGroup(g), Source: s}
}

// TestRegisterDR walks the rows of RFC 7761 §4.4.1's table on the fake
// clock: CouldRegister, Register-Stop received, the Register-Stop Timer
// with (*) = 0.5..1.5 × Register_Suppression_Time - Register_Probe_Time
// (55 s with the tests' mid-range randomness) and (**) = Probe_Time.
func TestRegisterDR(t *testing.T) {
	n, u, d, _ := drRouter(t, nil)
	pkt := dataPacket(testS, testG, 100)
	state := func() RegisterState { return d.regState(testS, testG) }
	now := func() time.Duration { return n.clk.Now().Sub(t0) }

	// NoInfo, CouldRegister -> true (first packet from a directly
	// connected source, KAT started): -> J, register tunnel.
	if state() != RegNoInfo || d.r.ShouldRegister(testS, testG) {
		t.Fatal("registering before any data")
	}
	d.r.DataArrived(1, testS, testG)
	if state() != RegJoin || !d.r.ShouldRegister(testS, testG) {
		t.Fatalf("after the first packet: %v", state())
	}
	if got := d.katLeft(testS, testG); got != KeepalivePeriod {
		t.Errorf("KAT %v, want %v", got, KeepalivePeriod)
	}
	rt, _ := d.route(testS, testG)
	if rt.RPFIface != 1 || rt.Flags != FlagSPT|FlagRegister || len(rt.OIfs) != 0 || rt.RP != testRP {
		t.Errorf("route %+v (flags %v)", rt, rt.Flags)
	}
	m, err := d.r.BuildRegister(testS, testG, pkt)
	fatalIf(t, err)
	if m.Src != addrDR || m.Dst != testRP {
		t.Errorf("register %v -> %v", m.Src, m.Dst)
	}
	if err := Verify(m.Src, m.Dst, m.Payload); err != nil {
		t.Error(err)
	}
	got, err := Parse(m.Payload)
	fatalIf(t, err)
	if reg, ok := got.(*Register); !ok || reg.Null || reg.Border || !bytes.Equal(reg.Packet, pkt) {
		t.Errorf("register %+v", got)
	}
	if _, err := d.r.BuildRegister(testS2, testG, dataPacket(testS2, testG, 10)); !errors.Is(err, ErrNotRegistering) {
		t.Errorf("register of an unknown source: %v", err)
	}
	if _, err := d.r.BuildRegister(testS, testG, dataPacket(testS2, testG, 10)); !errors.Is(err, ErrBadInnerPacket) {
		t.Errorf("register of another source's packet: %v", err)
	}
	if _, err := d.r.BuildRegister(testS, testG, pkt[:30]); !errors.Is(err, ErrBadInnerPacket) {
		t.Errorf("register of a truncated packet: %v", err)
	}
	fatalIf(t, d.r.SendRegister(testS, testG, pkt))
	if s := ofType(u.take(), TypeRegister); len(s) != 1 || s[0].dst != testRP || s[0].src != addrDR {
		t.Errorf("SendRegister sent %+v", s)
	}

	// J, Register-Stop received: -> P, RST = (*).
	if why := d.r.HandleRegisterStop(testRP, addrDR, stopFromRP(testG, testS)); why != RegDropNone {
		t.Fatalf("register-stop: %v", why)
	}
	stopAt := now()
	if state() != RegPrune || d.r.ShouldRegister(testS, testG) {
		t.Fatalf("after Register-Stop: %v", state())
	}
	if _, err := d.r.BuildRegister(testS, testG, pkt); !errors.Is(err, ErrNotRegistering) {
		t.Errorf("register in Prune: %v", err)
	}
	if rt, _ := d.route(testS, testG); rt.Flags != FlagSPT|FlagRegisterPrune {
		t.Errorf("flags in Prune %v", rt.Flags)
	}

	// P, RST expires: -> JP, Null-Register, RST = Register_Probe_Time.
	n.run(55*time.Second - time.Millisecond)
	if state() != RegPrune || len(u.take()) != 0 {
		t.Fatalf("probe before 55 s: %v", state())
	}
	n.run(time.Millisecond)
	s := u.take()
	if len(s) != 1 || s[0].at != stopAt+55*time.Second || s[0].dst != testRP || s[0].src != addrDR {
		t.Fatalf("null-register %+v at %v", s, stopAt+55*time.Second)
	}
	if reg, ok := s[0].msg.(*Register); !ok || !reg.Null {
		t.Fatalf("probe %+v", s[0].msg)
	} else if is, ig, ok := reg.Inner(); !ok || is != testS || ig != testG {
		t.Errorf("null-register inner %v %v", is, ig)
	}
	if state() != RegJoinPending || d.r.ShouldRegister(testS, testG) {
		t.Fatalf("after the probe: %v", state())
	}
	if rt, _ := d.route(testS, testG); rt.Flags != FlagSPT|FlagJoinPending {
		t.Errorf("flags in Join-Pending %v", rt.Flags)
	}

	// JP, Register-Stop received: -> P, RST = (*) again.
	d.r.HandleRegisterStop(testRP, addrDR, stopFromRP(testG, testS))
	if state() != RegPrune {
		t.Fatalf("JP + Register-Stop: %v", state())
	}
	n.run(55 * time.Second)
	if state() != RegJoinPending || len(ofType(u.take(), TypeRegister)) != 1 {
		t.Fatalf("second probe: %v", state())
	}
	d.r.DataArrived(1, testS, testG) // keep the KAT running

	// JP, RST expires (no Register-Stop within Register_Probe_Time):
	// -> J, the tunnel back.
	n.run(5*time.Second - time.Millisecond)
	if state() != RegJoinPending {
		t.Fatalf("JP before the probe time: %v", state())
	}
	n.run(time.Millisecond)
	if state() != RegJoin || len(u.take()) != 0 {
		t.Fatalf("JP after the probe time: %v", state())
	}

	// J, CouldRegister -> false (the KAT expires 210 s after the last
	// packet): -> NI, the entry goes.
	d.r.DataArrived(1, testS, testG)
	n.run(KeepalivePeriod - time.Millisecond)
	if state() != RegJoin {
		t.Fatalf("before the KAT expires: %v", state())
	}
	n.run(time.Millisecond)
	if state() != RegNoInfo {
		t.Fatalf("KAT expired: %v", state())
	}
	if _, ok := d.route(testS, testG); ok {
		t.Error("(S,G) kept after the KAT expired")
	}

	// P, CouldRegister -> false: -> NI; the pending RST does nothing.
	d.r.DataArrived(1, testS, testG)
	d.r.HandleRegisterStop(testRP, addrDR, stopFromRP(testG, testS))
	if state() != RegPrune {
		t.Fatal(state())
	}
	n.run(KeepalivePeriod)
	if state() != RegNoInfo {
		t.Fatalf("P, KAT expired: %v", state())
	}
	if st := d.r.Stats(); st.RegisterStopRx != 3 || st.RegisterTx != 2 || st.NullRegisterTx != 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestRegisterDRLosesDR: CouldRegister -> false from J-Pending and P when
// another router becomes DR on the source's LAN; ignore-dr-state brings
// the registering back.
func TestRegisterDRLosesDR(t *testing.T) {
	n, u, d, src := drRouter(t, nil)
	state := func() RegisterState { return d.regState(testS, testG) }
	d.r.DataArrived(1, testS, testG)
	d.r.HandleRegisterStop(testRP, addrDR, stopFromRP(testG, testS))
	n.run(55 * time.Second)
	if state() != RegJoinPending {
		t.Fatal(state())
	}
	u.take()
	src.fakeNeighbor(llX, 10, 7) // higher priority: X is DR
	if state() != RegNoInfo {
		t.Fatalf("JP, not DR any more: %v", state())
	}
	n.run(time.Minute)
	if len(u.take()) != 0 || state() != RegNoInfo {
		t.Fatal("stale Register-Stop Timer acted")
	}
	// The (S,G) state stays with the KAT (data still arrives), without
	// registering.
	if rt, ok := d.route(testS, testG); !ok || rt.Flags != FlagSPT {
		t.Errorf("route when not DR %+v", rt)
	}
	d.r.SetIfaceOptions(1, IfaceOptions{IgnoreDRState: true})
	if state() != RegJoin {
		t.Fatalf("with ignore-dr-state: %v", state())
	}
	d.r.HandleRegisterStop(testRP, addrDR, stopFromRP(testG, testS))
	d.r.SetIfaceOptions(1, IfaceOptions{})
	if state() != RegNoInfo {
		t.Fatalf("P, ignore-dr-state off: %v", state())
	}
}

// TestRegisterRPChange: an RP change moves any Register state to J,
// registering to the new RP.
func TestRegisterRPChange(t *testing.T) {
	_, _, d, _ := drRouter(t, nil)
	d.r.DataArrived(1, testS, testG)
	d.r.HandleRegisterStop(testRP, addrDR, stopFromRP(testG, testS))
	rp2 := netip.MustParseAddr("2001:db8:ff::2")
	rps, err := NewRPSet([]StaticRP{{Address: rp2}}, nil)
	fatalIf(t, err)
	d.r.SetRPSet(rps)
	if st := d.regState(testS, testG); st != RegJoin {
		t.Fatalf("after the RP change: %v", st)
	}
	m, err := d.r.BuildRegister(testS, testG, dataPacket(testS, testG, 8))
	fatalIf(t, err)
	if m.Dst != rp2 {
		t.Errorf("register to %v, want %v", m.Dst, rp2)
	}
	// The old RP's Register-Stop is no longer RP(G)'s.
	if why := d.r.HandleRegisterStop(testRP, addrDR, stopFromRP(testG, testS)); why != RegDropStopNotRP {
		t.Errorf("stop from the old RP: %v", why)
	}
}

// TestRegisterStopHostile: Register-Stops not from RP(G), not to us, or
// malformed change nothing and are counted; the wildcard source stops
// every source of the group.
func TestRegisterStopHostile(t *testing.T) {
	_, _, d, _ := drRouter(t, nil)
	d.r.DataArrived(1, testS, testG)
	d.r.DataArrived(1, testS2, testG)
	for _, c := range []struct {
		src, dst netip.Addr
		rs       *RegisterStop
		want     RegDropReason
	}{
		{addrBad, addrDR, stopFromRP(testG, testS), RegDropStopNotRP},
		{testRP, addrBad, stopFromRP(testG, testS), RegDropNotForUs},
		{testRP, addrDR, stopFromRP(netip.MustParseAddr("ff02::1"), testS), RegDropBadStop},
		{testRP, addrDR, &RegisterStop{Group: Group{Addr: testG, MaskLen: 16}, Source: testS}, RegDropBadStop},
		{testRP, addrDR, stopFromRP(testG, netip.MustParseAddr("ff1e::1")), RegDropBadStop},
		{testRP, addrDR, stopFromRP(testSSM, testS), RegDropStopNotRP},
	} {
		if why := d.r.HandleRegisterStop(c.src, c.dst, c.rs); why != c.want {
			t.Errorf("register-stop %v -> %v %+v: %v, want %v", c.src, c.dst, c.rs, why, c.want)
		}
	}
	if d.regState(testS, testG) != RegJoin || d.regState(testS2, testG) != RegJoin {
		t.Fatal("a hostile Register-Stop changed the state")
	}
	st := d.r.Stats()
	if st.RegisterDrops[RegDropStopNotRP] != 2 || st.RegisterDrops[RegDropNotForUs] != 1 || st.RegisterDrops[RegDropBadStop] != 3 || st.RegisterStopRx != 0 {
		t.Errorf("drops %v rx %d", st.RegisterDrops, st.RegisterStopRx)
	}
	// Through the Interface: a multicast destination is refused there.
	b, err := Marshal(stopFromRP(testG, testS), testRP, AllPIMRouters)
	fatalIf(t, err)
	d.mu.Lock()
	p := d.ports[2]
	d.mu.Unlock()
	if why := p.ifc.HandlePacket(Packet{Src: testRP, Dst: AllPIMRouters, HopLimit: 1, Payload: b}); why != DropBadDestination {
		t.Errorf("multicast register-stop: %v", why)
	}
	// The wildcard source: both stop.
	b, err = Marshal(stopFromRP(testG, netip.IPv6Unspecified()), testRP, addrDR)
	fatalIf(t, err)
	if why := p.ifc.HandlePacket(Packet{Src: testRP, Dst: addrDR, HopLimit: 64, Payload: b}); why != DropNone {
		t.Fatalf("register-stop: %v", why)
	}
	if d.regState(testS, testG) != RegPrune || d.regState(testS2, testG) != RegPrune {
		t.Errorf("wildcard register-stop: %v %v", d.regState(testS, testG), d.regState(testS2, testG))
	}
}

// TestRegisterNotForSSMOrLocalRP: no registering for an SSM group, nor
// when this router is the RP; the (S,G) route takes the source's
// interface all the same.
func TestRegisterNotForSSMOrLocalRP(t *testing.T) {
	_, u, d, _ := drRouter(t, func(c *RouterConfig) { c.Addresses = []netip.Addr{addrDR, testRP} })
	d.r.DataArrived(1, testS, testSSM)
	d.r.DataArrived(1, testS, testG)
	for _, g := range []netip.Addr{testSSM, testG} {
		if st := d.regState(testS, g); st != RegNoInfo {
			t.Errorf("%v: register state %v", g, st)
		}
		if rt, ok := d.route(testS, g); !ok || rt.RPFIface != 1 || rt.Flags&FlagSPT == 0 {
			t.Errorf("%v: route %+v", g, rt)
		}
	}
	if rt, _ := d.route(testS, testG); rt.Flags != FlagSPT|FlagLocalRP {
		t.Errorf("flags %v", rt.Flags)
	}
	if len(u.take()) != 0 {
		t.Error("unicast sent")
	}
}
