package mesh

import "meshgo.dev/mesh/internal/continuity"

// Aliases of the types that package mesh hands out but that are defined in
// its internal packages, so code outside the module can name them
// (var r mesh.Record). Each alias has the name of the type it stands for.
// TestExportedAPINamesNoInternalType fails when an exported signature
// reaches an internal type with no alias here.

// Record is the continuity record of one request key, as Node.Record,
// Node.Records and SubmitResult return it. Records are values: callers may
// keep and compare them freely.
type Record = continuity.Record

// Role is a node's authority role: RolePrimary or RoleStandby.
type Role = continuity.Role

// Phase is the lifecycle phase of a record: PhaseSubmitted, then one of the
// terminal phases PhaseCompleted and PhaseRejected.
type Phase = continuity.Phase

// Result is paired with a record's phase: submitted/pending,
// completed/succeeded, rejected/rejected.
type Result = continuity.Result

// ReplicaStatus says how far a record's mirror got.
type ReplicaStatus = continuity.ReplicaStatus

// ReplicationHealth is a record's (or, aggregated, a node's) replication
// health, the JSON key replication_health. (Health, the answer of the
// liveness and readiness probes, is another type.)
type ReplicationHealth = continuity.Health

// Kind says what submitted a record: declared work (KindWork, also startup
// work) or a clustered route (KindRoute).
type Kind = continuity.Kind

// Snapshot is a copy of a node's diagnostic ring, as Node.Diagnostics
// returns it.
type Snapshot = continuity.Snapshot

// Entry is one diagnostic transition of a Snapshot.
type Entry = continuity.Entry

// KV is one ordered metadata pair of an Entry.
type KV = continuity.KV

// Roles. Exactly one node of a healthy pair is RolePrimary.
const (
	RolePrimary = continuity.RolePrimary
	RoleStandby = continuity.RoleStandby
)

// Phases. PhaseCompleted and PhaseRejected are terminal.
const (
	PhaseSubmitted = continuity.PhaseSubmitted
	PhaseCompleted = continuity.PhaseCompleted
	PhaseRejected  = continuity.PhaseRejected
)

// Results.
const (
	ResultPending   = continuity.ResultPending
	ResultSucceeded = continuity.ResultSucceeded
	ResultRejected  = continuity.ResultRejected
)

// Replica statuses.
const (
	ReplicaUnassigned         = continuity.ReplicaUnassigned
	ReplicaPreparing          = continuity.ReplicaPreparing
	ReplicaMirrored           = continuity.ReplicaMirrored
	ReplicaOwnerLost          = continuity.ReplicaOwnerLost
	ReplicaRejected           = continuity.ReplicaRejected
	ReplicaDegradedContinuing = continuity.ReplicaDegradedContinuing
)

// ReplicationHealth values.
const (
	HealthLocalOnly   = continuity.HealthLocalOnly
	HealthHealthy     = continuity.HealthHealthy
	HealthDegraded    = continuity.HealthDegraded
	HealthUnavailable = continuity.HealthUnavailable
)

// Record kinds.
const (
	KindWork  = continuity.KindWork
	KindRoute = continuity.KindRoute
)
