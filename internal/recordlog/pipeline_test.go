package recordlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
)

// framesOf encodes puts of keys, each with value v, as a Frames.
func framesOf(t *testing.T, v string, keys ...string) *Frames {
	t.Helper()
	f := new(Frames)
	for _, k := range keys {
		if err := f.EndPut(append(f.BeginPut(k), v...)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func mustWrite(t *testing.T, l *Log, f *Frames) *Written {
	t.Helper()
	w, err := l.WriteFrames(f)
	if err != nil {
		t.Fatalf("WriteFrames: %v", err)
	}
	return w
}

// heldSyncs is a faultFS hook that holds the first file sync after arm until
// release is closed, and lets the others through.
type heldSyncs struct {
	armed   bool
	holding chan struct{} // closed when the held sync has begun
	release chan struct{}
	fail    error // what the held sync returns once released
}

func (h *heldSyncs) hook(op, _ string) error {
	if op != "sync" || !h.armed {
		return nil
	}
	h.armed = false
	close(h.holding)
	<-h.release
	return h.fail
}

// TestSyncWrittenInOrder: with two group commits in flight, the later one's
// fsync ending first does not make it durable: SyncWritten returns only once
// the earlier one is, and both are then replayed.
func TestSyncWrittenInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		fsys := newFaultFS()
		l, _, _ := openLog(t, dir, Options{FS: fsys})
		h := &heldSyncs{armed: true, holding: make(chan struct{}), release: make(chan struct{})}
		fsys.setHook(h.hook)
		first := mustWrite(t, l, framesOf(t, "1", "a", "b"))
		firstDone := make(chan error, 1)
		go func() { firstDone <- l.SyncWritten(first) }()
		<-h.holding
		second := mustWrite(t, l, framesOf(t, "2", "c"))
		secondDone := make(chan error, 1)
		go func() { secondDone <- l.SyncWritten(second) }()
		synctest.Wait() // the second fsync has ended; its caller waits for the first
		select {
		case err := <-secondDone:
			t.Fatalf("the later commit returned (%v) while the earlier one was still syncing", err)
		default:
		}
		if st := l.Stats(); st.Batches != 0 || st.Syncs != 2 {
			t.Fatalf("stats before the first fsync ends: %+v; want 2 syncs begun, 0 batches durable", st)
		}
		close(h.release)
		if err := <-firstDone; err != nil {
			t.Fatalf("first SyncWritten: %v", err)
		}
		if err := <-secondDone; err != nil {
			t.Fatalf("second SyncWritten: %v", err)
		}
		if st := l.Stats(); st.Batches != 2 || st.Entries != 3 || st.Appends != 2 {
			t.Fatalf("stats: %+v; want 2 batches, 3 entries", st)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSyncWrittenEarlierFails: when the earlier of two group commits in
// flight fails its fsync, the later one fails too although its own fsync
// succeeded, and the log takes nothing more.
func TestSyncWrittenEarlierFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		fsys := newFaultFS()
		l, _, _ := openLog(t, dir, Options{FS: fsys})
		h := &heldSyncs{armed: true, holding: make(chan struct{}), release: make(chan struct{}), fail: errors.New("injected EIO")}
		fsys.setHook(h.hook)
		first := mustWrite(t, l, framesOf(t, "1", "a"))
		firstDone := make(chan error, 1)
		go func() { firstDone <- l.SyncWritten(first) }()
		<-h.holding
		second := mustWrite(t, l, framesOf(t, "2", "b"))
		secondDone := make(chan error, 1)
		go func() { secondDone <- l.SyncWritten(second) }()
		synctest.Wait()
		close(h.release)
		for i, ch := range []chan error{firstDone, secondDone} {
			if err := <-ch; !errors.Is(err, ErrFailed) {
				t.Errorf("SyncWritten of commit %d = %v; want ErrFailed", i+1, err)
			}
		}
		if _, err := l.WriteFrames(framesOf(t, "3", "c")); !errors.Is(err, ErrFailed) {
			t.Errorf("WriteFrames after a failed fsync = %v; want ErrFailed", err)
		}
		if st := l.Stats(); st.Batches != 0 {
			t.Errorf("stats: %+v; want no batch durable", st)
		}
		l.Close()
	})
}

// TestWriteFramesAtMostTwoInFlight: a third WriteFrames waits until the
// oldest of two commits in flight has been synced.
func TestWriteFramesAtMostTwoInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _, _ := openLog(t, t.TempDir(), Options{FS: newFaultFS()})
		w1 := mustWrite(t, l, framesOf(t, "1", "a"))
		w2 := mustWrite(t, l, framesOf(t, "2", "b"))
		third := make(chan *Written, 1)
		go func() { third <- mustWrite(t, l, framesOf(t, "3", "c")) }()
		synctest.Wait()
		select {
		case <-third:
			t.Fatal("a third group commit was written with two in flight")
		default:
		}
		if err := l.SyncWritten(w1); err != nil {
			t.Fatal(err)
		}
		w3 := <-third
		for _, w := range []*Written{w2, w3} {
			if err := l.SyncWritten(w); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
	})
}

// crashLayout writes, on the real file system, one durable batch and then
// the given group commits with WriteFrames, the n-th written while the one
// before it was in flight when overlap[n] is true, syncs them all and closes
// the log. It returns the segment's path and each commit's offset.
func crashLayout(t *testing.T, dir string, overlap []bool) (string, []int64) {
	t.Helper()
	l, _, _ := openLog(t, dir, Options{})
	mustAppend(t, l, put("before", "0"))
	var starts []int64
	var pending *Written
	for i, ov := range overlap {
		if !ov && pending != nil {
			if err := l.SyncWritten(pending); err != nil {
				t.Fatal(err)
			}
			pending = nil
		}
		_, at := l.activeForTest()
		starts = append(starts, at)
		w := mustWrite(t, l, framesOf(t, strings.Repeat(fmt.Sprint(i), 50), fmt.Sprint("k", i)))
		if pending != nil {
			if err := l.SyncWritten(pending); err != nil {
				t.Fatal(err)
			}
		}
		pending = w
	}
	if err := l.SyncWritten(pending); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, segment{seq: 1}.name()), starts
}

// TestCrashWithTwoCommitsInFlight: a crash while two group commits were in
// flight can leave the later one on disk and a hole in the earlier one.
// Neither was acknowledged: Open cuts the log at the first bad frame, drops
// both, and reports it as a torn tail, not as corruption.
func TestCrashWithTwoCommitsInFlight(t *testing.T) {
	dir := t.TempDir()
	path, starts := crashLayout(t, dir, []bool{false, true})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hole := starts[0] + markerSize // the first commit's entry never reached the disk
	clear(b[hole : hole+frameHeaderSize+20])
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, rec := replayState(t, dir)
	if !s.equal(state{"before": "0"}) {
		t.Fatalf("replayed %v; want only the durable batch", s)
	}
	if rec.TruncatedAt != hole || rec.TruncatedBytes != int64(len(b))-hole {
		t.Fatalf("recovery %+v; want cut at %d, %d bytes", rec, hole, int64(len(b))-hole)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != hole {
		t.Fatalf("segment after Open: %v, %v; want %d bytes", st, err, hole)
	}
}

// TestDamageBeforeTwoLaterCommits: damage followed by an overlapping commit
// and then a third one that was written after both had synced cannot be a
// crash's tear: it is ErrCorrupt, and the segment is not cut.
func TestDamageBeforeTwoLaterCommits(t *testing.T) {
	dir := t.TempDir()
	path, starts := crashLayout(t, dir, []bool{false, true, false})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := starts[0] + markerSize
	b[damaged+frameHeaderSize+4] ^= 0x01
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = Open(dir, Options{}, state{}.apply)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v; want ErrCorrupt", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(b) {
		t.Fatal("Open cut a segment it reported as corrupt")
	}
}

// TestOverlappedCommitsReplay: commits written two at a time replay in
// order, with every entry, and the log appends after them.
func TestOverlappedCommitsReplay(t *testing.T) {
	dir := t.TempDir()
	crashLayout(t, dir, []bool{false, true, true, false, true})
	s, rec := replayState(t, dir)
	want := state{"before": "0"}
	for i := range 5 {
		want[fmt.Sprint("k", i)] = strings.Repeat(fmt.Sprint(i), 50)
	}
	if !s.equal(want) || rec.TruncatedBytes != 0 {
		t.Fatalf("replayed %v, recovery %+v; want %v, nothing cut", s, rec, want)
	}
}
