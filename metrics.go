package mesh

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"meshgo.dev/mesh/internal/cluster"
)

// MetricsHandler returns an http.Handler that serves, in the Prometheus
// exposition formats, the metrics of the process's node (see RegisterMetrics)
// together with the Go runtime and process metrics of client_golang. Mount
// it where the scraper looks, usually GET /metrics. The operating guide
// lists every mesh_ metric.
func MetricsHandler() http.Handler { return cluster.MetricsHandler() }

// RegisterMetrics registers the metrics of the process's node with reg, for
// a program that serves a registry of its own. The node is looked up at each
// scrape, so registering before StartFromEnv is fine; nothing is exported
// until a node runs. It fails if reg already has them.
func RegisterMetrics(reg prometheus.Registerer) error { return cluster.RegisterMetrics(reg) }
