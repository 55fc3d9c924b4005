package handshake

import (
	"fmt"

	"meshgo.dev/mesh/internal/wire"
)

// Handshake messages, one per frame (capped at wire.MaxHandshakeFrame), each
// starting with a tag byte. Integers are little-endian, strings u32
// length-prefixed (wire.Encoder).
//
//	Tag   Message       Sender  Layout after the tag
//	0x01  client hello  client  version u8, kind u8, name, nonce [32]
//	0x02  server hello  server  version u8, kind u8, name, nonce [32]
//	0x03  proof         client  mac_c [32]
//	0x04  result        server  status u8, then mac_s [32] if status is ok,
//	                            else reason string
//	0x05  ack           client  status u8 (ok or auth failed)
//
// The server may answer a client hello with a failed result instead of its
// hello. Decoders reject anything that does not re-encode to the same bytes.
const (
	tagClientHello = 0x01
	tagServerHello = 0x02
	tagProof       = 0x03
	tagResult      = 0x04
	tagAck         = 0x05
)

const (
	nonceSize = 32
	macSize   = 32 // HMAC-SHA256
	// maxReason bounds the refusal reason a server sends.
	maxReason = 512
)

// status is the outcome carried by result and ack.
type status uint8

const (
	statusOK         status = 0
	statusAuthFailed status = 1
	statusRefused    status = 2 // result only
)

type message interface {
	appendTo(dst []byte) []byte
}

// hello introduces one side. fromServer selects the tag.
type hello struct {
	fromServer bool
	version    uint8
	kind       Kind
	name       string
	nonce      [nonceSize]byte
}

func (h hello) appendTo(dst []byte) []byte {
	tag := byte(tagClientHello)
	if h.fromServer {
		tag = tagServerHello
	}
	e := wire.NewEncoder(append(dst, tag))
	e.U8(h.version)
	e.U8(uint8(h.kind))
	e.String(h.name)
	e.Fixed(h.nonce[:])
	return e.Bytes()
}

type proof struct {
	mac [macSize]byte
}

func (p proof) appendTo(dst []byte) []byte {
	return append(append(dst, tagProof), p.mac[:]...)
}

type result struct {
	status status
	mac    [macSize]byte // status ok only
	reason string        // other statuses only
}

func (r result) appendTo(dst []byte) []byte {
	e := wire.NewEncoder(append(dst, tagResult, byte(r.status)))
	if r.status == statusOK {
		e.Fixed(r.mac[:])
	} else {
		e.String(r.reason)
	}
	return e.Bytes()
}

type ack struct {
	status status
}

func (a ack) appendTo(dst []byte) []byte {
	return append(dst, tagAck, byte(a.status))
}

// errVersion reports a hello whose version is older than any this side
// speaks; the rest of such a hello is not parsed, since an older version may
// lay it out differently. A newer version is read: from MinVersion on, the
// hello's layout is fixed, and the server answers with its own newest.
type errVersion struct{ got uint8 }

func (e errVersion) Error() string {
	return fmt.Sprintf("unsupported protocol version %d (this side speaks %d to %d)", e.got, MinVersion, Version)
}

// decode parses one handshake message. It checks structure only (tags,
// lengths, status and kind codes, trailing bytes); names and MACs are the
// protocol's business. Errors wrap ErrProtocol.
func decode(b []byte) (message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty message", ErrProtocol)
	}
	d := wire.NewDecoder(b)
	d.U8() // the tag, read so error offsets count from the start
	var m message
	switch b[0] {
	case tagClientHello, tagServerHello:
		h := hello{fromServer: b[0] == tagServerHello, version: d.U8()}
		if d.Err() == nil && h.version < MinVersion {
			return nil, fmt.Errorf("%w: %w", ErrProtocol, errVersion{h.version})
		}
		h.kind = Kind(d.U8())
		if d.Err() == nil && !h.kind.valid() {
			return nil, fmt.Errorf("%w: unknown kind %d", ErrProtocol, h.kind)
		}
		h.name = d.String()
		d.Fixed(h.nonce[:])
		m = h
	case tagProof:
		var p proof
		d.Fixed(p.mac[:])
		m = p
	case tagResult:
		r := result{status: status(d.U8())}
		switch {
		case d.Err() != nil:
		case r.status == statusOK:
			d.Fixed(r.mac[:])
		case r.status == statusAuthFailed || r.status == statusRefused:
			r.reason = d.String()
		default:
			return nil, fmt.Errorf("%w: unknown result status %d", ErrProtocol, r.status)
		}
		m = r
	case tagAck:
		a := ack{status: status(d.U8())}
		if d.Err() == nil && a.status != statusOK && a.status != statusAuthFailed {
			return nil, fmt.Errorf("%w: unknown ack status %d", ErrProtocol, a.status)
		}
		m = a
	default:
		return nil, fmt.Errorf("%w: unknown message tag 0x%02x", ErrProtocol, b[0])
	}
	if err := d.Finish(); err != nil {
		return nil, fmt.Errorf("%w: %s message: %w", ErrProtocol, messageName(b[0]), err)
	}
	return m, nil
}

func messageName(tag byte) string {
	switch tag {
	case tagClientHello:
		return "client hello"
	case tagServerHello:
		return "server hello"
	case tagProof:
		return "proof"
	case tagResult:
		return "result"
	case tagAck:
		return "ack"
	default:
		return fmt.Sprintf("tag 0x%02x", tag)
	}
}
