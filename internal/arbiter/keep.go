package arbiter

import (
	"context"
	"errors"
	"time"
)

// Keep renews the lease l every t.Renew, starting t.Renew from now, until
// ctx is done or the lease is lost. After every attempt it calls update with
// the lease as the holder now knows it (the deadline moved on success, as it
// was on failure) and the attempt's error (nil, or matching ErrUnavailable).
// update runs on Keep's goroutine and must not block for long.
//
// Keep returns ErrLeaseLost once a renewal finds the lease passed on or
// released, and ctx.Err() when ctx is done; it never releases the lease.
// Each attempt is bounded by t.Renew, so a store that hangs costs at most
// one interval per attempt. The caller must still check Lease.Valid before
// every action as primary: Keep reports, it does not stop anything.
func Keep(ctx context.Context, a Arbiter, t Timing, l Lease, update func(Lease, error)) error {
	timer := time.NewTimer(t.Renew)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		// The next attempt is due t.Renew after this one started.
		timer.Reset(t.Renew)
		actx, cancel := context.WithTimeout(ctx, t.Renew)
		r, err := a.Renew(actx, l)
		cancel()
		if errors.Is(err, ErrLeaseLost) {
			return ErrLeaseLost
		}
		if err == nil {
			l = r
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		update(l, err)
	}
}
