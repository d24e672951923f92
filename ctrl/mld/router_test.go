package mld

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"
)

var s5 = netip.MustParseAddr("2001:db8::5")

type sentMsg struct {
	dst netip.Addr
	q   *Query
}

type fakeSender struct {
	t    *testing.T
	src  netip.Addr
	msgs []sentMsg
	hook func(dst netip.Addr) // called for every message sent
}

func (s *fakeSender) SendMLD(dst netip.Addr, b []byte) error {
	if err := Verify(s.src, dst, b); err != nil {
		s.t.Errorf("sent message does not verify: %v", err)
	}
	m, err := Parse(b)
	if err != nil {
		s.t.Fatalf("sent message does not parse: %v", err)
	}
	q, ok := m.(*Query)
	if !ok {
		s.t.Fatalf("router sent %T", m)
	}
	s.msgs = append(s.msgs, sentMsg{dst, q})
	if s.hook != nil {
		s.hook(dst)
	}
	return nil
}

type harness struct {
	t       *testing.T
	clk     *fakeClock
	snd     *fakeSender
	ifc     *Interface
	changes []GroupState
	deletes []netip.Addr
}

// newHarness returns a started MLDv2 router fe80::2 with the initial
// general query already taken.
func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, clk: newFakeClock()}
	cfg := DefaultConfig("eth0", llB)
	cfg.Clock = h.clk
	if mod != nil {
		mod(&cfg)
	}
	h.snd = &fakeSender{t: t, src: cfg.Address}
	cfg.Sender = h.snd
	cfg.OnChange = func(g GroupState) { h.changes = append(h.changes, g) }
	cfg.OnDelete = func(g netip.Addr) { h.deletes = append(h.deletes, g) }
	ifc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.ifc = ifc
	ifc.Start()
	h.take()
	return h
}

func (h *harness) take() []sentMsg {
	m := h.snd.msgs
	h.snd.msgs = nil
	return m
}

func (h *harness) send(src, dst netip.Addr, m Message) {
	h.t.Helper()
	b, err := Marshal(m, src, dst)
	if err != nil {
		h.t.Fatal(err)
	}
	h.ifc.HandlePacket(Packet{Src: src, Dst: dst, HopLimit: 1, RouterAlert: true, Payload: b})
}

func (h *harness) report(recs ...Record) { h.send(llC, mld2R, &V2Report{Records: recs}) }

func rec(t RecordType, g netip.Addr, srcs ...netip.Addr) Record {
	return Record{Type: t, Group: g, Sources: srcs}
}

func (h *harness) group(g netip.Addr) (GroupState, bool) {
	for _, st := range h.ifc.Groups() {
		if st.Group == g {
			return st, true
		}
	}
	return GroupState{}, false
}

// timers renders the source timers of g as remaining durations, -1 for 0.
func (h *harness) timers(st GroupState) map[netip.Addr]time.Duration {
	out := map[netip.Addr]time.Duration{}
	for _, s := range st.Sources {
		if s.Expires.IsZero() {
			out[s.Addr] = -1
		} else {
			out[s.Addr] = s.Expires.Sub(h.clk.Now())
		}
	}
	return out
}

type wantQuery struct {
	s       bool
	sources []netip.Addr // nil: multicast-address-specific
}

func queriesOf(msgs []sentMsg) []wantQuery {
	var out []wantQuery
	for _, m := range msgs {
		out = append(out, wantQuery{m.q.Suppress, m.q.Sources})
	}
	return out
}

const (
	mali = 260 * time.Second // 2 × 125 s + 10 s
	old  = 250 * time.Second // MALI set 10 s before the record
	llqt = 2 * time.Second   // 2 × 1 s
	zero = -1
)

func addrs(a ...netip.Addr) []netip.Addr { return a }

// TestRouterTables covers every row of RFC 3810 §7.4.1 and §7.4.2. The
// start state is built 10 s before the record, so "old" timers read 250 s.
func TestRouterTables(t *testing.T) {
	type srcT = map[netip.Addr]time.Duration
	incA := []Record{rec(ModeIsInclude, grp1, s1, s2)}                                      // INCLUDE({s1,s2})
	excXY := []Record{rec(ModeIsExclude, grp1, s3, s4), rec(AllowNewSources, grp1, s1, s2)} // EXCLUDE({s1,s2},{s3,s4})
	for _, tc := range []struct {
		name    string
		start   []Record
		rec     Record
		mode    FilterMode
		filter  time.Duration // remaining filter timer, EXCLUDE only
		sources srcT
		queries []wantQuery
	}{
		// §7.4.1, INCLUDE (A)
		{"IN IS_IN", incA, rec(ModeIsInclude, grp1, s2, s3), Include, 0, srcT{s1: old, s2: mali, s3: mali}, nil},
		{"IN IS_EX", incA, rec(ModeIsExclude, grp1, s2, s3), Exclude, mali, srcT{s2: old, s3: zero}, nil},
		// §7.4.1, EXCLUDE (X,Y)
		{"EX IS_IN", excXY, rec(ModeIsInclude, grp1, s2, s3), Exclude, old, srcT{s1: old, s2: mali, s3: mali, s4: zero}, nil},
		{"EX IS_EX", excXY, rec(ModeIsExclude, grp1, s1, s3, s5), Exclude, mali, srcT{s1: old, s3: zero, s5: mali}, nil},
		// §7.4.2, INCLUDE (A)
		{"IN ALLOW", incA, rec(AllowNewSources, grp1, s2, s3), Include, 0, srcT{s1: old, s2: mali, s3: mali}, nil},
		{"IN BLOCK", incA, rec(BlockOldSources, grp1, s2, s3), Include, 0, srcT{s1: old, s2: llqt},
			[]wantQuery{{false, addrs(s2)}}},
		{"IN TO_EX", incA, rec(ChangeToExclude, grp1, s2, s3), Exclude, mali, srcT{s2: llqt, s3: zero},
			[]wantQuery{{false, addrs(s2)}}},
		{"IN TO_IN", incA, rec(ChangeToInclude, grp1, s2, s3), Include, 0, srcT{s1: llqt, s2: mali, s3: mali},
			[]wantQuery{{false, addrs(s1)}}},
		// §7.4.2, EXCLUDE (X,Y)
		{"EX ALLOW", excXY, rec(AllowNewSources, grp1, s2, s3), Exclude, old, srcT{s1: old, s2: mali, s3: mali, s4: zero}, nil},
		{"EX BLOCK", excXY, rec(BlockOldSources, grp1, s1, s3, s5), Exclude, old, srcT{s1: llqt, s2: old, s3: zero, s4: zero, s5: llqt},
			[]wantQuery{{false, addrs(s1, s5)}}},
		{"EX TO_EX", excXY, rec(ChangeToExclude, grp1, s1, s3, s5), Exclude, mali, srcT{s1: llqt, s3: zero, s5: llqt},
			[]wantQuery{{false, addrs(s1, s5)}}},
		{"EX TO_IN", excXY, rec(ChangeToInclude, grp1, s2, s3), Exclude, llqt, srcT{s1: llqt, s2: mali, s3: mali, s4: zero},
			[]wantQuery{{false, nil}, {false, addrs(s1)}}},
		// No state yet: INCLUDE ({}).
		{"none IS_EX", nil, rec(ModeIsExclude, grp1), Exclude, mali, srcT{}, nil},
		{"none TO_EX", nil, rec(ChangeToExclude, grp1, s1), Exclude, mali, srcT{s1: zero}, nil},
		{"none ALLOW", nil, rec(AllowNewSources, grp1, s1), Include, 0, srcT{s1: mali}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			if tc.start != nil {
				h.report(tc.start...)
			}
			if q := h.take(); len(q) != 0 {
				t.Fatalf("building the start state sent %v", queriesOf(q))
			}
			h.clk.Advance(10 * time.Second)
			h.report(tc.rec)
			st, ok := h.group(grp1)
			if !ok {
				t.Fatal("group missing")
			}
			if st.Mode != tc.mode {
				t.Errorf("mode = %v, want %v", st.Mode, tc.mode)
			}
			if tc.mode == Exclude {
				if got := st.Expires.Sub(h.clk.Now()); got != tc.filter {
					t.Errorf("filter timer = %v, want %v", got, tc.filter)
				}
			} else if !st.Expires.IsZero() {
				t.Errorf("INCLUDE with filter timer %v", st.Expires)
			}
			if got := h.timers(st); !reflect.DeepEqual(got, tc.sources) {
				t.Errorf("sources = %v, want %v", got, tc.sources)
			}
			msgs := h.take()
			for _, m := range msgs {
				if m.dst != grp1 || m.q.Group != grp1 || m.q.Version != 2 {
					t.Errorf("query to %v for %v v%d", m.dst, m.q.Group, m.q.Version)
				}
				if m.q.MaxResponseDelay() != time.Second {
					t.Errorf("specific query max response %v, want LLQI", m.q.MaxResponseDelay())
				}
			}
			if got := queriesOf(msgs); !reflect.DeepEqual(got, tc.queries) {
				t.Errorf("queries = %v, want %v", got, tc.queries)
			}
			// The retransmission follows after LLQI (LLQC = 2).
			if len(tc.queries) > 0 {
				h.clk.Advance(time.Second)
				if got := queriesOf(h.take()); !reflect.DeepEqual(got, tc.queries) {
					t.Errorf("retransmitted queries = %v, want %v", got, tc.queries)
				}
				h.clk.Advance(time.Second)
				if q := h.take(); len(q) != 0 {
					t.Errorf("third round sent %v", queriesOf(q))
				}
			}
		})
	}
}

func TestLastListenerSFlag(t *testing.T) {
	h := newHarness(t, nil)
	h.report(rec(ModeIsExclude, grp1))
	h.report(rec(ChangeToInclude, grp1))
	if got := queriesOf(h.take()); !reflect.DeepEqual(got, []wantQuery{{false, nil}}) {
		t.Fatalf("first query %v", got)
	}
	// Another listener answers: the filter timer goes back to MALI, and the
	// retransmission carries S=1 (§7.6.3.1).
	h.clk.Advance(500 * time.Millisecond)
	h.report(rec(ModeIsExclude, grp1))
	h.clk.Advance(500 * time.Millisecond)
	if got := queriesOf(h.take()); !reflect.DeepEqual(got, []wantQuery{{true, nil}}) {
		t.Fatalf("retransmission %v, want S=1", got)
	}
	h.clk.Advance(10 * time.Second)
	if _, ok := h.group(grp1); !ok {
		t.Fatal("group deleted although a listener answered")
	}

	// No answer: the group goes after LLQT.
	h.report(rec(ChangeToInclude, grp1))
	h.clk.Advance(llqt - time.Millisecond)
	if _, ok := h.group(grp1); !ok {
		t.Fatal("group deleted before LLQT")
	}
	h.clk.Advance(time.Millisecond)
	if _, ok := h.group(grp1); ok {
		t.Fatal("group kept after LLQT")
	}
	if !slices.Equal(h.deletes, []netip.Addr{grp1}) {
		t.Fatalf("deletes = %v", h.deletes)
	}
}

func TestSourceQueryFlagSplit(t *testing.T) {
	h := newHarness(t, nil)
	h.report(rec(ModeIsInclude, grp1, s1, s2))
	h.report(rec(BlockOldSources, grp1, s1, s2))
	h.take()
	h.clk.Advance(500 * time.Millisecond)
	h.report(rec(ModeIsInclude, grp1, s1)) // s1 refreshed
	h.clk.Advance(500 * time.Millisecond)
	want := []wantQuery{{true, addrs(s1)}, {false, addrs(s2)}}
	if got := queriesOf(h.take()); !reflect.DeepEqual(got, want) {
		t.Fatalf("retransmission %v, want %v", got, want)
	}
	h.clk.Advance(time.Second)
	st, _ := h.group(grp1)
	if got := h.timers(st); len(got) != 1 || got[s1] == 0 {
		t.Fatalf("after LLQT sources = %v, want only s1", got)
	}
}

func TestTimerExpiry(t *testing.T) {
	t.Run("include source", func(t *testing.T) {
		h := newHarness(t, nil)
		h.report(rec(ModeIsInclude, grp1, s1))
		h.clk.Advance(100 * time.Second)
		h.report(rec(AllowNewSources, grp1, s2))
		h.clk.Advance(mali - 100*time.Second)
		st, _ := h.group(grp1)
		if got := h.timers(st); len(got) != 1 || got[s2] != 100*time.Second {
			t.Fatalf("sources = %v, want s2 only", got)
		}
		h.clk.Advance(100 * time.Second)
		if _, ok := h.group(grp1); ok {
			t.Fatal("INCLUDE({}) kept")
		}
		if !slices.Equal(h.deletes, []netip.Addr{grp1}) {
			t.Fatalf("deletes = %v", h.deletes)
		}
	})
	t.Run("exclude to include", func(t *testing.T) {
		h := newHarness(t, nil)
		h.report(rec(ModeIsExclude, grp1, s3))
		h.clk.Advance(100 * time.Second)
		h.report(rec(AllowNewSources, grp1, s1))
		h.clk.Advance(mali - 100*time.Second)
		st, _ := h.group(grp1)
		if st.Mode != Include || !reflect.DeepEqual(h.timers(st), map[netip.Addr]time.Duration{s1: 100 * time.Second}) {
			t.Fatalf("after filter timer: %v %v", st.Mode, h.timers(st))
		}
		star, inc, exc := st.Forwarding()
		if star || !slices.Equal(inc, addrs(s1)) || exc != nil {
			t.Fatalf("Forwarding = %v %v %v", star, inc, exc)
		}
		h.clk.Advance(100 * time.Second)
		if _, ok := h.group(grp1); ok {
			t.Fatal("group kept")
		}
	})
	t.Run("exclude source moves to Y", func(t *testing.T) {
		h := newHarness(t, nil)
		h.report(rec(ModeIsExclude, grp1), rec(AllowNewSources, grp1, s1))
		h.clk.Advance(100 * time.Second)
		h.report(rec(ModeIsExclude, grp1, s1))
		h.clk.Advance(mali - 100*time.Second)
		st, _ := h.group(grp1)
		star, inc, exc := st.Forwarding()
		if st.Mode != Exclude || !star || inc != nil || !slices.Equal(exc, addrs(s1)) {
			t.Fatalf("state %v, Forwarding = %v %v %v", st, star, inc, exc)
		}
		h.clk.Advance(100 * time.Second)
		if _, ok := h.group(grp1); ok {
			t.Fatal("EXCLUDE with only blocked sources kept after the filter timer")
		}
	})
}

func TestOnChangeOnRefresh(t *testing.T) {
	h := newHarness(t, nil)
	h.report(rec(ModeIsInclude, grp1, s1))
	h.clk.Advance(time.Second)
	h.report(rec(ModeIsInclude, grp1, s1))
	if len(h.changes) != 2 {
		t.Fatalf("OnChange called %d times, want 2", len(h.changes))
	}
	if d := h.changes[1].Sources[0].Expires.Sub(h.changes[0].Sources[0].Expires); d != time.Second {
		t.Fatalf("refresh moved the timer by %v", d)
	}
	if h.changes[1].LastReporter != llC {
		t.Fatalf("LastReporter = %v", h.changes[1].LastReporter)
	}
}

func TestQuerierElection(t *testing.T) {
	h := newHarness(t, nil) // we are fe80::2
	st := h.ifc.Status()
	if !st.IsQuerier || st.Querier != llB {
		t.Fatalf("not querier at start: %+v", st)
	}
	// Startup: a second general query after QI/4.
	h.clk.Advance(125 * time.Second / 4)
	if m := h.take(); len(m) != 1 || !m[0].q.IsGeneral() || m[0].dst != AllNodes {
		t.Fatalf("startup query: %v", m)
	}
	// A higher address does not win.
	h.send(llC, AllNodes, &Query{Version: 2, MaxRespCode: 10000, QRV: 2, QQIC: 125})
	if !h.ifc.Status().IsQuerier {
		t.Fatal("lost election to a higher address")
	}
	// A lower one does; we learn its QRV and QQI.
	h.send(llA, AllNodes, &Query{Version: 2, MaxRespCode: 10000, QRV: 3, QQIC: 60})
	st = h.ifc.Status()
	if st.IsQuerier || st.Querier != llA || st.Robustness != 3 || st.QueryInterval != 60*time.Second {
		t.Fatalf("after lower query: %+v", st)
	}
	oqpi := 3*60*time.Second + 5*time.Second
	if st.OtherQuerierRemaining != oqpi {
		t.Fatalf("OQP remaining %v, want %v", st.OtherQuerierRemaining, oqpi)
	}
	h.clk.Advance(oqpi - time.Millisecond)
	if m := h.take(); len(m) != 0 {
		t.Fatalf("non-querier sent %d queries", len(m))
	}
	h.clk.Advance(time.Millisecond)
	m := h.take()
	st = h.ifc.Status()
	if len(m) != 1 || !m[0].q.IsGeneral() || !st.IsQuerier || st.Robustness != 2 || st.QueryInterval != 125*time.Second {
		t.Fatalf("after OQP expiry: sent %v, status %+v", m, st)
	}
	if m[0].q.QRV != 2 || m[0].q.QueryInterval() != 125*time.Second || m[0].q.MaxResponseDelay() != 10*time.Second {
		t.Fatalf("general query fields %+v", m[0].q)
	}
	h.clk.Advance(125 * time.Second)
	if m := h.take(); len(m) != 1 {
		t.Fatalf("periodic query: %d sent", len(m))
	}
}

// TestRetransmitAcrossQuerierChange is FRR's bug: pending last-listener
// queries must still go out when another router wins the election.
func TestRetransmitAcrossQuerierChange(t *testing.T) {
	h := newHarness(t, nil)
	h.report(rec(ModeIsExclude, grp1))
	h.report(rec(ChangeToInclude, grp1))
	if len(h.take()) != 1 {
		t.Fatal("no first query")
	}
	h.send(llA, AllNodes, &Query{Version: 2, MaxRespCode: 10000, QRV: 2, QQIC: 125})
	h.clk.Advance(time.Second)
	if got := queriesOf(h.take()); !reflect.DeepEqual(got, []wantQuery{{false, nil}}) {
		t.Fatalf("retransmission after losing the election: %v", got)
	}
	// New query sequences are the new querier's job.
	h.report(rec(ModeIsExclude, grp2), rec(ChangeToInclude, grp2))
	if m := h.take(); len(m) != 0 {
		t.Fatalf("non-querier started a query sequence: %v", queriesOf(m))
	}
}

func TestNonQuerierTimerUpdate(t *testing.T) {
	h := newHarness(t, nil)
	h.send(llA, AllNodes, &Query{Version: 2, MaxRespCode: 10000, QRV: 2, QQIC: 125})
	h.report(rec(ModeIsExclude, grp1), rec(ModeIsInclude, grp2, s1, s2))
	// S=1: no change (§7.6.1).
	h.send(llA, grp1, &Query{Version: 2, MaxRespCode: 1000, Group: grp1, Suppress: true, QRV: 2, QQIC: 125})
	st, _ := h.group(grp1)
	if st.Expires.Sub(h.clk.Now()) != mali {
		t.Fatal("S=1 query lowered the filter timer")
	}
	h.send(llA, grp1, &Query{Version: 2, MaxRespCode: 1000, Group: grp1, QRV: 2, QQIC: 125})
	st, _ = h.group(grp1)
	if got := st.Expires.Sub(h.clk.Now()); got != llqt {
		t.Fatalf("filter timer after Q(MA) = %v, want %v", got, llqt)
	}
	h.send(llA, grp2, &Query{Version: 2, MaxRespCode: 1000, Group: grp2, QRV: 2, QQIC: 125, Sources: addrs(s2)})
	st, _ = h.group(grp2)
	if got := h.timers(st); got[s1] != mali || got[s2] != llqt {
		t.Fatalf("after Q(MA,{s2}): %v", got)
	}
	h.clk.Advance(llqt)
	if _, ok := h.group(grp1); ok {
		t.Fatal("grp1 kept after LLQT")
	}
	if m := h.take(); len(m) != 0 {
		t.Fatalf("non-querier sent %v", queriesOf(m))
	}
}

func TestValidationDrops(t *testing.T) {
	good, _ := Marshal(&V2Report{Records: []Record{rec(ModeIsExclude, grp1)}}, llC, mld2R)
	badSum := slices.Clone(good)
	badSum[2] ^= 0xff
	for _, tc := range []struct {
		name string
		p    Packet
		want DropReason
	}{
		{"hop limit", Packet{Src: llC, Dst: mld2R, HopLimit: 255, RouterAlert: true, Payload: good}, DropHopLimit},
		{"no router alert", Packet{Src: llC, Dst: mld2R, HopLimit: 1, Payload: good}, DropNoRouterAlert},
		{"source ::", Packet{Src: netip.IPv6Unspecified(), Dst: mld2R, HopLimit: 1, RouterAlert: true, Payload: good}, DropSourceUnspecified},
		{"global source", Packet{Src: s1, Dst: mld2R, HopLimit: 1, RouterAlert: true, Payload: good}, DropSourceNotLinkLocal},
		{"checksum", Packet{Src: llC, Dst: mld2R, HopLimit: 1, RouterAlert: true, Payload: badSum}, DropBadChecksum},
		{"truncated", Packet{Src: llC, HopLimit: 1, RouterAlert: true, Payload: good[:10]}, DropTruncated},
		{"query length 26", Packet{Src: llA, HopLimit: 1, RouterAlert: true, Payload: make26()}, DropBadLength},
		{"unknown type", Packet{Src: llA, HopLimit: 1, RouterAlert: true, Payload: []byte{135, 0, 0, 0}}, DropUnknownType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.ifc.HandlePacket(tc.p)
			if got := h.ifc.Stats().Drops; !reflect.DeepEqual(got, map[DropReason]uint64{tc.want: 1}) {
				t.Fatalf("drops = %v, want %v", got, tc.want)
			}
			if len(h.ifc.Groups()) != 0 || len(h.changes) != 0 || !h.ifc.Status().IsQuerier {
				t.Fatal("dropped message changed state")
			}
		})
	}
	// A lower-addressed query that fails validation does not win the election.
	h := newHarness(t, nil)
	q, _ := Marshal(&Query{Version: 2, MaxRespCode: 10000}, llA, AllNodes)
	h.ifc.HandlePacket(Packet{Src: llA, Dst: AllNodes, HopLimit: 2, RouterAlert: true, Payload: q})
	if !h.ifc.Status().IsQuerier {
		t.Fatal("invalid query changed the querier")
	}
}

func make26() []byte {
	b := make([]byte, 26)
	b[0] = 130
	return b
}

func TestRecordLevelDrops(t *testing.T) {
	h := newHarness(t, nil)
	h.report(
		rec(ModeIsExclude, AllNodes),
		rec(ModeIsExclude, netip.MustParseAddr("ff01::5")),
		rec(ModeIsExclude, s1),
		rec(9, grp1),
		rec(ModeIsInclude, grp2, netip.MustParseAddr("ff0e::1")),
		rec(ModeIsExclude, ssm1),
		rec(ChangeToExclude, ssm1, s1),
		rec(ModeIsExclude, grp1),                                  // global scope: kept
		rec(ModeIsInclude, ssm1, s1),                              // SSM INCLUDE: kept
		rec(ModeIsExclude, netip.MustParseAddr("ff02::1:ff00:1")), // link scope: kept
	)
	h.send(llC, ssm1, &V1Report{Group: ssm1})
	want := map[DropReason]uint64{DropGroupScope: 2, DropBadGroup: 1, DropUnknownRecord: 1, DropBadSource: 1, DropSSMExclude: 3}
	if got := h.ifc.Stats().Drops; !reflect.DeepEqual(got, want) {
		t.Fatalf("drops = %v, want %v", got, want)
	}
	var got []netip.Addr
	for _, g := range h.ifc.Groups() {
		got = append(got, g.Group)
	}
	wantG := []netip.Addr{netip.MustParseAddr("ff02::1:ff00:1"), grp1, ssm1}
	if !slices.Equal(got, wantG) {
		t.Fatalf("groups = %v, want %v", got, wantG)
	}
	if st, _ := h.group(ssm1); st.Mode != Include || st.Compat != 2 {
		t.Fatalf("SSM group %+v", st)
	}
}

func TestMaxGroups(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxGroups = 2 })
	h.report(rec(ModeIsExclude, grp1), rec(ModeIsExclude, grp2), rec(ModeIsExclude, ssm1, s1), rec(ModeIsInclude, ssm1, s1))
	if n := len(h.ifc.Groups()); n != 2 {
		t.Fatalf("%d groups, want 2", n)
	}
	if got := h.ifc.Stats().Drops; !reflect.DeepEqual(got, map[DropReason]uint64{DropSSMExclude: 1, DropMaxGroups: 1}) {
		t.Fatalf("drops = %v", got)
	}
	// Existing groups still update; records that create nothing are not refused.
	h.report(rec(ModeIsInclude, grp1, s1), rec(ChangeToInclude, ssm1))
	if st, _ := h.group(grp1); len(st.Sources) != 1 {
		t.Fatal("existing group not updated")
	}
	if got := h.ifc.Stats().Drops[DropMaxGroups]; got != 1 {
		t.Fatalf("max-groups drops = %d", got)
	}
}

func TestV1Compat(t *testing.T) {
	h := newHarness(t, nil)
	h.send(llC, grp1, &V1Report{Group: grp1})
	st, _ := h.group(grp1)
	if st.Mode != Exclude || st.Compat != 1 || st.V1HostExpires.Sub(h.clk.Now()) != mali || len(st.Sources) != 0 {
		t.Fatalf("after v1 report: %+v", st)
	}
	// BLOCK is ignored, TO_EX loses its sources (§8.3.2).
	h.report(rec(BlockOldSources, grp1, s1))
	h.report(rec(ChangeToExclude, grp1, s1))
	st, _ = h.group(grp1)
	if len(st.Sources) != 0 || len(h.take()) != 0 {
		t.Fatalf("v1 compat mode applied sources: %+v", st)
	}
	// After OVHPT without v1 reports the group is MLDv2 again.
	h.clk.Advance(200 * time.Second)
	h.report(rec(ModeIsExclude, grp1))
	h.clk.Advance(61 * time.Second)
	st, _ = h.group(grp1)
	if st.Compat != 2 || !st.V1HostExpires.IsZero() {
		t.Fatalf("compat not back to 2: %+v", st)
	}
	h.report(rec(BlockOldSources, grp1, s1))
	if st, _ = h.group(grp1); len(st.Sources) != 1 {
		t.Fatalf("BLOCK ignored in v2 mode: %+v", st)
	}
	h.take()
	// Done = TO_IN({}): Q(MA) (and Q(MA,X) for s1).
	h.send(llC, AllNodes, &V1Done{Group: grp1})
	if got := queriesOf(h.take()); !reflect.DeepEqual(got, []wantQuery{{false, nil}, {false, addrs(s1)}}) {
		t.Fatalf("Done queries %v", got)
	}
	if st := h.ifc.Stats(); st.RxReportsV1 != 1 || st.RxDonesV1 != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestV1Interface(t *testing.T) {
	h := &harness{t: t, clk: newFakeClock()}
	cfg := DefaultConfig("eth0", llB)
	cfg.Version = 1
	cfg.Clock = h.clk
	h.snd = &fakeSender{t: t, src: llB}
	cfg.Sender = h.snd
	ifc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.ifc = ifc
	ifc.Start()
	m := h.take()
	if len(m) != 1 || m[0].q.Version != 1 || m[0].q.MaxRespCode != 10000 {
		t.Fatalf("v1 general query: %+v", m)
	}
	h.report(rec(ModeIsExclude, grp1))
	if len(ifc.Groups()) != 0 || ifc.Stats().Drops[DropVersionMismatch] != 1 {
		t.Fatal("v2 report accepted on a v1 interface")
	}
	h.send(llC, grp1, &V1Report{Group: grp1})
	if st, _ := h.group(grp1); st.Compat != 1 || st.Mode != Exclude {
		t.Fatalf("v1 group %+v", st)
	}
	h.send(llC, AllNodes, &V1Done{Group: grp1})
	m = h.take()
	if len(m) != 1 || m[0].q.Version != 1 || m[0].q.Group != grp1 || m[0].q.MaxRespCode != 1000 {
		t.Fatalf("v1 specific query: %+v", m)
	}
	h.clk.Advance(time.Second)
	if m := h.take(); len(m) != 1 || m[0].q.Version != 1 {
		t.Fatalf("v1 retransmission: %+v", m)
	}
	h.clk.Advance(time.Second)
	if len(ifc.Groups()) != 0 {
		t.Fatal("group kept after Done without reports")
	}
}

func TestImportExport(t *testing.T) {
	a := newHarness(t, nil)
	a.report(rec(ModeIsExclude, grp1, s3), rec(AllowNewSources, grp1, s1), rec(ModeIsInclude, grp2, s2))
	a.send(llC, ssm1, &V1Report{Group: netip.MustParseAddr("ff05::7")})
	a.clk.Advance(60 * time.Second)
	exp := a.ifc.Export()
	if len(exp) != 3 {
		t.Fatalf("Export = %d groups", len(exp))
	}

	b := newHarness(t, nil)
	b.clk.Advance(1000 * time.Second) // a different clock
	var in []GroupState
	for _, g := range exp {
		in = append(in, g.Rebase(a.clk.Now(), b.clk.Now()))
	}
	if err := b.ifc.Import(in); err != nil {
		t.Fatal(err)
	}
	got := b.ifc.Groups()
	for k := range got {
		if !got[k].Synced {
			t.Fatalf("imported group not Synced: %+v", got[k])
		}
		got[k].Synced = false
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("Import/Groups round trip:\n got %+v\nwant %+v", got, in)
	}
	if len(b.changes) != 3 {
		t.Fatalf("OnChange on import: %d", len(b.changes))
	}
	if len(b.ifc.Export()) != 0 {
		t.Fatal("synced groups exported")
	}
	if !b.ifc.Delete(grp1) {
		t.Fatal("Delete of a synced group failed")
	}
	// Synced timers run: grp2 (INCLUDE {s2}) expires 200 s later.
	b.clk.Advance(mali - 60*time.Second)
	if _, ok := b.group(grp2); ok {
		t.Fatal("synced group did not expire")
	}
	// A local report takes the entry over; Upsert then leaves it alone.
	b.report(rec(ModeIsInclude, grp2, s2))
	if err := b.ifc.Upsert(GroupState{Group: grp2, Mode: Exclude, Expires: b.clk.Now().Add(time.Hour)}); err == nil {
		t.Fatal("Upsert overwrote a local entry")
	}
	if b.ifc.Delete(grp2) {
		t.Fatal("Delete removed a local group")
	}
	// Bulk import of nothing removes the remaining synced groups only.
	if err := b.ifc.Upsert(GroupState{Group: grp1, Mode: Include, Sources: []SourceState{{Addr: s1, Expires: b.clk.Now().Add(time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	if len(b.ifc.Groups()) != 2 {
		t.Fatal("Upsert did not add grp1")
	}
	if err := b.ifc.Import(nil); err != nil {
		t.Fatal(err)
	}
	var left []netip.Addr
	for _, g := range b.ifc.Groups() {
		left = append(left, g.Group)
	}
	if !slices.Equal(left, []netip.Addr{grp2}) || !slices.Contains(b.deletes, grp1) {
		t.Fatalf("after empty import: %v", left)
	}
	if err := b.ifc.Upsert(GroupState{Group: allNd}); err == nil {
		t.Fatal("Upsert accepted ff02::1")
	}
}

func TestSetQuerierAllowed(t *testing.T) {
	clk := newFakeClock()
	snd := &fakeSender{t: t, src: llB}
	cfg := DefaultConfig("eth0", llB)
	cfg.Clock, cfg.Sender = clk, snd
	ifc, _ := New(cfg)
	ifc.SetQuerierAllowed(false)
	ifc.Start()
	h := &harness{t: t, clk: clk, snd: snd, ifc: ifc}
	h.report(rec(ModeIsExclude, grp1))
	h.report(rec(ChangeToInclude, grp1))
	h.clk.Advance(300 * time.Second)
	if m := h.take(); len(m) != 0 {
		t.Fatalf("backup sent %v", queriesOf(m))
	}
	if st := ifc.Status(); st.IsQuerier || st.QuerierAllowed {
		t.Fatalf("status %+v", st)
	}
	h.report(rec(ModeIsExclude, grp1))
	if len(ifc.Groups()) != 1 {
		t.Fatal("reports not processed while querier disallowed")
	}
	ifc.SetQuerierAllowed(true)
	m := h.take()
	if len(m) != 1 || !m[0].q.IsGeneral() || !ifc.Status().IsQuerier {
		t.Fatalf("switch-on: sent %v, status %+v", m, ifc.Status())
	}
	// Pending last-listener queries stop when switched off.
	h.report(rec(ChangeToInclude, grp1))
	if len(h.take()) != 1 {
		t.Fatal("no last-listener query")
	}
	ifc.SetQuerierAllowed(false)
	h.clk.Advance(time.Minute)
	if m := h.take(); len(m) != 0 {
		t.Fatalf("sent after switch-off: %v", queriesOf(m))
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Address: s1},
		{Address: llA, Version: 3},
		{Address: llA, QueryInterval: time.Second, QueryResponseInterval: 2 * time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestStateBeforeStart(t *testing.T) {
	clk := newFakeClock()
	cfg := DefaultConfig("eth0", llB)
	cfg.Clock = clk
	ifc, _ := New(cfg)
	if err := ifc.Upsert(GroupState{Group: grp1, Mode: Exclude, Expires: clk.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	ifc.Start()
	clk.Advance(time.Minute)
	if len(ifc.Groups()) != 0 {
		t.Fatal("timers of state imported before Start do not run")
	}
}

// TestConcurrentUse runs packets, timers and callbacks that call back into
// the Interface from several goroutines under the real clock; with -race
// it checks the locking and the outbox.
func TestConcurrentUse(t *testing.T) {
	cfg := DefaultConfig("eth0", llB)
	cfg.LastListenerQueryInterval = time.Millisecond
	var ifc *Interface
	calls := make(chan struct{}, 1<<16)
	cfg.OnChange = func(GroupState) {
		_ = ifc.Groups() // re-entrant read
		calls <- struct{}{}
	}
	cfg.Sender = SenderFunc(func(netip.Addr, []byte) error { ifc.Status(); return nil })
	ifc, _ = New(cfg)
	ifc.Start()
	defer ifc.Stop()
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			g := grp1
			if w%2 == 1 {
				g = grp2
			}
			for range 200 {
				b, _ := Marshal(&V2Report{Records: []Record{rec(ModeIsExclude, g), rec(ChangeToInclude, g)}}, llC, mld2R)
				ifc.HandlePacket(Packet{Src: llC, Dst: mld2R, HopLimit: 1, RouterAlert: true, Payload: b})
			}
		}()
	}
	for range 4 {
		<-done
	}
	if len(calls) == 0 {
		t.Fatal("no OnChange calls")
	}
	if st := ifc.Stats(); st.RxReportsV2 != 800 || st.TxGroupQueries == 0 {
		t.Fatalf("stats %+v", st)
	}
}
