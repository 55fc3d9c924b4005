package continuity

// Reason is a machine-readable failure or refusal reason. Reasons are stored in
// records, sent on the wire and grepped by operators, so they never change.
type Reason string

// Reasons stored in records, diagnostics and operator replies.
const (
	ReasonRequestKeyMissing          Reason = "request_key_missing"
	ReasonRequestKeyNotFound         Reason = "request_key_not_found"
	ReasonRequestKeyConflict         Reason = "request_key_conflict"
	ReasonPayloadHashMissing         Reason = "payload_hash_missing"
	ReasonOwnerNodeMissing           Reason = "owner_node_missing"
	ReasonInvalidReplicationCount    Reason = "invalid_replication_count"
	ReasonReplicaMatchesOwner        Reason = "replica_matches_owner"
	ReasonReplicaRequiredUnavailable Reason = "replica_required_unavailable"
	ReasonReplicaPrepareTimeout      Reason = "replica_prepare_timeout"
	ReasonReplicaTargetMismatch      Reason = "replica_prepare_target_mismatch"
	ReasonAttemptMismatch            Reason = "attempt_id_mismatch"
	ReasonOwnerNodeMismatch          Reason = "owner_node_mismatch"
	ReasonAlreadyCompleted           Reason = "transition_rejected:already_completed"
	ReasonPhase                      Reason = "transition_rejected:phase"
	ReasonExecutionNodeMissing       Reason = "execution_node_missing"
	ReasonStaleEpoch                 Reason = "stale_epoch_rejected"
	ReasonFenced                     Reason = "fenced_by_higher_epoch"
	ReasonQuarantined                Reason = "authority_unconfirmed_after_pause"
	// ReasonArbiterUnavailable refuses what a primary would do once its
	// lease from the arbiter (MESH_ARBITER) is past its deadline: it could
	// not renew it, so another node may soon hold it.
	ReasonArbiterUnavailable   Reason = "arbiter_unavailable"
	ReasonHandlerNotRegistered Reason = "declared_handler_not_registered"
	ReasonHandlerPanicked      Reason = "handler_panicked"
	ReasonOwnerUnreachable     Reason = "owner_unreachable"
	ReasonForwardTimeout       Reason = "route_forward_timeout"
	ReasonShuttingDown         Reason = "node_shutting_down"
	// Refusals of a clustered route's request before any record exists
	// (answered 400 or 413, never stored).
	ReasonRequestKeyReserved  Reason = "request_key_reserved"
	ReasonRequestKeyInvalid   Reason = "request_key_invalid"
	ReasonRequestBodyTooLarge Reason = "request_body_too_large"
	// ReasonRecordUnconfirmed refuses a duplicate submission whose stored
	// record this node cannot vouch for at its current epoch: it is paused
	// or fenced, or it holds a copy of someone else's attempt without a
	// synchronised link to that node, or the attempt's prepare is undecided.
	ReasonRecordUnconfirmed Reason = "record_state_unconfirmed"
	// ReasonRequestInProgress answers a retried route request whose first
	// attempt is still running (409).
	ReasonRequestInProgress Reason = "request_in_progress"
	// ReasonResponseNotReplayable answers a retried route request whose
	// completed attempt kept no response to replay (409).
	ReasonResponseNotReplayable Reason = "response_not_replayable"
	// ReasonInvalidForwardedRequest refuses a forwarded route request the
	// owner cannot rebuild.
	ReasonInvalidForwardedRequest Reason = "invalid_forwarded_request"
	// ReasonStoreUnavailable refuses a request whose record the node could
	// not make durable (the record store's disk is full or failing): the
	// client is not told it was accepted.
	ReasonStoreUnavailable Reason = "record_store_unavailable"
	// ReasonResultTooLarge rejects typed work whose encoded output exceeds
	// the configured bound (MESH_WORK_MAX_RESULT_BYTES): the output is
	// never truncated.
	ReasonResultTooLarge Reason = "result_too_large"
	// ReasonInputTooLarge refuses a typed submission whose encoded input
	// exceeds the same bound, before any record exists.
	ReasonInputTooLarge Reason = "input_too_large"
	// ReasonWorkQueueFull refuses a submission of declared work, before
	// any record exists, when the node's queue of work waiting for a
	// running slot (MESH_MAX_RUNNING_WORK) stayed full until the caller's
	// context ended.
	ReasonWorkQueueFull Reason = "work_queue_full"
	// ReasonOutcomeUnknown ends a request whose owner was lost while it
	// held the request (it may have run the handler, in full or in part)
	// before anyone heard its outcome. Unlike a refusal, which means the
	// handler did not run, it tells the client that the work may have
	// happened: a retry of the same key answers it again, unless the route
	// is declared re-runnable (mesh.Rerunnable), where the retry runs the
	// handler again under a new attempt.
	ReasonOutcomeUnknown Reason = "outcome_unknown"
	// ReasonUnspecified stands in for a refusal or rejection that reached
	// the registry or the HTTP layer without a reason. It marks a defect in
	// Mesh, never a normal outcome; the node also logs it as an error.
	ReasonUnspecified Reason = "reason_unspecified"
)

// Reasons that carry a detail after a colon, such as "owner_lost:<node>".
const (
	ReasonPrefixOwnerLost             = "owner_lost:"
	ReasonPrefixReplicaLost           = "replica_lost:"
	ReasonPrefixReplicationSourceLost = "replication_source_lost:"
	ReasonPrefixDispatchFailed        = "dispatch_failed:"
	ReasonPrefixHandlerError          = "handler_error:"
	ReasonPrefixUnsupportedCount      = "unsupported_replication_count:"
)

// documentedReasons is every fixed reason a record, a refusal or an
// operator reply may carry.
var documentedReasons = []Reason{
	ReasonRequestKeyMissing, ReasonRequestKeyNotFound, ReasonRequestKeyConflict, ReasonPayloadHashMissing,
	ReasonOwnerNodeMissing, ReasonInvalidReplicationCount, ReasonReplicaMatchesOwner,
	ReasonReplicaRequiredUnavailable, ReasonReplicaPrepareTimeout, ReasonReplicaTargetMismatch,
	ReasonAttemptMismatch, ReasonOwnerNodeMismatch, ReasonAlreadyCompleted, ReasonPhase,
	ReasonExecutionNodeMissing, ReasonStaleEpoch, ReasonFenced, ReasonQuarantined, ReasonArbiterUnavailable,
	ReasonHandlerNotRegistered, ReasonHandlerPanicked, ReasonOwnerUnreachable, ReasonForwardTimeout,
	ReasonShuttingDown, ReasonRecordUnconfirmed, ReasonRequestInProgress, ReasonResponseNotReplayable,
	ReasonInvalidForwardedRequest, ReasonUnspecified, ReasonStoreUnavailable,
	ReasonRequestKeyReserved, ReasonRequestKeyInvalid, ReasonRequestBodyTooLarge,
	ReasonResultTooLarge, ReasonInputTooLarge, ReasonWorkQueueFull, ReasonOutcomeUnknown,
}

// detailPrefixes are the reasons that carry a detail: the ones above and
// those formed from a fixed reason plus ":<detail>".
var detailPrefixes = []string{
	ReasonPrefixOwnerLost, ReasonPrefixReplicaLost, ReasonPrefixReplicationSourceLost,
	ReasonPrefixDispatchFailed, ReasonPrefixHandlerError, ReasonPrefixUnsupportedCount,
	string(ReasonHandlerPanicked) + ":", string(ReasonHandlerNotRegistered) + ":",
}

// DocumentedReasons returns every fixed reason, and the prefixes of the
// reasons that carry a detail, as the documentation lists them.
func DocumentedReasons() (fixed []Reason, prefixes []string) {
	return append([]Reason(nil), documentedReasons...), append([]string(nil), detailPrefixes...)
}

// Documented reports whether s is a reason from the documented set: a
// fixed reason, or a documented prefix followed by a non-empty detail.
func Documented(s string) bool {
	for _, r := range documentedReasons {
		if s == string(r) {
			return true
		}
	}
	for _, p := range detailPrefixes {
		if len(s) > len(p) && s[:len(p)] == p {
			return true
		}
	}
	return false
}

// UnsupportedReplicationCount is the durable rejection for counts of three or more.
func UnsupportedReplicationCount(n uint64) Reason {
	return Reason(ReasonPrefixUnsupportedCount + itoa(n))
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// Error is an error carrying a Reason; errors.As finds it through wrapping.
type Error struct{ Reason Reason }

func (e *Error) Error() string { return string(e.Reason) }

func reasonError(r Reason) error { return &Error{Reason: r} }

// ReasonOf returns the reason carried by err, or the error text.
func ReasonOf(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := err.(*Error); ok {
		return string(e.Reason)
	}
	return err.Error()
}
