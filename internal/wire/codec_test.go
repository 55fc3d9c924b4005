package wire

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestCodecPrimitives(t *testing.T) {
	var e Encoder
	e.U8(0xAB)
	e.U16(0xBEEF)
	e.U32(math.MaxUint32)
	e.U64(math.MaxUint64)
	e.I32(math.MinInt32)
	e.I64(math.MinInt64)
	e.Bool(true)
	e.Bool(false)
	e.String("héllo, 世界")
	e.String("")
	e.Blob([]byte{0, 1, 2})
	e.Blob(nil)
	e.Fixed([]byte{9, 9, 9})
	e.Count(2)

	want := []byte{0xAB, 0xEF, 0xBE}
	if got := e.Bytes()[:3]; string(got) != string(want) {
		t.Fatalf("little-endian prefix = % x, want % x", got, want)
	}

	d := NewDecoder(e.Bytes())
	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("U8", d.U8(), uint8(0xAB))
	check("U16", d.U16(), uint16(0xBEEF))
	check("U32", d.U32(), uint32(math.MaxUint32))
	check("U64", d.U64(), uint64(math.MaxUint64))
	check("I32", d.I32(), int32(math.MinInt32))
	check("I64", d.I64(), int64(math.MinInt64))
	check("Bool", d.Bool(), true)
	check("Bool", d.Bool(), false)
	check("String", d.String(), "héllo, 世界")
	check("String", d.String(), "")
	check("Blob", string(d.Blob()), "\x00\x01\x02")
	if b := d.Blob(); b != nil {
		t.Errorf("empty Blob = %#v, want nil", b)
	}
	var fixed [3]byte
	d.Fixed(fixed[:])
	check("Fixed", fixed, [3]byte{9, 9, 9})
	check("Count", d.Count(0), 0) // 2 elements do not fit in 0 remaining bytes
	if err := d.Finish(); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Finish = %v, want ErrTruncated from the oversized count", err)
	}
}

func TestDecoderStickyError(t *testing.T) {
	d := NewDecoder([]byte{1, 2})
	if v := d.U32(); v != 0 {
		t.Fatalf("short U32 = %d, want 0", v)
	}
	first := d.Err()
	if !errors.Is(first, ErrTruncated) {
		t.Fatalf("Err = %v, want ErrTruncated", first)
	}
	if v := d.U8(); v != 0 {
		t.Fatalf("U8 after an error = %d, want 0", v)
	}
	d.Fail(errors.New("later"))
	if d.Err() != first || d.Finish() != first {
		t.Fatalf("error not sticky: Err = %v, Finish = %v", d.Err(), d.Finish())
	}
	if d.Offset() != 0 || d.Remaining() != 2 {
		t.Fatalf("failed reads consumed input: offset %d, remaining %d", d.Offset(), d.Remaining())
	}
}

func TestDecoderFinish(t *testing.T) {
	d := NewDecoder([]byte{1, 2, 3})
	d.U8()
	err := d.Finish()
	if !errors.Is(err, ErrTrailingBytes) || !strings.Contains(err.Error(), "2 bytes after offset 1") {
		t.Fatalf("Finish = %v", err)
	}
	d.U16()
	if err := d.Finish(); err != nil {
		t.Fatalf("Finish after consuming everything = %v", err)
	}
}

func TestDecoderBool(t *testing.T) {
	d := NewDecoder([]byte{2})
	if d.Bool() || !errors.Is(d.Err(), ErrInvalidValue) {
		t.Fatalf("Bool(2): err = %v, want ErrInvalidValue", d.Err())
	}
}

func TestDecoderCountMinSize(t *testing.T) {
	// Three elements of at least 4 bytes need 12 bytes; 11 are present.
	b := append([]byte{3, 0, 0, 0}, make([]byte, 11)...)
	d := NewDecoder(b)
	if n := d.Count(4); n != 0 || !errors.Is(d.Err(), ErrTruncated) {
		t.Fatalf("Count = %d, %v; want 0, ErrTruncated", n, d.Err())
	}
	d = NewDecoder(append(b, 0))
	if n := d.Count(4); n != 3 || d.Err() != nil {
		t.Fatalf("Count = %d, %v; want 3, nil", n, d.Err())
	}
}

func TestEncoderReset(t *testing.T) {
	e := NewEncoder(make([]byte, 0, 64))
	e.U64(1)
	if e.Len() != 8 {
		t.Fatalf("Len = %d", e.Len())
	}
	e.Reset()
	if e.Len() != 0 || cap(e.Bytes()) != 64 {
		t.Fatalf("after Reset: len %d cap %d", e.Len(), cap(e.Bytes()))
	}
}
