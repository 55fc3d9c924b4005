package recordlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
)

// compactYieldEvery is how many entries a compaction's scan reads between
// two yields of its processor (see scan): a few dozen microseconds' work.
const compactYieldEvery = 256

// CompactStats says what one Compact did.
type CompactStats struct {
	Segments    int   // segment files folded into the compacted segment
	EntriesRead int64 // entries in them
	EntriesKept int64 // entries written to the compacted segment
	BytesBefore int64 // bytes of the folded segments
	BytesAfter  int64 // bytes of the compacted segment
}

// Compact seals the active segment and rewrites every older segment into one
// compacted segment that keeps, for each key whose last entry is a put and
// for which live returns true, that last entry, in commit order. Evicted keys
// and keys live rejects are dropped. Appends continue during compaction, into
// the new active segment.
//
// live is called on the calling goroutine, for every entry of the folded
// segments (so a key may be asked about more than once), and first only once
// the active segment was sealed: no entry is added to the folded segments
// after that, so a caller may fix its answers then. It must give a key the
// same answer throughout one Compact. It may Append but must not Close the
// log. Only the keys it accepts are indexed: a log whose keys are mostly
// dead (one per request, most of them evicted since) costs a lookup per
// entry, not an index entry per key.
//
// Each step is crash-safe: the compacted segment is written under a temporary
// name and fsynced, renamed into place and the directory fsynced (the commit
// point), and only then are the folded segments removed. A crash before the
// commit point leaves the old segments in charge; after it, Open removes what
// the compaction had not yet removed. An error before the commit point
// leaves the log as it was; an error after it (removing a folded segment)
// is returned but loses nothing.
func (l *Log) Compact(live func(key string) bool) (CompactStats, error) {
	var st CompactStats
	l.compactMu.Lock()
	defer l.compactMu.Unlock()
	l.closeMu.RLock()
	closed := l.closed
	l.closeMu.RUnlock()
	if closed {
		return st, ErrClosed
	}
	l.mu.Lock()
	if l.failed != nil {
		err := l.failed
		l.mu.Unlock()
		return st, err
	}
	if l.activeSize > 0 {
		if err := l.rotateLocked(); err != nil {
			l.mu.Unlock()
			return st, fmt.Errorf("compact: %w", err)
		}
	}
	inputs := slices.Clone(l.sealed)
	l.mu.Unlock()
	if len(inputs) == 0 {
		return st, nil
	}
	st.Segments = len(inputs)

	// Pass 1: where the last entry of each key live accepts is.
	type position struct {
		seg int
		ord int64
		off int64 // of the entry's frame in its segment
		put bool
	}
	// index maps a key to its slot in last: a key seen before is updated
	// through a lookup, which copies no key. Keys live rejects are not
	// indexed at all: their entries are dropped whatever they say.
	index := make(map[string]int)
	var last []position
	for i, s := range inputs {
		err := l.scan(s, 0, 0, func(ord, off int64, v view) {
			st.BytesBefore += int64(len(v.frame))
			if v.kind == kindBatch {
				return
			}
			st.EntriesRead++
			p := position{seg: i, ord: ord, off: off, put: v.kind == KindPut}
			if k, ok := index[string(v.key)]; ok {
				last[k] = p
				return
			}
			if !live(string(v.key)) {
				return
			}
			index[string(v.key)] = len(last)
			last = append(last, p)
		})
		if err != nil {
			return st, err
		}
	}

	// Pass 2: write the live last entries under a temporary name. Each
	// segment is read again from its first entry that is kept, and not at
	// all if it keeps none: on a busy node most entries are dead and the
	// kept ones (the records the store still holds) are the latest, so most
	// of each segment is not read twice.
	first := make([]position, len(inputs))
	for i := range first {
		first[i].ord = -1
	}
	for _, p := range last {
		if f := &first[p.seg]; p.put && (f.ord < 0 || p.ord < f.ord) {
			*f = p
		}
	}
	target := segment{seq: inputs[len(inputs)-1].seq, compacted: true}
	path := target.path(l.dir)
	tmp := path + tmpSuffix
	f, err := l.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return st, fmt.Errorf("compact: create %s: %w", tmp, err)
	}
	abort := func(err error) (CompactStats, error) {
		f.Close()
		_ = l.fs.Remove(tmp)
		return st, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	var werr error
	for i, s := range inputs {
		if first[i].ord < 0 {
			continue
		}
		err := l.scan(s, first[i].off, first[i].ord, func(ord, _ int64, v view) {
			if v.kind == kindBatch {
				return
			}
			k, ok := index[string(v.key)]
			if !ok || werr != nil {
				return
			}
			if p := last[k]; p.seg != i || p.ord != ord || !p.put {
				return
			}
			// The frame is copied as it was read (its checksum was
			// checked): a kept entry is not decoded or encoded again.
			_, werr = bw.Write(v.frame)
			st.EntriesKept++
			st.BytesAfter += int64(len(v.frame))
		})
		if err != nil {
			return abort(err)
		}
		if werr != nil {
			return abort(fmt.Errorf("compact: write %s: %w", tmp, werr))
		}
	}
	if err := bw.Flush(); err != nil {
		return abort(fmt.Errorf("compact: write %s: %w", tmp, err))
	}
	if err := f.Sync(); err != nil {
		return abort(fmt.Errorf("compact: sync %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		_ = l.fs.Remove(tmp)
		return st, fmt.Errorf("compact: close %s: %w", tmp, err)
	}
	if err := l.fs.Rename(tmp, path); err != nil {
		_ = l.fs.Remove(tmp)
		return st, fmt.Errorf("compact: rename %s into place: %w", tmp, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		// The rename may or may not survive a crash; either way the
		// directory holds a consistent log (see Open), and the folded
		// segments stay until it is known to be durable.
		return st, fmt.Errorf("compact: sync directory %s after renaming %s: %w", l.dir, path, err)
	}

	// Committed: the compacted segment supersedes the inputs.
	l.mu.Lock()
	l.sealed = append([]segment{target}, l.sealed[len(inputs):]...)
	l.mu.Unlock()
	var errs []error
	for _, s := range inputs {
		if s == target {
			continue
		}
		if err := l.fs.Remove(s.path(l.dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("compact: remove folded segment: %w", err))
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		errs = append(errs, fmt.Errorf("compact: sync directory %s after removals: %w", l.dir, err))
	}
	return st, errors.Join(errs...)
}

// scan reads a sealed segment from the entry at offset from, whose ordinal
// is fromOrd (0, 0: the whole segment), calling fn with each entry's
// ordinal, its frame's offset and the entry as read (valid during the call
// only). Any damage is ErrCorrupt: sealed segments were complete and
// fsynced.
func (l *Log) scan(s segment, from, fromOrd int64, fn func(ord, off int64, v view)) error {
	path := s.path(l.dir)
	f, err := l.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("compact: open %s: %w", path, err)
	}
	defer f.Close()
	fr := newFrameReaderAt(io.NewSectionReader(f, from, math.MaxInt64-from), from)
	for ord := fromOrd; ; ord++ {
		if (ord-fromOrd)%compactYieldEvery == compactYieldEvery-1 {
			// A compaction is background work that reads and checks
			// every folded byte: tens of milliseconds of CPU per 64 MiB
			// folded (BenchmarkCompactMostlyDead: ~21 MB in 23-26 ms
			// on a 2-vCPU VM). Left alone it runs for the runtime's whole
			// time slice (10 ms) each turn, and with one processor the
			// requests wait that long behind it; so it lets whatever is
			// runnable go first every few dozen microseconds.
			runtime.Gosched()
		}
		off := fr.offset
		v, err := fr.nextView()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if fe := (*frameError)(nil); errors.As(err, &fe) {
				return fmt.Errorf("compact: %w: segment %s at offset %d: %s", ErrCorrupt, path, fe.offset, fe.reason)
			}
			return fmt.Errorf("compact: segment %s: %w", path, err)
		}
		fn(ord, off, v)
	}
}
