package logstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/recordlog"
	"meshgo.dev/mesh/meshtest/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, limit continuity.Retention) continuity.Store {
		s, _, err := Open(t.TempDir(), Options{Retention: limit})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	})
}

func open(t *testing.T, dir string, opt Options) (*Store, Recovered) {
	t.Helper()
	s, rec, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return s, rec
}

func list(s *Store) []continuity.Record {
	var out []continuity.Record
	for r := range s.List() {
		out = append(out, r)
	}
	return out
}

func mustPut(t *testing.T, s *Store, recs ...continuity.Record) {
	t.Helper()
	for _, r := range recs {
		if err := s.Put(r); err != nil {
			t.Fatalf("put %s: %v", r.RequestKey, err)
		}
	}
}

// TestRestartRecoversEveryRecord: pending and retained records, the latest
// version of each key, and the retained order, survive Close and Open.
func TestRestartRecoversEveryRecord(t *testing.T) {
	dir := t.TempDir()
	s, rec := open(t, dir, Options{})
	if rec.Entries != 0 || rec.Pending != 0 || rec.Retained != 0 {
		t.Fatalf("a new directory recovered %+v", rec)
	}
	for i := range 50 {
		mustPut(t, s, storetest.Full(fmt.Sprintf("k%03d", i), i, continuity.PhaseSubmitted))
	}
	for i := 0; i < 50; i += 2 { // every other key completes
		mustPut(t, s, storetest.Full(fmt.Sprintf("k%03d", i), i+100, continuity.PhaseCompleted))
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	want := list(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, rec2 := open(t, dir, Options{})
	defer s2.Close()
	if rec2.Pending != 25 || rec2.Retained != 25 || rec2.Entries != 75 || rec2.TruncatedBytes != 0 {
		t.Fatalf("recovered %+v, want 25 pending, 25 retained from 75 entries", rec2)
	}
	if got := list(s2); !slices.EqualFunc(got, want, recordsEqual) {
		t.Fatalf("recovered records differ:\n got %v\nwant %v", keysOf(got), keysOf(want))
	}
}

// TestSyncedRecordsSurviveWithoutClose: what Sync acknowledged is on disk
// even if the process never closes the store (the lock is released by
// closing the log's files, as the process exit would).
func TestSyncedRecordsSurviveWithoutClose(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, Options{})
	mustPut(t, s, storetest.Full("a", 1, continuity.PhaseSubmitted), storetest.Full("b", 2, continuity.PhaseCompleted))
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// Copy the directory as a crash would leave it: only fsynced bytes
	// matter, and the copy holds no lock.
	crash := t.TempDir()
	copyDir(t, dir, crash)
	s.Close()
	s2, rec := open(t, crash, Options{})
	defer s2.Close()
	if rec.Pending != 1 || rec.Retained != 1 {
		t.Fatalf("recovered %+v", rec)
	}
	if r, ok := s2.Get("a"); !ok || r.Phase != continuity.PhaseSubmitted {
		t.Fatalf("pending record a: %+v %v", r, ok)
	}
}

// TestVolatileVersionsStayInMemory: a version Options.Volatile picks is
// served from memory like any other but never reaches the log, so after a
// restart the key holds its last logged version, or nothing.
func TestVolatileVersionsStayInMemory(t *testing.T) {
	dir := t.TempDir()
	volatile := func(r *continuity.Record) bool { return r.Pending() && strings.HasPrefix(r.RequestKey, "v-") }
	s, _ := open(t, dir, Options{Volatile: volatile})
	mustPut(t, s,
		storetest.Full("v-pending", 1, continuity.PhaseSubmitted),   // never logged
		storetest.Full("v-completed", 2, continuity.PhaseSubmitted), // logged from its completion on
		storetest.Full("v-completed", 3, continuity.PhaseCompleted),
		storetest.Full("kept", 4, continuity.PhaseSubmitted))
	if r, ok := s.Get("v-pending"); !ok || r.Phase != continuity.PhaseSubmitted {
		t.Fatalf("the volatile version is not served from memory: %+v %v", r, ok)
	}
	if st := s.Stats(); st.Puts != 2 {
		t.Fatalf("%d versions given to the log, want 2", st.Puts)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, rec := open(t, dir, Options{Volatile: volatile})
	defer s2.Close()
	if rec.Entries != 2 || rec.Pending != 1 || rec.Retained != 1 {
		t.Fatalf("recovered %+v, want the two logged versions", rec)
	}
	if r, ok := s2.Get("v-pending"); ok {
		t.Fatalf("the volatile version came back: %+v", r)
	}
	if r, ok := s2.Get("v-completed"); !ok || r.Phase != continuity.PhaseCompleted || r.Attempt != 1003 {
		t.Fatalf("v-completed: %+v %v, want its completed version", r, ok)
	}
}

// TestTornTail: a last segment cut in the middle of a record is truncated at
// the last whole group commit; everything before it is recovered and
// store_recovered says what was cut.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, Options{})
	for i := range 10 {
		mustPut(t, s, storetest.Full(fmt.Sprintf("k%d", i), i, continuity.PhaseSubmitted))
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	seg := lastSegment(t, dir)
	st, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(seg, st.Size()-7); err != nil {
		t.Fatal(err)
	}
	s2, rec := open(t, dir, Options{})
	defer s2.Close()
	if rec.TruncatedBytes == 0 || rec.TruncatedFile != filepath.Base(seg) || rec.TruncateReason == "" {
		t.Fatalf("recovery does not report the torn tail: %+v", rec)
	}
	if rec.Pending != 9 {
		t.Fatalf("recovered %d pending records, want the 9 whose commits were whole", rec.Pending)
	}
	for i := range 9 {
		if _, ok := s2.Get(fmt.Sprintf("k%d", i)); !ok {
			t.Fatalf("k%d lost", i)
		}
	}
	// The store keeps working after the cut.
	mustPut(t, s2, storetest.Full("k9", 9, continuity.PhaseSubmitted))
	if err := s2.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptSealedSegment: a damaged segment that is not the last cannot be
// a torn write; Open fails with ErrCorrupt naming the file.
func TestCorruptSealedSegment(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, Options{Log: recordlog.Options{SegmentSize: 512}})
	for i := range 20 {
		mustPut(t, s, storetest.Full(fmt.Sprintf("k%d", i), i, continuity.PhaseSubmitted))
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	segs := segments(t, dir)
	if len(segs) < 3 {
		t.Fatalf("want several segments, have %v", segs)
	}
	first := segs[0]
	b, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(first, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = Open(dir, Options{})
	if !errors.Is(err, recordlog.ErrCorrupt) {
		t.Fatalf("open of a corrupt sealed segment: %v, want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), filepath.Base(first)) {
		t.Fatalf("error does not name the file %s: %v", first, err)
	}
}

// TestDiskFull: a write the disk refuses makes Sync fail with the reason,
// keeps the records in memory and queued, and a later Sync succeeds once the
// disk has room again; a reopen then recovers them all.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	ffs := &fullFS{}
	s, _ := open(t, dir, Options{Log: recordlog.Options{FS: ffs}})
	mustPut(t, s, storetest.Full("before", 1, continuity.PhaseSubmitted))
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	ffs.full.Store(true)
	mustPut(t, s, storetest.Full("during", 2, continuity.PhaseCompleted))
	err := s.Sync()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Sync on a full disk: %v, want ENOSPC", err)
	}
	if _, ok := s.Get("during"); !ok {
		t.Fatal("the record Put while the disk was full is not readable")
	}
	ffs.full.Store(false)
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync after the disk has room again: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, rec := open(t, dir, Options{})
	defer s2.Close()
	if rec.Pending != 1 || rec.Retained != 1 {
		t.Fatalf("recovered %+v, want both records", rec)
	}
}

// TestFsyncFailure: once an fsync fails the log is failed, Sync says so and
// Put refuses, storing nothing.
func TestFsyncFailure(t *testing.T) {
	dir := t.TempDir()
	ffs := &fullFS{}
	s, _ := open(t, dir, Options{Log: recordlog.Options{FS: ffs}})
	defer s.Close()
	ffs.syncFails.Store(true)
	mustPut(t, s, storetest.Full("a", 1, continuity.PhaseSubmitted))
	if err := s.Sync(); !errors.Is(err, recordlog.ErrFailed) {
		t.Fatalf("Sync after a failed fsync: %v, want ErrFailed", err)
	}
	if err := s.Put(storetest.Full("b", 2, continuity.PhaseSubmitted)); !errors.Is(err, recordlog.ErrFailed) {
		t.Fatalf("Put on a failed log: %v, want ErrFailed", err)
	}
	if _, ok := s.Get("b"); ok {
		t.Fatal("a refused Put stored its record")
	}
}

// TestUnwritableDirectory: Open fails with the reason.
func TestUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes anywhere")
	}
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(parent, 0o700)
	if _, _, err := Open(filepath.Join(parent, "records"), Options{}); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("open under a read-only directory: %v, want a permission error", err)
	}
}

// TestCompactionKeepsHeldRecords: a log that grows past CompactAfter is
// compacted in the background down to the records the store holds; a reopen
// recovers exactly those.
func TestCompactionKeepsHeldRecords(t *testing.T) {
	dir := t.TempDir()
	opt := Options{Retention: continuity.Retention{Records: 20}, CompactAfter: 8 << 10, Log: recordlog.Options{SegmentSize: 4 << 10}}
	s, _ := open(t, dir, opt)
	for i := range 400 {
		key := fmt.Sprintf("k%04d", i)
		mustPut(t, s, storetest.Full(key, i, continuity.PhaseSubmitted))
		if i%7 != 0 { // one in seven stays pending
			mustPut(t, s, storetest.Full(key, i, continuity.PhaseCompleted))
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	want := list(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Compactions == 0 || st.CompactErr != nil {
		t.Fatalf("no compaction ran: %+v", st)
	}
	var size int64
	for _, p := range segments(t, dir) {
		st, _ := os.Stat(p)
		size += st.Size()
	}
	s2, rec := open(t, dir, opt)
	defer s2.Close()
	if got := list(s2); !slices.EqualFunc(got, want, recordsEqual) {
		t.Fatalf("after compaction and reopen:\n got %v\nwant %v", keysOf(got), keysOf(want))
	}
	if rec.Pending != 58 || rec.Retained != 20 {
		t.Fatalf("recovered %+v, want 58 pending and 20 retained", rec)
	}
	if size > 64<<10 {
		t.Fatalf("log is %d bytes after compactions: not bounded", size)
	}
}

// TestCompactionKeepsRecordsPutAsItBegins: a record Put after a compaction
// took its snapshot of the held keys, but written before the log sealed the
// segments it folds, is in those segments only; it survives the compaction
// and a reopen. So does one Put while the compaction runs.
func TestCompactionKeepsRecordsPutAsItBegins(t *testing.T) {
	dir := t.TempDir()
	opt := Options{Retention: continuity.Retention{Records: 5}, CompactAfter: 4 << 10, Log: recordlog.Options{SegmentSize: 1 << 20}}
	s, _ := open(t, dir, opt)
	began, release := make(chan struct{}), make(chan struct{})
	s.compactBegins = func() {
		close(began)
		<-release
	}
	for i := 0; ; i++ {
		mustPut(t, s, storetest.Full(fmt.Sprintf("k%04d", i), i, continuity.PhaseCompleted))
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-began:
		default:
			if i > 1000 {
				t.Fatal("no compaction began after 1,000 records")
			}
			continue
		}
		break
	}
	// The snapshot is taken; the log has not sealed its active segment.
	early := storetest.Full("early", 1, continuity.PhaseSubmitted)
	mustPut(t, s, early)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	close(release)
	late := storetest.Full("late", 2, continuity.PhaseSubmitted)
	mustPut(t, s, late)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Compactions != 1 || st.CompactErr != nil {
		t.Fatalf("compactions %d, error %v; want one that succeeded", st.Compactions, st.CompactErr)
	}
	s2, _ := open(t, dir, opt)
	defer s2.Close()
	for _, want := range []continuity.Record{early, late} {
		if got, ok := s2.Get(want.RequestKey); !ok || !recordsEqual(got, want) {
			t.Fatalf("after compaction and reopen, %s = %+v (held %v), want %+v", want.RequestKey, got, ok, want)
		}
	}
}

// TestGroupCommit: concurrent Put+Sync callers share fsyncs.
func TestGroupCommit(t *testing.T) {
	s, _ := open(t, t.TempDir(), Options{})
	defer s.Close()
	const workers, each = 16, 20
	putAndSync(t, s, workers, each)
	st := s.Stats()
	if st.Durable != workers*each || st.Puts != workers*each {
		t.Fatalf("stats %+v", st)
	}
	if st.Log.Batches >= workers*each {
		t.Fatalf("%d fsynced batches for %d Put+Sync calls: no group commit", st.Log.Batches, workers*each)
	}
	// Every wait ended with its write, so its three parts make up WaitTime.
	if parts := st.WaitQueued + st.WaitCommit + st.WaitWake; parts != st.WaitTime || st.WaitQueued < 0 || st.WaitWake < 0 {
		t.Fatalf("wait parts queued %v + commit %v + wake %v = %v; want each ≥ 0 and the sum %v", st.WaitQueued, st.WaitCommit, st.WaitWake, parts, st.WaitTime)
	}
	if st.Waited > 0 && st.WaitCommit <= 0 {
		t.Fatalf("%d waits, none of them in a write's fsync (%v)", st.Waited, st.WaitCommit)
	}
}

// putAndSync runs workers goroutines, each storing `each` records and
// calling Sync after every Put, as the registry does (Put under its lock,
// Sync without it).
func putAndSync(t *testing.T, s *Store, workers, each int) {
	t.Helper()
	var regMu sync.Mutex // the registry lock
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				regMu.Lock()
				err := s.Put(storetest.Full(fmt.Sprintf("w%d-%d", w, i), i, continuity.PhaseSubmitted))
				regMu.Unlock()
				if err == nil {
					err = s.Sync()
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestGroupCommitWithOneProcessor: with one processor (GOMAXPROCS=1, a
// one-CPU machine) the writer's fsync holds the only processor until it
// returns, so what it carries is what was Put before the writer took the
// queue. The callers a write releases each store again; the writer woken by
// the first of them must let the others, runnable behind it, Put first, or
// every fsync carries one version and the callers take turns.
func TestGroupCommitWithOneProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s, _ := open(t, t.TempDir(), Options{})
	defer s.Close()
	const workers, each = 16, 40
	putAndSync(t, s, workers, each)
	st := s.Stats()
	if st.Durable != workers*each {
		t.Fatalf("stats %+v", st)
	}
	// The callers a write released are all runnable when the first of
	// them wakes the writer: the next write carries most of them.
	per := float64(st.Durable) / float64(st.Log.Batches)
	t.Logf("%.1f versions per fsync", per)
	if per < workers/2 {
		t.Fatalf("%d fsynced batches for %d Put+Sync calls of %d callers: %.1f versions per fsync, want at least %d", st.Log.Batches, workers*each, workers, per, workers/2)
	}
}

// TestSyncToForCountsEachAck: a wait on behalf of several acknowledgements
// counts each of them in Syncs and Waited, so Syncs per fsync stays the
// number of acknowledgements one fsync carried.
func TestSyncToForCountsEachAck(t *testing.T) {
	s, _ := open(t, t.TempDir(), Options{})
	defer s.Close()
	if err := s.Put(storetest.Full("k1", 1, continuity.PhaseSubmitted)); err != nil {
		t.Fatal(err)
	}
	before := s.Stats()
	if err := s.SyncToFor(s.Mark(), 5); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Syncs-before.Syncs != 5 || st.Durable != 1 {
		t.Fatalf("after SyncToFor(mark, 5): %d syncs counted (want 5), %d durable (want 1)", st.Syncs-before.Syncs, st.Durable)
	}
	if w := st.Waited - before.Waited; w != 0 && w != 5 {
		t.Fatalf("waited counted %d times; want 5 (or 0 had the write been done already)", w)
	}
	if err := s.SyncToFor(s.Mark(), 3); err != nil { // durable already: no wait
		t.Fatal(err)
	}
	if got := s.Stats(); got.Syncs-st.Syncs != 3 || got.Waited != st.Waited {
		t.Fatalf("SyncToFor of durable versions: %d syncs, %d more waits; want 3 and 0", got.Syncs-st.Syncs, got.Waited-st.Waited)
	}
}

// TestUnknownEncoding: an entry of another encoding version is an error at
// open, not a record silently dropped.
func TestUnknownEncoding(t *testing.T) {
	dir := t.TempDir()
	l, _, err := recordlog.Open(dir, recordlog.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(t.Context(), recordlog.Entry{Kind: recordlog.KindPut, Key: "k", Value: []byte{9, 1, 2}}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Fatalf("open with an unknown encoding: %v", err)
	}
}

// ---- helpers --------------------------------------------------------------------------------

func recordsEqual(a, b continuity.Record) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func keysOf(recs []continuity.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.RequestKey + ":" + string(r.Phase)
	}
	return out
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if ext := filepath.Ext(e.Name()); ext == ".seg" || ext == ".cseg" {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out
}

func lastSegment(t *testing.T, dir string) string {
	segs := segments(t, dir)
	if len(segs) == 0 {
		t.Fatal("no segment")
	}
	return segs[len(segs)-1]
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	for _, p := range segments(t, from) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(p)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// fullFS is the operating system's file system with a switch that makes
// every write fail with ENOSPC, and one that makes fsyncs fail.
type fullFS struct {
	recordlog.OSFS
	full, syncFails atomic.Bool
}

func (f *fullFS) OpenFile(name string, flag int, perm fs.FileMode) (recordlog.File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &fullFile{File: file, fs: f}, nil
}

type fullFile struct {
	recordlog.File
	fs *fullFS
}

func (f *fullFile) Write(p []byte) (int, error) {
	if f.fs.full.Load() {
		// A short write, as a filling disk gives.
		n, _ := f.File.Write(p[:len(p)/2])
		return n, &os.PathError{Op: "write", Path: "segment", Err: syscall.ENOSPC}
	}
	return f.File.Write(p)
}

func (f *fullFile) Sync() error {
	if f.fs.syncFails.Load() {
		return &os.PathError{Op: "sync", Path: "segment", Err: syscall.EIO}
	}
	return f.File.Sync()
}
