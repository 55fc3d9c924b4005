package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/wire"
)

// A submission on a node whose peer is linked but has not sent its first
// snapshot waits for it: until then the node does not know which keys the
// peer ran alone (a node just restarted would run such a key again) nor the
// attempt ids it used. Seen in a crash soak: a restarted node answered a
// count-1 route 2 ms before its peer, which had not registered the link yet,
// answered the same key under another attempt.
func TestSubmissionWaitsForThePeersFirstSnapshot(t *testing.T) {
	handlers := &registry{handlers: map[string]*handler{
		"sync.One": {name: "sync.One", count: 1, kind: continuity.KindWork, run: func(context.Context) error { return nil }},
	}}
	cfg := testConfig(t, "primary", "127.0.0.1", freePort(t), RolePrimary)
	cfg.PeerTimeout = 10 * time.Second // the heartbeat must not end the session first
	n := startNode(t, cfg, withHandlers(handlers))

	const peerName = "standby@127.0.0.1:1"
	local, remote := net.Pipe()
	t.Cleanup(func() { remote.Close() })
	go io.Copy(io.Discard, remote) // what the node sends its peer
	n.startSession(local, peerName, false)
	if n.unsynced.Load() != 1 {
		t.Fatalf("unsynced sessions = %d after registering one, want 1", n.unsynced.Load())
	}

	key := ""
	for i := 0; key == ""; i++ { // a key this node owns, so the submission never waits on the fake peer
		k := fmt.Sprintf("k-%d", i)
		if continuity.PlaceCanonical(k, continuity.CanonicalMembership([]string{n.Name(), peerName})).Owner == n.Name() {
			key = k
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := n.Submit(t.Context(), Declaration{RuntimeName: "sync.One", ReplicationCount: 1}, key, "p")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the submission ended (%v) before the peer's snapshot arrived", err)
	case <-time.After(300 * time.Millisecond):
	}

	if err := wire.WriteMessage(remote, wire.Sync{Authority: wire.Authority{Role: RoleStandby}, Incarnation: 7}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("submit after the snapshot: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the submission still waits after the peer's snapshot was applied")
	}
	if n.unsynced.Load() != 0 {
		t.Fatalf("unsynced sessions = %d after the snapshot, want 0", n.unsynced.Load())
	}
	eventually(t, 5*time.Second, func() error { // the work runs after Submit returns
		if r, ok := n.reg.Get(key); !ok || r.Phase != continuity.PhaseCompleted {
			return fmt.Errorf("record %+v, %v; want it completed", r, ok)
		}
		return nil
	})
}
