package vrrp6

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// reconfigPair is A (200) Master and B (120) Backup on one LAN, 1 s
// adverts, preempt without delay, in steady state, at the instant of one
// of A's adverts (A took over at 3.21 s).
func reconfigPair(t *testing.T, c *fakeClock) (a, b *node) {
	t.Helper()
	l := &lan{}
	a, b = newNode(t, c, testConfig(200, llA)), newNode(t, c, testConfig(120, llB))
	a.lan, b.lan = l, l
	l.nodes = []*node{a, b}
	a.r.Start()
	b.r.Start()
	c.Advance(5210 * time.Millisecond)
	wantState(t, a, StateMaster)
	wantState(t, b, StateBackup)
	return a, b
}

// A Master's new priority is not advertised at once but in its next
// advert (RFC 9568 §6.4.3: adverts carry the priority at each
// Adver_Timer expiry).
func TestReconfigureMasterPriorityInNextAdvert(t *testing.T) {
	c := newFakeClock()
	a, _ := reconfigPair(t, c)
	c.Advance(300 * time.Millisecond)
	sent := a.numSent()
	cfg := testConfig(150, llA)
	if err := a.r.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if a.numSent() != sent {
		t.Fatal("reconfiguring the priority sent an advert at once")
	}
	if st := a.r.Status(); st.ConfiguredPriority != 150 || st.EffectivePriority != 150 || st.MasterPriority != 150 || st.AdverRemaining != 700*time.Millisecond {
		t.Fatalf("status %+v", st)
	}
	c.Advance(700 * time.Millisecond)
	if a.numSent() != sent+1 || a.lastAdvert().Advert.Priority != 150 {
		t.Fatalf("next advert priority %d, want 150", a.lastAdvert().Advert.Priority)
	}
	wantState(t, a, StateMaster)
}

// Lowering the Master's priority below the Backup's, with preemption on
// the Backup: the Backup discards the Master's next advert (now lower
// priority, RFC 9568 §6.4.2) and takes over when its Master_Down_Timer
// expires; the old Master then hears the higher priority and becomes
// Backup (§6.4.3).
func TestReconfigureMasterBelowBackupPreempts(t *testing.T) {
	c := newFakeClock()
	a, b := reconfigPair(t, c)
	c.Advance(100 * time.Millisecond)
	if err := a.r.Reconfigure(testConfig(100, llA)); err != nil {
		t.Fatal(err)
	}
	// A's next advert (prio 100) comes 900 ms later; B's timer was last
	// set by the previous advert: 3*100 + 136*100/256 = 353 cs after it.
	c.Advance(900 * time.Millisecond)
	wantState(t, b, StateBackup)
	if st := b.r.Status(); st.MasterPriority != 100 || st.Stats.LowerPriorityDiscarded != 1 {
		t.Fatalf("B after A's advert with 100: %+v", st)
	}
	c.Advance(2530*time.Millisecond - time.Millisecond)
	wantState(t, b, StateBackup)
	c.Advance(time.Millisecond)
	wantState(t, b, StateMaster)
	wantTransition(t, b, StateBackup, StateMaster, ReasonPreempt)
	wantState(t, a, StateBackup)
	wantTransition(t, a, StateMaster, StateBackup, ReasonHigherPriorityAdvert)
	c.Advance(time.Minute)
	wantState(t, a, StateBackup)
	wantState(t, b, StateMaster)
}

// Raising a Backup's priority above the Master's, with preemption: it
// becomes Master after the next (now lower-priority) advert is discarded.
func TestReconfigureBackupPriorityRaisePreempts(t *testing.T) {
	c := newFakeClock()
	a, b := reconfigPair(t, c)
	c.Advance(100 * time.Millisecond)
	if err := b.r.Reconfigure(testConfig(250, llB)); err != nil {
		t.Fatal(err)
	}
	wantState(t, b, StateBackup) // not before the next advert
	c.Advance(900 * time.Millisecond)
	if st := b.r.Status(); st.Stats.LowerPriorityDiscarded != 1 || st.EffectivePriority != 250 {
		t.Fatalf("B: %+v", st)
	}
	c.Advance(4 * time.Second)
	wantState(t, b, StateMaster)
	wantTransition(t, b, StateBackup, StateMaster, ReasonPreempt)
	wantState(t, a, StateBackup)
	if f := b.lastAdvert(); f.Advert.Priority != 250 {
		t.Fatalf("B advertises %d", f.Advert.Priority)
	}
}

// The same raise with a preempt delay starts the delay at once against
// the last Master heard; without preemption nothing happens.
func TestReconfigureBackupPreemptDelayAndNoPreempt(t *testing.T) {
	c := newFakeClock()
	a, b := reconfigPair(t, c)
	cfg := testConfig(250, llB)
	cfg.NoPreempt = true
	if err := b.r.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	c.Advance(10 * time.Second)
	wantState(t, b, StateBackup)
	wantState(t, a, StateMaster)

	cfg.NoPreempt = false
	cfg.PreemptDelay = 5 * time.Second
	if err := b.r.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if st := b.r.Status(); st.PreemptDelayRemaining != 5*time.Second {
		t.Fatalf("preempt delay not started: %+v", st)
	}
	c.Advance(2 * time.Second)
	// Disabling preemption stops the running delay.
	cfg.NoPreempt = true
	cfg.PreemptDelay = 0
	if err := b.r.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if st := b.r.Status(); st.PreemptDelayRemaining != 0 {
		t.Fatalf("preempt delay still running: %+v", st)
	}
	c.Advance(10 * time.Second)
	wantState(t, b, StateBackup)
	wantState(t, a, StateMaster)
}

// A Master's advert interval change: a shorter interval brings the pending
// advert forward to one new interval after the last; every later advert
// carries and follows the new interval. The Backup learns it from the
// next advert and recomputes Master_Down_Interval (RFC 9568 §6.4.2).
func TestReconfigureAdvertInterval(t *testing.T) {
	c := newFakeClock()
	a, b := reconfigPair(t, c)
	c.Advance(300 * time.Millisecond)
	sent := a.numSent()
	cfg := testConfig(200, llA)
	cfg.AdvertInterval = 100 * time.Millisecond
	if err := a.r.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	// The last advert was 300 ms ago: one new interval after it is past,
	// so the next goes now.
	if st := a.r.Status(); st.AdverRemaining != 0 || st.AdvertInterval != 100*time.Millisecond {
		t.Fatalf("status %+v", st)
	}
	c.Advance(0)
	if a.numSent() != sent+1 || a.lastAdvert().Advert.MaxAdvertInterval != 10 {
		t.Fatalf("sent %d, interval %d cs", a.numSent()-sent, a.lastAdvert().Advert.MaxAdvertInterval)
	}
	// B: Master_Adver_Interval 10 cs, Master_Down_Interval 30 + 136*10/256 (5) = 35 cs.
	if st := b.r.Status(); st.MasterAdverInterval != 100*time.Millisecond || st.MasterDownInterval != 350*time.Millisecond || st.MasterDownRemaining != 350*time.Millisecond {
		t.Fatalf("B: %+v", st)
	}
	c.Advance(time.Second)
	if n := a.numSent() - sent; n != 11 {
		t.Fatalf("%d adverts in the first second at 100 ms, want 11", n)
	}

	// Longer again: the pending advert keeps its time (it carries the new
	// interval, so B waits 3 new intervals), then one every 2 s.
	c.Advance(40 * time.Millisecond)
	cfg.AdvertInterval = 2 * time.Second
	if err := a.r.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if st := a.r.Status(); st.AdverRemaining != 60*time.Millisecond {
		t.Fatalf("status %+v", st)
	}
	sent = a.numSent()
	c.Advance(60 * time.Millisecond)
	if a.numSent() != sent+1 || a.lastAdvert().Advert.MaxAdvertInterval != 200 {
		t.Fatal("the pending advert did not carry the new interval")
	}
	c.Advance(2 * time.Second)
	if a.numSent() != sent+2 {
		t.Fatalf("%d adverts, want 2", a.numSent()-sent)
	}
	c.Advance(time.Minute)
	wantState(t, b, StateBackup)
	if st := b.r.Status(); st.MasterAdverInterval != 2*time.Second {
		t.Fatalf("B: %+v", st)
	}
}

type addrRecorder struct {
	*node
	mu      sync.Mutex
	changes []AddrChange
}

func (a *addrRecorder) OnVirtualAddrs(c AddrChange) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.changes = append(a.changes, c)
}

// Virtual addresses: the Actions are told under the lock, a Master sends
// an NA for each added address and its next advert lists them all.
func TestReconfigureVirtualAddrs(t *testing.T) {
	c := newFakeClock()
	n := &node{t: t, clock: c}
	rec := &addrRecorder{node: n}
	r, err := NewRouter(testConfig(120, llB), c, n, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.r = r
	r.Start()
	c.Advance(4 * time.Second)
	wantState(t, n, StateMaster)
	nas := len(n.nas)
	cfg := testConfig(120, llB)
	added := netip.MustParseAddr("2001:db8::51")
	cfg.VirtualAddrs = append(slices.Clone(testVIPs[:1]), added)
	if err := r.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if len(rec.changes) != 1 || rec.changes[0].State != StateMaster || !slices.Equal(rec.changes[0].Old, testVIPs) || !slices.Equal(rec.changes[0].New, cfg.VirtualAddrs) {
		t.Fatalf("address changes %+v", rec.changes)
	}
	if len(n.nas) != nas+1 {
		t.Fatalf("%d NAs, want one for the added address", len(n.nas)-nas)
	}
	if na, err := ParseNAFrame(n.nas[len(n.nas)-1]); err != nil || na.NA.Target != added {
		t.Fatalf("NA %+v %v", na, err)
	}
	c.Advance(time.Second)
	if got := n.lastAdvert().Advert.Addrs; !slices.Equal(got, cfg.VirtualAddrs) {
		t.Fatalf("advert addresses %v", got)
	}
	if st := r.Status(); !slices.Equal(st.VirtualAddrs, cfg.VirtualAddrs) {
		t.Fatalf("status addresses %v", st.VirtualAddrs)
	}
}

func TestReconfigureRejects(t *testing.T) {
	c := newFakeClock()
	n := startMaster(t, c, testConfig(120, llB))
	for name, mod := range map[string]func(*Config){
		"vrid":       func(c *Config) { c.VRID = 2 },
		"interface":  func(c *Config) { c.Interface = "ge9" },
		"link-local": func(c *Config) { c.LinkLocal = netip.MustParseAddr("fe80::99") },
		"priority 0": func(c *Config) { c.Priority = 0 },
	} {
		cfg := testConfig(150, llB)
		mod(&cfg)
		if err := n.r.Reconfigure(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if st := n.r.Status(); st.ConfiguredPriority != 120 {
		t.Fatalf("a rejected reconfiguration changed the priority: %+v", st)
	}
}

// Becoming the address owner takes over at once; a tracked interface
// dropped from the configuration no longer lowers the priority.
func TestReconfigureOwnerAndTrack(t *testing.T) {
	c := newFakeClock()
	a, b := reconfigPair(t, c)
	cfg := testConfig(120, llB)
	cfg.Track = []Track{{Name: "up0", Reduced: 50}}
	if err := b.r.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if err := b.r.SetTrackedDown("up0", true); err != nil {
		t.Fatal(err)
	}
	if st := b.r.Status(); st.EffectivePriority != 70 {
		t.Fatalf("B: %+v", st)
	}
	cfg.Track = nil
	if err := b.r.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if st := b.r.Status(); st.EffectivePriority != 120 || len(st.TrackedDown) != 0 {
		t.Fatalf("B: %+v", st)
	}
	cfg.Priority = PriorityOwner
	if err := b.r.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	wantState(t, b, StateMaster)
	c.Advance(0)
	wantState(t, a, StateBackup)
}

func TestWithState(t *testing.T) {
	c := newFakeClock()
	n := startMaster(t, c, testConfig(120, llB))
	var got State
	n.r.WithState(func(s State) { got = s })
	if got != StateMaster {
		t.Fatalf("WithState saw %v", got)
	}
}
