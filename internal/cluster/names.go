package cluster

import "meshgo.dev/mesh/internal/continuity"

// Short names for the continuity types and values the engine uses in almost
// every file. They are the same types package mesh aliases for its users.

type (
	Record            = continuity.Record
	Role              = continuity.Role
	Phase             = continuity.Phase
	Result            = continuity.Result
	ReplicaStatus     = continuity.ReplicaStatus
	ReplicationHealth = continuity.Health
	Kind              = continuity.Kind
	Snapshot          = continuity.Snapshot
	Entry             = continuity.Entry
	KV                = continuity.KV
)

const (
	RolePrimary = continuity.RolePrimary
	RoleStandby = continuity.RoleStandby

	PhaseSubmitted = continuity.PhaseSubmitted
	PhaseCompleted = continuity.PhaseCompleted
	PhaseRejected  = continuity.PhaseRejected

	ResultPending   = continuity.ResultPending
	ResultSucceeded = continuity.ResultSucceeded
	ResultRejected  = continuity.ResultRejected

	ReplicaUnassigned         = continuity.ReplicaUnassigned
	ReplicaPreparing          = continuity.ReplicaPreparing
	ReplicaMirrored           = continuity.ReplicaMirrored
	ReplicaOwnerLost          = continuity.ReplicaOwnerLost
	ReplicaRejected           = continuity.ReplicaRejected
	ReplicaDegradedContinuing = continuity.ReplicaDegradedContinuing

	HealthLocalOnly   = continuity.HealthLocalOnly
	HealthHealthy     = continuity.HealthHealthy
	HealthDegraded    = continuity.HealthDegraded
	HealthUnavailable = continuity.HealthUnavailable

	KindWork  = continuity.KindWork
	KindRoute = continuity.KindRoute
)
