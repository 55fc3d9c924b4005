package recordlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Kind says what an Entry does to its key.
type Kind uint8

// Entry kinds. They are stored in every frame: never renumber them.
const (
	// KindPut stores Value as the key's latest payload.
	KindPut Kind = 1
	// KindEvict is a tombstone: the key is gone. Compaction drops the key.
	KindEvict Kind = 2
	// kindBatch starts every group commit; callers never see it. Its body
	// is the frame's own offset in the segment, so that recovery can tell
	// a torn last batch (nothing was written after it) from damage to an
	// earlier, fsynced batch (a later batch follows the damage).
	kindBatch Kind = 3
)

// String returns "put" or "evict".
func (k Kind) String() string {
	switch k {
	case KindPut:
		return "put"
	case KindEvict:
		return "evict"
	case kindBatch:
		return "batch"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Entry is one record transition as the caller encoded it. Entries with the
// same key supersede each other: replay delivers every entry still in the
// log, in commit order, but compaction keeps only the last entry of each live
// key.
type Entry struct {
	Kind  Kind
	Key   string
	Value []byte // empty for KindEvict
}

// Frame layout, little-endian:
//
//	length  uint32  bytes of the body
//	crc     uint32  CRC-32C (Castagnoli) of the body
//	body:   version byte (formatVersion), kind byte, uvarint key length,
//	        key bytes, value bytes
//
// Every group commit starts with a batch marker frame (kindBatch) whose body
// is the version, the kind and the marker's own offset as a uint64.
const (
	frameHeaderSize = 8
	formatVersion   = 1
	// MaxEntrySize is the largest body one entry may have, key and value
	// included. A length field above it can only be damage.
	MaxEntrySize = 16 << 20
	minBodySize  = 3 // version, kind, key length
	// markerSize is the size of a batch marker frame: header, version,
	// kind, 8-byte offset.
	markerSize = frameHeaderSize + 2 + 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// validate reports why e cannot be stored, or nil.
func (e Entry) validate() error {
	switch {
	case e.Key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidEntry)
	case e.Kind != KindPut && e.Kind != KindEvict:
		return fmt.Errorf("%w: key %q: unknown kind %d", ErrInvalidEntry, e.Key, e.Kind)
	case e.Kind == KindEvict && len(e.Value) > 0:
		return fmt.Errorf("%w: key %q: an eviction carries no value (%d bytes given)", ErrInvalidEntry, e.Key, len(e.Value))
	}
	if n := bodySize(e); n > MaxEntrySize {
		return fmt.Errorf("%w: key %q: %d bytes, more than MaxEntrySize (%d)", ErrInvalidEntry, e.Key, n, MaxEntrySize)
	}
	return nil
}

func bodySize(e Entry) int {
	var tmp [binary.MaxVarintLen64]byte
	return 2 + binary.PutUvarint(tmp[:], uint64(len(e.Key))) + len(e.Key) + len(e.Value)
}

// appendFrame appends the frame of a valid entry to buf.
func appendFrame(buf []byte, e Entry) []byte {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0, formatVersion, byte(e.Kind))
	buf = binary.AppendUvarint(buf, uint64(len(e.Key)))
	buf = append(buf, e.Key...)
	buf = append(buf, e.Value...)
	body := buf[start+frameHeaderSize:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(body, castagnoli))
	return buf
}

// appendMarker appends the batch marker of a group commit written at offset.
func appendMarker(buf []byte, offset int64) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, markerSize)...)
	putMarker(buf[start:], offset)
	return buf
}

// putMarker writes the batch marker of a group commit written at offset
// into b, which is markerSize bytes long.
func putMarker(b []byte, offset int64) {
	b = b[:markerSize]
	b[frameHeaderSize], b[frameHeaderSize+1] = formatVersion, byte(kindBatch)
	binary.LittleEndian.PutUint64(b[frameHeaderSize+2:], uint64(offset))
	body := b[frameHeaderSize:]
	binary.LittleEndian.PutUint32(b, uint32(len(body)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(body, castagnoli))
}

// markerAt reports whether b starts with the batch marker of offset.
func markerAt(b []byte, offset int64) bool {
	return len(b) >= markerSize &&
		binary.LittleEndian.Uint32(b) == markerSize-frameHeaderSize &&
		binary.LittleEndian.Uint32(b[4:]) == crc32.Checksum(b[frameHeaderSize:markerSize], castagnoli) &&
		b[frameHeaderSize] == formatVersion && Kind(b[frameHeaderSize+1]) == kindBatch &&
		binary.LittleEndian.Uint64(b[frameHeaderSize+2:]) == uint64(offset)
}

// frameError is a frame that could not be read. torn is true when the bytes
// may be what a crash leaves (a short or mis-checksummed frame); false when
// the frame is intact but not something this version can read.
type frameError struct {
	offset int64
	reason string
	torn   bool
}

func (e *frameError) Error() string { return fmt.Sprintf("offset %d: %s", e.offset, e.reason) }

// frameReader reads frames from one segment.
type frameReader struct {
	r      *bufio.Reader
	offset int64  // of the next frame
	frame  []byte // the last frame read, header and body
}

func newFrameReader(r io.Reader) *frameReader { return newFrameReaderAt(r, 0) }

// newFrameReaderAt reads frames from r, which starts at offset of its
// segment (the offset batch markers and errors name).
func newFrameReaderAt(r io.Reader, offset int64) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 256<<10), offset: offset}
}

// view is an entry as read, without copies: key, value and frame alias the
// reader's buffer and are valid until the next read. frame is the whole
// frame, header included, as it is on disk.
type view struct {
	kind       Kind
	key, value []byte
	frame      []byte
}

// entry returns v as an Entry that does not alias reader state.
func (v view) entry() Entry {
	e := Entry{Kind: v.kind, Key: string(v.key)}
	if len(v.value) > 0 {
		e.Value = append([]byte(nil), v.value...)
	}
	return e
}

// next returns the next entry and the size of its frame, io.EOF at a clean
// end, or a *frameError. The entry's key and value do not alias reader state.
// Batch markers are returned too (Kind kindBatch, Value the 8-byte offset);
// a marker that names another offset than its own is an error.
func (fr *frameReader) next() (Entry, int, error) {
	v, err := fr.nextView()
	if err != nil {
		return Entry{}, 0, err
	}
	return v.entry(), len(v.frame), nil
}

// nextView is next without copies: what it returns is valid until the next
// read.
func (fr *frameReader) nextView() (view, error) {
	if cap(fr.frame) < frameHeaderSize {
		fr.frame = make([]byte, frameHeaderSize, 4096)
	}
	hdr := fr.frame[:frameHeaderSize]
	n, err := io.ReadFull(fr.r, hdr)
	if err == io.EOF {
		return view{}, io.EOF
	}
	if err != nil {
		return view{}, fr.readErr(err, fmt.Sprintf("short frame header (%d of %d bytes)", n, frameHeaderSize))
	}
	size := binary.LittleEndian.Uint32(hdr[:4])
	if size < minBodySize || size > MaxEntrySize {
		return view{}, &frameError{offset: fr.offset, reason: fmt.Sprintf("entry length %d out of range", size), torn: true}
	}
	total := frameHeaderSize + int(size)
	if cap(fr.frame) < total {
		grown := make([]byte, total)
		copy(grown, hdr)
		fr.frame = grown
	}
	frame := fr.frame[:total]
	body := frame[frameHeaderSize:]
	if n, err := io.ReadFull(fr.r, body); err != nil {
		return view{}, fr.readErr(err, fmt.Sprintf("short entry (%d of %d bytes)", n, size))
	}
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(frame[4:]); got != want {
		return view{}, &frameError{offset: fr.offset, reason: fmt.Sprintf("checksum mismatch (crc32c %08x, frame says %08x)", got, want), torn: true}
	}
	v, err := decodeBody(body)
	if err != nil {
		return view{}, &frameError{offset: fr.offset, reason: err.Error()}
	}
	if v.kind == kindBatch {
		if at := binary.LittleEndian.Uint64(v.value); at != uint64(fr.offset) {
			return view{}, &frameError{offset: fr.offset, reason: fmt.Sprintf("batch marker names offset %d", at)}
		}
	}
	v.frame = frame
	fr.offset += int64(total)
	return v, nil
}

func (fr *frameReader) readErr(err error, reason string) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &frameError{offset: fr.offset, reason: reason, torn: true}
	}
	return fmt.Errorf("read at offset %d: %w", fr.offset, err)
}

// decodeBody decodes a checksummed body; the view aliases body.
func decodeBody(body []byte) (view, error) {
	if body[0] != formatVersion {
		return view{}, fmt.Errorf("unknown entry format version %d (this build reads %d)", body[0], formatVersion)
	}
	kind := Kind(body[1])
	if kind == kindBatch {
		if len(body) != markerSize-frameHeaderSize {
			return view{}, fmt.Errorf("batch marker of %d bytes", len(body))
		}
		return view{kind: kindBatch, value: body[2:]}, nil
	}
	if kind != KindPut && kind != KindEvict {
		return view{}, fmt.Errorf("unknown entry kind %d", body[1])
	}
	klen, n := binary.Uvarint(body[2:])
	if n <= 0 || klen == 0 || klen > uint64(len(body)-2-n) || n != uvarintLen(klen) {
		return view{}, fmt.Errorf("bad key length in a %d-byte entry", len(body))
	}
	rest := body[2+n:]
	v := view{kind: kind, key: rest[:klen]}
	if val := rest[klen:]; len(val) > 0 {
		if kind == KindEvict {
			return view{}, fmt.Errorf("eviction of key %q carries %d value bytes", v.key, len(val))
		}
		v.value = val
	}
	return v, nil
}

// uvarintLen is the length of x's shortest uvarint encoding.
func uvarintLen(x uint64) int {
	var tmp [binary.MaxVarintLen64]byte
	return binary.PutUvarint(tmp[:], x)
}
