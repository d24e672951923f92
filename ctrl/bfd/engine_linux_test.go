//go:build linux

package bfd

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The engine runs AfterFunc callbacks on its one thread, in deadline
// order, skips stopped ones, runs requests with do, reports lateness,
// and Close ends its goroutine (pending timers do not run). No root
// needed: epoll, timerfd and eventfd are unprivileged, and SCHED_FIFO
// falls back with a reason.
func TestEngineTimers(t *testing.T) {
	e, err := startEngine(EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	t.Logf("policy: %s", st.Policy)
	if st.Policy == "" {
		t.Error("no policy reported")
	}

	var (
		mu    sync.Mutex
		order []int
		tids  = map[int]bool{}
	)
	done := make(chan struct{})
	record := func(i int) func() {
		return func() {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, i)
			tids[unix.Gettid()] = true
			if len(order) == 4 {
				close(done)
			}
		}
	}
	// Armed from this goroutine, out of order; 3 is stopped.
	e.AfterFunc(40*time.Millisecond, record(4))
	e.AfterFunc(10*time.Millisecond, record(1))
	stopped := e.AfterFunc(15*time.Millisecond, record(99))
	e.AfterFunc(20*time.Millisecond, record(2))
	if !stopped.Stop() {
		t.Error("Stop of a pending timer reported false")
	}
	if stopped.Stop() {
		t.Error("second Stop reported true")
	}
	// Armed on the engine thread by a callback, due at once.
	e.AfterFunc(30*time.Millisecond, func() { e.AfterFunc(0, record(3)) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("timers did not run: %v", order)
	}
	mu.Lock()
	if !slices.Equal(order, []int{1, 2, 3, 4}) {
		t.Errorf("order %v, want [1 2 3 4]", order)
	}
	var engineTid int
	if err := e.do(func() error { engineTid = unix.Gettid(); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(tids) != 1 || !tids[engineTid] {
		t.Errorf("callbacks ran on threads %v, the engine's is %d", tids, engineTid)
	}
	mu.Unlock()

	st = e.Stats()
	var n uint64
	for _, c := range st.Lateness {
		n += c
	}
	if st.TimersFired != 5 || n != 5 || len(st.Lateness) != len(LatenessBuckets())+1 {
		t.Errorf("fired %d, histogram %v", st.TimersFired, st.Lateness)
	}
	t.Logf("max lateness %v, histogram %v", st.MaxLateness, st.Lateness)

	ran := make(chan struct{}, 1)
	e.AfterFunc(time.Hour, func() { ran <- struct{}{} })
	e.close(nil)
	select {
	case <-ran:
		t.Error("a pending timer ran at close")
	default:
	}
	if err := e.do(func() error { return nil }); err == nil {
		t.Error("do after close succeeded")
	}
}

// A session on the engine's clock runs its timers there: two sessions
// joined by a loopback come Up at 3.3 ms, and one whose peer goes silent
// goes Down by expiry with LastRx and DetectTime in its change.
func TestEngineSessions(t *testing.T) {
	e, err := startEngine(EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.close(nil)
	da, db := NewDemux(nil), NewDemux(nil)
	aAddr, bAddr := netip.MustParseAddr("fe80::a"), netip.MustParseAddr("fe80::b")
	ch := make(chan StateChange, 64)
	obs := observerFunc(func(c StateChange) { ch <- c })
	// Packets cross on the engine thread (AfterFunc 0): as from a socket.
	var mu sync.Mutex
	mute := false
	cross := func(to *Demux, src netip.Addr, iface string) Sender {
		return senderFunc(func(b []byte) error {
			mu.Lock()
			m := mute
			mu.Unlock()
			if m && iface == "a0" {
				return nil
			}
			p := append([]byte(nil), b...)
			e.AfterFunc(0, func() {
				to.HandlePacket(Received{Src: src, Interface: iface, HopLimit: HopLimit, Payload: p, Time: time.Now()})
			})
			return nil
		})
	}
	var sa, sb *Session
	if err := e.do(func() error {
		var err error
		if sa, err = da.NewSession(testCfg("a", "a0", "fe80::b", fast, fast, 3), e, cross(db, aAddr, "b0"), obs, nil); err != nil {
			return err
		}
		if sb, err = db.NewSession(testCfg("b", "b0", "fe80::a", fast, fast, 3), e, cross(da, bAddr, "a0"), nil, nil); err != nil {
			return err
		}
		if err := sa.Start(); err != nil {
			return err
		}
		return sb.Start()
	}); err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	defer sb.Close()
	waitChange(t, ch, "a Up", func(c StateChange) bool { return c.To == StateUp })
	if st := sa.Status(); st.TxInterval != fast || st.DetectTime != 3*fast {
		t.Errorf("a: tx %v detect %v", st.TxInterval, st.DetectTime)
	}
	// b goes silent towards a.
	mu.Lock()
	mute = true
	mu.Unlock()
	c := waitChange(t, ch, "a Down", func(c StateChange) bool { return c.From == StateUp && c.To == StateDown })
	if c.Diag != DiagControlDetectionTimeExpired || !c.Failed || !c.Silent() || c.LastRx.IsZero() || c.DetectTime != 3*fast {
		t.Errorf("a's Down: %+v", c)
	}
	t.Logf("Down declared %v after the deadline", c.Time.Sub(c.LastRx.Add(c.DetectTime)))
	if c.Time.Before(c.LastRx.Add(c.DetectTime)) {
		t.Errorf("Down declared before its deadline: last rx %v + %v, at %v", c.LastRx, c.DetectTime, c.Time)
	}
}

func waitChange(t *testing.T, ch <-chan StateChange, what string, cond func(StateChange) bool) StateChange {
	t.Helper()
	limit := time.After(10 * time.Second)
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				t.Fatalf("%s: channel closed", what)
			}
			if cond(c) {
				return c
			}
		case <-limit:
			t.Fatalf("%s: not within 10 s", what)
		}
	}
}

type senderFunc func([]byte) error

func (f senderFunc) Send(b []byte) error { return f(b) }
