package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// TestRestartedStandbyAloneDoesNotTakeOverItsPeer: both nodes of a pair with
// the log store die while each runs count-2 work it owns; only the standby
// comes back, and its primary does not reconnect. A peer the restarted node
// never met in this run is not treated as lost: no loss was observed, and it
// may yet come back from its own log and resume its work itself. So the
// standby does not promote and does not re-run the primary's work (that
// record stays pending at its attempt, owned by the primary); it resumes its
// own work under a new attempt once the startup window passes without a
// peer. When the primary returns, it resumes its own work, and each key ran
// once more in all, never on both nodes.
func TestRestartedStandbyAloneDoesNotTakeOverItsPeer(t *testing.T) {
	c := newAckCluster(t)
	pcfg, scfg := c.config("primary", "127.0.0.1", RolePrimary), c.config("standby", "::1", RoleStandby)
	pcfg.ContinuityStore, scfg.ContinuityStore = StoreLog, StoreLog
	p, s := c.start(pcfg), c.start(scfg)
	waitLinked(t, p, s)

	submit := func(n *Node, key string) continuity.Record {
		t.Helper()
		res, err := n.Submit(context.Background(), ackDecl(gatedMirrored), key, "x")
		if err != nil || res.Outcome != OutcomeCreated {
			t.Fatalf("submit %s: %+v %v", key, res, err)
		}
		c.awaitStart()
		return res.Record
	}
	onP := submit(p, keyPlaced(t, "owned-by-primary", p.Name(), p, s))
	onS := submit(s, keyPlaced(t, "owned-by-standby", s.Name(), p, s))
	waitRecordOf(t, s, onP.RequestKey, func(r continuity.Record) error {
		if r.ReplicaStatus != continuity.ReplicaMirrored {
			return fmt.Errorf("standby's copy %+v", r)
		}
		return nil
	})
	// Both die at once: each is marked stopped before either ends, so
	// neither handles the other's end as a loss (as a process killed at
	// the same instant would not).
	p.stopped.Store(true)
	s.stopped.Store(true)
	s.crash()
	p.crash()

	// The standby alone; the primary never reconnects.
	c.work.release() // later executions finish at once
	s2 := c.start(scfg)
	// Its own work is resumed under a new attempt after the startup window
	// (StartupWorkDelay + PeerTimeout) passed without a peer.
	own := waitRecordOf(t, s2, onS.RequestKey, func(r continuity.Record) error {
		if r.Phase != continuity.PhaseCompleted {
			return fmt.Errorf("own work %+v", r)
		}
		return nil
	})
	if own.Attempt <= onS.Attempt || own.ExecutionNode != s2.Name() {
		t.Fatalf("own work completed as %+v, want a new attempt above %d run here", own, onS.Attempt)
	}
	// By then resumeRecovered is done: whatever it would do to the
	// primary's record, it has done. Wait a few peer timeouts more for any
	// timer-driven loss handling.
	time.Sleep(3 * scfg.PeerTimeout)
	if role, epoch := s2.reg.Authority(); role != RoleStandby || epoch != 0 {
		t.Fatalf("the restarted standby is %s at epoch %d: it treated a primary it never met as lost", role, epoch)
	}
	peerRec, ok := s2.Record(onP.RequestKey)
	if !ok || !peerRec.Pending() || peerRec.Attempt != onP.Attempt || peerRec.OwnerNode != p.Name() {
		t.Fatalf("the primary's work on the standby alone: %+v (found %v), want pending at attempt %d owned by %s", peerRec, ok, onP.Attempt, p.Name())
	}
	for _, e := range s2.Diagnostics().Entries {
		if e.RequestKey == onP.RequestKey && (e.Transition == continuity.TransitionAutomaticRecovery || e.Transition == continuity.TransitionRecoveryRollover) {
			t.Fatalf("the standby alone recovered the primary's work: %+v", e)
		}
	}
	if runs := c.work.executions(onP.RequestKey); len(runs) != 1 {
		t.Fatalf("the primary's work started %d times while the primary was away, want only its first run: %+v", len(runs), runs)
	}

	// The primary returns and resumes its own work.
	p2 := c.start(pcfg)
	waitLinked(t, p2, s2)
	for _, n := range []*Node{p2, s2} {
		r := waitRecordOf(t, n, onP.RequestKey, func(r continuity.Record) error {
			if r.Phase != continuity.PhaseCompleted {
				return fmt.Errorf("%s: primary's work %+v", n.Name(), r)
			}
			return nil
		})
		if r.Attempt <= onP.Attempt || r.ExecutionNode != p2.Name() {
			t.Fatalf("%s: primary's work completed as %+v, want a new attempt above %d run on the primary", n.Name(), r, onP.Attempt)
		}
	}
	for _, key := range []string{onP.RequestKey, onS.RequestKey} {
		if runs := c.work.executions(key); len(runs) != 2 {
			t.Fatalf("%s started %d times, want twice (the killed run and one resumed): %+v", key, len(runs), runs)
		}
	}
	if role, epoch := p2.reg.Authority(); role != RolePrimary || epoch != 0 {
		t.Fatalf("the returned primary is %s at epoch %d", role, epoch)
	}
}
