// Package api is the HTTP surface of the service: routes, request
// validation, the JSON shapes and the mapping of storage errors to status
// codes.
package api

import (
	"net/http"

	"todo-sqlite/ratelimit"
)

// NewRouter returns the service's HTTP handler. Writes (POST, PUT, DELETE)
// share limiter's budget; reads and /health are never limited.
func NewRouter(todos *Todos, health http.Handler, limiter *ratelimit.Limiter) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /health", health)
	mux.HandleFunc("GET /todos", todos.List)
	mux.HandleFunc("GET /todos/{id}", todos.Get)
	mux.Handle("POST /todos", limitWrites(limiter, todos.Create))
	mux.Handle("PUT /todos/{id}", limitWrites(limiter, todos.Toggle))
	mux.Handle("DELETE /todos/{id}", limitWrites(limiter, todos.Delete))
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
