// Package ratelimit holds the write limiter: one fixed-window budget shared by
// every mutating request of the process.
package ratelimit

import (
	"sync"
	"time"
)

// Limiter allows at most max calls to Allow per window. Windows are fixed and
// anchored at the limiter's creation: the budget refills at creation + k*window,
// not window after the first call. A Limiter is safe for concurrent use.
type Limiter struct {
	window time.Duration
	max    int
	now    func() time.Time

	mu    sync.Mutex // guards start and used
	start time.Time  // start of the current window
	used  int        // calls allowed in the current window
}

// New returns a Limiter that allows max calls per window. window and max must
// be positive.
func New(window time.Duration, max int) *Limiter {
	return newWithClock(window, max, time.Now)
}

func newWithClock(window time.Duration, max int, now func() time.Time) *Limiter {
	if window <= 0 || max <= 0 {
		panic("ratelimit: window and max must be positive")
	}
	return &Limiter{window: window, max: max, now: now, start: now()}
}

// Allow reports whether one more call fits in the current window, and counts
// it when it does. A refused call is not counted.
func (l *Limiter) Allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if elapsed := l.now().Sub(l.start); elapsed >= l.window {
		l.start = l.start.Add(elapsed.Truncate(l.window))
		l.used = 0
	}
	if l.used >= l.max {
		return false
	}
	l.used++
	return true
}
