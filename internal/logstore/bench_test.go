package logstore

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/meshtest/storetest"
)

// BenchmarkPutSync measures the acknowledgement path of the durable store:
// submitters that each Put a record (under one lock, as the registry holds)
// and Sync it, for 1, 8 and 64 concurrent submitters. records/fsync is how
// many acknowledgements one group commit carried.
func BenchmarkPutSync(b *testing.B) {
	for _, submitters := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("submitters=%d", submitters), func(b *testing.B) {
			s, _, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var regMu sync.Mutex
			var next atomic.Int64
			recs := make([]continuity.Record, 64)
			for i := range recs {
				recs[i] = storetest.Full(fmt.Sprintf("bench-%d", i), i, continuity.PhaseSubmitted)
			}
			before := s.Stats().Log.Syncs
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
			if syncs := s.Stats().Log.Syncs - before; syncs > 0 {
				b.ReportMetric(float64(b.N)/float64(syncs), "records/fsync")
			}
		})
	}
}
