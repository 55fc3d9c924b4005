package cluster

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/handshake"
	"meshgo.dev/mesh/internal/handshake/handshaketest"
	"meshgo.dev/mesh/internal/wire"
)

// A node of this build next to one that speaks protocol 3 only (the build
// before it): they link on 3, whichever is the primary, and count-2 routes
// run across them, forwarded either way and mirrored, as on one version.
func TestNodesOnTwoProtocolVersionsLinkOnTheOlder(t *testing.T) {
	for _, old := range []Role{RolePrimary, RoleStandby} {
		t.Run("version 3 "+string(old), func(t *testing.T) {
			port := freePort(t)
			var popts, sopts []Option
			if old == RolePrimary {
				popts = append(popts, withProtocol(3))
			} else {
				sopts = append(sopts, withProtocol(3))
			}
			p := startNode(t, testConfig(t, "primary", "127.0.0.1", port, RolePrimary), popts...)
			s := startNode(t, testConfig(t, "standby", "::1", port, RoleStandby), sopts...)
			waitLinked(t, p, s)
			for _, ab := range [][2]*Node{{p, s}, {s, p}} {
				if sess := ab[0].session(ab[1].Name()); sess == nil || sess.proto != 3 {
					t.Fatalf("%s links to %s on protocol %v, want 3", ab[0].Name(), ab[1].Name(), sess)
				}
				// meshc cluster status shows it (peers[].protocol_version).
				for _, pv := range ab[0].peerViewsForStatus() {
					if pv.Node == ab[1].Name() && pv.Protocol != 3 {
						t.Fatalf("%s reports its link to %s on protocol %d, want 3", ab[0].Name(), pv.Node, pv.Protocol)
					}
				}
			}
			servers := map[*Node]string{p: serveNode(t, p, nil).URL, s: serveNode(t, s, nil).URL}
			remote := 0
			for i := range 12 {
				ingress := []*Node{p, s}[i%2]
				resp, body := get(t, servers[ingress]+fmt.Sprintf("/things/%d", i),
					map[string]string{HeaderIdempotencyKey: fmt.Sprintf("upgrade-%s-%d", old, i)}, "{}")
				key := resp.Header.Get(HeaderRequestKey)
				if resp.StatusCode != http.StatusCreated || key == "" {
					t.Fatalf("request %d through %s: status %d, key %q, body %s", i, ingress.Name(), resp.StatusCode, key, body)
				}
				for _, n := range []*Node{p, s} {
					eventually(t, 3*time.Second, func() error {
						r, ok := n.Record(key)
						if !ok || r.Phase != continuity.PhaseCompleted || r.ReplicaStatus != continuity.ReplicaMirrored {
							return fmt.Errorf("%s holds %+v", n.Name(), r)
						}
						if n == ingress && r.RoutedRemotely {
							remote++
						}
						return nil
					})
				}
			}
			if remote == 0 {
				t.Fatal("no request was forwarded to the other node; the keys did not cover both owners")
			}
		})
	}
}

// For a peer on protocol 3, which has no SyncPart and counts its peer as
// synced at the first Sync, the snapshot goes as Syncs only: one frame up to
// syncChunkBytesV3, so that peer applies it whole before it counts as
// synced, and beyond that several, each under the frame cap.
func TestSnapshotForAVersion3PeerIsSyncsOnly(t *testing.T) {
	n := startNode(t, testConfig(t, "primary", "127.0.0.1", freePort(t), RolePrimary))
	frames := func(proto uint8) (syncs, parts, records int) {
		for _, m := range n.syncMessages(0, proto) {
			if size := len(wire.Encode(m)); size > wire.MaxFrame {
				t.Fatalf("a snapshot frame is %d bytes, over the frame cap", size)
			}
			switch m := m.(type) {
			case wire.Sync:
				syncs++
				records += len(m.Records)
			case wire.SyncPart:
				parts++
				records += len(m.Records)
			}
		}
		return syncs, parts, records
	}

	seedBigRecords(t, n, 0, 100) // about 6 MiB
	if syncs, parts, recs := frames(handshake.Version); parts < 2 || syncs != 1 || recs != 100 {
		t.Fatalf("protocol %d: %d SyncParts, %d Syncs, %d records; want parts, one Sync, 100", handshake.Version, parts, syncs, recs)
	}
	if syncs, parts, recs := frames(3); parts != 0 || syncs != 1 || recs != 100 {
		t.Fatalf("protocol 3: %d SyncParts, %d Syncs, %d records; want one Sync of 100", parts, syncs, recs)
	}
	seedBigRecords(t, n, 100, 300) // about 18 MiB: more than one frame can carry
	if syncs, parts, recs := frames(3); parts != 0 || syncs < 2 || recs != 300 {
		t.Fatalf("protocol 3: %d SyncParts, %d Syncs, %d records; want several Syncs of 300", parts, syncs, recs)
	}
}

// A peer of protocol version 3 refuses the node's first hello, naming its
// version (in the words of that build); the node dials again offering 3
// and links on it.
func TestDialRedialsAPeerOfAnOlderProtocol(t *testing.T) {
	cfg := testConfig(t, "primary", "127.0.0.1", freePort(t), RolePrimary)
	cfg.PeerTimeout = 5 * time.Second // no heartbeat from the fake peer ends the session meanwhile
	n := startNode(t, cfg)
	ln, cert := handshaketest.Listen(t)
	peerName := "standby@" + ln.Addr().String()
	hellos := make(chan uint8, 2)
	done := make(chan struct{})
	peerGone := sync.OnceFunc(func() { close(done) })
	t.Cleanup(peerGone) // before the node's shutdown, also when the test fails
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		offered, err := handshaketest.RefuseAsVersion3(raw, cert)
		if err != nil {
			t.Error(err)
			return
		}
		hellos <- offered

		raw, err = ln.Accept()
		if err != nil {
			return
		}
		res, err := handshake.Server(t.Context(), raw, handshake.Config{
			LocalName: peerName, Kind: handshake.KindNode, Cookie: []byte(cfg.Cookie), Certificate: cert,
			Timeout: 5 * time.Second, Version: 3,
		})
		if err != nil {
			t.Errorf("second handshake: %v", err)
			return
		}
		hellos <- res.Version
		go io.Copy(io.Discard, res.Conn)
		<-done // the peer goes away before the node shuts down (no hand-over to it)
		res.Conn.Close()
	}()
	name, err := n.dial(t.Context(), ln.Addr().String(), 5*time.Second)
	if err != nil || name != peerName {
		t.Fatalf("dial = %q, %v; want %q", name, err, peerName)
	}
	if first, second := <-hellos, <-hellos; first != handshake.Version || second != 3 {
		t.Fatalf("the node offered %d, then settled on %d; want %d, then 3", first, second, handshake.Version)
	}
	if s := n.session(peerName); s == nil || s.proto != 3 {
		t.Fatalf("session to %s: %v, want one on protocol 3", peerName, s)
	}
	peerGone()
	eventually(t, 5*time.Second, func() error {
		if s := n.session(peerName); s != nil && !s.isClosed() {
			return fmt.Errorf("the session to %s is still open", peerName)
		}
		return nil
	})
}
