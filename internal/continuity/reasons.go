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
	ReasonHandlerNotRegistered       Reason = "declared_handler_not_registered"
	ReasonHandlerPanicked            Reason = "handler_panicked"
	ReasonOwnerUnreachable           Reason = "owner_unreachable"
	ReasonForwardTimeout             Reason = "route_forward_timeout"
	ReasonShuttingDown               Reason = "node_shutting_down"
	// Refusals of a clustered route's request before any record exists
	// (answered 400 or 413, never stored).
	ReasonRequestKeyReserved  Reason = "request_key_reserved"
	ReasonRequestKeyInvalid   Reason = "request_key_invalid"
	ReasonRequestBodyTooLarge Reason = "request_body_too_large"
)

// UnsupportedReplicationCount is the durable rejection for counts of three or more.
func UnsupportedReplicationCount(n uint64) Reason {
	return Reason("unsupported_replication_count:" + itoa(n))
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
