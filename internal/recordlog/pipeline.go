package recordlog

import (
	"fmt"
	"os"
	"time"
)

// maxInFlight is how many group commits WriteFrames lets be written and not
// yet fsynced at once. Two let the next group commit start while the
// previous one syncs, on a disk that overlaps flushes (BenchmarkDiskOverlap);
// a crash then tears at most the last two batches, and Open accepts a
// damaged batch followed by one intact one as such a tear.
const maxInFlight = 2

// Written is a group commit WriteFrames wrote and SyncWritten has yet to make
// durable. Pass each one to SyncWritten exactly once.
type Written struct {
	f       File
	path    string
	inside  bool // in preallocated space: an fdatasync suffices
	entries int
	prev    chan struct{} // closed when the commit written before this one has ended
	done    chan struct{} // closed when this one has ended
}

// waitIdleLocked waits (releasing mu meanwhile) until no group commit
// written by WriteFrames is waiting for its fsync.
func (l *Log) waitIdleLocked() {
	for l.inflight > 0 {
		l.idle.Wait()
	}
}

// WriteFrames is the first half of CommitFrames: it writes f as one group
// commit at the end of the log, without waiting for its fsync, so that the
// caller may write the next group commit while this one syncs. Call
// SyncWritten with the result (from any goroutine) to make it durable. At most
// two group commits are written and not yet synced at a time: a third
// WriteFrames waits until the older one's SyncWritten has returned. f is not
// needed once WriteFrames has returned. Errors are Commit's; after an
// error there is nothing to sync and f may be written again.
func (l *Log) WriteFrames(f *Frames) (*Written, error) {
	if f.entries == 0 {
		return nil, nil
	}
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.inflight >= maxInFlight && l.failed == nil {
		l.idle.Wait()
	}
	if l.failed != nil {
		return nil, l.failed
	}
	if l.activeSize >= l.opt.SegmentSize {
		// Waits for the commits in flight; a failed rotation leaves the
		// active segment in place, and the next batch tries again.
		_ = l.rotateLocked()
		if l.failed != nil {
			return nil, l.failed
		}
	}
	putMarker(f.buf[:markerSize], l.activeSize, l.inflight > 0)
	inside, err := l.putLocked(f.buf)
	if err != nil {
		return nil, err
	}
	w := &Written{
		f:       l.active,
		path:    segment{seq: l.activeSeq}.path(l.dir),
		inside:  inside,
		entries: f.entries,
		prev:    l.lastDone,
		done:    make(chan struct{}),
	}
	l.lastDone = w.done
	l.inflight++
	l.activeSize += int64(len(f.buf))
	if l.prealloc > 0 {
		l.extendLocked()
	}
	return w, nil
}

// SyncWritten fsyncs a group commit WriteFrames wrote and returns once it is
// durable, and every group commit written before it too: durable progress is
// in the order of the writes, so a commit whose fsync ends first waits for
// the one before it, and fails if that one failed. A failed fsync fails the
// log (ErrFailed), as in CommitFrames.
func (l *Log) SyncWritten(w *Written) error {
	if w == nil {
		return nil
	}
	l.syncs.Add(1)
	t0 := time.Now()
	var err error
	if w.inside {
		l.datasyncs.Add(1)
		err = datasync(w.f.(*os.File))
	} else {
		err = w.f.Sync()
	}
	l.syncNanos.Add(int64(time.Since(t0)))
	if w.prev != nil {
		<-w.prev
	}
	l.mu.Lock()
	if err != nil && l.failed == nil {
		l.failed = fmt.Errorf("%w: sync %s: %w; reopen the log to recover", ErrFailed, w.path, err)
	}
	err = l.failed
	if err == nil {
		// Counted before the next commit may return: Stats never shows a
		// later commit durable and an earlier one not.
		l.batches.Add(1)
		l.appends.Add(1)
		l.entries.Add(int64(w.entries))
	}
	l.inflight--
	l.idle.Broadcast()
	l.mu.Unlock()
	close(w.done)
	return err
}
