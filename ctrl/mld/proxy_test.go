package mld

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

type reportSender struct {
	t       *testing.T
	reports [][]Record
}

func (s *reportSender) SendMLD(dst netip.Addr, b []byte) error {
	if dst != AllMLDv2Route {
		s.t.Errorf("report to %v", dst)
	}
	if err := Verify(llB, dst, b); err != nil {
		s.t.Errorf("report checksum: %v", err)
	}
	m, err := Parse(b)
	if err != nil {
		s.t.Fatal(err)
	}
	s.reports = append(s.reports, m.(*V2Report).Records)
	return nil
}

func (s *reportSender) take() [][]Record {
	r := s.reports
	s.reports = nil
	return r
}

func newHostHarness(t *testing.T) (*Host, *fakeClock, *reportSender) {
	clk := newFakeClock()
	snd := &reportSender{t: t}
	h, err := NewHost(HostConfig{
		Name: "up0", Address: llB, Clock: clk, Sender: snd,
		Rand: func(n time.Duration) time.Duration { return n / 2 }, // deterministic
	})
	if err != nil {
		t.Fatal(err)
	}
	return h, clk, snd
}

func TestHostStateChanges(t *testing.T) {
	h, clk, snd := newHostHarness(t)
	steps := []struct {
		name string
		m    map[netip.Addr]Membership
		want []Record
	}{
		{"join include", map[netip.Addr]Membership{grp1: {Include, addrs(s2, s1, s1)}},
			[]Record{rec(AllowNewSources, grp1, s1, s2)}},
		{"source change", map[netip.Addr]Membership{grp1: {Include, addrs(s2, s3)}},
			[]Record{rec(AllowNewSources, grp1, s3), rec(BlockOldSources, grp1, s1)}},
		{"to exclude", map[netip.Addr]Membership{grp1: {Exclude, addrs(s4)}},
			[]Record{rec(ChangeToExclude, grp1, s4)}},
		{"exclude change", map[netip.Addr]Membership{grp1: {Exclude, addrs(s1)}},
			[]Record{rec(AllowNewSources, grp1, s4), rec(BlockOldSources, grp1, s1)}},
		{"join any-source + leave exclude", map[netip.Addr]Membership{grp2: {Exclude, nil}},
			[]Record{rec(ChangeToExclude, grp2), rec(ChangeToInclude, grp1)}},
		{"leave", nil, []Record{rec(ChangeToInclude, grp2)}},
	}
	for _, st := range steps {
		h.SetMemberships(st.m)
		// Sent at once, then Robustness-1 = 1 retransmission after URI/2.
		if got := snd.take(); !reflect.DeepEqual(got, [][]Record{st.want}) {
			t.Fatalf("%s: sent %v, want %v", st.name, got, st.want)
		}
		clk.Advance(500 * time.Millisecond)
		if got := snd.take(); !reflect.DeepEqual(got, [][]Record{st.want}) {
			t.Fatalf("%s: retransmitted %v, want %v", st.name, got, st.want)
		}
		clk.Advance(10 * time.Second)
		if got := snd.take(); len(got) != 0 {
			t.Fatalf("%s: extra reports %v", st.name, got)
		}
	}
	// No change, no report.
	h.SetMemberships(nil)
	if got := snd.take(); len(got) != 0 {
		t.Fatalf("report without change: %v", got)
	}
}

func TestHostMergesPendingChanges(t *testing.T) {
	h, clk, snd := newHostHarness(t)
	h.SetMemberships(map[netip.Addr]Membership{grp1: {Include, addrs(s1)}})
	h.SetMemberships(map[netip.Addr]Membership{grp1: {Include, addrs(s2)}})
	snd.take()
	clk.Advance(500 * time.Millisecond)
	// s1 was allowed then blocked: only the latest change is retransmitted,
	// with s2 still owed one retransmission.
	want := [][]Record{{rec(AllowNewSources, grp1, s2), rec(BlockOldSources, grp1, s1)}}
	if got := snd.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("merged retransmission %v, want %v", got, want)
	}
}

func TestHostAnswersQueries(t *testing.T) {
	h, clk, snd := newHostHarness(t)
	h.SetMemberships(map[netip.Addr]Membership{
		grp1: {Include, addrs(s1, s2)},
		grp2: {Exclude, addrs(s3)},
	})
	clk.Advance(time.Minute)
	snd.take()
	query := func(q *Query) {
		b, _ := Marshal(q, llA, AllNodes)
		h.HandlePacket(Packet{Src: llA, Dst: AllNodes, HopLimit: 1, RouterAlert: true, Payload: b})
	}
	query(&Query{Version: 2, MaxRespCode: 10000, QRV: 2, QQIC: 125})
	clk.Advance(5*time.Second - time.Millisecond)
	if got := snd.take(); len(got) != 0 {
		t.Fatalf("answered before the random delay: %v", got)
	}
	clk.Advance(time.Millisecond)
	want := [][]Record{{rec(ModeIsExclude, grp2, s3), rec(ModeIsInclude, grp1, s1, s2)}}
	if got := snd.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("general answer %v, want %v", got, want)
	}

	query(&Query{Version: 2, MaxRespCode: 1000, Group: grp2})
	clk.Advance(time.Second)
	if got := snd.take(); !reflect.DeepEqual(got, [][]Record{{rec(ModeIsExclude, grp2, s3)}}) {
		t.Fatalf("group answer %v", got)
	}
	// Source-specific: INCLUDE(A) answers IS_IN(A*Q), EXCLUDE(A) IS_IN(Q-A).
	query(&Query{Version: 2, MaxRespCode: 1000, Group: grp1, Sources: addrs(s2, s3)})
	query(&Query{Version: 2, MaxRespCode: 1000, Group: grp2, Sources: addrs(s3, s4)})
	clk.Advance(time.Second)
	want = [][]Record{{rec(ModeIsInclude, grp1, s2)}, {rec(ModeIsInclude, grp2, s4)}} // in query order
	if got := snd.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("source answers %v, want %v", got, want)
	}
	// Unknown group, invalid hop limit: no answer.
	query(&Query{Version: 2, MaxRespCode: 1000, Group: ssm1})
	b, _ := Marshal(&Query{Version: 2, MaxRespCode: 1000}, llA, AllNodes)
	h.HandlePacket(Packet{Src: llA, Dst: AllNodes, HopLimit: 64, Payload: b})
	clk.Advance(time.Minute)
	if got := snd.take(); len(got) != 0 {
		t.Fatalf("unexpected answers %v", got)
	}
}

func TestHostSplitsLargeReports(t *testing.T) {
	h, _, snd := newHostHarness(t)
	var many []netip.Addr
	for k := range 100 {
		a := s1.As16()
		a[15] = byte(k)
		many = append(many, netip.AddrFrom16(a))
	}
	h.SetMemberships(map[netip.Addr]Membership{grp1: {Include, many}})
	got := snd.take()
	n := 0
	for _, r := range got {
		for _, rr := range r {
			n += len(rr.Sources)
		}
	}
	if len(got) != 2 || n != 100 {
		t.Fatalf("%d reports with %d sources", len(got), n)
	}
}

// TestHostUpdateMemberships: changing some groups with UpdateMemberships
// sends what SetMemberships with the whole resulting state sends, and
// leaves the other groups alone.
func TestHostUpdateMemberships(t *testing.T) {
	type step struct {
		upd  map[netip.Addr]*Membership
		full map[netip.Addr]Membership
	}
	steps := []step{
		{map[netip.Addr]*Membership{grp1: {Include, addrs(s1, s2)}, grp2: {Exclude, nil}},
			map[netip.Addr]Membership{grp1: {Include, addrs(s1, s2)}, grp2: {Exclude, nil}}},
		{map[netip.Addr]*Membership{grp1: {Include, addrs(s2, s3)}},
			map[netip.Addr]Membership{grp1: {Include, addrs(s2, s3)}, grp2: {Exclude, nil}}},
		{map[netip.Addr]*Membership{grp2: nil, grp1: {Exclude, addrs(s4)}},
			map[netip.Addr]Membership{grp1: {Exclude, addrs(s4)}}},
		{map[netip.Addr]*Membership{grp1: {Include, nil}},
			map[netip.Addr]Membership{}},
	}
	hu, cu, su := newHostHarness(t)
	hf, cf, sf := newHostHarness(t)
	for i, st := range steps {
		hu.UpdateMemberships(st.upd)
		hf.SetMemberships(st.full)
		for round := range 3 {
			if u, f := su.take(), sf.take(); !reflect.DeepEqual(u, f) || (round == 0 && len(u) == 0) {
				t.Fatalf("step %d: UpdateMemberships sent %v, SetMemberships %v", i, u, f)
			}
			cu.Advance(500 * time.Millisecond)
			cf.Advance(500 * time.Millisecond)
		}
		if u, f := hu.Memberships(), hf.Memberships(); !reflect.DeepEqual(u, f) {
			t.Fatalf("step %d: state %v, want %v", i, u, f)
		}
	}
}
