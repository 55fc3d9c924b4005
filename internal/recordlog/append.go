package recordlog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"time"
)

// Append stores entries as one unit of the log and returns nil once they are
// durable: written and fsynced, together with whatever other appends the
// writer gathered into the same group commit. The entries of one call are
// contiguous in the log and in replay. Append blocks while the queue is full
// (Options.QueueLen). If ctx ends before the entries were queued, nothing is
// written; if it ends after, Append returns the context's error but the
// entries may still become durable. Errors: ErrInvalidEntry, ErrClosed,
// ErrFailed, or the file system's error for a write that failed (disk full):
// such a write is cut back off the segment, so the log stays appendable.
func (l *Log) Append(ctx context.Context, entries ...Entry) error {
	if len(entries) == 0 {
		return nil
	}
	size := 0
	for _, e := range entries {
		if err := e.validate(); err != nil {
			return err
		}
		size += frameHeaderSize + bodySize(e)
	}
	frames := make([]byte, 0, size)
	for _, e := range entries {
		frames = appendFrame(frames, e)
	}
	r := &request{frames: frames, entries: len(entries), done: make(chan error, 1)}

	// An ended context writes nothing, whether or not the queue has room.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append: %w (nothing was written)", err)
	}
	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case l.reqs <- r:
		l.closeMu.RUnlock()
	case <-ctx.Done():
		l.closeMu.RUnlock()
		return fmt.Errorf("append: %w (nothing was written)", ctx.Err())
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("append: %w (the entries may still become durable)", ctx.Err())
	}
}

// Commit is Append for a caller that gathers its own group commits (one
// writer goroutine of its own): it writes and fsyncs entries in the calling
// goroutine, as one group commit, and returns once they are durable. It saves
// the hand-off to the log's writer goroutine and back, two wake-ups per
// group, on the path every acknowledgement waits on. Commits and Appends are
// serialized; the entries of one call are contiguous. Errors are Append's.
func (l *Log) Commit(entries ...Entry) error {
	if len(entries) == 0 {
		return nil
	}
	size := 0
	for _, e := range entries {
		if err := e.validate(); err != nil {
			return err
		}
		size += frameHeaderSize + bodySize(e)
	}
	return l.commitCaller(len(entries), func() []byte {
		l.wbuf = slices.Grow(appendMarker(l.wbuf[:0], l.activeSize), size)
		for _, e := range entries {
			l.wbuf = appendFrame(l.wbuf, e)
		}
		return l.wbuf
	})
}

// commitCaller is the common part of Commit and CommitFrames: unless the
// log is closed or failed, it writes and fsyncs, as one group commit, the
// batch that encode returns (marker first, for the active segment's
// current end: encode runs with l.mu held), and counts its entries once
// they are durable.
func (l *Log) commitCaller(entries int, encode func() []byte) error {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	l.mu.Lock()
	err := l.failed
	if err == nil {
		err = l.writeDataLocked(encode())
	}
	l.mu.Unlock()
	if err == nil {
		l.appends.Add(1)
		l.entries.Add(int64(entries))
	}
	return err
}

// run is the writer goroutine: it gathers queued appends into one write and
// one fsync, then releases every waiter of the batch. After stop it commits
// what is still queued and returns.
func (l *Log) run() {
	defer close(l.done)
	var batch []*request
	var carry *request
	stopping := false
	for {
		first := carry
		carry = nil
		if first == nil {
			if stopping {
				select {
				case first = <-l.reqs:
				default:
					return
				}
			} else {
				select {
				case first = <-l.reqs:
				case <-l.stop:
					stopping = true
					continue
				}
			}
		}
		batch = append(batch[:0], first)
		size := len(first.frames)
	fill:
		for size < l.opt.MaxBatchBytes {
			select {
			case r := <-l.reqs:
				if size+len(r.frames) > l.opt.MaxBatchBytes {
					carry = r
					break fill
				}
				batch = append(batch, r)
				size += len(r.frames)
			default:
				break fill
			}
		}
		l.commit(batch)
		clear(batch)
	}
}

// commit writes and syncs one batch and releases its waiters.
func (l *Log) commit(batch []*request) {
	l.mu.Lock()
	err := l.writeLocked(batch)
	l.mu.Unlock()
	if err == nil {
		n := 0
		for _, r := range batch {
			n += r.entries
		}
		l.appends.Add(int64(len(batch)))
		l.entries.Add(int64(n))
	}
	for _, r := range batch {
		r.done <- err
	}
}

func (l *Log) writeLocked(batch []*request) error {
	if l.failed != nil {
		return l.failed
	}
	l.wbuf = appendMarker(l.wbuf[:0], l.activeSize)
	for _, r := range batch {
		l.wbuf = append(l.wbuf, r.frames...)
	}
	return l.writeDataLocked(l.wbuf)
}

// writeDataLocked writes one group commit, its batch marker first, and
// fsyncs it.
func (l *Log) writeDataLocked(data []byte) error {
	path := segment{seq: l.activeSeq}.path(l.dir)
	end := l.activeSize + int64(len(data))
	// inside: the batch lands in preallocated space whose filler is
	// durable, so the file's size and blocks do not change and an
	// fdatasync makes it durable.
	inside := false
	var err error
	if l.prealloc > 0 {
		inside = l.waitExtensionLocked(end)
		_, err = l.active.(*os.File).WriteAt(data, l.activeSize)
	} else {
		_, err = l.active.Write(data)
	}
	if err != nil {
		werr := fmt.Errorf("append %d bytes to %s: %w", len(data), path, err)
		// Cut whatever part of the batch reached the file, durably, so
		// that the next batch neither follows a torn frame nor leaves this
		// batch's marker beyond a later crash's torn tail.
		l.cutPreallocLocked()
		if terr := l.active.Truncate(l.activeSize); terr != nil {
			l.failed = fmt.Errorf("%w: %w; then truncating %s back to %d bytes: %w", ErrFailed, werr, path, l.activeSize, terr)
			return l.failed
		}
		if serr := l.active.Sync(); serr != nil {
			l.failed = fmt.Errorf("%w: %w; then syncing %s after truncating it: %w", ErrFailed, werr, path, serr)
			return l.failed
		}
		return werr
	}
	l.syncs.Add(1)
	t0 := time.Now()
	if inside {
		l.datasyncs.Add(1)
		err = datasync(l.active.(*os.File))
	} else {
		err = l.active.Sync()
	}
	l.syncNanos.Add(int64(time.Since(t0)))
	if err != nil {
		l.failed = fmt.Errorf("%w: sync %s: %w; reopen the log to recover", ErrFailed, path, err)
		return l.failed
	}
	l.batches.Add(1)
	l.activeSize = end
	if l.prealloc > 0 {
		l.extendLocked()
	}
	if l.activeSize >= l.opt.SegmentSize {
		// A failed rotation leaves the active segment in place; the next
		// batch tries again.
		_ = l.rotateLocked()
	}
	return nil
}

// rotateLocked seals the active segment and starts the next one.
func (l *Log) rotateLocked() error {
	old, oldSeq := l.active, l.activeSeq
	// A sealed segment ends at its last frame: cut the preallocated filler.
	if err := l.trimLocked(); err != nil {
		return err
	}
	if err := l.startSegment(oldSeq + 1); err != nil {
		return err
	}
	l.sealed = append(l.sealed, segment{seq: oldSeq})
	// The old file is synced; a close error cannot lose acknowledged bytes.
	_ = old.Close()
	return nil
}

// startSegment creates segment seq, makes its directory entry durable and
// makes it the active segment.
func (l *Log) startSegment(seq uint64) error {
	path := segment{seq: seq}.path(l.dir)
	flag := os.O_RDWR | os.O_CREATE | os.O_TRUNC | os.O_APPEND
	if l.prealloc > 0 {
		flag &^= os.O_APPEND // batches are written at their offset (WriteAt)
	}
	f, err := l.fs.OpenFile(path, flag, 0o600)
	if err != nil {
		return fmt.Errorf("create segment %s: %w", path, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		// Remove the unused file: left behind, it would make the segment
		// still being appended to look like a sealed one to Open, which
		// tolerates a torn tail only in the last segment.
		f.Close()
		_ = l.fs.Remove(path)
		return fmt.Errorf("create segment %s: sync directory: %w", path, err)
	}
	l.active, l.activeSeq, l.activeSize = f, seq, 0
	l.extMu.Lock()
	l.allocated = 0
	l.extMu.Unlock()
	return nil
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	segs := len(l.sealed) + 1
	l.mu.Unlock()
	return Stats{
		Appends:   l.appends.Load(),
		Entries:   l.entries.Load(),
		Batches:   l.batches.Load(),
		Syncs:     l.syncs.Load(),
		SyncTime:  time.Duration(l.syncNanos.Load()),
		Datasyncs: l.datasyncs.Load(),
		Segments:  segs,
	}
}

// Close commits the appends already queued, waits for a running compaction,
// and closes the active segment. Later calls return nil.
func (l *Log) Close() error {
	l.closeMu.Lock()
	if l.closed {
		l.closeMu.Unlock()
		return nil
	}
	l.closed = true
	l.closeMu.Unlock()
	close(l.stop)
	<-l.done
	l.compactMu.Lock()
	defer l.compactMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed == nil {
		// Leave the segment ending at its last frame. Were the cut lost,
		// Open reads the filler as unused space all the same.
		_ = l.trimLocked()
	} else {
		l.cutPreallocLocked()
	}
	err := l.active.Close()
	l.active = nil
	l.lock.Close()
	if err != nil {
		return fmt.Errorf("close record log: %w", err)
	}
	return nil
}

// waitExtensionLocked is called before a batch that ends at end is written:
// it reports whether that end is within the preallocated, durable space. A
// batch reaching into a range a running extension is zeroing waits for it
// first (the extension must not overwrite it); beyond the preallocated space
// the batch extends the file itself, and the fsync that follows makes the
// new size durable.
func (l *Log) waitExtensionLocked(end int64) bool {
	l.extMu.Lock()
	if end > l.allocated && l.extendDone != nil {
		done := l.extendDone
		l.extMu.Unlock()
		<-done
		l.extMu.Lock()
	}
	inside := end <= l.allocated
	l.extMu.Unlock()
	return inside
}

// extendLocked starts a background extension of the active segment when
// less than half of Options.Preallocate is left ahead of the writes: it
// writes filler (fillerByte) after the allocated space and fsyncs it, then
// counts it as allocated. A failed extension is dropped: the batches that need the
// space extend the file themselves.
func (l *Log) extendLocked() {
	l.extMu.Lock()
	defer l.extMu.Unlock()
	if l.extendDone != nil || l.allocated-l.activeSize >= l.prealloc/2 {
		return
	}
	f := l.active.(*os.File)
	from := max(l.allocated, l.activeSize)
	n := l.prealloc
	done := make(chan struct{})
	l.extendDone = done
	go func() {
		err := fillPrealloc(f, from, n)
		if err == nil {
			err = f.Sync()
		}
		l.extMu.Lock()
		if err == nil && l.extendDone == done {
			l.allocated = max(l.allocated, from+n)
		}
		if l.extendDone == done {
			l.extendDone = nil
		}
		l.extMu.Unlock()
		close(done)
	}()
}

// fillPrealloc writes n bytes of fillerByte to f at off.
func fillPrealloc(f *os.File, off, n int64) error {
	fill := bytes.Repeat([]byte{fillerByte}, int(min(n, 256<<10)))
	for n > 0 {
		k := min(n, int64(len(fill)))
		if _, err := f.WriteAt(fill[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// cutPreallocLocked waits for a running extension and forgets the
// preallocated space: the caller is about to truncate the active segment.
func (l *Log) cutPreallocLocked() {
	if l.prealloc == 0 {
		return
	}
	l.extMu.Lock()
	done := l.extendDone
	l.extMu.Unlock()
	if done != nil {
		<-done
	}
	l.extMu.Lock()
	l.allocated = l.activeSize
	l.extMu.Unlock()
}

// trimLocked cuts the active segment's preallocated filler, durably, so that
// the file ends at its last frame.
func (l *Log) trimLocked() error {
	if l.prealloc == 0 {
		return nil
	}
	l.cutPreallocLocked()
	path := segment{seq: l.activeSeq}.path(l.dir)
	st, err := l.active.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Size() == l.activeSize {
		return nil
	}
	if err := l.active.Truncate(l.activeSize); err != nil {
		return fmt.Errorf("cut the preallocated tail of %s at %d bytes: %w", path, l.activeSize, err)
	}
	if err := l.active.Sync(); err != nil {
		return fmt.Errorf("sync %s after cutting its preallocated tail: %w", path, err)
	}
	return nil
}
