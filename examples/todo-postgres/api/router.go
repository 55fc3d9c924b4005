// Package api is the HTTP surface of the service: routes, request
// validation, the JSON shapes and the mapping of storage errors to status
// codes.
package api

import (
	"net/http"

	"meshgo.dev/mesh"

	"todo-postgres/ratelimit"
)

// Probe paths of the Mesh runtime: liveness (the runtime's loops run) and
// readiness (this node can serve clustered requests now; a standby that
// forwards to its primary is ready, a quarantined or fenced node is not).
// docker-compose.yml and deploy/kubernetes.json probe these paths on PORT;
// keep them in step.
const (
	LivenessPath  = "/livez"
	ReadinessPath = "/readyz"
)

// MetricsPath serves the runtime's Prometheus metrics (mesh.MetricsHandler):
// role, epoch, peer links, records, refused writes and the Go runtime.
const MetricsPath = "/metrics"

// NewRouter returns the service's HTTP handler.
//
// GET /todos and GET /todos/{id} are clustered routes (mesh.Clustered with
// replication count 1, runtime names api.Todos.List and api.Todos.Get): each
// request gets a continuity record and runs on the node the runtime places it
// on. /health and the writes are ordinary local handlers; the writes share
// limiter's budget. POST /todos/clear-completed is a write that submits the
// typed declared work work.ClearCompleted and answers with its report. /livez and /readyz are the runtime's probe handlers,
// /metrics its Prometheus metrics.
//
// Call NewRouter once per process: the runtime finds a clustered route by its
// runtime name, so the first *Todos registered is the one that serves.
func NewRouter(todos *Todos, health http.Handler, limiter *ratelimit.Limiter) http.Handler {
	return newRouter(todos, health, limiter, func(n int, h func(http.ResponseWriter, *http.Request)) http.Handler {
		return mesh.Clustered(n, h)
	})
}

// clusterFunc wraps a handler as a clustered route with replication count n.
// It is mesh.Clustered in the service and a plain adapter in unit tests.
type clusterFunc func(n int, h func(http.ResponseWriter, *http.Request)) http.Handler

func newRouter(todos *Todos, health http.Handler, limiter *ratelimit.Limiter, clustered clusterFunc) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /health", health)
	mux.Handle("GET "+LivenessPath, mesh.LivenessHandler())
	mux.Handle("GET "+ReadinessPath, mesh.ReadinessHandler())
	mux.Handle("GET "+MetricsPath, mesh.MetricsHandler())
	mux.Handle("GET /todos", clustered(1, todos.List))
	mux.Handle("GET /todos/{id}", clustered(1, todos.Get))
	mux.Handle("POST /todos", limitWrites(limiter, todos.Create))
	mux.Handle("PUT /todos/{id}", limitWrites(limiter, todos.Toggle))
	mux.Handle("DELETE /todos/{id}", limitWrites(limiter, todos.Delete))
	mux.Handle("POST /todos/clear-completed", limitWrites(limiter, todos.ClearCompleted))
	return mux
}

// limitWrites answers 429 when limiter has no budget left. The check runs
// before h looks at the request, so a write that later fails validation or
// finds nothing still spends budget: the limiter caps write traffic, not
// successful writes.
func limitWrites(limiter *ratelimit.Limiter, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !limiter.Allow() {
			writeError(w, http.StatusTooManyRequests, msgRateLimited)
			return
		}
		h(w, r)
	})
}
