package cluster

import (
	"context"
	"errors"
	"strconv"
	"time"

	"meshgo.dev/mesh/internal/authority"
	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/wire"
)

// A planned switchover hands the primary role to the connected standby
// without a failure: nothing is superseded, nothing runs twice, no request
// is refused for it. The primary (A) drives it over the cluster link; the
// standby (B) answers. The protocol, and why it loses nothing, is in
// ARCHITECTURE.md ("Planned switchover"). In short:
//
//  1. A checks that it is a confirmed primary and B a connected, synced
//     standby at A's epoch, and records that it hands over to B
//     (authority.HandOver): from now on B's higher epoch steps A down
//     instead of fencing it.
//  2. A drains its submissions: new ones wait at submitRecordTo, the ones
//     already past it finish their prepare with B.
//  3. A flushes its link and asks B to check (wire.HandoverCheck). B answers
//     after applying every frame A sent before, so an OK means B holds every
//     record A replicated; B reports its attempt watermark, which A adopts.
//  4. With a lease arbiter A stops acting as primary and releases its lease.
//  5. A tells B to commit: B drains its own submissions the same way, takes
//     the role over at epoch+1 (peer rule) or at the epoch of the lease it
//     acquires (lease arbiter), and answers with its new authority.
//  6. A steps down to standby at B's epoch, keeping its fence generation
//     (its running work completes here as before), and lets the held
//     submissions through: they now go to the new primary's epoch.

// Refusal reasons of a switchover. The operator sees them as
// switchover_rejected:<reason>.
const (
	switchoverNotPrimary      = "not_primary"
	switchoverNotConnected    = "standby_not_connected"
	switchoverNotCaughtUp     = "standby_not_caught_up"
	switchoverUnconfirmed     = "authority_unconfirmed"
	switchoverInProgress      = "switchover_in_progress"
	switchoverShuttingDown    = "shutting_down"
	switchoverNoAnswer        = "standby_unanswered"
	switchoverStandbyRefused  = "standby_refused:" // + the standby's reason
	switchoverArbiterRefused  = "arbiter_unavailable"
	switchoverRejectedPrefix  = "switchover_rejected:"
	switchoverDefaultDeadline = 10 * time.Second
)

// SwitchoverError is a refused switchover. Reason is one of the reasons
// above; Primary names the primary when this node is not it (if known).
type SwitchoverError struct {
	Reason  string
	Primary string
}

// Error is switchover_rejected:<reason>, with :<primary> after not_primary
// when the primary is known.
func (e *SwitchoverError) Error() string {
	if e.Primary != "" {
		return switchoverRejectedPrefix + e.Reason + ":" + e.Primary
	}
	return switchoverRejectedPrefix + e.Reason
}

// SwitchoverStep is one step of a switchover as it happened: its name
// (checked, drained, caught_up, lease_released, promoted, stepped_down,
// resumed), when it ended since the start, and a detail.
type SwitchoverStep struct {
	Step    string
	Elapsed time.Duration
	Detail  string
}

// SwitchoverResult describes a completed switchover.
type SwitchoverResult struct {
	From, To      string
	PreviousEpoch uint64
	Epoch         uint64
	SafetyMode    string
	Steps         []SwitchoverStep
	Duration      time.Duration
}

// switchover hands this primary's role to the connected standby to (any
// connected standby when to is empty) and returns what happened; trigger
// (operator, shutdown) is recorded in the diagnostics. It fails with a
// *SwitchoverError, leaving the roles as they were, when this node is not a
// confirmed primary, the standby is not connected or not caught up, or the
// standby or the arbiter refuses. Operators reach it through meshc cluster
// switchover (operatorSource.Switchover), applications through Shutdown.
func (n *Node) switchover(ctx context.Context, to, trigger string) (res SwitchoverResult, err error) {
	start := time.Now()
	res.From, res.SafetyMode = n.self, n.arbiter.Kind()
	step := func(name, detail string) {
		res.Steps = append(res.Steps, SwitchoverStep{Step: name, Elapsed: time.Since(start), Detail: detail})
	}
	fail := func(reason string) (SwitchoverResult, error) {
		n.reg.Emit(continuity.Entry{Transition: continuity.TransitionSwitchoverRejected, Reason: switchoverRejectedPrefix + reason,
			Metadata: []continuity.KV{{Key: "standby", Value: res.To}, {Key: "trigger", Value: trigger}}})
		return res, &SwitchoverError{Reason: reason}
	}
	if n.cfg.mode() != ModeCluster {
		return fail(switchoverNotConnected)
	}
	if !n.switchMu.TryLock() {
		return fail(switchoverInProgress)
	}
	defer n.switchMu.Unlock()
	if n.stopped.Load() {
		return fail(switchoverShuttingDown)
	}
	role, epoch := n.reg.Authority()
	res.PreviousEpoch = epoch
	if role != RolePrimary {
		res, err = fail(switchoverNotPrimary)
		for _, s := range n.sessionList() {
			if a, _, ok := n.peerAuthority(s.peer); ok && a.Role == RolePrimary {
				err.(*SwitchoverError).Primary = s.peer
			}
		}
		return res, err
	}
	if !n.confirmed() {
		return fail(switchoverUnconfirmed)
	}
	s := n.switchoverStandby(to)
	if s == nil {
		res.To = to
		return fail(switchoverNotConnected)
	}
	res.To = s.peer
	if a, _, ok := n.peerAuthority(s.peer); !ok || !s.isSynced() || a.Role != RoleStandby || a.Epoch != epoch {
		return fail(switchoverNotCaughtUp)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, switchoverDefaultDeadline)
		defer cancel()
	}
	if eff, err := n.stepAuthority(authority.HandOver{To: s.peer}, nil); err != nil || eff.Err != nil {
		return fail(switchoverUnconfirmed)
	}
	n.reg.Emit(continuity.Entry{Transition: continuity.TransitionSwitchoverStarted, Metadata: []continuity.KV{
		{Key: "standby", Value: s.peer}, {Key: "epoch", Value: strconv.FormatUint(epoch, 10)},
		{Key: "safety_mode", Value: res.SafetyMode}, {Key: "trigger", Value: trigger}}})
	step("checked", s.peer+" is a connected standby at epoch "+strconv.FormatUint(epoch, 10))

	// Requests that cannot act during the hand-over wait for it instead of
	// being refused (holdForSwitchover).
	n.switching.Store(true)
	defer func() {
		n.switching.Store(false)
		n.authorityChanged()
	}()
	aborted := func(reason string) (SwitchoverResult, error) {
		_, _ = n.stepAuthority(authority.EndHandOver{}, nil)
		if n.lease != nil {
			n.lease.unrelease()
		}
		id := n.callID.Add(1)
		actx, cancel := context.WithTimeout(n.ctx, n.cfg.PeerTimeout)
		_, _ = s.call(actx, id, wire.Handover{ID: id, Step: wire.HandoverAbort, Epoch: epoch, Authority: n.authorityMsg()})
		cancel()
		return fail(reason)
	}

	// Drain: no submission of this node is between its record and its
	// prepare's answer while the epoch moves.
	n.switchGate.Lock()
	defer n.switchGate.Unlock()
	step("drained", "new submissions held; in-flight prepares answered")

	if err := s.flush(ctx); err != nil {
		return aborted(switchoverNotCaughtUp)
	}
	ack, err := n.handover(ctx, s, wire.HandoverCheck, epoch)
	if err != nil {
		return aborted(switchoverNotCaughtUp)
	}
	if !ack.OK {
		return aborted(ack.Reason)
	}
	n.reg.RaiseWatermark(ack.AttemptWatermark)
	step("caught_up", "standby applied every replicated record; attempt watermark "+strconv.FormatUint(ack.AttemptWatermark, 10)+
		", "+strconv.FormatUint(ack.Pending, 10)+" pending")

	if n.lease != nil {
		if err := n.lease.release(ctx); err != nil {
			return aborted(switchoverArbiterRefused)
		}
		step("lease_released", "this node stopped acting as primary and released its lease")
	}
	ack, err = n.handover(ctx, s, wire.HandoverCommit, epoch)
	if err != nil {
		return aborted(switchoverNoAnswer)
	}
	if !ack.OK {
		return aborted(switchoverStandbyRefused + ack.Reason)
	}
	res.Epoch = ack.Authority.Epoch
	s.heard(ack.Authority)
	step("promoted", s.peer+" is primary at epoch "+strconv.FormatUint(res.Epoch, 10))

	if r, e := n.reg.Authority(); r == RolePrimary || e < res.Epoch {
		eff, err := n.stepAuthority(authority.StepDown{To: s.peer, Epoch: res.Epoch}, nil)
		if err == nil {
			err = eff.Err
		}
		if err != nil {
			// The new primary's next message fences this node instead.
			n.log.Error("[mesh-rt continuity] switchover step-down failed", "error", err.Error())
		}
	}
	if n.lease != nil {
		n.lease.unrelease()
	}
	step("stepped_down", n.self+" is standby at epoch "+strconv.FormatUint(res.Epoch, 10))
	res.Duration = time.Since(start)
	n.reg.Emit(continuity.Entry{Transition: continuity.TransitionSwitchoverCompleted, Metadata: []continuity.KV{
		{Key: "previous_primary", Value: n.self}, {Key: "next_primary", Value: s.peer},
		{Key: "previous_epoch", Value: strconv.FormatUint(epoch, 10)}, {Key: "next_epoch", Value: strconv.FormatUint(res.Epoch, 10)},
		{Key: "duration_ms", Value: strconv.FormatInt(res.Duration.Milliseconds(), 10)}, {Key: "trigger", Value: trigger}}})
	step("resumed", "held submissions proceed")
	return res, nil
}

// switchoverStandby is the session of the standby to hand over to: to's,
// or the only connected peer's when to is empty.
func (n *Node) switchoverStandby(to string) *session {
	if to != "" {
		if s := n.session(to); s != nil && !s.isClosed() {
			return s
		}
		return nil
	}
	var found *session
	for _, s := range n.sessionList() {
		if s.isClosed() {
			continue
		}
		if found != nil {
			return nil // more than one: the operator names it with --to
		}
		found = s
	}
	return found
}

// handover sends one step of the hand-over to the standby and waits for its
// answer.
func (n *Node) handover(ctx context.Context, s *session, st uint8, epoch uint64) (wire.HandoverAck, error) {
	id := n.callID.Add(1)
	reply, err := s.call(ctx, id, wire.Handover{ID: id, Step: st, Epoch: epoch, Authority: n.authorityMsg()})
	if err != nil {
		return wire.HandoverAck{}, err
	}
	ack, ok := reply.(wire.HandoverAck)
	if !ok {
		return wire.HandoverAck{}, errors.New("unexpected reply to a handover")
	}
	return ack, nil
}

// handleHandover answers one step of a hand-over the primary s.peer drives.
// A check is answered on the reader, after every frame the primary sent
// before it; a commit may wait for the lease store, so it runs off it.
func (n *Node) handleHandover(s *session, m wire.Handover) {
	refuse := func(reason string) wire.HandoverAck {
		return wire.HandoverAck{ID: m.ID, Reason: reason, Authority: n.authorityMsg()}
	}
	check := func() (wire.HandoverAck, bool) {
		role, epoch := n.reg.Authority()
		switch {
		case n.stopped.Load():
			return refuse(switchoverShuttingDown), false
		case role != RoleStandby:
			return refuse(switchoverNotCaughtUp + ":standby_is_" + string(role)), false
		case epoch != m.Epoch || m.Authority.Role != RolePrimary || m.Authority.Epoch != epoch:
			return refuse(switchoverNotCaughtUp + ":epoch_" + strconv.FormatUint(epoch, 10)), false
		case n.reg.Quarantined():
			return refuse(switchoverUnconfirmed), false
		case !s.isSynced():
			return refuse(switchoverNotCaughtUp), false
		}
		return wire.HandoverAck{}, true
	}
	switch m.Step {
	case wire.HandoverCheck:
		ack, ok := check()
		if ok {
			ack = wire.HandoverAck{ID: m.ID, OK: true, Authority: n.authorityMsg(),
				AttemptWatermark: n.reg.Watermark(), Pending: uint64(len(n.reg.PendingRecords()))}
		}
		_ = s.send(ack)
	case wire.HandoverCommit:
		n.goRun(func() { _ = s.send(n.takeOver(s, m, check, refuse)) })
	default: // abort (nothing was changed here before a commit) or barrier
		_ = s.send(wire.HandoverAck{ID: m.ID, OK: true, Authority: n.authorityMsg()})
	}
}

// barrier waits until the peer of s has applied every frame this node
// sent it before (HandoverBarrier), for at most the peer timeout. A
// shutting-down node calls it after its last records are queued: closing
// the link right after a flush could still lose them, when the peer writes
// at that moment, fails, and drops what it had not read yet. Its loss
// handling would then re-run work this node completed.
func (n *Node) barrier(ctx context.Context, s *session) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.PeerTimeout)
	defer cancel()
	_, _ = n.handover(ctx, s, wire.HandoverBarrier, 0)
}

// takeOver makes this standby the primary on the primary's commit: at
// epoch+1, or at the epoch of the lease it wins once the primary released
// it.
func (n *Node) takeOver(s *session, m wire.Handover, check func() (wire.HandoverAck, bool),
	refuse func(string) wire.HandoverAck) wire.HandoverAck {
	// The standby's own submissions drain too: a prepare it stamped with
	// the old epoch must not reach the old primary after the new epoch has
	// (the old primary steps down on this answer, then refuses it as stale).
	n.switchGate.Lock()
	defer n.switchGate.Unlock()
	if ack, ok := check(); !ok {
		return ack
	}
	next := m.Epoch + 1
	if n.lease != nil {
		ctx, cancel := context.WithTimeout(n.ctx, 2*n.lease.timing.Renew)
		l, err := n.lease.acquire(ctx, m.Epoch)
		cancel()
		if err != nil {
			return refuse(refusalReason(err))
		}
		next = l.Epoch
	}
	eff, err := n.stepAuthority(authority.TakeOver{From: s.peer, Epoch: next}, nil)
	if err == nil {
		err = eff.Err
	}
	if err != nil {
		return refuse(err.Error())
	}
	return wire.HandoverAck{ID: m.ID, OK: true, Authority: n.authorityMsg(), AttemptWatermark: n.reg.Watermark()}
}

// holdForSwitchover waits, while a switchover runs on this node, for the
// node to be confirmed again, and reports whether it is. A request that
// finds the node unable to act (with a lease arbiter, between the release
// of the old primary's lease and the new primary's answer) is held for the
// hand-over instead of being refused.
func (n *Node) holdForSwitchover(ctx context.Context) bool {
	for n.switching.Load() {
		ch := n.authWait()
		if n.confirmed() {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		case <-n.ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return n.confirmed()
}

// handOverOnShutdown hands the primary role to a connected standby before a
// graceful shutdown, so the standby does not have to promote on a failure.
// It does nothing on a standby or a node with no connected peer; a refused
// switchover is logged and the shutdown goes on (the standby then promotes
// as on a loss).
func (n *Node) handOverOnShutdown(ctx context.Context) {
	if n.cfg.mode() != ModeCluster || n.stopped.Load() {
		return
	}
	if role, _ := n.reg.Authority(); role != RolePrimary || len(n.Peers()) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, switchoverDefaultDeadline)
	defer cancel()
	if _, err := n.switchover(ctx, "", "shutdown"); err != nil {
		n.log.Warn("[mesh-rt continuity] switchover before shutdown refused; the standby will promote on the loss", "error", err.Error())
	}
}
