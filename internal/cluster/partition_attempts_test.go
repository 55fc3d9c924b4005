package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Found by the chaos soak's partition runs: one request retried on both sides
// of a cut ran twice under the same attempt id, because both nodes kept
// counting from the watermark they shared. Each side now allocates from its
// own slot while it has no peer, so the two executions are told apart.
func TestBothSidesOfACutNeverShareAnAttempt(t *testing.T) {
	c := newAckCluster(t)
	p, s, _, _ := c.pair()
	c.work.release()
	c.fn.Partition(p.Name(), s.Name())
	eventually(t, 10*time.Second, func() error {
		if len(p.Peers()) != 0 || len(s.Peers()) != 0 {
			return fmt.Errorf("still linked: %v / %v", p.Peers(), s.Peers())
		}
		return nil
	})
	// Both sides start from one watermark, as after a cut that follows a
	// burst of mirrored work.
	w := max(p.reg.Watermark(), s.reg.Watermark()) + 10
	p.reg.RaiseWatermark(w)
	s.reg.RaiseWatermark(w)
	for i := range 4 {
		key := fmt.Sprintf("both-sides-%d", i)
		a, err := p.Submit(context.Background(), ackDecl(gatedSingle), key, "payload")
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Submit(context.Background(), ackDecl(gatedSingle), key, "payload")
		if err != nil {
			t.Fatal(err)
		}
		if a.Outcome != OutcomeCreated || b.Outcome != OutcomeCreated {
			t.Fatalf("%s: %s on the primary, %s on the standby; want created on both sides of the cut", key, a.Outcome, b.Outcome)
		}
		if a.Record.Attempt == b.Record.Attempt {
			t.Fatalf("%s: both sides allocated attempt %d", key, a.Record.Attempt)
		}
	}
	c.fn.Heal()
	waitLinked(t, p, s)
	waitAgreement(t, p, s)
}
