package continuity

import (
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// A sink slower than the transitions does not let the entries waiting for
// it grow without bound: producers wait for the deliverer once the queue is
// long, and every entry still reaches the sink once, in order.
func TestSlowSinkBoundsTheDeliveryQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []string
		var r *Registry
		longest := 0
		sink := func(e Entry) {
			time.Sleep(time.Millisecond) // a slow log writer
			mu.Lock()
			got = append(got, e.RequestKey)
			mu.Unlock()
			r.deliverMu.Lock()
			longest = max(longest, len(r.deliverQ))
			r.deliverMu.Unlock()
		}
		r = NewRegistry(Options{Self: "a", Sink: sink, Diag: NewDiagnostics(16), Now: time.Now})
		const producers, each = 8, 3000
		var wg sync.WaitGroup
		for p := range producers {
			wg.Go(func() {
				for i := range each {
					r.Emit(Entry{Transition: "test_entry", RequestKey: string(rune('a'+p)) + "-" + strconv.Itoa(i)})
				}
			})
		}
		wg.Wait()
		synctest.Wait()
		if len(got) != producers*each {
			t.Fatalf("the sink saw %d entries, want %d", len(got), producers*each)
		}
		// Per producer, in its order.
		next := map[byte]int{}
		for _, k := range got {
			if want := string(rune(k[0])) + "-" + strconv.Itoa(next[k[0]]); k != want {
				t.Fatalf("entry %s delivered out of order, want %s", k, want)
			}
			next[k[0]]++
		}
		// The queue may pass the bound by what producers add while their
		// bounded waits run out, never by the whole burst.
		if longest > 2*maxDeliverQueue {
			t.Fatalf("delivery queue reached %d entries, bound %d", longest, maxDeliverQueue)
		}
		t.Logf("longest delivery queue %d entries (bound %d) for %d entries", longest, maxDeliverQueue, producers*each)
	})
}
