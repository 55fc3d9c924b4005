package cluster

import (
	"context"
	"net"
	"strings"
	"sync"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/handshake"
	"meshgo.dev/mesh/internal/peer"
	"meshgo.dev/mesh/internal/wire"
)

var errSessionClosed = peer.ErrClosed

// session is the engine's side of a link to one peer: the link (package
// peer) carries frames, and the session, its Handler, applies what the peer
// sends and holds what the engine tracks per link.
type session struct {
	n        *Node
	link     *peer.Link
	peer     string
	outgoing bool
	proto    uint8           // the protocol version settled in the handshake
	started  int64           // node-monotonic nanoseconds at registration
	mark     uint64          // the attempt watermark at registration (heardIncarnation)
	knew     uint64          // the peer's incarnation known from the previous session, at registration
	closed   <-chan struct{} // the link's Done

	synced   chan struct{} // closed when the peer's first snapshot was applied, its closing Sync included
	syncOnce sync.Once
	// counted: register added this session to Node.unsynced; settle takes
	// it out once, when the peer's first Sync was applied or the session
	// ended.
	counted    bool
	settleOnce sync.Once

	routes  sync.Map    // route id -> context.CancelFunc for requests this node executes
	durable durableAcks // prepare acks and Held answers waiting for the log store (outcome.go)
	// lastHeld is the last completed version merged from an Upsert; read
	// loop only.
	lastHeld heldVersion
}

func (s *session) direction() string {
	if s.outgoing {
		return "outgoing"
	}
	return "incoming"
}

func (s *session) isClosed() bool { return s.link.IsClosed() }

// isSynced reports whether the peer's first snapshot was applied.
func (s *session) isSynced() bool {
	select {
	case <-s.synced:
		return true
	default:
		return false
	}
}

func (s *session) close(cause error) { s.link.Close(cause) }

// settle takes a registered session out of Node.unsynced, once.
func (s *session) settle() {
	s.settleOnce.Do(func() {
		if s.counted {
			s.n.unsynced.Add(-1)
		}
	})
}

// send queues one message to be written at once; see peer.Link.Send.
func (s *session) send(m wire.Message) error { return s.link.Send(m) }

// call sends m and waits for the reply carrying the same id.
func (s *session) call(ctx context.Context, id uint64, m wire.Message) (wire.Message, error) {
	return s.link.Call(ctx, id, m)
}

// flush waits until everything queued so far is written, the link closes
// or ctx ends.
func (s *session) flush(ctx context.Context) error { return s.link.Flush(ctx) }

// startSession registers a freshly authenticated connection and starts its
// reader and heartbeat.
func (n *Node) startSession(conn net.Conn, name string, outgoing bool, proto uint8) {
	s := &session{n: n, peer: name, outgoing: outgoing, proto: proto, started: n.mono(), synced: make(chan struct{})}
	s.link = peer.New(conn, peer.Config{Peer: name, Outgoing: outgoing,
		PeerTimeout: n.cfg.PeerTimeout, HeartbeatInterval: n.cfg.HeartbeatInterval,
		Heartbeat: func() wire.Message { return wire.Ping{Nonce: randUint64(), Authority: n.authorityMsg()} },
		Log:       n.log}, s)
	s.closed = s.link.Done()
	if !n.register(s) {
		conn.Close()
		return
	}
	if proto < handshake.Version {
		n.log.Warn("[mesh-rt transport] peer speaks an older protocol version; linked on it until the peer is upgraded",
			"peer", name, "protocol", proto, "local_protocol", handshake.Version)
	}
	s.link.Start(n.goRun)
	if peers := n.Peers(); len(peers) > 1 {
		_ = s.send(wire.PeerList{Names: peers})
	}
	for _, m := range n.syncMessages(s.knew, s.proto) {
		if s.send(m) != nil {
			return
		}
	}
}

// applySnapshot merges one frame of the peer's snapshot, a SyncPart or the
// closing Sync.
func (s *session) applySnapshot(m *wire.Sync) {
	n := s.n
	n.reg.RaiseWatermark(m.AttemptWatermark)
	n.observeAuthority(s.peer, m.Authority.Role, m.Authority.Epoch, highestEpoch(m.Records))
	for i := range m.Records {
		n.merge(&m.Records[i], s.peer)
	}
}

func (n *Node) authorityMsg() wire.Authority {
	role, epoch := n.reg.Authority()
	return wire.Authority{Role: role, Epoch: epoch}
}

// syncChunkBytes bounds the approximate encoded size of one snapshot frame,
// so a snapshot of many records (or of records carrying stored responses)
// never nears the frame cap and heartbeats keep flowing between chunks.
const syncChunkBytes = 2 << 20

func approxRecordSize(r continuity.Record) int {
	return 256 + len(r.RequestKey) + len(r.PayloadHash) + len(r.IngressNode) + len(r.OwnerNode) +
		len(r.ReplicaNode) + len(r.ExecutionNode) + len(r.Error) + len(r.RuntimeName) + len(r.Response) +
		len(r.Input) + len(r.Output)
}

// syncChunkBytesV3 bounds a snapshot frame for a peer on protocol version
// 3, which has no SyncPart and counts its peer as synced at the first Sync:
// such a peer gets the whole snapshot in one frame up to this size, below
// the frame cap with room for the estimate's error, and several Syncs only
// beyond it.
const syncChunkBytesV3 = 12 << 20

// syncMessages is the node's snapshot for a peer speaking protocol version
// proto: SyncParts of at most about syncChunkBytes each, then the Sync that
// closes it (the only frame when the snapshot is small). A peer on version 3
// gets Syncs only (syncChunkBytesV3).
func (n *Node) syncMessages(knew uint64, proto uint8) []wire.Message {
	recs := n.reg.Records()
	auth := n.authorityMsg()
	wm := n.reg.Watermark()
	chunk, parts := syncChunkBytes, proto >= 4
	if !parts {
		chunk = syncChunkBytesV3
	}
	var out []wire.Message
	start, size := 0, 0
	for i, r := range recs {
		sz := approxRecordSize(r)
		if size+sz > chunk && i > start {
			m := wire.Sync{Authority: auth, AttemptWatermark: wm, Records: recs[start:i], Incarnation: n.incarnation, PeerIncarnation: knew}
			if parts {
				out = append(out, wire.SyncPart(m))
			} else {
				out = append(out, m)
			}
			start, size = i, 0
		}
		size += sz
	}
	return append(out, wire.Sync{Authority: auth, AttemptWatermark: wm, Records: recs[start:], Incarnation: n.incarnation, PeerIncarnation: knew})
}

// broadcastSync resends the whole local state to every peer, used after the
// local authority was lowered so the peer learns what this node still holds.
func (n *Node) broadcastSync() {
	for _, s := range n.sessionList() {
		for _, m := range n.syncMessages(s.knew, s.proto) {
			if s.send(m) != nil {
				break
			}
		}
	}
}

// Handle applies one message from the peer (peer.Handler). Upserts go to
// HandleUpsert, replies to the call waiting for them.
func (s *session) Handle(m wire.Message) {
	n := s.n
	switch m := m.(type) {
	case wire.Ping:
		_ = s.send(wire.Pong{Nonce: m.Nonce, Authority: n.authorityMsg()})
		n.observeAuthority(s.peer, m.Authority.Role, m.Authority.Epoch, nil)
		s.heard(m.Authority)
	case wire.Pong:
		s.heard(m.Authority)
		n.observeAuthority(s.peer, m.Authority.Role, m.Authority.Epoch, nil)
		n.peerConfirmed(s.peer, m.Nonce)
	case wire.PeerList:
		for _, name := range m.Names {
			if name == n.self || n.session(name) != nil {
				continue
			}
			if addr, err := nameAddr(name); err == nil {
				n.goRun(func() { _, _ = n.dial(n.ctx, addr, n.cfg.PeerTimeout) })
			}
		}
	case wire.SyncPart:
		// A leading part of a snapshot: its records are merged, but the
		// peer counts as synced only once the closing Sync is applied.
		s.applySnapshot((*wire.Sync)(&m))
	case wire.Sync:
		first := !s.isSynced()
		s.applySnapshot(&m)
		if first {
			n.heardIncarnation(s, m.Incarnation)
			if m.PeerIncarnation != 0 && m.PeerIncarnation != n.incarnation {
				// The peer outlived this node's previous process and
				// recovers what it held (heardIncarnation on its side).
				n.peerOutlivedPrevious.Store(true)
			}
		}
		s.heard(m.Authority)
		n.everSynced.Store(true)
		s.settle() // before synced closes: a submission it releases sees the count down
		s.syncOnce.Do(func() { close(s.synced) })
		n.resynced(s.peer, s.started)
	case wire.Prepare:
		s.HandlePrepare(&m)
	case wire.Held:
		s.HandleHeld(&m)
	case wire.Dispatch:
		_ = s.send(n.handleDispatch(m))
	case wire.RouteRequest:
		if !n.running.add() {
			_ = s.send(wire.RouteResponse{ID: m.ID, Reason: string(continuity.ReasonShuttingDown)})
			break
		}
		go func() {
			defer n.running.done()
			n.serveRemoteRoute(s, m)
		}()
	case wire.Handover:
		n.handleHandover(s, m)
	case wire.RouteCancel:
		if v, ok := s.routes.Load(m.ID); ok {
			v.(context.CancelFunc)()
		}
	}
}

// HandleUpsert applies one record transition from the peer (peer.Handler).
func (s *session) HandleUpsert(m *wire.Upsert) {
	n := s.n
	n.reg.RaiseWatermark(m.AttemptWatermark)
	n.observeAuthority(s.peer, m.Authority.Role, m.Authority.Epoch, &m.Record)
	if n.merge(&m.Record, s.peer) && m.Record.Phase == continuity.PhaseCompleted {
		// A Held call for this completion follows on the link (outcome.go).
		s.lastHeld = heldVersion{key: m.Record.RequestKey, attempt: m.Record.Attempt}
	}
}

// HandlePrepare stores a record the peer asks this node to mirror and
// answers it (peer.Handler): at once with the memory store or for a minted
// route key (mintedRoute), once the record is durable with the log store.
func (s *session) HandlePrepare(m *wire.Prepare) {
	n := s.n
	ack := n.handlePrepare(s.peer, m)
	if !ack.OK || n.store == nil || !replicaAckAfterFsync || mintedRoute(&m.Record) {
		bp := frameScratch.Get().(*[]byte)
		*bp = wire.AppendPrepareAck((*bp)[:0], &ack)
		_ = s.link.Reply(*bp) // copies it; on the reader, as HandlePrepare runs
		frameScratch.Put(bp)
		return
	}
	// Acknowledged once the mirrored record is durable here too: the
	// ingress hears that a count-2 record is mirrored only when it is on
	// this node's disk as well.
	s.queueDurableAck(ack, n.storeMark())
}

// HandleHeld answers a Held call (peer.Handler): at once with the memory
// store, once the completion is durable with the log store (outcome.go).
func (s *session) HandleHeld(m *wire.Held) {
	n := s.n
	ack := n.handleHeld(m, s.lastHeld)
	if !ack.OK || n.store == nil || !replicaAckAfterFsync {
		bp := frameScratch.Get().(*[]byte)
		*bp = wire.AppendHeldAck((*bp)[:0], &ack)
		_ = s.link.Reply(*bp) // copies it; on the reader, as HandleHeld runs
		frameScratch.Put(bp)
		return
	}
	s.queueDurableAck(ack, n.storeMark())
}

// LinkClosed forgets the session once its link closed (peer.Handler).
func (s *session) LinkClosed(cause error) { s.n.unregister(s, cause) }

// highestEpoch picks the record a fencing diagnostic should name: one of the
// highest epoch, preferring declared work over route records and startup
// work above all — the recovered work is what an operator looks for.
func highestEpoch(recs []continuity.Record) *continuity.Record {
	rank := func(r *continuity.Record) int {
		switch {
		case r.Kind == continuity.KindRoute:
			return 0
		case strings.HasPrefix(r.RequestKey, continuity.StartupKeyPrefix):
			return 2
		}
		return 1
	}
	var best *continuity.Record
	for i := range recs {
		r := &recs[i]
		if best == nil || r.Epoch > best.Epoch || (r.Epoch == best.Epoch && rank(r) > rank(best)) {
			best = r
		}
	}
	return best
}
