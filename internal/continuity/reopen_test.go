package continuity

import "testing"

// A route record that ended outcome_unknown is reopened under a new attempt
// owned and run here; anything else, or a stale attempt, is refused and
// left as it was.
func TestReopen(t *testing.T) {
	r, _ := newReg("b", RoleStandby, 0)
	route := func(x *Record) { x.Kind, x.RuntimeName = KindRoute, "api.Transfer" }
	ok(t)(r.MirrorPrepare(mkRecord("route", at(0, 4), route)))
	ok(t)(r.MirrorPrepare(mkRecord("work", at(0, 5))))
	r.NodeLost("a")
	if _, err := r.Promote("a"); err != nil {
		t.Fatal(err)
	}
	// Still pending: nothing to reopen.
	_, err := r.Reopen("route", 4)
	wantReason(t, err, ReasonPhase)
	ok(t)(r.Reject("route", 4, string(ReasonOutcomeUnknown)))
	ok(t)(r.Reject("work", 5, string(ReasonOutcomeUnknown)))
	_, err = r.Reopen("work", 5) // only routes are re-run on a retry
	wantReason(t, err, ReasonPhase)
	_, err = r.Reopen("route", 3)
	wantReason(t, err, ReasonAttemptMismatch)
	_, err = r.Reopen("missing", 1)
	wantReason(t, err, ReasonRequestKeyNotFound)

	got := ok(t)(r.Reopen("route", 4))
	if got.Attempt <= 5 || got.Epoch != 1 || !got.Pending() || got.OwnerNode != "b" || got.IngressNode != "b" ||
		got.ReplicaNode != "" || got.Error != "" || got.Refused || len(got.Response) != 0 || !got.CompletedAt.IsZero() ||
		got.Kind != KindRoute || got.PayloadHash != "h-route" {
		t.Fatalf("reopened = %+v", got)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("reopened record invalid: %v", err)
	}
	if e := lastEntry(t, r); e.Transition != TransitionRecoveryRollover || e.Reason != string(ReasonOutcomeUnknown) {
		t.Fatalf("entry = %+v", e)
	} else {
		wantMeta(t, e, "previous_attempt_id", "attempt-4", "next_attempt_id", got.AttemptID(),
			"previous_owner", "a", "next_owner", "b", "next_replica", "")
	}
	// A second retry holding the old attempt cannot reopen it again.
	_, err = r.Reopen("route", 4)
	wantReason(t, err, ReasonAttemptMismatch)
	done := ok(t)(r.CompleteWithResponse("route", got.Attempt, "b", r.FenceGeneration(), []byte("stored")))
	if done.Phase != PhaseCompleted || string(done.Response) != "stored" {
		t.Fatalf("completed = %+v", done)
	}
}
