package mld

import (
	"time"

	"github.com/hotcast/hotcast/internal/clock/clocktest"
)

type fakeClock = clocktest.Fake

func newFakeClock() *fakeClock {
	return clocktest.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
}
