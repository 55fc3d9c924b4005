package recordlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Frames is a run of put entries, encoded in the log's frame format, that
// CommitFrames writes as one group commit. A caller that gathers its own
// group commits encodes each value straight into it (BeginPut, EndPut), so a
// value is encoded once, its checksum taken once, and the run is written as
// it is: no copy into another buffer, no allocation per entry once the
// buffer has grown to the size of a batch. The zero value is empty and ready.
//
// The buffer starts with room for the batch marker, which CommitFrames fills
// in with the offset the run lands at.
type Frames struct {
	buf     []byte
	entries int
	last    int // offset in buf of the last frame, for DropLast
	begun   int // offset of the frame BeginPut began, -1 when none is open
}

func (f *Frames) init() {
	if len(f.buf) < markerSize {
		f.buf = append(f.buf[:0], make([]byte, markerSize)...)
		f.begun = -1
	}
}

// BeginPut begins a put entry for key and returns the buffer to append its
// value to; hand the result back to EndPut before any other call on f.
func (f *Frames) BeginPut(key string) []byte {
	f.init()
	f.begun = len(f.buf)
	b := append(f.buf, 0, 0, 0, 0, 0, 0, 0, 0, formatVersion, byte(KindPut))
	b = binary.AppendUvarint(b, uint64(len(key)))
	return append(b, key...)
}

// EndPut ends the entry BeginPut began; buf is BeginPut's result with the
// value appended. An entry that cannot be stored (an empty key, a body
// larger than MaxEntrySize) is dropped and reported with ErrInvalidEntry.
func (f *Frames) EndPut(buf []byte) error {
	start := f.begun
	if start < markerSize || len(buf) < start+frameHeaderSize+minBodySize {
		panic("recordlog: Frames.EndPut without BeginPut")
	}
	f.begun = -1
	body := buf[start+frameHeaderSize:]
	klen, n := binary.Uvarint(body[2:])
	switch {
	case klen == 0:
		f.buf = buf[:start]
		return fmt.Errorf("%w: empty key", ErrInvalidEntry)
	case len(body) > MaxEntrySize:
		f.buf = buf[:start]
		key := string(body[2+n : 2+n+int(klen)])
		return fmt.Errorf("%w: key %q: %d bytes, more than MaxEntrySize (%d)", ErrInvalidEntry, key, len(body), MaxEntrySize)
	}
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(body, castagnoli))
	f.buf, f.last = buf, start
	f.entries++
	return nil
}

// DropLast removes the entry EndPut added last; only once per EndPut.
func (f *Frames) DropLast() {
	if f.entries == 0 || f.last < markerSize {
		return
	}
	f.buf = f.buf[:f.last]
	f.entries--
	f.last = 0
}

// Entries returns the number of entries in f.
func (f *Frames) Entries() int { return f.entries }

// Size returns the bytes of f's entries, frame headers included.
func (f *Frames) Size() int { return max(0, len(f.buf)-markerSize) }

// Cap returns the capacity of f's buffer.
func (f *Frames) Cap() int { return cap(f.buf) }

// Reset empties f, keeping its buffer.
func (f *Frames) Reset() {
	f.buf = f.buf[:0]
	f.entries, f.last = 0, 0
	f.init()
}

// Append adds g's entries after f's. g is left as it was.
func (f *Frames) Append(g *Frames) {
	if g.entries == 0 {
		return
	}
	f.init()
	f.buf = append(f.buf, g.buf[markerSize:]...)
	f.entries += g.entries
	f.last = 0
}

// CommitFrames is Commit for entries encoded into f: it writes and fsyncs
// them, in the calling goroutine, as one group commit, and returns once they
// are durable. f is not changed apart from its marker room, so after an
// error the caller may commit it again (or append more to it first). Errors
// are Commit's.
func (l *Log) CommitFrames(f *Frames) error {
	if f.entries == 0 {
		return nil
	}
	return l.commitCaller(f.entries, func() []byte {
		putMarker(f.buf[:markerSize], l.activeSize)
		return f.buf
	})
}
