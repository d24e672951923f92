package mld

import "github.com/hotcast/hotcast/internal/clock"

// Clock is the time source of the state machines. Tests inject a fake one.
type Clock = clock.Clock

// Timer is a pending AfterFunc call.
type Timer = clock.Timer

// SystemClock is the wall clock.
type SystemClock = clock.System
