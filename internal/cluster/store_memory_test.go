package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// envFlatRecords scales TestLogStoreMemoryFlat: the number of records it
// sends through the durable store. The default keeps `make test` (and -race)
// short; `make bench`'s memory step runs it at the acceptance's 500,000.
const envFlatRecords = "MESH_TEST_FLAT_RECORDS"

// flatSample is one sample of TestLogStoreMemoryFlat.
type flatSample struct {
	records    int64  // submissions made when it was taken
	heap       uint64 // live heap after a collection
	goroutines int
	held       int // records in the registry
}

// TestLogStoreMemoryFlat sends records of fast count-1 work through a node
// with the durable log store (each submission fsynced before created, each
// record completing and then evicted by the retention bound) and samples the
// live heap (after a collection) and the goroutine count at even intervals.
// Once the retention window is full the node holds a fixed number of records,
// so the later samples must stay within a bound of the early ones: nothing
// per record (log index, compaction state, waiters, goroutines) may
// accumulate. The bounds are on sizes and counts, never on time.
func TestLogStoreMemoryFlat(t *testing.T) {
	total := int64(20_000)
	if v := os.Getenv(envFlatRecords); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 10_000 {
			t.Fatalf("%s=%q: want a number of records, at least 10000", envFlatRecords, v)
		}
		total = n
	}
	const (
		retained   = 1000
		submitters = 8
		samples    = 20
		// heapSlack (plus a quarter of the early heap) bounds how far a
		// later sample's heap may rise above the highest early one:
		// runtime caches, map growth jitter, the diagnostics ring filling;
		// never a per-record cost (at the default scale 64 bytes a record
		// would be 1.2 MiB, at 500,000 records 16 bytes would be 8 MiB).
		heapSlack = 1 << 20
		// goroutineSlack: runtime helpers and a compaction in flight.
		goroutineSlack = 4
	)
	reg, decl := typedRegistry(t, FastJob)
	cfg := Config{MaxRunningWork: 8, RetainedRecords: retained, ContinuityStore: StoreLog, StateDir: t.TempDir(), Logger: testLogger(t)}
	n := startNode(t, cfg, withHandlers(reg))
	if n.store == nil {
		t.Fatal("the node runs without the log store")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Minute)
	defer cancel()

	sample := func(records int64) flatSample {
		// Settle: every submission made so far has completed and no
		// compaction runs, so the sample counts neither executions in
		// flight nor a compaction's goroutine and the live set it copies
		// (both transient; what stays is what is measured).
		eventually(t, time.Minute, func() error {
			if p := len(n.reg.PendingRecords()); p > 0 {
				return fmt.Errorf("%d records pending", p)
			}
			if n.store.Stats().Compacting {
				return errors.New("a compaction runs")
			}
			return nil
		})
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return flatSample{records: records, heap: ms.HeapAlloc, goroutines: runtime.NumGoroutine(), held: len(n.reg.Records())}
	}

	var next atomic.Int64
	var failure atomic.Pointer[error]
	burst := func(upto int64) {
		var wg sync.WaitGroup
		for range submitters {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= upto {
						next.Add(-1)
						return
					}
					key := "flat-" + strconv.FormatInt(i, 10)
					res, err := n.Submit(ctx, decl, key, strconv.FormatInt(i, 10))
					if err != nil || res.Outcome != OutcomeCreated {
						err = fmt.Errorf("submit %s: %+v, %v", key, res, err)
						failure.Store(&err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := failure.Load(); err != nil {
			t.Fatal(*err)
		}
	}

	step := total / samples
	var got []flatSample
	start := time.Now()
	for k := int64(1); k <= samples; k++ {
		burst(k * step)
		got = append(got, sample(k*step))
	}
	st := n.store.Stats()
	t.Logf("%d records through the log store in %v: %d puts, %d fsyncs, %d compactions", next.Load(), time.Since(start).Round(time.Millisecond), st.Puts, st.Log.Syncs, st.Compactions)
	for _, s := range got {
		t.Logf("after %7d records: heap %6d KiB, %3d goroutines, %d records held", s.records, s.heap>>10, s.goroutines, s.held)
	}
	if last, ok := n.Record("flat-" + strconv.FormatInt(next.Load()-1, 10)); !ok || last.Phase != continuity.PhaseCompleted {
		t.Fatalf("last record %+v (found %v), want completed", last, ok)
	}
	if ev, ok := n.Record("flat-0"); ok {
		t.Fatalf("the first record is still held (%+v): the retention bound evicted nothing", ev)
	}

	// Early: the samples once the retention window has filled (the
	// first sample is taken after total/samples ≥ 500 records; the window
	// is full from retained records on, so from the third sample at the
	// default scale and from the first at larger ones).
	early := got[:5]
	if early[0].records < retained {
		early = got[2:6]
	}
	var earlyHeap uint64
	var earlyGoroutines int
	for _, s := range early {
		earlyHeap, earlyGoroutines = max(earlyHeap, s.heap), max(earlyGoroutines, s.goroutines)
	}
	for _, s := range got {
		if s.held > retained+submitters {
			t.Errorf("after %d records the node holds %d, retention bound %d", s.records, s.held, retained)
		}
	}
	heapBound := earlyHeap + earlyHeap/4 + heapSlack
	for _, s := range got[len(got)/2:] {
		if s.heap > heapBound {
			t.Errorf("after %d records the heap is %d KiB, early samples at most %d KiB (bound %d KiB)", s.records, s.heap>>10, earlyHeap>>10, heapBound>>10)
		}
		if s.goroutines > earlyGoroutines+goroutineSlack {
			t.Errorf("after %d records %d goroutines, early samples at most %d (+%d allowed)", s.records, s.goroutines, earlyGoroutines, goroutineSlack)
		}
	}
}
