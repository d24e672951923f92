package e2e

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/internal/labtest"
)

// testHostileInput sends malformed and hostile MLD from a host on the LAN:
// each kind is dropped and counted by reason (RFC 3810 §5.1.14, §5.2.13,
// §6.2), creates no group, and a flood of reports beyond max-groups stops
// at the limit. The daemon stays up and keeps serving the valid state.
func testHostileInput(t *testing.T, b bins) {
	const maxGroups = 50
	l := newLAN(t, b, lanOpts{hosts: []string{"hX"}, ge1Extra: ", max-groups: 50"})
	hX := l.hosts["hX"]
	raw := hX.rawSender(t)
	src, dst := hX.ll, mld.AllMLDv2Route
	bad := func(k int) netip.Addr { return netip.AddrFrom16([16]byte{0xff, 0x1e, 14: 0xba, 15: byte(k)}) }
	report := func(recs ...mld.Record) *mld.V2Report { return &mld.V2Report{Records: recs} }
	isEx := func(g netip.Addr) mld.Record { return mld.Record{Type: mld.ModeIsExclude, Group: g} }
	// resum recomputes the checksum of a doctored message.
	resum := func(b []byte, s, d netip.Addr) []byte {
		b[2], b[3] = 0, 0
		binary.BigEndian.PutUint16(b[2:], mld.Checksum(s, d, b))
		return b
	}
	good := func(m mld.Message) mldFrame {
		return mldFrame{src: src, dst: dst, hopLimit: 1, routerAlert: true, icmp: marshal(t, m, src, dst)}
	}

	type hostile struct {
		reason string // the drops key in display mld interface
		f      mldFrame
	}
	var cases []hostile
	add := func(reason string, f mldFrame) { cases = append(cases, hostile{reason, f}) }

	f := good(report(isEx(bad(1))))
	f.hopLimit = 2
	add("hop-limit", f)

	f = good(report(isEx(bad(2))))
	f.routerAlert = false
	add("no-router-alert", f)

	f = good(report(isEx(bad(3))))
	f.icmp[3] ^= 0x5a
	add("bad-checksum", f)

	// A record announcing two sources with room for one.
	m := marshal(t, report(mld.Record{Type: mld.ModeIsInclude, Group: bad(4), Sources: []netip.Addr{srcS, srcS2}}), src, dst)
	add("bad-record", mldFrame{src: src, dst: dst, hopLimit: 1, routerAlert: true, icmp: resum(m[:len(m)-16], src, dst)})
	// Two records announced, one present: the message is shorter than
	// its header says.
	m = marshal(t, report(isEx(bad(5))), src, dst)
	m[7] = 2
	add("truncated", mldFrame{src: src, dst: dst, hopLimit: 1, routerAlert: true, icmp: resum(m, src, dst)})
	// Shorter than a report header.
	m = marshal(t, report(isEx(bad(6))), src, dst)
	add("truncated", mldFrame{src: src, dst: dst, hopLimit: 1, routerAlert: true, icmp: resum(m[:6], src, dst)})
	// A query of 26 octets is neither MLDv1 nor MLDv2 (RFC 3810 §8.1).
	q := marshal(t, &mld.Query{Version: 2, Group: bad(7)}, src, mld.AllNodes)
	add("bad-length", mldFrame{src: src, dst: mld.AllNodes, hopLimit: 1, routerAlert: true, icmp: resum(q[:26], src, mld.AllNodes)})

	unspec, global := netip.IPv6Unspecified(), netip.MustParseAddr("2001:db8:99::1")
	add("source-unspecified", mldFrame{src: unspec, dst: dst, hopLimit: 1, routerAlert: true, icmp: marshal(t, report(isEx(bad(8))), unspec, dst)})
	add("source-not-link-local", mldFrame{src: global, dst: dst, hopLimit: 1, routerAlert: true, icmp: marshal(t, report(isEx(bad(9))), global, dst)})

	add("group-scope", good(report(isEx(netip.MustParseAddr("ff01::ba:a")))))
	add("bad-group", good(report(isEx(netip.MustParseAddr("2001:db8::ba:b")))))
	add("bad-source", good(report(mld.Record{Type: mld.ModeIsInclude, Group: bad(12), Sources: []netip.Addr{netip.MustParseAddr("ff1e::1")}})))
	add("unknown-record", good(report(mld.Record{Type: 9, Group: bad(13)})))
	add("ssm-exclude", good(report(isEx(netip.MustParseAddr("ff3e::ba:e")))))

	before := mldIfaces(l.d)["ge1"]
	const copies = 3
	want := map[string]uint64{}
	for _, c := range cases {
		for range copies {
			raw.send(t, c.f)
		}
		want[c.reason] += copies
	}
	// A valid report after them: once it is processed, so are they.
	okGroup := netip.MustParseAddr("ff1e::a0:1")
	raw.send(t, good(report(isEx(okGroup))))
	labtest.Eventually(t, 3*time.Second, "the valid report after the hostile ones", func() bool {
		return findGroup(mldGroups(l.d), "ge1", okGroup) != nil
	})
	after := mldIfaces(l.d)["ge1"]
	for reason, n := range want {
		got := after.Drops[reason] - before.Drops[reason]
		if got != n {
			t.Errorf("drops[%s] = %d, want %d", reason, got, n)
		}
	}
	for _, r := range mldGroups(l.d) {
		if strings.HasPrefix(r.Group, "ff1e::ba") || strings.HasPrefix(r.Group, "ff3e::ba") || strings.Contains(r.Group, "::ba:") {
			t.Errorf("hostile message created a group: %+v", r)
		}
	}
	for _, r := range fwdTable(l.d).Routes {
		if strings.Contains(r.Group, "::ba") {
			t.Errorf("hostile message created a route: %+v", r)
		}
	}
	if t.Failed() {
		l.dump(t)
		t.FailNow()
	}

	// Flood: reports for 200 distinct groups against max-groups 50.
	const flood = 200
	before = mldIfaces(l.d)["ge1"]
	for k := range flood {
		g := netip.AddrFrom16([16]byte{0xff, 0x1e, 13: 0xf1, 14: byte(k >> 8), 15: byte(k)})
		raw.send(t, good(report(isEx(g))))
		if k%20 == 19 {
			time.Sleep(2 * time.Millisecond) // paced: the daemon's socket buffer is not under test
		}
	}
	labtest.Eventually(t, 5*time.Second, "every flood report processed", func() bool {
		return mldIfaces(l.d)["ge1"].Received["report_v2"]-before.Received["report_v2"] >= flood
	})
	after = mldIfaces(l.d)["ge1"]
	free := maxGroups - before.Groups
	if after.Groups != maxGroups {
		t.Errorf("groups after the flood: %d, want max-groups %d", after.Groups, maxGroups)
	}
	if got := after.Drops["max-groups"] - before.Drops["max-groups"]; got < uint64(flood-free) {
		t.Errorf("drops[max-groups] = %d, want at least %d (%d reports, %d free slots)", got, flood-free, flood, free)
	}
	gs := mldGroups(l.d)
	if n := len(gs); n > maxGroups {
		t.Errorf("display mld group lists %d records, beyond max-groups %d", n, maxGroups)
	}
	if findGroup(gs, "ge1", okGroup) == nil {
		t.Errorf("the valid group was pushed out by the flood")
	}
	if n := len(fwdTable(l.d).Routes); n > maxGroups {
		t.Errorf("%d routes after the flood, beyond max-groups %d", n, maxGroups)
	}
	// Still up and still the querier.
	if st := mldIfaces(l.d)["ge1"]; !st.IsQuerier {
		t.Errorf("not querier after the hostile input: %+v", st)
	}
	if t.Failed() {
		l.dump(t)
	}
}
