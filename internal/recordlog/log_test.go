package recordlog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), DirName)
	want := []Entry{
		put("a", "1"),
		put("b", ""),
		put("c", string([]byte{0, 1, 2, 255})),
		evict("b"),
		put("a", strings.Repeat("x", 70000)),
		put(strings.Repeat("k", 300), "long key"),
	}
	l, rec, got := openLog(t, dir, Options{})
	if len(got) != 0 || rec != (Recovery{}) {
		t.Fatalf("fresh Open: %d entries, recovery %+v", len(got), rec)
	}
	mustAppend(t, l, want[:2]...)
	for _, e := range want[2:] {
		mustAppend(t, l, e)
	}
	if st := l.Stats(); st.Appends != 5 || st.Entries != 6 || st.Syncs != 5 || st.Batches != 5 {
		t.Fatalf("Stats = %+v; want 5 appends of 6 entries in 5 synced batches", st)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), put("z", "1")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v; want ErrClosed", err)
	}
	for range 2 { // reopening twice changes nothing
		l, rec, got = openLog(t, dir, Options{})
		if err := sameEntries(got, want); err != nil {
			t.Fatal(err)
		}
		if rec.Entries != int64(len(want)) || rec.TruncatedBytes != 0 || rec.Segments != 1 {
			t.Fatalf("Recovery = %+v", rec)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAppendRejectsInvalidEntries(t *testing.T) {
	l, _, _ := openLog(t, t.TempDir(), Options{})
	defer l.Close()
	for _, e := range []Entry{
		{Kind: KindPut, Key: ""},
		{Kind: 0, Key: "a"},
		{Kind: 9, Key: "a"},
		{Kind: KindEvict, Key: "a", Value: []byte("v")},
		{Kind: KindPut, Key: "a", Value: make([]byte, MaxEntrySize)},
	} {
		if err := l.Append(context.Background(), put("ok", "1"), e); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("Append(%v %q, %d value bytes) = %v; want ErrInvalidEntry", e.Kind, e.Key, len(e.Value), err)
		}
	}
	if st := l.Stats(); st.Batches != 0 {
		t.Fatalf("an invalid entry reached the writer: %+v", st)
	}
}

func TestOptionsValidation(t *testing.T) {
	_, _, err := Open(t.TempDir(), Options{SegmentSize: -1, QueueLen: -2, MaxBatchBytes: -3}, state{}.apply)
	for _, want := range []string{"Options.SegmentSize is -1", "Options.QueueLen is -2", "Options.MaxBatchBytes is -3"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %v; want it to say %q", err, want)
		}
	}
}

// TestConcurrentAppendersShareFsyncs: many goroutines appending at once are
// committed in shared batches: fewer fsyncs than appends, every entry
// durable, each appender's entries in its own order.
func TestConcurrentAppendersShareFsyncs(t *testing.T) {
	const appenders, each = 64, 40
	dir := t.TempDir()
	ffs := newFaultFS()
	l, _, _ := openLog(t, dir, Options{FS: ffs, SegmentSize: 8 << 10})
	syncsBefore := ffs.syncs.Load()
	var wg sync.WaitGroup
	errs := make(chan error, appenders)
	for g := range appenders {
		wg.Go(func() {
			for i := range each {
				if err := l.Append(context.Background(), put(fmt.Sprintf("g%02d-%03d", g, i), fmt.Sprint(g, ":", i))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := l.Stats()
	fileSyncs := ffs.syncs.Load() - syncsBefore
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d appends, %d batches, %d segment fsyncs counted by the writer, %d file fsyncs seen by the file system, %d segments",
		st.Appends, st.Batches, st.Syncs, fileSyncs, st.Segments)
	if st.Appends != appenders*each {
		t.Fatalf("Stats.Appends = %d, want %d", st.Appends, appenders*each)
	}
	if fileSyncs != st.Syncs {
		t.Fatalf("file system saw %d fsyncs, writer counted %d", fileSyncs, st.Syncs)
	}
	if fileSyncs >= appenders*each {
		t.Fatalf("%d fsyncs for %d concurrent appends: group commit shared none", fileSyncs, appenders*each)
	}
	if st.Segments < 2 {
		t.Fatalf("Segments = %d; the test wants rotation under load", st.Segments)
	}
	_, rec, got := openLog(t, dir, Options{})
	if rec.Entries != appenders*each {
		t.Fatalf("reopened with %d entries, want %d", rec.Entries, appenders*each)
	}
	next := make([]int, appenders)
	for _, e := range got {
		var g, i int
		if _, err := fmt.Sscanf(e.Key, "g%02d-%03d", &g, &i); err != nil {
			t.Fatalf("key %q: %v", e.Key, err)
		}
		if i != next[g] {
			t.Fatalf("appender %d: entry %d replayed where %d was expected", g, i, next[g])
		}
		next[g]++
	}
}

// TestAppendQueueIsBounded: while the writer is stuck in an fsync, at most
// QueueLen appends wait in the queue; the next caller blocks and can give up
// with its context, having written nothing.
func TestAppendQueueIsBounded(t *testing.T) {
	dir := t.TempDir()
	ffs := newFaultFS()
	l, _, _ := openLog(t, dir, Options{FS: ffs, QueueLen: 2})
	inSync := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	ffs.setHook(func(op, _ string) error {
		if op == "sync" {
			once.Do(func() { close(inSync) })
			<-release
		}
		return nil
	})
	results := make(chan error, 3)
	go func() { results <- l.Append(context.Background(), put("first", "1")) }()
	<-inSync // the writer holds "first" in an fsync that does not return
	for _, k := range []string{"q1", "q2"} {
		go func() { results <- l.Append(context.Background(), put(k, "1")) }()
	}
	// Wait until both are queued (bounded poll: they only need to be scheduled).
	deadline := time.Now().Add(10 * time.Second)
	for len(l.reqs) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d appends, want 2", len(l.reqs))
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := l.Append(ctx, put("blocked", "1"))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("Append on a full queue = %v; want the context's error saying nothing was written", err)
	}
	close(release)
	for range 3 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ := replayState(t, dir)
	if want := (state{"first": "1", "q1": "1", "q2": "1"}); !s.equal(want) {
		t.Fatalf("replayed %v, want %v", s, want)
	}
}

// TestCloseCommitsQueuedAppends: appends racing with Close either commit or
// fail with ErrClosed; none hangs and every acknowledged one is durable.
func TestCloseCommitsQueuedAppends(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := openLog(t, dir, Options{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := state{}
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				k := fmt.Sprintf("g%d-%d", g, i)
				err := l.Append(context.Background(), put(k, "v"))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[k] = "v"
				mu.Unlock()
			}
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	for l.Stats().Appends < 200 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d appends in 20 s", l.Stats().Appends)
		}
		time.Sleep(time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s, _ := replayState(t, dir)
	for k := range acked {
		if _, ok := s[k]; !ok {
			t.Fatalf("acknowledged %q is not in the reopened log", k)
		}
	}
}

// TestDiskFullOnAppend: a write that fails (all of it or part of it) returns
// the file system's error naming the segment, the partial bytes are cut off,
// the log keeps working once space is back, and a reopen finds exactly the
// acknowledged entries with no torn tail.
func TestDiskFullOnAppend(t *testing.T) {
	for _, partial := range []int{0, 5, 20} {
		t.Run(fmt.Sprintf("written=%d", partial), func(t *testing.T) {
			dir := t.TempDir()
			ffs := newFaultFS()
			l, _, _ := openLog(t, dir, Options{FS: ffs})
			mustAppend(t, l, put("before", "1"))
			ffs.setHook(func(op, _ string) error {
				if op == "write" {
					return &partialWrite{n: partial, err: syscall.ENOSPC}
				}
				return nil
			})
			err := l.Append(context.Background(), put("lost", strings.Repeat("v", 40)))
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), segment{seq: 1}.name()) {
				t.Fatalf("Append on a full disk = %v; want ENOSPC naming the segment", err)
			}
			ffs.setHook(nil)
			mustAppend(t, l, put("after", "1"))
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			s, rec := replayState(t, dir)
			if want := (state{"before": "1", "after": "1"}); !s.equal(want) || rec.TruncatedBytes != 0 {
				t.Fatalf("reopened %v (recovery %+v), want %v and no truncation", s, rec, want)
			}
		})
	}
}

// TestFailedFsyncFailsTheLog: after an fsync error nothing more is
// acknowledged (the kernel may have dropped the pages); reopening recovers
// what is on disk.
func TestFailedFsyncFailsTheLog(t *testing.T) {
	dir := t.TempDir()
	ffs := newFaultFS()
	l, _, _ := openLog(t, dir, Options{FS: ffs})
	mustAppend(t, l, put("before", "1"))
	ffs.setHook(func(op, _ string) error {
		if op == "sync" {
			return syscall.EIO
		}
		return nil
	})
	err := l.Append(context.Background(), put("unknown", "1"))
	if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append with a failing fsync = %v; want ErrFailed wrapping EIO", err)
	}
	ffs.setHook(nil)
	if err := l.Append(context.Background(), put("later", "1")); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append after a failed fsync = %v; want ErrFailed", err)
	}
	if _, err := l.Compact(func(string) bool { return true }); !errors.Is(err, ErrFailed) {
		t.Fatalf("Compact after a failed fsync = %v; want ErrFailed", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ := replayState(t, dir)
	if s["before"] != "1" || s["later"] != "" {
		t.Fatalf("reopened %v; want before and not later", s)
	}
}

// TestUnwritableDirectory: a directory that cannot be created or written is
// a clear error at Open, naming the path. The permission errors are injected
// (as root, chmod does not stop writes); the last case uses a real chmod when
// not running as root.
func TestUnwritableDirectory(t *testing.T) {
	for _, op := range []string{"mkdir", "lock", "readdir", "open", "syncdir"} {
		t.Run(op, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), DirName)
			ffs := newFaultFS()
			ffs.setHook(func(o, _ string) error {
				if o == op {
					return syscall.EACCES
				}
				return nil
			})
			_, _, err := Open(dir, Options{FS: ffs}, state{}.apply)
			if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("Open with %s failing = %v; want a permission error naming %s", op, err, dir)
			}
		})
	}
	t.Run("chmod", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root ignores directory permissions")
		}
		parent := t.TempDir()
		if err := os.Chmod(parent, 0o500); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(parent, 0o700)
		_, _, err := Open(filepath.Join(parent, DirName), Options{}, state{}.apply)
		if !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("Open under a read-only directory = %v; want a permission error", err)
		}
	})
}

// TestRotationFailureKeepsAppending: when the next segment cannot be
// created, the append that filled the segment is still acknowledged, the
// active segment keeps growing, and rotation is retried.
func TestRotationFailureKeepsAppending(t *testing.T) {
	dir := t.TempDir()
	ffs := newFaultFS()
	l, _, _ := openLog(t, dir, Options{FS: ffs, SegmentSize: 100})
	ffs.setHook(func(op, path string) error {
		if op == "open" && strings.HasSuffix(path, segSuffix) {
			return syscall.ENOSPC
		}
		return nil
	})
	for i := range 5 {
		mustAppend(t, l, put(fmt.Sprint("k", i), strings.Repeat("v", 60)))
	}
	if st := l.Stats(); st.Segments != 1 {
		t.Fatalf("Segments = %d while rotation fails, want 1", st.Segments)
	}
	ffs.setHook(nil)
	mustAppend(t, l, put("k5", "v"))
	if st := l.Stats(); st.Segments != 2 {
		t.Fatalf("Segments = %d after rotation could succeed, want 2", st.Segments)
	}
	l.Close()
	if s, _ := replayState(t, dir); len(s) != 6 {
		t.Fatalf("reopened %v, want 6 keys", s)
	}
}

func TestAppendContextEndsWhileWaiting(t *testing.T) {
	dir := t.TempDir()
	ffs := newFaultFS()
	l, _, _ := openLog(t, dir, Options{FS: ffs})
	release := make(chan struct{})
	ffs.setHook(func(op, _ string) error {
		if op == "sync" {
			<-release
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := l.Append(ctx, put("k", "v"))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "may still become durable") {
		t.Fatalf("Append = %v; want the context's error saying the entries may still become durable", err)
	}
	close(release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if s, _ := replayState(t, dir); s["k"] != "v" {
		t.Fatalf("reopened %v; the queued entry was committed by Close", s)
	}
}

// TestFailedRotationLeavesNoEmptySegment: when the directory cannot be
// synced after creating the next segment, the unused file is removed, so a
// torn tail of the segment still in use is recovered as a torn tail and not
// reported as corruption of a sealed segment.
func TestFailedRotationLeavesNoEmptySegment(t *testing.T) {
	dir := t.TempDir()
	ffs := newFaultFS()
	l, _, _ := openLog(t, dir, Options{FS: ffs, SegmentSize: 100})
	ffs.setHook(func(op, _ string) error {
		if op == "syncdir" {
			return syscall.EIO
		}
		return nil
	})
	for i := range 3 {
		mustAppend(t, l, put(fmt.Sprint("k", i), strings.Repeat("v", 60)))
	}
	ffs.setHook(nil)
	l.Close()
	if files := segmentFiles(t, dir); len(files) != 1 {
		t.Fatalf("files after failed rotations: %v, want the one segment", files)
	}
	// A crash in the middle of the next write.
	f, err := os.OpenFile(filepath.Join(dir, segment{seq: 1}.name()), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(appendFrame(nil, put("k3", "torn"))[:12])
	f.Close()
	s, rec := replayState(t, dir)
	if len(s) != 3 || rec.TruncatedBytes != 12 {
		t.Fatalf("reopened %v with recovery %+v; want 3 keys and 12 bytes cut", s, rec)
	}
}

func TestAppendWithEndedContextWritesNothing(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := openLog(t, dir, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 { // the queue has room every time
		if err := l.Append(ctx, put("k", "v")); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "nothing was written") {
			t.Fatalf("Append with an ended context = %v", err)
		}
	}
	l.Close()
	if s, rec := replayState(t, dir); len(s) != 0 || rec.Bytes != 0 {
		t.Fatalf("reopened %v (recovery %+v); want nothing", s, rec)
	}
}

// TestCommit: Commit writes its entries as one durable group in the calling
// goroutine, serialized with concurrent Appends; both replay, each call's
// entries contiguous and in order.
func TestCommit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), DirName)
	l, _, _ := openLog(t, dir, Options{})
	if err := l.Commit(); err != nil {
		t.Fatalf("empty Commit = %v", err)
	}
	if err := l.Commit(put("", "x")); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("Commit of an invalid entry = %v; want ErrInvalidEntry", err)
	}
	var wg sync.WaitGroup
	const calls = 50
	wg.Go(func() {
		for i := range calls {
			if err := l.Commit(put(fmt.Sprintf("c%d", i), "1"), put(fmt.Sprintf("c%d", i), "2")); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for i := range calls {
			if err := l.Append(context.Background(), put(fmt.Sprintf("a%d", i), "1")); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	st := l.Stats()
	if st.Appends != 2*calls || st.Entries != 3*calls || st.Syncs != st.Batches || st.Batches < calls+1 || st.SyncTime <= 0 {
		t.Fatalf("Stats = %+v; want %d appends of %d entries, every batch fsynced once, time spent in fsync", st, 2*calls, 3*calls)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(put("z", "1")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Commit after Close = %v; want ErrClosed", err)
	}
	l, _, got := openLog(t, dir, Options{})
	defer l.Close()
	if len(got) != 3*calls {
		t.Fatalf("replayed %d entries; want %d", len(got), 3*calls)
	}
	nextC, nextA := 0, 0
	for i := 0; i < len(got); i++ {
		switch key := got[i].Key; key {
		case fmt.Sprintf("c%d", nextC):
			if i+1 >= len(got) || got[i+1].Key != key || string(got[i].Value) != "1" || string(got[i+1].Value) != "2" {
				t.Fatalf("entry %d: Commit %d's two entries are not contiguous and in order", i, nextC)
			}
			i++
			nextC++
		case fmt.Sprintf("a%d", nextA):
			nextA++
		default:
			t.Fatalf("entry %d is %q; want c%d or a%d", i, key, nextC, nextA)
		}
	}
}
