//go:build linux

package bfd

import (
	"container/heap"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hotcast/hotcast/internal/clock"
)

// DefaultRealtimePriority is the SCHED_FIFO priority of the engine thread
// when none is configured: above every SCHED_OTHER thread, below the
// kernel's own real-time threads (threaded interrupts and the like run at
// 50).
const DefaultRealtimePriority = 10

// EngineConfig configures the engine thread.
type EngineConfig struct {
	// RealtimePriority is the SCHED_FIFO priority (1..99) of the thread;
	// 0 means DefaultRealtimePriority, a negative value SCHED_OTHER. When
	// the kernel refuses (no CAP_SYS_NICE, RLIMIT_RTPRIO), the thread runs
	// SCHED_OTHER and EngineStats.Policy says why.
	RealtimePriority int
	// NetNS is the path of a network namespace the thread enters before
	// opening anything ("": the process's own). Every socket of the
	// engine is opened on its thread, so all of them live there.
	NetNS string
	// Log receives the engine's messages; nil discards.
	Log *slog.Logger
}

// engine is the real-time timing engine: one goroutine locked to its own
// OS thread (SCHED_FIFO when allowed, timer slack 1 ns) waiting in
// epoll_wait on a timerfd armed to the earliest absolute CLOCK_MONOTONIC
// deadline of every session's transmit and detection timers, on an eventfd
// that other goroutines write to wake it, and on the receive sockets. Each
// wake reads the sockets first (with their kernel receive timestamps),
// then runs the timers that are due, then the requests queued by other
// goroutines. Everything it runs (the sessions' timer callbacks and packet
// handling, sends) runs on that thread; nothing on it blocks.
//
// It implements clock.Clock for the sessions: AfterFunc callbacks run on
// the engine thread.
type engine struct {
	log  *slog.Logger
	epfd int
	tfd  int
	efd  int
	// base and baseMono map time.Time (monotonic reading) to
	// CLOCK_MONOTONIC nanoseconds for the timerfd.
	base     time.Time
	baseMono int64

	mu       sync.Mutex
	timers   timerHeap
	seq      uint64
	armed    int64 // CLOCK_MONOTONIC ns the timerfd is set for; 0 while awake
	reqs     []func()
	closing  bool
	stats    EngineStats
	lateHist [numLatenessBuckets + 1]uint64

	// Only on the engine thread.
	fds        map[int]pollee // registered fds
	programmed int64
	events     []unix.EpollEvent
	ready      []int

	done chan struct{}
}

const numLatenessBuckets = 8

// LatenessBuckets returns the upper bounds of EngineStats.Lateness.
func LatenessBuckets() []time.Duration {
	b := latenessBounds()
	return b[:]
}

func latenessBounds() [numLatenessBuckets]time.Duration {
	return [numLatenessBuckets]time.Duration{
		50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
		time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	}
}

// latenessBucket is the index in EngineStats.Lateness of d.
func latenessBucket(d time.Duration) int {
	for i, b := range latenessBounds() {
		if d <= b {
			return i
		}
	}
	return numLatenessBuckets
}

// EngineStats describe the engine thread.
type EngineStats struct {
	// Policy is the scheduling policy the thread runs with, and why when
	// it is not the one asked for.
	Policy string
	// Realtime is true when the thread runs SCHED_FIFO.
	Realtime bool
	Wakeups  uint64
	// TimersFired counts timer callbacks run; Lateness counts them by how
	// late they ran against their deadline, in LatenessBuckets() (the
	// last count is above the last bound); MaxLateness is the largest.
	TimersFired uint64
	Lateness    []uint64
	MaxLateness time.Duration
}

// pollee is a registered fd: drain reads up to budget packets when it is
// readable; idle tells it that it had nothing to read at a wake.
type pollee interface {
	drain(budget int)
	idle(wake time.Time)
}

// packetBudget is how many packets a wake reads from one socket before it
// runs the timers: a flood delays the timers by at most that much work.
const packetBudget = 64

// startEngine starts the engine thread and waits until it runs.
func startEngine(cfg EngineConfig) (*engine, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &engine{log: log, epfd: -1, tfd: -1, efd: -1, fds: map[int]pollee{}, events: make([]unix.EpollEvent, 16), done: make(chan struct{})}
	started := make(chan error, 1)
	go e.thread(cfg, started)
	if err := <-started; err != nil {
		<-e.done
		return nil, err
	}
	return e, nil
}

// thread is the engine goroutine. It never unlocks its OS thread: the
// thread's scheduling policy and namespace are its own, and the runtime
// throws the thread away when the goroutine ends.
func (e *engine) thread(cfg EngineConfig, started chan<- error) {
	defer close(e.done)
	runtime.LockOSThread()
	if err := e.setup(cfg); err != nil {
		e.closeFDs()
		started <- err
		return
	}
	started <- nil
	e.loop()
	e.closeFDs()
}

func (e *engine) setup(cfg EngineConfig) error {
	if cfg.NetNS != "" {
		fd, err := unix.Open(cfg.NetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("bfd engine: open netns %s: %w", cfg.NetNS, err)
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("bfd engine: enter netns %s: %w", cfg.NetNS, err)
		}
	}
	// Timer slack (50 µs by default) applies to SCHED_OTHER sleeps.
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	e.stats.Policy = "SCHED_OTHER"
	switch prio := cfg.RealtimePriority; {
	case prio < 0:
		e.stats.Policy = "SCHED_OTHER (configured)"
	default:
		if prio == 0 {
			prio = DefaultRealtimePriority
		}
		if prio > 99 {
			return fmt.Errorf("bfd engine: realtime priority %d out of range 1..99", prio)
		}
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio), Flags: unix.SCHED_FLAG_RESET_ON_FORK}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			e.stats.Policy = fmt.Sprintf("SCHED_OTHER (SCHED_FIFO %d refused: %v)", prio, err)
			e.log.Warn("bfd engine runs without real-time priority: timers may run late under load", "priority", prio, "err", err)
		} else {
			e.stats.Policy = fmt.Sprintf("SCHED_FIFO %d", prio)
			e.stats.Realtime = true
		}
	}
	var err error
	if e.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		e.epfd = -1
		return fmt.Errorf("bfd engine: epoll: %w", err)
	}
	if e.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		e.tfd = -1
		return fmt.Errorf("bfd engine: timerfd: %w", err)
	}
	if e.efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		e.efd = -1
		return fmt.Errorf("bfd engine: eventfd: %w", err)
	}
	for _, fd := range []int{e.tfd, e.efd} {
		if err := unix.EpollCtl(e.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return fmt.Errorf("bfd engine: epoll add: %w", err)
		}
	}
	e.base = time.Now()
	e.baseMono = monoNow()
	e.log.Info("bfd engine started", "policy", e.stats.Policy, "netns", cfg.NetNS)
	return nil
}

func (e *engine) closeFDs() {
	for fd := range e.fds {
		unix.Close(fd)
	}
	clear(e.fds)
	for _, fd := range []*int{&e.tfd, &e.efd, &e.epfd} {
		if *fd >= 0 {
			unix.Close(*fd)
		}
		*fd = -1
	}
}

func monoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// mono converts t (with a monotonic reading) to CLOCK_MONOTONIC ns.
func (e *engine) mono(t time.Time) int64 { return e.baseMono + int64(t.Sub(e.base)) }

func (e *engine) loop() {
	for {
		e.mu.Lock()
		if e.closing {
			e.mu.Unlock()
			return
		}
		reqs := e.reqs
		e.reqs = nil
		if len(reqs) > 0 {
			e.mu.Unlock()
			for _, f := range reqs {
				f()
			}
			e.runTimers()
			continue
		}
		next := int64(1<<63 - 1)
		if len(e.timers) > 0 {
			next = e.timers[0].mono
		}
		e.armed = next
		e.mu.Unlock()
		e.program(next)
		n, err := unix.EpollWait(e.epfd, e.events, -1)
		e.mu.Lock()
		e.armed = 0
		e.stats.Wakeups++
		e.mu.Unlock()
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			e.log.Error("bfd engine: epoll_wait", "err", err)
			time.Sleep(time.Millisecond)
			continue
		}
		wake := time.Now()
		var buf [8]byte
		ready := e.ready[:0]
		for _, ev := range e.events[:n] {
			fd := int(ev.Fd)
			switch fd {
			case e.tfd, e.efd:
				_, _ = unix.Read(fd, buf[:])
			default:
				ready = append(ready, fd)
			}
		}
		e.ready = ready
		// Sockets first, with a budget, so that the timers judge what
		// arrived; those with nothing to read were empty at the wake.
		for fd, p := range e.fds {
			if slices.Contains(ready, fd) {
				p.drain(packetBudget)
			} else {
				p.idle(wake)
			}
		}
		e.runTimers()
	}
}

// program sets the timerfd to the absolute deadline next (a far one
// disarms it).
func (e *engine) program(next int64) {
	if next == e.programmed {
		return
	}
	e.programmed = next
	var its unix.ItimerSpec
	if next != 1<<63-1 {
		if next <= 0 {
			next = 1
		}
		its.Value = unix.NsecToTimespec(next)
	}
	if err := unix.TimerfdSettime(e.tfd, unix.TFD_TIMER_ABSTIME, &its, nil); err != nil {
		e.log.Error("bfd engine: timerfd_settime", "err", err)
	}
}

// runTimers runs every timer that is due, in deadline order; timers that
// the callbacks arm and that are due by then run too.
func (e *engine) runTimers() {
	for {
		now := time.Now()
		nowMono := e.mono(now)
		e.mu.Lock()
		if len(e.timers) == 0 || e.timers[0].mono > nowMono {
			e.mu.Unlock()
			return
		}
		t := heap.Pop(&e.timers).(*etimer)
		late := time.Duration(nowMono - t.mono)
		e.stats.TimersFired++
		e.stats.MaxLateness = max(e.stats.MaxLateness, late)
		e.lateHist[latenessBucket(late)]++
		e.mu.Unlock()
		t.f()
	}
}

// Now implements clock.Clock.
func (e *engine) Now() time.Time { return time.Now() }

// AfterFunc implements clock.Clock: f runs on the engine thread once d
// has elapsed.
func (e *engine) AfterFunc(d time.Duration, f func()) clock.Timer {
	when := time.Now().Add(max(d, 0))
	t := &etimer{e: e, mono: e.mono(when), f: f}
	e.mu.Lock()
	e.seq++
	t.seq = e.seq
	heap.Push(&e.timers, t)
	wake := e.armed != 0 && t.mono < e.armed
	e.mu.Unlock()
	if wake {
		e.wake()
	}
	return t
}

func (e *engine) wake() {
	one := [8]byte{1}
	if _, err := unix.Write(e.efd, one[:]); err != nil && !errors.Is(err, unix.EAGAIN) {
		e.log.Error("bfd engine: wake", "err", err)
	}
}

// do runs f on the engine thread and waits for it; it fails when the
// engine is closing.
func (e *engine) do(f func() error) error {
	errc := make(chan error, 1)
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return errors.New("bfd engine: closed")
	}
	e.reqs = append(e.reqs, func() { errc <- f() })
	e.mu.Unlock()
	e.wake()
	select {
	case err := <-errc:
		return err
	case <-e.done:
		select {
		case err := <-errc:
			return err
		default:
		}
		return errors.New("bfd engine: closed")
	}
}

// addFD registers a readable fd and its handler; on the engine thread.
func (e *engine) addFD(fd int, h pollee) error {
	if err := unix.EpollCtl(e.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		return fmt.Errorf("bfd engine: epoll add: %w", err)
	}
	e.fds[fd] = h
	return nil
}

// removeFD unregisters fd (it does not close it); on the engine thread.
func (e *engine) removeFD(fd int) {
	_ = unix.EpollCtl(e.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	delete(e.fds, fd)
}

// close stops the engine after the requests already queued have run, and
// waits for its thread to end. Pending timers do not run.
func (e *engine) close(final func()) {
	if final != nil {
		_ = e.do(func() error { final(); return nil })
	}
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	e.wake()
	<-e.done
}

// Stats returns the engine's counters.
func (e *engine) Stats() EngineStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.stats
	st.Lateness = append([]uint64(nil), e.lateHist[:]...)
	return st
}

// etimer is one AfterFunc; idx is its heap index, -1 once it ran or was
// stopped.
type etimer struct {
	e    *engine
	mono int64
	seq  uint64
	f    func()
	idx  int
}

// Stop implements clock.Timer.
func (t *etimer) Stop() bool {
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	if t.idx < 0 {
		return false
	}
	heap.Remove(&t.e.timers, t.idx)
	return true
}

type timerHeap []*etimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].mono != h[j].mono {
		return h[i].mono < h[j].mono
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*etimer)
	t.idx = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.idx = -1
	return t
}
