package continuity

import "time"

// Reopen moves the route record key, which ended with ReasonOutcomeUnknown
// under attempt prev, to a new pending attempt that this node owns and runs
// at the current epoch: a retry of a route declared re-runnable. The new
// attempt has no replica (like a recovery rollover, it runs where the
// retry arrived); it wins over the ended attempt wherever the two meet, by
// its higher attempt. prev must be the attempt the caller saw, so two
// retries cannot both reopen the record; a record that is not a route, did
// not end with ReasonOutcomeUnknown or moved on is refused with
// ReasonPhase or ReasonAttemptMismatch.
func (r *Registry) Reopen(key string, prev uint64) (Record, error) {
	r.lock()
	defer r.unlock()
	rec, ok := r.getLocked(key)
	switch {
	case !ok:
		return Record{}, reasonError(ReasonRequestKeyNotFound)
	case rec.Attempt != prev:
		return r.view(&rec), reasonError(ReasonAttemptMismatch)
	case rec.Kind != KindRoute || rec.Phase != PhaseRejected || rec.Error != string(ReasonOutcomeUnknown):
		return r.view(&rec), reasonError(ReasonPhase)
	}
	prevOwner := rec.OwnerNode
	rec.Attempt = r.allocateAttemptLocked()
	rec.Epoch = r.epoch
	rec.Phase, rec.Result = PhaseSubmitted, ResultPending
	rec.OwnerNode, rec.ReplicaNode, rec.IngressNode = r.self, "", r.self
	rec.ReplicaStatus, rec.Health, rec.Error, rec.Refused = ReplicaUnassigned, HealthLocalOnly, "", false
	rec.RoutedRemotely, rec.FellBackLocally = false, true
	rec.ExecutionNode, rec.Response, rec.Output = "", nil, nil
	rec.SubmittedAt, rec.CompletedAt = r.now().UTC(), time.Time{}
	if err := r.putLocked(&rec); err != nil {
		return Record{}, err
	}
	r.emitRecord(TransitionRecoveryRollover, &rec, string(ReasonOutcomeUnknown),
		KV{"previous_attempt_id", FormatAttempt(prev)}, KV{"next_attempt_id", rec.AttemptID()},
		KV{"previous_owner", prevOwner}, KV{"next_owner", r.self}, KV{"next_replica", ""})
	return r.view(&rec), nil
}
