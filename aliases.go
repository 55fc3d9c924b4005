package mesh

import (
	"meshgo.dev/mesh/internal/cluster"
	"meshgo.dev/mesh/internal/continuity"
)

// Aliases of every type that package mesh hands out: all of them are defined
// in its internal packages (the engine, internal/cluster, and the record
// state machine, internal/continuity), so code outside the module can name
// them (var r mesh.Record, mesh.Config{...}). Each alias has the name of the
// type it stands for.
// TestExportedAPINamesNoInternalType fails when an exported signature
// reaches an internal type with no alias here.

// ---- engine types (internal/cluster) ----

// Config is a node configuration: ConfigFromEnv builds one from the MESH_*
// environment, and code may build one directly (Start checks it with
// Validate). The zero Config is a standalone node with default timings; a
// zero field means its default.
type Config = cluster.Config

// Cookie is the shared cluster secret. It prints as [redacted] in every
// format, log attribute and JSON document; only the handshake reads its bytes.
type Cookie = cluster.Cookie

// ArbiterDSN is Config.Arbiter, the MESH_ARBITER value: peer, a
// postgres:// connection string or etcd:// endpoints (with a user and password when the etcd
// cluster has authentication on). It prints, logs and marshals as its
// redacted form (scheme and hosts only).
type ArbiterDSN = cluster.ArbiterDSN

// Mode is the bootstrap mode.
type Mode = cluster.Mode

// NodeName is a node identity name@host:port. Host is stored without
// brackets; String brackets IPv6 hosts.
type NodeName = cluster.NodeName

// NodeNameError reports why a node name was refused. Reason is one of the
// fixed texts of the environment contract (for ParseNodeName) or of the
// operator CLI (for ParseTarget); Input is the text that was parsed.
type NodeNameError = cluster.NodeNameError

// Node is one running Mesh node. A process normally has one, started by
// StartFromEnv; tests may run several in one process with Start.
//
// Node is the engine's node type (package internal/cluster) under its public
// name: its exported methods are the whole public surface of a node.
type Node = cluster.Node

// Option changes how Start runs a node; options exist for tests and
// embedding, the environment contract needs none.
type Option = cluster.Option

// Network is how a node listens and dials. The default is the host's TCP
// stack; tests pass a fault-injecting network.
type Network = cluster.Network

// MembershipEvent reports a peer joining or leaving the local node's view.
type MembershipEvent = cluster.MembershipEvent

// BootstrapStatus says how StartFromEnv started the runtime.
type BootstrapStatus = cluster.BootstrapStatus

// Declaration is the registration of one piece of declared work. It exists so
// work can be declared at package level: var _ = mesh.Work(Add).
type Declaration = cluster.Declaration

// WorkOption changes how declared work is registered.
type WorkOption = cluster.WorkOption

// SubmitResult describes what Node.Submit did with a request.
type SubmitResult = cluster.SubmitResult

// Identity is the continuity identity of one execution of declared work or of
// a clustered route. Pass Epoch downstream as a fencing token: a write
// carrying a lower epoch than one already seen comes from a superseded
// primary.
type Identity = cluster.Identity

// RouteOption changes how Clustered serves a route. Options are part of the
// route's declaration: every node of a binary must declare a route alike.
type RouteOption = cluster.RouteOption

// Health is a node's liveness and readiness with its authority, in the
// operator vocabulary. Live says the runtime's loops are running. Ready says
// the node can serve clustered requests with the configured guarantees now;
// Reason names why not (one of the Readiness constants) and is empty when
// Ready.
//
// What ready means, by situation:
//   - standalone: ready (replication_health local_only);
//   - primary with its standby connected: ready;
//   - primary alone: ready, with replication_health local_only or degraded.
//     Count-1 routes and work are served; count-2 requests are refused one by
//     one with replica_required_unavailable. Taking the only primary out of
//     the load balancer would turn the loss of a replica into an outage, so
//     the probe leaves that decision to the per-request answer and to alerts
//     on replication_health;
//   - standby connected to its primary: ready (it forwards to the primary);
//   - standby with no primary connected: not ready (no_primary);
//   - quarantined after a pause: not ready (quarantined);
//   - a fenced old primary: not ready until it has rejoined — quarantined
//     after a freeze, awaiting_peer after a restart, peer_sync_pending while
//     the new primary's snapshot is merged — then ready as a standby;
//   - shutting down: not ready (shutting_down).
type Health = cluster.Health

// ---- continuity types (internal/continuity) ----

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

// Codec encodes the input and output of typed work (WorkCodec); the default
// is encoding/json.
type Codec = cluster.Codec

// WorkError is the error WorkHandle.Result returns for rejected typed work.
type WorkError = cluster.WorkError
