package arbiter

import (
	"context"
	"time"
)

// Arbiter decides whether a node may become, or stay, primary at a given
// epoch. It is a client of a store shared by the nodes of one cluster; the
// store holds at most one lease at a time, and the lease's epoch is the
// fencing token of the primary role.
//
// Lifetime: an Arbiter is opened by its backend's constructor, used for the
// life of the node, and closed by the backend's Close, if it has one. Every
// method may be called concurrently with every other; each may block on the
// store until ctx is done.
//
// Safety contract, which every implementation must keep (the conformance
// suite in meshtest/arbitertest checks it):
//
//   - At most one node holds the lease at any moment of the store's time.
//   - Every change of holder, and every Acquire, raises the epoch; the epoch
//     never decreases.
//   - A Lease's Deadline, on the caller's clock, is never later than the
//     store's expiry of that lease (see the package doc for the arithmetic),
//     so a holder that stops acting as primary at its Deadline has stopped
//     before any other node can win.
//   - Expiry is decided on the store's clock only, never the client's.
//   - Errors never contain the store's credentials.
type Arbiter interface {
	// Acquire makes self the holder at a new epoch greater than both seen
	// and the store's current epoch, when the lease is free (never held,
	// released or expired) or already held by self, and returns the new
	// lease. seen is the highest epoch the caller knows of.
	//
	// It fails with a *ConflictError matching ErrLeaseHeld when another node
	// holds an unexpired lease, or ErrStaleEpoch when the store's epoch is
	// greater than seen (the caller must learn that epoch before it may
	// promote); with an error matching ErrUnavailable when the store cannot
	// be reached. Two concurrent Acquires never both succeed. An Acquire
	// that failed with ErrUnavailable may still have taken effect: the
	// caller then holds a lease it does not know of, which expires unless it
	// acquires again (it is the holder, so only the epoch stops it: Observe
	// gives it).
	Acquire(ctx context.Context, self string, seen uint64) (Lease, error)

	// Renew extends the lease l for another TTL and returns it with a new
	// Deadline. It succeeds as long as l's holder still holds the lease at
	// l's epoch, even when the lease expired meanwhile (nobody else can have
	// held it since: that would have raised the epoch). It fails with
	// ErrLeaseLost when the lease has passed to a higher epoch or was
	// released, and with ErrUnavailable when the store cannot be reached;
	// the caller keeps l, which stays valid until its Deadline.
	Renew(ctx context.Context, l Lease) (Lease, error)

	// Release gives up l before its expiry, so that another node can
	// acquire at once (planned switchover, graceful shutdown). The epoch is
	// kept: the next Acquire raises it. It fails with ErrLeaseLost when l is
	// no longer the store's lease, and with ErrUnavailable when the store
	// cannot be reached (the lease then expires by itself).
	Release(ctx context.Context, l Lease) error

	// Observe reads the store's lease, for status and for a standby that
	// needs the current epoch. It fails only with ErrUnavailable.
	Observe(ctx context.Context) (State, error)
}

// Lease is a lease as its holder knows it. The zero Lease is no lease.
type Lease struct {
	Holder string // node name of the holder
	Epoch  uint64 // fencing token; at least 1 for a lease that was won
	// Deadline is when the holder must stop acting as primary, on the
	// caller's monotonic clock: the start of the request that last wrote
	// the lease, plus TTL, minus the safety margin.
	Deadline time.Time
}

// Valid reports whether the holder may act as primary at local time now.
func (l Lease) Valid(now time.Time) bool { return l.Epoch != 0 && now.Before(l.Deadline) }

// Remaining is how long the lease stays valid after now; zero or negative
// once it is not.
func (l Lease) Remaining(now time.Time) time.Duration {
	if l.Epoch == 0 {
		return 0
	}
	return l.Deadline.Sub(now)
}

// State is the store's lease as Observe reads it.
type State struct {
	Holder string // "" when the lease is free: never held, or released
	Epoch  uint64 // 0 when never held
	// Remaining is the time left before the store's expiry, measured by
	// the store when it answered; zero or negative once expired, zero when
	// free.
	Remaining time.Duration
}

// Held reports whether some node holds an unexpired lease.
func (s State) Held() bool { return s.Holder != "" && s.Remaining > 0 }
