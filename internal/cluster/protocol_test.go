package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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
	// records counts the seeded records only: the node's own startup work
	// adds its record once its startup delay has passed, which on a busy
	// machine falls between two of the checks below.
	frames := func(proto uint8) (syncs, parts, records int) {
		seeded := func(recs []continuity.Record) (k int) {
			for _, r := range recs {
				if strings.HasPrefix(r.RequestKey, "big-") {
					k++
				}
			}
			return k
		}
		for _, m := range n.syncMessages(0, proto) {
			if size := len(wire.Encode(m)); size > wire.MaxFrame {
				t.Fatalf("a snapshot frame is %d bytes, over the frame cap", size)
			}
			switch m := m.(type) {
			case wire.Sync:
				syncs++
				records += seeded(m.Records)
			case wire.SyncPart:
				parts++
				records += seeded(m.Records)
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

// rejectedBelowMinimum returns n's handshake_rejected entry if its last
// reason is protocol_below_minimum, with its failure count.
func rejectedBelowMinimum(n *Node) (continuity.Entry, bool) {
	for _, e := range n.Diagnostics().Entries {
		if e.Transition == transitionHandshakeRejected && e.Reason == reasonBelowMinimum {
			return e, true
		}
	}
	return continuity.Entry{}, false
}

// With MESH_CLUSTER_MIN_PROTOCOL at the newest version, a node whose
// dial a version-3 peer refuses does not dial again offering 3 (the
// refusal may be forged: it comes before the cookie proof). The dial fails
// with ErrBelowMinimum, and diagnostics and metrics say why.
func TestMinProtocolStopsTheRedialToAnOlderPeer(t *testing.T) {
	cfg := testConfig(t, "primary", "127.0.0.1", freePort(t), RolePrimary)
	cfg.MinProtocolVersion = handshake.Version
	n := startNode(t, cfg)
	ln, cert := handshaketest.Listen(t)
	// A connection is counted when it is accepted, before the refusal is
	// written: a redial would be counted before the dial could return. The
	// version offered is known only after the refusal, which the dial may
	// read before it is sent on the channel.
	var connections atomic.Int32
	offered := make(chan uint8, 4)
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			connections.Add(1)
			v, _ := handshaketest.RefuseAsVersion3(raw, cert)
			offered <- v
		}
	}()
	_, err := n.dial(t.Context(), ln.Addr().String(), 5*time.Second)
	if !errors.Is(err, handshake.ErrBelowMinimum) || !strings.Contains(err.Error(), envMinProtocol) {
		t.Fatalf("dial = %v; want ErrBelowMinimum naming %s", err, envMinProtocol)
	}
	if got := connections.Load(); got != 1 {
		t.Fatalf("the peer saw %d connections; want one", got)
	}
	select {
	case v := <-offered:
		if v != handshake.Version {
			t.Fatalf("the node offered %d; want %d", v, handshake.Version)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the peer never read the node's hello")
	}
	if _, ok := rejectedBelowMinimum(n); !ok {
		t.Fatalf("no handshake_rejected entry with reason %s in %+v", reasonBelowMinimum, n.Diagnostics().Entries)
	}
	if v, _ := value(scrape(t, n), "mesh_handshake_failures_total", "reason", reasonBelowMinimum); v != 1 {
		t.Fatalf("mesh_handshake_failures_total{reason=%q} = %v, want 1", reasonBelowMinimum, v)
	}
}

// A node with MESH_CLUSTER_MIN_PROTOCOL at the newest version and a peer
// that speaks 3 only never link, in either direction: as the server it
// refuses the peer's hello, as the client the peer's answer. Lowered back
// to 3, they link on 3.
func TestMinProtocolRefusesALinkOnAnOlderVersion(t *testing.T) {
	port := freePort(t)
	pcfg := testConfig(t, "primary", "127.0.0.1", port, RolePrimary)
	pcfg.MinProtocolVersion = handshake.Version
	p := startNode(t, pcfg)
	s := startNode(t, testConfig(t, "standby", "::1", port, RoleStandby), withProtocol(3))
	// Both directions tried: the standby's dials are refused by the
	// primary's server, the primary's refuse the standby's answer.
	eventually(t, 10*time.Second, func() error {
		e, ok := rejectedBelowMinimum(p)
		if !ok {
			return fmt.Errorf("no %s entry yet", reasonBelowMinimum)
		}
		if v, _ := value(scrape(t, p), "mesh_handshake_failures_total", "reason", reasonBelowMinimum); v < 4 {
			return fmt.Errorf("%v refusals so far (last %+v)", v, e)
		}
		return nil
	})
	for _, ab := range [][2]*Node{{p, s}, {s, p}} {
		if sess := ab[0].session(ab[1].Name()); sess != nil {
			t.Fatalf("%s linked to %s on protocol %d despite the minimum", ab[0].Name(), ab[1].Name(), sess.proto)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	pcfg.MinProtocolVersion = 3
	p = startNode(t, pcfg)
	waitLinked(t, p, s)
	if sess := p.session(s.Name()); sess == nil || sess.proto != 3 {
		t.Fatalf("with the minimum at 3, the link is %v, want one on protocol 3", sess)
	}
}
