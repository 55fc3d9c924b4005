package recordlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAppend measures group commit on the disk under the test's
// temporary directory (set TMPDIR to measure another): each appender calls
// Append with one 200-byte entry and waits for it to be durable before the
// next. It reports appends per second, fsyncs per append, and the median
// and 99th percentile time an Append waits.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("appenders=%d", n), func(b *testing.B) {
			l, _, err := Open(b.TempDir(), Options{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			value := make([]byte, 200)
			var next atomic.Int64
			lat := make([][]time.Duration, n)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for g := range n {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						t0 := time.Now()
						if err := l.Append(context.Background(), Entry{Kind: KindPut, Key: "key-" + strconv.FormatInt(i, 10), Value: value}); err != nil {
							b.Error(err)
							return
						}
						lat[g] = append(lat[g], time.Since(t0))
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			st := l.Stats()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
			b.ReportMetric(float64(st.Syncs)/float64(b.N), "fsyncs/append")
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}

// BenchmarkDiskFsync is the disk's own cost of what one group commit does:
// append 4 KiB to a file and fsync it. It reports the median and 99th
// percentile of the pair.
func BenchmarkDiskFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkCompact measures one compaction of 20,000 entries of 500 bytes
// over 2,000 keys (ten versions of each, the last one kept): the CPU and
// allocations compaction takes from a busy node.
func BenchmarkCompact(b *testing.B) {
	benchCompact(b, 20000, func(i int) string { return fmt.Sprintf("key-%d", i%2000) },
		func(string) bool { return true }, 2000)
}

// BenchmarkCompactMostlyDead is the shape a busy node's log has: 40,000
// entries of 500 bytes, each of its own key (one per request), of which the
// store still holds one in ten (its retained window). live answers from a
// map, as the record store's does.
func BenchmarkCompactMostlyDead(b *testing.B) {
	key := func(i int) string { return fmt.Sprintf("request-key-%08d", i) }
	live := map[string]struct{}{}
	for i := 36000; i < 40000; i++ {
		live[key(i)] = struct{}{}
	}
	benchCompact(b, 40000, key, func(k string) bool { _, ok := live[k]; return ok }, 4000)
}

// benchCompact times one Compact(live) per iteration of a fresh log of n
// entries of 500 bytes, entry i under key(i), committed 100 at a time; the
// compaction must keep kept entries.
func benchCompact(b *testing.B, n int, key func(int) string, live func(string) bool, kept int64) {
	value := make([]byte, 500)
	for b.Loop() {
		b.StopTimer()
		l, _, err := Open(b.TempDir(), Options{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		var f Frames
		for i := range n {
			_ = f.EndPut(append(f.BeginPut(key(i)), value...))
			if f.Entries() == 100 {
				if err := l.CommitFrames(&f); err != nil {
					b.Fatal(err)
				}
				f.Reset()
			}
		}
		b.StartTimer()
		st, err := l.Compact(live)
		if err != nil || st.EntriesKept != kept {
			b.Fatalf("Compact = %+v, %v; want %d entries kept", st, err, kept)
		}
		b.StopTimer()
		l.Close()
		b.StartTimer()
	}
}
