package rbs

import "time"

// Clock is the time source of a Service; tests pass a fake one.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or, for fake clocks, from
	// the goroutine advancing time) once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not started; it reports whether
	// it did so.
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
