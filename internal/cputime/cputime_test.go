//go:build unix

package cputime

import (
	"testing"
	"time"
)

// TestProcessCountsWork: spinning for a while shows up in the process's CPU
// time.
func TestProcessCountsWork(t *testing.T) {
	before := Process()
	x := 0
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
		x++
	}
	if used := Process() - before; used <= 0 {
		t.Fatalf("CPU time moved by %v after 50 ms of spinning (%d turns)", used, x)
	}
}
