package cluster

import (
	"net"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/operator"
)

// operatorTimeout bounds one operator exchange after authentication. Large
// replies (10,000 records) take well under a second on loopback.
const operatorTimeout = 30 * time.Second

// serveOperator answers the single query of an authenticated meshc
// connection. Operator clients never join membership.
func (n *Node) serveOperator(conn net.Conn) {
	defer conn.Close()
	if err := operator.Serve(conn, operatorSource{n}, operatorTimeout); err != nil {
		n.log.Debug("[mesh-rt operator] query failed", "error", err.Error())
	}
}

// operatorSource adapts a Node to the operator contract.
type operatorSource struct{ n *Node }

func (s operatorSource) Status() operator.StatusView {
	role, epoch := s.n.reg.Authority()
	peers := s.n.Peers()
	ready, reason := s.n.readiness()
	v := operator.StatusView{LocalNode: s.n.self, PeerNodes: peers, Role: role, Epoch: epoch, Health: s.n.health(len(peers) > 0),
		Peers: s.n.peerViewsForStatus(), Ready: ready, NotReadyReason: reason,
		SafetyMode: s.n.arbiter.Kind()}
	if k := s.n.lease; k != nil {
		l, refusal := k.view(s.n.ctx)
		if l != nil {
			v.Lease = &operator.LeaseView{Holder: l.Holder, Epoch: l.Epoch, ExpiresIn: l.ExpiresIn}
		}
		v.PromotionRefusal = refusal
	}
	return v
}

// health is the node's replication health: whether its in-flight work is
// mirrored right now. With a peer connected and nothing in flight degraded,
// the node is healthy; alone, local_only.
func (n *Node) health(peered bool) continuity.Health {
	h := n.reg.PendingHealth()
	if h == continuity.HealthLocalOnly && peered {
		return continuity.HealthHealthy
	}
	return h
}

func (s operatorSource) Records() []continuity.Record { return s.n.reg.Records() }

func (s operatorSource) Record(key string) (continuity.Record, bool) { return s.n.reg.Get(key) }

func (s operatorSource) Diagnostics() continuity.Snapshot { return s.n.reg.Diagnostics().Snapshot() }

// Switchover hands the primary role over at an operator's request
// (meshc cluster switchover).
func (s operatorSource) Switchover(to string) (operator.SwitchoverView, error) {
	res, err := s.n.switchover(s.n.ctx, to, "operator")
	if err != nil {
		return operator.SwitchoverView{}, err
	}
	v := operator.SwitchoverView{From: res.From, To: res.To, SafetyMode: res.SafetyMode,
		PreviousEpoch: res.PreviousEpoch, Epoch: res.Epoch, Duration: res.Duration}
	for _, st := range res.Steps {
		v.Steps = append(v.Steps, operator.SwitchoverStepView{Step: st.Step, Elapsed: st.Elapsed, Detail: st.Detail})
	}
	return v, nil
}
