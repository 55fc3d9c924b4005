package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// Frame size caps. A frame is a little-endian u32 payload length followed by
// the payload; the cap applies to the payload.
const (
	// MaxFrame caps every frame on an established session.
	MaxFrame = 16 << 20
	// MaxHandshakeFrame caps frames exchanged before the peer is authenticated.
	MaxHandshakeFrame = 4096
)

const (
	headerSize = 4
	// growStep bounds how far an allocation runs ahead of the payload bytes
	// actually received, so a peer that announces a large frame and then
	// stalls costs little memory.
	growStep = 64 << 10
	// keepBuffer is the largest buffer kept for reuse; bigger ones serve one
	// frame and go back to the garbage collector.
	keepBuffer = 1 << 20
)

// ReadFrame reads one frame from r and returns its payload in a new slice.
//
// The declared length is checked against limit before any payload memory is
// allocated; a longer frame fails with an error wrapping ErrFrameTooLarge and
// naming both sizes. A limit ≤ 0 or above MaxFrame means MaxFrame. ReadFrame
// returns io.EOF, unwrapped, only when r ends cleanly before a frame starts; a
// stream that ends inside a frame yields io.ErrUnexpectedEOF (wrapped).
func ReadFrame(r io.Reader, limit int) ([]byte, error) {
	var hdr [headerSize]byte
	n, err := readHeader(r, &hdr, limit)
	if err != nil {
		return nil, err
	}
	return readPayload(r, nil, n)
}

// FrameReader reads successive frames from one stream, reusing its payload
// buffer between frames. It is not safe for concurrent use.
type FrameReader struct {
	r     io.Reader
	limit int
	hdr   [headerSize]byte
	buf   []byte // reused payload storage; nil after a frame above keepBuffer
}

// NewFrameReader returns a FrameReader over r that rejects frames longer than
// limit, with the same limit rules as ReadFrame.
func NewFrameReader(r io.Reader, limit int) *FrameReader {
	return &FrameReader{r: r, limit: limit}
}

// Next reads the next frame. The payload is only valid until the following
// call to Next; decoders in this package copy what they keep, so passing it
// straight to Decode is safe. Errors are as for ReadFrame.
func (fr *FrameReader) Next() ([]byte, error) {
	n, err := readHeader(fr.r, &fr.hdr, fr.limit)
	if err != nil {
		return nil, err
	}
	p, err := readPayload(fr.r, fr.buf[:0], n)
	if err != nil {
		return nil, err
	}
	if cap(p) <= keepBuffer {
		fr.buf = p[:0]
	} else {
		fr.buf = nil
	}
	return p, nil
}

func readHeader(r io.Reader, hdr *[headerSize]byte, limit int) (int, error) {
	if limit <= 0 || limit > MaxFrame {
		limit = MaxFrame
	}
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("read frame header: %w", err)
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if uint64(n) > uint64(limit) {
		return 0, tooLarge(uint64(n), limit)
	}
	return int(n), nil
}

// readPayload reads exactly n bytes into buf's storage when it is big enough,
// and otherwise into new storage that grows with the data received.
func readPayload(r io.Reader, buf []byte, n int) ([]byte, error) {
	if n > cap(buf) {
		if n > growStep {
			return readLarge(r, n)
		}
		buf = make([]byte, n)
	}
	if buf == nil {
		buf = []byte{} // an empty frame is an empty payload, not a missing one
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, payloadError(err)
	}
	return buf, nil
}

func readLarge(r io.Reader, n int) ([]byte, error) {
	var buf []byte
	for len(buf) < n {
		step := min(n-len(buf), max(growStep, len(buf)))
		grown := make([]byte, len(buf), len(buf)+step)
		copy(grown, buf)
		buf = grown
		got, err := io.ReadFull(r, buf[len(buf):len(buf)+step])
		buf = buf[:len(buf)+got]
		if err != nil {
			return nil, payloadError(err)
		}
	}
	return buf, nil
}

func payloadError(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read frame payload: %w", err)
}

func tooLarge(n uint64, limit int) error {
	return fmt.Errorf("%w: %d bytes (max %d)", ErrFrameTooLarge, n, limit)
}

// framePool holds scratch buffers for assembling header and payload so each
// frame goes out in a single Write (one TLS record for small frames).
var framePool = sync.Pool{New: func() any { return new([]byte) }}

// WriteFrame writes payload to w as one frame. Payloads above MaxFrame are
// refused with an error wrapping ErrFrameTooLarge and nothing is written.
// Frames up to 64 KiB are written with a single Write; larger ones with two.
// Callers sharing w between goroutines must serialize calls.
func WriteFrame(w io.Writer, payload []byte) error {
	if len(payload) > MaxFrame {
		return fmt.Errorf("write frame: %w", tooLarge(uint64(len(payload)), MaxFrame))
	}
	if len(payload) <= growStep {
		bp := framePool.Get().(*[]byte)
		b := binary.LittleEndian.AppendUint32((*bp)[:0], uint32(len(payload)))
		b = append(b, payload...)
		_, err := w.Write(b)
		*bp = b[:0]
		framePool.Put(bp)
		if err != nil {
			return fmt.Errorf("write frame: %w", err)
		}
		return nil
	}
	var hdr [headerSize]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	if _, err := w.Write(payload); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// WriteMessage encodes m straight into a frame and writes it with a single
// Write. A message whose encoding exceeds MaxFrame is refused with an error
// wrapping ErrFrameTooLarge and nothing is written. Callers sharing w between
// goroutines must serialize calls.
func WriteMessage(w io.Writer, m Message) error {
	bp := framePool.Get().(*[]byte)
	b := AppendEncode(append((*bp)[:0], 0, 0, 0, 0), m)
	n := len(b) - headerSize
	var err error
	if n > MaxFrame {
		err = fmt.Errorf("write message: %w", tooLarge(uint64(n), MaxFrame))
	} else {
		binary.LittleEndian.PutUint32(b, uint32(n))
		if _, werr := w.Write(b); werr != nil {
			err = fmt.Errorf("write message: %w", werr)
		}
	}
	if cap(b) <= keepBuffer {
		*bp = b[:0]
		framePool.Put(bp)
	}
	return err
}
