package cluster

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/operator"
	"meshgo.dev/mesh/internal/wire"
)

// Readiness reasons: why a node is not ready, as Health.Reason, the
// readiness handler's "reason" and the "readiness.reason" of
// `meshc cluster status --json` report it.
const (
	// ReadinessNotStarted: no node has been started in this process yet
	// (StartFromEnv has not run).
	ReadinessNotStarted = "not_started"
	// ReadinessShuttingDown: Shutdown has begun; the node refuses new work.
	ReadinessShuttingDown = "shutting_down"
	// ReadinessStopped: the node has stopped and its loops have ended (a
	// liveness failure as well).
	ReadinessStopped = "stopped"
	// ReadinessQuarantined: the node was frozen (SIGSTOP, VM pause) long
	// enough that its peer may have replaced it; it completes and dispatches
	// nothing until a peer confirms or fences its authority.
	ReadinessQuarantined = "quarantined"
	// ReadinessAwaitingPeer: the node was part of a pair before this start
	// and has not heard from any peer yet; acting on its persisted authority
	// now could make it a second primary (a restarted old primary that has
	// been replaced). It waits as long as startup work does before carrying
	// on alone.
	ReadinessAwaitingPeer = "awaiting_peer"
	// ReadinessPeerSyncPending: a peer is connected but its snapshot has not
	// been merged yet, so this node's authority and records are not settled
	// (a fenced node that is rejoining is here until its snapshot exchange
	// completes).
	ReadinessPeerSyncPending = "peer_sync_pending"
	// ReadinessNoPrimary: the node is a standby with no primary connected at
	// its epoch, so it can neither serve nor forward clustered requests.
	ReadinessNoPrimary = "no_primary"
	// ReadinessArbiterUnavailable: the node is primary under a lease
	// arbiter (MESH_ARBITER) and holds no valid lease: it has not won it
	// yet, or could not renew it before its deadline. It serves nothing
	// until it holds the lease again.
	ReadinessArbiterUnavailable = "arbiter_unavailable"
)

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
type Health struct {
	ClusterRole       Role              `json:"cluster_role"`
	Live              bool              `json:"live"`
	Mode              Mode              `json:"mode,omitempty"`
	Node              string            `json:"node,omitempty"`
	PromotionEpoch    uint64            `json:"promotion_epoch"`
	Ready             bool              `json:"ready"`
	Reason            string            `json:"reason,omitempty"`
	ReplicationHealth continuity.Health `json:"replication_health"`
}

// peerView is what this node last heard from one peer. It outlives the
// session, so a disconnected peer still shows its last known authority.
type peerView struct {
	auth  atomic.Pointer[wire.Authority]
	heard atomic.Int64 // node-monotonic nanoseconds of the last heartbeat or snapshot, +1 (0: never)
}

// viewOf returns the view of peer, creating it.
func (n *Node) viewOf(peer string) *peerView {
	if v, ok := n.peerViews.Load(peer); ok {
		return v.(*peerView)
	}
	v, _ := n.peerViews.LoadOrStore(peer, &peerView{})
	return v.(*peerView)
}

// heard records the authority the peer reported in a heartbeat or snapshot.
func (s *session) heard(a wire.Authority) {
	v := s.n.viewOf(s.peer)
	v.auth.Store(&a)
	v.heard.Store(s.n.mono() + 1)
}

// peerAuthority returns the authority peer last reported, if any.
func (n *Node) peerAuthority(peer string) (wire.Authority, time.Duration, bool) {
	v, ok := n.peerViews.Load(peer)
	if !ok {
		return wire.Authority{}, 0, false
	}
	pv := v.(*peerView)
	a, at := pv.auth.Load(), pv.heard.Load()
	if a == nil || at == 0 {
		return wire.Authority{}, 0, false
	}
	return *a, time.Duration(n.mono() - (at - 1)), true
}

// peerViewsForStatus lists every peer this node is connected to or has been
// connected to (in this run or, through the state dir, a previous one).
func (n *Node) peerViewsForStatus() []operator.PeerView {
	names := map[string]bool{}
	for _, p := range n.known() {
		names[p] = true
	}
	for _, p := range n.Peers() {
		names[p] = true
	}
	out := make([]operator.PeerView, 0, len(names))
	for name := range names {
		pv := operator.PeerView{Node: name, Link: operator.LinkDisconnected}
		if s := n.session(name); s != nil && !s.isClosed() {
			pv.Link, pv.Protocol = operator.LinkSyncing, s.proto
			if s.isSynced() {
				pv.Link = operator.LinkConnected
			}
		}
		if a, age, ok := n.peerAuthority(name); ok {
			pv.Heard, pv.Role, pv.Epoch, pv.HeartbeatAge = true, a.Role, a.Epoch, age
		}
		out = append(out, pv)
	}
	return out
}

// Health reports the node's liveness and readiness now, without waiting. See
// Health for what each answer means.
func (n *Node) Health() Health {
	h := n.healthNow()
	h.Live = n.loopsAlive()
	if !h.Live && h.Ready {
		h.Ready, h.Reason = false, ReadinessStopped
	}
	return h
}

// healthNow is Health without the liveness check.
func (n *Node) healthNow() Health {
	role, epoch := n.reg.Authority()
	h := Health{ClusterRole: role, Mode: n.cfg.mode(), Node: n.self, PromotionEpoch: epoch,
		ReplicationHealth: n.health(len(n.Peers()) > 0)}
	h.Ready, h.Reason = n.readiness()
	return h
}

// readiness decides whether the node can serve clustered requests with the
// configured guarantees now, and why not.
func (n *Node) readiness() (bool, string) {
	switch {
	case n.ctx.Err() != nil:
		return false, ReadinessStopped
	case n.stopped.Load():
		return false, ReadinessShuttingDown
	case n.cfg.mode() != ModeCluster:
		return true, ""
	case n.checkPause():
		return false, ReadinessQuarantined
	}
	if role, _ := n.reg.Authority(); role == RolePrimary && n.lease != nil && !n.lease.valid() {
		return false, ReadinessArbiterUnavailable
	}
	role, epoch := n.reg.Authority()
	sessions := n.sessionList()
	pending := false
	for _, s := range sessions {
		if s.isClosed() {
			continue
		}
		if !s.isSynced() {
			pending = true
			continue
		}
		if role == RoleStandby {
			if a, _, ok := n.peerAuthority(s.peer); ok && a.Role == RolePrimary && a.Epoch == epoch {
				return true, ""
			}
		}
	}
	switch {
	case pending:
		return false, ReadinessPeerSyncPending
	case role == RoleStandby:
		return false, ReadinessNoPrimary
	case len(sessions) == 0 && n.rejoining && !n.everSynced.Load() &&
		time.Duration(n.mono()) < n.rejoinWait():
		return false, ReadinessAwaitingPeer
	}
	return true, ""
}

// rejoinWait is how long a node that was part of a pair waits to hear from a
// peer before it acts on its persisted authority alone: the same bound its
// startup work waits for membership.
func (n *Node) rejoinWait() time.Duration {
	return 2*n.cfg.DiscoveryInterval + 2*n.cfg.PeerTimeout
}

// liveInterval is how often the pause detector ticks; liveLimit is how old
// its last tick may be before the node's loops count as stuck.
func (n *Node) liveInterval() time.Duration {
	return min(100*time.Millisecond, n.cfg.HeartbeatInterval/2)
}

func (n *Node) liveLimit() time.Duration { return max(time.Second, 10*n.liveInterval()) }

// loopsAlive reports whether the node's runtime loops are running: the node
// has not stopped and, in cluster mode, its pause detector (which runs beside
// the accept and discovery loops) ticked recently.
func (n *Node) loopsAlive() bool {
	if n.ctx.Err() != nil {
		return false
	}
	if n.cfg.mode() != ModeCluster {
		return true
	}
	return time.Duration(n.mono()-n.loopTick.Load()) <= n.liveLimit()
}

// awaitLoops is loopsAlive, except that a stale tick gets up to liveLimit to
// turn fresh: a process that was just resumed from a freeze answers its
// first probe before its ticker has caught up, and is alive all the same.
func (n *Node) awaitLoops(r *http.Request) bool {
	deadline := time.Now().Add(n.liveLimit())
	for !n.loopsAlive() {
		if n.ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		select {
		case <-r.Context().Done():
			return false
		case <-n.ctx.Done():
			return false
		case <-time.After(n.liveInterval()):
		}
	}
	return true
}

// probe is Health for a probe request: readiness is decided as the request
// arrives, then liveness may wait for the loops (see awaitLoops).
func (n *Node) probe(r *http.Request) Health {
	h := n.healthNow()
	h.Live = n.awaitLoops(r)
	if !h.Live {
		h.Ready, h.Reason = false, ReadinessStopped
	}
	return h
}

// LivenessHandler returns an http.Handler for a liveness probe of n: 200 with
// the Health document while the runtime's loops run, 503 once they have
// stopped. Liveness does not depend on the peer, the role or quarantine: a
// node that is alive but not ready must not be restarted for it.
func (n *Node) LivenessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowProbe(w, r) {
			return
		}
		h := n.probe(r)
		writeHealth(w, r, h, h.Live)
	})
}

// ReadinessHandler returns an http.Handler for a readiness probe of n: 200
// with the Health document when the node can serve clustered requests with
// the configured guarantees now, 503 with the reason otherwise. See Health
// for what ready means in each situation.
func (n *Node) ReadinessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowProbe(w, r) {
			return
		}
		h := n.probe(r)
		writeHealth(w, r, h, h.Ready)
	})
}

// LivenessHandler is Node.LivenessHandler for the process's node, looked up
// on every request, so it may be mounted before StartFromEnv runs. Before
// any node is started it answers 200 (the process is up; there are no
// runtime loops yet).
func LivenessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := defaultLoaded.Load(); n != nil {
			n.LivenessHandler().ServeHTTP(w, r)
			return
		}
		if allowProbe(w, r) {
			writeHealth(w, r, notStarted(), true)
		}
	})
}

// ReadinessHandler is Node.ReadinessHandler for the process's node, looked
// up on every request, so it may be mounted before StartFromEnv runs. Before
// any node is started it answers 503 with reason not_started.
func ReadinessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := defaultLoaded.Load(); n != nil {
			n.ReadinessHandler().ServeHTTP(w, r)
			return
		}
		if allowProbe(w, r) {
			writeHealth(w, r, notStarted(), false)
		}
	})
}

func notStarted() Health {
	return Health{Live: true, Reason: ReadinessNotStarted, ReplicationHealth: continuity.HealthUnavailable}
}

// allowProbe answers methods other than GET and HEAD with 405.
func allowProbe(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

func writeHealth(w http.ResponseWriter, r *http.Request, h Health, ok bool) {
	body, _ := json.Marshal(h) // a flat struct of strings, bools and integers
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(body, '\n'))
	}
}
