// Package mapsize keeps Go maps that churn through bursts at the size they
// need. A Go map never gives back the room its largest moment took, so a map
// of in-flight entries that once held thousands would hold that memory for
// good; Rebuilt copies it at its current size once the burst has drained.
package mapsize

// minPeak is the smallest peak worth rebuilding a map for.
const minPeak = 1024

// Grew records m's size after an insertion in *peak, the largest size since
// m was last rebuilt.
func Grew[K comparable, V any](m map[K]V, peak *int) { *peak = max(*peak, len(m)) }

// Rebuilt returns m, or, once m has shrunk to an eighth of a peak of at least
// minPeak entries, a copy of m at its current size (and *peak reset to it).
// Call it after deleting from m.
func Rebuilt[K comparable, V any](m map[K]V, peak *int) map[K]V {
	if *peak < minPeak || len(m) > *peak/8 {
		return m
	}
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	*peak = len(c)
	return c
}
