package recordlog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

func liveEven(key string) bool {
	var n int
	fmt.Sscanf(key, "k%d", &n)
	return n%2 == 0
}

// history builds a log in dir whose compaction has something to do: keys
// written several times, some evicted, spread over many small segments, with
// an earlier compaction's segment among them. It returns the folded state.
func history(t *testing.T, dir string) state {
	t.Helper()
	want := state{}
	l, _, _ := openLog(t, dir, Options{SegmentSize: 300})
	round := func(r int) {
		for i := range 30 {
			e := put(fmt.Sprintf("k%02d", i), fmt.Sprintf("v%d-%d", r, i))
			if i%5 == 0 && r > 0 {
				e = evict(e.Key)
			}
			mustAppend(t, l, e)
			want.apply(e)
		}
	}
	round(0)
	if _, err := l.Compact(func(k string) bool { return k != "k01" }); err != nil {
		t.Fatal(err)
	}
	delete(want, "k01")
	round(1)
	round(2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

func TestCompact(t *testing.T) {
	dir := t.TempDir()
	full := history(t, dir)
	before := segmentFiles(t, dir)
	l, _, _ := openLog(t, dir, Options{SegmentSize: 300})
	st, err := l.Compact(liveEven)
	if err != nil {
		t.Fatal(err)
	}
	want := full.filter(liveEven)
	if st.Segments != len(before) || st.EntriesKept != int64(len(want)) || st.EntriesRead <= st.EntriesKept || st.BytesAfter >= st.BytesBefore {
		t.Fatalf("CompactStats %+v for %d segments and %d live keys", st, len(before), len(want))
	}
	// The compacted segment plus the new, empty active segment.
	files := segmentFiles(t, dir)
	if len(files) != 2 || !strings.HasSuffix(files[0], compactSuffix) || !strings.HasSuffix(files[1], segSuffix) {
		t.Fatalf("files after Compact: %v", files)
	}
	mustAppend(t, l, put("k00", "after"), evict("k02"), put("k99", "new"))
	want["k00"], want["k99"] = "after", "new"
	delete(want, "k02")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got, rec := replayState(t, dir)
	if !got.equal(want) || rec.Segments != 2 {
		t.Fatalf("after compaction and reopen: %v from %d segments, want %v from 2", got, rec.Segments, want)
	}
	// Compacting again with nothing appended rewrites the compacted segment
	// in place.
	l, _, _ = openLog(t, dir, Options{})
	for range 2 {
		if _, err := l.Compact(func(string) bool { return true }); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	if got, _ := replayState(t, dir); !got.equal(want) {
		t.Fatalf("after compacting twice: %v, want %v", got, want)
	}
}

// TestCompactReadsDeadEntriesOnce: the shape of a busy node's log, one key
// per request and only the latest still held. The compaction reads every
// folded byte once to find the last entries, then reads again only from each
// segment's first kept entry on (segments with none not at all), and keeps
// exactly the live keys.
func TestCompactReadsDeadEntriesOnce(t *testing.T) {
	dir := t.TempDir()
	ffs := newFaultFS()
	l, _, _ := openLog(t, dir, Options{SegmentSize: 8 << 10, FS: ffs})
	key := func(i int) string { return fmt.Sprintf("request-%04d", i) }
	value := strings.Repeat("v", 200)
	want := state{}
	const n, held = 400, 30
	for i := range n {
		mustAppend(t, l, put(key(i), value))
		if i >= n-held {
			want[key(i)] = value
		}
	}
	if len(segmentFiles(t, dir)) < 5 {
		t.Fatalf("want several segments to fold, have %v", segmentFiles(t, dir))
	}
	ffs.read.Store(0)
	st, err := l.Compact(func(k string) bool { _, ok := want[k]; return ok })
	if err != nil {
		t.Fatal(err)
	}
	if st.EntriesKept != held {
		t.Fatalf("CompactStats %+v, want %d kept", st, held)
	}
	// The kept entries and what precedes them in their segment: at most
	// two segments' worth on top of the first pass.
	if got, limit := ffs.read.Load(), st.BytesBefore+2*(8<<10); got > limit {
		t.Fatalf("Compact read %d bytes of %d folded (limit %d): the second pass read dead segments again", got, st.BytesBefore, limit)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := replayState(t, dir); !got.equal(want) {
		t.Fatalf("after compaction: %v, want %v", got, want)
	}
}

// TestCompactYieldsItsProcessor: with one processor (GOMAXPROCS=1), a
// goroutine that is runnable while a compaction scans gets a turn every
// compactYieldEvery entries or so, not only when the runtime preempts the
// compaction (every 10 ms): the requests of a one-CPU node wait behind it
// for microseconds, not for whole time slices.
func TestCompactYieldsItsProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	l, _, _ := openLog(t, t.TempDir(), Options{})
	defer l.Close()
	value := make([]byte, 200)
	const n = 20000
	var f Frames
	for i := range n {
		_ = f.EndPut(append(f.BeginPut(fmt.Sprintf("request-%06d", i)), value...))
		if f.Entries() == 100 {
			if err := l.CommitFrames(&f); err != nil {
				t.Fatal(err)
			}
			f.Reset()
		}
	}
	var turns atomic.Int64
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			turns.Add(1)
			runtime.Gosched()
		}
	}()
	runtime.Gosched() // let it start
	before := turns.Load()
	st, err := l.Compact(func(k string) bool { return k >= "request-019000" })
	during := turns.Load() - before
	stop.Store(true)
	<-done
	if err != nil || st.EntriesRead != n || st.EntriesKept != 1000 {
		t.Fatalf("Compact = %+v, %v", st, err)
	}
	// The first pass alone reads n entries.
	if want := int64(n / compactYieldEvery / 2); during < want {
		t.Fatalf("a runnable goroutine ran %d times during a compaction of %d entries; want at least %d (a turn every %d entries)", during, n, want, compactYieldEvery)
	}
}

// TestCompactWhileAppending: appends go on during a compaction; everything
// acknowledged is there afterwards.
func TestCompactWhileAppending(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := openLog(t, dir, Options{SegmentSize: 1 << 10})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if err := l.Append(context.Background(), put(fmt.Sprintf("k%d", g*1000+i), "v")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 10 {
		if _, err := l.Compact(func(string) bool { return true }); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if _, err := l.Compact(func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.Compact(func(string) bool { return true }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Compact after Close = %v; want ErrClosed", err)
	}
	got, rec := replayState(t, dir)
	if len(got) != 8*200 || rec.Segments > 2 {
		t.Fatalf("%d keys from %d segments after compactions, want 1600 from at most 2", len(got), rec.Segments)
	}
}

// TestCompactAsksLiveOnlyOnceSealed: an entry appended when live is first
// called is not among the folded entries (the active segment was sealed
// before), so it survives even though live rejects its key; and live's
// answers decide the rest.
func TestCompactAsksLiveOnlyOnceSealed(t *testing.T) {
	dir := t.TempDir()
	full := history(t, dir)
	l, _, _ := openLog(t, dir, Options{SegmentSize: 300})
	mustAppend(t, l, put("k00", "before"))
	full.apply(put("k00", "before"))
	asked := false
	_, err := l.Compact(func(key string) bool {
		if !asked {
			asked = true
			mustAppend(t, l, put("k99", "during"))
		}
		return liveEven(key) && key != "k99"
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := full.filter(liveEven)
	want.apply(put("k99", "during"))
	if got, _ := replayState(t, dir); !got.equal(want) {
		t.Fatalf("after compaction:\n got %v\nwant %v", got, want)
	}
}

// compactOps records the file-system operations one Compact of a copy of
// src performs, in order.
func compactOps(t *testing.T, src string) []string {
	t.Helper()
	dir := t.TempDir()
	copyDir(t, src, dir)
	ffs := newFaultFS()
	l, _, _ := openLog(t, dir, Options{FS: ffs, SegmentSize: 300})
	var ops []string
	ffs.setHook(func(op, path string) error {
		ops = append(ops, op+" "+filepath.Base(path))
		return nil
	})
	if _, err := l.Compact(liveEven); err != nil {
		t.Fatal(err)
	}
	ffs.setHook(nil)
	l.Close()
	return ops
}

// TestCompactFailsAtEveryStep injects an I/O error into each file-system
// operation of a compaction in turn. Whatever fails, the log stays usable,
// and a reopen finds either the state before the compaction (the rename had
// not happened) or after it, never a mix; the directory is then tidied and
// compacts cleanly.
func TestCompactFailsAtEveryStep(t *testing.T) {
	src := t.TempDir()
	full := history(t, src)
	compacted := full.filter(liveEven)
	ops := compactOps(t, src)
	t.Logf("a compaction performs %d operations: %v", len(ops), ops)
	for k := range ops {
		t.Run(fmt.Sprintf("%02d-%s", k, ops[k]), func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, src, dir)
			ffs := newFaultFS()
			l, _, _ := openLog(t, dir, Options{FS: ffs, SegmentSize: 300})
			n, renamed := 0, false
			ffs.setHook(func(op, _ string) error {
				n++
				if n-1 == k {
					return syscall.EIO
				}
				if op == "rename" {
					renamed = true
				}
				return nil
			})
			_, err := l.Compact(liveEven)
			ffs.setHook(nil)
			if err != nil && !errors.Is(err, syscall.EIO) {
				t.Fatalf("Compact = %v; want nil or the injected EIO", err)
			}
			mustAppend(t, l, put("k98", "still appendable"))
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			want := full
			if renamed {
				want = compacted
			}
			want = withKey(want, "k98", "still appendable")
			got, _ := replayState(t, dir)
			if !got.equal(want) {
				t.Fatalf("after EIO at %q (renamed=%v, err=%v): %v, want %v", ops[k], renamed, err, got, want)
			}
			checkCompactsCleanly(t, dir, want)
		})
	}
}

func withKey(s state, k, v string) state {
	out := state{k: v}
	for k, v := range s {
		out[k] = v
	}
	return out
}

// checkCompactsCleanly compacts dir, reopens it and checks the state and
// that no file but the compacted and the active segment is left.
func checkCompactsCleanly(t *testing.T, dir string, want state) {
	t.Helper()
	l, _, _ := openLog(t, dir, Options{})
	if _, err := l.Compact(liveEven); err != nil {
		t.Fatalf("compaction after recovery: %v", err)
	}
	l.Close()
	got, rec := replayState(t, dir)
	if want := want.filter(liveEven); !got.equal(want) {
		t.Fatalf("after a second compaction: %v, want %v", got, want)
	}
	if files := segmentFiles(t, dir); len(files) != 2 || rec.RemovedFiles != 0 {
		t.Fatalf("files after a clean compaction: %v (recovery %+v)", files, rec)
	}
}
