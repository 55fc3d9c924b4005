// Package logstore is the durable continuity.Store: the records a registry
// holds in memory (a continuity.MemoryStore, with its budgets and its
// eviction, unchanged) and, behind them, every version Put in a recordlog
// segment log on local disk, replayed into memory when the store is opened.
//
// Put never waits for the disk (the registry calls it with its lock held): it
// stores the version in memory and queues its encoding. One writer goroutine
// hands everything queued to the log as one append, so the versions Put while
// a write and its fsync were in flight share the next one (group commit).
// Sync waits until every version Put before it was called is durable, or
// returns why it is not.
//
// Entry format: the entry's key is the record's request key, its value a
// version byte (encodingV1) followed by continuity.AppendEncoded, the
// encoding the retained records are kept in. Eviction writes nothing: the log
// is compacted in the background once CompactAfter bytes were appended since
// the last compaction, keeping the last version of every key the store still
// holds (pending or retained), so a replay evicts the same records the
// running store had evicted.
package logstore

import (
	"errors"
	"fmt"
	"iter"
	"runtime"
	"sync"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/recordlog"
)

// encodingV1 is the first byte of every entry this package writes.
const encodingV1 = 1

// DefaultCompactAfter is the default of Options.CompactAfter.
const DefaultCompactAfter = 64 << 20

// Options configure Open. The zero value keeps the default retention.
type Options struct {
	// Retention bounds the terminal records kept, in memory and so in the
	// log after a compaction.
	Retention continuity.Retention
	// Log tunes the record log (its FS seam above all).
	Log recordlog.Options
	// CompactAfter is how many bytes are appended to the log between
	// compactions; a compaction then raises it to twice the compacted size
	// when that is more, so a large live set is not rewritten for every few
	// new records. Zero means DefaultCompactAfter.
	CompactAfter int64
	// Volatile, when set, picks the versions Put keeps in memory only: they
	// are never written to the log, so a restart does not see them (an
	// earlier version of the key, if any, comes back instead). It is called
	// with the store's lock held and must not call the store.
	Volatile func(*continuity.Record) bool
}

// Recovered is what Open read: the log's recovery report and the records it
// left in memory. Its JSON is the store_recovered diagnostics entry.
type Recovered struct {
	recordlog.Recovery
	Pending  int `json:"pending"`
	Retained int `json:"retained"`
}

// Stats are counters of an open Store.
type Stats struct {
	Log     recordlog.Stats
	Puts    uint64 // versions Put since Open
	Durable uint64 // of them, written and fsynced
	// Syncs counts Sync and SyncTo calls; Waited those of them that found
	// their versions not yet durable and waited, for WaitTime in total.
	// Syncs per Log.Syncs is how many acknowledgements shared an fsync.
	Syncs    uint64
	Waited   uint64
	WaitTime time.Duration
	// A wait that a write ended successfully splits WaitTime three ways:
	// Queued, until the write that carried its versions began (the write
	// in flight when it was called had to end first); Commit, from then,
	// or from the call if that write had already begun, until the write
	// and its fsync returned; Wake, from there until the waiting caller
	// ran again (the writer releases its batch's callers one by one, and
	// each needs a processor). A wait ended by an error counts in WaitTime
	// only.
	WaitQueued, WaitCommit, WaitWake time.Duration
	// Writes counts the writes begun; Unawaited those of them begun while
	// no Sync was waiting.
	Writes, Unawaited uint64
	Compactions       int64
	CompactErr        error // the last compaction's error, nil once one succeeds
	// Compacting: a compaction runs now (its goroutine and the live set
	// it copies are alive until it ends).
	Compacting bool
}

// Store is the durable continuity.Store. Open makes one; Close it after the
// registry that uses it is no longer called.
type Store struct {
	mem      *continuity.MemoryStore // only touched by the serialized calls and by Open
	log      *recordlog.Log
	volatile func(*continuity.Record) bool // Options.Volatile

	wake chan struct{} // a write may be due; capacity 1
	stop chan struct{}
	done chan struct{} // the writer has returned

	mu      sync.Mutex
	waiters []*waiter // Sync calls waiting for a write, in no order
	// queue holds the versions Put since the last write began, encoded as
	// log frames; spare is the writer's other buffer, swapped in when a
	// write takes queue (nil while that write runs).
	queue     *recordlog.Frames
	spare     *recordlog.Frames
	queueSize int64
	queued    uint64 // versions Put
	durable   uint64 // versions written and fsynced, a prefix of queued
	writes    uint64 // writes begun
	writeErr  error  // the last write's error; nil once one succeeds
	errWrite  uint64 // the number of the write that failed with writeErr
	failed    error  // the log can take no more (it failed or was closed)
	closed    bool

	syncs, waited uint64 // Sync calls, and those that waited
	waitTime      time.Duration
	// The parts of the successful waits (Stats.WaitQueued, …), and the
	// bounds of the last write, which releaseLocked hands to its callers.
	waitQueued, waitCommit, waitWake time.Duration
	writeBegan, writeEnded           time.Time
	unawaited                        uint64 // writes begun while no Sync waited

	// Compaction. putSince is the keys Put since the running compaction
	// took its snapshot of the keys held, until the log sealed the
	// segments it folds (nil outside that window): both sets are kept.
	compactAfter int64
	threshold    int64 // bytes to append before the next compaction
	appended     int64 // bytes appended since the last compaction
	compacting   bool
	putSince     map[string]struct{}
	compactions  int64
	compactErr   error
	compactDone  sync.WaitGroup
	// compactBegins, when set (by tests), is called by the compaction's
	// goroutine before it asks the log to compact.
	compactBegins func()
}

var _ continuity.Store = (*Store)(nil)

// Open opens (creating it if needed) the record log in dir, replays it into
// memory and starts the writer. A damaged log (recordlog.ErrCorrupt), an
// entry this version cannot decode, a directory it cannot create or lock is
// an error: the store never starts with records silently missing.
func Open(dir string, opt Options) (*Store, Recovered, error) {
	s := &Store{
		mem:   continuity.NewMemoryStore(opt.Retention),
		queue: new(recordlog.Frames),
		spare: new(recordlog.Frames),
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	s.compactAfter = opt.CompactAfter
	s.volatile = opt.Volatile
	if s.compactAfter <= 0 {
		s.compactAfter = DefaultCompactAfter
	}
	s.threshold = s.compactAfter
	replay := func(e recordlog.Entry) error {
		if e.Kind != recordlog.KindPut {
			return fmt.Errorf("logstore: entry of kind %s for key %q: this store writes puts only", e.Kind, e.Key)
		}
		rec, err := decode(e.Value)
		if err != nil {
			return fmt.Errorf("logstore: key %q: %w", e.Key, err)
		}
		if rec.RequestKey != e.Key {
			return fmt.Errorf("logstore: entry for key %q holds the record of %q", e.Key, rec.RequestKey)
		}
		s.appended += int64(len(e.Value) + len(e.Key))
		return s.mem.Put(rec)
	}
	l, rec, err := recordlog.Open(dir, opt.Log, replay)
	if err != nil {
		return nil, Recovered{Recovery: rec}, err
	}
	s.log = l
	out := Recovered{Recovery: rec}
	out.Pending, out.Retained = s.mem.Len()
	go s.run()
	return s, out, nil
}

// maxKeptFrames is the largest write buffer the writer keeps for the next
// batch; a larger one (a burst) is let go.
const maxKeptFrames = 4 << 20

func decode(b []byte) (continuity.Record, error) {
	if len(b) == 0 || b[0] != encodingV1 {
		v := -1
		if len(b) > 0 {
			v = int(b[0])
		}
		return continuity.Record{}, fmt.Errorf("record encoding version %d is not known to this version (it knows %d)", v, encodingV1)
	}
	return continuity.DecodeEncoded(b[1:])
}

// Get implements continuity.Store.
func (s *Store) Get(key string) (continuity.Record, bool) { return s.mem.Get(key) }

// Pending implements continuity.Store.
func (s *Store) Pending() iter.Seq[continuity.Record] { return s.mem.Pending() }

// List implements continuity.Store.
func (s *Store) List() iter.Seq[continuity.Record] { return s.mem.List() }

// Len implements continuity.Store.
func (s *Store) Len() (pending, retained int) { return s.mem.Len() }

// Put stores rec in memory and queues its encoding for the writer; it does
// not wait for the disk. It fails, storing nothing, once the log can take no
// more (an fsync failed: recordlog.ErrFailed; or the store is closed), and
// for a record too large for one log entry.
//
// The version is encoded once, straight into the frames the next write
// hands to the log (recordlog.Frames): no buffer of its own.
func (s *Store) Put(rec continuity.Record) error {
	s.mu.Lock()
	if s.failed != nil {
		err := s.failed
		s.mu.Unlock()
		return err
	}
	if s.volatile != nil && s.volatile(&rec) {
		err := s.mem.Put(rec) // never fails today
		s.mu.Unlock()
		return err
	}
	before := s.queue.Size()
	b := s.queue.BeginPut(rec.RequestKey)
	b = continuity.AppendEncoded(append(b, encodingV1), &rec)
	if err := s.queue.EndPut(b); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("logstore: record %s: %w", rec.RequestKey, err)
	}
	if err := s.mem.Put(rec); err != nil { // never fails today
		s.queue.DropLast()
		s.mu.Unlock()
		return err
	}
	s.queueSize += int64(s.queue.Size() - before)
	s.queued++
	if s.putSince != nil {
		s.putSince[rec.RequestKey] = struct{}{}
	}
	compact := !s.compacting && !s.closed && s.appended+s.queueSize >= s.threshold
	if compact {
		s.compacting = true
		s.putSince = map[string]struct{}{}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	if compact {
		s.startCompaction()
	}
	return nil
}

// Sync returns once every version Put before it was called is written and
// fsynced, or with the error of a write begun after it was called (so one
// that was to carry them): a disk
// that is full or failing. A failed write is tried again (by the next Put or
// Sync) unless the log itself failed, after which every Sync fails.
func (s *Store) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked(s.queued)
}

// Mark returns the number of versions Put so far: SyncTo(Mark()) waits for
// every version Put before Mark was called, and no later one.
func (s *Store) Mark() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued
}

// SyncTo is Sync for the versions Put before mark was taken (Mark): a caller
// that Put its record, then waited for something else (a peer's answer)
// while other callers Put theirs, waits only for the write that carries its
// own version, not for theirs as well. Errors are Sync's.
func (s *Store) SyncTo(mark uint64) error {
	return s.SyncToFor(mark, 1)
}

// SyncToFor is SyncTo on behalf of acks acknowledgements that share the
// wait (a replica's batch of answers): Stats counts acks Sync calls, so
// Syncs per fsync stays the number of acknowledgements an fsync carried.
func (s *Store) SyncToFor(mark uint64, acks int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncs += uint64(max(acks, 1)) - 1
	return s.syncLockedFor(min(mark, s.queued), uint64(max(acks, 1)))
}

// waiter is a Sync call waiting for a write. A write that ends wakes only the
// callers it concerns: those whose versions it made durable, and those it
// failed for; the others keep waiting without being woken.
type waiter struct {
	target uint64     // durable must reach it
	start  uint64     // s.writes when the call began: a later write's error is its
	done   chan error // buffered; receives the call's result once
	// began, ended: the bounds of the write that made the versions
	// durable, set before done receives nil.
	began, ended time.Time
}

// waiters recycles waiter values (and their channels) between Sync calls.
var waiters = sync.Pool{New: func() any { return &waiter{done: make(chan error, 1)} }}

// syncLocked waits, with s.mu held on entry and released while it waits,
// until durable reaches target. Only the caller's own goroutine is woken,
// once, by the write that decides its result.
func (s *Store) syncLocked(target uint64) error {
	return s.syncLockedFor(target, 1)
}

// syncLockedFor is syncLocked for acks acknowledgements: a wait counts acks
// times in Waited. (SyncToFor counts the calls.)
func (s *Store) syncLockedFor(target, acks uint64) error {
	s.syncs++
	if s.durable >= target {
		return nil
	}
	if err := s.syncErrLocked(s.writes); err != nil {
		return err
	}
	t0 := time.Now()
	w := waiters.Get().(*waiter)
	w.target, w.start = target, s.writes
	s.waiters = append(s.waiters, w)
	s.waited += acks
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.mu.Unlock()
	err := <-w.done
	woke := time.Now()
	// The write that sent on done dropped w from s.waiters first: w is
	// this call's alone again.
	began, ended := w.began, w.ended
	waiters.Put(w)
	s.mu.Lock()
	n := time.Duration(acks)
	s.waitTime += woke.Sub(t0) * n
	if err == nil {
		from := t0
		if began.After(t0) {
			s.waitQueued += began.Sub(t0) * n
			from = began
		}
		// A write may end just before the call took t0 and still be
		// the one that releases it (its writer then waits for s.mu).
		if ended.Before(from) {
			ended = from
		}
		s.waitCommit += ended.Sub(from) * n
		s.waitWake += woke.Sub(ended) * n
	}
	return err
}

// syncErrLocked is the error a Sync call begun when s.writes was start
// returns now that its versions are not durable, or nil if it waits on.
func (s *Store) syncErrLocked(start uint64) error {
	if s.failed != nil {
		return fmt.Errorf("logstore: records not durable: %w", s.failed)
	}
	if s.writeErr != nil && s.errWrite > start {
		return fmt.Errorf("logstore: records not durable: %w", s.writeErr)
	}
	return nil
}

// releaseLocked ends the waits a write decided: the callers whose versions
// are durable now, and those a failure ends. It returns how many it ended.
func (s *Store) releaseLocked() int {
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		switch {
		case s.durable >= w.target:
			w.began, w.ended = s.writeBegan, s.writeEnded
			w.done <- nil
		default:
			if err := s.syncErrLocked(w.start); err != nil {
				w.done <- err
				continue
			}
			kept = append(kept, w)
		}
	}
	released := len(s.waiters) - len(kept)
	clear(s.waiters[len(kept):])
	s.waiters = kept
	return released
}

// run is the writer: it appends whatever is queued, one append at a time,
// until Close.
func (s *Store) run() {
	defer close(s.done)
	for {
		select {
		case <-s.wake:
			// The Put that woke the writer readied it to run next, ahead
			// of the callers already runnable behind that Put (requests
			// the network poller handed over together, callers the last
			// write released). Let them Put first: the write's fsync
			// keeps this processor until it returns, and with one
			// processor (GOMAXPROCS=1, a one-CPU machine) nothing else
			// runs meanwhile, so a writer that went at once carried one
			// version per fsync and the callers took turns.
			runtime.Gosched()
			s.write()
		case <-s.stop:
			s.write()
			return
		}
	}
}

// write appends every queued entry as one append. A failed append puts them
// back at the head of the queue, in order, for the next write.
func (s *Store) write() {
	s.mu.Lock()
	frames, size, upto := s.queue, s.queueSize, s.queued
	if frames.Entries() == 0 {
		s.mu.Unlock()
		return
	}
	s.queue, s.spare, s.queueSize = s.spare, nil, 0
	s.writes++
	if len(s.waiters) == 0 {
		s.unawaited++
	}
	n := s.writes
	s.mu.Unlock()
	began := time.Now()
	err := s.log.CommitFrames(frames)
	ended := time.Now()
	s.mu.Lock()
	s.writeBegan, s.writeEnded = began, ended
	if err != nil {
		// frames, then what was Put meanwhile, in order.
		frames.Append(s.queue)
		s.queue.Reset()
		s.queue, s.spare = frames, s.queue
		s.errWrite = n
		s.queueSize += size
		s.writeErr = err
		if errors.Is(err, recordlog.ErrFailed) || errors.Is(err, recordlog.ErrClosed) {
			s.failed = err
		}
	} else {
		if frames.Cap() > maxKeptFrames {
			frames = new(recordlog.Frames)
		}
		frames.Reset()
		s.spare = frames
		s.durable = upto
		s.writeErr = nil
		s.appended += size
	}
	released := s.releaseLocked()
	next := s.queue.Entries() > 0
	s.mu.Unlock()
	if released > 0 && next {
		// The callers just released are runnable on this goroutine's
		// processor; the next write's flush would block it with them
		// queued behind it until the runtime noticed the blocking call
		// (tens of microseconds at best, far more on a busy host). Let
		// them run first: they answer their requests at once, and those
		// that store again meanwhile join the next write.
		runtime.Gosched()
	}
}

// startCompaction snapshots the keys the store holds (it runs within a Put,
// so with the registry lock held and no other call into mem) and compacts
// the log in the background, keeping those keys and every key Put since.
func (s *Store) startCompaction() {
	held := s.mem.Holds()
	s.compactDone.Add(1)
	go func() {
		defer s.compactDone.Done()
		if s.compactBegins != nil {
			s.compactBegins()
		}
		// The log calls the predicate first once the segments it folds
		// are sealed: no version Put after that is in them, so the keys
		// Put until then are all that must be kept besides live, and the
		// rest of the compaction looks them up without the lock (and
		// Put stops recording them).
		var (
			since map[string]struct{}
			fixed bool
		)
		st, err := s.log.Compact(func(key string) bool {
			if !fixed {
				s.mu.Lock()
				since, s.putSince = s.putSince, nil
				s.mu.Unlock()
				fixed = true
			}
			if held(key) {
				return true
			}
			_, ok := since[key]
			return ok
		})
		s.mu.Lock()
		defer s.mu.Unlock()
		s.compacting = false
		s.putSince = nil // if the log asked nothing (an error, or no segment to fold)
		s.compactErr = err
		if err == nil {
			s.compactions++
			s.appended = 0
			s.threshold = max(s.compactAfter, 2*st.BytesAfter)
		}
	}()
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Log: s.log.Stats(), Puts: s.queued, Durable: s.durable,
		Syncs: s.syncs, Waited: s.waited, WaitTime: s.waitTime, Writes: s.writes, Unawaited: s.unawaited,
		WaitQueued: s.waitQueued, WaitCommit: s.waitCommit, WaitWake: s.waitWake,
		Compactions: s.compactions, CompactErr: s.compactErr, Compacting: s.compacting}
}

// Close writes what is still queued, waits for a running compaction and
// closes the log. The registry must no longer call the store. Later calls
// return nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	s.compactDone.Wait()
	s.mu.Lock()
	pending := s.queued - s.durable
	werr := s.writeErr
	if s.failed == nil {
		s.failed = recordlog.ErrClosed
	}
	s.releaseLocked()
	s.mu.Unlock()
	err := s.log.Close()
	if pending > 0 && werr != nil {
		err = errors.Join(fmt.Errorf("logstore: %d records not written: %w", pending, werr), err)
	}
	return err
}
