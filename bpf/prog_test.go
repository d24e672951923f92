package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/hotcast/hotcast/bpf/bpftest"
	"github.com/hotcast/hotcast/internal/netnstest"
)

const (
	xdpDrop     = 1
	xdpPass     = 2
	xdpRedirect = 4
)

var (
	srcS   = netip.MustParseAddr("2001:db8:40::2")
	grpG   = netip.MustParseAddr("ff3e::1:1")
	grpG2  = netip.MustParseAddr("ff3e::1:2")
	llSrc  = netip.MustParseAddr("fe80::2")
	otherS = netip.MustParseAddr("2001:db8:40::99")
)

// lo is the ingress interface of every synthetic run: BPF_PROG_TEST_RUN
// wants a device that exists, and loopback always does.
const lo = 1

// testEnv is a namespace with dummy interfaces: devmaps only take
// interfaces that exist in the writer's namespace, and test runs resolve
// ingress_ifindex there too. Every (sub)test body calls enter first.
type testEnv struct {
	ns   *netnstest.NS
	oifs []int // ifindexes of dummy0..3
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	ns := netnstest.New(t, "bpf")
	e := &testEnv{ns: ns}
	for i := range 4 {
		e.oifs = append(e.oifs, netnstest.Dummy(t, ns, fmt.Sprintf("dummy%d", i)).Index)
	}
	return e
}

func (e *testEnv) enter(t testing.TB) { e.ns.Enter(t) }

func openTest(t *testing.T) (*Dataplane, *testEnv) {
	t.Helper()
	e := newEnv(t)
	e.enter(t)
	d, err := Open(Options{})
	if err != nil {
		t.Fatalf("open dataplane: %+v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d, e
}

func run(t *testing.T, p *ebpf.Program, data []byte, ifindex int) (uint32, []byte) {
	t.Helper()
	ctx := ingressXdpMd{Data: 0, DataEnd: uint32(len(data)), IngressIfindex: uint32(ifindex)}
	out := make([]byte, len(data)+256)
	opts := &ebpf.RunOptions{Data: data, DataOut: out, Context: ctx, Repeat: 1}
	ret, err := p.Run(opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return ret, opts.DataOut
}

func reasonDelta(t *testing.T, d *Dataplane, before map[Reason]uint64) map[Reason]uint64 {
	t.Helper()
	after, err := d.Reasons()
	if err != nil {
		t.Fatal(err)
	}
	out := map[Reason]uint64{}
	for r, v := range after {
		if v != before[r] {
			out[r] = v - before[r]
		}
	}
	return out
}

func TestSpecLimits(t *testing.T) {
	spec, err := loadIngress()
	if err != nil {
		t.Fatal(err)
	}
	if got := spec.Maps["routes"].MaxEntries; got != maxRoutes {
		t.Errorf("routes max entries %d, Go says %d", got, maxRoutes)
	}
	if got := spec.Maps["oif_sets"].MaxEntries; got != maxOIfSets {
		t.Errorf("oif_sets max entries %d, Go says %d", got, maxOIfSets)
	}
	inner := spec.Maps["oif_sets"].InnerMap
	if got := inner.MaxEntries; got != maxSetOIfs {
		t.Errorf("inner max entries %d, Go says %d", got, maxSetOIfs)
	}
	if got := inner.ValueSize; got != uint32(binary.Size(devmapVal{})) {
		t.Errorf("inner value size %d, devmapVal is %d", got, binary.Size(devmapVal{}))
	}
	if got := spec.Maps["reasons"].MaxEntries; got != uint32(numReasons) {
		t.Errorf("reasons max entries %d, want %d", got, numReasons)
	}
	for _, r := range AllReasons() {
		if strings.HasPrefix(ReasonName(r), "reason_") {
			t.Errorf("reason %d has no name", r)
		}
	}
}

func TestIngress(t *testing.T) {
	d, env := openTest(t)
	oifA, oifB, noRoute := env.oifs[0], env.oifs[1], env.oifs[3]
	grpHost := netip.MustParseAddr("ff3e::77")
	routes := []Route{
		{RouteKey: RouteKey{Source: srcS, Group: grpG}, IIf: lo, OIfs: []int{oifA, oifB}},
		{RouteKey: RouteKey{Group: grpG}, IIf: lo, OIfs: []int{oifA}},
		{RouteKey: RouteKey{Group: grpG2}, IIf: 2, OIfs: []int{oifA}}, // RPF elsewhere
		{RouteKey: RouteKey{Source: otherS, Group: grpG2}, IIf: lo},   // empty set
		{RouteKey: RouteKey{Source: srcS, Group: netip.MustParseAddr("ff05::7")}, IIf: lo, OIfs: []int{oifB}},
		{RouteKey: RouteKey{Group: grpHost}, IIf: noRoute, OIfs: []int{oifA}},
	}
	if err := d.ReplaceRoutes(routes); err != nil {
		t.Fatal(err)
	}
	// An interface attached for VRRP6 alone does not route. (dummy3: not
	// ifindex 7, which a case below takes for another, routing, port.)
	if err := d.SetIface(noRoute, Iface{Gate: GateForward, SrcMAC: macA, NoRoute: true}); err != nil {
		t.Fatal(err)
	}
	udp := func(hl uint8) frame { return frame{src: srcS, dst: grpG, hopLimit: hl} }
	withExt := func(f frame, e ...extHdr) frame { f.ext = e; return f }
	dest := func(n int) extHdr {
		return extHdr{typ: 60, body: append([]byte{1, byte(n*8 + 4)}, make([]byte, n*8+4)...)}
	}
	frag := func(off uint16) extHdr {
		b := make([]byte, 6)
		binary.BigEndian.PutUint16(b, off<<3|1)
		return extHdr{typ: 44, body: b}
	}
	icmp := func(typ byte) []byte { return []byte{typ, 0, 0, 0, 0, 0, 0, 0} }

	tests := []struct {
		name    string
		f       frame
		raw     []byte
		ifindex int
		verdict uint32
		reason  Reason
		hopOut  int // expected hop limit in the output frame, -1 = unchanged check skipped
		stats   *RouteKey
	}{
		{name: "not ipv6 (arp)", f: frame{etherType: 0x0806, dstMAC: macB}, verdict: xdpPass, reason: ReasonPassNotIPv6},
		{name: "truncated vlan tag", raw: append(append([]byte{}, make([]byte, 12)...), 0x81, 0x00, 0x00), verdict: xdpDrop, reason: ReasonDropMalformed},
		{name: "truncated ipv6 header", f: func() frame { f := udp(64); f.truncate = 40; return f }(), verdict: xdpDrop, reason: ReasonDropMalformed},
		{name: "payload length beyond frame", f: func() frame { f := udp(64); f.payloadLenAdj = 1; return f }(), verdict: xdpDrop, reason: ReasonDropMalformed},
		{name: "ipv6 version field wrong", raw: func() []byte { b := udp(64).bytes(); b[14] = 0x40; return b }(), verdict: xdpDrop, reason: ReasonDropMalformed},
		{name: "unicast", f: frame{src: srcS, dst: netip.MustParseAddr("2001:db8:50::1"), dstMAC: macB, hopLimit: 64}, verdict: xdpPass, reason: ReasonPassUnicast},
		{name: "link-local scope ff02::1", f: frame{src: llSrc, dst: netip.MustParseAddr("ff02::1"), hopLimit: 1}, verdict: xdpPass, reason: ReasonPassLocalScope},
		{name: "interface-local scope ff01::1", f: frame{src: llSrc, dst: netip.MustParseAddr("ff01::1"), hopLimit: 1}, verdict: xdpPass, reason: ReasonPassLocalScope},
		{name: "vrrp to ff02::12", f: frame{src: llSrc, dst: netip.MustParseAddr("ff02::12"), hopLimit: 255, proto: 112}, verdict: xdpPass, reason: ReasonPassLocalScope},
		{name: "router alert", f: withExt(udp(64), hbh(true)), verdict: xdpPass, reason: ReasonPassRouterAlert},
		{name: "mldv1 report to global group (no hbh)", f: frame{src: llSrc, dst: grpG, hopLimit: 1, proto: 58, payload: append(icmp(131), grpG.AsSlice()...)}, verdict: xdpPass, reason: ReasonPassMLD},
		{name: "mldv2 report type 143", f: frame{src: llSrc, dst: grpG, hopLimit: 1, proto: 58, payload: icmp(143)}, verdict: xdpPass, reason: ReasonPassMLD},
		{name: "icmpv6 echo to a routed group is forwarded", f: frame{src: srcS, dst: grpG, hopLimit: 5, proto: 58, payload: icmp(128)}, verdict: xdpRedirect, reason: ReasonForwarded, hopOut: 4},
		{name: "icmpv6 truncated", f: frame{src: srcS, dst: grpG, hopLimit: 5, proto: 58, payload: []byte{}}, verdict: xdpDrop, reason: ReasonDropMalformed},
		{name: "pim", f: frame{src: srcS, dst: grpG, hopLimit: 5, proto: 103, payload: make([]byte, 8)}, verdict: xdpPass, reason: ReasonPassPIM},
		{name: "vrrp to a global group", f: frame{src: srcS, dst: grpG, hopLimit: 255, proto: 112, payload: make([]byte, 8)}, verdict: xdpPass, reason: ReasonPassVRRP},
		{name: "miss", f: frame{src: srcS, dst: netip.MustParseAddr("ff3e::dead"), hopLimit: 64}, verdict: xdpPass, reason: ReasonPassMiss},
		{name: "(S,G) hit", f: udp(64), verdict: xdpRedirect, reason: ReasonForwarded, hopOut: 63, stats: &RouteKey{Source: srcS, Group: grpG}},
		{name: "(*,G) hit from another source", f: frame{src: otherS, dst: grpG, hopLimit: 10}, verdict: xdpRedirect, reason: ReasonForwarded, hopOut: 9, stats: &RouteKey{Group: grpG}},
		{name: "(S,G) empty set beats (*,G)", f: frame{src: otherS, dst: grpG2, hopLimit: 10}, verdict: xdpDrop, reason: ReasonDropNoOIF},
		{name: "rpf failure", f: frame{src: srcS, dst: grpG2, hopLimit: 64}, verdict: xdpDrop, reason: ReasonDropRPF},
		{name: "rpf failure on another ingress", f: udp(64), ifindex: 7, verdict: xdpDrop, reason: ReasonDropRPF},
		{name: "hop limit 1", f: udp(1), verdict: xdpPass, reason: ReasonPassHopLimit},
		{name: "hop limit 0", f: udp(0), verdict: xdpPass, reason: ReasonPassHopLimit},
		{name: "hop limit 2", f: udp(2), verdict: xdpRedirect, reason: ReasonForwarded, hopOut: 1},
		{name: "site-local scope ff05 forwarded", f: frame{src: srcS, dst: netip.MustParseAddr("ff05::7"), hopLimit: 3}, verdict: xdpRedirect, reason: ReasonForwarded, hopOut: 2},
		{name: "hop-by-hop without router alert", f: withExt(udp(64), hbh(false)), verdict: xdpRedirect, reason: ReasonForwarded, hopOut: 63},
		{name: "dest opts, routing, first fragment", f: withExt(udp(64), dest(0), extHdr{typ: 43, body: []byte{0, 0, 0, 0, 0, 0}}, frag(0)), verdict: xdpRedirect, reason: ReasonForwarded, hopOut: 63},
		{name: "non-first fragment", f: withExt(frame{src: srcS, dst: grpG, hopLimit: 64, payload: make([]byte, 24)}, frag(185)), verdict: xdpRedirect, reason: ReasonForwarded, hopOut: 63},
		{name: "AH header", f: withExt(udp(64), extHdr{typ: 51, body: make([]byte, 14)}), verdict: xdpRedirect, reason: ReasonForwarded, hopOut: 63},
		{name: "hop-by-hop not first", f: withExt(udp(64), dest(0), hbh(false)), verdict: xdpDrop, reason: ReasonDropMalformed},
		{name: "extension chain too long", f: withExt(udp(64), dest(0), dest(0), dest(0), dest(0), dest(0), dest(0), dest(0), dest(0), dest(0)), verdict: xdpDrop, reason: ReasonDropMalformed},
		{name: "eight extension headers is fine", f: withExt(udp(64), dest(0), dest(0), dest(0), dest(0), dest(0), dest(0), dest(0), dest(0)), verdict: xdpRedirect, reason: ReasonForwarded, hopOut: 63},
		{name: "extension header truncated", f: withExt(frame{src: srcS, dst: grpG, hopLimit: 64, payload: []byte{}, payloadLenAdj: -40}, dest(5)), verdict: xdpDrop, reason: ReasonDropMalformed},
		{name: "not routing: a route's own iif goes to the stack", f: frame{src: srcS, dst: grpHost, hopLimit: 64}, ifindex: noRoute, verdict: xdpPass, reason: ReasonPassMiss},
		{name: "not routing: rpf failure goes to the stack", f: udp(64), ifindex: noRoute, verdict: xdpPass, reason: ReasonPassMiss},
		{name: "not routing: no route", f: frame{src: srcS, dst: netip.MustParseAddr("ff3e::dead"), hopLimit: 64}, ifindex: noRoute, verdict: xdpPass, reason: ReasonPassMiss},
		{name: "vlan tagged, stripped on the way out", f: func() frame { f := udp(64); f.vlan = 100; return f }(), verdict: xdpRedirect, reason: ReasonForwarded, hopOut: 63},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env.enter(t)
			data := tc.raw
			if data == nil {
				data = tc.f.bytes()
			}
			ifx := tc.ifindex
			if ifx == 0 {
				ifx = lo
			}
			var before RouteStats
			if tc.stats != nil {
				before = routeStats(t, d, *tc.stats)
			}
			reasons, _ := d.Reasons()
			verdict, out := run(t, d.progs.HcIngress, data, ifx)
			if verdict != tc.verdict {
				t.Fatalf("verdict %d, want %d", verdict, tc.verdict)
			}
			delta := reasonDelta(t, d, reasons)
			if len(delta) != 1 || delta[tc.reason] != 1 {
				t.Fatalf("reasons moved %v, want exactly %s+1", named(delta), ReasonName(tc.reason))
			}
			if tc.verdict == xdpPass && !bytes.Equal(out, data) {
				t.Errorf("passed frame was modified")
			}
			if tc.hopOut != 0 {
				off := 14
				if tc.f.vlan != 0 {
					if len(out) != len(data)-4 {
						t.Fatalf("output %d bytes, want %d (tag removed)", len(out), len(data)-4)
					}
					if !bytes.Equal(out[:12], data[:12]) || !bytes.Equal(out[12:14], []byte{0x86, 0xdd}) || !bytes.Equal(out[14:], dataWithHop(data[18:], out[21])) {
						t.Errorf("untagged copy differs from the tagged frame")
					}
				}
				if got := int(out[off+7]); got != tc.hopOut {
					t.Errorf("hop limit out %d, want %d", got, tc.hopOut)
				}
				// Nothing else changes.
				want := append([]byte{}, data...)
				if tc.f.vlan == 0 {
					want[off+7] = byte(tc.hopOut)
					if !bytes.Equal(out, want) {
						t.Errorf("output differs beyond the hop limit")
					}
				}
			}
			if tc.stats != nil {
				after := routeStats(t, d, *tc.stats)
				if after.Packets != before.Packets+1 || after.Bytes != before.Bytes+uint64(len(data)) {
					t.Errorf("route counters %d/%d -> %d/%d, want +1/+%d", before.Packets, before.Bytes, after.Packets, after.Bytes, len(data))
				}
			}
		})
	}
}

func dataWithHop(b []byte, hop byte) []byte {
	c := append([]byte{}, b...)
	c[7] = hop
	return c
}

func named(m map[Reason]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for r, v := range m {
		out[ReasonName(r)] = v
	}
	return out
}

func routeStats(t *testing.T, d *Dataplane, k RouteKey) RouteStats {
	t.Helper()
	rs, err := d.Routes()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.RouteKey == k.normalize() {
			return r
		}
	}
	t.Fatalf("route %s not found", k)
	return RouteStats{}
}

// The kernel refuses to run XDP on frames shorter than an Ethernet header,
// so the program never sees one; this pins that assumption down.
func TestShortFrameRefusedByKernel(t *testing.T) {
	d, _ := openTest(t)
	ctx := ingressXdpMd{DataEnd: 13, IngressIfindex: lo}
	if _, err := d.progs.HcIngress.Run(&ebpf.RunOptions{Data: make([]byte, 13), Context: ctx}); err == nil {
		t.Fatal("a 13-byte frame was run; the program must then handle it")
	}
}

func TestEgress(t *testing.T) {
	d, env := openTest(t)
	shim, err := bpftest.LoadEgressShim(d.maps.byName())
	if err != nil {
		t.Fatalf("%+v", err)
	}
	defer shim.Close()
	vmac := []byte{0x00, 0x00, 0x5e, 0x00, 0x02, 0x01}

	data := frame{src: srcS, dst: grpG, hopLimit: 63}.bytes()
	cases := []struct {
		name    string
		iface   *Iface
		data    []byte
		verdict uint32
		reason  Reason
		srcMAC  []byte
	}{
		{name: "unknown interface", data: data, verdict: xdpDrop, reason: ReasonEgressUnknown},
		{name: "muted", iface: &Iface{Gate: GateMuted, SrcMAC: macB}, data: data, verdict: xdpDrop, reason: ReasonEgressMuted},
		{name: "forward with own mac", iface: &Iface{Gate: GateForward, SrcMAC: macB}, data: data, verdict: xdpPass, reason: ReasonEgressSent, srcMAC: macB},
		{name: "forward with virtual mac", iface: &Iface{Gate: GateForward, SrcMAC: vmac}, data: data, verdict: xdpPass, reason: ReasonEgressSent, srcMAC: vmac},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env.enter(t)
			if tc.iface != nil {
				if err := d.SetIface(lo, *tc.iface); err != nil {
					t.Fatal(err)
				}
			} else if err := d.DeleteIface(lo); err != nil {
				t.Fatal(err)
			}
			reasons, _ := d.Reasons()
			verdict, out := run(t, shim, tc.data, lo)
			if verdict != tc.verdict {
				t.Fatalf("verdict %d, want %d", verdict, tc.verdict)
			}
			delta := reasonDelta(t, d, reasons)
			if len(delta) != 1 || delta[tc.reason] != 1 {
				t.Fatalf("reasons moved %v, want exactly %s+1", named(delta), ReasonName(tc.reason))
			}
			if tc.srcMAC != nil {
				if !bytes.Equal(out[6:12], tc.srcMAC) {
					t.Errorf("source mac %x, want %x", out[6:12], tc.srcMAC)
				}
				if !bytes.Equal(out[:6], tc.data[:6]) || !bytes.Equal(out[12:], tc.data[12:]) {
					t.Errorf("egress changed more than the source mac")
				}
			}
		})
	}
}

func TestRoutesAPI(t *testing.T) {
	d, env := openTest(t)
	k1 := RouteKey{Source: srcS, Group: grpG}
	k2 := RouteKey{Group: grpG2}
	o := env.oifs
	if err := d.ReplaceRoutes([]Route{{RouteKey: k1, IIf: 3, OIfs: []int{o[1], o[0], o[0]}}, {RouteKey: k2, IIf: 3, OIfs: []int{o[0], o[1]}}}); err != nil {
		t.Fatal(err)
	}
	if got := d.SetCount(); got != 1 {
		t.Errorf("routes with the same outgoing set use %d sets, want 1", got)
	}
	rs, err := d.Routes()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Group != grpG || len(rs[0].OIfs) != 2 || rs[0].OIfs[0] != min(o[0], o[1]) || rs[1].Group != grpG2 || !rs[1].IsStar() {
		t.Fatalf("routes %+v", rs)
	}
	// Replace k1 with another set: a second set appears; deleting k2 frees the first.
	if err := d.ReplaceRoutes([]Route{{RouteKey: k1, IIf: 3, OIfs: []int{o[2]}}}); err != nil {
		t.Fatal(err)
	}
	if got := d.SetCount(); got != 2 {
		t.Errorf("sets %d, want 2", got)
	}
	if err := d.DeleteRoutes([]RouteKey{k2, {Group: netip.MustParseAddr("ff3e::77")}}); err != nil {
		t.Fatal(err)
	}
	if got := d.SetCount(); got != 1 {
		t.Errorf("sets %d after delete, want 1", got)
	}
	var v ingressHcRoute
	if err := d.maps.Routes.Lookup(k2.bpfKey(), &v); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("deleted route still in the map: %v", err)
	}
	if err := d.maps.Routes.Lookup(k1.bpfKey(), &v); err != nil || v.Iif != 3 || v.SetId == 0 {
		t.Errorf("k1 in map: %+v, %v", v, err)
	}
	var inner *ebpf.Map
	if err := d.maps.OifSets.Lookup(v.SetId, &inner); err != nil {
		t.Fatalf("set %d: %v", v.SetId, err)
	}
	defer inner.Close()
	var dv devmapVal
	if err := inner.Lookup(uint32(o[2]), &dv); err != nil || dv.Ifindex != uint32(o[2]) {
		t.Errorf("set member 6: %+v %v", dv, err)
	}
	// A key twice in one call: the last one wins, and the first one's set
	// is not leaked (k1 {o2} -> {o0} -> {o1}: only {o1} remains).
	if err := d.ReplaceRoutes([]Route{{RouteKey: k1, IIf: 3, OIfs: []int{o[0]}}, {RouteKey: k1, IIf: 4, OIfs: []int{o[1]}}}); err != nil {
		t.Fatal(err)
	}
	if got := d.SetCount(); got != 1 {
		t.Errorf("sets %d after a duplicate key, want 1", got)
	}
	if err := d.maps.Routes.Lookup(k1.bpfKey(), &v); err != nil || v.Iif != 4 {
		t.Errorf("k1 after a duplicate key: %+v, %v", v, err)
	}
	if rs, err := d.Routes(); err != nil || len(rs) != 1 || rs[0].IIf != 4 || len(rs[0].OIfs) != 1 || rs[0].OIfs[0] != o[1] {
		t.Errorf("routes after a duplicate key: %+v, %v", rs, err)
	}
	// Bad routes are refused whole.
	bad := []Route{
		{RouteKey: RouteKey{Group: netip.MustParseAddr("2001:db8::1")}, IIf: 1},
		{RouteKey: RouteKey{Source: grpG, Group: grpG}, IIf: 1},
		{RouteKey: RouteKey{Group: grpG}, IIf: 0},
		{RouteKey: RouteKey{Group: grpG}, IIf: 1, OIfs: make([]int, maxSetOIfs+1)},
	}
	for _, r := range bad {
		if err := d.ReplaceRoutes([]Route{r}); err == nil {
			t.Errorf("route %+v accepted", r)
		}
	}
}

func TestInstall100k(t *testing.T) {
	d, env := openTest(t)
	rs := manyRoutes(100_000, env.oifs)
	if err := d.ReplaceRoutes(rs); err != nil {
		t.Fatal(err)
	}
	if n := d.maps.Routes.MaxEntries(); n < 100_000 {
		t.Fatalf("routes map holds %d", n)
	}
	var k ingressHcRouteKey
	var v ingressHcRoute
	n := 0
	it := d.maps.Routes.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 100_000 {
		t.Fatalf("%d routes in the map, want 100000", n)
	}
	if got := d.SetCount(); got != 4 {
		t.Errorf("%d sets, want 4 (shared)", got)
	}
}

func manyRoutes(n int, oifs []int) []Route {
	rs := make([]Route, n)
	for i := range rs {
		g := netip.AddrFrom16([16]byte{0xff, 0x3e, 14: byte(i >> 8), 15: byte(i), 10: byte(i >> 16)})
		rs[i] = Route{RouteKey: RouteKey{Source: srcS, Group: g}, IIf: 2, OIfs: []int{oifs[i%4]}}
	}
	return rs
}

func BenchmarkInstall100k(b *testing.B) {
	ns := netnstest.New(b, "bpf")
	var oifs []int
	for i := range 4 {
		oifs = append(oifs, netnstest.Dummy(b, ns, fmt.Sprintf("dummy%d", i)).Index)
	}
	ns.Enter(b)
	rs := manyRoutes(100_000, oifs)
	for b.Loop() {
		b.StopTimer()
		d, err := Open(Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := d.ReplaceRoutes(rs); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		d.Close()
		b.StartTimer()
	}
}
