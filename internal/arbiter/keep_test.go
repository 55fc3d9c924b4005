package arbiter

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// A holder that keeps renewing keeps its lease; when the store becomes
// unreachable its lease runs out at the deadline, the other node wins only
// after the store's expiry, and the old holder's Keep ends with
// ErrLeaseLost once the store answers again.
func TestKeep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMemory(DefaultTiming(), nil) // time.Now: the bubble's clock
		l, err := m.Acquire(t.Context(), "a@h:1", 0)
		if err != nil {
			t.Fatal(err)
		}
		type update struct {
			l   Lease
			err error
		}
		updates := make(chan update, 100)
		done := make(chan error, 1)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() {
			done <- Keep(ctx, m, DefaultTiming(), l, func(l Lease, err error) { updates <- update{l, err} })
		}()
		var last Lease
		drain := func() (ok, failed int) {
			for {
				select {
				case u := <-updates:
					last = u.l
					if u.err == nil {
						ok++
					} else if errors.Is(u.err, ErrUnavailable) {
						failed++
					} else {
						t.Fatalf("update error %v", u.err)
					}
				default:
					return ok, failed
				}
			}
		}
		time.Sleep(10 * DefaultTTL)
		synctest.Wait()
		if ok, failed := drain(); ok != 40 || failed != 0 {
			t.Fatalf("in 10 TTLs: %d renewals, %d failures; want 40 and 0", ok, failed)
		}
		if !last.Valid(time.Now()) || last.Epoch != l.Epoch {
			t.Fatalf("lease after renewals: %+v, want valid at epoch %d", last, l.Epoch)
		}

		m.SetAvailable(false)
		down := time.Now()
		for last.Valid(time.Now()) {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
			drain()
		}
		if lasted := time.Since(down); lasted > DefaultTTL-DefaultMargin {
			t.Fatalf("lease stayed valid %v after the store went away, more than TTL − Margin", lasted)
		}
		// At the store's expiry the store comes back, and the other node
		// takes the lease before Keep's next attempt (the bubble's clock
		// stands still until every goroutine blocks).
		time.Sleep(DefaultMargin)
		synctest.Wait()
		m.SetAvailable(true)
		lb, err := m.Acquire(context.Background(), "b@h:2", l.Epoch)
		if err != nil {
			t.Fatalf("other node after the expiry: %v", err)
		}
		if lb.Epoch != l.Epoch+1 {
			t.Fatalf("epoch %d, want %d", lb.Epoch, l.Epoch+1)
		}
		time.Sleep(DefaultRenew)
		synctest.Wait()
		select {
		case err := <-done:
			if !errors.Is(err, ErrLeaseLost) {
				t.Fatalf("Keep returned %v, want ErrLeaseLost", err)
			}
		default:
			t.Fatal("Keep still running after the lease passed on")
		}
	})
}

func TestKeepStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMemory(DefaultTiming(), nil)
		l, _ := m.Acquire(t.Context(), "a@h:1", 0)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- Keep(ctx, m, DefaultTiming(), l, func(Lease, error) {}) }()
		time.Sleep(3 * DefaultRenew)
		cancel()
		synctest.Wait()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Keep returned %v, want context.Canceled", err)
		}
		if st, _ := m.Observe(context.Background()); st.Holder != "a@h:1" {
			t.Fatalf("Keep released the lease: %+v", st)
		}
	})
}
