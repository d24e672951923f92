package clocktest

import (
	"slices"
	"testing"
	"time"
)

func TestAdvanceOrderAndStop(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New(start)
	var got []string
	var at []time.Duration
	add := func(name string, d time.Duration) {
		c.AfterFunc(d, func() { got = append(got, name); at = append(at, c.Now().Sub(start)) })
	}
	add("b", 2*time.Second)
	add("a1", time.Second)
	add("a2", time.Second) // same deadline: after a1
	stopped := c.AfterFunc(1500*time.Millisecond, func() { got = append(got, "stopped") })
	c.AfterFunc(500*time.Millisecond, func() { add("nested", 100*time.Millisecond) })
	add("late", 10*time.Second)
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop: want true, then false")
	}
	c.Advance(3 * time.Second)
	if want := []string{"nested", "a1", "a2", "b"}; !slices.Equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if want := []time.Duration{600 * time.Millisecond, time.Second, time.Second, 2 * time.Second}; !slices.Equal(at, want) {
		t.Fatalf("fired at %v, want %v", at, want)
	}
	if c.Now().Sub(start) != 3*time.Second {
		t.Fatalf("now %v", c.Now())
	}
}

func TestWaitPending(t *testing.T) {
	c := New(time.Unix(0, 0))
	go func() {
		time.Sleep(10 * time.Millisecond)
		c.AfterFunc(7*time.Second, func() {})
	}()
	c.WaitPending(t, 7*time.Second)
}
