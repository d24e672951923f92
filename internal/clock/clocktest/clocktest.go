// Package clocktest is a manual clock.Clock for tests of the state
// machines (ctrl/mld, ctrl/vrrp6, sync/rbs): time moves only in Advance,
// which runs the due callbacks in the calling goroutine, in deadline order
// (ties in the order they were scheduled), with Now at each one's
// deadline. It is safe for use from several goroutines.
package clocktest

import (
	"sync"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/clock"
)

// Fake is the manual clock.
type Fake struct {
	mu     sync.Mutex
	cond   *sync.Cond // broadcast when a timer is scheduled
	now    time.Time
	seq    int
	timers []*timer // pending
}

type timer struct {
	c    *Fake
	when time.Time
	d    time.Duration
	seq  int
	f    func()
	done bool // fired or stopped
}

// New returns a clock reading start.
func New(start time.Time) *Fake {
	c := &Fake{now: start}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Now implements clock.Clock.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc implements clock.Clock; a negative d is 0.
func (c *Fake) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	d = max(d, 0)
	c.seq++
	t := &timer{c: c, when: c.now.Add(d), d: d, seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	c.cond.Broadcast()
	return t
}

// Stop implements clock.Timer: it reports whether the call was pending.
func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// Advance moves time forward by d, running every callback due on the way,
// those scheduled by the callbacks included, each at its own instant.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *timer
		live := c.timers[:0]
		for _, t := range c.timers {
			if t.done {
				continue
			}
			live = append(live, t)
			if !t.when.After(end) && (next == nil || t.when.Before(next.when) || (t.when.Equal(next.when) && t.seq < next.seq)) {
				next = t
			}
		}
		c.timers = live
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		next.done = true
		if next.when.After(c.now) {
			c.now = next.when
		}
		c.mu.Unlock()
		next.f()
	}
}

// WaitPending blocks until a timer scheduled for d is pending (another
// goroutine arms it), failing the test after 5 s of real time.
func (c *Fake) WaitPending(tb testing.TB, d time.Duration) {
	tb.Helper()
	wake := time.AfterFunc(5*time.Second, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer wake.Stop()
	start := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		var ds []time.Duration
		for _, t := range c.timers {
			if !t.done {
				if t.d == d {
					return
				}
				ds = append(ds, t.d)
			}
		}
		if time.Since(start) > 5*time.Second {
			tb.Fatalf("no pending %v timer; pending %v", d, ds)
		}
		c.cond.Wait()
	}
}
