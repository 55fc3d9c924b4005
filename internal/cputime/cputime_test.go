package cputime

import (
	"runtime"
	"testing"
	"time"
)

// TestProcessCountsWork: spinning for a while shows up in the process's CPU
// time (on a system that reports it).
func TestProcessCountsWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("CPU time not read on " + runtime.GOOS)
	}
	before := Process()
	x := 0
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
		x++
	}
	if used := Process() - before; used <= 0 {
		t.Fatalf("CPU time moved by %v after 50 ms of spinning (%d turns)", used, x)
	}
}
