package recordlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a Log. The zero value is ready to use.
type Options struct {
	// FS is the file system; nil means OSFS.
	FS FS
	// SegmentSize is the size at which the active segment is sealed and a
	// new one started. Zero means DefaultSegmentSize.
	SegmentSize int64
	// QueueLen bounds the Append calls waiting for the writer; further
	// callers block (or give up with their context). Zero means
	// DefaultQueueLen.
	QueueLen int
	// MaxBatchBytes bounds the bytes one group commit writes; an Append
	// larger than that is written alone. Zero means DefaultMaxBatchBytes.
	MaxBatchBytes int
	// Preallocate is how far ahead of the writes the active segment is
	// extended, with filler (fillerByte) written and fsynced in the
	// background, so that a group commit overwrites space the file already
	// has and needs only an fdatasync, no commit of the file system's
	// journal. Zero means DefaultPreallocate; negative turns it off. It
	// applies to OSFS only (other file systems write as if it were off).
	// Open reads a tail of filler after the last frame as unused space,
	// not as a torn tail (anything else there, zeros included, is torn);
	// rotation and Close cut it off.
	Preallocate int64
}

// Defaults of Options.
const (
	DefaultSegmentSize   = 64 << 20
	DefaultQueueLen      = 1024
	DefaultMaxBatchBytes = 4 << 20
	DefaultPreallocate   = 4 << 20
)

func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.SegmentSize < 0 {
		errs = append(errs, fmt.Errorf("recordlog: Options.SegmentSize is %d, must not be negative", o.SegmentSize))
	}
	if o.QueueLen < 0 {
		errs = append(errs, fmt.Errorf("recordlog: Options.QueueLen is %d, must not be negative", o.QueueLen))
	}
	if o.MaxBatchBytes < 0 {
		errs = append(errs, fmt.Errorf("recordlog: Options.MaxBatchBytes is %d, must not be negative", o.MaxBatchBytes))
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.QueueLen == 0 {
		o.QueueLen = DefaultQueueLen
	}
	if o.MaxBatchBytes == 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.Preallocate == 0 {
		o.Preallocate = DefaultPreallocate
	}
	return o, errors.Join(errs...)
}

// Recovery is what Open found. The engine shows it in diagnostics as
// store_recovered; the JSON names are the operator surface's.
type Recovery struct {
	// Segments is the number of segment files replayed.
	Segments int `json:"segments"`
	// Entries is the number of entries replayed.
	Entries int64 `json:"entries"`
	// Bytes is the size of the replayed entries, frames included.
	Bytes int64 `json:"bytes"`
	// TruncatedBytes is how many bytes of a torn tail were cut from the last
	// segment; zero when the log ended cleanly.
	TruncatedBytes int64 `json:"truncated_bytes"`
	// TruncatedFile and TruncatedAt name the segment and the offset it was
	// cut at, and TruncateReason what was wrong there, when TruncatedBytes > 0.
	TruncatedFile  string `json:"truncated_file,omitempty"`
	TruncatedAt    int64  `json:"truncated_at,omitempty"`
	TruncateReason string `json:"truncate_reason,omitempty"`
	// RemovedFiles counts files left by an interrupted compaction (temporary
	// or superseded segments) that Open removed.
	RemovedFiles int `json:"removed_files"`
}

// Stats are counters of a Log since Open.
type Stats struct {
	Appends int64 // Append calls acknowledged
	Entries int64 // entries acknowledged
	Batches int64 // group commits written and fsynced
	Syncs   int64 // fsyncs of segment files by group commits
	// SyncTime is the time those fsyncs took, in total: SyncTime/Syncs is
	// the disk's fsync latency as the log sees it.
	SyncTime time.Duration
	// Datasyncs counts the Syncs that were fdatasyncs of batches written
	// into preallocated space (Options.Preallocate).
	Datasyncs int64
	Segments  int // segment files, the active one included
}

// Log is an open record log. Append, Compact and Stats may be called from
// any number of goroutines; Close once, after which they fail with ErrClosed.
type Log struct {
	dir  string
	fs   FS
	opt  Options
	reqs chan *request
	stop chan struct{}
	done chan struct{}

	closeMu sync.RWMutex // guards closed; Append holds it for reading while it enqueues
	closed  bool

	compactMu sync.Mutex // one compaction at a time; taken before mu

	mu         sync.Mutex // guards the fields below; held by the writer for each batch
	active     File
	activeSeq  uint64
	activeSize int64
	sealed     []segment // older than the active segment, oldest first
	failed     error     // sticky, wraps ErrFailed
	wbuf       []byte    // the writer's batch buffer
	lock       io.Closer // the directory's lock, held until Close
	prealloc   int64     // Options.Preallocate when the FS is OSFS, else 0

	// The active segment's preallocation. Lock order: mu, then extMu; the
	// background extension takes extMu only.
	extMu      sync.Mutex
	allocated  int64         // bytes of the active segment on disk (durable size), >= activeSize
	extendDone chan struct{} // non-nil while an extension runs; closed when it ends

	appends, entries, batches, syncs atomic.Int64
	syncNanos, datasyncs             atomic.Int64
}

// request is one Append waiting for the writer.
type request struct {
	frames  []byte
	entries int
	done    chan error // buffered; receives the batch's result once
}

// Open opens the log in dir, creating the directory if needed, replays every
// entry to replay in commit order, truncates a torn tail of the last segment,
// and starts the writer. replay may keep the entries it is given; nil skips
// them. An error from replay stops Open and is returned. A damaged segment other than the
// last is an error wrapping ErrCorrupt that names the file and offset.
func Open(dir string, opt Options, replay func(Entry) error) (*Log, Recovery, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, Recovery{}, err
	}
	if replay == nil {
		replay = func(Entry) error { return nil }
	}
	fsys := opt.FS
	if err := fsys.MkdirAll(dir, 0o700); err != nil {
		return nil, Recovery{}, fmt.Errorf("open record log: create directory %s: %w", dir, err)
	}
	lockPath := filepath.Join(dir, LockName)
	lock, err := fsys.Lock(lockPath)
	if err != nil {
		return nil, Recovery{}, fmt.Errorf("open record log: lock %s: %w", lockPath, err)
	}
	names, err := fsys.ReadDir(dir)
	if err != nil {
		lock.Close()
		return nil, Recovery{}, fmt.Errorf("open record log: list %s: %w", dir, err)
	}
	var rec Recovery
	plan := planLayout(names)
	l := &Log{dir: dir, fs: fsys, opt: opt, lock: lock}
	if _, ok := fsys.(OSFS); ok && opt.Preallocate > 0 {
		l.prealloc = opt.Preallocate
	}
	for i, s := range plan.live {
		last := i == len(plan.live)-1 && !s.compacted
		f, size, err := l.replaySegment(s, last, replay, &rec)
		if err != nil {
			l.closeFiles()
			return nil, rec, err
		}
		if last {
			l.active, l.activeSeq, l.activeSize = f, s.seq, size
		} else {
			l.sealed = append(l.sealed, s)
		}
	}
	// Only once the live files have been read: what an interrupted
	// compaction left (a temporary file, or segments its committed result
	// supersedes).
	for _, n := range plan.obsolete {
		if err := fsys.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.closeFiles()
			return nil, rec, fmt.Errorf("open record log: remove leftover %s: %w", filepath.Join(dir, n), err)
		}
		rec.RemovedFiles++
	}
	if l.active == nil {
		next := uint64(1)
		if n := len(l.sealed); n > 0 {
			next = l.sealed[n-1].seq + 1
		}
		if err := l.startSegment(next); err != nil {
			l.closeFiles()
			return nil, rec, fmt.Errorf("open record log: %w", err)
		}
	}
	// Makes the removals, a new segment, and the directory itself (if
	// MkdirAll created it) durable.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := fsys.SyncDir(d); err != nil {
			l.closeFiles()
			return nil, rec, fmt.Errorf("open record log: sync directory %s: %w", d, err)
		}
	}
	l.reqs = make(chan *request, opt.QueueLen)
	l.stop = make(chan struct{})
	l.done = make(chan struct{})
	go l.run()
	return l, rec, nil
}

// replaySegment reads one segment. For the last segment it truncates a torn
// tail and returns the file, open for appending, and its size.
func (l *Log) replaySegment(s segment, last bool, replay func(Entry) error, rec *Recovery) (File, int64, error) {
	path := s.path(l.dir)
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR | os.O_APPEND
		if l.prealloc > 0 {
			flag = os.O_RDWR // batches are written at their offset (WriteAt)
		}
	}
	f, err := l.fs.OpenFile(path, flag, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("open record log: open segment %s: %w", path, err)
	}
	fail := func(err error) (File, int64, error) {
		f.Close()
		return nil, 0, err
	}
	rec.Segments++
	var size int64
	fr := newFrameReader(f)
	for {
		e, n, err := fr.next()
		if err == io.EOF {
			break
		}
		var fe *frameError
		if errors.As(err, &fe) && fe.torn && last {
			st, serr := f.Stat()
			if serr != nil {
				return fail(fmt.Errorf("open record log: stat segment %s: %w", path, serr))
			}
			unused, ferr := fillerTail(f, fe.offset, st.Size())
			if ferr != nil {
				return fail(fmt.Errorf("open record log: read segment %s after offset %d: %w", path, fe.offset, ferr))
			}
			if unused {
				// Space a preallocation filled that no batch reached (a
				// batch that did, even torn, left other bytes): the log
				// ends here. The space is kept for writes, or cut when
				// this log does not preallocate (it appends at the end of
				// the file).
				if l.prealloc > 0 {
					l.allocated = st.Size()
					break
				}
				if terr := f.Truncate(fe.offset); terr != nil {
					return fail(fmt.Errorf("open record log: cut the preallocated tail of %s at offset %d: %w", path, fe.offset, terr))
				}
				if serr := f.Sync(); serr != nil {
					return fail(fmt.Errorf("open record log: sync %s after cutting its preallocated tail: %w", path, serr))
				}
				break
			}
			later, lerr := laterBatch(f, fe.offset, st.Size())
			if lerr != nil {
				return fail(fmt.Errorf("open record log: read segment %s after offset %d: %w", path, fe.offset, lerr))
			}
			if later >= 0 {
				return fail(fmt.Errorf("open record log: %w: segment %s at offset %d: %s, and a batch committed after it starts at offset %d, so a crash cannot explain it; restore the directory from a backup or move the file aside to start without its records",
					ErrCorrupt, path, fe.offset, fe.reason, later))
			}
			if terr := f.Truncate(fe.offset); terr != nil {
				return fail(fmt.Errorf("open record log: truncate torn tail of %s at offset %d: %w", path, fe.offset, terr))
			}
			if serr := f.Sync(); serr != nil {
				return fail(fmt.Errorf("open record log: sync %s after truncating it: %w", path, serr))
			}
			rec.TruncatedBytes = st.Size() - fe.offset
			rec.TruncatedFile, rec.TruncatedAt, rec.TruncateReason = s.name(), fe.offset, fe.reason
			break
		}
		if fe != nil {
			where := "not the last segment, so a crash cannot explain it"
			if !fe.torn {
				where = "the entry's checksum is good but its content is not readable by this version"
			}
			return fail(fmt.Errorf("open record log: %w: segment %s at offset %d: %s (%s); restore the directory from a backup or move the file aside to start without its records",
				ErrCorrupt, path, fe.offset, fe.reason, where))
		}
		if err != nil {
			return fail(fmt.Errorf("open record log: segment %s: %w", path, err))
		}
		rec.Bytes += int64(n)
		size += int64(n)
		if e.Kind == kindBatch {
			continue
		}
		if err := replay(e); err != nil {
			return fail(fmt.Errorf("open record log: replay entry at offset %d of %s: %w", fr.offset-int64(n), path, err))
		}
		rec.Entries++
	}
	if last {
		l.allocated = max(l.allocated, size)
		return f, size, nil
	}
	return nil, 0, f.Close()
}

// closeFiles closes the active segment and releases the lock of a Log that
// Open gives up on.
func (l *Log) closeFiles() {
	if l.active != nil {
		l.active.Close()
		l.active = nil
	}
	l.lock.Close()
}

// fillerByte fills the preallocated space of the active segment. A frame
// header of it has a length far above MaxEntrySize, so a frame reader stops
// at it as at any torn tail.
const fillerByte = 0xA5

// fillerTail reports whether every byte of f from off to size is
// fillerByte (and there is at least one).
func fillerTail(f File, off, size int64) (bool, error) {
	if off >= size {
		return false, nil
	}
	buf := make([]byte, 256<<10)
	for off < size {
		n := int(min(int64(len(buf)), size-off))
		if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		for _, b := range buf[:n] {
			if b != fillerByte {
				return false, nil
			}
		}
		off += int64(n)
	}
	return true, nil
}

// laterBatch looks for the marker of a group commit written after a damaged
// frame at offset damaged: a marker, anywhere in the rest of the segment,
// that names its own offset. A crash tears only the last batch, so finding
// one means the damage hit bytes that had been fsynced. It returns the
// marker's offset, or -1.
func laterBatch(f File, damaged, size int64) (int64, error) {
	rest := make([]byte, size-damaged)
	if _, err := f.ReadAt(rest, damaged); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	for i := 1; i+markerSize <= len(rest); i++ {
		if markerAt(rest[i:], damaged+int64(i)) {
			return damaged + int64(i), nil
		}
	}
	return -1, nil
}
