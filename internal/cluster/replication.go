package cluster

import (
	"sync"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/peer"
	"meshgo.dev/mesh/internal/wire"
)

// Replication: how a record transition made on this node reaches its peers,
// and how a peer's transition is folded in here.
//
// The engine makes every record transition its peers must hear through the
// record* methods below (TestTransitionsReplicatedInOnePlace rejects a call
// to the registry methods behind them, Submit, Prepared, Refuse, Reject,
// Complete, CompleteWithResponse, Rollover and Merge, anywhere else in the
// package). Each makes one registry transition and hands what it produced
// to replicate as an outbox entry: the record version and the transition
// that made it. replicate encodes the entry once and queues it on every
// peer link before the method returns, so any frame the caller sends next
// (a forwarded request, a reply) follows it on the link. Whether an entry
// goes out at once, with the link's next batched flush, or not on its own
// is decided in one place: delivery.
//
// Record transitions that are not replicated, and why:
//   - MirrorPrepare stores the copy a peer asked this node to mirror: the
//     peer holds that version already.
//   - NodeLost marks what the lost peer was doing: it has no peer to tell.
//   - A merged peer version is not echoed; only a differing answer goes back
//     (merge).

// An outbox entry is one record version for the peers and the transition
// that produced it: the two arguments of replicate.

// transition names what produced an outbox entry.
type transition uint8

const (
	// txCreated: a submission created a new attempt.
	txCreated transition = iota
	// txSubmitRejected: a submission was refused outright (the record
	// carries why).
	txSubmitRejected
	// txPrepared: the replica acknowledged its copy (or this node is the
	// replica).
	txPrepared
	// txRefused: an attempt this node was submitting was refused before
	// it ran.
	txRefused
	// txRejected: an attempt ended without an outcome (a handler error, a
	// lost owner, a failed dispatch).
	txRejected
	// txCompleted: an attempt ran here and its outcome was recorded.
	txCompleted
	// txRolledOver: pending work goes on under a new attempt.
	txRolledOver
	// txAnswer: not a transition of this node's but the version it keeps,
	// sent because the peer holds or asked for another one.
	txAnswer
)

// deliveryKind says when, if at all, an outbox entry is written to the peers.
type deliveryKind uint8

const (
	// deliverHeld: the entry is not sent on its own; a later one carries
	// the record.
	deliverHeld deliveryKind = iota
	// deliverUrgent: the entry wakes the writer at once.
	deliverUrgent
	// deliverBatched: the entry waits up to peer.LazyFlushDelay, and a later
	// entry of the same key replaces it while it waits.
	deliverBatched
	// deliverBatchedLast: batched, and final: nothing is expected to
	// replace it.
	deliverBatchedLast
)

// delivery is the one rule deciding how an outbox entry travels.
//
// A new attempt mirrored to a replica is held: the Prepare carries it, and
// the acknowledged version follows (txPrepared). A new unmirrored route
// record this node runs itself is held too: it reaches the peer when it
// ends, as nothing acts on its pending state (route records are never re-run
// after a failover), which halves the frames per request. So is the
// acknowledged version of a mirrored route record this node runs: its
// replica made the same version (mirrored, healthy) when it acknowledged the
// Prepare, and the outcome follows at once when the handler returns; sent,
// it cost an encoding and a queue entry per count-2 request that the outcome
// replaced before the link wrote it. Work records and forwarded requests are
// sent at once: the peer may have to recover the work, or must run the
// request.
//
// Every other transition of a route record is batched, except the outcome
// of a mirrored (count 2) record, which is urgent: nothing acts on the
// others after a failover, so batching them saves a write and a wake-up on
// both nodes per request, and a request that completes within the delay
// costs the peer one upsert, not two. Work records are always urgent.
func delivery(tx transition, r *continuity.Record, self string) deliveryKind {
	if tx == txCreated && (r.ReplicaNode != "" || (r.Kind == continuity.KindRoute && r.OwnerNode == self)) {
		return deliverHeld
	}
	if tx == txPrepared && r.Kind == continuity.KindRoute && r.OwnerNode == self {
		return deliverHeld
	}
	switch {
	case r.Kind != continuity.KindRoute, r.ReplicationCount >= 2 && r.Phase.Terminal():
		return deliverUrgent
	case r.Phase.Terminal():
		return deliverBatchedLast
	}
	return deliverBatched
}

// replicate queues the outbox entry of rec, the version transition tx
// produced, on every peer link, as delivery says. A batched entry still
// precedes, on the link, every frame queued after it. The record is passed by
// pointer and encoded from there: it is several hundred bytes, and every copy
// on the request path costs time and stack.
func (n *Node) replicate(tx transition, rec *continuity.Record) {
	n.awaiting.wake(rec)
	if n.cfg.mode() != ModeCluster {
		return
	}
	var kind peer.FrameKind
	switch delivery(tx, rec, n.self) {
	case deliverHeld:
		return
	case deliverUrgent:
		kind = peer.FrameUrgent
	case deliverBatched:
		kind = peer.FrameLazy
	case deliverBatchedLast:
		kind = peer.FrameLazyLast
	}
	var arr [4]*session
	sessions := n.appendSessions(arr[:0])
	if len(sessions) == 0 {
		return
	}
	// The outcome of a route whose response waits for its replica is
	// followed at once by the Held call (executeRoute): on the replica's
	// link the call wakes the writer, so both go out in one write and the
	// replica reads them with one wake-up.
	heldNext := ""
	if tx == txCompleted && kind == peer.FrameUrgent && rec.Kind == continuity.KindRoute && n.needsHeld(rec) {
		heldNext = rec.ReplicaNode
	}
	bp := frameScratch.Get().(*[]byte)
	msg := wire.AppendUpsertOf((*bp)[:0], n.authorityMsg(), n.reg.Watermark(), rec)
	for _, s := range sessions {
		k := kind
		if s.peer == heldNext {
			k = peer.FrameBeforeCall
		}
		_ = s.link.Enqueue(msg, rec.RequestKey, k)
	}
	if cap(msg) <= maxPooledFrame {
		*bp = msg
		frameScratch.Put(bp)
	}
}

// frameScratch holds buffers replicate encodes a message into once for all
// sessions.
var frameScratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledFrame = 64 << 10

// recordSubmit records a submission into *dec; a created attempt or an
// outright refusal is replicated.
func (n *Node) recordSubmit(req *continuity.SubmitRequest, dec *continuity.Decision) error {
	if err := n.reg.SubmitTo(req, dec); err != nil {
		return n.storeFailure(err)
	}
	switch dec.Outcome {
	case continuity.OutcomeCreated:
		n.replicate(txCreated, &dec.Record)
	case continuity.OutcomeRejected:
		n.replicate(txSubmitRejected, &dec.Record)
	}
	return nil
}

// recordPrepared records that attempt's replica holds its copy.
func (n *Node) recordPrepared(key string, attempt uint64) (out continuity.Record, err error) {
	out, err = n.reg.Prepared(key, attempt)
	if err == nil {
		n.replicate(txPrepared, &out)
	}
	return out, err
}

// recordRefusal ends an attempt this node was submitting as refused.
func (n *Node) recordRefusal(key string, attempt uint64, reason string) (out continuity.Record, err error) {
	out, err = n.reg.Refuse(key, attempt, reason)
	if err == nil {
		n.replicate(txRefused, &out)
	}
	return out, err
}

// recordRejection ends an attempt without an outcome.
func (n *Node) recordRejection(key string, attempt uint64, reason string) (out continuity.Record, err error) {
	out, err = n.reg.Reject(key, attempt, reason)
	if err == nil {
		n.replicate(txRejected, &out)
	}
	return out, err
}

// recordCompletion records that attempt ran here, under fence generation gen.
func (n *Node) recordCompletion(key string, attempt uint64, gen uint64) (out continuity.Record, err error) {
	out, err = n.reg.Complete(key, attempt, n.self, gen)
	if err == nil {
		n.replicate(txCompleted, &out)
	}
	return out, err
}

// recordCompletionWithResponse is recordCompletion keeping the encoded
// response for replay.
func (n *Node) recordCompletionWithResponse(key string, attempt uint64, gen uint64, stored []byte) (out continuity.Record, err error) {
	out, err = n.reg.CompleteWithResponse(key, attempt, n.self, gen, stored)
	if err == nil {
		n.replicate(txCompleted, &out)
	}
	return out, err
}

// recordCompletionWithOutput is recordCompletion keeping typed work's
// encoded output.
func (n *Node) recordCompletionWithOutput(key string, attempt uint64, gen uint64, output []byte) (out continuity.Record, err error) {
	out, err = n.reg.CompleteWithOutput(key, attempt, n.self, gen, output)
	if err == nil {
		n.replicate(txCompleted, &out)
	}
	return out, err
}

// recordRollover moves pending work from rec's attempt to a new one and
// records the automatic recovery, with reason, before replicating it.
func (n *Node) recordRollover(rec continuity.Record, reason string) (continuity.Record, error) {
	next, err := n.reg.Rollover(rec.RequestKey, rec.Attempt)
	if err != nil {
		return next, err
	}
	n.reg.EmitRecord(continuity.TransitionAutomaticRecovery, next, reason,
		continuity.KV{Key: "previous_attempt_id", Value: rec.AttemptID()},
		continuity.KV{Key: "next_attempt_id", Value: next.AttemptID()},
		continuity.KV{Key: "runtime_name", Value: rec.RuntimeName})
	n.replicate(txRolledOver, &next)
	return next, nil
}

// recordRetry moves work whose handler returned an error to a new attempt
// (mesh.Retry), recording the work_retry transition with meta, and
// replicates it.
func (n *Node) recordRetry(rec continuity.Record, meta ...continuity.KV) (continuity.Record, error) {
	next, err := n.reg.RetryAttempt(rec.RequestKey, rec.Attempt, meta...)
	if err == nil {
		n.replicate(txRolledOver, &next)
	}
	return next, err
}

// recordReopen moves a route record that ended outcome_unknown to a new
// attempt run here (a Rerunnable route's retry) and replicates it.
func (n *Node) recordReopen(rec continuity.Record, meta ...continuity.KV) (continuity.Record, error) {
	next, err := n.reg.Reopen(rec.RequestKey, rec.Attempt)
	if err != nil {
		return next, err
	}
	n.reg.EmitRecord(continuity.TransitionAutomaticRecovery, next, reasonRerunOnRetry, meta...)
	n.replicate(txRolledOver, &next)
	return next, nil
}

// answer sends the peers the version of a record this node keeps, when a
// peer holds or asked for another one.
func (n *Node) answer(rec continuity.Record) { n.replicate(txAnswer, &rec) }

// merge folds one peer record into the registry. When the peer's version
// loses to the one kept here, the kept one is sent back: the peer holds on to
// its own until it hears a version it prefers, and nothing else would tell
// it (a node replicates a record only when it changes), so the two would
// disagree for good. Both sides choose with one order at any moment, so the
// answer is adopted and the exchange ends there. It reports whether the
// registry now holds rec's version.
func (n *Node) merge(rec *continuity.Record, from string) (kept bool) {
	m, err := n.reg.MergeOutcome(*rec, from)
	if err != nil {
		n.mergeRejected(rec, from, err)
		return false
	}
	if m.Changed {
		n.awaiting.wake(&m.Kept)
	}
	switch {
	case !m.Changed && !continuity.SameVersion(m.Kept, *rec):
		n.replicate(txAnswer, &m.Kept)
		return false
	case m.ReplacedOther:
		// The peer's version of another attempt won here. The peer may
		// meanwhile hold a third version (the order of one key's versions
		// changes as an attempt is refused), so it hears what this node
		// now keeps; it answers only if it keeps something else.
		n.replicate(txAnswer, &m.Kept)
	}
	return true
}

// mergeRejected logs a peer record the registry refused to merge.
func (n *Node) mergeRejected(rec *continuity.Record, from string, err error) {
	n.log.Warn("[mesh-rt continuity] transition=merge_rejected", "remote", from, "request_key", rec.RequestKey, "error", err.Error())
}
