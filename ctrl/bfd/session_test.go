package bfd

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

const fast = 3300 * time.Microsecond

func start(t *testing.T, es ...*end) {
	t.Helper()
	for _, e := range es {
		if err := e.s.Start(); err != nil {
			t.Fatal(err)
		}
	}
}

// Two sessions wired back to back come Up with crossed discriminators,
// the fast timers negotiated by a Poll Sequence each, and 1 s Desired Min
// TX until then. Each state change is sent at once, so they are Up within
// one round trip of the second one starting.
func TestPairComesUp(t *testing.T) {
	clk, a, b := pair(t, fast, fast, 3)
	start(t, a, b)
	took := advanceUntil(t, clk, 100*time.Microsecond, 3*time.Second, "both Up", bothUp(a, b))
	t.Logf("Up after %v", took)
	// Both have sent once at start; B answers A's Down with Init at its
	// next slow transmission at the latest.
	if took > time.Second+10*time.Millisecond {
		t.Errorf("Up after %v, want about one slow interval", took)
	}
	clk.Advance(100 * time.Millisecond)
	sa, sb := a.s.Status(), b.s.Status()
	for _, x := range []struct {
		name string
		st   Status
		peer Status
	}{{"a", sa, sb}, {"b", sb, sa}} {
		st := x.st
		if st.State != StateUp || st.RemoteState != StateUp || st.RemoteDiscr != x.peer.LocalDiscr || st.LocalDiscr == 0 {
			t.Errorf("%s: state %v/%v discr %d/%d, peer's local %d", x.name, st.State, st.RemoteState, st.LocalDiscr, st.RemoteDiscr, x.peer.LocalDiscr)
		}
		if st.TxInterval != fast || st.DetectTime != 3*fast || st.SentMinTx != fast || st.SentMinRx != fast {
			t.Errorf("%s: tx %v detect %v sent %v/%v", x.name, st.TxInterval, st.DetectTime, st.SentMinTx, st.SentMinRx)
		}
		if st.Polling || st.Stats.PollSequences != 1 || st.Stats.PollsCompleted != 1 {
			t.Errorf("%s: polling %v, %d poll sequences, %d completed", x.name, st.Polling, st.Stats.PollSequences, st.Stats.PollsCompleted)
		}
		if st.LocalDiag != DiagNone || st.UpSince.IsZero() || st.Stats.UpCount != 1 || st.Stats.Dropped() != 0 {
			t.Errorf("%s: diag %v up since %v, %d ups, drops %v", x.name, st.LocalDiag, st.UpSince, st.Stats.UpCount, st.Stats.Drops)
		}
	}
	for _, e := range []*end{a, b} {
		ps := e.sentSince(t0)
		upAt := slices.IndexFunc(ps, func(s sent) bool { return s.p.State == StateUp })
		for i, s := range ps[:upAt] {
			if s.p.DesiredMinTx != 1000000 || s.p.RequiredMinRx != 3300 || s.p.DetectMult != 3 {
				t.Errorf("%s packet %d before Up: %+v, want Desired Min TX 1 s", e.iface, i, s.p)
			}
		}
		// From Up on: Desired Min TX 3.3 ms, a Poll until the Final, then
		// periodic packets 2.475-3.3 ms apart.
		if p := periodic(ps[upAt:])[0].p; !p.Poll || p.DesiredMinTx != 3300 {
			t.Errorf("%s: first Up packet %+v, want P and 3300 µs", e.iface, p)
		}
		tail := periodic(e.sentSince(clk.Now().Add(-50 * time.Millisecond)))
		for _, s := range tail {
			if s.p.Poll || s.p.State != StateUp {
				t.Errorf("%s: %+v after the poll sequence", e.iface, s.p)
			}
		}
		for _, iv := range intervals(tail) {
			if iv < fast*3/4 || iv > fast {
				t.Errorf("%s: interval %v outside [%v, %v]", e.iface, iv, fast*3/4, fast)
			}
		}
	}
	// The Observer saw Down -> (Init ->) Up on both.
	for _, e := range []*end{a, b} {
		cs := e.stateChanges()
		if len(cs) == 0 || cs[len(cs)-1].To != StateUp || cs[0].From != StateDown {
			t.Errorf("%s: state changes %+v", e.iface, cs)
		}
	}
}

// Until Up, a session sends at the slow rate: 1 s jittered, Desired Min
// TX 1 s whatever is configured (RFC 5880 §6.8.3), Required Min RX as
// configured, Your Discriminator 0 while it has heard nothing.
func TestSlowUntilUp(t *testing.T) {
	clk := newFakeClock()
	e := newEnd(t, clk, "a0", "fe80::a", testCfg("s", "a0", "fe80::b", fast, fast, 3))
	start(t, e)
	clk.Advance(20 * time.Second)
	ps := e.sentSince(t0)
	if len(ps) < 20 || len(ps) > 28 {
		t.Fatalf("%d packets in 20 s, want 21-27 at 0.75-1 s", len(ps))
	}
	if ps[0].at != t0 {
		t.Errorf("first packet at %v, want at Start", ps[0].at.Sub(t0))
	}
	for _, s := range ps {
		if s.p.State != StateDown || s.p.YourDiscr != 0 || s.p.DesiredMinTx != 1000000 || s.p.RequiredMinRx != 3300 || s.p.DetectMult != 3 || s.p.Poll || s.p.Final {
			t.Fatalf("sent %+v", s.p)
		}
	}
	for _, iv := range intervals(ps) {
		if iv < 750*time.Millisecond || iv > time.Second {
			t.Errorf("slow interval %v", iv)
		}
	}
	// Configured for more than 1 s: that is sent as it is.
	if err := e.s.SetTimers(2*time.Second, fast, 3); err != nil {
		t.Fatal(err)
	}
	clk.Advance(3 * time.Second)
	if p := e.lastSent().p; p.DesiredMinTx != 2000000 {
		t.Errorf("with 2 s configured: %+v", p)
	}
}

// When one side stops, the other goes Down with diag 1 exactly one
// Detection Time after the last packet it received, zeroes the remote
// discriminator, falls back to the slow rate, and comes Up again with the
// restarted side (a new discriminator, demultiplexed by address).
func TestPeerStopsDetectAndRecover(t *testing.T) {
	clk, a, b := pair(t, fast, fast, 3)
	start(t, a, b)
	advanceUntil(t, clk, 100*time.Microsecond, 3*time.Second, "both Up", bothUp(a, b))
	clk.Advance(time.Second)
	a.s.Close()
	lastRx := b.s.Status().LastRx
	stopped := clk.Now()
	took := advanceUntil(t, clk, 10*time.Microsecond, time.Second, "b Down", func() bool { return b.s.State() != StateUp })
	st := b.s.Status()
	if st.State != StateDown || st.LocalDiag != DiagControlDetectionTimeExpired {
		t.Fatalf("b: %v diag %v, want Down diag 1", st.State, st.LocalDiag)
	}
	if d := st.LastChange.Sub(lastRx); d != 3*fast {
		t.Errorf("b went Down %v after its last packet, want the Detection Time %v", d, 3*fast)
	}
	if took > 3*fast {
		t.Errorf("b went Down %v after a stopped, more than the Detection Time", took)
	}
	if st.RemoteDiscr != 0 || st.RemoteState != StateDown || st.Stats.DetectExpired != 1 || st.Stats.DownCount != 1 {
		t.Errorf("b after expiry: remote discr %d state %v, expired %d, downs %d", st.RemoteDiscr, st.RemoteState, st.Stats.DetectExpired, st.Stats.DownCount)
	}
	cs := b.stateChanges()
	if c := cs[len(cs)-1]; c.From != StateUp || c.To != StateDown || c.Diag != DiagControlDetectionTimeExpired {
		t.Errorf("b observer: %+v", c)
	}
	// Down: Your Discriminator 0, Desired Min TX 1 s, slow rate.
	clk.Advance(5 * time.Second)
	ps := periodic(b.sentSince(stopped.Add(3*fast + fast)))
	if len(ps) < 5 || len(ps) > 7 {
		t.Errorf("b sent %d packets in 5 s while Down, want 5-7 at the slow rate", len(ps))
	}
	for _, s := range ps {
		if s.p.State != StateDown || s.p.YourDiscr != 0 || s.p.DesiredMinTx != 1000000 || s.p.Diag != DiagControlDetectionTimeExpired {
			t.Errorf("b while Down sent %+v", s.p)
		}
	}
	for _, iv := range intervals(ps) {
		if iv < 750*time.Millisecond || iv > time.Second {
			t.Errorf("b: slow interval %v", iv)
		}
	}

	old := a.s.LocalDiscr()
	a.newSession(a.s.Config())
	start(t, a)
	advanceUntil(t, clk, 100*time.Microsecond, 3*time.Second, "both Up again", bothUp(a, b))
	if st := b.s.Status(); st.RemoteDiscr != a.s.LocalDiscr() || st.RemoteDiscr == old || st.Stats.UpCount != 2 {
		t.Errorf("b after a's restart: remote discr %d (a's %d, old %d), %d ups", st.RemoteDiscr, a.s.LocalDiscr(), old, st.Stats.UpCount)
	}
}

// A one-way failure: b stops hearing a, goes Down with diag 1, and tells
// a, which goes Down with diag 3 (Neighbor Signaled Session Down).
func TestOneWayFailure(t *testing.T) {
	clk, a, b := pair(t, fast, fast, 3)
	start(t, a, b)
	advanceUntil(t, clk, 100*time.Microsecond, 3*time.Second, "both Up", bothUp(a, b))
	a.setCut(true)
	advanceUntil(t, clk, 10*time.Microsecond, 50*time.Millisecond, "both Down", func() bool {
		return a.s.State() == StateDown && b.s.State() == StateDown
	})
	if d := b.s.Status().LocalDiag; d != DiagControlDetectionTimeExpired {
		t.Errorf("b diag %v", d)
	}
	if st := a.s.Status(); st.LocalDiag != DiagNeighborSignaledDown || st.RemoteDiag != DiagControlDetectionTimeExpired {
		t.Errorf("a diag %v, remote diag %v", st.LocalDiag, st.RemoteDiag)
	}
	// b receives nothing, a gets b's Down packets: a goes Init, b stays
	// Down; when the path heals both come Up.
	clk.Advance(3 * time.Second)
	if a.s.State() != StateInit || b.s.State() != StateDown {
		t.Errorf("while cut: a %v, b %v", a.s.State(), b.s.State())
	}
	a.setCut(false)
	advanceUntil(t, clk, 100*time.Microsecond, 3*time.Second, "Up after the cut", bothUp(a, b))
}

// Detection in Init: a session that heard one Down packet and then
// nothing goes back Down after the peer's Detection Time (3 x 1 s).
func TestInitExpires(t *testing.T) {
	clk := newFakeClock()
	e := newEnd(t, clk, "a0", "fe80::a", testCfg("s", "a0", "fe80::b", fast, fast, 3))
	start(t, e)
	sc := newScript(t, e, "fe80::b", 77)
	sc.inject(Packet{State: StateDown, DetectMult: 3, DesiredMinTx: 1000000, RequiredMinRx: 3300})
	if st := e.s.State(); st != StateInit {
		t.Fatalf("%v, want Init", st)
	}
	clk.Advance(3*time.Second - time.Microsecond)
	if st := e.s.State(); st != StateInit {
		t.Fatalf("%v before the Detection Time, want Init", st)
	}
	clk.Advance(time.Microsecond)
	if st := e.s.Status(); st.State != StateDown || st.LocalDiag != DiagControlDetectionTimeExpired || st.RemoteDiscr != 0 {
		t.Fatalf("%v diag %v remote discr %d, want Down diag 1 discr 0", st.State, st.LocalDiag, st.RemoteDiscr)
	}
}

// A Poll Sequence on a timer change (RFC 5880 §6.5, §6.8.3): a raised
// transmit interval takes effect only at the Final, while the peer's
// Detection Time grows with the first Poll; a lowered receive interval
// enters the Detection Time only at the Final.
func TestPollFinalTimerChange(t *testing.T) {
	clk, a, b := pair(t, fast, fast, 3)
	start(t, a, b)
	advanceUntil(t, clk, 100*time.Microsecond, 3*time.Second, "both Up", bothUp(a, b))
	clk.Advance(100 * time.Millisecond)

	// Hold b's Finals for 100 ms.
	b.setDrop(func(p Packet) bool { return p.Final })
	changed := clk.Now()
	if err := a.s.SetTimers(50*time.Millisecond, fast, 3); err != nil {
		t.Fatal(err)
	}
	if st := a.s.Status(); !st.Polling || st.SentMinTx != 50*time.Millisecond || st.TxInterval != fast || st.Stats.PollSequences != 2 {
		t.Fatalf("a after SetTimers: polling %v sent %v tx %v polls %d", st.Polling, st.SentMinTx, st.TxInterval, st.Stats.PollSequences)
	}
	clk.Advance(100 * time.Millisecond)
	held := periodic(a.sentSince(changed))
	if len(held) < 30 {
		t.Fatalf("a sent %d packets in 100 ms of Poll, want ~35 at 3.3 ms", len(held))
	}
	for _, s := range held {
		if !s.p.Poll || s.p.DesiredMinTx != 50000 {
			t.Fatalf("a during the poll sent %+v", s.p)
		}
	}
	for _, iv := range intervals(held) {
		if iv > fast {
			t.Fatalf("a's interval %v during the poll: the raised interval took effect before the Final", iv)
		}
	}
	if st := b.s.Status(); st.DetectTime != 150*time.Millisecond || st.Stats.PollsReceived < 30 {
		t.Fatalf("b during a's poll: detect %v, polls %d", st.DetectTime, st.Stats.PollsReceived)
	}
	b.setDrop(nil)
	finalAt := clk.Now()
	clk.Advance(500 * time.Millisecond)
	st := a.s.Status()
	if st.Polling || st.TxInterval != 50*time.Millisecond || st.Stats.PollsCompleted != 2 {
		t.Fatalf("a after the Final: polling %v tx %v completed %d", st.Polling, st.TxInterval, st.Stats.PollsCompleted)
	}
	after := periodic(a.sentSince(finalAt.Add(5 * time.Millisecond)))
	for _, iv := range intervals(after) {
		if iv < 37500*time.Microsecond || iv > 50*time.Millisecond {
			t.Errorf("a's interval %v after the Final, want 37.5-50 ms", iv)
		}
	}
	for _, s := range after {
		if s.p.Poll {
			t.Errorf("a still polls: %+v", s.p)
		}
	}
	if a.s.State() != StateUp || b.s.State() != StateUp {
		t.Fatal("renegotiation took the session down")
	}

	// b raises its receive interval to 30 ms (at once: its Detection Time
	// for a becomes 3 x max(30 ms, 50 ms)), then a lowers its transmit
	// interval back (at once), then b lowers its receive interval back:
	// b's Detection Time keeps the 30 ms until the Final.
	if err := b.s.SetTimers(fast, 30*time.Millisecond, 3); err != nil {
		t.Fatal(err)
	}
	clk.Advance(200 * time.Millisecond)
	if err := a.s.SetTimers(fast, fast, 3); err != nil {
		t.Fatal(err)
	}
	clk.Advance(200 * time.Millisecond)
	if st := a.s.Status(); st.TxInterval != 30*time.Millisecond {
		t.Fatalf("a's tx interval %v, want b's 30 ms", st.TxInterval)
	}
	if st := b.s.Status(); st.DetectTime != 90*time.Millisecond {
		t.Fatalf("b's detect time %v, want 3 x 30 ms", st.DetectTime)
	}
	a.setDrop(func(p Packet) bool { return p.Final })
	if err := b.s.SetTimers(fast, fast, 3); err != nil {
		t.Fatal(err)
	}
	clk.Advance(100 * time.Millisecond)
	if st := b.s.Status(); !st.Polling || st.DetectTime != 90*time.Millisecond || st.SentMinRx != fast {
		t.Fatalf("b before the Final: polling %v detect %v sent rx %v", st.Polling, st.DetectTime, st.SentMinRx)
	}
	if st := a.s.Status(); st.TxInterval != fast {
		t.Fatalf("a follows b's new rx at once: tx %v", st.TxInterval)
	}
	a.setDrop(nil)
	clk.Advance(100 * time.Millisecond)
	if st := b.s.Status(); st.Polling || st.DetectTime != 3*fast {
		t.Fatalf("b after the Final: polling %v detect %v", st.Polling, st.DetectTime)
	}
	// A detect multiplier change needs no poll (RFC 5880 §6.8.12).
	polls := a.s.Status().Stats.PollSequences
	if err := a.s.SetTimers(fast, fast, 5); err != nil {
		t.Fatal(err)
	}
	clk.Advance(50 * time.Millisecond)
	if st := a.s.Status(); st.Stats.PollSequences != polls || a.lastSent().p.DetectMult != 5 {
		t.Errorf("mult change: polls %d -> %d, sent mult %d", polls, st.Stats.PollSequences, a.lastSent().p.DetectMult)
	}
	if st := b.s.Status(); st.DetectTime != 5*fast {
		t.Errorf("b's detect time %v after a's mult 5", st.DetectTime)
	}
	if a.s.State() != StateUp || b.s.State() != StateUp {
		t.Fatal("renegotiation took the session down")
	}
}

// Changes during a Poll Sequence wait for it; the next Poll Sequence
// carries the latest values.
func TestPollAfterPoll(t *testing.T) {
	clk, a, b := pair(t, fast, fast, 3)
	start(t, a, b)
	advanceUntil(t, clk, 100*time.Microsecond, 3*time.Second, "both Up", bothUp(a, b))
	b.setDrop(func(p Packet) bool { return p.Final })
	_ = a.s.SetTimers(10*time.Millisecond, fast, 3)
	clk.Advance(20 * time.Millisecond)
	_ = a.s.SetTimers(20*time.Millisecond, 5*time.Millisecond, 3)
	clk.Advance(20 * time.Millisecond)
	if p := a.lastSent().p; p.DesiredMinTx != 10000 || p.RequiredMinRx != 3300 || !p.Poll {
		t.Fatalf("during the first poll a sent %+v", p)
	}
	b.setDrop(nil)
	clk.Advance(200 * time.Millisecond)
	st := a.s.Status()
	if st.Polling || st.Stats.PollSequences != 3 || st.Stats.PollsCompleted != 3 || st.SentMinTx != 20*time.Millisecond || st.SentMinRx != 5*time.Millisecond {
		t.Fatalf("a: polling %v, %d/%d polls, sent %v/%v", st.Polling, st.Stats.PollSequences, st.Stats.PollsCompleted, st.SentMinTx, st.SentMinRx)
	}
	if st.TxInterval != 20*time.Millisecond {
		t.Fatalf("a's tx %v", st.TxInterval)
	}
}

// AdminDown (RFC 5880 §6.8.16): the peer goes Down with diag 3 and stays
// Down while AdminDown packets keep coming at the slow rate; packets the
// AdminDown session receives are discarded; enabling it brings both Up.
func TestAdminDown(t *testing.T) {
	clk, a, b := pair(t, fast, fast, 3)
	start(t, a, b)
	advanceUntil(t, clk, 100*time.Microsecond, 3*time.Second, "both Up", bothUp(a, b))
	at := clk.Now()
	if err := a.s.SetAdminDown(DiagAdminDown); err != nil {
		t.Fatal(err)
	}
	took := advanceUntil(t, clk, 10*time.Microsecond, 10*time.Millisecond, "b Down", func() bool { return b.s.State() == StateDown })
	if took > fast {
		t.Errorf("b Down %v after AdminDown, want within one interval", took)
	}
	if st := b.s.Status(); st.LocalDiag != DiagNeighborSignaledDown || st.RemoteState != StateAdminDown || st.RemoteDiag != DiagAdminDown {
		t.Errorf("b: diag %v remote %v/%v", st.LocalDiag, st.RemoteState, st.RemoteDiag)
	}
	clk.Advance(10 * time.Second)
	if a.s.State() != StateAdminDown || b.s.State() != StateDown {
		t.Fatalf("after 10 s: a %v b %v", a.s.State(), b.s.State())
	}
	ps := periodic(a.sentSince(at.Add(5 * time.Millisecond)))
	if len(ps) < 10 {
		t.Errorf("a sent %d packets in 10 s of AdminDown", len(ps))
	}
	for _, s := range ps {
		if s.p.State != StateAdminDown || s.p.Diag != DiagAdminDown || s.p.DesiredMinTx != 1000000 {
			t.Errorf("a in AdminDown sent %+v", s.p)
		}
	}
	if st := a.s.Status(); st.Stats.Drops[DropAdminDown] == 0 || st.Stats.Dropped() != st.Stats.Drops[DropAdminDown] || st.Stats.DownCount != 1 {
		t.Errorf("a's drops %v, downs %d", st.Stats.Drops, st.Stats.DownCount)
	}
	if st := b.s.Status(); st.Stats.DetectExpired != 0 {
		t.Errorf("b's detection expired %d times while hearing AdminDown", st.Stats.DetectExpired)
	}
	a.s.SetAdminUp()
	if st := a.s.State(); st != StateDown {
		t.Fatalf("a after SetAdminUp: %v", st)
	}
	advanceUntil(t, clk, 100*time.Microsecond, 3*time.Second, "Up after AdminUp", bothUp(a, b))
	if err := a.s.SetAdminDown(MaxDiag + 1); err == nil {
		t.Error("SetAdminDown with diag 32 accepted")
	}
}

// Jitter (RFC 5880 §6.8.7): periodic intervals are 75-100% of the
// negotiated interval, 75-90% with Detect Mult 1, spread over the range.
func TestJitter(t *testing.T) {
	for _, mult := range []uint8{3, 1} {
		t.Run(fmt.Sprintf("mult%d", mult), func(t *testing.T) {
			clk := newFakeClock()
			e := newEnd(t, clk, "a0", "fe80::a", testCfg("s", "a0", "fe80::b", fast, fast, mult))
			start(t, e)
			sc := newScript(t, e, "fe80::b", 77)
			sc.bringUp(time.Millisecond, 1000, 1000)
			sc.inject(Packet{State: StateUp, Final: true, DetectMult: 3, YourDiscr: e.s.LocalDiscr(), DesiredMinTx: 1000, RequiredMinRx: 1000})
			clk.Advance(10 * time.Millisecond)
			from := clk.Now()
			clk.Advance(10 * time.Second)
			ivs := intervals(periodic(e.sentSince(from)))
			hi := 1.0
			if mult == 1 {
				hi = 0.9
			}
			var sum float64
			lo, top := 2.0, 0.0
			for _, iv := range ivs {
				f := float64(iv) / float64(fast)
				if f < 0.75 || f > hi {
					t.Fatalf("interval %v = %.3f of %v, want [0.75, %.2f]", iv, f, fast, hi)
				}
				sum += f
				lo, top = min(lo, f), max(top, f)
			}
			mean := sum / float64(len(ivs))
			t.Logf("%d intervals: min %.3f mean %.3f max %.3f of %v", len(ivs), lo, mean, top, fast)
			if want := (0.75 + hi) / 2; mean < want-0.01 || mean > want+0.01 {
				t.Errorf("mean %.3f, want about %.3f", mean, want)
			}
			if lo > 0.76 || top < hi-0.01 {
				t.Errorf("jitter does not cover the range: %.3f-%.3f", lo, top)
			}
		})
	}
}

// A shorter interval from the peer is honoured at once (RFC 5880 §6.8.7),
// not after the pending slow transmission.
func TestShorterIntervalAtOnce(t *testing.T) {
	clk := newFakeClock()
	e := newEnd(t, clk, "a0", "fe80::a", testCfg("s", "a0", "fe80::b", fast, fast, 3))
	start(t, e)
	sc := newScript(t, e, "fe80::b", 77)
	// The peer wants packets no faster than 1 s.
	sc.bringUp(100*time.Millisecond, 100000, 1000000)
	sc.inject(Packet{State: StateUp, Final: true, DetectMult: 3, YourDiscr: e.s.LocalDiscr(), DesiredMinTx: 100000, RequiredMinRx: 1000000})
	clk.Advance(3 * time.Second)
	if iv := e.s.Status().TxInterval; iv != time.Second {
		t.Fatalf("tx interval %v, want the peer's 1 s", iv)
	}
	clk.Advance(100 * time.Millisecond)
	sc.update(func(p *Packet) { p.RequiredMinRx = 3300 })
	at := clk.Now()
	sc.inject(Packet{State: StateUp, DetectMult: 3, YourDiscr: e.s.LocalDiscr(), DesiredMinTx: 100000, RequiredMinRx: 3300})
	clk.Advance(100 * time.Millisecond)
	ps := periodic(e.sentSince(at))
	if len(ps) < 25 || ps[0].at.Sub(at) > fast {
		t.Fatalf("%d packets in the 100 ms after the peer asked for 3.3 ms, the first after %v", len(ps), ps[0].at.Sub(at))
	}
}

// The transmission rules of RFC 5880 §6.8.7: nothing periodic while the
// peer's Required Min RX is 0 or while it is in Demand mode (both Up, no
// poll), but a Poll is always answered with a Final, P clear.
func TestTransmitRules(t *testing.T) {
	clk := newFakeClock()
	e := newEnd(t, clk, "a0", "fe80::a", testCfg("s", "a0", "fe80::b", fast, fast, 3))
	start(t, e)
	sc := newScript(t, e, "fe80::b", 77)
	sc.bringUp(time.Millisecond, 3300, 3300)
	mine := e.s.LocalDiscr()
	sc.inject(Packet{State: StateUp, Final: true, DetectMult: 3, YourDiscr: mine, DesiredMinTx: 3300, RequiredMinRx: 3300})
	clk.Advance(10 * time.Millisecond)
	if e.s.Status().Polling {
		t.Fatal("still polling after the Final")
	}

	for _, tt := range []struct {
		name string
		mod  func(p *Packet)
	}{
		{"RemoteMinRx 0", func(p *Packet) { p.RequiredMinRx = 0 }},
		{"Demand", func(p *Packet) { p.Demand = true }},
	} {
		sc.update(tt.mod)
		clk.Advance(10 * time.Millisecond)
		from := clk.Now()
		clk.Advance(100 * time.Millisecond)
		if ps := e.sentSince(from); len(ps) != 0 {
			t.Errorf("%s: %d periodic packets sent, want none", tt.name, len(ps))
		}
		// A Poll is answered at once with a Final.
		sc.inject(Packet{State: StateUp, Poll: true, DetectMult: 3, YourDiscr: mine, DesiredMinTx: 3300, RequiredMinRx: 0, Demand: true})
		ps := e.sentSince(from)
		if len(ps) != 1 || !ps[0].p.Final || ps[0].p.Poll || ps[0].at != clk.Now() {
			t.Errorf("%s: answer to a Poll: %+v", tt.name, ps)
		}
		sc.update(func(p *Packet) { *p = Packet{State: StateUp, DetectMult: 3, DesiredMinTx: 3300, RequiredMinRx: 3300} })
		clk.Advance(10 * time.Millisecond)
		if ps := periodic(e.sentSince(clk.Now().Add(-8 * time.Millisecond))); len(ps) < 2 {
			t.Errorf("%s: periodic transmission did not resume: %d packets", tt.name, len(ps))
		}
	}
	// In Demand mode a Poll Sequence of our own is sent periodically.
	sc.update(func(p *Packet) { p.Demand = true })
	clk.Advance(10 * time.Millisecond)
	from := clk.Now()
	_ = e.s.SetTimers(fast, 10*time.Millisecond, 3)
	clk.Advance(20 * time.Millisecond)
	ps := periodic(e.sentSince(from))
	if len(ps) < 5 || !ps[0].p.Poll {
		t.Errorf("poll in demand mode: %d packets", len(ps))
	}
	sc.inject(Packet{State: StateUp, Final: true, Demand: true, DetectMult: 3, YourDiscr: mine, DesiredMinTx: 3300, RequiredMinRx: 3300})
	clk.Advance(time.Millisecond)
	from = clk.Now()
	clk.Advance(50 * time.Millisecond)
	if ps := e.sentSince(from); len(ps) != 0 {
		t.Errorf("after the Final in demand mode: %d packets", len(ps))
	}
	// Our own poll running, a Poll from the peer is still answered with F
	// and P clear.
	sc.update(func(p *Packet) { p.Demand = false })
	_ = e.s.SetTimers(fast, fast, 3)
	clk.Advance(10 * time.Millisecond)
	if !e.s.Status().Polling {
		t.Fatal("no poll after SetTimers")
	}
	from = clk.Now()
	sc.inject(Packet{State: StateUp, Poll: true, DetectMult: 3, YourDiscr: mine, DesiredMinTx: 3300, RequiredMinRx: 3300})
	ps = e.sentSince(from)
	if len(ps) != 1 || !ps[0].p.Final || ps[0].p.Poll {
		t.Errorf("Final while polling: %+v", ps)
	}
	if e.s.State() != StateUp {
		t.Fatalf("state %v", e.s.State())
	}
}

// A passive session sends nothing until it hears the peer.
func TestPassive(t *testing.T) {
	clk := newFakeClock()
	cfg := testCfg("s", "a0", "fe80::b", fast, fast, 3)
	cfg.Passive = true
	e := newEnd(t, clk, "a0", "fe80::a", cfg)
	start(t, e)
	clk.Advance(5 * time.Second)
	if ps := e.sentSince(t0); len(ps) != 0 {
		t.Fatalf("passive session sent %d packets", len(ps))
	}
	sc := newScript(t, e, "fe80::b", 77)
	at := clk.Now()
	sc.inject(Packet{State: StateDown, DetectMult: 3, DesiredMinTx: 1000000, RequiredMinRx: 3300})
	clk.Advance(time.Second)
	ps := e.sentSince(at)
	if len(ps) == 0 || ps[0].p.YourDiscr != 77 || ps[0].p.State != StateInit {
		t.Fatalf("passive after hearing the peer sent %+v", ps)
	}
}

// Every §6.8.6 and RFC 5881 receive check drops the packet and counts it,
// without touching the session.
func TestReceiveDrops(t *testing.T) {
	clk := newFakeClock()
	e := newEnd(t, clk, "a0", "fe80::a", testCfg("s", "a0", "fe80::b", fast, fast, 3))
	sc := newScript(t, e, "fe80::b", 77)
	down := Packet{State: StateDown, DetectMult: 3, MyDiscr: 77, DesiredMinTx: 1000000, RequiredMinRx: 3300}
	mk := func(f func(p *Packet)) []byte {
		p := down
		f(&p)
		p.YourDiscr = e.s.LocalDiscr()
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := mk(func(*Packet) {})
	// Not started: counted, nothing else.
	sc.injectRaw(good, HopLimit)
	if st := e.s.Status(); st.Stats.Drops[DropNotRunning] != 1 || st.State != StateDown {
		t.Fatalf("before Start: %v %v", st.Stats.Drops, st.State)
	}
	start(t, e)
	bad := func(f func([]byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name   string
		rx     Received
		reason DropReason
	}{
		{"hop limit 254", Received{Src: sc.src, Interface: "a0", HopLimit: 254, Payload: good}, DropHopLimit},
		{"hop limit unknown", Received{Src: sc.src, Interface: "a0", HopLimit: -1, Payload: good}, DropHopLimit},
		{"truncated", Received{Src: sc.src, Interface: "a0", HopLimit: 255, Payload: good[:20]}, DropTruncated},
		{"version 0", Received{Src: sc.src, Interface: "a0", HopLimit: 255, Payload: bad(func(b []byte) []byte { b[0] &= 0x1f; return b })}, DropBadVersion},
		{"length 20", Received{Src: sc.src, Interface: "a0", HopLimit: 255, Payload: bad(func(b []byte) []byte { b[3] = 20; return b })}, DropBadLength},
		{"detect mult 0", Received{Src: sc.src, Interface: "a0", HopLimit: 255, Payload: bad(func(b []byte) []byte { b[2] = 0; return b })}, DropZeroDetectMult},
		{"multipoint", Received{Src: sc.src, Interface: "a0", HopLimit: 255, Payload: bad(func(b []byte) []byte { b[1] |= flagMultipoint; return b })}, DropMultipoint},
		{"my discr 0", Received{Src: sc.src, Interface: "a0", HopLimit: 255, Payload: bad(func(b []byte) []byte { clear(b[4:8]); return b })}, DropZeroMyDiscr},
		{"wrong source", Received{Src: sc.src.Next(), Interface: "a0", HopLimit: 255, Payload: good}, DropPeerMismatch},
		{"wrong interface", Received{Src: sc.src, Interface: "a1", HopLimit: 255, Payload: good}, DropPeerMismatch},
		{"auth", Received{Src: sc.src, Interface: "a0", HopLimit: 255, Payload: mk(func(p *Packet) { p.Auth = []byte{1, 4, 1, 'k'} })}, DropAuth},
	}
	for i, tt := range tests {
		before := e.s.Status().Stats.Drops
		e.s.HandlePacket(tt.rx)
		st := e.s.Status()
		if st.Stats.Drops[tt.reason] != before[tt.reason]+1 || st.Stats.Dropped() != uint64(i+2) {
			t.Errorf("%s: drops %v, want one %v", tt.name, st.Stats.Drops, tt.reason)
		}
		if st.State != StateDown || st.RemoteDiscr != 0 || !st.LastRx.IsZero() {
			t.Errorf("%s: the dropped packet changed the session: %v remote %d", tt.name, st.State, st.RemoteDiscr)
		}
	}
	// A packet for another discriminator, handed to the session directly.
	e.s.HandlePacket(Received{Src: sc.src, Interface: "a0", HopLimit: 255, Payload: bad(func(b []byte) []byte { b[11]++; return b })})
	if st := e.s.Status(); st.Stats.Drops[DropUnknownDiscr] != 1 {
		t.Errorf("other discriminator: %v", st.Stats.Drops)
	}
	// The good packet is accepted.
	e.s.HandlePacket(Received{Src: sc.src, Interface: "a0", HopLimit: 255, Payload: good})
	if st := e.s.Status(); st.State != StateInit || st.RemoteDiscr != 77 || st.Stats.Received != uint64(len(tests)+3) {
		t.Errorf("good packet: %v remote %d received %d", st.State, st.RemoteDiscr, st.Stats.Received)
	}
}

// The Demux selects sessions by Your Discriminator, or by interface and
// source while it is 0, and counts what matches none.
func TestDemux(t *testing.T) {
	clk := newFakeClock()
	d := NewDemux(nil)
	var ss []*Session
	var ends []*end
	for i, c := range []Config{
		testCfg("s1", "ge0", "fe80::1", fast, fast, 3),
		testCfg("s2", "ge0", "fe80::2", fast, fast, 3),
		testCfg("s3", "ge1", "fe80::1", fast, fast, 3),
	} {
		e := &end{t: t, clk: clk, demux: d, iface: c.Interface}
		s, err := d.NewSession(c, clk, e, e, nil)
		if err != nil {
			t.Fatal(i, err)
		}
		e.s = s
		start(t, e)
		ss, ends = append(ss, s), append(ends, e)
	}
	if ss[0].LocalDiscr() == ss[1].LocalDiscr() || ss[1].LocalDiscr() == ss[2].LocalDiscr() || ss[0].LocalDiscr() == ss[2].LocalDiscr() {
		t.Fatal("discriminators not unique")
	}
	for _, c := range []Config{
		testCfg("s1", "ge2", "fe80::9", fast, fast, 3),
		testCfg("s4", "ge0", "fe80::1%ge0", fast, fast, 3),
	} {
		if _, err := d.NewSession(c, clk, ends[0], nil, nil); err == nil {
			t.Errorf("duplicate %+v accepted", c)
		}
	}
	pkt := func(st State, my, yours uint32) []byte {
		b, err := (&Packet{State: st, DetectMult: 3, MyDiscr: my, YourDiscr: yours, DesiredMinTx: 1000000, RequiredMinRx: 3300}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rx := func(iface, src string, b []byte) Received {
		return Received{Src: netip.MustParseAddr(src), Interface: iface, HopLimit: 255, Payload: b}
	}
	// Your Discriminator 0, by interface and source.
	d.HandlePacket(rx("ge1", "fe80::1", pkt(StateDown, 100, 0)))
	d.HandlePacket(rx("ge0", "fe80::2", pkt(StateDown, 200, 0)))
	if ss[2].Status().RemoteDiscr != 100 || ss[1].Status().RemoteDiscr != 200 || ss[0].Status().Stats.Received != 0 {
		t.Fatalf("demux by address: %d %d %d", ss[2].Status().RemoteDiscr, ss[1].Status().RemoteDiscr, ss[0].Status().Stats.Received)
	}
	// By Your Discriminator, whatever the source: a wrong source is the
	// session's to drop.
	d.HandlePacket(rx("ge0", "fe80::1", pkt(StateInit, 300, ss[0].LocalDiscr())))
	if st := ss[0].Status(); st.State != StateUp || st.RemoteDiscr != 300 {
		t.Fatalf("s1: %v remote %d", st.State, st.RemoteDiscr)
	}
	d.HandlePacket(rx("ge0", "fe80::7", pkt(StateInit, 300, ss[0].LocalDiscr())))
	if st := ss[0].Status(); st.Stats.Drops[DropPeerMismatch] != 1 {
		t.Fatalf("s1 from another source: %v", st.Stats.Drops)
	}
	// Nothing matches.
	d.HandlePacket(rx("ge0", "fe80::1", pkt(StateUp, 300, 12345)))
	d.HandlePacket(rx("ge0", "fe80::9", pkt(StateDown, 300, 0)))
	d.HandlePacket(rx("ge2", "fe80::1", pkt(StateDown, 300, 0)))
	d.HandlePacket(rx("ge0", "fe80::9", pkt(StateDown, 300, 0)[:10]))
	hl := rx("ge0", "fe80::9", pkt(StateDown, 300, 0))
	hl.HopLimit = 1
	d.HandlePacket(hl)
	ds := d.Stats()
	if ds.Received != 5 || ds.Drops[DropUnknownDiscr] != 1 || ds.Drops[DropNoSession] != 2 || ds.Drops[DropTruncated] != 1 || ds.Drops[DropHopLimit] != 1 {
		t.Fatalf("demux stats %+v", ds)
	}
	if got := d.Sessions(); len(got) != 3 || got[0] != ss[0] || got[2] != ss[2] || d.Session("s2") != ss[1] {
		t.Fatalf("sessions %v", got)
	}
	d.Remove(ss[1])
	d.HandlePacket(rx("ge0", "fe80::2", pkt(StateDown, 200, 0)))
	if ds := d.Stats(); ds.Drops[DropNoSession] != 3 || d.Session("s2") != nil {
		t.Fatalf("after Remove: %+v", ds)
	}
	if _, err := d.NewSession(testCfg("s2", "ge0", "fe80::2", fast, fast, 3), clk, ends[1], nil, nil); err != nil {
		t.Fatalf("re-adding after Remove: %v", err)
	}
}

// A flood of hostile packets between the peer's good ones leaves the
// session Up; every packet is dropped and counted by reason.
func TestFlood(t *testing.T) {
	clk, a, b := pair(t, fast, fast, 3)
	start(t, a, b)
	advanceUntil(t, clk, 100*time.Microsecond, 3*time.Second, "both Up", bothUp(a, b))
	rng := rand.New(rand.NewPCG(1, 2))
	src := netip.MustParseAddr("fe80::a") // b's peer
	good := a.lastSent().p
	var want [NumDropReasons]uint64
	var wantDemux [NumDropReasons]uint64
	const n = 100000
	before := b.s.Status().Stats
	for i := 0; i < n; i++ {
		p := good
		hop := HopLimit
		var raw []byte
		var reason DropReason
		demux := false
		switch i % 6 {
		case 0: // unknown discriminator
			p.YourDiscr = b.s.LocalDiscr() + 1 + uint32(rng.IntN(1000))
			reason, demux = DropUnknownDiscr, true
		case 1: // right discriminator, hop limit 64 (off-link)
			p.YourDiscr = b.s.LocalDiscr()
			hop, reason = 64, DropHopLimit
		case 2: // random bytes from the peer's address: demultiplexed to it
			raw = make([]byte, 24+rng.IntN(10))
			for j := range raw {
				raw[j] = byte(rng.Uint32())
			}
			raw[0] = 3 << 5 // version 3
			clear(raw[8:12])
			reason, demux = DropBadVersion, false
		case 3: // AdminDown spoof with the right discriminator but from off-link
			p.YourDiscr, p.State = b.s.LocalDiscr(), StateAdminDown
			hop, reason = 1, DropHopLimit
		case 4: // your discr 0 in Up from an unknown source
			p.YourDiscr = 0
			raw, _ = (&Packet{State: StateDown, DetectMult: 1, MyDiscr: 5}).Marshal()
			reason, demux = DropNoSession, true
			src2 := netip.MustParseAddr("fe80::bad")
			b.demux.HandlePacket(Received{Src: src2, Interface: "b0", HopLimit: 255, Payload: raw})
			wantDemux[reason]++
			continue
		case 5: // auth
			p.YourDiscr = b.s.LocalDiscr()
			p.Auth = []byte{2, 24, 1, 0}
			p.Auth = append(p.Auth, make([]byte, 20)...)
			reason = DropAuth
		}
		if raw == nil {
			var err error
			if raw, err = p.Marshal(); err != nil {
				t.Fatal(err)
			}
		}
		b.demux.HandlePacket(Received{Src: src, Interface: "b0", HopLimit: hop, Payload: raw})
		if demux {
			wantDemux[reason]++
		} else {
			want[reason]++
		}
		if i%1000 == 0 {
			clk.Advance(time.Millisecond)
		}
	}
	clk.Advance(time.Second)
	st := b.s.Status()
	if st.State != StateUp || a.s.State() != StateUp || st.Stats.DownCount != 0 {
		t.Fatalf("flood took the session down: %v", st.State)
	}
	for r := DropReason(0); r < NumDropReasons; r++ {
		if got := st.Stats.Drops[r] - before.Drops[r]; got != want[r] {
			t.Errorf("session drops %v: %d, want %d", r, got, want[r])
		}
	}
	ds := b.demux.Stats()
	for r := DropReason(0); r < NumDropReasons; r++ {
		if ds.Drops[r] != wantDemux[r] {
			t.Errorf("demux drops %v: %d, want %d", r, ds.Drops[r], wantDemux[r])
		}
	}
	var total uint64
	for r := range want {
		total += want[r] + wantDemux[r]
	}
	if total != n {
		t.Errorf("counted %d of %d", total, n)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := testCfg("s", "ge0", "fe80::1", fast, fast, 3)
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		mod  func(c *Config)
	}{
		{"no name", func(c *Config) { c.Name = "" }},
		{"no interface", func(c *Config) { c.Interface = "" }},
		{"ipv4 peer", func(c *Config) { c.Peer = netip.MustParseAddr("10.0.0.1") }},
		{"mapped peer", func(c *Config) { c.Peer = netip.MustParseAddr("::ffff:10.0.0.1") }},
		{"multicast peer", func(c *Config) { c.Peer = netip.MustParseAddr("ff02::1") }},
		{"no peer", func(c *Config) { c.Peer = netip.Addr{} }},
		{"ipv4 local", func(c *Config) { c.Local = netip.MustParseAddr("10.0.0.1") }},
		{"tx 0", func(c *Config) { c.DesiredMinTx = 0 }},
		{"rx 0", func(c *Config) { c.RequiredMinRx = 0 }},
		{"tx too long", func(c *Config) { c.DesiredMinTx = 2 * time.Hour }},
		{"mult 0", func(c *Config) { c.DetectMult = 0 }},
	} {
		c := ok
		tt.mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	if _, err := NewSession(ok, 0, nil, &end{}, nil, nil); err == nil {
		t.Error("discriminator 0 accepted")
	}
	if _, err := NewSession(ok, 1, nil, nil, nil, nil); err == nil {
		t.Error("nil sender accepted")
	}
	s, err := NewSession(ok, 1, newFakeClock(), &end{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTimers(0, fast, 3); err == nil {
		t.Error("SetTimers with tx 0 accepted")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start accepted")
	}
	s.Close()
	if err := s.Start(); err == nil {
		t.Error("Start after Close accepted")
	}
}
