package cluster

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/operator"
	"meshgo.dev/mesh/internal/wire"
)

// A client that connects and sends nothing, and one that completes TLS and
// then announces a 4 GiB frame, must not delay anyone else; the second is
// dropped.
func TestHostileClientsDoNotBlockOthers(t *testing.T) {
	port := freePort(t)
	n := startNode(t, testConfig(t, "solo", "127.0.0.1", port, RolePrimary))
	addr := n.cfg.NodeName.Addr()

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hostile := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	defer hostile.Close()
	if err := hostile.Handshake(); err != nil {
		t.Fatal(err)
	}
	var prefix [4]byte
	binary.LittleEndian.PutUint32(prefix[:], 0xFFFFFFFF)
	if _, err := hostile.Write(prefix[:]); err != nil {
		t.Fatal(err)
	}

	// Meanwhile an operator query is answered promptly.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	body, err := operator.Query(ctx, n.cfg.NodeName, []byte(n.cfg.Cookie), wire.OperatorQuery{Kind: uint8(operator.KindStatus)}, time.Second)
	if err != nil || len(body) == 0 {
		t.Fatalf("operator query while hostile clients are connected: %v", err)
	}

	// The hostile connection is closed by the node.
	_ = hostile.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := hostile.Read(make([]byte, 1)); err == nil {
		t.Fatal("node kept reading from a client that announced a 4 GiB frame")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("node neither answered nor closed the hostile connection")
	}
}
