package arbitertest

import (
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/arbiter"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestMemory(t *testing.T) {
	Run(t, openMemory)
}

func TestMemoryUnavailable(t *testing.T) {
	RunUnavailable(t, openMemory)
}

func openMemory(t *testing.T) Setup {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := arbiter.NewMemory(arbiter.DefaultTiming(), clock.Now)
	return Setup{
		A: m, B: m, Now: clock.Now, Wait: clock.Advance, TTL: arbiter.DefaultTTL,
		Break: func() { m.SetAvailable(false) },
		Heal:  func() { m.SetAvailable(true) },
	}
}
