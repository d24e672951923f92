// Package stats is the small set of statistics the benchmarks and reports
// share: median, maximum, nearest-rank percentile.
package stats

import "slices"

// Number is what the benchmark statistics take: durations, counts, rates.
type Number interface {
	~int | ~int64 | ~uint64 | ~float64
}

// Median is the middle value of xs, the mean of the two middle values
// when their count is even; 0 for none. xs is left as it is.
func Median[T Number](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return s[n/2-1] + (s[n/2]-s[n/2-1])/2
}

// Max is the largest value of xs; 0 for none.
func Max[T Number](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	return slices.Max(xs)
}

// Percentile is the q-quantile of xs (0 ≤ q ≤ 1) by nearest rank: the
// value at index ⌊q·n⌋ of xs sorted, the largest for q = 1; 0 for none.
// xs is left as it is.
func Percentile[T Number](xs []T, q float64) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
