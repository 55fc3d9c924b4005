package arbiter

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Memory is an Arbiter whose store is a struct in this process: every client
// of one cluster shares one *Memory. The store and its clients read the same
// clock, so the arithmetic of the package doc holds with ρ = 0. It is the
// arbiter of tests and of the in-process fault network; SetAvailable makes it
// fail like a store that cannot be reached.
//
// A Memory is safe for concurrent use. It never blocks, except that every
// method first returns ctx.Err() (as ErrUnavailable) when ctx is done.
type Memory struct {
	timing Timing
	now    func() time.Time

	mu        sync.Mutex // guards the fields below
	down      bool
	holder    string
	epoch     uint64
	expiresAt time.Time // on now's clock; zero when free
}

var _ Arbiter = (*Memory)(nil)

// NewMemory returns a free lease store with timing t whose clock is now (nil
// means time.Now). It panics when t is invalid: timing is fixed when the
// program is written.
func NewMemory(t Timing, now func() time.Time) *Memory {
	if err := t.Validate(); err != nil {
		panic("arbiter.NewMemory: " + err.Error())
	}
	if now == nil {
		now = time.Now
	}
	return &Memory{timing: t, now: now}
}

// SetAvailable makes every later call fail with ErrUnavailable (false) or
// reach the store again (true). The lease keeps expiring while the store is
// unavailable.
func (m *Memory) SetAvailable(up bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = !up
}

// lock takes m.mu when the store is reachable.
func (m *Memory) lock(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return Unavailable(op, err.Error(), err)
	}
	m.mu.Lock()
	if m.down {
		m.mu.Unlock()
		return Unavailable(op, "in-memory store set unavailable")
	}
	return nil
}

// Acquire implements Arbiter.
func (m *Memory) Acquire(ctx context.Context, self string, seen uint64) (Lease, error) {
	if self == "" {
		return Lease{}, errors.New("arbiter: acquire: empty node name")
	}
	if err := m.lock(ctx, "acquire"); err != nil {
		return Lease{}, err
	}
	defer m.mu.Unlock()
	start := m.now()
	held := m.holder != "" && start.Before(m.expiresAt)
	if held && m.holder != self {
		return Lease{}, &ConflictError{Reason: ErrLeaseHeld, Holder: m.holder, Epoch: m.epoch, Seen: seen, Remaining: m.expiresAt.Sub(start)}
	}
	if m.epoch > seen {
		c := &ConflictError{Reason: ErrStaleEpoch, Holder: m.holder, Epoch: m.epoch, Seen: seen}
		if held {
			c.Remaining = m.expiresAt.Sub(start)
		}
		return Lease{}, c
	}
	m.holder, m.epoch, m.expiresAt = self, seen+1, start.Add(m.timing.TTL)
	return Lease{Holder: self, Epoch: m.epoch, Deadline: m.timing.Deadline(start)}, nil
}

// Renew implements Arbiter.
func (m *Memory) Renew(ctx context.Context, l Lease) (Lease, error) {
	if err := m.lock(ctx, "renew"); err != nil {
		return l, err
	}
	defer m.mu.Unlock()
	if l.Epoch == 0 || m.holder != l.Holder || m.epoch != l.Epoch {
		return l, ErrLeaseLost
	}
	start := m.now()
	m.expiresAt = start.Add(m.timing.TTL)
	l.Deadline = m.timing.Deadline(start)
	return l, nil
}

// Release implements Arbiter.
func (m *Memory) Release(ctx context.Context, l Lease) error {
	if err := m.lock(ctx, "release"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if l.Epoch == 0 || m.holder != l.Holder || m.epoch != l.Epoch {
		return ErrLeaseLost
	}
	m.holder, m.expiresAt = "", time.Time{}
	return nil
}

// Observe implements Arbiter.
func (m *Memory) Observe(ctx context.Context) (State, error) {
	if err := m.lock(ctx, "observe"); err != nil {
		return State{}, err
	}
	defer m.mu.Unlock()
	s := State{Holder: m.holder, Epoch: m.epoch}
	if m.holder != "" {
		s.Remaining = m.expiresAt.Sub(m.now())
	}
	return s, nil
}
