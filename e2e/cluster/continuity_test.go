package cluster_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const addKey = "startup::work.Add"

func TestSingleNodeCountsAndPanics(t *testing.T) {
	h := newHarness(t)
	n := h.start("solo", "127.0.0.1", "primary", "TESTAPP_DECLARE_RETRY=1", "TESTAPP_DECLARE_EXPLODE=1")
	h.waitAuthority(n, "primary", 0, 0, 10*time.Second)
	rec := h.waitRecord(n, addKey, 10*time.Second, completed)
	if rec.OwnerNode != n.name || rec.ExecutionNode != n.name || rec.ReplicaNode != "" ||
		rec.ReplicaStatus != "unassigned" || rec.ReplicationCount != 2 || rec.RuntimeName != "work.Add" {
		t.Fatalf("work.Add record %+v", rec)
	}
	retry := h.waitRecord(n, "startup::work.Retry", 10*time.Second, func(r recordDoc) error {
		if r.Phase != "rejected" || r.Error != "unsupported_replication_count:3" || r.ReplicationCount != 3 {
			return fmt.Errorf("%+v", r)
		}
		return nil
	})
	_ = retry
	h.waitRecord(n, "startup::work.Explode", 10*time.Second, func(r recordDoc) error {
		if r.Phase != "rejected" || !strings.Contains(r.Error, "handler_panicked: explode: deliberate crash") {
			return fmt.Errorf("%+v", r)
		}
		return nil
	})
	h.eventually(5*time.Second, func() error {
		d, err := h.diagnostics(n)
		if err != nil {
			return err
		}
		if len(d.find("startup_completed", addKey)) != 1 || len(d.find("startup_rejected", "startup::work.Retry")) != 1 {
			return fmt.Errorf("startup diagnostics incomplete")
		}
		return nil
	})
	// The node survived the panic and still answers.
	if !n.proc.Running() {
		t.Fatal("node exited after a handler panic")
	}
	l, err := h.list(n)
	if err != nil || l.TotalRecords != 3 || l.Truncated {
		t.Fatalf("list %+v %v", l, err)
	}
	// Human output names the runtime name.
	out, _, code := h.meshc("cluster", "continuity", n.name, addKey)
	if code != 0 || !strings.Contains(out, "work.Add") || !strings.Contains(out, "completed") {
		t.Fatalf("human record output: %s", out)
	}
	// The route-free app kept running after its startup work and stops
	// cleanly on SIGTERM.
	if err := n.proc.Terminate(); err != nil {
		t.Fatal(err)
	}
	if code, err := n.proc.Wait(time.Second); err != nil || code != 0 {
		t.Fatalf("exit after SIGTERM: code %d, %v", code, err)
	}
}

func TestTwoNodesStartupRunsOnceMirrored(t *testing.T) {
	h := newHarness(t)
	p := h.start("primary", "127.0.0.1", "primary")
	s := h.start("standby", "::1", "standby")
	var recs []recordDoc
	for _, n := range []*node{p, s} {
		recs = append(recs, h.waitRecord(n, addKey, 15*time.Second, completed))
	}
	for _, n := range []*node{p, s} {
		l, err := h.list(n)
		if err != nil {
			t.Fatal(err)
		}
		if l.TotalRecords != 1 || l.Records[0].RequestKey != addKey {
			t.Fatalf("%s holds %d records: %+v", n.name, l.TotalRecords, l.Records)
		}
	}
	a, b := recs[0], recs[1]
	if a.AttemptID != b.AttemptID || a.OwnerNode != b.OwnerNode || a.ReplicaNode != b.ReplicaNode ||
		a.OwnerNode == a.ReplicaNode || a.ExecutionNode != a.OwnerNode || a.ReplicaStatus != "mirrored" || b.ReplicaStatus != "mirrored" {
		t.Fatalf("records disagree:\n%+v\n%+v", a, b)
	}
	if a.ClusterRole != "primary" || b.ClusterRole != "standby" {
		t.Fatalf("roles %s/%s", a.ClusterRole, b.ClusterRole)
	}
	seen := map[string]int{}
	h.eventually(5*time.Second, func() error {
		seen = map[string]int{}
		for _, n := range []*node{p, s} {
			d, err := h.diagnostics(n)
			if err != nil {
				return err
			}
			for _, e := range d.Entries {
				seen[e.Transition]++
			}
		}
		for _, want := range []string{"startup_trigger", "startup_dispatch_window", "startup_completed", "startup_skipped"} {
			if seen[want] == 0 {
				return fmt.Errorf("no %s in %v", want, seen)
			}
		}
		return nil
	})
	for _, bad := range []string{"startup_rejected", "startup_convergence_timeout"} {
		if seen[bad] != 0 {
			t.Fatalf("diagnostics contain %s", bad)
		}
	}
}
