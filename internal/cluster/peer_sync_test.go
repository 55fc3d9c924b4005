package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/handshake"
	"meshgo.dev/mesh/internal/wire"
)

// fakePeerName sorts after the test nodes' names ("primary@…"), so a
// session the node dialed to it is the preferred one.
const fakePeerName = "standby@127.0.0.1:1"

// syncTestNode starts a primary with one count-1 declared work, "sync.One",
// and a peer timeout long enough that no heartbeat ends a fake peer's
// session during the test.
func syncTestNode(t *testing.T) *Node {
	handlers := &registry{handlers: map[string]*handler{
		"sync.One": {name: "sync.One", count: 1, kind: continuity.KindWork, run: func(context.Context) error { return nil }},
	}}
	cfg := testConfig(t, "primary", "127.0.0.1", freePort(t), RolePrimary)
	cfg.PeerTimeout = 10 * time.Second
	return startNode(t, cfg, withHandlers(handlers))
}

// fakePeerSession links n to fakePeerName over a pipe and returns the
// peer's end; what the node sends is read and dropped.
func fakePeerSession(t *testing.T, n *Node, outgoing bool) net.Conn {
	local, remote := net.Pipe()
	t.Cleanup(func() { remote.Close() })
	go io.Copy(io.Discard, remote)
	n.startSession(local, fakePeerName, outgoing, handshake.Version)
	return remote
}

// submitOwnKey submits sync.One under a key n owns once linked to the fake
// peer (so the submission never waits on the peer's answers) and returns
// the key and the channel the submission's error arrives on.
func submitOwnKey(t *testing.T, n *Node) (string, <-chan error) {
	key := ""
	for i := 0; key == ""; i++ {
		k := fmt.Sprintf("k-%d", i)
		if continuity.PlaceCanonical(k, continuity.CanonicalMembership([]string{n.Name(), fakePeerName})).Owner == n.Name() {
			key = k
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := n.Submit(t.Context(), Declaration{RuntimeName: "sync.One", ReplicationCount: 1}, key, "p")
		done <- err
	}()
	return key, done
}

// stillWaiting fails the test if the submission ends within 300 ms.
func stillWaiting(t *testing.T, done <-chan error, when string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("the submission ended (%v) %s", err, when)
	case <-time.After(300 * time.Millisecond):
	}
}

// releasedBySync sends the closing Sync of the fake peer's snapshot on
// remote and fails the test unless the submission then ends without error.
func releasedBySync(t *testing.T, remote net.Conn, done <-chan error) {
	t.Helper()
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
}

// A submission on a node whose peer is linked but has not sent its first
// snapshot waits for it: until then the node does not know which keys the
// peer ran alone (a node just restarted would run such a key again) nor the
// attempt ids it used. Seen in a crash soak: a restarted node answered a
// count-1 route 2 ms before its peer, which had not registered the link yet,
// answered the same key under another attempt.
func TestSubmissionWaitsForThePeersFirstSnapshot(t *testing.T) {
	n := syncTestNode(t)
	remote := fakePeerSession(t, n, false)
	if n.unsynced.Load() != 1 {
		t.Fatalf("unsynced sessions = %d after registering one, want 1", n.unsynced.Load())
	}
	key, done := submitOwnKey(t, n)
	stillWaiting(t, done, "before the peer's snapshot arrived")

	// A leading part of the snapshot is merged, but the peer is not synced
	// until the closing Sync: its later parts may hold keys it ran alone.
	now := time.Now().UTC()
	partRec := continuity.Record{
		RequestKey: "from-the-part", PayloadHash: "payload", Attempt: 3,
		Phase: continuity.PhaseCompleted, Result: continuity.ResultSucceeded,
		IngressNode: fakePeerName, OwnerNode: fakePeerName, ExecutionNode: fakePeerName, ReplicationCount: 1,
		ReplicaStatus: continuity.ReplicaUnassigned, Health: continuity.HealthHealthy,
		RuntimeName: "sync.One", Kind: continuity.KindWork, SubmittedAt: now, CompletedAt: now,
	}
	part := wire.SyncPart{Authority: wire.Authority{Role: RoleStandby}, Records: []continuity.Record{partRec}, Incarnation: 7}
	if err := wire.WriteMessage(remote, part); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if _, ok := n.reg.Get(partRec.RequestKey); !ok {
			return fmt.Errorf("the part's record is not merged")
		}
		return nil
	})
	stillWaiting(t, done, "after a leading part of the snapshot, before its closing Sync")
	if n.unsynced.Load() != 1 {
		t.Fatalf("unsynced sessions = %d after a leading part of the snapshot, want 1", n.unsynced.Load())
	}

	releasedBySync(t, remote, done)
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

// bigRecordResponse is the stored response of each record seedBigRecords
// makes, under the stored response's bound.
const bigRecordResponse = 60 << 10

// seedBigRecords merges into n the completed route records big-<from> to
// big-<to-1> (three digits), each with a stored response of
// bigRecordResponse bytes, about 6 MiB per hundred, and returns their keys.
func seedBigRecords(t *testing.T, n *Node, from, to int) []string {
	t.Helper()
	now := time.Now().UTC()
	body := bytes.Repeat([]byte("r"), bigRecordResponse)
	var keys []string
	for i := from; i < to; i++ {
		r := continuity.Record{
			RequestKey: fmt.Sprintf("big-%03d", i), PayloadHash: "payload", Attempt: uint64(i + 1),
			Phase: continuity.PhaseCompleted, Result: continuity.ResultSucceeded,
			IngressNode: n.Name(), OwnerNode: n.Name(), ExecutionNode: n.Name(), ReplicationCount: 1,
			ReplicaStatus: continuity.ReplicaUnassigned, Health: continuity.HealthHealthy,
			RuntimeName: "route", Kind: continuity.KindRoute, SubmittedAt: now, CompletedAt: now, Response: body,
		}
		if _, changed, err := n.reg.Merge(r, "test"); err != nil || !changed {
			t.Fatalf("seed %s: changed %v, %v", r.RequestKey, changed, err)
		}
		keys = append(keys, r.RequestKey)
	}
	return keys
}

// A snapshot larger than one chunk goes as SyncParts and one closing Sync,
// each under about syncChunkBytes, with every record once and in order.
func TestSnapshotPartsThenOneSync(t *testing.T) {
	n := startNode(t, testConfig(t, "primary", "127.0.0.1", freePort(t), RolePrimary))
	keys := seedBigRecords(t, n, 0, 100) // 6 MiB of stored responses: three chunks or more
	msgs := n.syncMessages(0, handshake.Version)
	if len(msgs) < 3 {
		t.Fatalf("%d snapshot frames for 6 MiB, want at least 3", len(msgs))
	}
	seen := map[string]int{}
	for i, m := range msgs {
		var recs []continuity.Record
		switch m := m.(type) {
		case wire.SyncPart:
			if i == len(msgs)-1 {
				t.Fatal("the snapshot ends with a SyncPart, not a Sync")
			}
			recs = m.Records
		case wire.Sync:
			if i != len(msgs)-1 {
				t.Fatalf("frame %d of %d is a Sync; only the last may be", i+1, len(msgs))
			}
			recs = m.Records
		default:
			t.Fatalf("frame %d is %T", i+1, m)
		}
		if size := len(wire.Encode(m)); size > syncChunkBytes+bigRecordResponse+4096 {
			t.Fatalf("frame %d is %d bytes, over a chunk", i+1, size)
		}
		for _, r := range recs {
			seen[r.RequestKey]++
		}
	}
	for _, k := range keys {
		if seen[k] != 1 {
			t.Fatalf("record %s is in %d snapshot frames, want 1", k, seen[k])
		}
	}
}

// countedWork declares "look.One", count 1, and counts its runs but for the
// declared work's startup run.
func countedWork() (*atomic.Int32, *registry) {
	runs := new(atomic.Int32)
	return runs, &registry{handlers: map[string]*handler{
		"look.One": {name: "look.One", count: 1, kind: continuity.KindWork,
			run: func(ctx context.Context) error {
				if id, _ := IdentityFrom(ctx); !strings.HasPrefix(id.RequestKey, "startup::") {
					runs.Add(1)
				}
				return nil
			}},
	}}
}

// A node started next to a running peer submits nothing before its first
// look for peers has ended: a submission made the moment Start returns
// waits for the link and the peer's snapshot, and finds the key the peer
// already ran instead of running it alone under a second attempt.
func TestSubmissionWaitsForTheFirstLookForPeers(t *testing.T) {
	runs, handlers := countedWork()
	decl := Declaration{RuntimeName: "look.One", ReplicationCount: 1}
	port := freePort(t)
	// As in TestSubmissionWaitsForTheWholeSnapshot, the bounds are not
	// under test: long enough for a race-instrumented handshake on a
	// loaded host.
	pcfg := testConfig(t, "primary", "127.0.0.1", port, RolePrimary)
	pcfg.PeerTimeout = 5 * time.Second
	p := startNode(t, pcfg, withHandlers(handlers))
	const key = "look-1"
	if res, err := p.Submit(t.Context(), decl, key, "p"); err != nil || res.Outcome != OutcomeCreated {
		t.Fatalf("submit on the primary: %+v, %v", res, err)
	}
	eventually(t, 5*time.Second, func() error {
		if r, ok := p.reg.Get(key); !ok || r.Phase != continuity.PhaseCompleted {
			return fmt.Errorf("record %+v, %v; want it completed", r, ok)
		}
		return nil
	})

	scfg := testConfig(t, "standby", "::1", port, RoleStandby)
	scfg.DiscoverySeed = "127.0.0.1" // the primary's address, however localhost resolves
	scfg.PeerTimeout = 5 * time.Second
	s := startNode(t, scfg, withHandlers(handlers))
	res, err := s.Submit(t.Context(), decl, key, "p")
	if err != nil || res.Outcome != OutcomeDuplicate || res.Record.Phase != continuity.PhaseCompleted {
		t.Fatalf("submit on the new node: %s %+v, %v; want a duplicate of the completed record", res.Outcome, res.Record, err)
	}
	time.Sleep(100 * time.Millisecond) // a second run would be under way by now
	if got := runs.Load(); got != 1 {
		t.Fatalf("the work ran %d times, want once", got)
	}
}

// A node that starts next to a peer holding a snapshot of several frames
// places nothing before the last frame is merged: a key the peer ran, sent
// in the snapshot's closing frame and owned by the new node once the pair
// is linked, is found there, not run again.
func TestSubmissionWaitsForTheWholeSnapshot(t *testing.T) {
	runs, handlers := countedWork()
	port := freePort(t)
	pcfg := testConfig(t, "primary", "127.0.0.1", port, RolePrimary)
	scfg := testConfig(t, "standby", "::1", port, RoleStandby)
	scfg.DiscoverySeed = "127.0.0.1" // the primary's address, however localhost resolves
	// The waits' bounds are not under test here: a race-instrumented run on
	// a loaded two-core host took longer than testConfig's 400 ms to link
	// and apply the 6 MiB snapshot (2 of 6 stress runs), and the submission
	// then went ahead alone, as the bound says it should.
	pcfg.PeerTimeout, scfg.PeerTimeout = 5*time.Second, 5*time.Second
	p := startNode(t, pcfg, withHandlers(handlers))

	members := continuity.CanonicalMembership([]string{pcfg.NodeName.String(), scfg.NodeName.String()})
	key := ""
	for i := 0; key == ""; i++ { // sorts after the big records, so it is in the closing frame
		k := fmt.Sprintf("zz-%d", i)
		if continuity.PlaceCanonical(k, members).Owner == scfg.NodeName.String() {
			key = k
		}
	}
	now := time.Now().UTC()
	body := bytes.Repeat([]byte("r"), 60<<10)
	seed := func(k string, resp []byte) {
		r := continuity.Record{
			RequestKey: k, PayloadHash: "p", Attempt: 1,
			Phase: continuity.PhaseCompleted, Result: continuity.ResultSucceeded,
			IngressNode: p.Name(), OwnerNode: p.Name(), ExecutionNode: p.Name(), ReplicationCount: 1,
			ReplicaStatus: continuity.ReplicaUnassigned, Health: continuity.HealthLocalOnly,
			RuntimeName: "look.One", Kind: continuity.KindWork, SubmittedAt: now, CompletedAt: now, Response: resp,
		}
		if _, changed, err := p.reg.Merge(r, "test"); err != nil || !changed {
			t.Fatalf("seed %s: changed %v, %v", k, changed, err)
		}
	}
	for i := range 100 { // 6 MiB
		seed(fmt.Sprintf("big-%03d", i), body)
	}
	seed(key, nil)
	msgs := p.syncMessages(0, handshake.Version)
	if len(msgs) < 3 {
		t.Fatalf("the primary's snapshot is %d frames, want at least 3", len(msgs))
	}

	s := startNode(t, scfg, withHandlers(handlers))
	res, err := s.Submit(t.Context(), Declaration{RuntimeName: "look.One", ReplicationCount: 1}, key, "p")
	if err != nil || res.Outcome != OutcomeDuplicate || res.Record.Phase != continuity.PhaseCompleted {
		t.Fatalf("submit on the new node: %s %+v, %v; want a duplicate of the completed record", res.Outcome, res.Record, err)
	}
	time.Sleep(100 * time.Millisecond) // a run would be under way by now
	if got := runs.Load(); got != 0 {
		t.Fatalf("the work ran %d times on the new node, want none", got)
	}
}

// Two nodes that dial each other at once keep the connection the node
// whose name sorts first dialed. A submission waiting for the snapshot on
// the connection that loses waits on for the snapshot on the one kept.
func TestSubmissionWaitsForTheReplacingSessionsSnapshot(t *testing.T) {
	n := syncTestNode(t)
	fakePeerSession(t, n, false)
	first := n.session(fakePeerName)
	_, done := submitOwnKey(t, n)
	time.Sleep(100 * time.Millisecond)

	remote := fakePeerSession(t, n, true) // the node's own dial: preferred
	if first == nil || n.session(fakePeerName) == first {
		t.Fatal("the outgoing session did not replace the incoming one")
	}
	<-first.closed
	stillWaiting(t, done, "when the first session was replaced, before the second one's snapshot")
	releasedBySync(t, remote, done)
}

// hangingDials is a network whose dials never connect: each waits until
// its context ends, as a dial to an address that drops packets does.
type hangingDials struct{ tcpNetwork }

func (hangingDials) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// stuckDials is a network whose dials ignore their context and return only
// when release is closed, as a dial stuck below the runtime might.
type stuckDials struct {
	tcpNetwork
	release chan struct{}
	stuck   *atomic.Int32
}

func (d stuckDials) DialContext(context.Context, string, string) (net.Conn, error) {
	d.stuck.Add(1)
	<-d.release
	return nil, errors.New("released")
}

// The first look's own bound: with a dial that never ends, a submission is
// still held at most the peer timeout, not until the dial returns.
func TestFirstLookBoundDoesNotWaitForTheDial(t *testing.T) {
	runs, handlers := countedWork()
	cfg := testConfig(t, "primary", "127.0.0.1", freePort(t), RolePrimary)
	cfg.DiscoverySeed = "127.0.0.2"
	nw := stuckDials{release: make(chan struct{}), stuck: new(atomic.Int32)}
	n := startNode(t, cfg, withHandlers(handlers), WithNetwork(nw))
	t.Cleanup(func() { close(nw.release) }) // before the node's shutdown (cleanups run last first)
	done := make(chan error, 1)
	go func() {
		res, err := n.Submit(t.Context(), Declaration{RuntimeName: "look.One", ReplicationCount: 1}, "stuck-1", "p")
		if err == nil && res.Outcome != OutcomeCreated {
			err = fmt.Errorf("outcome %s, want created", res.Outcome)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * cfg.PeerTimeout):
		t.Fatalf("the submission is still held after %v, with the first look's dial stuck", 10*cfg.PeerTimeout)
	}
	if nw.stuck.Load() == 0 {
		t.Fatal("no dial was made; the test proves nothing")
	}
	eventually(t, 5*time.Second, func() error {
		if runs.Load() != 1 {
			return fmt.Errorf("the work ran %d times, want once", runs.Load())
		}
		return nil
	})
}

// The first look for peers holds a submission at most the peer timeout:
// a node whose dials hang then runs it alone.
func TestFirstLookHoldsASubmissionAtMostThePeerTimeout(t *testing.T) {
	runs, handlers := countedWork()
	cfg := testConfig(t, "primary", "127.0.0.1", freePort(t), RolePrimary)
	cfg.DiscoverySeed = "127.0.0.2" // a peer address other than the node's own; never reached
	n := startNode(t, cfg, withHandlers(handlers), WithNetwork(hangingDials{}))
	start := time.Now()
	res, err := n.Submit(t.Context(), Declaration{RuntimeName: "look.One", ReplicationCount: 1}, "hang-1", "p")
	held := time.Since(start)
	if err != nil || res.Outcome != OutcomeCreated {
		t.Fatalf("submit: %s, %v; want created", res.Outcome, err)
	}
	if held < cfg.PeerTimeout/2 {
		t.Fatalf("the submission was held %v; the first look's dial hangs for the peer timeout (%v)", held, cfg.PeerTimeout)
	}
	eventually(t, 5*time.Second, func() error {
		if runs.Load() != 1 {
			return fmt.Errorf("the work ran %d times, want once", runs.Load())
		}
		return nil
	})
}
