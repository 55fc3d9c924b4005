package cluster

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/operator"
)

// Metrics. Everything that is a state (role, epoch, membership, peer links,
// queues, records) is read from the node when the registry is scraped; the
// few events that leave no state behind (submissions, route requests,
// promotions, fencings, refused writes, handshake failures, latencies) are
// counted with atomic increments at the sites that see them. No label ever
// carries a request key: every label takes one of a fixed set of values,
// except peer, which names a node of the cluster.

// nodeMetrics holds a node's event counters. The zero value is ready.
type nodeMetrics struct {
	submissions    [2][len(submitOutcomes)]atomic.Uint64 // by kind, outcome
	routes         [len(routeOutcomes)][len(statusClasses)]atomic.Uint64
	promotions     atomic.Uint64
	fencings       atomic.Uint64
	fencedWrites   [len(fencedWriteReasons)]atomic.Uint64
	handshakes     [len(handshakeReasons)]atomic.Uint64
	prepareLatency latency
	forwardLatency latency
}

// Label values. The order of each list is the order of the exposition.
var (
	submitOutcomes = [...]continuity.Outcome{continuity.OutcomeCreated, continuity.OutcomeDuplicate,
		continuity.OutcomeConflict, continuity.OutcomeRejected}
	recordKinds  = [...]continuity.Kind{continuity.KindRoute, continuity.KindWork}
	recordPhases = [...]continuity.Phase{continuity.PhaseSubmitted, continuity.PhaseCompleted, continuity.PhaseRejected}
	roles        = [...]Role{RolePrimary, RoleStandby}
	linkStates   = [...]operator.LinkState{operator.LinkConnected, operator.LinkSyncing, operator.LinkDisconnected}
	// fencedWriteReasons are the refusals of a write by a superseded
	// authority: a completion under a fence generation or attempt that is
	// no longer current, and a prepare or record version from a lower epoch.
	fencedWriteReasons = [...]continuity.Reason{continuity.ReasonFenced, continuity.ReasonAttemptMismatch, continuity.ReasonStaleEpoch}
	handshakeReasons   = [...]string{reasonAuthFailed, reasonHandshakeFailed, reasonBelowMinimum, reasonRateLimited, reasonSourceLimit, reasonTotalLimit}
	statusClasses      = [...]string{"2xx", "3xx", "4xx", "5xx"}
)

// Route outcomes: how the runtime answered a clustered request.
const (
	routeRefused   = iota // the runtime refused it (4xx or 5xx with a reason)
	routeExecuted         // the handler ran on this node
	routeForwarded        // the handler ran on the record's owner
	routeReplayed         // answered from the stored outcome of an earlier request
	routeConflict         // the key was used with another payload
)

var routeOutcomes = [...]string{"refused", "executed", "forwarded", "replayed", "conflict"}

func kindLabel(k continuity.Kind) string {
	if k == continuity.KindRoute {
		return "route"
	}
	return "work"
}

// submitted counts one submission (a route request, submitted or startup
// work) by its outcome; err is a refusal before anything was stored.
func (m *nodeMetrics) submitted(kind continuity.Kind, out continuity.Outcome, err error) {
	if !metricsOn {
		return
	}
	k := 0
	if kind == continuity.KindRoute {
		k = 1
	}
	if err != nil {
		out = continuity.OutcomeRejected
	}
	for i, o := range submitOutcomes {
		if o == out {
			m.submissions[k][i].Add(1)
			return
		}
	}
}

// transition counts the diagnostic entries that are metrics of their own.
func (m *nodeMetrics) transition(e continuity.Entry) {
	switch e.Transition {
	case continuity.TransitionPromote, continuity.TransitionSwitchoverPromoted:
		m.promotions.Add(1)
	case continuity.TransitionFencedRejoin:
		m.fencings.Add(1)
	case continuity.TransitionStaleEpochRejected:
		m.fencedWrites[2].Add(1)
	case continuity.TransitionCompletionRejected:
		for i, r := range fencedWriteReasons {
			if e.Reason == string(r) {
				m.fencedWrites[i].Add(1)
			}
		}
	}
}

// handshakeFailure counts one failed or refused handshake.
func (m *nodeMetrics) handshakeFailure(reason string) {
	for i, r := range handshakeReasons {
		if r == reason {
			m.handshakes[i].Add(1)
			return
		}
	}
	m.handshakes[1].Add(1) // any other failure is a failed handshake
}

// latencyBuckets are the upper bounds, in seconds, of the latency
// histograms: a prepare or a forward on a healthy link takes well under a
// millisecond; the last buckets catch timeouts (prepare 2 s, route 5 s).
var latencyBuckets = [...]float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// latency is a histogram of durations with the fixed latencyBuckets. The
// zero value is ready; observing is two atomic adds.
type latency struct {
	counts [len(latencyBuckets) + 1]atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sum    atomic.Int64                           // nanoseconds
}

// since observes the time elapsed since start (for defer).
func (l *latency) since(start time.Time) {
	if !metricsOn {
		return
	}
	d := time.Since(start)
	s := d.Seconds()
	i := 0
	for i < len(latencyBuckets) && s > latencyBuckets[i] {
		i++
	}
	l.counts[i].Add(1)
	l.sum.Add(int64(d))
}

func (l *latency) metric(desc *prometheus.Desc) prometheus.Metric {
	buckets := make(map[float64]uint64, len(latencyBuckets))
	var count uint64
	for i, ub := range latencyBuckets {
		count += l.counts[i].Load()
		buckets[ub] = count
	}
	count += l.counts[len(latencyBuckets)].Load()
	return prometheus.MustNewConstHistogram(desc, count, time.Duration(l.sum.Load()).Seconds(), buckets)
}

// routeWriter is the response writer of one clustered request: it keeps the
// status the runtime wrote and the outcome, counted when the request ends.
type routeWriter struct {
	http.ResponseWriter
	status  int
	outcome int
}

var routeWriters = sync.Pool{New: func() any { return new(routeWriter) }}

func (w *routeWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *routeWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *routeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// setOutcome records how the request was answered; rw may be nil (metrics
// compiled out).
func (w *routeWriter) setOutcome(outcome int) {
	if w != nil {
		w.outcome = outcome
	}
}

// served marks the request as answered by its handler.
func (w *routeWriter) served(remote bool) {
	if w == nil {
		return
	}
	w.outcome = routeExecuted
	if remote {
		w.outcome = routeForwarded
	}
}

// routeStart wraps w for one clustered request; routeDone must follow. It
// returns nil when the metrics are compiled out.
func (m *nodeMetrics) routeStart(w http.ResponseWriter) *routeWriter {
	if !metricsOn {
		return nil
	}
	rw := routeWriters.Get().(*routeWriter)
	*rw = routeWriter{ResponseWriter: w}
	return rw
}

// routeDone counts the request rw served and recycles rw.
func (m *nodeMetrics) routeDone(rw *routeWriter) {
	if rw == nil {
		return
	}
	class := rw.status/100 - 2
	if rw.status == 0 {
		class = 0 // nothing written: net/http answers 200
	}
	if class >= 0 && class < len(statusClasses) {
		m.routes[rw.outcome][class].Add(1)
	}
	*rw = routeWriter{}
	routeWriters.Put(rw)
}

// queued returns what the session's link holds for its peer and has not
// written (peer.Link.Queued).
func (s *session) queued() (records, bytes int) { return s.link.Queued() }

// submit records the request (submitRecordTo), counted by outcome.
func (n *Node) submit(ctx context.Context, sub submission) (dec continuity.Decision, err error) {
	err = n.submitTo(ctx, &sub, &dec)
	return dec, err
}

// submitTo is submit writing the decision to *dec (submitRecordTo).
func (n *Node) submitTo(ctx context.Context, sub *submission, dec *continuity.Decision) error {
	err := n.submitRecordTo(ctx, sub, dec)
	n.met.submitted(sub.h.kind, dec.Outcome, err)
	return err
}
