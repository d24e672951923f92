package mld

import (
	"testing"
	"time"
)

// generalQueries returns the general queries among msgs.
func generalQueries(msgs []sentMsg) []*Query {
	var out []*Query
	for _, m := range msgs {
		if m.q.IsGeneral() {
			out = append(out, m.q)
		}
	}
	return out
}

// A shorter Query Interval brings the next general query forward to one
// new interval after the last; a longer one lets the pending query go at
// its time, and the interval after it is the new one.
func TestSetQueryIntervalMovesNextGeneralQuery(t *testing.T) {
	h := newHarness(t, nil)
	// Startup: queries at 0 and 31.25 s (Startup Query Interval 125/4),
	// then every 125 s: the next at 156.25 s.
	h.clk.Advance(40 * time.Second)
	h.take()
	if st := h.ifc.Status(); st.NextGeneralQuery != 116250*time.Millisecond {
		t.Fatalf("next general query in %v", st.NextGeneralQuery)
	}
	if err := h.ifc.SetQueryInterval(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if st := h.ifc.Status(); st.NextGeneralQuery != 51250*time.Millisecond || st.QueryInterval != 60*time.Second {
		t.Fatalf("after 60 s: next general query in %v, interval %v", st.NextGeneralQuery, st.QueryInterval)
	}
	if len(h.take()) != 0 {
		t.Fatal("changing the interval sent a query")
	}
	h.clk.Advance(51250*time.Millisecond - time.Millisecond)
	if len(h.take()) != 0 {
		t.Fatal("query before one new interval after the last")
	}
	h.clk.Advance(time.Millisecond)
	qs := generalQueries(h.take())
	if len(qs) != 1 || qs[0].QueryInterval() != 60*time.Second {
		t.Fatalf("general queries %+v, want one with QQIC 60 s", qs)
	}
	if st := h.ifc.Status(); st.NextGeneralQuery != 60*time.Second {
		t.Fatalf("then every 60 s: next in %v", st.NextGeneralQuery)
	}

	// Longer: the pending query keeps its time.
	h.clk.Advance(10 * time.Second)
	if err := h.ifc.SetQueryInterval(200 * time.Second); err != nil {
		t.Fatal(err)
	}
	if st := h.ifc.Status(); st.NextGeneralQuery != 50*time.Second {
		t.Fatalf("after 200 s: next general query in %v, want the pending 50 s", st.NextGeneralQuery)
	}
	h.clk.Advance(50 * time.Second)
	if qs := generalQueries(h.take()); len(qs) != 1 || qs[0].QueryInterval() != 200*time.Second {
		t.Fatalf("general queries %+v", qs)
	}
	if st := h.ifc.Status(); st.NextGeneralQuery != 200*time.Second {
		t.Fatalf("next in %v, want 200 s", st.NextGeneralQuery)
	}
}

// During the startup queries a shorter Startup Query Interval (here
// following the Query Interval, as SetParams with 0 gives) brings the
// next startup query forward.
func TestSetParamsDuringStartup(t *testing.T) {
	h := newHarness(t, nil) // first query at 0, next at 31.25 s
	h.clk.Advance(2 * time.Second)
	p := h.ifc.Params()
	p.QueryInterval, p.StartupQueryInterval = 20*time.Second, 0 // startup interval 5 s
	if err := h.ifc.SetParams(p); err != nil {
		t.Fatal(err)
	}
	if st := h.ifc.Status(); st.NextGeneralQuery != 3*time.Second {
		t.Fatalf("next startup query in %v, want 3 s (5 s after the first)", st.NextGeneralQuery)
	}
	h.clk.Advance(3 * time.Second)
	if qs := generalQueries(h.take()); len(qs) != 1 || qs[0].QueryInterval() != 20*time.Second {
		t.Fatalf("general queries %+v", qs)
	}
	if st := h.ifc.Status(); st.NextGeneralQuery != 20*time.Second {
		t.Fatalf("after the startup queries: next in %v, want 20 s", st.NextGeneralQuery)
	}
}

// SetParams touches no group: no notification, timers as they were; a
// report after the change uses the new Multicast Address Listening
// Interval, a leave the new Last Listener Query Interval and count.
func TestSetParamsKeepsGroups(t *testing.T) {
	h := newHarness(t, nil)
	h.report(rec(ModeIsExclude, grp1))
	h.report(rec(ModeIsInclude, grp2, s1))
	before, _ := h.group(grp1)
	h.changes, h.deletes = nil, nil
	h.clk.Advance(5 * time.Second)
	h.take()

	p := h.ifc.Params()
	p.Robustness = 3
	p.QueryInterval = 60 * time.Second
	p.QueryResponseInterval = 5 * time.Second
	p.LastListenerQueryInterval = 2 * time.Second
	p.LastListenerQueryCount = 0 // follows the robustness
	p.StartupQueryCount = 0
	p.StartupQueryInterval = 0
	if err := h.ifc.SetParams(p); err != nil {
		t.Fatal(err)
	}
	if len(h.changes)+len(h.deletes) != 0 {
		t.Fatalf("SetParams notified group changes %v, deletes %v", h.changes, h.deletes)
	}
	after, _ := h.group(grp1)
	if !after.Expires.Equal(before.Expires) || len(h.ifc.Groups()) != 2 {
		t.Fatalf("group timer moved: %v -> %v", before.Expires, after.Expires)
	}
	got := h.ifc.Params()
	if got.Robustness != 3 || got.LastListenerQueryCount != 3 || got.StartupQueryCount != 3 || got.StartupQueryInterval != 15*time.Second {
		t.Fatalf("params %+v", got)
	}
	if st := h.ifc.Status(); st.Robustness != 3 || st.MulticastListeningInt != 185*time.Second || st.LastListenerQueryCount != 3 {
		t.Fatalf("status %+v", st)
	}

	// A refresh: filter timer = new MALI, 3*60 + 5 s.
	h.report(rec(ModeIsExclude, grp1))
	if st, _ := h.group(grp1); st.Expires.Sub(h.clk.Now()) != 185*time.Second {
		t.Fatalf("refreshed timer %v, want 185 s", st.Expires.Sub(h.clk.Now()))
	}
	// A leave: 3 group-specific queries 2 s apart with a 2 s delay.
	h.take()
	h.report(rec(ChangeToInclude, grp1))
	h.clk.Advance(5 * time.Second)
	var n int
	for _, m := range h.take() {
		if m.q.Group == grp1 {
			n++
			if m.q.MaxResponseDelay() != 2*time.Second || m.q.QRV != 3 || m.q.QueryInterval() != 60*time.Second {
				t.Errorf("specific query %+v", m.q)
			}
		}
	}
	if n != 3 {
		t.Fatalf("%d specific queries, want 3", n)
	}
	h.clk.Advance(time.Second) // LLQT 6 s after the leave
	if _, ok := h.group(grp1); ok {
		t.Fatal("group still there after the last listener query time")
	}
}

// While another router is querier its Query Interval and Robustness stay
// in use; the configured ones take over when it goes away.
func TestSetParamsNonQuerierKeepsLearned(t *testing.T) {
	h := newHarness(t, nil)
	h.send(llA, allNd, &Query{Version: 2, MaxRespCode: EncodeMaxRespCode(10 * time.Second), QRV: 3, QQIC: EncodeQQIC(60 * time.Second)})
	if st := h.ifc.Status(); st.IsQuerier || st.QueryInterval != 60*time.Second || st.Robustness != 3 {
		t.Fatalf("status %+v", st)
	}
	if err := h.ifc.SetQueryInterval(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := h.ifc.SetRobustness(4); err != nil {
		t.Fatal(err)
	}
	if st := h.ifc.Status(); st.QueryInterval != 60*time.Second || st.Robustness != 3 || h.ifc.Params().QueryInterval != 30*time.Second {
		t.Fatalf("learned values not kept: %+v", st)
	}
	h.take()
	// Other Querier Present Interval 3*60 + 10/2 = 185 s.
	h.clk.Advance(185 * time.Second)
	st := h.ifc.Status()
	if !st.IsQuerier || st.QueryInterval != 30*time.Second || st.Robustness != 4 || st.NextGeneralQuery != 30*time.Second {
		t.Fatalf("after the other querier left: %+v", st)
	}
	if qs := generalQueries(h.take()); len(qs) != 1 || qs[0].QueryInterval() != 30*time.Second || qs[0].QRV != 4 {
		t.Fatalf("general queries %+v", qs)
	}
}

func TestSetParamsRejects(t *testing.T) {
	h := newHarness(t, nil)
	before := h.ifc.Params()
	if err := h.ifc.SetQueryResponseInterval(125 * time.Second); err == nil {
		t.Error("query response interval = query interval accepted")
	}
	if err := h.ifc.SetQueryInterval(5 * time.Second); err == nil {
		t.Error("query interval below the response interval accepted")
	}
	if err := h.ifc.SetVersion(3); err == nil {
		t.Error("version 3 accepted")
	}
	if got := h.ifc.Params(); got != before {
		t.Fatalf("rejected changes applied: %+v, was %+v", got, before)
	}
}

// Version and response interval apply to the next general query; an
// MLDv1 interface drops MLDv2 reports from then on.
func TestSetVersionAndResponseInterval(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.ifc.SetQueryResponseInterval(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(31250 * time.Millisecond)
	qs := generalQueries(h.take())
	if len(qs) != 1 || qs[0].Version != 2 || qs[0].MaxResponseDelay() != 3*time.Second {
		t.Fatalf("general queries %+v", qs)
	}
	if err := h.ifc.SetVersion(1); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(125 * time.Second)
	qs = generalQueries(h.take())
	if len(qs) != 1 || qs[0].Version != 1 || qs[0].MaxResponseDelay() != 3*time.Second {
		t.Fatalf("general queries %+v", qs)
	}
	h.report(rec(ModeIsExclude, grp1))
	if st := h.ifc.Stats(); st.Drops[DropVersionMismatch] != 1 {
		t.Fatalf("drops %v", st.Drops)
	}
	if _, ok := h.group(grp1); ok {
		t.Fatal("MLDv1 interface took an MLDv2 report")
	}
}

func TestSetMaxGroupsAndRouterAlert(t *testing.T) {
	h := newHarness(t, nil)
	h.report(rec(ModeIsExclude, grp1), rec(ModeIsExclude, grp2))
	if err := h.ifc.SetMaxGroups(1); err != nil {
		t.Fatal(err)
	}
	if len(h.ifc.Groups()) != 2 {
		t.Fatal("lowering the limit removed groups")
	}
	h.report(rec(ModeIsExclude, ssm1, s1))
	h.report(rec(ModeIsInclude, ssm1, s1))
	if _, ok := h.group(ssm1); ok {
		t.Fatal("group beyond the new limit created")
	}
	if err := h.ifc.SetRequireRouterAlert(false); err != nil {
		t.Fatal(err)
	}
	if err := h.ifc.SetMaxGroups(0); err != nil { // default 4096
		t.Fatal(err)
	}
	b, err := Marshal(&V2Report{Records: []Record{rec(ModeIsInclude, ssm1, s1)}}, llC, mld2R)
	if err != nil {
		t.Fatal(err)
	}
	h.ifc.HandlePacket(Packet{Src: llC, Dst: mld2R, HopLimit: 1, Payload: b})
	if _, ok := h.group(ssm1); !ok {
		t.Fatal("report without router alert dropped after SetRequireRouterAlert(false)")
	}
}
