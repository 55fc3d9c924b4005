package logstore

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/cputime"
	"meshgo.dev/mesh/meshtest/storetest"
)

// BenchmarkPutSync measures the acknowledgement path of the durable store:
// submitters that each Put a record (under one lock, as the registry holds)
// and Sync it, for 1, 8 and 64 concurrent submitters. records/fsync is how
// many acknowledgements one group commit carried; wait/fsync is the mean
// Sync wait over the mean fsync. The busy=1 runs add one goroutine per CPU
// that keeps it busy, as a loaded server's request goroutines do: the
// store's goroutines then queue for a CPU after each wake-up and fsync.
func BenchmarkPutSync(b *testing.B) {
	for _, busy := range []bool{false, true} {
		for _, submitters := range []int{1, 8, 64} {
			name := fmt.Sprintf("submitters=%d", submitters)
			if busy {
				name += "/busy=1"
			}
			b.Run(name, func(b *testing.B) { benchPutSync(b, submitters, busy) })
		}
	}
}

func benchPutSync(b *testing.B, submitters int, busy bool) {
	s, _, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if busy {
		defer keepCPUsBusy()()
	}
	var regMu sync.Mutex
	var next atomic.Int64
	recs := make([]continuity.Record, 64)
	for i := range recs {
		recs[i] = storetest.Full(fmt.Sprintf("bench-%d", i), i, continuity.PhaseSubmitted)
	}
	st0 := s.Stats()
	cpu0 := cputime.Process()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := recs[w%len(recs)]
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				rec.RequestKey = fmt.Sprintf("bench-%d-%d", w, i)
				regMu.Lock()
				err := s.Put(rec)
				regMu.Unlock()
				if err == nil {
					err = s.Sync()
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if !busy {
		b.ReportMetric(float64((cputime.Process()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	st := s.Stats()
	syncs := st.Log.Syncs - st0.Log.Syncs
	if syncs > 0 {
		b.ReportMetric(float64(b.N)/float64(syncs), "records/fsync")
	}
	if waited := st.Waited - st0.Waited; waited > 0 && syncs > 0 {
		wait := float64(st.WaitTime-st0.WaitTime) / float64(waited)
		fsync := float64(st.Log.SyncTime-st0.Log.SyncTime) / float64(syncs)
		b.ReportMetric(wait/fsync, "wait/fsync")
		b.ReportMetric(fsync/1e3, "fsync-µs")
	}
}

// keepCPUsBusy starts goroutines that keep every CPU busy the way a loaded
// server's request goroutines do: short runs of work (about 20 µs), each
// followed by a yield, so a goroutine woken (a Sync whose write ended, the
// writer) waits its turn for a CPU. It returns the function that stops
// them.
func keepCPUsBusy() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				for i := range 20000 {
					x += i ^ x
				}
				busySink.Add(int64(x & 1))
				runtime.Gosched()
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}

var busySink atomic.Int64
