package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"meshgo.dev/mesh/internal/continuity"
)

// The typed work section: present only for a record with a value, nil and
// empty kept apart, bounded, versioned.
func TestRecordWorkSectionRoundTrips(t *testing.T) {
	base := pendingRecord()
	for _, tt := range []struct {
		name          string
		input, output []byte
	}{
		{"input only", []byte(`{"id":1}`), nil},
		{"output only", nil, []byte(`"done"`)},
		{"both", []byte("in"), []byte("out")},
		{"empty input", []byte{}, nil},
		{"empty output", nil, []byte{}},
		{"binary output", nil, []byte{0, 0xff, 0x80, 0}},
		{"largest output", nil, bytes.Repeat([]byte{'x'}, MaxWorkValue)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			r.Input, r.Output = tt.input, tt.output
			b := encodeRecord(r)
			got, err := decodeRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, r) {
				t.Fatalf("round trip changed the record\n got: %q / %q\nwant: %q / %q", got.Input, got.Output, r.Input, r.Output)
			}
			if (got.Input == nil) != (tt.input == nil) || (got.Output == nil) != (tt.output == nil) {
				t.Fatalf("nil and empty not kept apart: input %v output %v", got.Input == nil, got.Output == nil)
			}
		})
	}
}

// A record without work values encodes exactly as before the section
// existed: a peer that predates it reads it unchanged.
func TestRecordWithoutWorkValuesKeepsTheOldLayout(t *testing.T) {
	r := fullRecord()
	r.Input, r.Output = nil, nil
	b := encodeRecord(r)
	withOut := encodeRecord(fullRecord())
	if kind := b[len(b)-1-4-len(r.Response)-1-8-8]; kind != uint8(continuity.KindRoute) {
		t.Fatalf("kind byte %#x, want the bare kind", kind)
	}
	if !bytes.HasPrefix(withOut, b[:len(b)-1-4-len(r.Response)-1-8-8]) {
		t.Fatal("the work section changed the fields before the kind byte")
	}
}

func TestRecordWorkSectionRejected(t *testing.T) {
	withOutput := pendingRecord()
	withOutput.Output = []byte("out")
	valid := encodeRecord(withOutput)
	sectionAt := len(valid) - (1 + 1 + 1 + 4 + 3) // version, input bool, output bool, length, value
	for _, tt := range []struct {
		name string
		b    []byte
		is   error
		text string
	}{
		{"unknown version", patch(valid, sectionAt, 2), ErrInvalidValue, "unknown work section version 2"},
		{"invalid presence", patch(valid, sectionAt+1, 7), ErrInvalidValue, ""},
		{"empty section", append(append([]byte{}, valid[:sectionAt+1]...), 0, 0), ErrInvalidValue, "empty work section"},
		{"truncated value", valid[:len(valid)-1], ErrTruncated, ""},
		{"oversize output", oversize(valid[:sectionAt+2]), ErrTooLong, "work output"},
		{"flag without section", valid[:sectionAt], ErrTruncated, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeRecord(tt.b)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("decode = %v; want %v mentioning %q", err, tt.is, tt.text)
			}
			if !reflect.DeepEqual(got, continuity.Record{}) {
				t.Fatalf("failed decode returned a non-zero record %+v", got)
			}
		})
	}
}

func patch(b []byte, at int, v byte) []byte {
	out := append([]byte{}, b...)
	out[at] = v
	return out
}

// oversize appends to prefix an output one byte longer than MaxWorkValue.
func oversize(prefix []byte) []byte {
	var e Encoder
	e.Bool(true)
	e.Blob(make([]byte, MaxWorkValue+1))
	return append(append([]byte{}, prefix...), e.Bytes()...)
}
