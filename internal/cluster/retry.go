package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// retryPolicy is the Retry option of declared work: max == 0 never retries.
type retryPolicy struct {
	max             int
	initial, maxGap time.Duration
}

// WorkRetry makes declared work run again when it returns an error: up to max
// more times, waiting initial before the first retry and doubling the wait
// up to maxDelay. Each retry is a new attempt of the same record (a
// work_retry diagnostic names both attempts); the record is rejected with
// the last error once the retries are spent. A panic is never retried, nor is
// an input typed work cannot decode or an output it cannot encode. The count
// of retries lives on the node running the work: after a failover the
// survivor's re-run starts counting again.
//
// Work panics when max is negative, initial is not positive or maxDelay is
// below initial.
func WorkRetry(max int, initial, maxDelay time.Duration) WorkOption {
	return WorkOption{func(o *workOptions) { o.retry = retryPolicy{max: max, initial: initial, maxGap: maxDelay} }}
}

func (p retryPolicy) validate() error {
	switch {
	case p == retryPolicy{}:
		return nil
	case p.max < 0:
		return fmt.Errorf("retry count must not be negative, got %d", p.max)
	case p.initial <= 0:
		return fmt.Errorf("retry delay must be positive, got %v", p.initial)
	case p.maxGap < p.initial:
		return fmt.Errorf("maximum retry delay %v is below the initial delay %v", p.maxGap, p.initial)
	}
	return nil
}

// delay is the wait before retry number try (0 for the first).
func (p retryPolicy) delay(try int) time.Duration {
	d := p.initial
	for range try {
		if d >= p.maxGap/2 {
			return p.maxGap
		}
		d *= 2
	}
	return min(d, p.maxGap)
}

// finalError marks an error that retrying cannot change: a panic, an input
// that does not decode, an output that does not encode.
type finalError struct{ error }

func (e finalError) Unwrap() error { return e.error }

// retryable reports whether work that failed with err on its try-th retry
// (0: the first run) runs again under p.
func (p retryPolicy) retryable(err error, try int) bool {
	var final finalError
	return err != nil && try < p.max && !errors.As(err, &final)
}

// retryWork waits out the backoff off the work slots (a timer, not a held
// slot), then moves rec to a new attempt and runs it again here. When the
// record moved on meanwhile, the failure is recorded as finish would (the
// registry then refuses it); a node that is stopping or was fenced meanwhile
// leaves the record as a crash would, for the pair to carry on. It reports
// whether the timer was set; the attempt's in-flight entry is then the
// timer's to remove (the attempt stays this node's while it waits).
func (n *Node) retryWork(h *handler, rec continuity.Record, gen uint64, try int, cause error) bool {
	delay := h.retry.delay(try)
	if !n.running.add() {
		return false // stopping: the record stays pending, as on a crash, for the peer to recover
	}
	var (
		once    sync.Once
		mu      sync.Mutex // guards unwatch until both are set
		unwatch func() bool
	)
	fire := func() {
		once.Do(func() {
			mu.Lock()
			unwatch()
			mu.Unlock()
			n.retryFired(h, rec, gen, try, cause, delay)
		})
	}
	mu.Lock()
	t := time.AfterFunc(delay, fire)
	// A stopping node fires the timer at once, so Stop does not wait out the
	// backoff: the fired retry sees the stop and leaves the record pending.
	unwatch = context.AfterFunc(n.ctx, func() {
		if t.Stop() {
			fire()
		}
	})
	mu.Unlock()
	return true
}

// retryFired runs when retryWork's backoff ends (or the node stops).
func (n *Node) retryFired(h *handler, rec continuity.Record, gen uint64, try int, cause error, delay time.Duration) {
	defer n.running.done()
	defer n.inflight.done(rec.RequestKey, rec.Attempt)
	if n.ctx.Err() != nil {
		return // stopping: the record stays pending, as on a crash, for the peer to recover
	}
	if !n.awaitAuthority(n.ctx, gen) {
		n.superseded(h, rec)
		return
	}
	next, err := n.recordRetry(rec,
		continuity.KV{Key: "runtime_name", Value: h.name},
		continuity.KV{Key: "retry", Value: strconv.Itoa(try + 1)},
		continuity.KV{Key: "max_retries", Value: strconv.Itoa(h.retry.max)},
		continuity.KV{Key: "delay_ms", Value: strconv.FormatInt(delay.Milliseconds(), 10)},
		continuity.KV{Key: "error", Value: cause.Error()})
	if err != nil {
		n.finish(rec, cause, gen, nil)
		return
	}
	n.runWorkTry(h, next, gen, try+1)
}
