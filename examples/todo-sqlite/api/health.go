package api

import (
	"net/http"

	"todo-sqlite/config"
)

// healthBody is the /health response. Field order is the JSON key order.
type healthBody struct {
	Status                 string `json:"status"`
	Mode                   string `json:"mode"`
	DBBackend              string `json:"db_backend"`
	DBPath                 string `json:"db_path"`
	StorageMode            string `json:"storage_mode"`
	RateLimitWindowSeconds int    `json:"rate_limit_window_seconds"`
	RateLimitMaxRequests   int    `json:"rate_limit_max_requests"`
}

// Health returns the /health handler. It reports the configuration the
// process runs with and does not touch the database.
func Health(cfg config.Config) http.Handler {
	body := healthBody{
		Status:                 "ok",
		Mode:                   "local",
		DBBackend:              "sqlite",
		DBPath:                 cfg.DBPath,
		StorageMode:            "single-node",
		RateLimitWindowSeconds: cfg.RateLimitWindowSeconds,
		RateLimitMaxRequests:   cfg.RateLimitMaxRequests,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, body)
	})
}
