package pim

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// FuzzRouterMessages feeds arbitrary Join/Prune and Assert bodies from a
// neighbour through the Interface into the Router, then lets timers run:
// no panic, the entry count stays within MaxEntries and matches the
// state, and every route leaves its RPF interface out of its oifs.
func FuzzRouterMessages(f *testing.F) {
	seeds := []Message{
		jpTo(llR, 210, gset(testG, []Source{StarG(testRP)}, []Source{SGRpt(testS)})),
		jpTo(llR, 0, gset(testG, []Source{SG(testS), SGRpt(testS2)}, []Source{StarG(testRP)})),
		jpTo(llR, HoldtimeForever, gset(testSSM, []Source{SG(testS)}, nil), gset(testG2, nil, []Source{SG(testS)})),
		jpTo(llN2, 210, gset(testG, []Source{StarG(testRP)}, nil)),
		&Assert{Group: SingleGroup(testG), Source: testS, RPT: true, MetricPreference: 1, Metric: 5},
		&Assert{Group: SingleGroup(testG), Source: testS, MetricPreference: maxMetricPref, Metric: 0xffffffff},
	}
	for _, m := range seeds {
		b, err := Marshal(m, llN1, AllPIMRouters)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < headerLen || len(b) > 4096 {
			return
		}
		b = append([]byte(nil), b...)
		if b[0]&1 == 0 {
			b[0] = Version<<4 | byte(TypeJoinPrune)
		} else {
			b[0] = Version<<4 | byte(TypeAssert)
		}
		binary.BigEndian.PutUint16(b[checksumOffset:], Checksum(llN1, AllPIMRouters, b))
		n, r, down, _ := oneRouter(t, false, func(c *RouterConfig) { c.MaxEntries = 20 })
		if err := r.r.SetLocalMembership(1, testG, true, []netip.Addr{testS2}); err != nil {
			t.Fatal(err)
		}
		down.ifc.HandlePacket(Packet{Src: llN1, Dst: AllPIMRouters, HopLimit: HopLimit, Payload: b})
		for range 4 {
			n.run(time.Minute)
			check(t, r.r)
		}
		down.ifc.HandlePacket(Packet{Src: llN2, Dst: AllPIMRouters, HopLimit: HopLimit, Payload: b})
		n.run(5 * time.Minute)
		check(t, r.r)
	})
}

func check(t *testing.T, r *Router) {
	t.Helper()
	r.mu.Lock()
	entries := 0
	for _, gs := range r.groups {
		if gs.wc != nil {
			entries++
		}
		entries += len(gs.src)
	}
	if entries != r.entries || r.entries > r.cfg.MaxEntries {
		t.Fatalf("%d entries counted, %d held, max %d", r.entries, entries, r.cfg.MaxEntries)
	}
	r.mu.Unlock()
	for _, rt := range r.Routes() {
		for i, o := range rt.OIfs {
			if o.Ifindex == rt.RPFIface || i > 0 && rt.OIfs[i-1].Ifindex >= o.Ifindex {
				t.Fatalf("route %+v", rt)
			}
		}
	}
}
