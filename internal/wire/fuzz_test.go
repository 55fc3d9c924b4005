package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
)

func FuzzReadFrame(f *testing.F) {
	// Seeds stay small: the fuzzer minimizes every new input it finds, and
	// minimizing kilobyte inputs can eat a short fuzzing run.
	f.Add(frame([]byte("hello")), false)
	f.Add(append(frame(nil), frame([]byte{1, 2, 3})...), true)
	f.Add(frame(Encode(Ping{Nonce: 7})), false)
	f.Add(binary.LittleEndian.AppendUint32(nil, MaxHandshakeFrame+1), true)
	f.Add(binary.LittleEndian.AppendUint32(nil, MaxFrame), false)
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF}, false)
	f.Add([]byte{3, 0, 0}, false)
	f.Fuzz(func(t *testing.T, data []byte, handshake bool) {
		limit := MaxFrame
		if handshake {
			limit = MaxHandshakeFrame
		}
		// ReadFrame and FrameReader must agree frame by frame, and every
		// accepted frame must respect the limit and match the input bytes.
		r := bytes.NewReader(data)
		fr := NewFrameReader(bytes.NewReader(data), limit)
		off := 0
		for {
			p1, err1 := ReadFrame(r, limit)
			p2, err2 := fr.Next()
			if (err1 == nil) != (err2 == nil) || !bytes.Equal(p1, p2) {
				t.Fatalf("ReadFrame = %d bytes, %v; FrameReader = %d bytes, %v", len(p1), err1, len(p2), err2)
			}
			if err1 != nil {
				if err1 != io.EOF && !errors.Is(err1, io.ErrUnexpectedEOF) && !errors.Is(err1, ErrFrameTooLarge) {
					t.Fatalf("unexpected error class: %v", err1)
				}
				if err1.Error() != err2.Error() {
					t.Fatalf("errors differ: %v vs %v", err1, err2)
				}
				return
			}
			if len(p1) > limit {
				t.Fatalf("accepted %d bytes over limit %d", len(p1), limit)
			}
			if !bytes.Equal(data[off:off+headerSize+len(p1)], frame(p1)) {
				t.Fatal("payload does not match the input")
			}
			off += headerSize + len(p1)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	for _, s := range sampleMessages() {
		if enc := Encode(s.in); len(enc) < 4096 {
			f.Add(enc)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{tagSync, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		// The in-place decoders of the hot path take exactly their own
		// messages and agree with Decode on them.
		var md MessageDecoder
		var up Upsert
		if ok, uerr := md.DecodeUpsert(b, &up); ok && (uerr == nil) != (err == nil) {
			t.Fatalf("DecodeUpsert error %v, Decode error %v", uerr, err)
		} else if ok && err == nil && !reflect.DeepEqual(m, up) {
			t.Fatalf("DecodeUpsert %#v, Decode %#v", up, m)
		}
		var h Held
		if ok, herr := md.DecodeHeld(b, &h, "k"); ok && (herr == nil) != (err == nil) {
			t.Fatalf("DecodeHeld error %v, Decode error %v", herr, err)
		} else if ok && err == nil && !reflect.DeepEqual(m, h) {
			t.Fatalf("DecodeHeld %#v, Decode %#v", h, m)
		}
		var a PrepareAck
		if isPrep, isHeld, aerr := md.DecodeAck(b, &a); (isPrep || isHeld) && (aerr == nil) != (err == nil) {
			t.Fatalf("DecodeAck error %v, Decode error %v", aerr, err)
		} else if isPrep && err == nil && !reflect.DeepEqual(m, a) {
			t.Fatalf("DecodeAck %#v, Decode %#v", a, m)
		} else if isHeld && err == nil && !reflect.DeepEqual(m, HeldAck(a)) {
			t.Fatalf("DecodeAck %#v, Decode %#v", a, m)
		}
		var p Prepare
		if ok, perr := md.DecodePrepare(b, &p); ok && (perr == nil) != (err == nil) {
			t.Fatalf("DecodePrepare error %v, Decode error %v", perr, err)
		} else if ok && err == nil && !reflect.DeepEqual(m, p) {
			t.Fatalf("DecodePrepare %#v, Decode %#v", p, m)
		}
		if err != nil {
			if m != nil {
				t.Fatalf("Decode returned %#v with error %v", m, err)
			}
			return
		}
		// The encoding is canonical: what decodes re-encodes to the same bytes,
		// and those decode to an equal value.
		enc := Encode(m)
		if !bytes.Equal(enc, b) {
			t.Fatalf("Encode(Decode(b)) differs from b\n  b: % x\nenc: % x", b, enc)
		}
		again, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip changed the value\n got: %#v\nwant: %#v", again, m)
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(fullRecord()))
	f.Add(encodeRecord(pendingRecord()))
	f.Add(encodeRecord(extremeRecord())[:200])
	f.Add(make([]byte, minRecordSize))
	typed := pendingRecord()
	typed.Input, typed.Output = []byte(`{"id":42}`), []byte{}
	f.Add(encodeRecord(typed))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(b)
		r := DecodeRecord(d)
		if d.Err() != nil && !reflect.ValueOf(r).IsZero() {
			t.Fatalf("failed decode returned a non-zero record: %v", d.Err())
		}
		if d.Finish() != nil {
			return
		}
		_ = r.Validate() // must not panic on anything the codec accepts
		if enc := encodeRecord(r); !bytes.Equal(enc, b) {
			t.Fatalf("EncodeRecord(DecodeRecord(b)) differs from b\n  b: % x\nenc: % x", b, enc)
		}
		again, err := decodeRecord(encodeRecord(r))
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip: %v\n got: %#v\nwant: %#v", err, again, r)
		}
	})
}
