package continuity

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// randomVersion returns a valid version of key k drawn from small domains,
// so that random pairs often tie on some ranks and differ on others.
func randomVersion(rng *rand.Rand, k string) Record {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	nodes := []string{"a", "b"}
	owner := nodes[rng.IntN(2)]
	rec := Record{
		RequestKey: k, PayloadHash: "h-" + k,
		Attempt: uint64(rng.IntN(3)), Epoch: uint64(rng.IntN(3)),
		Phase: PhaseSubmitted, Result: ResultPending,
		IngressNode: pick("a", "b"), OwnerNode: owner, ReplicationCount: uint64(1 + rng.IntN(2)),
		ReplicaStatus:  []ReplicaStatus{ReplicaUnassigned, ReplicaPreparing, ReplicaMirrored, ReplicaOwnerLost, ReplicaDegradedContinuing}[rng.IntN(5)],
		Health:         []Health{HealthLocalOnly, HealthHealthy, HealthDegraded, HealthUnavailable}[rng.IntN(4)],
		Role:           []Role{RolePrimary, RoleStandby}[rng.IntN(2)],
		RoutedRemotely: rng.IntN(2) == 0, FellBackLocally: rng.IntN(2) == 0,
		RuntimeName: pick("W.run", "W.other"), Kind: Kind(rng.IntN(2)),
		SubmittedAt: time.Date(2026, 1, 1, 0, 0, rng.IntN(2), 0, time.UTC),
	}
	if rec.ReplicationCount == 2 {
		rec.ReplicaNode = nodes[0]
		if owner == nodes[0] {
			rec.ReplicaNode = nodes[1]
		}
	}
	switch rng.IntN(4) {
	case 1:
		rec.Phase, rec.Result, rec.ExecutionNode = PhaseCompleted, ResultSucceeded, pick("a", "b")
		rec.CompletedAt = rec.SubmittedAt.Add(time.Duration(1+rng.IntN(2)) * time.Second)
		if rng.IntN(2) == 0 {
			rec.Response = []byte(pick("r1", "r2"))
		}
	case 2, 3:
		rec.Phase, rec.Result = PhaseRejected, ResultRejected
		rec.ReplicaStatus, rec.Health = ReplicaRejected, HealthUnavailable
		rec.Error = pick(string(ReasonReplicaRequiredUnavailable), "owner_lost:a", "handler_error: boom")
		rec.Refused = rng.IntN(2) == 0
		rec.CompletedAt = rec.SubmittedAt.Add(time.Second)
	}
	if err := rec.Validate(); err != nil {
		panic(fmt.Sprintf("randomVersion made an invalid record %+v: %v", rec, err))
	}
	return rec
}

// mergedView merges versions into a fresh registry in order and returns what
// it stores for key, in the role of a standby (the role is local and is not
// part of what two nodes must agree on).
func mergedView(t *testing.T, key string, versions ...Record) Record {
	t.Helper()
	r, _ := newReg("c", RoleStandby, 9)
	for _, v := range versions {
		if _, _, err := r.Merge(v, "peer"); err != nil {
			t.Fatalf("merge %+v: %v", v, err)
		}
	}
	return mustGet(t, r, key)
}

// Two nodes that hold different versions of a key and exchange them end up
// with the same record, field for field, whichever arrives first; merging a
// version again changes nothing. This is what makes records agree after a
// partition heals, even when each side numbered its attempts independently.
func TestMergeIsCommutativeAndIdempotent(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 4))
	for i := range 20000 {
		a, b := randomVersion(rng, "k"), randomVersion(rng, "k")
		ab := mergedView(t, "k", a, b)
		ba := mergedView(t, "k", b, a)
		if !reflect.DeepEqual(ab, ba) {
			t.Fatalf("pair %d: merge order matters:\n a   %+v\n b   %+v\n a,b %+v\n b,a %+v", i, a, b, ab, ba)
		}
		if again := mergedView(t, "k", a, b, a, b); !reflect.DeepEqual(again, ab) {
			t.Fatalf("pair %d: merging again changed the record:\n %+v\n %+v", i, ab, again)
		}
		if prefer(&a, &b) && prefer(&b, &a) {
			t.Fatalf("pair %d: each version preferred over the other:\n %+v\n %+v", i, a, b)
		}
		// The kept version is one of the two, never a blend.
		a.Role, b.Role = RoleStandby, RoleStandby
		if !reflect.DeepEqual(ab, a) && !reflect.DeepEqual(ab, b) {
			t.Fatalf("pair %d: merge made a third version %+v", i, ab)
		}
		// Acknowledged work is never discarded for a different, refused
		// attempt (an attempt still preparing was never acknowledged).
		if a.Refused != b.Refused && !sameAttempt(&a, &b) && !undecided(&a) && !undecided(&b) && ab.Refused {
			t.Fatalf("pair %d: a refused attempt replaced another one:\n %+v\n %+v", i, a, b)
		}
	}
}

// Whatever a caller passes, no record is ever stored rejected without a
// reason, and a peer's rejected record without one is refused at the door.
func TestRejectionsAlwaysCarryAReason(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 23))
	r, _ := newReg("a", RolePrimary, 0)
	for i := range 2000 {
		key := fmt.Sprintf("k%d", rng.IntN(40))
		pl := Placement{Owner: "a", Replica: "b"}
		if rng.IntN(2) == 0 {
			pl.Replica = ""
		}
		switch rng.IntN(6) {
		case 0, 1:
			_, _ = r.Submit(SubmitRequest{Key: key, Hash: "h", RuntimeName: "W.run", Count: uint64(1 + rng.IntN(3)), Ingress: "a", Placement: pl})
		case 2:
			if rec, ok := r.Get(key); ok {
				_, _ = r.Reject(key, rec.Attempt, "")
			}
		case 3:
			if rec, ok := r.Get(key); ok {
				_, _ = r.Refuse(key, rec.Attempt, "")
			}
		case 4:
			if rec, ok := r.Get(key); ok {
				_, _ = r.Complete(key, rec.Attempt, "a", r.FenceGeneration())
			}
		case 5:
			in := randomVersion(rng, key)
			in.PayloadHash = "h"
			_, _, _ = r.Merge(in, "b")
		}
		for _, rec := range r.Records() {
			if rec.Phase == PhaseRejected && rec.Error == "" {
				t.Fatalf("step %d: rejected record without a reason: %+v", i, rec)
			}
			if rec.Refused && rec.Phase != PhaseRejected {
				t.Fatalf("step %d: refused record not rejected: %+v", i, rec)
			}
		}
	}
	if rec, _ := r.Get("k0"); rec.RequestKey != "" {
		bad := rec
		bad.Phase, bad.Result, bad.Error = PhaseRejected, ResultRejected, ""
		if _, _, err := r.Merge(bad, "b"); err == nil {
			t.Fatal("a rejected record without a reason was merged")
		}
	}
}

// Every reason the registry itself writes is in the documented set.
func TestRegistryReasonsAreDocumented(t *testing.T) {
	fixed, _ := DocumentedReasons()
	for _, r := range fixed {
		if !Documented(string(r)) {
			t.Fatalf("%q is not documented", r)
		}
	}
	for _, s := range []string{string(UnsupportedReplicationCount(3)), "owner_lost:b@h:1", "replica_lost:b@h:1",
		"replication_source_lost:b@h:1", "dispatch_failed:dispatch to b: cluster session closed", "handler_error: boom",
		"handler_panicked: nil map", "declared_handler_not_registered:W.run"} {
		if !Documented(s) {
			t.Fatalf("%q is not documented", s)
		}
	}
	for _, s := range []string{"", "owner_lost:", "boom", "handler_error"} {
		if Documented(s) {
			t.Fatalf("%q counts as documented", s)
		}
	}
}
