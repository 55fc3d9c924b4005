package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// Encoder appends little-endian values to a byte slice. Strings and byte
// strings carry a u32 length prefix. The zero value is ready to use and starts
// from an empty buffer; an Encoder is not safe for concurrent use.
type Encoder struct {
	buf []byte
}

// NewEncoder returns an Encoder that appends to dst.
func NewEncoder(dst []byte) *Encoder { return &Encoder{buf: dst} }

// U8 appends v.
func (e *Encoder) U8(v uint8) { e.buf = append(e.buf, v) }

// U16 appends v in two bytes.
func (e *Encoder) U16(v uint16) { e.buf = binary.LittleEndian.AppendUint16(e.buf, v) }

// U32 appends v in four bytes.
func (e *Encoder) U32(v uint32) { e.buf = binary.LittleEndian.AppendUint32(e.buf, v) }

// U64 appends v in eight bytes.
func (e *Encoder) U64(v uint64) { e.buf = binary.LittleEndian.AppendUint64(e.buf, v) }

// I32 appends v in four bytes, two's complement.
func (e *Encoder) I32(v int32) { e.U32(uint32(v)) }

// I64 appends v in eight bytes, two's complement.
func (e *Encoder) I64(v int64) { e.U64(uint64(v)) }

// Bool appends 1 for true and 0 for false.
func (e *Encoder) Bool(v bool) {
	var b uint8
	if v {
		b = 1
	}
	e.U8(b)
}

// String appends s with a u32 length prefix.
func (e *Encoder) String(s string) {
	e.Count(len(s))
	e.buf = append(e.buf, s...)
}

// Blob appends b with a u32 length prefix. (Bytes returns the encoded buffer,
// so the byte-string writer has its own name.)
func (e *Encoder) Blob(b []byte) {
	e.Count(len(b))
	e.buf = append(e.buf, b...)
}

// Fixed appends b with no length prefix, for fields whose size is fixed by
// the format (nonces, MACs).
func (e *Encoder) Fixed(b []byte) { e.buf = append(e.buf, b...) }

// Count appends a u32 length or element count. Lengths above 4 GiB cannot be
// framed at all (see MaxFrame), so they are a programming error and panic.
func (e *Encoder) Count(n int) {
	if n < 0 || uint64(n) > math.MaxUint32 {
		panic(fmt.Sprintf("wire: length %d does not fit in u32", n))
	}
	e.U32(uint32(n))
}

// Bytes returns the encoded bytes. The slice aliases the Encoder's buffer and
// is valid until the next append or Reset.
func (e *Encoder) Bytes() []byte { return e.buf }

// Len returns the number of encoded bytes.
func (e *Encoder) Len() int { return len(e.buf) }

// Reset empties the buffer, keeping its storage for reuse.
func (e *Encoder) Reset() { e.buf = e.buf[:0] }

// Decoder reads little-endian values from a byte slice. The first failure is
// sticky: later reads return zero values and Err or Finish report the failure.
// Every length or count is checked against the bytes remaining before memory
// is allocated for it. Returned strings and byte slices never alias the input.
// A Decoder is not safe for concurrent use.
type Decoder struct {
	b   []byte
	off int
	err error
	in  *Interner // optional: shares the strings of names that repeat
}

// NewDecoder returns a Decoder reading b from its start.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// take returns the next n bytes, or nil after recording an error.
func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.err = fmt.Errorf("%w: need %d bytes at offset %d, have %d", ErrTruncated, n, d.off, len(d.b)-d.off)
		return nil
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p
}

// U8 reads one byte.
func (d *Decoder) U8() uint8 {
	p := d.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

// U16 reads two bytes.
func (d *Decoder) U16() uint16 {
	p := d.take(2)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(p)
}

// U32 reads four bytes.
func (d *Decoder) U32() uint32 {
	p := d.take(4)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(p)
}

// U64 reads eight bytes.
func (d *Decoder) U64() uint64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(p)
}

// I32 reads a four-byte two's complement integer.
func (d *Decoder) I32() int32 { return int32(d.U32()) }

// I64 reads an eight-byte two's complement integer.
func (d *Decoder) I64() int64 { return int64(d.U64()) }

// Bool reads one byte that must be 0 or 1.
func (d *Decoder) Bool() bool {
	off := d.off
	switch v := d.U8(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.Fail(fmt.Errorf("%w: bool byte %d at offset %d", ErrInvalidValue, v, off))
		return false
	}
}

// String reads a u32 length-prefixed string.
func (d *Decoder) String() string {
	n := d.length(1)
	return string(d.take(n))
}

// stringPair reads two strings written one after the other with String and
// returns them sharing one allocation: a record's request key and payload
// hash are new in every record and are kept together, so a second
// allocation would only cost time (a key kept alone, in a diagnostic entry,
// holds on to the hash's bytes too: a few dozen).
func (d *Decoder) stringPair() (string, string) {
	a := d.take(d.length(1))
	b := d.take(d.length(1))
	if d.err != nil {
		return "", ""
	}
	var sb strings.Builder
	sb.Grow(len(a) + len(b))
	sb.Write(a)
	sb.Write(b)
	s := sb.String()
	return s[:len(a)], s[len(a):]
}

// StringKnown reads a string like String, returning known itself, without
// a copy, when the string read equals it.
func (d *Decoder) StringKnown(known string) string {
	n := d.length(1)
	p := d.take(n)
	if string(p) == known { // the comparison does not allocate
		return known
	}
	return string(p)
}

// Name reads a string like String, sharing one copy of each distinct value
// through the decoder's Interner when it has one: node and handler names
// repeat in every record.
func (d *Decoder) Name() string {
	n := d.length(1)
	p := d.take(n)
	if d.in == nil {
		return string(p)
	}
	return d.in.intern(p)
}

// Interner keeps one copy of each distinct short string it is given, up to
// a bound, so records decoded from one peer share their node and handler
// names instead of allocating them again. It is not safe for concurrent use.
type Interner struct {
	m map[string]string

	// recent holds the last names found or added, compared before the map
	// is hashed: a record names the same two nodes and a handler over and
	// over, so the map is rarely needed.
	recent [internRecent]string
	next   int // the slot of recent the next name replaces
}

// Interner bounds.
const (
	maxInterned    = 256
	maxInternedLen = 256
	internRecent   = 4
)

func (in *Interner) intern(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	for _, s := range &in.recent {
		if len(s) == len(p) && s == string(p) { // the comparison does not allocate
			return s
		}
	}
	s, ok := in.m[string(p)] // the lookup does not allocate
	if !ok {
		s = string(p)
		if len(p) > maxInternedLen || len(in.m) >= maxInterned {
			return s
		}
		if in.m == nil {
			in.m = make(map[string]string)
		}
		in.m[s] = s
	}
	in.recent[in.next] = s
	in.next = (in.next + 1) % internRecent
	return s
}

// BlobMax reads a byte string like Blob, refusing (ErrTooLong) one longer
// than max before anything is allocated for it.
func (d *Decoder) BlobMax(max int, what string) []byte {
	off := d.off
	n := d.length(1)
	if d.err != nil {
		return nil
	}
	if n > max {
		d.Fail(fmt.Errorf("%w: %s of %d bytes at offset %d (max %d)", ErrTooLong, what, n, off, max))
		return nil
	}
	p := d.take(n)
	if len(p) == 0 {
		return nil
	}
	return bytes.Clone(p)
}

// Blob reads a u32 length-prefixed byte string into a new slice; an empty byte
// string decodes as nil.
func (d *Decoder) Blob() []byte {
	n := d.length(1)
	p := d.take(n)
	if len(p) == 0 {
		return nil
	}
	return bytes.Clone(p)
}

// Fixed fills dst with the next len(dst) bytes.
func (d *Decoder) Fixed(dst []byte) {
	copy(dst, d.take(len(dst)))
}

// Count reads a u32 element count and checks that count elements of at least
// minSize bytes each fit in the bytes remaining, so the caller may allocate
// count elements safely. minSize below 1 is treated as 1.
func (d *Decoder) Count(minSize int) int {
	return d.length(max(minSize, 1))
}

func (d *Decoder) length(minSize int) int {
	off := d.off
	n := d.U32()
	if d.err != nil {
		return 0
	}
	left := len(d.b) - d.off
	if uint64(n) > uint64(left/minSize) {
		d.err = fmt.Errorf("%w: length %d at offset %d exceeds the %d bytes left", ErrTruncated, n, off, left)
		return 0
	}
	return int(n)
}

// Fail records err as the decoder's error unless one is already recorded. Use
// it for semantic checks (an unknown enum code) so they share the sticky error.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Offset returns the number of bytes consumed so far.
func (d *Decoder) Offset() int { return d.off }

// Remaining returns the number of bytes not yet consumed.
func (d *Decoder) Remaining() int { return len(d.b) - d.off }

// Err returns the first error recorded, or nil.
func (d *Decoder) Err() error { return d.err }

// Finish returns the first error recorded, or an error wrapping
// ErrTrailingBytes if input remains, or nil when the input was consumed exactly.
func (d *Decoder) Finish() error {
	if d.err != nil {
		return d.err
	}
	if left := len(d.b) - d.off; left > 0 {
		return fmt.Errorf("%w: %d bytes after offset %d", ErrTrailingBytes, left, d.off)
	}
	return nil
}
