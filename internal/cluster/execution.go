package cluster

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/wire"
)

// prepareTimeout bounds the wait for a replica's acknowledgement (a
// prepare's wait ends up to a heartbeat interval later: peer.Pending.Wait).
const prepareTimeout = 5 * time.Second

// submission is one request to record and, once recorded, run.
type submission struct {
	h       *handler
	key     string
	hash    string
	count   uint64
	relaxed bool   // a count-2 record may run unmirrored (startup work alone)
	input   []byte // typed work's encoded input, stored on the record
	placed  placed // key's placement, when already known (a minted route key)
}

// submitRecordTo records the request, mirrors it to the replica when the
// count asks for one, and writes the decision to *dec. It does not run
// anything. The decision is filled in place: it holds a record of several
// hundred bytes, and the request path does not copy it through every layer.
func (n *Node) submitRecordTo(ctx context.Context, sub *submission, dec *continuity.Decision) error {
	if n.stopped.Load() {
		*dec = continuity.Decision{}
		return &continuity.Error{Reason: continuity.ReasonShuttingDown}
	}
	if n.looking.Load() {
		n.awaitFirstLook(ctx)
	}
	if n.unsynced.Load() > 0 {
		n.awaitPeerSync(ctx)
	}
	// Held while a switchover moves the epoch (switchover.go).
	n.switchGate.RLock()
	defer n.switchGate.RUnlock()
	mp := n.placement.Load()
	members := *mp
	pl := sub.placed.pl
	if sub.placed.over != mp { // not known, or the membership changed since
		pl = continuity.PlaceCanonical(sub.key, members)
	}
	if sub.relaxed && len(members) == 1 {
		pl.Replica = ""
	}
	err := n.recordSubmit(&continuity.SubmitRequest{
		Key: sub.key, Hash: sub.hash, RuntimeName: sub.h.name, Kind: sub.h.kind,
		Count: sub.count, Ingress: n.self, Placement: pl, Relaxed: sub.relaxed, Input: sub.input,
	}, dec)
	if err != nil || dec.Outcome != continuity.OutcomeCreated {
		return err
	}
	// The record is worked on in place in the result (a record is several
	// hundred bytes: copies cost time and stack on the request path).
	rec := &dec.Record
	if rec.ReplicaNode == "" {
		// A route record's acknowledgement is its response, made durable
		// when the route completes (executeRoute); work is acknowledged now.
		if rec.Kind != continuity.KindRoute {
			if err := n.syncRecords(); err != nil {
				dec.Outcome = continuity.OutcomeRejected
				*rec, _ = n.refuse(*rec, continuity.ReasonOf(n.storeFailure(err)))
			}
		}
		return nil
	}
	mark := n.storeMark()
	*rec, err = n.prepare(ctx, *rec)
	if err == nil {
		// The record is durable here before it is acknowledged or runs; its
		// write began when it was stored, so it overlapped the prepare.
		err = n.syncPrepared(rec, mark)
	}
	if err != nil {
		dec.Outcome = continuity.OutcomeRejected
		*rec, _ = n.refuse(*rec, continuity.ReasonOf(n.storeFailure(err)))
	}
	return nil
}

// awaitPeerSync holds a submission while a peer is linked whose first
// snapshot this node has not applied yet, for at most the peer timeout (or
// until ctx ends). Until then the node does not know which keys the peer
// holds, nor the attempt ids it has used: a node just restarted would run a
// key its peer had already run alone (one count-1 route answered twice,
// under two attempts, with two bodies) or open attempts its peer then
// refuses. Placement is computed after the wait, over the linked peer.
func (n *Node) awaitPeerSync(ctx context.Context) {
	limit := time.NewTimer(n.cfg.PeerTimeout)
	defer limit.Stop()
	// A session that ends may have been replaced by a preferred one to
	// the same peer (two nodes that dialed each other at once), whose
	// snapshot is still to come: look again until no linked session
	// waits for one.
	for n.unsynced.Load() > 0 {
		linked := n.linked.Load()
		if linked == nil {
			return
		}
		waited := false
		for _, s := range *linked {
			if s.isSynced() || s.isClosed() {
				continue
			}
			waited = true
			select {
			case <-s.synced:
			case <-s.closed:
			case <-ctx.Done():
				return
			case <-limit.C:
				return
			}
		}
		if !waited {
			return
		}
	}
}

// refuse ends rec, an attempt this node is submitting, as refused with
// reason and tells the peers: the client is about to be told no. The
// returned record always carries a reason, even when the stored record moved
// on meanwhile (a peer's version of the key replaced it): it then describes
// the refused attempt as it stood. stillRan is set, with the stored record,
// when the attempt completed after all (a forwarded request that ran on its
// owner although the ingress gave up waiting).
func (n *Node) refuse(rec continuity.Record, reason string) (out continuity.Record, stillRan bool) {
	if reason == "" {
		n.log.Error("[mesh-rt continuity] refusal without a reason", "request_key", rec.RequestKey, "attempt_id", rec.AttemptID())
		reason = string(continuity.ReasonUnspecified)
	}
	stored, err := n.recordRefusal(rec.RequestKey, rec.Attempt, reason)
	switch {
	case err == nil:
		return stored, false
	case stored.Phase == continuity.PhaseCompleted && stored.Attempt == rec.Attempt:
		return stored, true
	}
	rec.Phase, rec.Result, rec.Error, rec.Refused = continuity.PhaseRejected, continuity.ResultRejected, reason, true
	rec.ReplicaStatus, rec.Health = continuity.ReplicaRejected, continuity.HealthUnavailable
	return rec, false
}

// answerDuplicate checks that a duplicate submission may be answered from
// this node's copy of rec. A duplicate answer is an acknowledgement (the
// work is accepted, or done), so it comes only from a record whose state
// this node knows at its current epoch; otherwise the submission is refused
// with record_state_unconfirmed and the client retries (DESIGN §5.7).
func (n *Node) answerDuplicate(rec continuity.Record) error {
	if n.knowsCurrentState(rec) {
		return nil
	}
	n.reg.EmitRecord(continuity.TransitionDuplicate, rec, string(continuity.ReasonRecordUnconfirmed))
	return &continuity.Error{Reason: continuity.ReasonRecordUnconfirmed}
}

// knowsCurrentState reports whether this node knows rec's state at its
// current epoch. A completed attempt is a fact whoever holds it, and an
// outcome_unknown one claims nothing that a later version could
// contradict. Otherwise
// the node must not doubt its own authority (a pause not yet confirmed by a
// peer), the attempt must be past its prepare (until the replica answers,
// its ingress has not decided whether to accept it), and this node must be
// where the attempt is decided or linked to the pair:
//   - it allocated the attempt itself, at its current epoch (it acknowledged
//     or refused it), or
//   - it is running the attempt, or
//   - the attempt has ended (rejected) and this node has merged its peer's
//     snapshot over a live link, so its records are the pair's and the
//     peer's later transitions reach it in order.
//
// A pending copy this node holds for another node is never enough: a
// replica stores the copy before its acknowledgement reaches the ingress,
// and the ingress may still refuse the attempt (the acknowledgement lost with
// a frozen or killed node). Answering "accepted" from it could acknowledge
// work that never runs; the caller is refused with record_state_unconfirmed
// and retries. A copy kept from before a pause, a fencing or a lost link
// fails every rule: its owner may have refused, recovered or replaced the
// attempt since.
func (n *Node) knowsCurrentState(rec continuity.Record) bool {
	if rec.Phase == continuity.PhaseCompleted || outcomeUnknown(rec) || n.cfg.mode() != ModeCluster {
		return true
	}
	if !n.confirmed() || rec.ReplicaStatus == continuity.ReplicaPreparing {
		return false
	}
	if _, epoch := n.reg.Authority(); rec.IngressNode == n.self && rec.Epoch == epoch && rec.Attempt >= n.firstAttempt {
		return true
	}
	if n.inflight.hasAttempt(rec.RequestKey, rec.Attempt) {
		return true
	}
	if rec.Pending() {
		return false
	}
	for _, s := range n.sessionList() {
		if s.isSynced() {
			return true
		}
	}
	return false
}

// prepare mirrors rec to its replica and waits for the acknowledgement, so an
// acknowledged record survives the loss of either node.
func (n *Node) prepare(ctx context.Context, rec continuity.Record) (continuity.Record, error) {
	if rec.ReplicaNode == n.self {
		return n.recordPrepared(rec.RequestKey, rec.Attempt)
	}
	fail := func(reason continuity.Reason, detail string) (continuity.Record, error) {
		n.reg.EmitRecord(continuity.TransitionPrepareFailed, rec, string(reason),
			continuity.KV{Key: "target_node", Value: rec.ReplicaNode}, continuity.KV{Key: "detail", Value: detail})
		return rec, &continuity.Error{Reason: reason}
	}
	s := n.session(rec.ReplicaNode)
	if s == nil {
		return fail(continuity.ReasonReplicaRequiredUnavailable, "no session")
	}
	id := n.callID.Add(1)
	defer n.met.prepareLatency.since(time.Now())
	bp := frameScratch.Get().(*[]byte)
	msg := wire.AppendPrepareOf((*bp)[:0], id, n.authorityMsg(), &rec)
	// The wait is bounded by the link's heartbeats rather than a context
	// with a timer of its own: a timer set and stopped on every count-2
	// request costs more than the prepare's own frames.
	p, err := s.link.Begin(id, msg)
	if cap(msg) <= maxPooledFrame { // the link copied msg
		*bp = msg
		frameScratch.Put(bp)
	}
	var ack wire.PrepareAck
	if err == nil {
		ack, err = p.WaitPrepareAck(ctx, prepareTimeout)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fail(continuity.ReasonReplicaPrepareTimeout, "timeout")
	case err != nil:
		return fail(continuity.ReasonReplicaRequiredUnavailable, err.Error())
	}
	n.observeAuthority(s.peer, ack.Authority.Role, ack.Authority.Epoch, nil)
	if !ack.OK {
		return fail(continuity.Reason(ack.Reason), "refused by replica")
	}
	return n.recordPrepared(rec.RequestKey, rec.Attempt)
}

// handlePrepare stores a record this node mirrors. A sender at a lower epoch is
// a superseded primary: it is refused and learns our authority from the ack.
func (n *Node) handlePrepare(peer string, p *wire.Prepare) wire.PrepareAck {
	_, epoch := n.reg.Authority()
	if p.Authority.Epoch < epoch {
		n.reg.EmitRecord(continuity.TransitionStaleEpochRejected, p.Record, string(continuity.ReasonStaleEpoch),
			continuity.KV{Key: "incoming_epoch", Value: fmt.Sprint(p.Authority.Epoch)}, continuity.KV{Key: "from_node", Value: peer})
		return wire.PrepareAck{ID: p.ID, Reason: string(continuity.ReasonStaleEpoch), Authority: n.authorityMsg()}
	}
	n.observeAuthority(peer, p.Authority.Role, p.Authority.Epoch, &p.Record)
	if _, err := n.reg.MirrorPrepare(p.Record); err != nil {
		// The version held here is the reason for the refusal (a completed
		// request, a later attempt): the ingress learns it, so its records
		// converge and a retry is answered from it.
		if cur, ok := n.reg.Get(p.Record.RequestKey); ok {
			n.answer(cur)
		}
		return wire.PrepareAck{ID: p.ID, Reason: continuity.ReasonOf(err), Authority: n.authorityMsg()}
	}
	return wire.PrepareAck{ID: p.ID, OK: true, Authority: n.authorityMsg()}
}

// dispatchWork runs a created work record on its owner: here, or on the peer.
func (n *Node) dispatchWork(ctx context.Context, h *handler, rec continuity.Record) error {
	gen := n.reg.FenceGeneration()
	if rec.OwnerNode == n.self {
		n.runWork(h, rec, gen)
		return nil
	}
	s := n.session(rec.OwnerNode)
	if s == nil {
		return &continuity.Error{Reason: continuity.ReasonOwnerUnreachable}
	}
	ctx, cancel := context.WithTimeout(ctx, prepareTimeout)
	defer cancel()
	id := n.callID.Add(1)
	reply, err := s.call(ctx, id, wire.Dispatch{ID: id, RuntimeName: h.name, RequestKey: rec.RequestKey, Attempt: rec.Attempt, Epoch: rec.Epoch})
	if err != nil {
		return fmt.Errorf("dispatch to %s: %w", rec.OwnerNode, err)
	}
	if ack := reply.(wire.DispatchAck); !ack.OK {
		return errors.New(ack.Reason)
	}
	return nil
}

// handleDispatch starts work a peer placed on this node.
func (n *Node) handleDispatch(d wire.Dispatch) wire.DispatchAck {
	h, ok := n.handlers.get(d.RuntimeName)
	if !ok || h.kind != continuity.KindWork {
		return wire.DispatchAck{ID: d.ID, Reason: string(continuity.ReasonHandlerNotRegistered) + ":" + d.RuntimeName}
	}
	rec, ok := n.reg.Get(d.RequestKey)
	if !ok {
		return wire.DispatchAck{ID: d.ID, Reason: string(continuity.ReasonRequestKeyNotFound)}
	}
	n.resumeMu.Lock()
	defer n.resumeMu.Unlock()
	if rec, ok = n.reg.Get(d.RequestKey); !ok || rec.Attempt != d.Attempt || !rec.Pending() {
		return wire.DispatchAck{ID: d.ID, Reason: string(continuity.ReasonAttemptMismatch)}
	}
	if held, ok := n.heldBefore[rec.RequestKey]; ok && held == rec.Attempt && !n.inflight.has(rec.RequestKey) && !n.peerOutlivedPrevious.Load() {
		// Both nodes restarted from their log stores, and the ingress
		// dispatches again an attempt this node's previous run held (and
		// may have been running when it died) before resumeRecovered took
		// it up here: it is resumed as resumeRecovered would, under a new
		// attempt, so no two executions share one attempt.
		delete(n.heldBefore, rec.RequestKey)
		n.recoverRecord(rec, n.self)
		return wire.DispatchAck{ID: d.ID, OK: true}
	}
	if n.inflight.hasAttempt(rec.RequestKey, rec.Attempt) {
		// Dispatched again by an ingress restarted from its log store,
		// which cannot know that its previous run had dispatched it.
		return wire.DispatchAck{ID: d.ID, OK: true}
	}
	n.runWork(h, rec, n.reg.FenceGeneration())
	return wire.DispatchAck{ID: d.ID, OK: true}
}

// runWork executes declared work for rec on this node and records the outcome.
// It waits out a quarantine first and records nothing if the node was fenced
// since gen: a superseded attempt never completes.
func (n *Node) runWork(h *handler, rec continuity.Record, gen uint64) {
	n.runWorkTry(h, rec, gen, 0)
}

// runWorkTry is runWork for the try-th retry of the work (0: its first run
// on this node). A returned error that the work's retry option covers runs
// the work again under a new attempt instead of rejecting the record. The
// execution takes one of the node's work slots (workslots.go): when all are
// taken it waits in their queue, the record pending, and runs when one frees.
func (n *Node) runWorkTry(h *handler, rec continuity.Record, gen uint64, try int) {
	if !n.running.add() {
		return // stopping: the record stays pending, as on a crash, for the peer to recover
	}
	n.inflight.add(rec.RequestKey, rec.Attempt) // before it is queued: loss handling must see it
	n.slots.start(func() {
		defer n.running.done()
		// Stopped while queued: the record stays pending, as on a crash.
		if n.ctx.Err() != nil || !n.executeWork(h, rec, gen, try) {
			n.inflight.done(rec.RequestKey, rec.Attempt)
		}
	})
}

// executeWork runs one execution of declared work on the calling work slot
// and records its outcome (runWorkTry). It reports whether the attempt was
// handed to a retry timer, which then owns its in-flight entry.
func (n *Node) executeWork(h *handler, rec continuity.Record, gen uint64, try int) (retrying bool) {
	if !n.awaitAuthority(n.ctx, gen) {
		n.superseded(h, rec)
		return false
	}
	ctx := withIdentity(n.ctx, n, &rec)
	var output []byte
	err := n.callSafely(h.name, func() error {
		if h.typed != nil {
			var err error
			output, err = h.typed.call(ctx, rec.Input)
			return err
		}
		return h.run(ctx)
	})
	if err != nil && n.ctx.Err() != nil {
		// The node is stopping and cancelled the handler: the failure is
		// the stop's, not the work's. Recorded, it would reach the peer
		// before the links close and end acknowledged work rejected;
		// the record stays pending for the peer to recover instead.
		n.superseded(h, rec)
		return false
	}
	if !n.awaitAuthority(n.ctx, gen) {
		n.superseded(h, rec)
		return false
	}
	if h.retry.retryable(err, try) {
		return n.retryWork(h, rec, gen, try, err)
	}
	n.finish(rec, err, gen, output)
	return false
}

// finish records a handler's outcome for rec, with typed work's encoded
// output, and replicates it. An output above WorkMaxResultBytes rejects the
// attempt with result_too_large: it is never stored truncated. When the
// registry refuses the transition, it records why (completion_rejected);
// nothing is replicated.
func (n *Node) finish(rec continuity.Record, handlerErr error, gen uint64, output []byte) {
	switch {
	case handlerErr != nil:
		_, _ = n.recordRejection(rec.RequestKey, rec.Attempt, handlerErr.Error())
	case output != nil && int64(len(output)) > n.cfg.WorkMaxResultBytes:
		n.log.Warn("[mesh-rt continuity] typed work output over the bound", "runtime_name", rec.RuntimeName,
			"request_key", rec.RequestKey, "output_bytes", len(output), "max_bytes", n.cfg.WorkMaxResultBytes)
		_, _ = n.recordRejection(rec.RequestKey, rec.Attempt, string(continuity.ReasonResultTooLarge))
	case output != nil:
		_, _ = n.recordCompletionWithOutput(rec.RequestKey, rec.Attempt, gen, output)
	default:
		_, _ = n.recordCompletion(rec.RequestKey, rec.Attempt, gen)
	}
}

// superseded records that rec's attempt will not complete here: the node
// was fenced (or is stopping) while it ran. Work whose attempt was fenced is
// then resumed, if nobody else carries it on (resumeFenced).
func (n *Node) superseded(h *handler, rec continuity.Record) {
	cur, ok := n.reg.Get(rec.RequestKey)
	if !ok {
		cur = rec
	}
	n.reg.EmitRecord(continuity.TransitionCompletionRejected, cur, string(continuity.ReasonFenced),
		continuity.KV{Key: "attempted_attempt_id", Value: rec.AttemptID()}, continuity.KV{Key: "active_attempt_id", Value: cur.AttemptID()})
	if n.stopped.Load() || n.ctx.Err() != nil {
		return // stopping: the record stays pending, as on a crash, for the peer to recover
	}
	n.resumeFenced(h, rec)
}

// resumeFenced re-runs, under a new attempt, acknowledged work whose attempt
// this node was running when a higher authority fenced it (typically the old
// primary meeting the promoted standby when a partition heals). The attempt
// can no longer complete, and if the pair's records show nobody else
// carrying the key on, nobody else would run it: the acknowledgement would
// be lost. It first waits (at most the peer timeout) for the peers'
// snapshots to be merged, so a newer version of the record — a recovery on
// the new primary, a completion — is seen before deciding. The new attempt
// is numbered above every attempt the pair has seen.
func (n *Node) resumeFenced(h *handler, rec continuity.Record) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.PeerTimeout)
	n.waitSynced(ctx)
	cancel()
	if n.stopped.Load() {
		return
	}
	cur, ok := n.reg.Get(rec.RequestKey)
	if !ok || !cur.Pending() || cur.Attempt != rec.Attempt || cur.OwnerNode != n.self {
		return // ended, or carried on under another attempt or owner
	}
	next, err := n.recordRollover(rec, "fenced_attempt_resumed")
	if err != nil {
		return // completed or rolled over meanwhile
	}
	n.runWork(h, next, n.reg.FenceGeneration())
}

// callSafely runs f, turning a panic into an error that names it; the stack
// goes to the log, never into the record.
func (n *Node) callSafely(name string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = n.handlerPanicked(name, v)
		}
	}()
	if err := f(); err != nil {
		return fmt.Errorf("handler_error: %w", err)
	}
	return nil
}

// handlerPanicked logs a recovered handler panic with its stack (called from
// the deferred recover, so the stack still holds the panic) and returns the
// error the record is rejected with.
func (n *Node) handlerPanicked(name string, v any) error {
	stack := string(debug.Stack())
	if i := strings.Index(stack, "panic("); i > 0 {
		stack = stack[i:]
	}
	n.log.Error("[mesh-rt continuity] handler panicked", "runtime_name", name, "panic", fmt.Sprint(v), "stack", stack)
	return finalError{fmt.Errorf("%s: %v", continuity.ReasonHandlerPanicked, v)}
}
