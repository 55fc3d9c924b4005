package api

import (
	"net/http"

	"todo-postgres/config"
)

// clusteredHandler is the runtime name of the declared work in package work.
// Deploy checks read it from /health; keep it in step if you rename SyncTodos.
const clusteredHandler = "work.SyncTodos"

// healthBody is the /health response. Field order is the JSON key order.
type healthBody struct {
	Status                 string `json:"status"`
	DBBackend              string `json:"db_backend"`
	MigrationStrategy      string `json:"migration_strategy"`
	ClusteredHandler       string `json:"clustered_handler"`
	RateLimitWindowSeconds int    `json:"rate_limit_window_seconds"`
	RateLimitMaxRequests   int    `json:"rate_limit_max_requests"`
}

// Health returns the /health handler. It reports how the process is
// configured and never touches the database, so it answers even before the
// schema is migrated. It never reports DATABASE_URL.
func Health(cfg config.Config) http.Handler {
	body := healthBody{
		Status:                 "ok",
		DBBackend:              "postgres",
		MigrationStrategy:      "meshc migrate",
		ClusteredHandler:       clusteredHandler,
		RateLimitWindowSeconds: cfg.RateLimitWindowSeconds,
		RateLimitMaxRequests:   cfg.RateLimitMaxRequests,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, body)
	})
}
