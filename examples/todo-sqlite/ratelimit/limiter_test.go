package ratelimit

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestAllowUpToMaxPerWindow(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	l := newWithClock(time.Minute, 3, clock.now)
	for i := range 3 {
		if !l.Allow() {
			t.Fatalf("call %d refused, want allowed", i+1)
		}
	}
	if l.Allow() {
		t.Fatal("4th call allowed, want refused")
	}
	if l.Allow() {
		t.Fatal("a refused call must not reset or spend the budget")
	}
}

func TestWindowIsAnchoredAtCreation(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	l := newWithClock(10*time.Second, 1, clock.now)

	clock.advance(9 * time.Second)
	if !l.Allow() {
		t.Fatal("first call refused")
	}
	clock.advance(time.Second) // 10 s after creation: a new window starts
	if !l.Allow() {
		t.Fatal("call in the second window refused; the window must be anchored at creation, not at the first call")
	}
	clock.advance(9 * time.Second)
	if l.Allow() {
		t.Fatal("second call in the second window allowed")
	}
	clock.advance(35 * time.Second) // several idle windows later
	if !l.Allow() {
		t.Fatal("call after idle windows refused")
	}
	clock.advance(4 * time.Second) // still inside the window that began at 50 s
	if l.Allow() {
		t.Fatal("window boundaries drifted after idle windows")
	}
}

func TestAllowIsSafeForConcurrentUse(t *testing.T) {
	l := New(time.Hour, 50)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for range 200 {
		wg.Go(func() {
			if l.Allow() {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != 50 {
		t.Fatalf("allowed %d calls, want 50", allowed)
	}
}

func TestNewRejectsNonPositiveArguments(t *testing.T) {
	for _, args := range []struct {
		window time.Duration
		max    int
	}{
		{0, 1},
		{time.Second, 0},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%v, %d) did not panic", args.window, args.max)
				}
			}()
			New(args.window, args.max)
		}()
	}
}
