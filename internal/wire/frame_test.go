package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

func frame(payload []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(payload))), payload...)
}

// writeCounter records each Write call separately.
type writeCounter struct {
	writes [][]byte
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func (w *writeCounter) all() []byte { return bytes.Join(w.writes, nil) }

func TestFrameRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 4096, growStep, growStep + 1, 1 << 20, 3<<20 + 17} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		var w writeCounter
		if err := WriteFrame(&w, payload); err != nil {
			t.Fatalf("size %d: WriteFrame: %v", size, err)
		}
		if size <= growStep && len(w.writes) != 1 {
			t.Errorf("size %d: %d writes, want 1", size, len(w.writes))
		}
		wire := w.all()
		if !bytes.Equal(wire, frame(payload)) {
			t.Fatalf("size %d: wrong frame bytes", size)
		}
		// Short reads in the header and payload: one byte per Read for small
		// frames, half of what was asked for large ones.
		var r io.Reader = iotest.HalfReader(bytes.NewReader(wire))
		if size <= growStep+1 {
			r = iotest.OneByteReader(bytes.NewReader(wire))
		}
		got, err := ReadFrame(r, MaxFrame)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("size %d: ReadFrame = %d bytes, %v", size, len(got), err)
		}
		if got == nil {
			t.Fatalf("size %d: ReadFrame returned a nil payload", size)
		}
	}
}

func TestReadFrameLimits(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		limit int
		text  string
	}{
		{"4 GiB prefix", []byte{0xFF, 0xFF, 0xFF, 0xFF}, MaxFrame, "frame too large: 4294967295 bytes (max 16777216)"},
		{"one past MaxFrame", binary.LittleEndian.AppendUint32(nil, MaxFrame+1), MaxFrame, "frame too large: 16777217 bytes (max 16777216)"},
		{"handshake cap", frame(make([]byte, MaxHandshakeFrame+1)), MaxHandshakeFrame, "frame too large: 4097 bytes (max 4096)"},
		{"limit zero means MaxFrame", []byte{0xFF, 0xFF, 0xFF, 0xFF}, 0, "(max 16777216)"},
		{"limit above MaxFrame is clamped", binary.LittleEndian.AppendUint32(nil, MaxFrame+1), 1 << 30, "(max 16777216)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tt.in), tt.limit)
			if !errors.Is(err, ErrFrameTooLarge) || err.Error() != tt.text && !bytes.Contains([]byte(err.Error()), []byte(tt.text)) {
				t.Fatalf("ReadFrame error = %v, want ErrFrameTooLarge %q", err, tt.text)
			}
		})
	}
	if p, err := ReadFrame(bytes.NewReader(frame(make([]byte, MaxHandshakeFrame))), MaxHandshakeFrame); err != nil || len(p) != MaxHandshakeFrame {
		t.Fatalf("frame exactly at the cap: %d bytes, %v", len(p), err)
	}
}

// A 4 GiB length prefix must be refused from the header alone: a handful of
// small allocations for the error, nothing the size of the frame.
func TestReadFrameHugePrefixDoesNotAllocate(t *testing.T) {
	in := []byte{0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3}
	r := bytes.NewReader(in)
	run := func() {
		r.Reset(in)
		if _, err := ReadFrame(r, MaxFrame); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("ReadFrame = %v", err)
		}
	}
	allocs := testing.AllocsPerRun(100, run)
	if allocs > 6 {
		t.Fatalf("rejecting a 4 GiB prefix took %v allocations", allocs)
	}
	if perCall := allocatedBytes(100, run); perCall > 1024 {
		t.Fatalf("rejecting a 4 GiB prefix allocated %d bytes per call", perCall)
	}
}

// A peer that announces a large frame and sends little of it costs memory in
// proportion to what it sent, not to what it announced.
func TestReadFrameStalledLargeFrame(t *testing.T) {
	in := append(binary.LittleEndian.AppendUint32(nil, MaxFrame), make([]byte, 100)...)
	r := bytes.NewReader(in)
	perCall := allocatedBytes(10, func() {
		r.Reset(in)
		if _, err := ReadFrame(r, MaxFrame); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("ReadFrame = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	if perCall > 2*growStep {
		t.Fatalf("a 16 MiB frame cut off after 100 bytes allocated %d bytes", perCall)
	}
}

func allocatedBytes(runs int, f func()) uint64 {
	f() // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

func TestReadFrameEOF(t *testing.T) {
	if _, err := ReadFrame(bytes.NewReader(nil), MaxFrame); err != io.EOF {
		t.Fatalf("empty stream: %v, want io.EOF", err)
	}
	for _, in := range [][]byte{{1, 0}, {5, 0, 0, 0, 'a', 'b'}, {0, 0, 1, 0}} {
		if _, err := ReadFrame(bytes.NewReader(in), MaxFrame); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("stream % x: %v, want io.ErrUnexpectedEOF", in, err)
		}
	}
	readErr := errors.New("connection reset")
	if _, err := ReadFrame(iotest.ErrReader(readErr), MaxFrame); !errors.Is(err, readErr) {
		t.Fatalf("reader error: %v", err)
	}
}

func TestWriteFrameTooLarge(t *testing.T) {
	var w writeCounter
	err := WriteFrame(&w, make([]byte, MaxFrame+1))
	if !errors.Is(err, ErrFrameTooLarge) || len(w.writes) != 0 {
		t.Fatalf("WriteFrame = %v after %d writes; want ErrFrameTooLarge and no write", err, len(w.writes))
	}
	if err := WriteFrame(&w, make([]byte, MaxFrame)); err != nil {
		t.Fatalf("frame exactly MaxFrame: %v", err)
	}
}

func TestWriteFrameError(t *testing.T) {
	if err := WriteFrame(errWriter{}, []byte("x")); !errors.Is(err, errBroken) {
		t.Fatalf("WriteFrame = %v", err)
	}
	if err := WriteMessage(errWriter{}, RouteCancel{ID: 1}); !errors.Is(err, errBroken) {
		t.Fatalf("WriteMessage = %v", err)
	}
}

var errBroken = errors.New("broken pipe")

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errBroken }

func TestWriteMessage(t *testing.T) {
	for _, s := range sampleMessages() {
		var w writeCounter
		if err := WriteMessage(&w, s.in); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if len(w.writes) != 1 {
			t.Fatalf("%s: %d writes, want 1", s.name, len(w.writes))
		}
		if !bytes.Equal(w.writes[0], frame(Encode(s.in))) {
			t.Fatalf("%s: frame differs from Encode", s.name)
		}
	}
	var w writeCounter
	err := WriteMessage(&w, OperatorReply{Body: make([]byte, MaxFrame)})
	if !errors.Is(err, ErrFrameTooLarge) || len(w.writes) != 0 {
		t.Fatalf("oversize message: %v after %d writes", err, len(w.writes))
	}
}

func TestFrameReader(t *testing.T) {
	var stream bytes.Buffer
	payloads := [][]byte{[]byte("first"), {}, bytes.Repeat([]byte("x"), 2<<20), []byte("after big")}
	for _, p := range payloads {
		if err := WriteFrame(&stream, p); err != nil {
			t.Fatal(err)
		}
	}
	stream.Write([]byte{0xFF, 0xFF, 0xFF, 0x7F})
	fr := NewFrameReader(&stream, 4<<20)
	for i, want := range payloads {
		got, err := fr.Next()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %d bytes, %v", i, len(got), err)
		}
	}
	if cap(fr.buf) > keepBuffer {
		t.Fatalf("FrameReader kept a %d byte buffer", cap(fr.buf))
	}
	if _, err := fr.Next(); !errors.Is(err, ErrFrameTooLarge) || !bytes.Contains([]byte(err.Error()), []byte("(max 4194304)")) {
		t.Fatalf("oversize frame: %v", err)
	}
}

// loopReader serves the same bytes forever.
type loopReader struct {
	data []byte
	off  int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

func TestFrameReaderReusesBuffer(t *testing.T) {
	fr := NewFrameReader(&loopReader{data: frame(Encode(realisticRouteRequest()))}, MaxFrame)
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := fr.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("FrameReader.Next allocated %v times per frame", allocs)
	}
}
