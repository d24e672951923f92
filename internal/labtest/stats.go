package labtest

import "github.com/hotcast/hotcast/internal/stats"

// Number is what the benchmark statistics take (stats.Number).
type Number = stats.Number

// Median is stats.Median, for the benchmarks that use labtest.
func Median[T Number](xs []T) T { return stats.Median(xs) }

// Max is stats.Max.
func Max[T Number](xs []T) T { return stats.Max(xs) }

// Percentile is stats.Percentile.
func Percentile[T Number](xs []T, q float64) T { return stats.Percentile(xs, q) }
