package logstore

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"testing"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/recordlog"
	"meshgo.dev/mesh/meshtest/storetest"
)

// holdFS is the operating system's file system whose first file sync after
// hold holds until release is closed (then returns fail, or syncs), and
// which reports every other sync that has ended on synced. full makes
// writes fail with ENOSPC.
type holdFS struct {
	recordlog.OSFS
	mu      sync.Mutex
	armed   bool
	full    bool
	holding chan struct{}
	release chan struct{}
	fail    error
	synced  chan struct{}
}

func newHoldFS() *holdFS {
	return &holdFS{holding: make(chan struct{}), release: make(chan struct{}), synced: make(chan struct{}, 16)}
}

func (h *holdFS) hold(fail error) {
	h.mu.Lock()
	h.armed, h.fail = true, fail
	h.mu.Unlock()
}

func (h *holdFS) setFull(v bool) {
	h.mu.Lock()
	h.full = v
	h.mu.Unlock()
}

func (h *holdFS) OpenFile(name string, flag int, perm fs.FileMode) (recordlog.File, error) {
	file, err := h.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &holdFile{File: file, fs: h}, nil
}

type holdFile struct {
	recordlog.File
	fs *holdFS
}

func (f *holdFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	full := f.fs.full
	f.fs.mu.Unlock()
	if full {
		return 0, &os.PathError{Op: "write", Path: "segment", Err: syscall.ENOSPC}
	}
	return f.File.Write(p)
}

func (f *holdFile) Sync() error {
	f.fs.mu.Lock()
	held := f.fs.armed
	f.fs.armed = false
	fail := f.fs.fail
	f.fs.mu.Unlock()
	if held {
		close(f.fs.holding)
		<-f.fs.release
		if fail != nil {
			return fail
		}
		return f.File.Sync()
	}
	err := f.File.Sync()
	f.fs.synced <- struct{}{}
	return err
}

// syncAsync runs SyncTo(mark) in a goroutine and returns its result channel.
func syncAsync(s *Store, mark uint64) chan error {
	ch := make(chan error, 1)
	go func() { ch <- s.SyncTo(mark) }()
	return ch
}

// TestWriteOverlapsSync: what is Put while a group commit syncs is written
// and synced at once, without waiting for that fsync, but it becomes durable
// (its Sync returns) only after the earlier commit is.
func TestWriteOverlapsSync(t *testing.T) {
	h := newHoldFS()
	s, _ := open(t, t.TempDir(), Options{Log: recordlog.Options{FS: h}})
	defer s.Close()
	h.hold(nil)
	mustPut(t, s, storetest.Full("a", 1, continuity.PhaseSubmitted))
	first := syncAsync(s, s.Mark())
	<-h.holding
	mustPut(t, s, storetest.Full("b", 2, continuity.PhaseSubmitted))
	second := syncAsync(s, s.Mark())
	<-h.synced // the second commit's fsync has ended, the first's has not
	if st := s.Stats(); st.Writes != 2 || st.Durable != 0 {
		t.Fatalf("with the first fsync held: %+v; want 2 writes begun, nothing durable", st)
	}
	select {
	case err := <-second:
		t.Fatalf("Sync of the later commit returned (%v) before the earlier commit was durable", err)
	default:
	}
	close(h.release)
	for i, ch := range []chan error{first, second} {
		if err := <-ch; err != nil {
			t.Fatalf("Sync %d: %v", i+1, err)
		}
	}
	if st := s.Stats(); st.Durable != 2 || st.Log.Batches != 2 {
		t.Fatalf("stats %+v; want both versions durable in 2 batches", st)
	}
}

// TestFsyncFailureWithTwoInFlight: the earlier of two group commits in
// flight fails its fsync: the callers of both get ErrFailed (the later
// commit's own fsync succeeded), nothing is counted durable, and the store
// refuses further Puts.
func TestFsyncFailureWithTwoInFlight(t *testing.T) {
	h := newHoldFS()
	s, _ := open(t, t.TempDir(), Options{Log: recordlog.Options{FS: h}})
	defer s.Close()
	h.hold(&os.PathError{Op: "sync", Path: "segment", Err: syscall.EIO})
	mustPut(t, s, storetest.Full("a", 1, continuity.PhaseSubmitted))
	first := syncAsync(s, s.Mark())
	<-h.holding
	mustPut(t, s, storetest.Full("b", 2, continuity.PhaseSubmitted))
	second := syncAsync(s, s.Mark())
	<-h.synced
	close(h.release)
	for i, ch := range []chan error{first, second} {
		if err := <-ch; !errors.Is(err, recordlog.ErrFailed) {
			t.Errorf("Sync %d: %v; want ErrFailed", i+1, err)
		}
	}
	if st := s.Stats(); st.Durable != 0 {
		t.Errorf("stats %+v; want nothing durable", st)
	}
	if err := s.Put(storetest.Full("c", 3, continuity.PhaseSubmitted)); !errors.Is(err, recordlog.ErrFailed) {
		t.Errorf("Put after the failed fsync: %v; want ErrFailed", err)
	}
}

// TestDiskFullWithOneInFlight: a write the disk refuses while the previous
// group commit syncs reports the error to its callers and stays queued; the
// earlier commit still becomes durable, and once the disk has room the
// queued versions are written, and a reopen finds all of them.
func TestDiskFullWithOneInFlight(t *testing.T) {
	dir := t.TempDir()
	h := newHoldFS()
	s, _ := open(t, dir, Options{Log: recordlog.Options{FS: h}})
	h.hold(nil)
	mustPut(t, s, storetest.Full("a", 1, continuity.PhaseSubmitted))
	first := syncAsync(s, s.Mark())
	<-h.holding
	h.setFull(true)
	mustPut(t, s, storetest.Full("b", 2, continuity.PhaseCompleted))
	if err := s.Sync(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Sync of a write the disk refused: %v; want ENOSPC", err)
	}
	close(h.release)
	if err := <-first; err != nil {
		t.Fatalf("Sync of the commit in flight: %v", err)
	}
	h.setFull(false)
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync once the disk has room: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, rec := open(t, dir, Options{})
	defer s2.Close()
	if rec.Pending != 1 || rec.Retained != 1 || rec.TruncatedBytes != 0 {
		t.Fatalf("recovered %+v; want both records, nothing cut", rec)
	}
}
