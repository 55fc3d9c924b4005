package cluster

import (
	"fmt"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// A node that receives a version of a record that loses to its own answers
// with its own. Nothing else would ever tell the peer (records are sent when
// they change), and the chaos soak found pairs that ended holding two
// different refusals of one key for good. The test hands the primary a
// losing version directly, as if it came from the standby, and checks that
// the standby learns the primary's version.
func TestLosingPeerVersionIsAnsweredWithTheKeptOne(t *testing.T) {
	c := newAckCluster(t)
	p, s, _, _ := c.pair()
	now := time.Now().UTC()
	kept := continuity.Record{
		RequestKey: "merge-reply-1", PayloadHash: "payload", Attempt: 50,
		Phase: continuity.PhaseRejected, Result: continuity.ResultRejected,
		IngressNode: p.Name(), OwnerNode: p.Name(), ReplicationCount: 2,
		ReplicaStatus: continuity.ReplicaRejected, Health: continuity.HealthUnavailable,
		Error: string(continuity.ReasonReplicaRequiredUnavailable), Refused: true,
		RuntimeName: gatedMirrored, Kind: continuity.KindWork, SubmittedAt: now, CompletedAt: now,
	}
	if _, changed, err := p.reg.Merge(kept, "test"); err != nil || !changed {
		t.Fatalf("seed the primary's version: changed %v, %v", changed, err)
	}
	losing := kept
	losing.Attempt, losing.IngressNode, losing.OwnerNode = 3, s.Name(), s.Name()
	losing.SubmittedAt = now.Add(-time.Second)
	p.merge(&losing, s.Name())
	eventually(t, 10*time.Second, func() error {
		r, ok := s.Record(kept.RequestKey)
		if !ok || r.Attempt != kept.Attempt {
			return fmt.Errorf("standby holds %+v (found %v), want attempt %d", r, ok, kept.Attempt)
		}
		return nil
	})
}

// The versions of one key are not ordered once and for all: a pending
// attempt outranks a refused one and is outranked once it is refused itself.
// The long chaos soak ended with each node holding the version the other
// had given up. A node whose merge replaces a version of another attempt now
// tells its peer what it keeps. Here the standby holds the refused attempt
// X, as the primary does, when a late copy of the primary's former version
// Y (a later refused attempt) reaches it: the standby switches to Y, and
// the primary must follow.
func TestSwitchingAttemptsIsToldToThePeer(t *testing.T) {
	c := newAckCluster(t)
	p, s, _, _ := c.pair()
	now := time.Now().UTC()
	x := continuity.Record{
		RequestKey: "switch-1", PayloadHash: "payload", Attempt: 2,
		Phase: continuity.PhaseRejected, Result: continuity.ResultRejected,
		IngressNode: s.Name(), OwnerNode: s.Name(), ReplicaNode: p.Name(), ReplicationCount: 2,
		ReplicaStatus: continuity.ReplicaRejected, Health: continuity.HealthUnavailable,
		Error: string(continuity.ReasonAttemptMismatch), Refused: true,
		RuntimeName: gatedMirrored, Kind: continuity.KindWork, SubmittedAt: now, CompletedAt: now,
	}
	y := x
	y.Attempt, y.IngressNode, y.OwnerNode, y.ReplicaNode = 50, p.Name(), p.Name(), ""
	y.Error = string(continuity.ReasonReplicaRequiredUnavailable)
	y.SubmittedAt, y.CompletedAt = now.Add(-time.Second), now.Add(-time.Second)
	for _, n := range []*Node{p, s} {
		if _, changed, err := n.reg.Merge(x, "test"); err != nil || !changed {
			t.Fatalf("seed %s: changed %v, %v", n.Name(), changed, err)
		}
	}
	s.merge(&y, p.Name()) // a late copy of the primary's former version
	eventually(t, 10*time.Second, func() error {
		for _, n := range []*Node{p, s} {
			if r, ok := n.Record(x.RequestKey); !ok || r.Attempt != y.Attempt {
				return fmt.Errorf("%s holds attempt %d, want %d", n.Name(), r.Attempt, y.Attempt)
			}
		}
		return nil
	})
}
