package cluster_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// longWindow keeps the startup work pending while the test breaks things.
const longWindow = "MESH_STARTUP_WORK_DELAY_MS=20000"

func TestKillPrimaryDuringWindowThenFencedRejoin(t *testing.T) {
	h := newHarness(t)
	h.withOwner("primary")
	// The default discovery interval: the restarted primary must find the
	// promoted standby before it considers running startup work alone, even
	// when the seed does not resolve to the standby's address.
	slow := "MESH_DISCOVERY_INTERVAL_MS=5000"
	p := h.start("primary", "127.0.0.1", "primary", longWindow, slow)
	s := h.start("standby", "::1", "standby", longWindow, slow)
	pre := h.waitRecord(s, addKey, 15*time.Second, pendingMirrored)
	if pre.OwnerNode != p.name || pre.ReplicaNode != s.name || pre.ClusterRole != "standby" || pre.ExecutionNode != "" {
		t.Fatalf("pre-kill standby view %+v", pre)
	}
	p.proc.Kill()
	killed := time.Now()
	h.waitAuthority(s, "primary", 1, 0, 2*time.Second)
	t.Logf("standby promoted %v after SIGKILL", time.Since(killed).Round(10*time.Millisecond))
	post := h.waitRecord(s, addKey, 10*time.Second, completed)
	if post.AttemptID == pre.AttemptID || post.OwnerNode != s.name || post.ExecutionNode != s.name ||
		post.ReplicaNode != "" || post.PromotionEpoch != 1 || post.ClusterRole != "primary" {
		t.Fatalf("recovered record %+v (pre-kill attempt %s)", post, pre.AttemptID)
	}
	d, err := h.diagnostics(s)
	if err != nil {
		t.Fatal(err)
	}
	promo := d.find("automatic_promotion", "")
	if len(promo) != 1 || str(promo[0].Reason) != "peer_lost:"+p.name || promo[0].meta("previous_epoch") != "0" || promo[0].meta("disconnected_node") != p.name {
		t.Fatalf("automatic_promotion entries %+v", promo)
	}
	rec := d.find("automatic_recovery", addKey)
	if len(rec) != 1 || str(rec[0].AttemptID) != post.AttemptID || rec[0].meta("previous_attempt_id") != pre.AttemptID || rec[0].meta("runtime_name") != "work.Add" {
		t.Fatalf("automatic_recovery entries %+v", rec)
	}
	roll := d.find("recovery_rollover", addKey)
	if len(roll) != 1 || str(roll[0].OwnerNode) != s.name || roll[0].meta("previous_attempt_id") != pre.AttemptID {
		t.Fatalf("recovery_rollover entries %+v", roll)
	}

	// The old primary restarts with its original env and is fenced.
	h.restart(p)
	h.waitAuthority(p, "standby", 1, 1, 10*time.Second)
	h.waitAuthority(s, "primary", 1, 1, 5*time.Second)
	for _, n := range []*node{p, s} {
		r := h.waitRecord(n, addKey, 5*time.Second, completed)
		if r.AttemptID != post.AttemptID || r.OwnerNode != s.name || r.ExecutionNode != s.name {
			t.Fatalf("%s view after rejoin %+v", n.name, r)
		}
	}
	h.eventually(5*time.Second, func() error {
		d, err := h.diagnostics(p)
		if err != nil {
			return err
		}
		f := d.find("fenced_rejoin", addKey)
		if len(f) == 0 || f[0].meta("previous_role") != "primary" || f[0].meta("previous_epoch") != "0" ||
			str(f[0].Role) != "standby" || str(f[0].AttemptID) != post.AttemptID {
			return fmt.Errorf("fenced_rejoin entries for %s: %+v", addKey, f)
		}
		return nil
	})
	for _, line := range strings.Split(p.proc.Log(), "\n") {
		if strings.Contains(line, "transition=completed ") {
			t.Fatalf("old primary logged a completion: %s", line)
		}
	}
}

func TestKillStandbyOwningWork(t *testing.T) {
	h := newHarness(t)
	h.withOwner("standby")
	p := h.start("primary", "127.0.0.1", "primary", longWindow)
	s := h.start("standby", "::1", "standby", longWindow)
	pre := h.waitRecord(p, addKey, 15*time.Second, pendingMirrored)
	if pre.OwnerNode != s.name {
		t.Fatalf("owner %s, want the standby", pre.OwnerNode)
	}
	s.proc.Kill()
	post := h.waitRecord(p, addKey, 10*time.Second, completed)
	if post.AttemptID == pre.AttemptID || post.ExecutionNode != p.name {
		t.Fatalf("primary view %+v", post)
	}
	h.waitAuthority(p, "primary", 0, 0, 2*time.Second)
	h.restart(s)
	h.waitAuthority(s, "standby", 0, 1, 10*time.Second)
	r := h.waitRecord(s, addKey, 5*time.Second, completed)
	if r.AttemptID != post.AttemptID {
		t.Fatalf("restarted standby view %+v", r)
	}
}

func TestIdleFailoverAndRestartOfPromotedNode(t *testing.T) {
	h := newHarness(t)
	p := h.start("primary", "127.0.0.1", "primary")
	s := h.start("standby", "::1", "standby")
	h.waitRecord(s, addKey, 15*time.Second, completed)
	p.proc.Kill()
	h.waitAuthority(s, "primary", 1, 0, 2*time.Second)
	h.restart(p)
	h.waitAuthority(p, "standby", 1, 1, 10*time.Second)

	// Restart the promoted node with its original env (standby, epoch 0): its
	// state file keeps it at epoch >= 1 and the pair settles on one primary.
	s.proc.Kill()
	h.restart(s)
	h.eventually(15*time.Second, func() error {
		a, err := h.status(p)
		if err != nil {
			return err
		}
		b, err := h.status(s)
		if err != nil {
			return err
		}
		if b.Authority.Epoch < 1 {
			return fmt.Errorf("restarted node at epoch %d", b.Authority.Epoch)
		}
		primaries := 0
		for _, st := range []statusDoc{a, b} {
			if st.Authority.Role == "primary" {
				primaries++
			}
		}
		if primaries != 1 || a.Authority.Epoch != b.Authority.Epoch || len(a.Membership.PeerNodes) != 1 {
			return fmt.Errorf("not settled: %+v / %+v", a.Authority, b.Authority)
		}
		return nil
	})
}

func TestFrozenPrimaryIsFencedAndNeverCompletes(t *testing.T) {
	h := newHarness(t)
	h.withOwner("primary")
	// A short window that expires while the primary is frozen: when it wakes,
	// its dispatch timer fires at once, and the runtime must refuse to run
	// the superseded attempt.
	window := "MESH_STARTUP_WORK_DELAY_MS=3000"
	p := h.start("primary", "127.0.0.1", "primary", window, "MESH_PEER_TIMEOUT_MS=1500")
	s := h.start("standby", "::1", "standby", window, "MESH_PEER_TIMEOUT_MS=1500")
	pre := h.waitRecord(s, addKey, 15*time.Second, pendingMirrored)
	p.proc.Stop()
	frozen := time.Now()
	h.waitAuthority(s, "primary", 1, 0, 6*time.Second)
	t.Logf("standby promoted %v after SIGSTOP", time.Since(frozen).Round(10*time.Millisecond))
	post := h.waitRecord(s, addKey, 10*time.Second, completed)
	if post.AttemptID == pre.AttemptID || post.ExecutionNode != s.name {
		t.Fatalf("standby did not re-run: %+v", post)
	}
	if wait := 4*time.Second - time.Since(frozen); wait > 0 {
		time.Sleep(wait) // keep the primary frozen past its dispatch window
	}
	p.proc.Cont()
	h.waitAuthority(p, "standby", 1, 1, 10*time.Second)
	r := h.waitRecord(p, addKey, 5*time.Second, completed)
	if r.AttemptID != post.AttemptID || r.ExecutionNode != s.name {
		t.Fatalf("old primary view %+v", r)
	}
	h.eventually(5*time.Second, func() error {
		d, err := h.diagnostics(p)
		if err != nil {
			return err
		}
		if len(d.find("authority_quarantined", "")) == 0 || len(d.find("startup_fenced", addKey)) == 0 {
			return fmt.Errorf("old primary diagnostics lack authority_quarantined or startup_fenced")
		}
		return nil
	})
	for _, line := range strings.Split(p.proc.Log(), "\n") {
		if strings.Contains(line, "transition=completed ") {
			t.Fatalf("frozen primary completed work: %s", line)
		}
	}
}
