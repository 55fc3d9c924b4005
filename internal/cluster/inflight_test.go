package cluster

import (
	"strconv"
	"testing"
)

// After a burst of in-flight attempts drains, the set's map is rebuilt at
// its new size instead of keeping the burst's.
func TestInflightSetShrinksAfterBurst(t *testing.T) {
	var f inflightSet
	for i := range 3000 {
		f.add(strconv.Itoa(i), uint64(i))
	}
	f.done("0", 99) // another attempt: kept
	if !f.has("0") || f.peak != 3000 {
		t.Fatalf("peak %d, has(0) %v", f.peak, f.has("0"))
	}
	for i := range 3000 {
		f.done(strconv.Itoa(i), uint64(i))
	}
	if len(f.m) != 0 || f.peak >= 1024 {
		t.Fatalf("after draining: %d entries, peak %d", len(f.m), f.peak)
	}
}
