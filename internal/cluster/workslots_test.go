package cluster

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// gateJobs is the shared state of GatedJob: how many run now, the most that
// ever ran at once, and the gate each run waits on.
var gateJobs struct {
	running, peak atomic.Int64
	started       chan struct{}
	gate          chan struct{}
}

// GatedJob counts concurrent runs and blocks until released through the gate.
func GatedJob(ctx context.Context, in int) (int, error) {
	cur := gateJobs.running.Add(1)
	for {
		p := gateJobs.peak.Load()
		if cur <= p || gateJobs.peak.CompareAndSwap(p, cur) {
			break
		}
	}
	gateJobs.started <- struct{}{}
	<-gateJobs.gate
	gateJobs.running.Add(-1)
	return in, nil
}

// FastJob returns at once.
func FastJob(ctx context.Context, in int) (int, error) { return in + 1, nil }

// typedRegistry declares typed work fn (count 1) outside the package
// registry; typed work does not run at startup.
func typedRegistry(t *testing.T, fn any) (*registry, Declaration) {
	t.Helper()
	name, err := runtimeName(fn)
	if err != nil {
		t.Fatal(err)
	}
	h, err := newWorkHandler(name, fn, workOptions{count: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &registry{handlers: map[string]*handler{name: h}}, Declaration{RuntimeName: name, ReplicationCount: 1}
}

func TestMaxRunningWorkHonoured(t *testing.T) {
	// As many submissions as the slots and the queue room hold.
	const limit, total = 3, 3 * (1 + workQueuePerSlot)
	gateJobs.started = make(chan struct{}, total)
	gateJobs.gate = make(chan struct{})
	gateJobs.running.Store(0)
	gateJobs.peak.Store(0)
	reg, decl := typedRegistry(t, GatedJob)
	n := startNode(t, Config{MaxRunningWork: limit, Logger: testLogger(t)}, withHandlers(reg))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i := range total {
		res, err := n.Submit(ctx, decl, fmt.Sprintf("gated-%d", i), strconv.Itoa(i))
		if err != nil || res.Outcome != OutcomeCreated {
			t.Fatalf("submit %d: %+v, %v", i, res, err)
		}
	}
	// Every submission returned: each execution holds a slot or waits in
	// the queue, none is lost.
	if q := n.slots.queued(); q != total-limit {
		t.Fatalf("%d executions queued, want %d", q, total-limit)
	}
	// The queue is full: one more submission waits for room, and one whose
	// context ends first is refused with work_queue_full, nothing stored.
	done, stop := context.WithCancel(ctx)
	stop()
	if _, err := n.Submit(done, decl, "gated-over", "0"); RefusalReason(err) != string(continuity.ReasonWorkQueueFull) {
		t.Fatalf("submission over the queue room: %v, want %s", err, continuity.ReasonWorkQueueFull)
	}
	if _, ok := n.Record("gated-over"); ok {
		t.Fatal("a refused submission was stored")
	}
	waiting := make(chan error, 1)
	go func() {
		_, err := n.Submit(ctx, decl, "gated-waiting", "0")
		waiting <- err
	}()
	for range limit {
		<-gateJobs.started
	}
	// Release one run at a time: each frees one slot, which takes exactly
	// the next queued execution.
	for i := range total + 1 {
		if got := gateJobs.running.Load(); got > limit {
			t.Fatalf("%d executions running, limit %d", got, limit)
		}
		gateJobs.gate <- struct{}{}
		if i == 0 {
			// The first freed slot took a queued execution, which made
			// room for the waiting submission.
			if err := <-waiting; err != nil {
				t.Fatalf("waiting submission: %v", err)
			}
		}
		if i+limit < total+1 {
			<-gateJobs.started
		}
	}
	for i := range total {
		if _, err := awaitTyped(ctx, n, decl, fmt.Sprintf("gated-%d", i)); err != nil {
			t.Fatalf("await %d: %v", i, err)
		}
	}
	if p := gateJobs.peak.Load(); p != limit {
		t.Fatalf("at most %d executions ran at once, want exactly the limit %d", p, limit)
	}
	if q := n.slots.queued(); q != 0 {
		t.Fatalf("%d executions still queued", q)
	}
}

// TestBoundedSubmission submits 100,000 records of fast work (20,000 under
// -short) and checks that the goroutines and the heap stay within bounds
// derived from the running limit, the queue room and the retention bound,
// during the burst and after.
func TestBoundedSubmission(t *testing.T) {
	// Under -short (the stress passes, which repeat every test) 20,000
	// submissions: still twenty times the retained window.
	total := int64(100_000)
	if testing.Short() {
		total = 20_000
	}
	const (
		limit      = 8
		retained   = 1000
		submitters = 4
		sample     = 5_000
		// perRecord is a generous budget for one record held in memory
		// (record, registry and retention index entries, queued closure).
		perRecord = 4 << 10
		// fixed covers everything else that may move between samples:
		// the diagnostics ring, metrics, map buckets, runtime caches (larger
		// under -race).
		fixed = 32 << 20
	)
	reg, decl := typedRegistry(t, FastJob)
	n := startNode(t, Config{MaxRunningWork: limit, RetainedRecords: retained, Logger: testLogger(t)}, withHandlers(reg))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	// The heap the collection just marked live: what the node holds, not
	// what goroutines allocated between the collection and the reading
	// (with GOMAXPROCS=1 and a busy machine that was up to 100 MiB).
	heap := func() uint64 {
		runtime.GC()
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	baseGoroutines := runtime.NumGoroutine()
	baseHeap := heap()
	// At most limit slots plus the submitters; slack for runtime helpers.
	maxGoroutines := baseGoroutines + limit + submitters + 4
	// Records alive at once: the retained window, the running and queued
	// executions, and one submission in flight per submitter.
	maxRecords := retained + limit + n.slots.room + submitters
	maxHeap := baseHeap + uint64(maxRecords)*perRecord + fixed

	var next atomic.Int64
	var mu sync.Mutex // guards peakGoroutines, peakHeap, peakRecords, failure
	var peakGoroutines, peakRecords int
	var peakHeap uint64
	var heaps []uint64 // every sample, in order
	var failure error
	check := func() {
		g := runtime.NumGoroutine()
		recs := len(n.reg.Records())
		h := heap()
		mu.Lock()
		defer mu.Unlock()
		peakGoroutines, peakRecords, peakHeap = max(peakGoroutines, g), max(peakRecords, recs), max(peakHeap, h)
		heaps = append(heaps, h)
	}
	var wg sync.WaitGroup
	for range submitters {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				res, err := n.Submit(ctx, decl, "burst-"+strconv.FormatInt(i, 10), strconv.FormatInt(i, 10))
				if err != nil || res.Outcome != OutcomeCreated {
					mu.Lock()
					failure = fmt.Errorf("submit %d: %+v, %v", i, res, err)
					mu.Unlock()
					return
				}
				if i%sample == 0 {
					check()
				}
			}
		})
	}
	wg.Wait()
	if failure != nil {
		t.Fatal(failure)
	}
	// After the burst every record completes; none is lost.
	eventually(t, time.Minute, func() error {
		if p := len(n.reg.PendingRecords()); p > 0 {
			return fmt.Errorf("%d records pending", p)
		}
		return nil
	})
	last, ok := n.Record("burst-" + strconv.FormatInt(total-1, 10))
	if !ok || last.Phase != continuity.PhaseCompleted {
		t.Fatalf("last record %+v (found %v), want completed", last, ok)
	}
	check()
	afterGoroutines := runtime.NumGoroutine()
	t.Logf("goroutines: base %d, peak %d (bound %d), after %d; heap: base %d KiB, peak %d KiB (bound %d KiB); records held: peak %d (bound %d)",
		baseGoroutines, peakGoroutines, maxGoroutines, afterGoroutines, baseHeap>>10, peakHeap>>10, maxHeap>>10, peakRecords, maxRecords)
	if peakGoroutines > maxGoroutines {
		t.Errorf("goroutines peaked at %d, bound %d (base %d + limit %d + submitters %d + 4)", peakGoroutines, maxGoroutines, baseGoroutines, limit, submitters)
	}
	if peakRecords > maxRecords {
		t.Errorf("records held peaked at %d, bound %d", peakRecords, maxRecords)
	}
	t.Logf("heap samples (KiB): %v", kib(heaps))
	if peakHeap > maxHeap {
		t.Errorf("heap peaked at %d KiB, bound %d KiB", peakHeap>>10, maxHeap>>10)
	}
	if afterGoroutines > baseGoroutines+4 {
		t.Errorf("%d goroutines after the burst drained, base %d", afterGoroutines, baseGoroutines)
	}
}

// Work recovered after its owner's loss takes a work slot like any other
// execution: on a survivor whose only slot is busy it waits, pending and in
// flight (so it is not recovered twice), and runs once the slot frees.
func TestRecoveredWorkTakesAWorkSlot(t *testing.T) {
	c := newAckCluster(t)
	pcfg, scfg := c.config("primary", "127.0.0.1", RolePrimary), c.config("standby", "::1", RoleStandby)
	scfg.MaxRunningWork = 1
	p, s := c.start(pcfg), c.start(scfg)
	waitLinked(t, p, s)
	// Startup work ends first: recovered after the crash, it would queue too.
	eventually(t, 10*time.Second, func() error {
		if r, ok := s.Record(continuity.StartupKeyPrefix + gatedMirrored); !ok || r.Phase != continuity.PhaseCompleted {
			return fmt.Errorf("startup work of %s not completed on %s: %+v", gatedMirrored, s.Name(), r)
		}
		for _, n := range []*Node{p, s} {
			if pending := n.reg.PendingRecords(); len(pending) > 0 {
				return fmt.Errorf("%s holds %d pending records", n.Name(), len(pending))
			}
		}
		return nil
	})
	ctx := t.Context()
	busy := keyPlaced(t, "slot-busy", s.Name(), p, s)
	lost := keyPlaced(t, "slot-lost", p.Name(), p, s)
	for _, key := range []string{busy, lost} {
		if res, err := p.Submit(ctx, ackDecl(gatedMirrored), key, "payload"); err != nil || res.Outcome != OutcomeCreated {
			t.Fatalf("submit %s: %+v, %v", key, res, err)
		}
	}
	started := map[string]bool{}
	for range 2 {
		started[c.awaitStart().RequestKey] = true
	}
	if !started[busy] || !started[lost] {
		t.Fatalf("started %v, want %s and %s", started, busy, lost)
	}
	p.crash()
	waitAlone(t, s)
	rec := waitRecordOf(t, s, lost, func(r continuity.Record) error {
		if r.OwnerNode != s.Name() || !r.Pending() {
			return fmt.Errorf("survivor record %+v", r)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		if q := s.slots.queued(); q != 1 {
			return fmt.Errorf("%d executions queued on the survivor, want the recovered one", q)
		}
		return nil
	})
	if !s.inflight.hasAttempt(lost, rec.Attempt) {
		t.Fatalf("queued recovered attempt %s is not in flight", rec.AttemptID())
	}
	if runs := c.work.executions(lost); len(runs) != 1 {
		t.Fatalf("recovered work ran before a slot freed: %+v", runs)
	}
	c.work.release()
	if id := c.awaitStart(); id.RequestKey != lost || id.AttemptID != rec.AttemptID() {
		t.Fatalf("next execution %+v, want the recovered attempt %s", id, rec.AttemptID())
	}
	for _, key := range []string{busy, lost} {
		waitRecordOf(t, s, key, func(r continuity.Record) error {
			if r.Phase != continuity.PhaseCompleted {
				return fmt.Errorf("record %+v", r)
			}
			return nil
		})
	}
}

func kib(b []uint64) []uint64 {
	out := make([]uint64, len(b))
	for i, v := range b {
		out[i] = v >> 10
	}
	return out
}
