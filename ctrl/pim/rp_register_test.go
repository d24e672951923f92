package pim

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// rpRouter is P, the RP (testRP is its address): receivers' routers on
// ifindex 1 (N1), S reached through U on ifindex 2. Registers are handed
// to its ifindex-2 port, as the unicast socket would.
func rpRouter(t *testing.T, directS bool, mod func(*RouterConfig)) (*tnet, *tucast, *tdata, *trouter, *tport, *tport) {
	n := newNet(t)
	u := newUcast(n)
	data := &tdata{}
	p := n.router("P", func(c *RouterConfig) {
		c.Addresses = []netip.Addr{testRP}
		c.Unicast = u.sender()
		c.OnRegisterData = data.on
		if mod != nil {
			mod(c)
		}
	})
	if directS {
		p.rpf.Set(srcPfx, RPFRoute{Ifindex: 2})
	} else {
		p.rpf.Set(srcPfx, RPFRoute{Ifindex: 2, Nexthop: llU})
	}
	down := p.attach(1, n.lan("d"), llR, IfaceOptions{}, nil)
	up := p.attach(2, n.lan("u"), llRu, IfaceOptions{}, nil)
	down.fakeNeighbor(llN1, 1, 1)
	up.fakeNeighbor(llU, 1, 3)
	n.run(10 * time.Second)
	p.take()
	return n, u, data, p, down, up
}

// deliver hands port p a unicast PIM message from src to dst.
func deliver(t *testing.T, p *tport, src, dst netip.Addr, m Message) DropReason {
	t.Helper()
	b, err := Marshal(m, src, dst)
	fatalIf(t, err)
	return p.ifc.HandlePacket(Packet{Src: src, Dst: dst, HopLimit: 64, Payload: b})
}

func joinStarG(down *tport, g netip.Addr) {
	down.inject(llN1, jpTo(llR, 210, gset(g, []Source{StarG(testRP)}, nil)))
}

// TestRegisterRP walks §4.4.2 at the RP: a Null-Register and a Register
// with receivers downstream (the data out on the RP tree, the KAT, the
// join towards S), the SPT bit set by native data, then Register-Stops;
// a Register nobody wants (Register-Stop at once, KAT at
// RP_Keepalive_Period); the Border bit's PMBR.
func TestRegisterRP(t *testing.T) {
	n, u, data, p, down, up := rpRouter(t, false, nil)
	joinStarG(down, testG)
	rt, ok := p.route(netip.Addr{}, testG)
	if !ok || rt.RPFIface != 0 || rt.UpstreamNeighbor.IsValid() || !rt.Joined || rt.Flags != FlagWC|FlagRPT|FlagLocalRP || !slices.Equal(p.oifs(netip.Addr{}, testG), []int{1}) {
		t.Fatalf("(*,G) at the RP %+v", rt)
	}
	if got := jpEntries(p.take()); len(got) != 0 {
		t.Fatalf("the RP joined towards itself: %q", got)
	}

	// Null-Register: nothing to forward, no Register-Stop (receivers
	// want S); the KAT starts and the RP joins the SPT towards S.
	if why := deliver(t, up, addrDR, testRP, NullRegister(testS, testG)); why != DropNone {
		t.Fatal(why)
	}
	if len(data.take()) != 0 || len(u.take()) != 0 {
		t.Fatal("null-register: data out or register-stop sent")
	}
	wantEntries(t, "null-register", jpEntries(p.take()), "if2 fe80::99 ff1e::1234 join (S,G) 2001:db8:5::10")
	if got := p.katLeft(testS, testG); got != KeepalivePeriod {
		t.Errorf("KAT %v", got)
	}

	// Register: the inner packet to inherited_olist(S,G,rpt).
	n.run(time.Second)
	pkt := dataPacket(testS, testG, 200)
	deliver(t, up, addrDR, testRP, &Register{Packet: pkt})
	got := data.take()
	if len(got) != 1 || got[0].Source != testS || got[0].Group != testG || !slices.Equal(got[0].OIfs, []int{1}) || !bytes.Equal(got[0].Packet, pkt) {
		t.Fatalf("decapsulated %+v", got)
	}
	if len(u.take()) != 0 {
		t.Fatal("register-stop before the SPT")
	}
	if got := p.katLeft(testS, testG); got != KeepalivePeriod {
		t.Errorf("KAT not restarted: %v", got)
	}
	rt, _ = p.route(testS, testG)
	if rt.RPFIface != 2 || rt.UpstreamNeighbor != llU || rt.Flags != FlagSPT|FlagLocalRP || !slices.Equal(p.oifs(testS, testG), []int{1}) {
		t.Errorf("(S,G) at the RP %+v", rt)
	}

	// Native data on RPF_interface(S): the SPT bit (Update_SPTbit).
	p.r.DataArrived(2, testS, testG)
	if !p.sptBit(testS, testG) {
		t.Fatal("no SPT bit after native data")
	}
	// Register with the SPT bit: Register-Stop, nothing forwarded.
	deliver(t, up, addrDR, testRP, &Register{Packet: pkt})
	s := ofType(u.take(), TypeRegisterStop)
	if len(s) != 1 || s[0].src != testRP || s[0].dst != addrDR {
		t.Fatalf("register-stop %+v", s)
	}
	if rs := s[0].msg.(*RegisterStop); rs.Group != SingleGroup(testG) || rs.Source != testS {
		t.Errorf("register-stop %+v", rs)
	}
	if len(data.take()) != 0 {
		t.Error("forwarded with the SPT bit set")
	}
	deliver(t, up, addrDR, testRP, NullRegister(testS, testG))
	if len(ofType(u.take(), TypeRegisterStop)) != 1 {
		t.Error("no register-stop for the probe")
	}

	// Nobody wants S2: Register-Stop at once, the KAT at
	// RP_Keepalive_Period = 3 × 60 + 5 s, no join, the packet dropped.
	deliver(t, up, addrDR, testRP, &Register{Packet: dataPacket(testS2, testG2, 10)})
	if len(ofType(u.take(), TypeRegisterStop)) != 1 || len(data.take()) != 0 || len(jpEntries(p.take())) != 0 {
		t.Fatal("register of an unwanted source")
	}
	if got := p.katLeft(testS2, testG2); got != 185*time.Second {
		t.Errorf("RP KAT %v, want 185s", got)
	}
	if rt, _ := p.route(testS2, testG2); rt.RPFIface != 2 || len(rt.OIfs) != 0 || rt.Joined || rt.Flags != FlagSPT|FlagLocalRP {
		t.Errorf("(S2,G2) at the RP %+v", rt)
	}
	n.run(185*time.Second - time.Millisecond)
	if _, ok := p.route(testS2, testG2); !ok {
		t.Fatal("(S2,G2) gone before RP_Keepalive_Period")
	}
	n.run(time.Millisecond)
	if _, ok := p.route(testS2, testG2); ok {
		t.Error("(S2,G2) kept after RP_Keepalive_Period")
	}

	// Border bit: the first registrar is PMBR(S,G); another one gets a
	// Register-Stop and its packet is dropped.
	joinStarG(down, testG2)
	deliver(t, up, addrDR, testRP, &Register{Border: true, Packet: dataPacket(testS2, testG2, 10)})
	if len(data.take()) != 1 {
		t.Error("PMBR's register not forwarded")
	}
	deliver(t, up, addrLH, testRP, &Register{Border: true, Packet: dataPacket(testS2, testG2, 10)})
	if s := ofType(u.take(), TypeRegisterStop); len(s) != 1 || s[0].dst != addrLH || len(data.take()) != 0 {
		t.Errorf("second PMBR: stops %+v", s)
	}
	if st := p.r.Stats(); st.RegisterRx != 7 || st.RegisterDecap != 2 || st.RegisterStopTx != 4 || st.RegisterDrops[RegDropPMBR] != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestRegisterRPHostile: Registers from unauthorised DRs, for denied
// sources, with bad inner packets, for SSM groups or not to us are
// dropped and counted, with no state, no message and no data out.
func TestRegisterRPHostile(t *testing.T) {
	_, u, data, p, down, up := rpRouter(t, false, func(c *RouterConfig) {
		c.AcceptRegister = []netip.Prefix{netip.PrefixFrom(addrDR, 128)}
		c.AcceptRegisterSources = []netip.Prefix{srcPfx}
		c.Addresses = append(c.Addresses, addrLH)
	})
	_ = down
	good := dataPacket(testS, testG, 20)
	mod := func(f func([]byte)) []byte { b := slices.Clone(good); f(b); return b }
	ll := netip.MustParseAddr("fe80::5").As16()
	uc := netip.MustParseAddr("2001:db8::9").As16()
	ff02 := netip.MustParseAddr("ff02::1").As16()
	for _, c := range []struct {
		name     string
		src, dst netip.Addr
		pkt      []byte
		want     RegDropReason
	}{
		{"unauthorised DR", addrBad, testRP, good, RegDropUnauthorized},
		{"denied source", addrDR, testRP, dataPacket(netip.MustParseAddr("2001:db8:7::1"), testG, 20), RegDropSourceDenied},
		{"empty", addrDR, testRP, nil, RegDropBadInner},
		{"truncated", addrDR, testRP, good[:39], RegDropBadInner},
		{"ipv4", addrDR, testRP, mod(func(b []byte) { b[0] = 0x45 }), RegDropBadInner},
		{"payload length", addrDR, testRP, append(slices.Clone(good), 0), RegDropBadInner},
		{"jumbo", addrDR, testRP, mod(func(b []byte) { b[4], b[5] = 0, 0 }), RegDropBadInner},
		{"link-local source", addrDR, testRP, mod(func(b []byte) { copy(b[8:24], ll[:]) }), RegDropBadInner},
		{"unicast group", addrDR, testRP, mod(func(b []byte) { copy(b[24:40], uc[:]) }), RegDropBadInner},
		{"link-scope group", addrDR, testRP, mod(func(b []byte) { copy(b[24:40], ff02[:]) }), RegDropBadInner},
		{"ssm group", addrDR, testRP, dataPacket(testS, testSSM, 20), RegDropSSM},
		{"not to us", addrDR, addrBad, good, RegDropNotForUs},
	} {
		d, why := p.r.HandleRegister(c.src, c.dst, &Register{Packet: c.pkt})
		if why != c.want || len(d.OIfs) != 0 {
			t.Errorf("%s: %v %+v, want %v", c.name, why, d, c.want)
		}
		// And through the Interface and HandleMessage.
		deliver(t, up, c.src, c.dst, &Register{Packet: c.pkt})
	}
	if rs := p.r.Routes(); len(rs) != 0 {
		t.Errorf("state made: %+v", rs)
	}
	if len(u.take()) != 0 || len(data.take()) != 0 || len(p.take()) != 0 {
		t.Error("hostile registers made messages or data")
	}
	st := p.r.Stats()
	if st.RegisterRx != 0 || st.RegisterDrops[RegDropBadInner] != 16 || st.RegisterDrops[RegDropUnauthorized] != 2 || st.RegisterDrops[RegDropSSM] != 2 {
		t.Errorf("stats %+v", st)
	}
	// To one of our addresses that is not RP(G): a Register-Stop, no state.
	if _, why := p.r.HandleRegister(addrDR, addrLH, &Register{Packet: good}); why != RegDropNotRP {
		t.Errorf("register to a non-RP address: %v", why)
	}
	if s := ofType(u.take(), TypeRegisterStop); len(s) != 1 || s[0].src != addrLH || s[0].dst != addrDR {
		t.Errorf("register-stop %+v", s)
	}
	if rs := p.r.Routes(); len(rs) != 0 {
		t.Errorf("state made: %+v", rs)
	}
	// A bad checksum never reaches the Router.
	b, err := Marshal(&Register{Packet: good}, addrDR, testRP)
	fatalIf(t, err)
	b[2] ^= 0xff
	if why := up.ifc.HandlePacket(Packet{Src: addrDR, Dst: testRP, HopLimit: 64, Payload: b}); why != DropBadChecksum {
		t.Errorf("bad checksum: %v", why)
	}
}

// TestRPFirstHop: the RP with a directly connected source forwards
// natively, without registering: (S,G) with the source's interface as
// incoming interface and the (*,G) receivers as olist, until the KAT
// expires.
func TestRPFirstHop(t *testing.T) {
	n, u, _, p, down, _ := rpRouter(t, true, nil)
	joinStarG(down, testG)
	p.take()
	p.r.DataArrived(2, testS, testG)
	rt, ok := p.route(testS, testG)
	if !ok || rt.RPFIface != 2 || rt.UpstreamNeighbor.IsValid() || rt.Flags != FlagSPT|FlagLocalRP|FlagSPTBit || !slices.Equal(p.oifs(testS, testG), []int{1}) {
		t.Fatalf("(S,G) at the first-hop RP %+v", rt)
	}
	if p.regState(testS, testG) != RegNoInfo || p.r.ShouldRegister(testS, testG) || !p.sptBit(testS, testG) {
		t.Error("the RP registers to itself, or no SPT bit")
	}
	if len(u.take()) != 0 || len(jpEntries(p.take())) != 0 {
		t.Error("messages sent")
	}
	n.run(200 * time.Second)
	joinStarG(down, testG) // the (*,G) join refreshed, not the data
	n.run(10*time.Second - time.Millisecond)
	if _, ok := p.route(testS, testG); !ok {
		t.Fatal("(S,G) gone before the KAT")
	}
	n.run(time.Millisecond)
	if _, ok := p.route(testS, testG); ok {
		t.Error("(S,G) kept after the KAT")
	}
	if _, ok := p.route(netip.Addr{}, testG); !ok {
		t.Error("(*,G) gone")
	}
}
