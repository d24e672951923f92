package stats

import (
	"testing"
	"time"
)

func TestStats(t *testing.T) {
	ms := time.Millisecond
	odd := []time.Duration{30 * ms, 10 * ms, 20 * ms}
	even := []time.Duration{40 * ms, 10 * ms, 30 * ms, 20 * ms}
	if got := Median(odd); got != 20*ms {
		t.Errorf("Median(%v) = %v, want 20ms", odd, got)
	}
	if got := Median(even); got != 25*ms {
		t.Errorf("Median(%v) = %v, want 25ms", even, got)
	}
	if odd[0] != 30*ms || even[0] != 40*ms {
		t.Errorf("Median sorted its input: %v %v", odd, even)
	}
	if got := Median([]uint64{3, 1, 2, 9}); got != 2 {
		t.Errorf("Median of counts = %d, want 2 (integer mean of 2 and 3)", got)
	}
	if got := Max(even); got != 40*ms {
		t.Errorf("Max(%v) = %v, want 40ms", even, got)
	}
	if Median[float64](nil) != 0 || Max[time.Duration](nil) != 0 || Percentile[int](nil, 0.5) != 0 {
		t.Error("statistics of nothing are not 0")
	}
	var hundred []int
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, i)
	}
	for _, c := range []struct {
		q    float64
		want int
	}{{0, 1}, {0.5, 51}, {0.9, 91}, {0.99, 100}, {1, 100}} {
		if got := Percentile(hundred, c.q); got != c.want {
			t.Errorf("Percentile(1..100, %g) = %d, want %d", c.q, got, c.want)
		}
	}
	if hundred[0] != 100 {
		t.Error("Percentile sorted its input")
	}
}
