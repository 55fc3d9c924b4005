// Command todo-sqlite is a local, single-node todo API backed by one SQLite file.
package main

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"todo-sqlite/api"
	"todo-sqlite/config"
	"todo-sqlite/ratelimit"
	"todo-sqlite/storage"
)

// shutdownTimeout bounds how long in-flight requests may finish after
// SIGINT or SIGTERM.
const shutdownTimeout = 10 * time.Second

func main() {
	os.Exit(run())
}

// run starts the service and returns the process exit code once it stops.
func run() int {
	logger := log.New(os.Stderr, "[todo-api] ", 0)

	cfg, err := config.FromEnv(os.LookupEnv)
	if err != nil {
		for _, problem := range strings.Split(err.Error(), "\n") {
			logger.Printf("Config error: %s", problem)
		}
		return 1
	}
	logger.Printf("local config loaded port=%d db_path=%s write_limit_window_seconds=%d write_limit_max=%d",
		cfg.Port, cfg.DBPath, cfg.RateLimitWindowSeconds, cfg.RateLimitMaxRequests)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	store, err := storage.Open(ctx, cfg.DBPath)
	if err != nil {
		logger.Printf("Database init failed: %v", err)
		return 1
	}
	defer store.Close()
	logger.Printf("SQLite schema ready path=%s", cfg.DBPath)

	limiter := ratelimit.New(cfg.RateLimitWindow(), cfg.RateLimitMaxRequests)
	handler := api.NewRouter(api.NewTodos(store, logger), api.Health(cfg), limiter)
	logger.Printf("local runtime ready port=%d db_backend=sqlite storage_mode=single-node db_path=%s write_limit_window_seconds=%d write_limit_max=%d",
		cfg.Port, cfg.DBPath, cfg.RateLimitWindowSeconds, cfg.RateLimitMaxRequests)

	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		logger.Printf("HTTP server failed: %v", err)
		return 1
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          logger,
	}
	logger.Printf("HTTP server starting on :%d", cfg.Port)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		logger.Printf("HTTP server failed: %v", err)
		return 1
	case <-ctx.Done():
	}
	stop() // a second signal kills the process at once
	logger.Printf("Shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Printf("HTTP shutdown failed: %v", err)
		return 1
	}
	return 0
}
