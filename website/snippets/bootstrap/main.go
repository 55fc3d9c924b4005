// Command bootstrap is the smallest Mesh service: it starts the node from the
// MESH_* environment, serves a health route and shuts down cleanly.
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"meshgo.dev/mesh"
)

func main() {
	// #region bootstrap
	status, err := mesh.StartFromEnv()
	if err != nil {
		// Configuration problems (a bad MESH_NODE_NAME, a missing seed, a
		// cookie-less cluster hint) and a failed listener bind end up here.
		log.Fatalf("mesh bootstrap: %v", err)
	}
	log.Printf("mesh started mode=%s node=%s cluster_port=%d discovery_seed=%s",
		status.Mode, status.NodeName, status.ClusterPort, status.DiscoverySeed)
	// #endregion bootstrap

	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	addr := os.Getenv("HTTP_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	srv := &http.Server{Addr: addr, Handler: mux}

	// #region shutdown
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("http: %v", err)
		}
	}()
	<-ctx.Done()

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)  // stop taking HTTP requests first
	mesh.Shutdown(shutdownCtx) // then leave the cluster and wait for running handlers
	// #endregion shutdown
}
