package mesh

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
	p.merge(losing, s.Name())
	eventually(t, 10*time.Second, func() error {
		r, ok := s.Record(kept.RequestKey)
		if !ok || r.Attempt != kept.Attempt {
			return fmt.Errorf("standby holds %+v (found %v), want attempt %d", r, ok, kept.Attempt)
		}
		return nil
	})
}
