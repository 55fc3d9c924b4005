package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"meshgo.dev/mesh/internal/arbiter"
	"meshgo.dev/mesh/internal/continuity"
)

// switchoverLoad submits mirrored work on both nodes, each key once, while
// body runs, and returns the keys that were not acknowledged.
func switchoverLoad(c *syncCluster, nodes []*Node, prefix string, count int, body func()) (refused []string) {
	type result struct {
		key string
		ok  bool
	}
	results := make(chan result, count*len(nodes))
	for _, n := range nodes {
		go func() {
			for i := range count {
				key := fmt.Sprintf("%s-%s-%d", prefix, n.Name(), i)
				results <- result{key, c.submit(n, syncMirrored, key)}
				time.Sleep(7 * time.Millisecond)
			}
		}()
	}
	body()
	for range count * len(nodes) {
		if r := <-results; !r.ok {
			refused = append(refused, r.key)
		}
	}
	return refused
}

// checkSwitched asserts the outcome of a switchover from p to s at epoch:
// roles swapped, the switchover's transitions recorded on both sides, and
// no failure-driven transition (fencing, automatic promotion, rejection)
// recorded on either node after since, the moment the pair was seen
// settled before the switchover (under a lease a fresh standby is raised
// to the primary's lease epoch at start, a fenced_rejoin at or before
// since).
func checkSwitched(c *syncCluster, p, s *Node, epoch uint64, since time.Time) {
	c.t.Helper()
	defer func() {
		if c.t.Failed() {
			c.t.Logf("since %s", since.Format("05.000000"))
			dumpDiagnostics(c.t, p, s)
		}
	}()
	c.awaitAuthority(s, RolePrimary, epoch, time.Second)
	c.awaitAuthority(p, RoleStandby, epoch, time.Second)
	for _, n := range []*Node{p, s} {
		for _, bad := range []string{continuity.TransitionFencedRejoin, continuity.TransitionAutomaticPromotion,
			continuity.TransitionCompletionRejected, continuity.TransitionStaleEpochRejected, continuity.TransitionSwitchoverRejected} {
			if hasTransitionAfter(n, bad, since) {
				c.t.Errorf("%s recorded %s during a planned switchover", n.Name(), bad)
			}
		}
	}
	for n, tr := range map[*Node]string{s: continuity.TransitionSwitchoverPromoted, p: continuity.TransitionSwitchoverSteppedDown} {
		if !hasTransition(n, tr, "") {
			c.t.Errorf("%s did not record %s", n.Name(), tr)
		}
	}
	if !hasTransition(p, continuity.TransitionSwitchoverCompleted, "") {
		c.t.Errorf("%s did not record %s", p.Name(), continuity.TransitionSwitchoverCompleted)
	}
}

func bigDiagnostics(c *syncCluster) (pcfg, scfg Config) {
	pcfg, scfg = c.pairConfigs()
	pcfg.DiagnosticsCapacity, scfg.DiagnosticsCapacity = 4096, 4096
	return pcfg, scfg
}

// Switchover under load (peer rule): while both nodes take keyed mirrored
// work, the primary hands its role to the standby. Every submission is
// acknowledged and completes exactly once (the history checker), the roles
// swap at epoch 1, nothing is fenced or superseded; the old primary,
// restarted from its state dir, comes back as the standby at epoch 1.
func TestSynctestSwitchoverUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSyncCluster(t)
		pcfg, scfg := bigDiagnostics(c)
		p, s := c.start(pcfg), c.start(scfg)
		c.startObserver()
		c.awaitLinked(p, s)
		c.submitBatch(p, syncMirrored, "before", 3, 5*time.Millisecond)

		var res SwitchoverResult
		refused := switchoverLoad(c, []*Node{p, s}, "during", 30, func() {
			time.Sleep(60 * time.Millisecond) // work in flight on both nodes
			var err error
			if res, err = p.switchover(context.Background(), "", "operator"); err != nil {
				t.Fatalf("switchover: %v", err)
			}
		})
		if len(refused) > 0 {
			t.Fatalf("%d submissions refused during the switchover: %v", len(refused), refused)
		}
		if res.From != p.Name() || res.To != s.Name() || res.PreviousEpoch != 0 || res.Epoch != 1 || res.SafetyMode != "peer" {
			t.Errorf("result %+v", res)
		}
		var steps []string
		for _, st := range res.Steps {
			steps = append(steps, st.Step)
		}
		if fmt.Sprint(steps) != "[checked drained caught_up promoted stepped_down resumed]" {
			t.Errorf("steps %v", steps)
		}
		checkSwitched(c, p, s, 1, time.Time{})
		c.awaitSettled(p, s)

		// The old primary restarts: standby at epoch 1, from its state dir.
		stop(p)
		c.mu.Lock()
		delete(c.nodes, p.Name())
		c.mu.Unlock()
		waitGone(t, p)
		p2 := c.start(pcfg)
		c.awaitAuthority(p2, RoleStandby, 1, 10*time.Second)
		c.awaitLinked(p2, s)
		if n := c.submitBatch(s, syncMirrored, "after", 3, 5*time.Millisecond); n != 3 {
			t.Errorf("%d of 3 submissions acknowledged after the restart", n)
		}
		c.awaitSettled(p2, s)
		if r, e := s.Authority(); r != RolePrimary || e != 1 {
			t.Errorf("new primary is %s/%d after the old one restarted", r, e)
		}
		c.check()
	})
}

// Switchover under a lease arbiter: the old primary releases its lease
// only once the standby is caught up, the standby wins it at the next
// epoch, and no submission is refused meanwhile.
func TestSynctestSwitchoverLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSyncCluster(t)
		mem := arbiter.NewMemory(shortLease, nil)
		c.opts = []Option{withLeaseArbiter(mem, shortLease)}
		pcfg, scfg := bigDiagnostics(c)
		p, s := c.start(pcfg), c.start(scfg)
		c.startObserver()
		c.awaitLinked(p, s)
		c.await(5*time.Second, "primary holds the lease", func() error {
			if st, err := mem.Observe(t.Context()); err != nil || st.Holder != p.Name() {
				return fmt.Errorf("lease %+v, %v", st, err)
			}
			return nil
		})
		held, _ := mem.Observe(t.Context())
		// The standby starts at epoch 0 and is raised to the primary's
		// lease epoch (a fenced_rejoin, by design) by the first frame it
		// hears from the primary at that epoch. When the primary's first
		// frames left before it won the lease, that frame is a later one:
		// without this wait, the first prepare of the load below, at the
		// instant settled was taken. The pair has settled once both are
		// at the lease epoch; what either records after that belongs to
		// the switchover.
		c.awaitAuthority(p, RolePrimary, held.Epoch, time.Second)
		c.awaitAuthority(s, RoleStandby, held.Epoch, time.Second)
		settled := time.Now()
		var res SwitchoverResult
		refused := switchoverLoad(c, []*Node{p, s}, "during", 30, func() {
			time.Sleep(60 * time.Millisecond)
			var err error
			if res, err = p.switchover(context.Background(), s.Name(), "operator"); err != nil {
				t.Fatalf("switchover: %v", err)
			}
		})
		if len(refused) > 0 {
			t.Fatalf("%d submissions refused during the switchover: %v", len(refused), refused)
		}
		if res.Epoch != held.Epoch+1 || res.SafetyMode != "postgres" {
			t.Errorf("result %+v, want epoch %d", res, held.Epoch+1)
		}
		checkSwitched(c, p, s, held.Epoch+1, settled)
		if st, _ := mem.Observe(t.Context()); st.Holder != s.Name() || st.Epoch != held.Epoch+1 {
			t.Errorf("lease %+v after the switchover", st)
		}
		if hasTransition(p, transitionLeaseLost, "") {
			t.Error("the old primary reported its released lease as lost")
		}
		// Several TTLs later the new primary still renews, the old one
		// never took the lease back.
		time.Sleep(4 * shortLease.TTL)
		if st, _ := mem.Observe(t.Context()); st.Holder != s.Name() || st.Epoch != held.Epoch+1 {
			t.Errorf("lease %+v four TTLs after the switchover", st)
		}
		if n := c.submitBatch(p, syncMirrored, "after", 3, 5*time.Millisecond); n != 3 {
			t.Errorf("%d of 3 submissions on the old primary acknowledged after the switchover", n)
		}
		c.awaitSettled(p, s)
		c.check()
	})
}

// Graceful shutdown of a primary with a connected standby hands the role
// over first: the standby is primary without a failure-driven promotion.
func TestSynctestShutdownHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSyncCluster(t)
		pcfg, scfg := bigDiagnostics(c)
		p, s := c.start(pcfg), c.start(scfg)
		c.startObserver()
		c.awaitLinked(p, s)
		c.submitBatch(p, syncMirrored, "before", 5, 0) // still running at the shutdown
		stop(p)
		c.mu.Lock()
		delete(c.nodes, p.Name())
		c.mu.Unlock()
		waitGone(t, p)
		defer func() {
			if t.Failed() {
				for _, e := range p.Diagnostics().Entries {
					t.Logf("P %v %s %s %s %s %v", e.Time.Format("05.000"), e.Transition, e.RequestKey, e.AttemptID, e.Reason, e.Metadata)
				}
				for _, e := range s.Diagnostics().Entries {
					t.Logf("S %v %s %s %s %s", e.Time.Format("05.000"), e.Transition, e.RequestKey, e.AttemptID, e.Reason)
				}
			}
		}()
		c.awaitAuthority(s, RolePrimary, 1, time.Second)
		if !hasTransition(s, continuity.TransitionSwitchoverPromoted, "") {
			t.Error("the standby did not record switchover_promoted")
		}
		time.Sleep(2 * pcfg.PeerTimeout) // the loss is handled by now
		for _, bad := range []string{continuity.TransitionAutomaticPromotion, continuity.TransitionAutomaticRecovery, continuity.TransitionFencedRejoin} {
			for _, e := range s.Diagnostics().Entries {
				if e.Transition == bad {
					t.Errorf("the standby recorded %s after a graceful shutdown of its primary: %+v", bad, e)
				}
			}
		}
		if r, e := s.Authority(); r != RolePrimary || e != 1 {
			t.Errorf("standby is %s/%d", r, e)
		}
		c.check()
	})
}

// Refusals change nothing and name their reason.
func TestSynctestSwitchoverRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSyncCluster(t)
		pcfg, scfg := c.pairConfigs()
		p := c.start(pcfg)
		time.Sleep(100 * time.Millisecond)
		reason := func(n *Node, to string) (string, string) {
			_, err := n.switchover(context.Background(), to, "operator")
			se, ok := errors.AsType[*SwitchoverError](err)
			if !ok {
				t.Fatalf("switchover on %s to %q: %v, want a *SwitchoverError", n.Name(), to, err)
			}
			return se.Reason, se.Primary
		}
		if r, _ := reason(p, ""); r != switchoverNotConnected {
			t.Errorf("alone: %s", r)
		}
		s := c.start(scfg)
		c.awaitLinked(p, s)
		c.await(5*time.Second, "heard", func() error {
			if _, _, ok := s.peerAuthority(p.Name()); !ok {
				return errors.New("standby has not heard the primary")
			}
			return nil
		})
		if r, prim := reason(s, ""); r != switchoverNotPrimary || prim != p.Name() {
			t.Errorf("on the standby: %s (primary %q)", r, prim)
		}
		if r, _ := reason(p, "other@127.0.0.9:4370"); r != switchoverNotConnected {
			t.Errorf("--to an unknown node: %s", r)
		}
		for _, n := range []*Node{p, s} {
			if r, e := n.Authority(); e != 0 || (r == RolePrimary) != (n == p) {
				t.Errorf("%s is %s/%d after refused switchovers", n.Name(), r, e)
			}
		}
		if !hasTransition(p, continuity.TransitionSwitchoverRejected, "") {
			t.Error("no switchover_rejected recorded")
		}
	})
}

// hasTransitionAfter reports whether n recorded transition after since.
// An entry recorded at the instant since was taken belongs to what was
// awaited then: in a bubble the poll that saw a change and the entry that
// recorded it share one instant.
func hasTransitionAfter(n *Node, transition string, since time.Time) bool {
	for _, e := range n.Diagnostics().Entries {
		if e.Transition == transition && e.Time.After(since) {
			return true
		}
	}
	return false
}

// dumpDiagnostics logs every diagnostics entry of the nodes, for a failed
// test to show the sequence of transitions on each side.
func dumpDiagnostics(t testing.TB, nodes ...*Node) {
	t.Helper()
	for _, n := range nodes {
		for _, e := range n.Diagnostics().Entries {
			t.Logf("%s %s %s %s %s %s %v", n.Name(), e.Time.Format("05.000000"), e.Transition, e.RequestKey, e.AttemptID, e.Reason, e.Metadata)
		}
	}
}
