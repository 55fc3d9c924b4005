package handshake

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzHandshakeMessages(f *testing.F) {
	nonce := [nonceSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}
	for _, m := range []message{
		hello{version: Version, kind: KindNode, name: standbyName, nonce: nonce},
		hello{fromServer: true, version: Version, kind: KindNode, name: primaryName, nonce: nonce},
		hello{version: Version, kind: KindOperator, name: "meshc@localhost"},
		proof{mac: nonce},
		result{status: statusOK, mac: nonce},
		result{status: statusAuthFailed, reason: ErrAuthFailed.Error()},
		result{status: statusRefused, reason: "unsupported protocol version 2 (this side speaks 1)"},
		ack{status: statusOK},
		ack{status: statusAuthFailed},
	} {
		f.Add(m.appendTo(nil))
	}
	f.Add([]byte{})
	f.Add([]byte{tagClientHello, 2})
	f.Add([]byte{tagResult, 9})
	f.Add([]byte{tagClientHello, Version, byte(KindNode), 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			if m != nil || !errors.Is(err, ErrProtocol) {
				t.Fatalf("decode = %#v, %v; want nil and ErrProtocol", m, err)
			}
			return
		}
		// Accepted messages are canonical: they re-encode to the input.
		if enc := m.appendTo(nil); !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs\n  in: % x\n out: % x", b, enc)
		}
		if h, ok := m.(hello); ok {
			_ = checkName(h.name) // must not panic on any decoded name
		}
	})
}
