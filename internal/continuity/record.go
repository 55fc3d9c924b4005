package continuity

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Role is a node's authority role.
type Role string

// Roles. Exactly one node of a healthy pair is RolePrimary.
const (
	RolePrimary Role = "primary"
	RoleStandby Role = "standby"
)

// Phase is the lifecycle phase of a record.
type Phase string

// Phases. Completed and rejected are terminal.
const (
	PhaseSubmitted Phase = "submitted"
	PhaseCompleted Phase = "completed"
	PhaseRejected  Phase = "rejected"
)

// Terminal reports whether p is completed or rejected.
func (p Phase) Terminal() bool { return p == PhaseCompleted || p == PhaseRejected }

// Result is always paired with a phase: submitted/pending, completed/succeeded,
// rejected/rejected.
type Result string

// Results.
const (
	ResultPending   Result = "pending"
	ResultSucceeded Result = "succeeded"
	ResultRejected  Result = "rejected"
)

// ReplicaStatus says how far a record's mirror got.
type ReplicaStatus string

// Replica statuses.
const (
	ReplicaUnassigned         ReplicaStatus = "unassigned"
	ReplicaPreparing          ReplicaStatus = "preparing"
	ReplicaMirrored           ReplicaStatus = "mirrored"
	ReplicaOwnerLost          ReplicaStatus = "owner_lost"
	ReplicaRejected           ReplicaStatus = "rejected"
	ReplicaDegradedContinuing ReplicaStatus = "degraded_continuing"
)

// Health is a record's (or, aggregated, a node's) replication health.
type Health string

// Health values.
const (
	HealthLocalOnly   Health = "local_only"
	HealthHealthy     Health = "healthy"
	HealthDegraded    Health = "degraded"
	HealthUnavailable Health = "unavailable"
)

// Record is the continuity record of one request key. Records are values: the
// registry hands out copies, so callers may keep and compare them freely.
type Record struct {
	RequestKey       string
	PayloadHash      string
	Attempt          uint64 // rendered as AttemptID()
	Phase            Phase
	Result           Result
	IngressNode      string
	OwnerNode        string
	ReplicaNode      string // "" when there is no replica
	ReplicationCount uint64
	ReplicaStatus    ReplicaStatus
	Role             Role // the local node's role (records are re-projected)
	// Epoch is the promotion epoch under which the current attempt was
	// allocated (at submission or at a recovery rollover). It moves only
	// with the attempt, never with the node's later epoch; merge prefers
	// the higher one, and handlers receive it as their fencing token
	// (Identity.Epoch). Operators see it as promotion_epoch.
	Epoch           uint64
	Health          Health
	ExecutionNode   string // "" until completed
	RoutedRemotely  bool
	FellBackLocally bool
	Error           string
	RuntimeName     string // declared_handler_runtime_name
	Kind            Kind
	SubmittedAt     time.Time
	CompletedAt     time.Time // zero until terminal
	// Response is the encoded outcome of a route record that carries a client
	// idempotency key, kept so a retried request can be answered byte for byte.
	Response []byte
	// Refused marks a rejected attempt that its ingress refused while
	// submitting it (no replica, a failed prepare or dispatch, a route
	// request it could not get served): no client was told it was accepted,
	// so it carries no acknowledged work. Merge never keeps it over another
	// attempt of the key (see prefer).
	Refused bool
	// Input is the encoded input of typed declared work, kept so the owner
	// (or, after a failover, the survivor) runs the work with it. Nil for
	// routes and untyped work.
	Input []byte
	// Output is the encoded output of completed typed declared work, kept so
	// a handle on any node, or a later lookup, can read it. Nil otherwise.
	Output []byte
}

// Kind says what submitted a record.
type Kind uint8

// Record kinds. Startup work is KindWork with a startup:: key.
const (
	KindWork  Kind = 0
	KindRoute Kind = 1
)

// AttemptID renders the attempt as "attempt-<n>".
func (r Record) AttemptID() string { return FormatAttempt(r.Attempt) }

// FormatAttempt renders n as "attempt-<n>".
func FormatAttempt(n uint64) string {
	var b [32]byte
	return string(strconv.AppendUint(append(b[:0], "attempt-"...), n, 10))
}

// Pending reports whether the record is submitted and not yet terminal.
func (r Record) Pending() bool { return r.Phase == PhaseSubmitted }

// Key prefixes that give a record its kind.
const (
	StartupKeyPrefix   = "startup::"
	StartupHashPrefix  = "startup-payload::"
	RouteKeyPrefix     = "http-route::"
	PlacementKeyPrefix = "request::"
)

// reservedKeyPrefixes are the prefixes of the keys the runtime makes itself.
var reservedKeyPrefixes = [...]string{RouteKeyPrefix, StartupKeyPrefix, PlacementKeyPrefix}

// ReservedKey reports whether key starts with a prefix the runtime keeps for
// its own records (http-route::, startup::, request::). A key from outside the
// runtime — an HTTP client's Idempotency-Key, a Node.Submit caller's key — is
// refused when it does, so it can never name a route, startup or minted
// record.
func ReservedKey(key string) bool {
	for _, p := range reservedKeyPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// SameKeySpace reports whether a submission of kind and runtime name may be
// answered from rec: a record is only ever a duplicate of a request of its
// own kind (route, work) for the same declared handler.
func SameKeySpace(rec *Record, kind Kind, runtimeName string) bool {
	return rec.Kind == kind && rec.RuntimeName == runtimeName
}

// Validate checks the invariants every stored or received record must hold.
func (r Record) Validate() error { return validate(&r) }

// validate is Validate without copying the record.
func validate(r *Record) error {
	switch {
	case r.RequestKey == "":
		return reasonError(ReasonRequestKeyMissing)
	case r.PayloadHash == "":
		return reasonError(ReasonPayloadHashMissing)
	case r.OwnerNode == "":
		return reasonError(ReasonOwnerNodeMissing)
	case r.ReplicationCount == 0:
		return reasonError(ReasonInvalidReplicationCount)
	case r.ReplicaNode != "" && r.ReplicaNode == r.OwnerNode:
		return reasonError(ReasonReplicaMatchesOwner)
	}
	switch r.Phase {
	case PhaseSubmitted:
		if r.Result != ResultPending {
			return fmt.Errorf("phase %s with result %s", r.Phase, r.Result)
		}
	case PhaseCompleted:
		if r.Result != ResultSucceeded {
			return fmt.Errorf("phase %s with result %s", r.Phase, r.Result)
		}
	case PhaseRejected:
		if r.Result != ResultRejected {
			return fmt.Errorf("phase %s with result %s", r.Phase, r.Result)
		}
		if r.Error == "" {
			return reasonError(ReasonUnspecified)
		}
	default:
		return fmt.Errorf("unknown phase %q", r.Phase)
	}
	if r.Refused && r.Phase != PhaseRejected {
		return fmt.Errorf("refused record in phase %s", r.Phase)
	}
	return nil
}
