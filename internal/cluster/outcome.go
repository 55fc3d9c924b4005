package cluster

import (
	"context"
	"errors"
	"sync"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/peer"
	"meshgo.dev/mesh/internal/wire"
)

// The outcome of a count-2 route leaves its owner only once the replica
// holds it (ARCHITECTURE.md, "Durability point").
//
// The completed record travels as an urgent Upsert (delivery); right behind
// it, on the same link, the owner sends Held, a call asking whether the
// replica holds that completed attempt. Frames are applied in order, so the
// replica answers after the Upsert was merged: from the read loop with the
// memory store, or, with the log store, once the merged version is fsynced
// there (durableAcks: the read loop only queues the answer, and one goroutine
// per batch of answers waits for one fsync shared by all of them). The owner
// fsyncs its own copy while the call travels, then waits for the answer.
//
// The wait is bounded: the handler has run and its effect is done, so the
// response goes out in any case once the replica is known lost (its link
// closed, or silent for the peer timeout) or it answered that it holds
// something else. The client then has the handler's real answer, held by the
// owner alone: a retry on the owner replays it, and the replica learns it
// from the owner's snapshot when the pair links again; only the loss of the
// owner before that leaves the replica to close the record outcome_unknown,
// the case the pair cannot cover while one of its nodes is down.

// heldCall is a Held call under way, or none (a zero value: nothing to wait
// for).
type heldCall struct {
	p       peer.Pending
	replica string
	ok      bool
}

// needsHeld reports whether the owner must hear from rec's replica before
// the response to rec leaves: a count-2 record whose replica is another node
// than this one and than the ingress. (When the replica is the ingress, the
// outcome reaches it ahead of the owner's reply on the same link, and the
// ingress makes it durable before answering its client: route_serve.go.)
func (n *Node) needsHeld(rec *continuity.Record) bool {
	return rec.ReplicationCount >= 2 && rec.ReplicaNode != "" && rec.ReplicaNode != n.self &&
		rec.ReplicaNode != rec.IngressNode && n.cfg.mode() == ModeCluster
}

// beginHeld asks rec's replica, when the response must wait for it, whether
// it holds rec's completed attempt; rec was just replicated. It returns at
// once; awaitHeld collects the answer.
func (n *Node) beginHeld(rec *continuity.Record) heldCall {
	if !n.needsHeld(rec) {
		return heldCall{}
	}
	return n.startHeld(rec)
}

// startHeld sends the Held call for rec to its replica.
func (n *Node) startHeld(rec *continuity.Record) heldCall {
	s := n.session(rec.ReplicaNode)
	if s == nil {
		return heldCall{} // no link: the replica is lost, or not linked yet
	}
	id := n.callID.Add(1)
	bp := frameScratch.Get().(*[]byte) // a stack buffer would escape in the encoder's appends
	*bp = wire.AppendHeld((*bp)[:0], id, rec.RequestKey, rec.Attempt)
	p, err := s.link.Begin(id, *bp) // copies it
	frameScratch.Put(bp)
	if err != nil {
		return heldCall{}
	}
	return heldCall{p: p, replica: rec.ReplicaNode, ok: true}
}

// awaitHeld waits for the answer to c, at most the peer timeout (after which
// the replica counts as lost) and never past the node's stop. A replica that
// does not confirm is logged; the response goes out all the same.
func (n *Node) awaitHeld(c heldCall, rec *continuity.Record) {
	if !c.ok {
		return
	}
	ack, err := c.p.WaitHeldAck(n.ctx, n.cfg.PeerTimeout)
	reason := ""
	switch {
	case errors.Is(err, peer.ErrClosed), errors.Is(err, context.Canceled):
		return // the replica's link closed (it is lost) or this node is stopping
	case errors.Is(err, context.DeadlineExceeded):
		reason = "timeout"
	case err != nil:
		reason = err.Error()
	default:
		if ack.OK {
			return
		}
		reason = ack.Reason
	}
	n.log.Warn("[mesh-rt continuity] replica did not confirm a route outcome; answering from the owner's copy",
		"request_key", rec.RequestKey, "attempt_id", rec.AttemptID(), "replica_node", c.replica, "reason", reason)
}

// heldVersion names a completed attempt a session merged.
type heldVersion struct {
	key     string
	attempt uint64
}

// handleHeld answers a Held call on the read loop: whether this node holds
// the completed attempt (the owner's Upsert of it was applied just before).
// last is the completed version the session merged last: the common case,
// answered without reading the record back from the registry.
func (n *Node) handleHeld(m *wire.Held, last heldVersion) wire.HeldAck {
	if last.attempt == m.Attempt && last.key == m.RequestKey {
		return wire.HeldAck{ID: m.ID, OK: true, Authority: n.authorityMsg()}
	}
	rec, ok := n.reg.Get(m.RequestKey)
	switch {
	case !ok:
		return wire.HeldAck{ID: m.ID, Reason: string(continuity.ReasonRequestKeyNotFound), Authority: n.authorityMsg()}
	case rec.Phase != continuity.PhaseCompleted || rec.Attempt != m.Attempt:
		return wire.HeldAck{ID: m.ID, Reason: string(continuity.ReasonAttemptMismatch), Authority: n.authorityMsg()}
	}
	return wire.HeldAck{ID: m.ID, OK: true, Authority: n.authorityMsg()}
}

// workOutputHeld returns once the replica of rec, count-2 work completed on
// this node, holds the completion (or is known lost: awaitHeld), so the
// output Result returns here is the one a retry reads on the survivor: an
// owner lost before its replica had the completion leaves the work pending
// there, and the survivor runs it again under a new attempt.
func (n *Node) workOutputHeld(rec *continuity.Record) {
	if rec.ReplicationCount < 2 || rec.ReplicaNode == "" || rec.ReplicaNode == n.self ||
		rec.ExecutionNode != n.self || n.cfg.mode() != ModeCluster {
		return
	}
	n.awaitHeld(n.startHeld(rec), rec)
}

// durableAcks holds a session's positive answers that wait for the log
// store: prepare acks (a mirrored record is acknowledged only once it is
// durable here) and Held answers. The read loop queues each with the store
// mark taken right after the version it confirms was stored, and one
// goroutine, started when the queue was empty, syncs to the highest mark and
// sends every answer queued meanwhile, so concurrent prepares and completions
// share one fsync, one waiting goroutine and one wake-up, and the read loop
// never waits for the disk.
type durableAcks struct {
	mu      sync.Mutex
	acks    []wire.Message // wire.PrepareAck or wire.HeldAck, OK
	mark    uint64
	running bool
}

// queueDurableAck queues ack to be sent once the store is durable up to
// mark.
func (s *session) queueDurableAck(ack wire.Message, mark uint64) {
	q := &s.durable
	q.mu.Lock()
	q.acks = append(q.acks, ack)
	q.mark = max(q.mark, mark)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		go s.sendDurableAcks()
	}
}

// sendDurableAcks sends the queued answers, batch by batch, each once the
// store is durable up to the batch's mark, until the queue is empty. When
// the store cannot make them durable, each answer becomes a refusal with the
// store's reason.
func (s *session) sendDurableAcks() {
	q, n := &s.durable, s.n
	var batch []wire.Message
	for {
		q.mu.Lock()
		if len(q.acks) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		batch, q.acks = q.acks, batch[:0]
		mark := q.mark
		q.mu.Unlock()
		err := n.syncRecordsToFor(mark, len(batch))
		for _, ack := range batch {
			if err != nil {
				ack = n.refusedAck(ack, continuity.ReasonOf(err))
			}
			_ = s.send(ack)
		}
		clear(batch)
	}
}

// refusedAck is the refusal, with reason, of a positive answer the store
// could not make durable.
func (n *Node) refusedAck(ack wire.Message, reason string) wire.Message {
	switch a := ack.(type) {
	case wire.PrepareAck:
		return wire.PrepareAck{ID: a.ID, Reason: reason, Authority: n.authorityMsg()}
	case wire.HeldAck:
		return wire.HeldAck{ID: a.ID, Reason: reason, Authority: n.authorityMsg()}
	}
	return ack
}
