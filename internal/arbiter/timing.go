package arbiter

import (
	"errors"
	"fmt"
	"time"
)

// Timing is the lease timing shared by the holder and the store. See the
// package doc for how the three values relate.
type Timing struct {
	TTL    time.Duration // lease length, added on the store's clock at each write
	Renew  time.Duration // interval between renewals by the holder
	Margin time.Duration // subtracted from the holder's local deadline
}

// Defaults of DefaultTiming.
const (
	DefaultTTL    = 2 * time.Second
	DefaultRenew  = 500 * time.Millisecond
	DefaultMargin = 300 * time.Millisecond
)

// DefaultTiming returns the timing used when none is configured.
func DefaultTiming() Timing {
	return Timing{TTL: DefaultTTL, Renew: DefaultRenew, Margin: DefaultMargin}
}

// Validate reports every problem with t at once (errors.Join): each value
// must be positive, Margin less than TTL, and 2·Renew at most TTL − Margin so
// that a holder gets two renewal attempts before its deadline.
func (t Timing) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"TTL", t.TTL}, {"Renew", t.Renew}, {"Margin", t.Margin}} {
		if f.d <= 0 {
			errs = append(errs, fmt.Errorf("invalid arbiter timing: %s must be positive, got %v", f.name, f.d))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if t.Margin >= t.TTL {
		errs = append(errs, fmt.Errorf("invalid arbiter timing: Margin %v must be less than TTL %v", t.Margin, t.TTL))
	} else if 2*t.Renew > t.TTL-t.Margin {
		errs = append(errs, fmt.Errorf("invalid arbiter timing: Renew %v must be at most half of TTL − Margin (%v)", t.Renew, t.TTL-t.Margin))
	}
	return errors.Join(errs...)
}

// Deadline is the local deadline of a lease written by a request that
// started at local time start.
func (t Timing) Deadline(start time.Time) time.Time { return start.Add(t.TTL - t.Margin) }
