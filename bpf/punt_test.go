package bpf

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// Punt routes (RoutePunt, HC_ROUTE_F_PUNT): the control plane reads their
// packets. With outgoing interfaces the frame goes to TC for replication
// (XDP_PASS with the set id in the metadata, hop limit decremented once,
// counted forwarded_clone): packet sockets see it on the way. With none it
// goes to the stack as it came (pass_punt). The route's counters count
// both; the RPF check and the hop limit rule stay first.
// hcMetaMagic is HC_META_MAGIC ("hcM1").
const hcMetaMagic = 0x68634d31

func TestIngressPunt(t *testing.T) {
	d, env := openTest(t)
	grpWatch := netip.MustParseAddr("ff0e::1:1")
	grpReg := netip.MustParseAddr("ff0e::1:2")
	routes := []Route{
		{RouteKey: RouteKey{Group: grpWatch}, IIf: lo, OIfs: []int{env.oifs[0], env.oifs[1]}, Flags: RoutePunt},
		{RouteKey: RouteKey{Source: srcS, Group: grpReg}, IIf: lo, Flags: RoutePunt},
		{RouteKey: RouteKey{Source: otherS, Group: grpReg}, IIf: lo}, // no punt, no OIF
	}
	if err := d.ReplaceRoutes(routes); err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		got, ok, err := d.Route(r.RouteKey)
		if err != nil || !ok {
			t.Fatalf("read %s: %v %v", r.RouteKey, ok, err)
		}
		if got.Flags != r.Flags {
			t.Errorf("%s flags %v read back, want %v", r.RouteKey, got.Flags, r.Flags)
		}
	}

	tests := []struct {
		name    string
		f       frame
		ifindex int
		verdict uint32
		reason  Reason
		hopOut  int // 0: the frame must come out unchanged
		counted *RouteKey
	}{
		{name: "(*,G) punt with oifs: to TC", f: frame{src: otherS, dst: grpWatch, hopLimit: 9}, verdict: xdpPass, reason: ReasonForwardedClone, hopOut: 8, counted: &RouteKey{Group: grpWatch}},
		{name: "(S,G) punt without oif: to the stack", f: frame{src: srcS, dst: grpReg, hopLimit: 9}, verdict: xdpPass, reason: ReasonPassPunt, counted: &RouteKey{Source: srcS, Group: grpReg}},
		{name: "(S,G) without punt nor oif still drops", f: frame{src: otherS, dst: grpReg, hopLimit: 9}, verdict: xdpDrop, reason: ReasonDropNoOIF},
		{name: "punt route, rpf failure drops", f: frame{src: srcS, dst: grpReg, hopLimit: 9}, ifindex: env.oifs[2], verdict: xdpDrop, reason: ReasonDropRPF},
		{name: "punt route, hop limit 1 to the stack", f: frame{src: otherS, dst: grpWatch, hopLimit: 1}, verdict: xdpPass, reason: ReasonPassHopLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env.enter(t)
			data := tc.f.bytes()
			ifx := tc.ifindex
			if ifx == 0 {
				ifx = lo
			}
			var before Counter
			if tc.counted != nil {
				cs, err := d.Counters([]RouteKey{*tc.counted})
				if err != nil {
					t.Fatal(err)
				}
				before = cs[tc.counted.normalize()]
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
			want := append([]byte{}, data...)
			if tc.hopOut != 0 {
				// To TC: the test run's output starts with the
				// metadata (magic, set id), then the frame.
				want[14+7] = byte(tc.hopOut)
				if len(out) < 8 || binary.NativeEndian.Uint32(out[:4]) != hcMetaMagic || binary.NativeEndian.Uint32(out[4:8]) == 0 {
					t.Fatalf("no clone metadata before the frame: % x", out[:min(8, len(out))])
				}
				out = out[8:]
			}
			if len(out) < len(want) || !bytes.Equal(out[:len(want)], want) {
				t.Errorf("output frame differs from the expected one")
			}
			if tc.counted != nil {
				cs, err := d.Counters([]RouteKey{*tc.counted, {Group: netip.MustParseAddr("ff0e::99")}})
				if err != nil {
					t.Fatal(err)
				}
				if len(cs) != 1 {
					t.Errorf("counters for %d keys, want 1 (a missing route is left out)", len(cs))
				}
				after := cs[tc.counted.normalize()]
				if after.Packets != before.Packets+1 || after.Bytes != before.Bytes+uint64(len(data)) {
					t.Errorf("counters %+v -> %+v, want +1 packet, +%d bytes", before, after, len(data))
				}
			}
		})
	}
}
