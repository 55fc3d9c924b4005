// Command reference-backend is a jobs backend on PostgreSQL that runs on the
// Mesh runtime: standalone by default, or as one node of a primary/standby
// pair when the MESH_* environment says so. Each job runs as declared work
// keyed by its id, and every write a job attempt makes is fenced by the
// attempt's promotion epoch.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

	"meshgo.dev/mesh"

	"reference-backend/api"
	"reference-backend/config"
	"reference-backend/jobs"
	"reference-backend/work"
)

// shutdownTimeout bounds how long in-flight requests and the runtime may take
// to stop after SIGINT or SIGTERM.
const shutdownTimeout = 10 * time.Second

func main() { os.Exit(run()) }

func run() int {
	logger := log.New(os.Stderr, "[reference-backend] ", 0)
	cfg, err := config.FromEnv(os.LookupEnv)
	if err != nil {
		for _, problem := range strings.Split(err.Error(), "\n") {
			logger.Printf("Config error: %s", problem)
		}
		return 1
	}
	redact := func(s string) string { return redactCookie(cfg.DatabaseURL.Redact(s)) }

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	pool, err := jobs.Connect(ctx, cfg.DatabaseURL.Value())
	if err != nil {
		logger.Printf("PostgreSQL connect failed: %s", strings.Join(strings.Fields(redact(err.Error())), " "))
		return 1
	}
	defer pool.Close()
	store := jobs.NewStore(pool)
	// The runner is in place before the runtime starts, so an attempt the
	// peer dispatches at once never finds it missing.
	work.Use(jobs.NewRunner(store, logger))

	status, err := mesh.StartFromEnv()
	if err != nil {
		for _, problem := range strings.Split(err.Error(), "\n") {
			logger.Printf("runtime bootstrap failed reason=%s", redact(problem))
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
	node := mesh.Default()
	logger.Printf("runtime bootstrap mode=%s node=%s cluster_port=%d", status.Mode, status.NodeName, status.ClusterPort)

	decl := work.Job
	if status.Mode == mesh.ModeStandalone {
		decl = work.LocalJob
	}
	submit := func(ctx context.Context, jobID string) (api.Submission, error) {
		res, err := node.Submit(ctx, decl, jobID, payloadHash(jobID))
		if err != nil {
			return api.Submission{}, err
		}
		return api.Submission{Outcome: res.Outcome, Reason: res.Record.Error}, nil
	}
	runtime := func() api.RuntimeInfo {
		role, epoch := node.Authority()
		return api.RuntimeInfo{Handler: decl.RuntimeName, Node: node.Name(), Role: string(role), Epoch: epoch}
	}
	handler := api.NewServer(store, submit, runtime, logger, redact).Handler()

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

// payloadHash is the payload hash a job is submitted with. A job's kind and
// payload never change after it is stored, so its id names its content: a
// retried submission of the same job is a duplicate, never a conflict.
func payloadHash(jobID string) string {
	sum := sha256.Sum256([]byte("reference-backend/job:" + jobID))
	return hex.EncodeToString(sum[:])
}

// redactCookie removes the cluster cookie from s, wherever it came from.
func redactCookie(s string) string {
	for _, env := range []string{"MESH_CLUSTER_COOKIE"} {
		if v := os.Getenv(env); len(v) >= 8 {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}
