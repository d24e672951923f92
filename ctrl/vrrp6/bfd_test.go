package vrrp6

import (
	"strings"
	"testing"
	"time"
)

// bfdPair is A (200) and B (120) on one LAN (ge0), advert interval 1 s,
// with A Master and B Backup after both started; B tracks "lan" (peer
// mode) and "rbs" (peer mode too, as a misconfiguration the guard must
// survive), A tracks whatever aTrack says.
func bfdPair(t *testing.T, aTrack []TrackBFD) (c *fakeClock, a, b *node) {
	t.Helper()
	c = newFakeClock()
	l := &lan{}
	cfgA := testConfig(200, llA)
	cfgA.TrackBFD = aTrack
	cfgB := testConfig(120, llB)
	cfgB.TrackBFD = []TrackBFD{{Session: "lan", Mode: TrackBFDPeer}, {Session: "rbs", Mode: TrackBFDPeer}}
	a, b = newNode(t, c, cfgA), newNode(t, c, cfgB)
	a.lan, b.lan = l, l
	l.nodes = []*node{a, b}
	if err := a.r.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.r.Start(); err != nil {
		t.Fatal(err)
	}
	// A's Master_Down_Interval (3.21 s) runs out first; its adverts
	// follow at 3.21 s, 4.21 s, ...
	c.Advance(4 * time.Second)
	wantState(t, a, StateMaster)
	wantState(t, b, StateBackup)
	return c, a, b
}

func (n *node) unplug() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.unplugged = true
}

// masters counts the routers in Master.
func masters(ns ...*node) int {
	m := 0
	for _, n := range ns {
		if n.r.State() == StateMaster {
			m++
		}
	}
	return m
}

// The Master dies: B's LAN session to it fails by expiry (the peer went
// silent, the last BFD packet 10 ms ago, the last advert 0.79 s ago), and
// B is Master at once, not after its Master_Down_Interval of 3.53 s.
func TestBFDPeerTakeover(t *testing.T) {
	c, a, b := bfdPair(t, nil)
	a.unplug()
	now := c.Now()
	if err := b.r.HandleBFD(BFDEvent{Session: "lan", Interface: "ge0", Down: true, Silent: true, LastRx: now.Add(-10 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	wantState(t, b, StateMaster)
	wantTransition(t, b, StateBackup, StateMaster, ReasonBFDPeerDown)
	if tr := b.lastTransition(); !tr.Time.Equal(now) {
		t.Errorf("took over at %v, the failure was at %v", tr.Time, now)
	}
	st := b.r.Status()
	if st.Stats.BFDTakeovers != 1 || len(st.TrackedBFDDown) != 1 || st.TrackedBFDDown[0] != "lan" {
		t.Errorf("takeovers %d, tracked down %v", st.Stats.BFDTakeovers, st.TrackedBFDDown)
	}
	// The same state again is no event; Up again changes nothing on a
	// Master.
	if err := b.r.HandleBFD(BFDEvent{Session: "lan", Interface: "ge0", Down: true, Silent: true}); err != nil {
		t.Fatal(err)
	}
	if err := b.r.HandleBFD(BFDEvent{Session: "lan", Interface: "ge0"}); err != nil {
		t.Fatal(err)
	}
	wantState(t, b, StateMaster)
	if st := b.r.Status(); st.Stats.BFDTakeovers != 1 || st.TrackedBFDDown != nil {
		t.Errorf("after Up: takeovers %d, tracked down %v", st.Stats.BFDTakeovers, st.TrackedBFDDown)
	}
	if err := b.r.HandleBFD(BFDEvent{Session: "nosuch", Down: true}); err == nil || !strings.Contains(err.Error(), "not tracked") {
		t.Errorf("untracked session: %v", err)
	}
}

// The split-brain guard: with the Master alive and its adverts arriving,
// no failed BFD session makes B Master: not one on the remote backup
// link (rule 1), not a peer signalling Down (rule 2), not a LAN session
// that lost the peer while adverts from it still arrived (rule 3). Over
// ten advert intervals there is exactly one Master all the time. When
// the Master then really dies, B takes over by its Master_Down_Timer.
func TestBFDSplitBrainGuard(t *testing.T) {
	c, a, b := bfdPair(t, nil)
	check := func(what string) {
		t.Helper()
		if m := masters(a, b); m != 1 || a.r.State() != StateMaster {
			t.Fatalf("%s: %d Masters, A %v, B %v", what, m, a.r.State(), b.r.State())
		}
	}
	// 1: the RBS link's session fails, the LAN is fine.
	if err := b.r.HandleBFD(BFDEvent{Session: "rbs", Interface: "ge9", Down: true, Silent: true, LastRx: c.Now().Add(-10 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	check("rbs link down")
	// 2: the LAN session is signalled Down by the peer.
	if err := b.r.HandleBFD(BFDEvent{Session: "lan", Interface: "ge0", Down: true, LastRx: c.Now()}); err != nil {
		t.Fatal(err)
	}
	check("peer signalled down")
	if err := b.r.HandleBFD(BFDEvent{Session: "lan", Interface: "ge0"}); err != nil {
		t.Fatal(err)
	}
	// 3: just after A's advert at 4.21 s, the LAN session expires with its
	// last packet at 4.205 s: A was heard after BFD lost it.
	c.Advance(215 * time.Millisecond)
	if err := b.r.HandleBFD(BFDEvent{Session: "lan", Interface: "ge0", Down: true, Silent: true, LastRx: c.Now().Add(-10 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	check("advert after bfd's last packet")
	for range 100 {
		c.Advance(100 * time.Millisecond)
		check("adverts still arriving")
	}
	st := b.r.Status()
	if st.Stats.BFDRefusedOtherLink != 1 || st.Stats.BFDRefusedSignalled != 1 || st.Stats.BFDRefusedMasterHeard != 1 || st.Stats.BFDTakeovers != 0 {
		t.Errorf("refusals: other link %d, signalled %d, master heard %d; takeovers %d",
			st.Stats.BFDRefusedOtherLink, st.Stats.BFDRefusedSignalled, st.Stats.BFDRefusedMasterHeard, st.Stats.BFDTakeovers)
	}
	for _, tr := range b.trans {
		if tr.To == StateMaster {
			t.Errorf("B was Master at %v (%v)", tr.Time, tr.Reason)
		}
	}
	// The guard does not stop RFC 9568: A dies, B takes over after
	// Master_Down_Interval (3.53 s).
	a.unplug()
	c.Advance(3600 * time.Millisecond)
	wantState(t, b, StateMaster)
	wantTransition(t, b, StateBackup, StateMaster, ReasonMasterDownTimerExpired)
}

// Without LastRx, the window is one advert interval plus Skew_Time
// (1.53 s): an advert 0.5 s or 1.4 s ago refuses, one 1.6 s ago does not.
func TestBFDPeerTakeoverNoLastRx(t *testing.T) {
	c, a, b := bfdPair(t, nil)
	c.Advance(710 * time.Millisecond) // A's advert at 4.21 s, now 4.71 s
	if err := b.r.HandleBFD(BFDEvent{Session: "lan", Interface: "ge0", Down: true, Silent: true}); err != nil {
		t.Fatal(err)
	}
	wantState(t, b, StateBackup)
	if err := b.r.HandleBFD(BFDEvent{Session: "lan", Interface: "ge0"}); err != nil {
		t.Fatal(err)
	}
	a.unplug()
	c.Advance(900 * time.Millisecond) // the last advert at 4.21 s, now 5.61 s
	if err := b.r.HandleBFD(BFDEvent{Session: "lan", Interface: "ge0", Down: true, Silent: true}); err != nil {
		t.Fatal(err)
	}
	wantState(t, b, StateBackup)
	if err := b.r.HandleBFD(BFDEvent{Session: "lan", Interface: "ge0"}); err != nil {
		t.Fatal(err)
	}
	c.Advance(200 * time.Millisecond) // 1.6 s since the last advert
	if err := b.r.HandleBFD(BFDEvent{Session: "lan", Interface: "ge0", Down: true, Silent: true}); err != nil {
		t.Fatal(err)
	}
	wantTransition(t, b, StateBackup, StateMaster, ReasonBFDPeerDown)
}

// A Master whose upstream session fails lowers its priority at once by
// the reduction (VRP "track bfd-session ... reduced 150"): its next advert
// says 50, B preempts by RFC 9568; back Up, A preempts again.
func TestBFDReduce(t *testing.T) {
	c, a, b := bfdPair(t, []TrackBFD{{Session: "up", Mode: TrackBFDReduce, Reduced: 150}})
	sent := a.numSent()
	if err := a.r.HandleBFD(BFDEvent{Session: "up", Interface: "ge1", Down: true, Silent: true}); err != nil {
		t.Fatal(err)
	}
	if a.numSent() != sent+1 || a.lastAdvert().Advert.Priority != 50 {
		t.Fatalf("A sent %d adverts, last priority %d; want one at once with 50", a.numSent()-sent, a.lastAdvert().Advert.Priority)
	}
	wantState(t, a, StateMaster)
	c.Advance(4 * time.Second)
	wantState(t, b, StateMaster)
	wantTransition(t, b, StateBackup, StateMaster, ReasonPreempt)
	wantState(t, a, StateBackup)
	if err := a.r.HandleBFD(BFDEvent{Session: "up", Interface: "ge1"}); err != nil {
		t.Fatal(err)
	}
	if st := a.r.Status(); st.EffectivePriority != 200 {
		t.Fatalf("priority %d after Up", st.EffectivePriority)
	}
	c.Advance(4 * time.Second)
	wantState(t, a, StateMaster)
	wantState(t, b, StateBackup)
}

// Step-down: the Master gives up at once with a priority 0 advert, B
// takes over after its Skew_Time (0.53 s), A stays Backup at priority 1
// while the session is failed, and takes over again once it is Up.
func TestBFDStepDown(t *testing.T) {
	c, a, b := bfdPair(t, []TrackBFD{{Session: "up", Mode: TrackBFDStepDown}})
	if err := a.r.HandleBFD(BFDEvent{Session: "up", Interface: "ge1", Down: true}); err != nil {
		t.Fatal(err)
	}
	wantTransition(t, a, StateMaster, StateBackup, ReasonBFDStepDown)
	if p := a.lastAdvert().Advert.Priority; p != PriorityShutdown {
		t.Fatalf("step-down advert priority %d", p)
	}
	c.Advance(540 * time.Millisecond)
	wantTransition(t, b, StateBackup, StateMaster, ReasonPriorityZeroReceived)
	for range 100 {
		c.Advance(100 * time.Millisecond)
		if masters(a, b) != 1 || b.r.State() != StateMaster {
			t.Fatalf("while stepped down: A %v, B %v", a.r.State(), b.r.State())
		}
	}
	if st := a.r.Status(); st.EffectivePriority != 1 || st.Stats.BFDStepDowns != 1 {
		t.Fatalf("stepped down: priority %d, step-downs %d", st.EffectivePriority, st.Stats.BFDStepDowns)
	}
	if err := a.r.HandleBFD(BFDEvent{Session: "up", Interface: "ge1"}); err != nil {
		t.Fatal(err)
	}
	c.Advance(4 * time.Second)
	wantState(t, a, StateMaster)
	wantState(t, b, StateBackup)
}

// Reconfigure drops the state of sessions no longer tracked; Validate
// checks the tracks.
func TestBFDTrackConfig(t *testing.T) {
	_, a, _ := bfdPair(t, []TrackBFD{{Session: "up", Mode: TrackBFDReduce, Reduced: 50}})
	if err := a.r.HandleBFD(BFDEvent{Session: "up", Down: true}); err != nil {
		t.Fatal(err)
	}
	if st := a.r.Status(); st.EffectivePriority != 150 {
		t.Fatalf("priority %d", st.EffectivePriority)
	}
	cfg := testConfig(200, llA)
	if err := a.r.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if st := a.r.Status(); st.EffectivePriority != 200 || st.TrackedBFDDown != nil {
		t.Fatalf("after untracking: priority %d, down %v", st.EffectivePriority, st.TrackedBFDDown)
	}
	for _, tt := range []struct {
		tracks []TrackBFD
		want   string
	}{
		{[]TrackBFD{{Session: ""}}, "session name is empty"},
		{[]TrackBFD{{Session: "x"}, {Session: "x", Mode: TrackBFDStepDown}}, "listed twice"},
		{[]TrackBFD{{Session: "x", Mode: TrackBFDReduce}}, "reduced must be"},
		{[]TrackBFD{{Session: "x", Reduced: 10}}, "mode reduce only"},
		{[]TrackBFD{{Session: "x", Mode: 7}}, "unknown mode"},
	} {
		c := testConfig(100, llA)
		c.TrackBFD = tt.tracks
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.tracks, err, tt.want)
		}
	}
}
