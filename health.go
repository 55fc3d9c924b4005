package mesh

import (
	"net/http"

	"meshgo.dev/mesh/internal/cluster"
)

// Readiness reasons: why a node is not ready, as Health.Reason, the
// readiness handler's "reason" and the "readiness.reason" of
// `meshc cluster status --json` report it.
const (
	// ReadinessNotStarted: no node has been started in this process yet
	// (StartFromEnv has not run).
	ReadinessNotStarted = cluster.ReadinessNotStarted
	// ReadinessShuttingDown: Shutdown has begun; the node refuses new work.
	ReadinessShuttingDown = cluster.ReadinessShuttingDown
	// ReadinessStopped: the node has stopped and its loops have ended (a
	// liveness failure as well).
	ReadinessStopped = cluster.ReadinessStopped
	// ReadinessQuarantined: the node was frozen (SIGSTOP, VM pause) long
	// enough that its peer may have replaced it; it completes and dispatches
	// nothing until a peer confirms or fences its authority.
	ReadinessQuarantined = cluster.ReadinessQuarantined
	// ReadinessAwaitingPeer: the node was part of a pair before this start
	// and has not heard from any peer yet; acting on its persisted authority
	// now could make it a second primary (a restarted old primary that has
	// been replaced). It waits as long as startup work does before carrying
	// on alone.
	ReadinessAwaitingPeer = cluster.ReadinessAwaitingPeer
	// ReadinessPeerSyncPending: a peer is connected but its snapshot has not
	// been merged yet, so this node's authority and records are not settled
	// (a fenced node that is rejoining is here until its snapshot exchange
	// completes).
	ReadinessPeerSyncPending = cluster.ReadinessPeerSyncPending
	// ReadinessNoPrimary: the node is a standby with no primary connected at
	// its epoch, so it can neither serve nor forward clustered requests.
	ReadinessNoPrimary = cluster.ReadinessNoPrimary
	// ReadinessArbiterUnavailable: the node is primary under a lease
	// arbiter (MESH_ARBITER) and holds no valid lease: it has not won it
	// yet, or could not renew it before its deadline. It serves nothing
	// until it holds the lease again.
	ReadinessArbiterUnavailable = cluster.ReadinessArbiterUnavailable
)

// LivenessHandler is Node.LivenessHandler for the process's node, looked up
// on every request, so it may be mounted before StartFromEnv runs. Before
// any node is started it answers 200 (the process is up; there are no
// runtime loops yet).
func LivenessHandler() http.Handler { return cluster.LivenessHandler() }

// ReadinessHandler is Node.ReadinessHandler for the process's node, looked
// up on every request, so it may be mounted before StartFromEnv runs. Before
// any node is started it answers 503 with reason not_started.
func ReadinessHandler() http.Handler { return cluster.ReadinessHandler() }
