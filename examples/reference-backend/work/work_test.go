package work

import (
	"context"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh"
)

// waitRecord polls the standalone node until key's record is terminal.
func waitRecord(t *testing.T, n *mesh.Node, key string) mesh.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if rec, ok := n.Record(key); ok && rec.Phase != "submitted" {
			return rec
		}
		if time.Now().After(deadline) {
			rec, _ := n.Record(key)
			t.Fatalf("record %s not terminal after 10s: %+v", key, rec)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunJobTakesItsJobFromTheRequestKey, on a standalone node: the startup
// runs do nothing and succeed; Job (count 2) is refused without a peer, so a
// standalone node submits LocalJob; a submitted job runs under its own key
// and, with no runner set up, is rejected with that reason instead of
// running against nothing.
func TestRunJobTakesItsJobFromTheRequestKey(t *testing.T) {
	n := mesh.Default()
	for _, key := range []string{"startup::work.RunJob", "startup::work.RunJobLocal"} {
		if rec := waitRecord(t, n, key); rec.Result != "succeeded" {
			t.Fatalf("startup run %s: %+v", key, rec)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const key = "00000000-0000-4000-8000-000000000001"
	if res, err := n.Submit(ctx, Job, "00000000-0000-4000-8000-000000000002", "hash"); err != nil ||
		res.Outcome != mesh.OutcomeRejected || res.Record.Error != "replica_required_unavailable" {
		t.Fatalf("count-2 submit on a standalone node: %+v %v", res, err)
	}
	res, err := n.Submit(ctx, LocalJob, key, "hash")
	if err != nil || res.Outcome != mesh.OutcomeCreated {
		t.Fatalf("submit: %+v %v", res, err)
	}
	rec := waitRecord(t, n, key)
	if rec.Result != "rejected" || !strings.Contains(rec.Error, errNotStarted.Error()) {
		t.Fatalf("job without a runner: %+v", rec)
	}
}
