// Command hello-cluster is a clustered Mesh application. It starts the runtime
// from the MESH_* environment, declares its work in package work, and runs
// until SIGINT or SIGTERM. The runtime owns clustering, placement, continuity,
// promotion and diagnostics; this program only starts and stops it.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"meshgo.dev/mesh"

	_ "hello-cluster/work" // declares work.Add
)

// shutdownTimeout bounds how long running work may take to finish on exit.
const shutdownTimeout = 10 * time.Second

func main() { os.Exit(run()) }

// run starts the runtime, waits for SIGINT or SIGTERM, shuts the runtime down
// and returns the exit status.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	status, err := mesh.StartFromEnv()
	if err != nil {
		log.Printf("[clustered-app] runtime bootstrap failed reason=%v", err)
		return 1
	}
	log.Printf("[clustered-app] runtime bootstrap mode=%s node=%s cluster_port=%d discovery_seed=%s",
		status.Mode, status.NodeName, status.ClusterPort, status.DiscoverySeed)

	<-ctx.Done()
	stop() // a second signal stops the process at once

	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := mesh.Shutdown(shutdownCtx); err != nil {
		log.Printf("[clustered-app] shutdown failed reason=%v", err)
		return 1
	}
	return 0
}
