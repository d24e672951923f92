package rbs

import "github.com/hotcast/hotcast/internal/clock"

// Clock is the time source of a Service; tests pass a fake one.
type Clock = clock.Clock

// Timer is a pending AfterFunc call.
type Timer = clock.Timer

// realClock is the wall clock, the default.
type realClock = clock.System
