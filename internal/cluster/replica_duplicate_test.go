package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// Found by the chaos soak: a node holding the mirrored copy of another
// node's pending attempt answered a retried Submit "duplicate, submitted"
// while the ingress had not yet heard the replica's acknowledgement; the
// ingress then refused the attempt (its replica looked unavailable), and
// the acknowledged work never ran. The replica now refuses the retry with
// record_state_unconfirmed while the copy is pending. Its acknowledgement is
// delayed on the fault network so the retry always lands in that window.
func TestReplicaDoesNotAcknowledgeAnUndecidedCopy(t *testing.T) {
	c := newAckCluster(t)
	p, s, _, _ := c.pair()
	key := keyPlaced(t, "undecided", p.Name(), p, s) // ingress and owner: the primary
	c.fn.Delay(s.Name(), p.Name(), 300*time.Millisecond)
	created := make(chan SubmitResult, 1)
	go func() {
		res, err := p.Submit(context.Background(), ackDecl(gatedMirrored), key, "payload")
		if err != nil {
			t.Errorf("submit on the primary: %v", err)
		}
		created <- res
	}()
	waitRecordOf(t, s, key, func(r continuity.Record) error {
		if r.ReplicaStatus != continuity.ReplicaMirrored || !r.Pending() {
			return fmt.Errorf("standby holds %+v", r)
		}
		return nil
	})
	res, err := s.Submit(context.Background(), ackDecl(gatedMirrored), key, "payload")
	if err == nil || RefusalReason(err) != string(continuity.ReasonRecordUnconfirmed) {
		t.Fatalf("retry on the replica: %+v, %v; want a refusal with record_state_unconfirmed", res, err)
	}
	if first := <-created; first.Outcome != OutcomeCreated {
		t.Fatalf("first submission: %+v", first)
	}
	c.fn.Heal()
	c.work.release()
}
