package recordlog

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/cputime"
)

// BenchmarkDiskOverlap asks whether the disk under the test's temporary
// directory completes more flushes per second when more than one is in
// flight: each of the writers overwrites 4 KiB of its own preallocated
// region of one file (pwrite, as a group commit does) and calls fdatasync,
// then does it again. If two writers give no more fsyncs per second than
// one, a second group commit started while the first is still syncing
// would only queue behind it. It reports fsyncs per second, the median and
// 99th percentile of one pwrite plus fdatasync, and the CPU time (user and
// system, of the whole process) per pwrite plus fdatasync: what a group
// commit costs the node whatever it carries.
func BenchmarkDiskOverlap(b *testing.B) {
	const (
		block  = 4096
		region = 16 << 20
	)
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("writers=%d", n), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "overlap"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			// Preallocate every region with written bytes, as the log's
			// extension does, so each commit overwrites space the file has.
			filler := make([]byte, 1<<20)
			for i := range filler {
				filler[i] = 0xA5
			}
			for off := int64(0); off < int64(n)*region; off += int64(len(filler)) {
				if _, err := f.WriteAt(filler, off); err != nil {
					b.Fatal(err)
				}
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			lat := make([][]time.Duration, n)
			var wg sync.WaitGroup
			b.ResetTimer()
			start, cpu0 := time.Now(), cputime.Process()
			for g := range n {
				wg.Go(func() {
					buf := make([]byte, block)
					base := int64(g) * region
					for k := int64(0); ; k++ {
						if next.Add(1) > int64(b.N) {
							return
						}
						t0 := time.Now()
						if _, err := f.WriteAt(buf, base+(k*block)%region); err != nil {
							b.Error(err)
							return
						}
						if err := datasync(f); err != nil {
							b.Error(err)
							return
						}
						lat[g] = append(lat[g], time.Since(t0))
					}
				})
			}
			wg.Wait()
			elapsed, cpu := time.Since(start), cputime.Process()-cpu0
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "fsyncs/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/fsync")
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}
