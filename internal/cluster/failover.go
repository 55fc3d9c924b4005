package cluster

import (
	"context"
	"errors"
	"strconv"
	"time"

	"meshgo.dev/mesh/internal/authority"
	"meshgo.dev/mesh/internal/continuity"
)

// probeTimeout bounds the reachability check made before acting on a lost
// peer. A killed peer refuses at once; a frozen one accepts TCP but never
// finishes the handshake.
func (n *Node) probeTimeout() time.Duration { return min(time.Second, n.cfg.PeerTimeout) }

func nameAddr(name string) (string, error) {
	nn, err := ParseNodeName(name)
	if err != nil {
		return "", err
	}
	return nn.Addr(), nil
}

// reachable reports whether peer can be reached right now, dialing it if no
// session exists. A successful dial registers the session as usual.
func (n *Node) reachable(peer string) bool {
	if n.session(peer) != nil {
		return true
	}
	addr, err := nameAddr(peer)
	if err != nil {
		return false
	}
	deadline := time.Now().Add(n.probeTimeout())
	for time.Now().Before(deadline) {
		if n.session(peer) != nil {
			return true
		}
		name, err := n.dial(n.ctx, addr, time.Until(deadline))
		if err == nil {
			return name == peer || n.session(peer) != nil
		}
		n.mu.Lock()
		inProgress := n.dialing[addr]
		n.mu.Unlock()
		if !inProgress {
			return false
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-n.ctx.Done():
			return false
		}
	}
	return n.session(peer) != nil
}

// peerLost handles the loss of a peer's session. It first checks the peer is
// really gone (two simultaneous dials close one connection; a frozen node's
// peer may reconnect at once), then applies the loss to the records and
// either promotes this standby or re-runs the work the peer owned.
func (n *Node) peerLost(peer string) {
	n.goRun(func() {
		if n.reachable(peer) {
			n.log.Info("[mesh-rt membership] peer reachable again; no loss handling", "peer", peer)
			return
		}
		if n.stopped.Load() {
			return
		}
		n.reg.NodeLost(peer)
		if role, _ := n.reg.Authority(); role == RoleStandby {
			if !n.autoPromote(peer) {
				return
			}
		}
		n.recoverOrphans(peer, nil)
	})
}

// autoPromote promotes this standby after its primary was lost, if the
// arbiter grants it (the default, authority.Peer, refuses while another peer
// is connected or while this node's own authority is in doubt after a
// pause). The caller has already found the lost peer unreachable. A refusal
// for a quarantine defers the loss: it is acted on once the quarantine is
// released.
func (n *Node) autoPromote(lost string) bool {
	reject := func(reason string) bool {
		n.reg.Emit(continuity.Entry{Transition: continuity.TransitionAutomaticPromotionRejected,
			Reason:   "automatic_promotion_rejected:" + reason,
			Metadata: []continuity.KV{{Key: "disconnected_node", Value: lost}}})
		return false
	}
	_, prev := n.reg.Authority()
	ev := authority.Evidence{Self: n.self, Lost: lost, Seen: prev, PeersConnected: len(n.Peers()), ProbeFailed: true}
	if ev.PeersConnected == 0 {
		// Acting now could promote on the word of a node that was itself
		// frozen: the pause detector judges the gap before the arbiter does.
		ev.Quarantined = n.checkPause()
	}
	epoch, err := n.arbiter.Grant(n.ctx, ev)
	if refusal, ok := errors.AsType[*authority.Refusal](err); ok {
		if refusal.Defer {
			_, _ = n.stepAuthority(authority.DeferLoss{Lost: lost}, nil) // never persists
		}
		return reject(refusal.Reason)
	}
	if err != nil {
		return reject(err.Error())
	}
	eff, err := n.stepAuthority(authority.Promote{Lost: lost, Epoch: epoch}, nil)
	if err == nil {
		err = eff.Err
	}
	if err != nil {
		return reject(err.Error())
	}
	n.reg.Emit(continuity.Entry{Transition: continuity.TransitionAutomaticPromotion, Reason: "peer_lost:" + lost,
		Metadata: []continuity.KV{{Key: "disconnected_node", Value: lost},
			{Key: "previous_epoch", Value: strconv.FormatUint(prev, 10)}, {Key: "next_epoch", Value: strconv.FormatUint(eff.Promoted.Next.Epoch, 10)}}})
	return true
}

// retryDeferredLoss acts on the loss of primary lost, which autoPromote
// deferred while this node's authority was in doubt. The authority machine
// hands it back when the quarantine is released: if no peer is connected
// and the lost primary is still unreachable, the standby promotes and
// recovers as it would have at the loss. Without it, a standby that
// happened to stall when its primary died would stay a standby, and the
// pair would have no primary.
func (n *Node) retryDeferredLoss(lost string) {
	if len(n.Peers()) > 0 {
		return
	}
	n.goRun(func() {
		if n.stopped.Load() || n.reachable(lost) {
			return
		}
		if role, _ := n.reg.Authority(); role != RoleStandby {
			return
		}
		if n.autoPromote(lost) {
			n.recoverOrphans(lost, nil)
		}
	})
}

// recoverOrphans re-runs, here and under a new attempt, every pending work
// record whose owner is no longer a member — and every pending record this
// node owns but never received: its ingress died before dispatching it (for
// example inside the startup window). Route records are closed instead:
// their client already saw an outcome. A non-nil restarted is the first
// session with a new incarnation of lost: the node is a member again, but
// runs nothing the lost process ran, so the records it owned are orphaned
// all the same — except attempts this node allocated since that session
// came up, which it dispatches to the new process.
func (n *Node) recoverOrphans(lost string, restarted *session) {
	members := map[string]bool{}
	for _, m := range n.Members() {
		members[m] = true
	}
	for _, rec := range n.reg.PendingRecords() {
		running := n.inflight.has(rec.RequestKey)
		undispatched := rec.OwnerNode == n.self && rec.IngressNode == lost && !running
		orphaned := !members[rec.OwnerNode]
		if restarted != nil && rec.OwnerNode == lost {
			orphaned = rec.IngressNode != n.self || rec.Attempt < restarted.mark
		}
		if !orphaned && !undispatched {
			continue
		}
		n.recoverRecord(rec, lost)
	}
}

// recoverElected re-runs, here and under a new attempt, the pending work
// that nobody runs once this node was elected primary by its linked
// standbys (elect, no_primary_under_lease). No peer was lost, so
// recoverOrphans never ran for the owner that held the work: the pair came
// to have no primary through a loss whose promotion was refused (the lost
// node, or a renamed successor, linked again first), a restart of both
// nodes, or a primary fenced for a lease that then expired. The records
// taken up are those of a promotion after a loss, with every non-member in
// the place of the lost peer:
//   - work owned by a node that is not a member: the process that ran it is
//     gone, and no member will (a linked peer runs only what it owns);
//   - work owned here that runs nowhere here: its ingress died before the
//     dispatch, or dispatched it to a previous run of this node, or it is
//     the attempt of an epoch this node was fenced out of.
//
// Work owned by a linked peer is left to it: it may be running it, and it
// resumes what it cannot (resumeFenced, resumeRecovered). Route records
// owned by a non-member are closed outcome_unknown, as on any loss. Each
// check and rollover of a record owned here is made under resumeMu, as a
// dispatch is (handleDispatch), so an attempt that a linked ingress
// dispatches here at the same moment runs once: either it runs, and is
// seen running, or it has been rolled over, and the dispatch is refused.
func (n *Node) recoverElected() {
	members := map[string]bool{}
	for _, m := range n.Members() {
		members[m] = true
	}
	for _, rec := range n.reg.PendingRecords() {
		switch {
		case !members[rec.OwnerNode]:
			n.recoverRecord(rec, rec.OwnerNode)
		case rec.OwnerNode == n.self && rec.Kind == continuity.KindWork:
			n.resumeMu.Lock()
			cur, ok := n.reg.Get(rec.RequestKey)
			if ok && cur.Pending() && cur.OwnerNode == n.self && !n.inflight.has(cur.RequestKey) {
				n.recoverRecord(cur, cur.IngressNode)
			}
			n.resumeMu.Unlock()
		}
	}
}

// heardIncarnation takes the incarnation carried by the first snapshot of
// session s. A different one than the last session's means the
// peer restarted: the process this node knew is gone, and the work it was
// running (pending records it owns) or was to receive (records it was the
// ingress of, owned here and never dispatched) went with it. peerLost cannot
// be relied on to recover them: a peer restarted before the loss was
// handled answers the probe (no loss handling at all), or is a member again
// by the time the records are walked. So this node, the one that survived,
// recovers them now, as on a loss (recoverOrphans). Only this side acts, so
// no attempt runs twice: the new incarnation never re-runs what its
// predecessor held, and a recovery that peerLost made first has moved the
// record to a new attempt owned here, which is then left alone (Rollover
// moves one attempt once). It runs on the reader, before any later frame of
// the peer's is applied, so nothing the new incarnation submits is taken
// for its predecessor's.
func (n *Node) heardIncarnation(s *session, inc uint64) {
	peer := s.peer
	n.mu.Lock()
	prev := n.incarnations[peer]
	n.incarnations[peer] = inc
	n.mu.Unlock()
	if prev == 0 || prev == inc || n.stopped.Load() {
		return
	}
	n.log.Info("[mesh-rt membership] peer restarted; recovering what it ran", "peer", peer)
	n.recoverOrphans(peer, s)
}

func (n *Node) recoverRecord(rec continuity.Record, lost string) {
	rejectRecovery := func(reason string) {
		n.reg.EmitRecord(continuity.TransitionAutomaticRecoveryRejected, rec, "automatic_recovery_rejected:"+reason,
			continuity.KV{Key: "disconnected_node", Value: lost})
		// The lost owner held the request and may have run it: the
		// record says so (outcome_unknown), never that it did not run.
		_, _ = n.recordRejection(rec.RequestKey, rec.Attempt, string(continuity.ReasonOutcomeUnknown))
	}
	if rec.Kind == continuity.KindRoute {
		rejectRecovery("route_records_are_not_rerun")
		return
	}
	h, ok := n.handlers.get(rec.RuntimeName)
	if !ok || h.kind != continuity.KindWork {
		rejectRecovery(string(continuity.ReasonHandlerNotRegistered) + ":" + rec.RuntimeName)
		return
	}
	next, err := n.recordRollover(rec, "")
	if err != nil {
		return // completed or rolled over meanwhile
	}
	n.runWork(h, next, n.reg.FenceGeneration())
}

// waitSynced waits until every connected peer's first snapshot was applied.
func (n *Node) waitSynced(ctx context.Context) {
	for _, s := range n.sessionList() {
		select {
		case <-s.synced:
		case <-s.closed:
		case <-ctx.Done():
			return
		}
	}
}
