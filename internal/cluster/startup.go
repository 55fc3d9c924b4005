package cluster

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// Startup transitions, logged with the [mesh-rt startup] prefix.
const (
	transitionStartupRegistered         = "startup_registered"
	transitionStartupTrigger            = "startup_trigger"
	transitionStartupSkipped            = "startup_skipped"
	transitionStartupDispatchWindow     = "startup_dispatch_window"
	transitionStartupCompleted          = "startup_completed"
	transitionStartupRejected           = "startup_rejected"
	transitionStartupFenced             = "startup_fenced"
	transitionStartupConvergenceTimeout = "startup_convergence_timeout"
)

// Convergence wait before startup work: poll membership until a peer has been
// seen, every peer's snapshot applied and the membership stable for a few
// polls; give up after a bounded number of polls.
const (
	convergencePoll   = 50 * time.Millisecond
	convergencePolls  = 40
	convergenceStable = 3
	terminalPoll      = 50 * time.Millisecond
)

func (n *Node) startStartupWork() {
	// Typed work takes an input: it runs when submitted, never at boot.
	works := slices.DeleteFunc(n.handlers.work(), func(h *handler) bool { return h.typed != nil })
	for _, h := range works {
		n.reg.Emit(continuity.Entry{Transition: transitionStartupRegistered, RequestKey: continuity.StartupKeyPrefix + h.name,
			Metadata: []continuity.KV{{Key: "runtime_name", Value: h.name}, {Key: "payload_hash", Value: continuity.StartupHashPrefix + h.name},
				{Key: "replication_count", Value: strconv.Itoa(h.count)}}})
	}
	n.startups.Add(len(works))
	for _, h := range works {
		go func() {
			defer n.startups.Done()
			n.runStartup(n.ctx, h)
		}()
	}
}

// runStartup runs one declared work function once per cluster at boot.
func (n *Node) runStartup(ctx context.Context, h *handler) {
	key := continuity.StartupKeyPrefix + h.name
	emit := func(transition, reason string, meta ...continuity.KV) {
		n.reg.Emit(continuity.Entry{Transition: transition, RequestKey: key, Reason: reason,
			Metadata: append([]continuity.KV{{Key: "runtime_name", Value: h.name}}, meta...)})
	}
	emitRec := func(transition string, rec continuity.Record, reason string, meta ...continuity.KV) {
		n.reg.EmitRecord(transition, rec, reason, append([]continuity.KV{{Key: "runtime_name", Value: h.name}}, meta...)...)
	}

	var members []string
	polls, sawPeer := 0, false
	if n.cfg.mode() == ModeCluster {
		stable, converged := 0, false
		// A node that was part of a pair before waits longer for its peer:
		// running startup work alone while the peer is alive would run it
		// twice. A fresh node gives up after a short settle time.
		maxPolls := convergencePolls
		if len(n.known()) > 0 {
			maxPolls = max(maxPolls, int((2*n.cfg.DiscoveryInterval+2*n.cfg.PeerTimeout)/convergencePoll))
		}
		for !converged && (polls < convergencePolls || (!sawPeer && polls < maxPolls)) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(convergencePoll):
			}
			polls++
			cur := continuity.CanonicalMembership(n.Members())
			if len(cur) > 1 {
				sawPeer = true
			}
			if slices.Equal(cur, members) {
				stable++
			} else {
				stable = 1
			}
			members = cur
			if sawPeer && stable >= convergenceStable {
				n.waitSynced(ctx)
				converged = true
			}
		}
		if sawPeer && !converged {
			meta := []continuity.KV{{Key: "membership", Value: strings.Join(members, ",")}, {Key: "polls", Value: strconv.Itoa(polls)}}
			emit(transitionStartupConvergenceTimeout, "startup_convergence_timeout", meta...)
			emit(transitionStartupRejected, "startup_convergence_timeout", meta...)
			return
		}
		if role, _ := n.reg.Authority(); role == RoleStandby {
			emit(transitionStartupSkipped, "startup_skipped:standby_authority")
			return
		}
	}
	if members == nil {
		members = []string{n.self}
	}
	required := h.count - 1
	if !sawPeer && h.count == 2 {
		required = 0
	}
	emit(transitionStartupTrigger, "", continuity.KV{Key: "required_replicas", Value: strconv.Itoa(required)},
		continuity.KV{Key: "membership", Value: strings.Join(members, ",")}, continuity.KV{Key: "polls", Value: strconv.Itoa(polls)})

	gen := n.reg.FenceGeneration()
	dec, err := n.submit(ctx, submission{h: h, key: key, hash: continuity.StartupHashPrefix + h.name,
		count: uint64(h.count), relaxed: !sawPeer})
	if err != nil {
		emit(transitionStartupRejected, continuity.ReasonOf(err))
		return
	}
	rec := dec.Record
	switch dec.Outcome {
	case continuity.OutcomeRejected:
		emitRec(transitionStartupRejected, rec, rec.Error)
		return
	case continuity.OutcomeConflict:
		emitRec(transitionStartupRejected, rec, string(continuity.ReasonRequestKeyConflict))
		return
	case continuity.OutcomeCreated:
		if rec.ReplicaNode != "" {
			window := n.cfg.StartupWorkDelay
			emitRec(transitionStartupDispatchWindow, rec, "",
				continuity.KV{Key: "pending_window_ms", Value: strconv.FormatInt(window.Milliseconds(), 10)},
				continuity.KV{Key: "ownership", Value: "runtime_owned"})
			select {
			case <-ctx.Done():
				return
			case <-time.After(window):
			}
		}
		if !n.awaitAuthority(ctx, gen) {
			n.startupFenced(h, key, rec)
			return
		}
		cur, ok := n.reg.Get(key)
		if ok && cur.Pending() && cur.Attempt == rec.Attempt {
			if err := n.dispatchWork(ctx, h, cur); err != nil {
				_, _ = n.recordRejection(key, cur.Attempt, "dispatch_failed:"+err.Error())
			}
		}
	}
	n.awaitStartupOutcome(ctx, h, key, gen)
}

// awaitStartupOutcome waits for the startup record to end and reports how.
// It follows the record across recovery rollovers made by this node.
func (n *Node) awaitStartupOutcome(ctx context.Context, h *handler, key string, gen uint64) {
	for {
		rec, ok := n.reg.Get(key)
		switch {
		case !ok:
			n.reg.Emit(continuity.Entry{Transition: transitionStartupRejected, RequestKey: key,
				Reason: string(continuity.ReasonRequestKeyNotFound), Metadata: []continuity.KV{{Key: "runtime_name", Value: h.name}}})
			return
		case n.reg.FenceGeneration() != gen:
			n.startupFenced(h, key, rec)
			return
		case rec.Phase == continuity.PhaseCompleted:
			n.reg.EmitRecord(transitionStartupCompleted, rec, "", continuity.KV{Key: "runtime_name", Value: h.name})
			return
		case rec.Phase == continuity.PhaseRejected:
			n.reg.EmitRecord(transitionStartupRejected, rec, rec.Error, continuity.KV{Key: "runtime_name", Value: h.name})
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(terminalPoll):
		}
	}
}

func (n *Node) startupFenced(h *handler, key string, rec continuity.Record) {
	cur, ok := n.reg.Get(key)
	if !ok {
		cur = rec
	}
	n.reg.EmitRecord(transitionStartupFenced, cur, "startup_attempt_fenced",
		continuity.KV{Key: "runtime_name", Value: h.name}, continuity.KV{Key: "submitted_attempt_id", Value: rec.AttemptID()},
		continuity.KV{Key: "active_attempt_id", Value: cur.AttemptID()})
}
