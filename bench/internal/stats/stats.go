// Package stats holds the two summaries every benchmark program reports, so
// that figures from different programs (Mesh's and the DBOS comparison's)
// are computed alike: the nearest-rank percentile of a latency sample and
// the median of per-round figures.
package stats

import (
	"slices"
	"time"
)

// Percentile returns the q-quantile of sorted (ascending) by nearest rank:
// the smallest value with at least q of the sample at or below it. It
// returns 0 for an empty sample.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps a product such as 0.99*100 = 98.99999999999999
	// from rounding up past the rank it means.
	rank := int(q*float64(len(sorted)) + 0.999999999)
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// Median returns the median of v (the mean of the middle two for an even
// count), 0 for none. It leaves v as it is.
func Median(v []float64) float64 {
	n := len(v)
	if n == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return (s[(n-1)/2] + s[n/2]) / 2
}
