package arbiter

import (
	"errors"
	"fmt"
	"time"
)

// Errors of the Arbiter seam, matched with errors.Is.
var (
	// ErrLeaseHeld: another node holds an unexpired lease. The error is a
	// *ConflictError naming the holder and epoch.
	ErrLeaseHeld = errors.New("arbiter lease held by another node")
	// ErrStaleEpoch: the store's epoch is greater than the epoch the caller
	// has seen. The error is a *ConflictError naming the store's epoch.
	ErrStaleEpoch = errors.New("arbiter epoch is newer than the epoch seen")
	// ErrLeaseLost: the caller's lease is no longer the store's lease; it
	// passed to a higher epoch or was released.
	ErrLeaseLost = errors.New("arbiter lease lost")
	// ErrUnavailable: the store could not be reached or did not answer in
	// time. Nothing is known about the lease; a lease already held stays
	// valid until its Deadline.
	ErrUnavailable = errors.New("arbiter unavailable")
)

// ConflictError is an Acquire refused because of the store's current lease.
// It matches ErrLeaseHeld or ErrStaleEpoch (Reason).
type ConflictError struct {
	Reason    error         // ErrLeaseHeld or ErrStaleEpoch
	Holder    string        // current holder, "" when free
	Epoch     uint64        // the store's epoch
	Seen      uint64        // the epoch the caller passed
	Remaining time.Duration // time left before the store's expiry
}

func (e *ConflictError) Error() string {
	if e.Reason == ErrLeaseHeld {
		return fmt.Sprintf("%v: held by %s at epoch %d for another %v", e.Reason, e.Holder, e.Epoch, e.Remaining.Round(time.Millisecond))
	}
	return fmt.Sprintf("%v: epoch %d, seen %d", e.Reason, e.Epoch, e.Seen)
}

// Unwrap returns Reason.
func (e *ConflictError) Unwrap() error { return e.Reason }

// Unavailable returns an error matching ErrUnavailable whose message is
// "arbiter unavailable: <op>: <detail>". The detail must already be free of
// credentials; also matches every error in also (a context error, say), but
// keeps none of their text.
func Unavailable(op, detail string, also ...error) error {
	return &unavailableError{msg: ErrUnavailable.Error() + ": " + op + ": " + detail, also: also}
}

type unavailableError struct {
	msg  string
	also []error
}

func (e *unavailableError) Error() string { return e.msg }

func (e *unavailableError) Unwrap() []error { return append([]error{ErrUnavailable}, e.also...) }
