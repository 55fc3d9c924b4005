package cluster

import (
	"meshgo.dev/mesh/internal/continuity"
)

// Rerunnable declares a clustered route whose handler is safe to run again
// for a request that may already have run: it fences its side effects with
// the promotion epoch of IdentityFrom(ctx) (or is idempotent by nature). When
// the owner of such a route's request was lost before anyone heard the
// outcome, the record ends outcome_unknown as for any route; a retry of the
// same Idempotency-Key on the primary then runs the handler again under a new
// attempt, on the node that received the retry, and answers with its
// response (stored for later retries as usual), instead of answering
// outcome_unknown. Without it a route's handler never runs twice for one key.
func Rerunnable() RouteOption {
	return RouteOption{func(o *routeOptions) { o.rerun = true }}
}

// rerunRoute reopens rec, a duplicate of a retried request, for a new run
// when the route is Rerunnable, rec ended outcome_unknown and this node is
// the confirmed primary (so two nodes never reopen one record at once). It
// returns the new pending attempt, owned here, and true; otherwise the
// record the retry is answered from (rec, or the version that replaced it,
// such as another retry's run) and false.
func (n *Node) rerunRoute(h *handler, rec continuity.Record) (continuity.Record, bool) {
	if !h.route.rerun || rec.Phase != continuity.PhaseRejected || rec.Error != string(continuity.ReasonOutcomeUnknown) {
		return rec, false
	}
	if role, _ := n.reg.Authority(); role != RolePrimary || !n.confirmed() {
		return rec, false
	}
	next, err := n.recordReopen(rec,
		continuity.KV{Key: "previous_attempt_id", Value: rec.AttemptID()},
		continuity.KV{Key: "runtime_name", Value: rec.RuntimeName})
	if err != nil {
		if cur, ok := n.reg.Get(rec.RequestKey); ok {
			return cur, false
		}
		return rec, false
	}
	return next, true
}

// reasonRerunOnRetry is the reason of the automatic_recovery entry of a
// Rerunnable route's record reopened by a retry.
const reasonRerunOnRetry = "outcome_unknown_rerun_on_retry"

// outcomeUnknown reports whether rec ended outcome_unknown. Such an answer
// claims nothing about whether the handler ran, so any node may give it
// whatever it knows of the pair's state (knowsCurrentState).
func outcomeUnknown(rec continuity.Record) bool {
	return rec.Phase == continuity.PhaseRejected && rec.Error == string(continuity.ReasonOutcomeUnknown)
}
