package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

const addKey = continuity.StartupKeyPrefix + "cluster.Add"

// portWhereOwner returns a free port at which placement puts the startup key
// on the node named ownerName ("primary" or "standby").
func portWhereOwner(t *testing.T, ownerName string) int {
	t.Helper()
	for range 200 {
		p := freePort(t)
		members := []string{fmt.Sprintf("primary@127.0.0.1:%d", p), fmt.Sprintf("standby@[::1]:%d", p)}
		if continuity.Place(addKey, members).Owner == fmt.Sprintf("%s@%s", ownerName, map[string]string{"primary": fmt.Sprintf("127.0.0.1:%d", p), "standby": fmt.Sprintf("[::1]:%d", p)}[ownerName]) {
			return p
		}
	}
	t.Fatal("no port places the startup key as wanted")
	return 0
}

func waitRecord(t *testing.T, n *Node, want func(continuity.Record) error) continuity.Record {
	t.Helper()
	var rec continuity.Record
	eventually(t, 10*time.Second, func() error {
		r, ok := n.Record(addKey)
		if !ok {
			return fmt.Errorf("%s has no record", n.Name())
		}
		rec = r
		return want(r)
	})
	return rec
}

func hasTransition(n *Node, transition, key string) bool {
	for _, e := range n.Diagnostics().Entries {
		if e.Transition == transition && (key == "" || e.RequestKey == key) {
			return true
		}
	}
	return false
}

func stop(n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.Shutdown(ctx)
}

// kill stops n as SIGKILL would. A graceful Shutdown of a primary with a
// connected standby hands the role over instead of failing over
// (switchover.go), so the failover tests lose their primary this way.
func kill(t *testing.T, n *Node) {
	t.Helper()
	if err := Crash(n, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// startupPair returns the configurations of a pair on port whose
// primary's startup work waits 20 s in its dispatch window. The startup
// work's placement (which node owns it, that it has a replica) is decided
// once, when the primary submits it, so the link must not drop before: a
// link lost at that moment makes the count-2 work a rejection for want of
// a replica, as the contract says. A stress run failed one of these tests
// once in 20 runs with that rejection, submitted after the primary had seen
// its peer: the link was down at the submission (why is not known; the
// test's peer timeout was 400 ms, a stall a loaded machine can cause). The
// tests lose their nodes by crashes and shutdowns, which close the link at
// once, so a peer timeout far above any such stall costs them nothing.
func startupPair(t *testing.T, port int) (pcfg, scfg Config) {
	pcfg = testConfig(t, "primary", "127.0.0.1", port, RolePrimary)
	pcfg.StartupWorkDelay = 20 * time.Second
	scfg = testConfig(t, "standby", "::1", port, RoleStandby)
	for _, c := range []*Config{&pcfg, &scfg} {
		c.PeerTimeout = 5 * time.Second
	}
	return pcfg, scfg
}

func TestFailoverKillDuringWindowThenFencedRejoin(t *testing.T) {
	pcfg, scfg := startupPair(t, portWhereOwner(t, "primary"))
	p := startNode(t, pcfg)
	s := startNode(t, scfg)
	pending := waitRecord(t, s, func(r continuity.Record) error {
		if r.ReplicaStatus != continuity.ReplicaMirrored || !r.Pending() {
			return fmt.Errorf("standby view %+v", r)
		}
		return nil
	})
	// The standby stores the record before its acknowledgement reaches the
	// primary; a primary stopped in between rejects the unacknowledged
	// attempt, and there is nothing left to recover. The work is in its
	// window once the primary has opened it.
	eventually(t, 10*time.Second, func() error {
		if !hasTransition(p, transitionStartupDispatchWindow, addKey) {
			return fmt.Errorf("primary has not opened the dispatch window of %s", addKey)
		}
		return nil
	})
	kill(t, p)
	eventually(t, 3*time.Second, func() error {
		if r, e := s.Authority(); r != RolePrimary || e != 1 {
			return fmt.Errorf("standby authority %s/%d", r, e)
		}
		return nil
	})
	done := waitRecord(t, s, func(r continuity.Record) error {
		if r.Phase != continuity.PhaseCompleted {
			return fmt.Errorf("not completed: %+v", r)
		}
		return nil
	})
	if done.Attempt == pending.Attempt || done.OwnerNode != s.Name() || done.ExecutionNode != s.Name() || done.ReplicaNode != "" || done.Epoch != 1 {
		t.Fatalf("recovered record wrong: %+v (pending attempt %d)", done, pending.Attempt)
	}
	for _, tr := range []string{continuity.TransitionAutomaticPromotion, continuity.TransitionAutomaticRecovery, continuity.TransitionRecoveryRollover} {
		if !hasTransition(s, tr, "") {
			t.Fatalf("standby diagnostics lack %s", tr)
		}
	}

	// The old primary comes back with its original configuration and state dir.
	p2 := startNode(t, pcfg)
	eventually(t, 5*time.Second, func() error {
		if r, e := p2.Authority(); r != RoleStandby || e != 1 {
			return fmt.Errorf("old primary authority %s/%d", r, e)
		}
		if len(p2.Peers()) != 1 {
			return fmt.Errorf("old primary peers %v", p2.Peers())
		}
		return nil
	})
	rejoined := waitRecord(t, p2, func(r continuity.Record) error {
		if r.Phase != continuity.PhaseCompleted || r.Attempt != done.Attempt {
			return fmt.Errorf("old primary view %+v", r)
		}
		return nil
	})
	if rejoined.ExecutionNode != s.Name() {
		t.Fatalf("old primary view execution %q", rejoined.ExecutionNode)
	}
	if !hasTransition(p2, continuity.TransitionFencedRejoin, "") {
		t.Fatal("old primary lacks fenced_rejoin")
	}
	if r, e := s.Authority(); r != RolePrimary || e != 1 {
		t.Fatalf("promoted node now %s/%d", r, e)
	}
}

func TestFailoverStandbyOwnedWorkRecoveredByPrimary(t *testing.T) {
	pcfg, scfg := startupPair(t, portWhereOwner(t, "standby"))
	p := startNode(t, pcfg)
	s := startNode(t, scfg)
	pending := waitRecord(t, s, func(r continuity.Record) error {
		if r.OwnerNode != s.Name() || !r.Pending() {
			return fmt.Errorf("standby view %+v", r)
		}
		return nil
	})
	stop(s)
	done := waitRecord(t, p, func(r continuity.Record) error {
		if r.Phase != continuity.PhaseCompleted {
			return fmt.Errorf("not completed %+v", r)
		}
		return nil
	})
	if done.Attempt == pending.Attempt || done.ExecutionNode != p.Name() {
		t.Fatalf("primary did not re-run: %+v", done)
	}
	if r, e := p.Authority(); r != RolePrimary || e != 0 {
		t.Fatalf("primary authority %s/%d", r, e)
	}
	s2 := startNode(t, scfg)
	waitRecord(t, s2, func(r continuity.Record) error {
		if r.Attempt != done.Attempt || r.Phase != continuity.PhaseCompleted {
			return fmt.Errorf("restarted standby view %+v", r)
		}
		return nil
	})
	if r, _ := s2.Authority(); r != RoleStandby {
		t.Fatalf("restarted standby is %s", r)
	}
}

func TestIdleFailoverPromotesAndFences(t *testing.T) {
	port := freePort(t)
	pcfg := testConfig(t, "primary", "127.0.0.1", port, RolePrimary)
	scfg := testConfig(t, "standby", "::1", port, RoleStandby)
	p := startNode(t, pcfg)
	s := startNode(t, scfg)
	waitRecord(t, s, func(r continuity.Record) error {
		if r.Phase != continuity.PhaseCompleted {
			return fmt.Errorf("not completed")
		}
		return nil
	})
	kill(t, p)
	eventually(t, 3*time.Second, func() error {
		if r, e := s.Authority(); r != RolePrimary || e != 1 {
			return fmt.Errorf("standby authority %s/%d", r, e)
		}
		return nil
	})
	p2 := startNode(t, pcfg)
	eventually(t, 5*time.Second, func() error {
		if r, e := p2.Authority(); r != RoleStandby || e != 1 {
			return fmt.Errorf("old primary %s/%d", r, e)
		}
		return nil
	})
}

// The standby owns the startup work, the primary (its ingress) dies inside
// the dispatch window: nobody else will dispatch it, so the promoted standby
// must run it.
func TestFailoverStandbyOwnedWorkIngressDiesInWindow(t *testing.T) {
	pcfg, scfg := startupPair(t, portWhereOwner(t, "standby"))
	p := startNode(t, pcfg)
	s := startNode(t, scfg)
	pending := waitRecord(t, s, func(r continuity.Record) error {
		if r.OwnerNode != s.Name() || !r.Pending() {
			return fmt.Errorf("standby view %+v", r)
		}
		return nil
	})
	p.crash()
	done := waitRecord(t, s, func(r continuity.Record) error {
		if r.Phase != continuity.PhaseCompleted {
			return fmt.Errorf("not completed %+v", r)
		}
		return nil
	})
	if done.Attempt == pending.Attempt || done.ExecutionNode != s.Name() {
		t.Fatalf("record %+v", done)
	}
	if r, e := s.Authority(); r != RolePrimary || e != 1 {
		t.Fatalf("standby %s/%d", r, e)
	}
}
