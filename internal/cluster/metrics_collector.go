package cluster

import (
	"net/http"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/operator"
)

// metricDoc describes one metric the runtime exports.
type metricDoc struct {
	Name   string
	Type   string // gauge, counter or histogram
	Labels []string
	Help   string
}

// metricDocs is every metric the runtime exports, in exposition order. The
// operating guide lists the same names (a test compares the two).
var metricDocs = []metricDoc{
	{"mesh_node_info", "gauge", []string{"node", "mode"}, "Always 1: the node's name and bootstrap mode (standalone or cluster)."},
	{"mesh_cluster_role", "gauge", []string{"role"}, "1 for the node's current role (primary or standby), 0 for the other."},
	{"mesh_promotion_epoch", "gauge", nil, "The node's promotion epoch."},
	{"mesh_quarantined", "gauge", nil, "1 while the node is quarantined after a pause and completes nothing, else 0."},
	{"mesh_membership_size", "gauge", nil, "Nodes in the local view of the cluster, this one included."},
	{"mesh_peer_link_state", "gauge", []string{"peer", "state"}, "1 for the state of the link to each known peer (connected, syncing, disconnected), 0 for the others."},
	{"mesh_peer_heartbeat_age_seconds", "gauge", []string{"peer"}, "Time since the peer was last heard (heartbeat or snapshot); absent for a peer never heard in this run."},
	{"mesh_replication_queue_records", "gauge", []string{"peer"}, "Record transitions queued for the peer and not written yet."},
	{"mesh_replication_queue_bytes", "gauge", []string{"peer"}, "Bytes of every frame queued for the peer and not written yet."},
	{"mesh_records", "gauge", []string{"kind", "phase"}, "Continuity records the node holds, pending and retained, by kind (route or work) and phase."},
	{"mesh_submissions_total", "counter", []string{"kind", "outcome"}, "Requests submitted on this node (route requests, submitted and startup work) by outcome: created, duplicate, conflict, rejected."},
	{"mesh_route_requests_total", "counter", []string{"outcome", "status_class"}, "Clustered route requests answered by this node, by outcome (executed, forwarded, replayed, conflict, refused) and status class."},
	{"mesh_replica_prepare_duration_seconds", "histogram", nil, "Time from sending a record to its replica to the replica's acknowledgement (or failure)."},
	{"mesh_route_forward_duration_seconds", "histogram", nil, "Time from forwarding a clustered request to its owner to the owner's response (or failure)."},
	{"mesh_promotions_total", "counter", nil, "Promotions of this node from standby to primary."},
	{"mesh_fencings_total", "counter", nil, "Times this node was fenced: it stepped down to standby on seeing a higher epoch or a preferred primary."},
	{"mesh_fenced_writes_rejected_total", "counter", []string{"reason"}, "Writes refused because they came from a superseded authority: completions of a fenced or superseded attempt, prepares and records from a lower epoch."},
	{"mesh_handshake_failures_total", "counter", []string{"reason"}, "Inbound cluster connections that failed or were refused before a session, and outbound ones that failed authentication, by reason."},
	{"mesh_diagnostics_dropped_total", "counter", nil, "Diagnostic entries pushed out of the full diagnostics ring."},
}

// collector exports the metrics of the node node returns (nothing while it
// returns nil).
type collector struct {
	node  func() *Node
	descs map[string]*prometheus.Desc
}

func newCollector(node func() *Node) *collector {
	c := &collector{node: node, descs: map[string]*prometheus.Desc{}}
	for _, d := range metricDocs {
		c.descs[d.Name] = prometheus.NewDesc(d.Name, d.Help, d.Labels, nil)
	}
	return c
}

// Describe sends every metric's descriptor.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range metricDocs {
		ch <- c.descs[d.Name]
	}
}

// Collect reads the node's state and counters.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	n := c.node()
	if n == nil {
		return
	}
	gauge := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, labels...)
	}
	counter := func(name string, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v), labels...)
	}
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	m := &n.met

	gauge("mesh_node_info", 1, n.self, string(n.cfg.mode()))
	role, epoch := n.reg.Authority()
	for _, r := range roles {
		gauge("mesh_cluster_role", flag(r == role), string(r))
	}
	gauge("mesh_promotion_epoch", float64(epoch))
	gauge("mesh_quarantined", flag(n.reg.Quarantined()))
	gauge("mesh_membership_size", float64(len(n.Members())))

	if n.cfg.mode() == ModeCluster {
		peers := n.peerViewsForStatus()
		sort.Slice(peers, func(i, j int) bool { return peers[i].Node < peers[j].Node })
		for _, p := range peers {
			for _, st := range linkStates {
				gauge("mesh_peer_link_state", flag(p.Link == st), p.Node, string(st))
			}
			if p.Heard {
				gauge("mesh_peer_heartbeat_age_seconds", p.HeartbeatAge.Seconds(), p.Node)
			}
			var records, bytes int
			if s := n.session(p.Node); s != nil && p.Link != operator.LinkDisconnected {
				records, bytes = s.queued()
			}
			gauge("mesh_replication_queue_records", float64(records), p.Node)
			gauge("mesh_replication_queue_bytes", float64(bytes), p.Node)
		}
	}

	var byKind [len(recordKinds)][len(recordPhases)]int
	for _, rec := range n.reg.Records() {
		for k, kind := range recordKinds {
			for p, phase := range recordPhases {
				if rec.Kind == kind && rec.Phase == phase {
					byKind[k][p]++
				}
			}
		}
	}
	for k, kind := range recordKinds {
		for p, phase := range recordPhases {
			gauge("mesh_records", float64(byKind[k][p]), kindLabel(kind), string(phase))
		}
	}

	for k, kind := range [...]continuity.Kind{continuity.KindWork, continuity.KindRoute} {
		for i, o := range submitOutcomes {
			counter("mesh_submissions_total", m.submissions[k][i].Load(), kindLabel(kind), string(o))
		}
	}
	for o, outcome := range routeOutcomes {
		for s, class := range statusClasses {
			counter("mesh_route_requests_total", m.routes[o][s].Load(), outcome, class)
		}
	}
	ch <- m.prepareLatency.metric(c.descs["mesh_replica_prepare_duration_seconds"])
	ch <- m.forwardLatency.metric(c.descs["mesh_route_forward_duration_seconds"])
	counter("mesh_promotions_total", m.promotions.Load())
	counter("mesh_fencings_total", m.fencings.Load())
	for i, r := range fencedWriteReasons {
		counter("mesh_fenced_writes_rejected_total", m.fencedWrites[i].Load(), string(r))
	}
	for i, r := range handshakeReasons {
		counter("mesh_handshake_failures_total", m.handshakes[i].Load(), r)
	}
	counter("mesh_diagnostics_dropped_total", n.reg.Diagnostics().Snapshot().Dropped)
}

// processCollector exports the metrics of the process's node, whichever it
// is at scrape time (StartFromEnv may replace a standalone node started
// before it).
var processCollector = sync.OnceValue(func() prometheus.Collector {
	return newCollector(func() *Node { return defaultLoaded.Load() })
})

// RegisterMetrics registers the metrics of the process's node with reg. The
// node is looked up at each scrape, so registering before StartFromEnv is
// fine; nothing is exported until a node runs. It fails if reg already has
// them.
func RegisterMetrics(reg prometheus.Registerer) error { return reg.Register(processCollector()) }

// metricsHandler serves a registry of its own: the process's node, the Go
// runtime and the process.
var metricsHandler = sync.OnceValue(func() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(processCollector(), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
})

// MetricsHandler returns an http.Handler that serves, in the Prometheus
// exposition formats, the metrics of the process's node (see RegisterMetrics)
// together with the Go runtime and process metrics of client_golang. Mount
// it where the scraper looks, usually GET /metrics.
func MetricsHandler() http.Handler { return metricsHandler() }
