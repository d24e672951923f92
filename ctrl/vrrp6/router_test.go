package vrrp6

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const cs = 10 * time.Millisecond

var (
	llA  = "fe80::a" // the 200 router of the Huawei example
	llB  = "fe80::b" // the 120 router
	peer = netip.MustParseAddr("fe80::200")
)

func hear(n *node, src netip.Addr, prio uint8, ivalCS uint16) {
	n.r.HandleAdvert(src, GroupAddr, 255, payload(n.t, 1, prio, ivalCS, src, testVIPs))
}

func wantState(t *testing.T, n *node, want State) {
	t.Helper()
	if got := n.r.State(); got != want {
		t.Fatalf("state %v, want %v", got, want)
	}
}

func wantTransition(t *testing.T, n *node, from, to State, reason Reason) {
	t.Helper()
	tr := n.lastTransition()
	if tr.From != from || tr.To != to || tr.Reason != reason {
		t.Fatalf("last transition %v -> %v (%v), want %v -> %v (%v)", tr.From, tr.To, tr.Reason, from, to, reason)
	}
}

// TestTimerArithmetic shows RFC 9568 §6.1 in centiseconds with integer
// division: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256,
// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time.
func TestTimerArithmetic(t *testing.T) {
	tests := []struct {
		prio      uint8
		mai       uint16
		skew, mdi uint16
	}{
		{200, 100, 21, 321},      // 56*100/256 = 5600/256 = 21.875 -> 21; 300+21
		{120, 100, 53, 353},      // 136*100/256 = 13600/256 = 53.125 -> 53; 300+53
		{254, 100, 0, 300},       // 2*100/256 = 0.78 -> 0
		{1, 100, 99, 399},        // 255*100/256 = 99.6 -> 99
		{100, 50, 30, 180},       // 156*50/256 = 7800/256 = 30.47 -> 30; 150+30
		{120, 50, 26, 176},       // 136*50/256 = 6800/256 = 26.56 -> 26; 150+26
		{100, 4095, 2495, 14780}, // 156*4095/256 = 638820/256 = 2495.4 -> 2495; 12285+2495
		{1, 4095, 4079, 16364},   // 255*4095/256 = 1044225/256 = 4079 (4079*256 = 1044224); 12285+4079
		{255, 1, 0, 3},           // 1*1/256 -> 0
		{1, 1, 0, 3},             // 255/256 -> 0
	}
	for _, tt := range tests {
		if got := SkewTime(tt.prio, tt.mai); got != tt.skew {
			t.Errorf("SkewTime(%d, %d) = %d, want %d", tt.prio, tt.mai, got, tt.skew)
		}
		if got := MasterDownInterval(tt.prio, tt.mai); got != tt.mdi {
			t.Errorf("MasterDownInterval(%d, %d) = %d, want %d", tt.prio, tt.mai, got, tt.mdi)
		}
	}
}

// RFC 9568 §6.4.1: the owner goes Initialize -> Master, Actions before the
// first advert, one NA per virtual address, adverts every interval.
func TestStartOwnerBecomesMaster(t *testing.T) {
	c := newFakeClock()
	n := newNode(t, c, testConfig(255, llA))
	if err := n.r.Start(); err != nil {
		t.Fatal(err)
	}
	wantState(t, n, StateMaster)
	wantTransition(t, n, StateInitialize, StateMaster, ReasonStartup)
	if n.sentAtTransition[0] != 0 {
		t.Fatalf("%d adverts sent before Actions ran", n.sentAtTransition[0])
	}
	if !n.trans[0].Accept || !bytes.Equal(n.trans[0].VirtualMAC, VirtualMAC(1)) {
		t.Fatalf("transition %+v: owner must accept, virtual MAC 00:00:5e:00:02:01", n.trans[0])
	}
	f := n.lastAdvert()
	if f.Advert.Priority != 255 || f.Advert.MaxAdvertInterval != 100 || f.IP.Src != netip.MustParseAddr(llA) || !bytes.Equal(f.EthSrc, VirtualMAC(1)) {
		t.Fatalf("advert %+v", f)
	}
	if len(n.nas) != 2 {
		t.Fatalf("%d NAs, want one per virtual address (2)", len(n.nas))
	}
	for i, b := range n.nas {
		na, err := ParseNAFrame(b)
		if err != nil {
			t.Fatal(err)
		}
		if na.NA.Target != testVIPs[i] || !na.NA.Router || !na.NA.Override || na.NA.Solicited || !bytes.Equal(na.NA.TargetLLA, VirtualMAC(1)) {
			t.Fatalf("NA %d: %+v", i, na.NA)
		}
	}
	c.Advance(999 * time.Millisecond)
	if n.numSent() != 1 {
		t.Fatalf("%d adverts before 1s, want 1", n.numSent())
	}
	c.Advance(time.Millisecond)
	if n.numSent() != 2 {
		t.Fatalf("%d adverts at 1s, want 2", n.numSent())
	}
	c.Advance(10 * time.Second)
	if n.numSent() != 12 {
		t.Fatalf("%d adverts at 11s, want 12", n.numSent())
	}
	if err := n.r.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
}

// RFC 9568 §6.4.1 then §6.4.2: Initialize -> Backup, Master_Down_Timer =
// 3*100 + 53 = 353 cs for priority 120, then Backup -> Master.
func TestBackupMasterDownExpiry(t *testing.T) {
	c := newFakeClock()
	n := newNode(t, c, testConfig(120, llB))
	n.r.Start()
	wantState(t, n, StateBackup)
	wantTransition(t, n, StateInitialize, StateBackup, ReasonStartup)
	st := n.r.Status()
	if st.MasterDownInterval != 353*cs || st.SkewTime != 53*cs || st.MasterDownRemaining != 353*cs || st.MasterAdverInterval != time.Second {
		t.Fatalf("status %+v", st)
	}
	c.Advance(3529 * time.Millisecond)
	wantState(t, n, StateBackup)
	if n.numSent() != 0 {
		t.Fatal("Backup sent an advert")
	}
	c.Advance(time.Millisecond)
	wantState(t, n, StateMaster)
	wantTransition(t, n, StateBackup, StateMaster, ReasonMasterDownTimerExpired)
	if n.sentAtTransition[1] != 0 || n.numSent() != 1 || len(n.nas) != 2 {
		t.Fatalf("sent at transition %d, sent %d, NAs %d", n.sentAtTransition[1], n.numSent(), len(n.nas))
	}
	if n.trans[1].Accept {
		t.Fatal("non-owner without Accept_Mode must not accept")
	}
	if st := n.r.Status(); st.Stats.BecameMaster != 1 || st.MasterAddr != netip.MustParseAddr(llB) || st.AdverRemaining != time.Second {
		t.Fatalf("status %+v", st)
	}
}

// RFC 9568 §6.4.2: a Backup hearing a higher-priority Master stays Backup.
func TestBackupStaysOnAdverts(t *testing.T) {
	c := newFakeClock()
	n := newNode(t, c, testConfig(120, llB))
	n.r.Start()
	for range 30 {
		c.Advance(time.Second)
		hear(n, peer, 200, 100)
	}
	wantState(t, n, StateBackup)
	st := n.r.Status()
	if st.MasterAddr != peer || st.MasterPriority != 200 || st.MasterDownRemaining != 353*cs {
		t.Fatalf("status %+v", st)
	}
	// Equal priority is accepted too (">= local Priority").
	hear(n, netip.MustParseAddr("fe80::1:1"), 120, 100)
	c.Advance(3 * time.Second)
	wantState(t, n, StateBackup)
	c.Advance(530 * time.Millisecond)
	wantState(t, n, StateMaster)
}

// RFC 9568 §6.4.2: Master_Adver_Interval is learned from the Master and
// Master_Down_Interval recomputed: 50 cs -> 3*50 + 136*50/256 = 150 + 26.
func TestBackupLearnsInterval(t *testing.T) {
	c := newFakeClock()
	n := newNode(t, c, testConfig(120, llB))
	n.r.Start()
	hear(n, peer, 200, 50)
	st := n.r.Status()
	if st.MasterAdverInterval != 500*time.Millisecond || st.MasterDownInterval != 176*cs || st.SkewTime != 26*cs {
		t.Fatalf("status %+v", st)
	}
	c.Advance(1759 * time.Millisecond)
	wantState(t, n, StateBackup)
	c.Advance(time.Millisecond)
	wantState(t, n, StateMaster)
	// As Master it advertises its own Advertisement_Interval.
	if ival := n.lastAdvert().Advert.MaxAdvertInterval; ival != 100 {
		t.Fatalf("master advertises %d cs, want its own 100", ival)
	}
}

// RFC 9568 §6.4.2: priority 0 sets the Master_Down_Timer to Skew_Time.
func TestBackupPriorityZero(t *testing.T) {
	c := newFakeClock()
	n := newNode(t, c, testConfig(120, llB))
	n.r.Start()
	hear(n, peer, 200, 100)
	c.Advance(time.Second)
	hear(n, peer, 0, 100)
	if st := n.r.Status(); st.MasterDownRemaining != 53*cs || st.Stats.PriorityZeroReceived != 1 {
		t.Fatalf("status %+v", st)
	}
	c.Advance(529 * time.Millisecond)
	wantState(t, n, StateBackup)
	c.Advance(time.Millisecond)
	wantState(t, n, StateMaster)
	wantTransition(t, n, StateBackup, StateMaster, ReasonPriorityZeroReceived)
}

func startMaster(t *testing.T, c *fakeClock, cfg Config) *node {
	t.Helper()
	n := newNode(t, c, cfg)
	n.r.Start()
	c.Advance(4 * time.Second)
	wantState(t, n, StateMaster)
	return n
}

// RFC 9568 §6.4.3: the ADVERTISEMENT event of a Master.
func TestMasterReceive(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		prio   uint8
		want   State
		reason Reason
	}{
		{"higher priority", "fe80::1", 121, StateBackup, ReasonHigherPriorityAdvert},
		{"equal priority greater address", "fe80::c", 120, StateBackup, ReasonEqualPriorityHigherAddress},
		{"equal priority smaller address", "fe80::9", 120, StateMaster, ReasonNone},
		{"lower priority", "fe80::ffff", 119, StateMaster, ReasonNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			n := startMaster(t, c, testConfig(120, llB))
			sent := n.numSent()
			hear(n, netip.MustParseAddr(tt.src), tt.prio, 200)
			wantState(t, n, tt.want)
			st := n.r.Status()
			if tt.want == StateMaster {
				if st.Stats.LowerPriorityDiscarded != 1 {
					t.Fatalf("discarded %d, want 1", st.Stats.LowerPriorityDiscarded)
				}
				return
			}
			wantTransition(t, n, StateMaster, StateBackup, tt.reason)
			// Adver_Timer cancelled; Master_Adver_Interval learned (200 cs),
			// Master_Down_Interval = 600 + 136*200/256 (=106) = 706 cs.
			if st.AdverRemaining != 0 || st.MasterAdverInterval != 2*time.Second || st.MasterDownRemaining != 706*cs {
				t.Fatalf("status %+v", st)
			}
			if st.Stats.IntervalMismatch != 1 {
				t.Fatalf("interval mismatch %d, want 1", st.Stats.IntervalMismatch)
			}
			c.Advance(7059 * time.Millisecond)
			if n.numSent() != sent {
				t.Fatal("Backup kept advertising")
			}
			wantState(t, n, StateBackup)
			c.Advance(time.Millisecond)
			wantState(t, n, StateMaster)
		})
	}
}

// RFC 9568 §6.4.3: a Master answers priority 0 with an advert at once and
// restarts its Adver_Timer.
func TestMasterPriorityZero(t *testing.T) {
	c := newFakeClock()
	n := startMaster(t, c, testConfig(120, llB))
	c.Advance(300 * time.Millisecond)
	sent := n.numSent()
	hear(n, peer, 0, 100)
	if n.numSent() != sent+1 || n.lastAdvert().Advert.Priority != 120 {
		t.Fatalf("no immediate advert on priority 0")
	}
	if st := n.r.Status(); st.AdverRemaining != time.Second {
		t.Fatalf("Adver_Timer %v, want reset to 1s", st.AdverRemaining)
	}
	wantState(t, n, StateMaster)
}

// Preempt_Mode false: a higher-priority Backup accepts a lower Master.
func TestNoPreempt(t *testing.T) {
	c := newFakeClock()
	cfg := testConfig(200, llA)
	cfg.NoPreempt = true
	n := newNode(t, c, cfg)
	n.r.Start()
	for range 60 {
		hear(n, peer, 120, 100)
		c.Advance(time.Second)
	}
	wantState(t, n, StateBackup)
	if st := n.r.Status(); st.Stats.LowerPriorityDiscarded != 0 || st.Preempt {
		t.Fatalf("status %+v", st)
	}
}

// Preempt_Mode true, no delay: the lower-priority adverts are discarded
// (RFC 9568 §6.4.2) and the Master_Down_Timer, last set at Start
// (3*100 + 56*100/256 = 321 cs), fires.
func TestPreemptNoDelay(t *testing.T) {
	c := newFakeClock()
	n := newNode(t, c, testConfig(200, llA))
	n.r.Start()
	for range 3 {
		hear(n, peer, 120, 100)
		c.Advance(time.Second)
	}
	wantState(t, n, StateBackup)
	c.Advance(209 * time.Millisecond)
	hear(n, peer, 120, 100)
	wantState(t, n, StateBackup)
	c.Advance(time.Millisecond)
	wantState(t, n, StateMaster)
	wantTransition(t, n, StateBackup, StateMaster, ReasonPreempt)
	if st := n.r.Status(); st.Stats.LowerPriorityDiscarded != 4 {
		t.Fatalf("discarded %d, want 4", st.Stats.LowerPriorityDiscarded)
	}
}

func huaweiPair(t *testing.T, c *fakeClock) (a, b *node) {
	t.Helper()
	l := &lan{}
	cfgA := testConfig(200, llA)
	cfgA.PreemptDelay = 10 * time.Second
	cfgA.Track = []Track{{Name: "ge0/1/1", Reduced: 100}}
	cfgB := testConfig(120, llB)
	cfgB.PreemptDelay = 10 * time.Second
	a, b = newNode(t, c, cfgA), newNode(t, c, cfgB)
	a.lan, b.lan = l, l
	l.nodes = []*node{a, b}
	return a, b
}

// The Huawei reference (priority 200 and 120, "preempt-mode timer delay
// 10"): the 200 router recovers while the 120 router is Master; it stays
// Backup for 10 s from the first advert it hears, accepting the 120
// Master's adverts, and only then takes over.
func TestPreemptDelayHuaweiReference(t *testing.T) {
	c := newFakeClock()
	a, b := huaweiPair(t, c)
	b.r.Start()
	c.Advance(3530 * time.Millisecond) // 353 cs
	wantState(t, b, StateMaster)

	c.Advance(200 * time.Millisecond)
	a.r.Start() // the 200 router recovers
	wantState(t, a, StateBackup)
	// B's next advert is 800 ms later; the delay starts then.
	c.Advance(800 * time.Millisecond)
	st := a.r.Status()
	if st.PreemptDelayRemaining != 10*time.Second || st.MasterPriority != 120 || st.Stats.PreemptDelayStarted != 1 {
		t.Fatalf("status %+v", st)
	}
	c.Advance(9999 * time.Millisecond)
	wantState(t, a, StateBackup)
	wantState(t, b, StateMaster)
	if st := a.r.Status(); st.Stats.LowerPriorityDiscarded != 0 || st.MasterDownRemaining == 0 {
		t.Fatalf("adverts from the 120 master must be accepted during the delay: %+v", st)
	}
	c.Advance(time.Millisecond)
	wantState(t, a, StateMaster)
	wantTransition(t, a, StateBackup, StateMaster, ReasonPreemptDelayExpired)
	wantState(t, b, StateBackup)
	wantTransition(t, b, StateMaster, StateBackup, ReasonHigherPriorityAdvert)

	// Steady state: B hears A every second and stays Backup.
	c.Advance(time.Minute)
	wantState(t, a, StateMaster)
	wantState(t, b, StateBackup)

	// A shuts down: priority 0 advert, B takes over after its Skew_Time
	// (136*100/256 = 53 cs).
	a.r.Shutdown()
	wantState(t, a, StateInitialize)
	wantTransition(t, a, StateMaster, StateInitialize, ReasonShutdown)
	if f := a.lastAdvert(); f.Advert.Priority != 0 {
		t.Fatalf("shutdown advert priority %d, want 0", f.Advert.Priority)
	}
	if a.sentAtTransition[len(a.sentAtTransition)-1] != a.numSent() {
		t.Fatal("priority 0 advert must precede the Master -> Initialize transition")
	}
	c.Advance(529 * time.Millisecond)
	wantState(t, b, StateBackup)
	c.Advance(time.Millisecond)
	wantState(t, b, StateMaster)
	wantTransition(t, b, StateBackup, StateMaster, ReasonPriorityZeroReceived)
	// Shut down, A sends nothing more.
	sent := a.numSent()
	c.Advance(time.Minute)
	if a.numSent() != sent {
		t.Fatal("adverts after Shutdown")
	}
}

// While the preempt delay runs, a Master failure is still detected by the
// Master_Down_Timer, and a higher-priority advert cancels the delay.
func TestPreemptDelayCancel(t *testing.T) {
	c := newFakeClock()
	cfg := testConfig(200, llA)
	cfg.PreemptDelay = 10 * time.Second
	n := newNode(t, c, cfg)
	n.r.Start()
	hear(n, peer, 120, 100)
	c.Advance(time.Second)
	hear(n, peer, 250, 100) // the master's priority went up
	if st := n.r.Status(); st.PreemptDelayRemaining != 0 {
		t.Fatalf("delay still running: %+v", st)
	}
	c.Advance(time.Second)
	hear(n, peer, 120, 100) // down again: the delay restarts
	if st := n.r.Status(); st.PreemptDelayRemaining != 10*time.Second || st.Stats.PreemptDelayStarted != 2 {
		t.Fatalf("status %+v", st)
	}
	// Master dies: 321 cs later the Master_Down_Timer fires.
	c.Advance(3210 * time.Millisecond)
	wantState(t, n, StateMaster)
	wantTransition(t, n, StateBackup, StateMaster, ReasonMasterDownTimerExpired)
	if st := n.r.Status(); st.PreemptDelayRemaining != 0 {
		t.Fatalf("status %+v", st)
	}
}

// Huawei "track interface ... reduced 100": the 200 Master drops to 100,
// advertises it at once; the 120 Backup preempts after its 10 s delay.
// When the interface comes back, the 200 router preempts back after its
// own delay.
func TestTrackedInterface(t *testing.T) {
	c := newFakeClock()
	a, b := huaweiPair(t, c)
	a.r.Start()
	b.r.Start()
	c.Advance(4 * time.Second)
	wantState(t, a, StateMaster)
	wantState(t, b, StateBackup)

	c.Advance(300 * time.Millisecond)
	sent := a.numSent()
	if err := a.r.SetTrackedDown("ge0/1/1", true); err != nil {
		t.Fatal(err)
	}
	if a.numSent() != sent+1 || a.lastAdvert().Advert.Priority != 100 {
		t.Fatal("no immediate advert with the reduced priority")
	}
	if st := a.r.Status(); st.EffectivePriority != 100 || st.ConfiguredPriority != 200 || len(st.TrackedDown) != 1 {
		t.Fatalf("status %+v", st)
	}
	c.Advance(0) // deliver
	if st := b.r.Status(); st.PreemptDelayRemaining != 10*time.Second {
		t.Fatalf("B: %+v", st)
	}
	c.Advance(10 * time.Second)
	wantState(t, b, StateMaster)
	wantTransition(t, b, StateBackup, StateMaster, ReasonPreemptDelayExpired)
	wantState(t, a, StateBackup)

	if err := a.r.SetTrackedDown("ge0/1/1", false); err != nil {
		t.Fatal(err)
	}
	// A knows the Master's priority (120) and starts its delay at once.
	if st := a.r.Status(); st.EffectivePriority != 200 || st.PreemptDelayRemaining != 10*time.Second {
		t.Fatalf("A: %+v", st)
	}
	c.Advance(10 * time.Second)
	wantState(t, a, StateMaster)
	wantState(t, b, StateBackup)

	if err := a.r.SetTrackedDown("eth9", true); err == nil {
		t.Fatal("unknown tracked interface accepted")
	}
}

func TestEffectivePriorityFloorAndOwner(t *testing.T) {
	c := newFakeClock()
	cfg := testConfig(100, llA)
	cfg.Track = []Track{{"x", 60}, {"y", 60}}
	n := newNode(t, c, cfg)
	n.r.SetTrackedDown("x", true)
	n.r.SetTrackedDown("y", true)
	if p := n.r.Status().EffectivePriority; p != 1 {
		t.Fatalf("effective priority %d, want floor 1", p)
	}
	n.r.SetTrackedDown("y", false)
	if p := n.r.Status().EffectivePriority; p != 40 {
		t.Fatalf("effective priority %d, want 40", p)
	}
	cfg = testConfig(255, llA)
	cfg.Track = []Track{{"x", 60}}
	o := newNode(t, c, cfg)
	o.r.SetTrackedDown("x", true)
	if p := o.r.Status().EffectivePriority; p != 255 {
		t.Fatalf("owner effective priority %d, want 255", p)
	}
}

// Shutdown of a Backup: no advert, timers stopped, Start works again.
func TestShutdownBackup(t *testing.T) {
	c := newFakeClock()
	n := newNode(t, c, testConfig(120, llB))
	n.r.Start()
	n.r.Shutdown()
	wantTransition(t, n, StateBackup, StateInitialize, ReasonShutdown)
	c.Advance(time.Minute)
	wantState(t, n, StateInitialize)
	if n.numSent() != 0 {
		t.Fatal("Backup shutdown sent an advert")
	}
	hear(n, peer, 200, 100)
	if st := n.r.Status(); st.Stats.Drops[DropNotRunning] != 1 {
		t.Fatalf("drops %v", st.Stats.Drops)
	}
	n.r.Shutdown() // no-op
	if err := n.r.Start(); err != nil {
		t.Fatal(err)
	}
	wantState(t, n, StateBackup)
}

// RFC 9568 §7.1 receive checks, each drop counted by reason.
func TestReceiveValidation(t *testing.T) {
	good := payload(t, 1, 200, 100, peer, testVIPs)
	mod := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	tests := []struct {
		name     string
		src, dst netip.Addr
		hop      int
		b        []byte
		owner    bool
		want     DropReason
	}{
		{"hop limit 64 (keepalived unicast)", peer, GroupAddr, 64, good, false, DropHopLimit},
		{"hop limit 254", peer, GroupAddr, 254, good, false, DropHopLimit},
		{"version 2", peer, GroupAddr, 255, mod(func(b []byte) { b[0] = 0x21 }), false, DropBadVersion},
		{"type 2", peer, GroupAddr, 255, mod(func(b []byte) { b[0] = 0x32 }), false, DropBadType},
		{"truncated", peer, GroupAddr, 255, good[:20], false, DropTruncated},
		{"trailing bytes", peer, GroupAddr, 255, append(bytes.Clone(good), 0, 0), false, DropCountMismatch},
		{"bad checksum", peer, GroupAddr, 255, mod(func(b []byte) { b[2]++ }), false, DropBadChecksum},
		{"checksum for another source", netip.MustParseAddr("fe80::201"), GroupAddr, 255, good, false, DropBadChecksum},
		{"other vrid", peer, GroupAddr, 255, payload(t, 2, 200, 100, peer, testVIPs), false, DropUnknownVRID},
		{"global source", netip.MustParseAddr("2001:db8::9"), GroupAddr, 255, payload(t, 1, 200, 100, netip.MustParseAddr("2001:db8::9"), testVIPs), false, DropSourceNotLinkLocal},
		{"unicast destination", peer, netip.MustParseAddr("fe80::b"), 255, mustMarshal(t, peer, netip.MustParseAddr("fe80::b")), false, DropBadDestination},
		{"own address", netip.MustParseAddr(llB), GroupAddr, 255, payload(t, 1, 200, 100, netip.MustParseAddr(llB), testVIPs), false, DropOwnAddress},
		{"local owner", peer, GroupAddr, 255, good, true, DropLocalOwner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			cfg := testConfig(120, llB)
			if tt.owner {
				cfg.Priority = 255
			}
			n := newNode(t, c, cfg)
			n.r.Start()
			before := n.r.Status().MasterDownRemaining
			c.Advance(time.Second)
			n.r.HandleAdvert(tt.src, tt.dst, tt.hop, tt.b)
			st := n.r.Status()
			if st.Stats.Drops[tt.want] != 1 || st.Stats.Dropped() != 1 || st.Stats.AdvertsReceived != 1 {
				t.Fatalf("drops %v, want one %v", st.Stats.Drops, tt.want)
			}
			if !tt.owner && st.MasterDownRemaining != before-time.Second {
				t.Fatal("dropped advert reset the Master_Down_Timer")
			}
		})
	}
}

func mustMarshal(t *testing.T, src, dst netip.Addr) []byte {
	b, err := (&Advert{VRID: 1, Priority: 200, MaxAdvertInterval: 100, Addrs: testVIPs}).Marshal(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 9568 §7.1: an address list that differs from the configuration is
// counted (and logged once) but the advert is processed.
func TestAddressMismatchCountedNotDropped(t *testing.T) {
	c := newFakeClock()
	n := newNode(t, c, testConfig(120, llB))
	n.r.Start()
	other := []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::51")}
	c.Advance(3 * time.Second)
	n.r.HandleAdvert(peer, GroupAddr, 255, payload(t, 1, 200, 100, peer, other))
	n.r.HandleAdvert(peer, GroupAddr, 255, payload(t, 1, 200, 100, peer, testVIPs[:1]))
	// Same addresses in another order match.
	n.r.HandleAdvert(peer, GroupAddr, 255, payload(t, 1, 200, 100, peer, []netip.Addr{testVIPs[1], testVIPs[0]}))
	st := n.r.Status()
	if st.Stats.AddressMismatch != 2 || st.Stats.Dropped() != 0 || st.MasterDownRemaining != 353*cs {
		t.Fatalf("status %+v", st)
	}
}

func TestTransitionHistory(t *testing.T) {
	c := newFakeClock()
	cfg := testConfig(120, llB)
	cfg.History = 2
	n := newNode(t, c, cfg)
	n.r.Start()                // Initialize -> Backup
	c.Advance(4 * time.Second) // Backup -> Master
	hear(n, peer, 200, 100)    // Master -> Backup
	h := n.r.Status().Transitions
	if len(h) != 2 || h[0].To != StateMaster || h[1].To != StateBackup || h[1].Reason != ReasonHigherPriorityAdvert {
		t.Fatalf("history %+v", h)
	}
	if !h[0].Time.Equal(newFakeClock().Now().Add(3530 * time.Millisecond)) {
		t.Fatalf("history time %v", h[0].Time)
	}
}

func TestDemux(t *testing.T) {
	c := newFakeClock()
	n1 := newNode(t, c, testConfig(120, llB))
	cfg2 := testConfig(120, llB)
	cfg2.VRID = 2
	n2 := newNode(t, c, cfg2)
	d := NewDemux("ge0", nil)
	for _, n := range []*node{n1, n2} {
		if err := d.Add(n.r); err != nil {
			t.Fatal(err)
		}
		n.r.Start()
	}
	if err := d.Add(n1.r); err == nil {
		t.Fatal("duplicate VRID accepted")
	}
	cfg3 := testConfig(120, llB)
	cfg3.Interface = "ge1"
	if err := d.Add(newNode(t, c, cfg3).r); err == nil {
		t.Fatal("router of another interface accepted")
	}
	d.HandleAdvert(peer, GroupAddr, 255, payload(t, 2, 200, 100, peer, testVIPs))
	if s1, s2 := n1.r.Status(), n2.r.Status(); s1.Stats.AdvertsReceived != 0 || s2.Stats.AdvertsReceived != 1 || s2.MasterAddr != peer {
		t.Fatalf("dispatch: vrid1 %+v vrid2 %+v", s1.Stats, s2.Stats)
	}
	d.HandleAdvert(peer, GroupAddr, 255, payload(t, 3, 200, 100, peer, testVIPs))
	bad := payload(t, 3, 200, 100, peer, testVIPs)
	bad[2]++
	d.HandleAdvert(peer, GroupAddr, 255, bad)
	d.HandleAdvert(peer, GroupAddr, 255, []byte{0x31})
	ds := d.Stats()
	if ds.Received != 3 || ds.Drops[DropUnknownVRID] != 1 || ds.Drops[DropBadChecksum] != 1 || ds.Drops[DropTruncated] != 1 {
		t.Fatalf("demux stats %+v", ds)
	}
	if rs := d.Routers(); len(rs) != 2 || rs[0].VRID() != 1 {
		t.Fatalf("routers %v", rs)
	}
	d.Remove(2)
	d.HandleAdvert(peer, GroupAddr, 255, payload(t, 2, 200, 100, peer, testVIPs))
	if ds := d.Stats(); ds.Drops[DropUnknownVRID] != 2 {
		t.Fatalf("after Remove: %+v", ds)
	}
}

func TestConfigValidate(t *testing.T) {
	base := testConfig(100, llA)
	tests := []struct {
		name string
		mod  func(c *Config)
		want string // substring of the error, "" for valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"no interface", func(c *Config) { c.Interface = "" }, "interface name is empty"},
		{"vrid 0", func(c *Config) { c.VRID = 0 }, "vrid 0 is invalid"},
		{"priority 0", func(c *Config) { c.Priority = 0 }, "priority 0 is reserved"},
		{"interval 5ms", func(c *Config) { c.AdvertInterval = 5 * time.Millisecond }, "out of range"},
		{"interval 41s", func(c *Config) { c.AdvertInterval = 41 * time.Second }, "out of range"},
		{"interval 40.95s", func(c *Config) { c.AdvertInterval = 40950 * time.Millisecond }, ""},
		{"interval 15ms", func(c *Config) { c.AdvertInterval = 15 * time.Millisecond }, "whole number of centiseconds"},
		{"owner nopreempt", func(c *Config) { c.Priority = 255; c.NoPreempt = true }, "always preempts"},
		{"global link-local", func(c *Config) { c.LinkLocal = netip.MustParseAddr("2001:db8::1") }, "not an ipv6 link-local"},
		{"no vips", func(c *Config) { c.VirtualAddrs = nil }, "0 virtual addresses"},
		{"first vip global", func(c *Config) { c.VirtualAddrs = testVIPs[1:] }, "must be link-local"},
		{"duplicate vip", func(c *Config) { c.VirtualAddrs = []netip.Addr{testVIPs[0], testVIPs[0]} }, "listed twice"},
		{"multicast vip", func(c *Config) { c.VirtualAddrs = []netip.Addr{testVIPs[0], GroupAddr} }, "not an ipv6 unicast"},
		{"track reduced 0", func(c *Config) { c.Track = []Track{{"x", 0}} }, "reduced must be"},
		{"negative delay", func(c *Config) { c.PreemptDelay = -1 }, "negative"},
	}
	for _, tt := range tests {
		c := base
		tt.mod(&c)
		err := c.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		case tt.want != "" && !strings.Contains(err.Error(), `vrrp6 vrid`):
			t.Errorf("%s: error %q does not say where", tt.name, err)
		}
	}
	c := base
	c.Validate()
	if c.AdvertInterval != time.Second || c.History != DefaultHistory {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestStrings(t *testing.T) {
	for r := ReasonNone; r <= ReasonBFDStepDown; r++ {
		if strings.HasPrefix(r.String(), "Reason(") {
			t.Errorf("reason %d has no name", r)
		}
	}
	for d := DropReason(0); d < NumDropReasons; d++ {
		if strings.HasPrefix(d.String(), "DropReason(") {
			t.Errorf("drop reason %d has no name", d)
		}
	}
	if StateMaster.String() != "Master" || State(9).String() != "State(9)" {
		t.Error("state names")
	}
}

// FuzzHandleAdvert feeds arbitrary packets to a Backup and a Master: no
// panic, and every packet is either dropped (counted) or processed.
func FuzzHandleAdvert(f *testing.F) {
	good, _ := (&Advert{VRID: 1, Priority: 200, MaxAdvertInterval: 100, Addrs: testVIPs}).Marshal(peer, GroupAddr)
	zero, _ := (&Advert{VRID: 1, Priority: 0, MaxAdvertInterval: 1, Addrs: testVIPs[:1]}).Marshal(peer, GroupAddr)
	f.Add(good, uint8(255))
	f.Add(zero, uint8(255))
	f.Add(good, uint8(64))
	f.Add([]byte{0x31, 1}, uint8(255))
	f.Fuzz(func(t *testing.T, b []byte, hop uint8) {
		if len(b) > maxFuzzLen {
			return
		}
		c := newFakeClock()
		bk := newNode(t, c, testConfig(120, llB))
		bk.r.Start()
		m := startMaster(t, c, testConfig(120, llB))
		for _, n := range []*node{bk, m} {
			n.r.HandleAdvert(peer, GroupAddr, int(hop), b)
			st := n.r.Status()
			if st.Stats.AdvertsReceived != 1 {
				t.Fatalf("received %d", st.Stats.AdvertsReceived)
			}
			c.Advance(time.Minute)
			if s := n.r.State(); s == StateInitialize {
				t.Fatalf("state %v", s)
			}
		}
	})
}
