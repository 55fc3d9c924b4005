package recordlog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitPrealloc waits until no extension of l's active segment runs.
func waitPrealloc(t *testing.T, l *Log) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.extMu.Lock()
		running := l.extendDone != nil
		l.extMu.Unlock()
		if !running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("an extension of the active segment still runs after 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPreallocatedSegment: with Preallocate, the active segment carries
// filler ahead of the writes and group commits that land in it are
// fdatasynced. A copy taken while the log is open (what a crash leaves)
// replays every entry, reports nothing cut, and keeps the filler for the
// next writes; Close cuts the filler, so a closed segment ends at its last
// frame.
func TestPreallocatedSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), DirName)
	const prealloc = 64 << 10
	l, _, _ := openLog(t, dir, Options{Preallocate: prealloc})
	want := state{}
	for i := range 40 {
		e := put(fmt.Sprintf("k%02d", i), strings.Repeat("v", 100+i))
		mustAppend(t, l, e)
		want.apply(e)
	}
	waitPrealloc(t, l)
	st := l.Stats()
	if st.Datasyncs == 0 || st.Datasyncs > st.Syncs {
		t.Fatalf("Stats = %+v; want some of the fsyncs to be fdatasyncs into preallocated space", st)
	}
	_, size := l.activeForTest()
	seg := filepath.Join(dir, segment{seq: 1}.name())
	fi, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() <= size {
		t.Fatalf("active segment is %d bytes for %d bytes of frames; want preallocated filler after them", fi.Size(), size)
	}
	raw, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if tail := raw[size:]; !bytes.Equal(tail, bytes.Repeat([]byte{fillerByte}, len(tail))) {
		t.Fatal("the preallocated space after the frames is not all filler")
	}

	// A crash: the files as they are while the log is open.
	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(seg); err != nil || fi.Size() != size {
		t.Fatalf("after Close the segment is %d bytes (%v); want %d, its frames only", fi.Size(), err, size)
	}
	got, rec := replayState(t, dir)
	if !got.equal(want) || rec.TruncatedBytes != 0 {
		t.Fatalf("closed log replayed %v (recovery %+v); want %v, nothing cut", got, rec, want)
	}

	got = state{}
	l2, rec, err := Open(crashed, Options{Preallocate: prealloc}, got.apply)
	if err != nil {
		t.Fatal(err)
	}
	if !got.equal(want) || rec.TruncatedBytes != 0 {
		t.Fatalf("crashed log replayed %v (recovery %+v); want %v, nothing cut", got, rec, want)
	}
	// The writes go on into the filler the crash left.
	before := l2.Stats().Datasyncs
	e := put("after", "crash")
	mustAppend(t, l2, e)
	want.apply(e)
	if l2.Stats().Datasyncs != before+1 {
		t.Fatal("the first write after reopening did not land in the preallocated space left by the crash")
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	got, rec = replayState(t, crashed)
	if !got.equal(want) || rec.TruncatedBytes != 0 {
		t.Fatalf("reopened crashed log replayed %v (recovery %+v); want %v, nothing cut", got, rec, want)
	}

	// A log that does not preallocate, opened on a crashed one that did,
	// cuts the filler before it appends after it.
	crashed2 := t.TempDir()
	l3, _, _ := openLog(t, filepath.Join(crashed2, "src"), Options{Preallocate: prealloc})
	mustAppend(t, l3, put("x", "1"))
	waitPrealloc(t, l3)
	copyDir(t, filepath.Join(crashed2, "src"), filepath.Join(crashed2, "copy"))
	l3.Close()
	got = state{}
	l4, rec, err := Open(filepath.Join(crashed2, "copy"), Options{Preallocate: -1}, got.apply)
	if err != nil || rec.TruncatedBytes != 0 || !got.equal(state{"x": "1"}) {
		t.Fatalf("Open without preallocation: %v, replayed %v, recovery %+v", err, got, rec)
	}
	mustAppend(t, l4, put("y", "2"))
	if err := l4.Close(); err != nil {
		t.Fatal(err)
	}
	got, rec = replayState(t, filepath.Join(crashed2, "copy"))
	if !got.equal(state{"x": "1", "y": "2"}) || rec.TruncatedBytes != 0 {
		t.Fatalf("replayed %v (recovery %+v); want x and y, nothing cut", got, rec)
	}
}

// TestTornBatchInPreallocatedSpace: a batch torn by a crash inside the
// preallocated space (its bytes, then filler) is cut like any torn tail,
// and everything committed before it is kept.
func TestTornBatchInPreallocatedSpace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), DirName)
	l, _, _ := openLog(t, dir, Options{Preallocate: 64 << 10})
	mustAppend(t, l, put("a", "1"), put("b", "2"))
	waitPrealloc(t, l)
	_, size := l.activeForTest()
	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	l.Close()
	seg := filepath.Join(crashed, segment{seq: 1}.name())
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The first 20 bytes of the next batch: its marker and part of a frame.
	torn := appendFrame(appendMarker(nil, size), put("c", "3"))[:20]
	if _, err := f.WriteAt(torn, size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The marker is whole: the cut leaves it, as an empty batch.
	got, rec := replayState(t, crashed)
	if !got.equal(state{"a": "1", "b": "2"}) || rec.TruncatedAt != size+markerSize || rec.TruncatedBytes == 0 {
		t.Fatalf("replayed %v (recovery %+v); want a and b, cut at %d", got, rec, size+markerSize)
	}
}

// TestPreallocatedRotationAndLargeBatches: segments sealed by rotation end
// at their last frame (no filler: a sealed segment has no torn tail to
// tolerate), batches larger than the preallocation extend the file
// themselves, and concurrent appends all replay.
func TestPreallocatedRotationAndLargeBatches(t *testing.T) {
	dir := filepath.Join(t.TempDir(), DirName)
	l, _, _ := openLog(t, dir, Options{Preallocate: 8 << 10, SegmentSize: 32 << 10})
	want := state{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 60 {
				size := 50
				if i%20 == 0 {
					size = 20 << 10 // more than the preallocation
				}
				e := put(fmt.Sprintf("g%d-%02d", g, i), strings.Repeat("x", size))
				mustAppend(t, l, e)
				mu.Lock()
				want.apply(e)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if st := l.Stats(); st.Segments < 3 {
		t.Fatalf("Stats = %+v; want rotations", st)
	}
	crashed := t.TempDir()
	waitPrealloc(t, l)
	copyDir(t, dir, crashed)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, crashed} {
		got, rec := replayState(t, d)
		if !got.equal(want) || rec.TruncatedBytes != 0 {
			t.Fatalf("%s replayed %d keys (recovery %+v); want %d, nothing cut", d, len(got), rec, len(want))
		}
	}
}
