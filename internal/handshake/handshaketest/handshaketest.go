// Package handshaketest plays, in tests, the handshake of builds that came
// before the current one.
package handshaketest

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"

	"meshgo.dev/mesh/internal/handshake"
	"meshgo.dev/mesh/internal/wire"
)

// Listen returns a loopback listener, closed when t ends, and a server
// certificate for the peer a test plays on it.
func Listen(t testing.TB) (net.Listener, tls.Certificate) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cert, err := handshake.NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return ln, cert
}

// RefuseAsVersion3 answers the client on raw as a node of the protocol-3
// build answers a hello of any other version: it runs TLS as the server with
// cert, reads the client's hello and sends the refusal that build sends, in
// its words and its encoding (result tag 0x04, status refused 0x02, then the
// reason as a u32 little-endian length and its bytes). It returns the
// version the client offered, and closes raw.
func RefuseAsVersion3(raw net.Conn, cert tls.Certificate) (uint8, error) {
	conn := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	defer conn.Close()
	hello, err := wire.ReadFrame(conn, wire.MaxHandshakeFrame)
	if err != nil {
		return 0, fmt.Errorf("read the client's hello: %w", err)
	}
	if len(hello) < 2 {
		return 0, errors.New("read the client's hello: too short")
	}
	reason := fmt.Sprintf("read client hello: handshake protocol violation: unsupported protocol version %d (this side speaks 3)", hello[1])
	msg := binary.LittleEndian.AppendUint32([]byte{0x04, 0x02}, uint32(len(reason)))
	return hello[1], wire.WriteFrame(conn, append(msg, reason...))
}
