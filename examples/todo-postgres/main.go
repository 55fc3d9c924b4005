// Command todo-postgres is a todo API on PostgreSQL that runs on the Mesh
// runtime: standalone by default, or as one node of a primary/standby pair
// when the MESH_* environment says so.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"meshgo.dev/mesh"

	"todo-postgres/api"
	"todo-postgres/config"
	"todo-postgres/ratelimit"
	"todo-postgres/storage"
	"todo-postgres/work" // declares work.SyncTodos and work.ClearCompleted with the runtime
)

// shutdownTimeout bounds how long in-flight requests and the runtime may take
// to stop after SIGINT or SIGTERM.
const shutdownTimeout = 10 * time.Second

func main() {
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		os.Exit(probe(os.Args[2:]))
	}
	os.Exit(run())
}

// probeTimeout bounds each request of `todo-postgres probe`.
const probeTimeout = 2 * time.Second

// probe implements `todo-postgres probe [PATH...]`, the container healthcheck in
// docker-compose.yml (the image has no curl): it GETs each path (default:
// the liveness and the readiness path) from the service on this host's PORT
// and returns 0 only when every one answers 200.
func probe(paths []string) int {
	port := os.Getenv(config.EnvPort)
	if port == "" {
		port = strconv.Itoa(config.DefaultPort)
	}
	if len(paths) == 0 {
		paths = []string{api.LivenessPath, api.ReadinessPath}
	}
	client := http.Client{Timeout: probeTimeout}
	for _, path := range paths {
		resp, err := client.Get("http://127.0.0.1:" + port + path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "probe %s: %v\n", path, err)
			return 1
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fmt.Fprintf(os.Stderr, "probe %s: %d %s\n", path, resp.StatusCode, strings.TrimSpace(string(body)))
			return 1
		}
	}
	return 0
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
	logger.Printf("Config loaded port=%d write_limit_window_seconds=%d write_limit_max=%d",
		cfg.Port, cfg.RateLimitWindowSeconds, cfg.RateLimitMaxRequests)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger.Printf("Connecting to PostgreSQL pool...")
	pool, err := storage.Connect(ctx, cfg.DatabaseURL.Value())
	if err != nil {
		logger.Printf("PostgreSQL connect failed: %s", oneLine(cfg.DatabaseURL.Redact(err.Error())))
		return 1
	}
	defer pool.Close()

	store := storage.New(pool)
	work.Use(store) // before the runtime starts: a promoted node may re-run work at once

	status, err := mesh.StartFromEnv()
	if err != nil {
		for _, problem := range strings.Split(err.Error(), "\n") {
			logger.Printf("runtime bootstrap failed reason=%s", problem)
		}
		return 1
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := mesh.Shutdown(ctx); err != nil {
			logger.Printf("runtime shutdown failed: %v", err)
		}
	}()
	logger.Printf("runtime bootstrap mode=%s node=%s cluster_port=%d discovery_seed=%s",
		status.Mode, status.NodeName, status.ClusterPort, status.DiscoverySeed)
	logger.Printf("PostgreSQL pool ready")

	limiter := ratelimit.New(cfg.RateLimitWindow(), cfg.RateLimitMaxRequests)
	handler := api.NewRouter(api.NewTodos(store, logger), api.Health(cfg), limiter)
	logger.Printf("Runtime ready port=%d db_backend=postgres write_limit_window_seconds=%d write_limit_max=%d",
		cfg.Port, cfg.RateLimitWindowSeconds, cfg.RateLimitMaxRequests)

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

// oneLine folds a multi-line driver error into one log line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
