package e2epim

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/ctrl/pim"
	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"
)

// hostileRP is R of TestHostilePIM: the RP (its loopback), taking
// Registers from 2001:db8:77::/64 only; ge1 towards the attacker, ge2
// towards a well-behaved peer. Its metrics listen in its namespace.
const hostileRP = `
sysname: R
api: {socket: "%SOCKET%", metrics-listen: "[::1]:9464"}
bpf: {pin-path: "%PIN%"}
multicast: {routing-enable: true}
loopback: {addresses: ["2001:db8:22::22/128"]}
pim:
  static-rp: [{address: "2001:db8:22::22"}]
  accept-register: ["2001:db8:77::/64"]
interfaces:
  - {name: ge1, addresses: ["2001:db8:66::1/64"], pim: {mode: sm}}
  - {name: ge2, addresses: ["2001:db8:67::1/64"], pim: {mode: sm}}
`

const hostileMetrics = "[::1]:9464"

var (
	hostileR1      = netip.MustParseAddr("2001:db8:66::1")  // R's ge1
	hostileAttG    = netip.MustParseAddr("2001:db8:66::2")  // the attacker's global address: no Registers taken from it
	hostileAuthDR  = netip.MustParseAddr("2001:db8:77::2")  // inside accept-register (forged)
	hostilePeerG   = netip.MustParseAddr("ff0e::77:1")      // the peer's (*,G) join
	hostileBadG    = netip.MustParseAddr("ff0e::bad:1")     // what the attacker asks for
	hostileWrongRP = netip.MustParseAddr("2001:db8:99::99") // an RP that is not RP(G)
	hostileRegS    = netip.MustParseAddr("2001:db8:77::99") // the Registers' inner source
)

// pimSock is a raw IPv6 socket of protocol 103 in a namespace, sending
// through one interface from any source (IPV6_FREEBIND: forged link-local
// and global sources alike), the checksum left as given (IPV6_CHECKSUM
// off).
type pimSock struct {
	fd      int
	ifindex int
}

func openPIMSock(t *testing.T, l *netnstest.Link) *pimSock {
	t.Helper()
	s := &pimSock{fd: -1, ifindex: l.Index}
	t.Cleanup(func() {
		if s.fd >= 0 {
			unix.Close(s.fd)
		}
	})
	l.NS.Do(t, func() error {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, pim.IPProtocol)
		if err != nil {
			return fmt.Errorf("pim socket: %w", err)
		}
		s.fd = fd
		for _, o := range []struct {
			name     string
			opt, val int
		}{
			{"IPV6_CHECKSUM", unix.IPV6_CHECKSUM, -1},
			{"IPV6_FREEBIND", unix.IPV6_FREEBIND, 1},
			{"IPV6_MULTICAST_IF", unix.IPV6_MULTICAST_IF, l.Index},
			{"IPV6_MULTICAST_LOOP", unix.IPV6_MULTICAST_LOOP, 0},
		} {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o.opt, o.val); err != nil {
				return fmt.Errorf("%s: %w", o.name, err)
			}
		}
		return nil
	})
	return s
}

// send puts msg on the wire from src to dst with the given hop limit
// (IPV6_MULTICAST_HOPS or IPV6_UNICAST_HOPS); multicast leaves through the
// socket's interface, unicast as the namespace's routes say.
func (s *pimSock) send(t *testing.T, src, dst netip.Addr, hopLimit int, msg []byte) {
	t.Helper()
	opt := unix.IPV6_UNICAST_HOPS
	sa := &unix.SockaddrInet6{Addr: dst.As16()}
	pi := unix.Inet6Pktinfo{Addr: src.As16()}
	if dst.IsMulticast() {
		opt = unix.IPV6_MULTICAST_HOPS
		sa.ZoneId = uint32(s.ifindex)
		pi.Ifindex = uint32(s.ifindex)
	}
	if err := unix.SetsockoptInt(s.fd, unix.IPPROTO_IPV6, opt, hopLimit); err != nil {
		t.Fatalf("hop limit %d: %v", hopLimit, err)
	}
	if err := unix.Sendmsg(s.fd, msg, unix.PktInfo6(&pi), sa, 0); err != nil {
		t.Fatalf("send %d octets %v -> %v: %v", len(msg), src, dst, err)
	}
}

func pimMarshal(t *testing.T, m pim.Message, src, dst netip.Addr) []byte {
	t.Helper()
	b, err := pim.Marshal(m, src, dst)
	if err != nil {
		t.Fatalf("marshal %v: %v", m.Type(), err)
	}
	return b
}

// pimResum recomputes the checksum of a doctored message.
func pimResum(b []byte, src, dst netip.Addr) []byte {
	binary.BigEndian.PutUint16(b[2:], 0)
	binary.BigEndian.PutUint16(b[2:], pim.Checksum(src, dst, b))
	return b
}

// innerPacket is an IPv6/UDP packet from s to g, what a DR registers.
func innerPacket(s, g netip.Addr) []byte {
	p := make([]byte, 40+8+4)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], 8+4)
	p[6] = unix.IPPROTO_UDP
	p[7] = 64
	s16, g16 := s.As16(), g.As16()
	copy(p[8:], s16[:])
	copy(p[24:], g16[:])
	binary.BigEndian.PutUint16(p[40:], 5000)
	binary.BigEndian.PutUint16(p[42:], 5000)
	binary.BigEndian.PutUint16(p[44:], 8+4)
	copy(p[48:], "evil")
	return p
}

// pimState is what R says of PIM at one moment.
type pimState struct {
	ifs   map[string]api.PIMInterface
	nbrs  []api.PIMNeighbor
	table api.PIMRoutingTable
	fwd   api.ForwardingTable
}

func (r *router) pimState(t *testing.T) pimState {
	t.Helper()
	var ifs []api.PIMInterface
	s := pimState{ifs: map[string]api.PIMInterface{}}
	for _, q := range []struct {
		path string
		v    any
	}{{api.PathPIMInterfaces, &ifs}, {api.PathPIMNeighbors, &s.nbrs}, {api.PathPIMRoutes, &s.table}, {api.PathForwardingTable, &s.fwd}} {
		if err := r.get(q.path, q.v); err != nil {
			t.Fatalf("%s: the API does not answer: %v", r.name, err)
		}
	}
	for _, i := range ifs {
		s.ifs[i.Interface] = i
	}
	return s
}

// routeKeys are the PIM and forwarding entries, without their timers.
func (s pimState) routeKeys() []string {
	var out []string
	for _, e := range s.table.Routes {
		var ds []string
		for _, d := range e.Downstreams {
			ds = append(ds, fmt.Sprintf("%s/joined=%v/local=%v", d.Interface, d.Joined, d.Local))
		}
		out = append(out, fmt.Sprintf("pim (%s,%s) rp=%s flags=%v up=%s via %s joined=%v down=%v",
			e.Source, e.Group, e.RP, e.Flags, e.UpstreamInterface, e.UpstreamNeighbor, e.Joined, ds))
	}
	for _, rt := range s.fwd.Routes {
		out = append(out, fmt.Sprintf("fwd (%s,%s) in=%s out=%v flags=%v", rt.Source, rt.Group, rt.Incoming, rt.Outgoing, rt.Flags))
	}
	slices.Sort(out)
	return out
}

// nbrKeys are the neighbours of iface ("" every interface), without their
// timers.
func (s pimState) nbrKeys(iface string) []string {
	var out []string
	for _, n := range s.nbrs {
		if iface != "" && n.Interface != iface {
			continue
		}
		var prio, gen string
		if n.DRPriority != nil {
			prio = strconv.FormatUint(uint64(*n.DRPriority), 10)
		}
		if n.GenerationID != nil {
			gen = strconv.FormatUint(uint64(*n.GenerationID), 16)
		}
		out = append(out, fmt.Sprintf("%s %s sec=%v prio=%s gen=%s hold=%v forever=%v dr=%v",
			n.Interface, n.Address, n.SecondaryAddresses, prio, gen, n.Holdtime, n.NeverExpires, n.IsDR))
	}
	slices.Sort(out)
	return out
}

// counterDelta is after - before by key, zero deltas left out.
func counterDelta(before, after map[string]uint64) map[string]int64 {
	out := map[string]int64{}
	for k := range maps.Keys(after) {
		if d := int64(after[k] - before[k]); d != 0 {
			out[k] = d
		}
	}
	for k := range maps.Keys(before) {
		if _, ok := after[k]; !ok && before[k] != 0 {
			out[k] = -int64(before[k])
		}
	}
	return out
}

// reached: every wanted delta is there (or beyond).
func reached(got, want map[string]int64) bool {
	for k, n := range want {
		if got[k] < n {
			return false
		}
	}
	return true
}

// hostileStep is one kind of hostile input and the exact change it may
// make: ge1's drops, received messages and neighbour counters, the
// router's Join/Prune and Register counters; nothing else moves, on ge1,
// ge2 or the router.
type hostileStep struct {
	name     string
	send     func()
	drops    map[string]int64 // ge1's drops by reason
	rx       map[string]int64 // ge1's received messages by type
	counters map[string]int64 // ge1's neighbour counters
	jp       map[string]int64 // the router's Join/Prune counters
	jpDrops  map[string]int64
	reg      map[string]int64 // the router's Register counters
	regDrops map[string]int64
	// newNbrs are ge1's neighbours the step adds; nbrLimit, when set,
	// checks ge1's neighbour table instead (the flood).
	newNbrs  []string
	nbrLimit func(before, after pimState)
}

func orEmpty(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}

// TestHostilePIM sends hostile PIM to a running hotcastd from a
// namespace on one of its links,
//
//	attacker:att0 --- ge1:R:ge2 --- peer0:peer
//
// R the RP (its loopback 2001:db8:22::22, Registers taken from
// 2001:db8:77::/64 only), the peer a well-behaved PIM router (the test's
// raw socket) joined to (*,ff0e::77:1). Each kind of hostile input is
// counted by reason, by exactly the number sent, in `display pim
// interface` or in the router's Join/Prune and Register drop counters;
// the routing table and the neighbour table do not change (a Hello with
// unknown options is accepted, as RFC 7761 §4.9.2 says; a flood of Hellos
// from forged sources stops at the interface's 128 neighbours); the
// daemon stays up, and its Prometheus metrics say what the API says.
func TestHostilePIM(t *testing.T) {
	netnstest.RequireRoot(t)
	hcd, hcctl := labtest.Binaries(t)
	nsR := netnstest.New(t, "hR")
	nsAtt := netnstest.New(t, "hAtt")
	nsPeer := netnstest.New(t, "hPeer")
	att, _ := netnstest.Veth(t, nsAtt, "att0", nsR, "ge1")
	peerEnd, _ := netnstest.Veth(t, nsPeer, "peer0", nsR, "ge2")
	att.AddAddr(t, hostileAttG.String()+"/64")
	peerEnd.AddAddr(t, "2001:db8:67::2/64")
	attLL := att.WaitLinkLocal(t)
	peerLL := peerEnd.WaitLinkLocal(t)

	r := start(t, nsR, hcd, hcctl, "R", hostileRP)
	dumpOnFailure(t, r)
	route6(t, nsAtt, rpAdr+"/128", hostileR1.String(), "att0")
	rp := netip.MustParseAddr(rpAdr)
	all := pim.AllPIMRouters

	var rLL1, rLL2 netip.Addr
	labtest.Eventually(t, 10*time.Second, "R's PIM interfaces up", func() bool {
		s := r.pimState(t)
		if s.ifs["ge1"].State != "up" || s.ifs["ge2"].State != "up" {
			return false
		}
		rLL1, rLL2 = netip.MustParseAddr(s.ifs["ge1"].Address), netip.MustParseAddr(s.ifs["ge2"].Address)
		return true
	})

	// The peer: a Hello that never expires, then a (*,G) join to R that
	// never expires either: state the hostile input must leave alone.
	peer := openPIMSock(t, peerEnd)
	peer.send(t, peerLL, all, 1, pimMarshal(t, &pim.Hello{Holdtime: new(uint16(pim.HoldtimeForever)),
		DRPriority: new(uint32(1)), GenerationID: new(uint32(0x9ee7))}, peerLL, all))
	labtest.Eventually(t, 5*time.Second, "the peer a neighbour on ge2", func() bool {
		return len(r.pimState(t).nbrKeys("ge2")) == 1
	})
	peer.send(t, peerLL, all, 1, pimMarshal(t, &pim.JoinPrune{UpstreamNeighbor: rLL2, Holdtime: pim.HoldtimeForever,
		Groups: []pim.GroupSet{{Group: pim.SingleGroup(hostilePeerG), Joins: []pim.Source{pim.StarG(rp)}}}}, peerLL, all))
	var peerRoute *api.PIMRoute
	labtest.Eventually(t, 5*time.Second, "R's (*,G) for the peer's join", func() bool {
		e := r.pimRoute("", hostilePeerG)
		peerRoute = e
		return e != nil && slices.Contains(e.Flags, "LocalRP") && len(e.Downstreams) == 1 && e.Downstreams[0].Interface == "ge2"
	})
	// A join with Holdtime 0xffff is held until pruned (RFC 7761 §4.9.5):
	// the downstream is joined, with no local listener there.
	if d := peerRoute.Downstreams[0]; !d.Joined || d.Local {
		t.Errorf("R: (*,%v) downstream ge2 from a join of Holdtime 0xffff: %+v, want joined, not local", hostilePeerG, d)
	}

	atk := openPIMSock(t, att)
	hello := func(src netip.Addr, opts ...pim.Option) []byte {
		// DR priority 0: R (priority 1) stays the DR of ge1, whoever is
		// accepted as a neighbour.
		return pimMarshal(t, &pim.Hello{Holdtime: new(uint16(600)), DRPriority: new(uint32(0)),
			GenerationID: new(uint32(0xbad)), Unknown: opts}, src, all)
	}
	jpTo := func(src, up netip.Addr, sets ...pim.GroupSet) []byte {
		return pimMarshal(t, &pim.JoinPrune{UpstreamNeighbor: up, Holdtime: 210, Groups: sets}, src, all)
	}
	starG := func(g, rp netip.Addr) pim.GroupSet {
		return pim.GroupSet{Group: pim.SingleGroup(g), Joins: []pim.Source{pim.StarG(rp)}}
	}
	register := func(src netip.Addr) []byte {
		return pimMarshal(t, &pim.Register{Packet: innerPacket(hostileRegS, hostileBadG)}, src, rp)
	}
	repeat := func(n int, f func(k int)) func() {
		return func() {
			for k := range n {
				f(k)
			}
		}
	}
	const flood = 150
	forged := func(k int) netip.Addr {
		return netip.AddrFrom16([16]byte{0xfe, 0x80, 11: 0xf1, 12: 0xf1, 14: byte(k >> 8), 15: byte(k)})
	}

	steps := []hostileStep{{
		name: "Hello with a bad checksum",
		send: func() {
			for k := range 3 {
				b := hello(attLL)
				if k < 2 {
					b[2] ^= 0x5a // the checksum field
				} else {
					b[len(b)-1] ^= 0x01 // the body under a checksum that was right
				}
				atk.send(t, attLL, all, 1, b)
			}
		},
		drops: map[string]int64{"bad-checksum": 3},
	}, {
		name:  "Hello with hop limit 2",
		send:  repeat(3, func(int) { atk.send(t, attLL, all, 2, hello(attLL)) }),
		drops: map[string]int64{"bad-hop-limit": 3},
	}, {
		name: "Hello with an option running past the end",
		send: repeat(3, func(int) {
			b := hello(attLL)
			b = binary.BigEndian.AppendUint16(b, pim.OptGenerationID)
			b = binary.BigEndian.AppendUint16(b, 8) // 8 octets announced, 2 present
			b = append(b, 0xde, 0xad)
			atk.send(t, attLL, all, 1, pimResum(b, attLL, all))
		}),
		drops: map[string]int64{"truncated": 3},
	}, {
		name:  "Join/Prune from a router that sent no Hello",
		send:  repeat(3, func(int) { atk.send(t, attLL, all, 1, jpTo(attLL, rLL1, starG(hostileBadG, rp))) }),
		drops: map[string]int64{"not-neighbor": 3},
	}, {
		name: "truncated Join/Prune",
		send: func() {
			good := jpTo(attLL, rLL1, pim.GroupSet{Group: pim.SingleGroup(hostileBadG),
				Joins: []pim.Source{pim.StarG(rp), pim.SG(hostileRegS)}})
			// The source list cut short, twice; then three groups
			// announced, one present.
			for range 2 {
				atk.send(t, attLL, all, 1, pimResum(slices.Clone(good[:len(good)-7]), attLL, all))
			}
			b := slices.Clone(good)
			b[4+18+1] = 3 // Num groups
			atk.send(t, attLL, all, 1, pimResum(b, attLL, all))
		},
		drops: map[string]int64{"truncated": 3},
	}, {
		name: "Register from a DR outside accept-register",
		send: repeat(3, func(int) { atk.send(t, hostileAttG, rp, 64, register(hostileAttG)) }),
		// The interface takes it (unicast, routable addresses); the RP
		// refuses it.
		rx:       map[string]int64{"register": 3},
		regDrops: map[string]int64{"unauthorized": 3},
	}, {
		name: "Register with a bad checksum from an accepted DR",
		send: repeat(3, func(int) {
			b := register(hostileAuthDR)
			b[3] ^= 0xa5
			atk.send(t, hostileAuthDR, rp, 64, b)
		}),
		drops: map[string]int64{"bad-checksum": 3},
	}, {
		// RFC 7761 §4.9.2: unknown options are ignored, the Hello is
		// taken. ctrl/pim keeps them in Hello.Unknown and makes the
		// sender a neighbour with the options it knows.
		name: "Hello with unknown options",
		send: func() {
			atk.send(t, attLL, all, 1, hello(attLL, pim.Option{Type: 65001, Value: []byte{1, 2, 3}}, pim.Option{Type: 21}))
		},
		rx:       map[string]int64{"hello": 1},
		counters: map[string]int64{"neighbors_up": 1},
		newNbrs:  []string{fmt.Sprintf("ge1 %s sec=[] prio=0 gen=bad hold=600 forever=false dr=false", attLL)},
	}, {
		// Now a neighbour: its Join/Prunes reach the router, which
		// ignores what it cannot take.
		name: "Join/Prune from a neighbour: a wrong RP, a link-scope group, to a stranger",
		send: func() {
			atk.send(t, attLL, all, 1, jpTo(attLL, rLL1, starG(hostileBadG, hostileWrongRP), starG(netip.MustParseAddr("ff02::bad:2"), rp)))
			atk.send(t, attLL, all, 1, jpTo(attLL, netip.MustParseAddr("fe80::5742:4e67"), starG(hostileBadG, rp)))
		},
		rx:      map[string]int64{"join-prune": 2},
		jp:      map[string]int64{"received": 1},
		jpDrops: map[string]int64{"rp-mismatch": 1, "bad-group": 1, "not-for-us": 1},
	}, {
		name: fmt.Sprintf("Hello flood from %d forged link-local sources", flood),
		send: func() {
			for k := range flood {
				atk.send(t, forged(k), all, 1, hello(forged(k)))
				if k%10 == 9 {
					time.Sleep(2 * time.Millisecond) // paced: R's socket buffer is not under test
				}
			}
		},
		// Set in the loop below from the table before the flood.
		nbrLimit: func(before, after pimState) {
			if n := after.ifs["ge1"].Neighbors; n != pim.DefaultMaxNeighbors {
				t.Errorf("ge1: %d neighbours after the flood, want the limit %d", n, pim.DefaultMaxNeighbors)
			}
			if n := len(after.nbrKeys("ge1")); n != pim.DefaultMaxNeighbors {
				t.Errorf("display pim neighbor: %d on ge1 after the flood, want %d", n, pim.DefaultMaxNeighbors)
			}
			// The neighbours from before are all still there.
			now := after.nbrKeys("ge1")
			for _, k := range before.nbrKeys("ge1") {
				if !slices.Contains(now, k) {
					t.Errorf("ge1's neighbour %q gone or changed after the flood", k)
				}
			}
		},
	}}

	for _, st := range steps {
		before := r.pimState(t)
		if st.nbrLimit != nil {
			free := int64(pim.DefaultMaxNeighbors - before.ifs["ge1"].Neighbors)
			st.rx = map[string]int64{"hello": free}
			st.counters = map[string]int64{"neighbors_up": free}
			st.drops = map[string]int64{"too-many-neighbors": flood - free}
		}
		st.send()
		var after pimState
		deltas := func() (drops, rx, counters, jp, jpDrops, reg, regDrops map[string]int64) {
			a1, b1 := after.ifs["ge1"], before.ifs["ge1"]
			as, bs := after.table.Statistics, before.table.Statistics
			return counterDelta(b1.Drops, a1.Drops), counterDelta(b1.Received, a1.Received), counterDelta(b1.Counters, a1.Counters),
				counterDelta(bs.JoinPrune, as.JoinPrune), counterDelta(bs.JoinPruneDrops, as.JoinPruneDrops),
				counterDelta(bs.Register, as.Register), counterDelta(bs.RegisterDrops, as.RegisterDrops)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			after = r.pimState(t)
			drops, rx, counters, jp, jpDrops, reg, regDrops := deltas()
			if reached(drops, st.drops) && reached(rx, st.rx) && reached(counters, st.counters) && reached(jp, st.jp) &&
				reached(jpDrops, st.jpDrops) && reached(reg, st.reg) && reached(regDrops, st.regDrops) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // anything beyond what was wanted has arrived too
		after = r.pimState(t)
		drops, rx, counters, jp, jpDrops, reg, regDrops := deltas()
		t.Logf("%s: ge1 drops %v, received %v, counters %v; router join/prune %v, drops %v; register %v, drops %v; ge1 neighbours %d",
			st.name, drops, rx, counters, jp, jpDrops, reg, regDrops, after.ifs["ge1"].Neighbors)
		for _, c := range []struct {
			what      string
			got, want map[string]int64
		}{
			{"ge1 drops", drops, st.drops}, {"ge1 received", rx, st.rx}, {"ge1 counters", counters, st.counters},
			{"router join/prune", jp, st.jp}, {"router join/prune drops", jpDrops, st.jpDrops},
			{"router register", reg, st.reg}, {"router register drops", regDrops, st.regDrops},
		} {
			if !maps.Equal(c.got, orEmpty(c.want)) {
				t.Errorf("%s: %s changed by %v, want %v", st.name, c.what, c.got, orEmpty(c.want))
			}
		}
		// ge2 hears nothing of it.
		a2, b2 := after.ifs["ge2"], before.ifs["ge2"]
		for _, c := range []struct {
			what          string
			before, after map[string]uint64
		}{{"drops", b2.Drops, a2.Drops}, {"received", b2.Received, a2.Received}, {"counters", b2.Counters, a2.Counters}} {
			if d := counterDelta(c.before, c.after); len(d) != 0 {
				t.Errorf("%s: ge2 %s changed by %v", st.name, c.what, d)
			}
		}
		if got, want := after.routeKeys(), before.routeKeys(); !slices.Equal(got, want) {
			t.Errorf("%s: routes changed:\n  before %q\n  after  %q", st.name, want, got)
		}
		if got, want := after.nbrKeys("ge2"), before.nbrKeys("ge2"); !slices.Equal(got, want) {
			t.Errorf("%s: ge2's neighbours changed:\n  before %q\n  after  %q", st.name, want, got)
		}
		if st.nbrLimit != nil {
			st.nbrLimit(before, after)
		} else {
			want := slices.Sorted(slices.Values(append(before.nbrKeys("ge1"), st.newNbrs...)))
			if got := after.nbrKeys("ge1"); !slices.Equal(got, want) {
				t.Errorf("%s: ge1's neighbours:\n  got  %q\n  want %q", st.name, got, want)
			}
		}
		if !after.ifs["ge1"].IsDR || after.ifs["ge2"].IsDR != before.ifs["ge2"].IsDR {
			t.Errorf("%s: R's DR state moved: ge1 %v, ge2 %v -> %v", st.name, after.ifs["ge1"].IsDR, before.ifs["ge2"].IsDR, after.ifs["ge2"].IsDR)
		}
		hostileAlive(t, r, st.name)
	}

	// The metrics say what the API says.
	final := r.pimState(t)
	fams := scrapeMetrics(t, nsR, hostileMetrics)
	series := func(name string, labels map[string]string) (float64, bool) {
	next:
		for _, m := range fams[name] {
			for k, v := range labels {
				if m.labels[k] != v {
					continue next
				}
			}
			return m.value, true
		}
		return 0, false
	}
	for _, name := range []string{"ge1", "ge2"} {
		for _, reason := range pim.DropReasons() {
			v, ok := series("hotcast_pim_drops_total", map[string]string{"sysname": "R", "interface": name, "reason": reason.String()})
			if want := final.ifs[name].Drops[reason.String()]; !ok || v != float64(want) {
				t.Errorf("hotcast_pim_drops_total{interface=%q,reason=%q} = %v (present %v), the API says %d", name, reason, v, ok, want)
			}
		}
		if v, ok := series("hotcast_pim_neighbors", map[string]string{"interface": name}); !ok || v != float64(final.ifs[name].Neighbors) {
			t.Errorf("hotcast_pim_neighbors{interface=%q} = %v (present %v), the API says %d", name, v, ok, final.ifs[name].Neighbors)
		}
	}
	for reason, want := range final.table.Statistics.RegisterDrops {
		if v, ok := series("hotcast_pim_register_drops_total", map[string]string{"reason": reason}); !ok || v != float64(want) {
			t.Errorf("hotcast_pim_register_drops_total{reason=%q} = %v (present %v), the API says %d", reason, v, ok, want)
		}
	}
	for reason, want := range final.table.Statistics.JoinPruneDrops {
		if v, ok := series("hotcast_pim_joinprune_drops_total", map[string]string{"reason": reason}); !ok || v != float64(want) {
			t.Errorf("hotcast_pim_joinprune_drops_total{reason=%q} = %v (present %v), the API says %d", reason, v, ok, want)
		}
	}
	// Everything sent is in the totals.
	for reason, want := range map[string]uint64{"bad-checksum": 6, "bad-hop-limit": 3, "truncated": 6, "not-neighbor": 3} {
		if got := final.ifs["ge1"].Drops[reason]; got != want {
			t.Errorf("ge1 drops[%s] = %d at the end, want %d", reason, got, want)
		}
	}
	if log := r.d.Log(); strings.Contains(log, "panic:") || strings.Contains(log, "fatal error:") {
		t.Errorf("hotcastd's log has a panic:\n%s", lastLines(log, 40))
	}
}

// hostileAlive fails the test unless R's API answers and its process runs.
func hostileAlive(t *testing.T, r *router, after string) {
	t.Helper()
	var ft api.ForwardingTable
	if err := r.get(api.PathForwardingTable, &ft); err != nil {
		t.Fatalf("after %s: R's API does not answer: %v\n%s", after, err, lastLines(r.d.Log(), 40))
	}
	if !daemonRunning(r.d.Config) {
		t.Fatalf("after %s: no hotcastd process runs %s\n%s", after, r.d.Config, lastLines(r.d.Log(), 40))
	}
}

// daemonRunning reports whether a live (not zombie) process runs with
// --config cfg and without --cleanup.
func daemonRunning(cfg string) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		i := slices.Index(args, "--config")
		if i < 0 || i+1 >= len(args) || args[i+1] != cfg || slices.Contains(args, "--cleanup") || !strings.HasSuffix(args[0], "hotcastd") {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if j := bytes.LastIndexByte(stat, ')'); j > 0 && j+2 < len(stat) && stat[j+2] != 'Z' {
			return true
		}
	}
	return false
}

// scrapeMetrics GETs /metrics at addr from inside ns (the connection is
// made there: the socket belongs to the namespace it was created in).
func scrapeMetrics(t *testing.T, ns *netnstest.NS, addr string) map[string][]metricSample {
	t.Helper()
	var body []byte
	ns.Do(t, func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			return err
		}
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: hotcastd\r\nConnection: close\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /metrics: %s", resp.Status)
		}
		body, err = io.ReadAll(resp.Body)
		return err
	})
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string][]metricSample{}
	for name, mf := range fams {
		for _, m := range mf.GetMetric() {
			s := metricSample{labels: map[string]string{}}
			for _, lp := range m.GetLabel() {
				s.labels[lp.GetName()] = lp.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				s.value = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				s.value = m.GetGauge().GetValue()
			default:
				s.value = m.GetUntyped().GetValue()
			}
			out[name] = append(out[name], s)
		}
	}
	return out
}

// metricSample is one series of a scrape: its labels and value.
type metricSample struct {
	labels map[string]string
	value  float64
}
