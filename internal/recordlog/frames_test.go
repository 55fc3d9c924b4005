package recordlog

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// putFrame encodes a put of key and value into f as a caller of Frames does.
func putFrame(f *Frames, key, value string) error {
	b := f.BeginPut(key)
	return f.EndPut(append(b, value...))
}

// TestCommitFrames: entries encoded into Frames replay as Commit's would,
// in order, across commits that reuse one buffer; an invalid entry is
// dropped with ErrInvalidEntry and leaves the others; DropLast takes back
// the last entry.
func TestCommitFrames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), DirName)
	l, _, _ := openLog(t, dir, Options{})
	var f Frames
	if err := l.CommitFrames(&f); err != nil {
		t.Fatalf("empty CommitFrames = %v", err)
	}
	if err := putFrame(&f, "", "x"); !errors.Is(err, ErrInvalidEntry) || f.Entries() != 0 || f.Size() != 0 {
		t.Fatalf("empty key: %v, %d entries, %d bytes; want ErrInvalidEntry and nothing kept", err, f.Entries(), f.Size())
	}
	big := strings.Repeat("v", MaxEntrySize)
	if err := putFrame(&f, "big", big); !errors.Is(err, ErrInvalidEntry) || f.Entries() != 0 {
		t.Fatalf("oversized entry: %v, %d entries; want ErrInvalidEntry and nothing kept", err, f.Entries())
	}
	var want []Entry
	for c := range 20 {
		for i := range 5 {
			k, v := fmt.Sprintf("k%d", (c*5+i)%17), fmt.Sprintf("v%d-%d", c, i)
			if err := putFrame(&f, k, v); err != nil {
				t.Fatal(err)
			}
			want = append(want, put(k, v))
		}
		if err := putFrame(&f, "dropped", "x"); err != nil {
			t.Fatal(err)
		}
		f.DropLast()
		if f.Entries() != 5 {
			t.Fatalf("%d entries after DropLast, want 5", f.Entries())
		}
		if err := l.CommitFrames(&f); err != nil {
			t.Fatalf("commit %d: %v", c, err)
		}
		f.Reset()
	}
	if st := l.Stats(); st.Appends != 20 || st.Entries != 100 || st.Batches != 20 {
		t.Fatalf("Stats = %+v; want 20 appends of 100 entries in 20 batches", st)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.CommitFrames(&f); err != nil { // empty: nothing to refuse
		t.Fatal(err)
	}
	_ = putFrame(&f, "z", "1")
	if err := l.CommitFrames(&f); !errors.Is(err, ErrClosed) {
		t.Fatalf("CommitFrames after Close = %v; want ErrClosed", err)
	}
	l, rec, got := openLog(t, dir, Options{})
	defer l.Close()
	if err := sameEntries(got, want); err != nil || rec.TruncatedBytes != 0 {
		t.Fatalf("replay: %v (recovery %+v)", err, rec)
	}
}

// TestCommitFramesAgainAfterDiskFull: a run whose write failed is cut off
// the segment and can be committed again, with more appended to it; a reopen
// finds each entry once.
func TestCommitFramesAgainAfterDiskFull(t *testing.T) {
	dir := t.TempDir()
	ffs := newFaultFS()
	l, _, _ := openLog(t, dir, Options{FS: ffs})
	var f, more Frames
	_ = putFrame(&f, "before", "1")
	if err := l.CommitFrames(&f); err != nil {
		t.Fatal(err)
	}
	f.Reset()
	ffs.setHook(func(op, _ string) error {
		if op == "write" {
			return &partialWrite{n: 11, err: syscall.ENOSPC}
		}
		return nil
	})
	_ = putFrame(&f, "retried", "1")
	if err := l.CommitFrames(&f); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("CommitFrames on a full disk = %v; want ENOSPC", err)
	}
	ffs.setHook(nil)
	_ = putFrame(&more, "after", "1")
	f.Append(&more)
	if err := l.CommitFrames(&f); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s, rec := replayState(t, dir)
	if want := (state{"before": "1", "retried": "1", "after": "1"}); !s.equal(want) || rec.TruncatedBytes != 0 {
		t.Fatalf("reopened %v (recovery %+v), want %v and no truncation", s, rec, want)
	}
}

// TestFramesAllocations: once its buffer has grown, encoding an entry into
// Frames allocates nothing.
func TestFramesAllocations(t *testing.T) {
	var f Frames
	value := strings.Repeat("v", 300)
	fill := func() {
		f.Reset()
		for range 16 {
			b := f.BeginPut("request-key-0123456789")
			if err := f.EndPut(append(b, value...)); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill()
	if n := testing.AllocsPerRun(100, fill); n != 0 {
		t.Fatalf("%v allocations per 16 entries; want 0", n)
	}
}
