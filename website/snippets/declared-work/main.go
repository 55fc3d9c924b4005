// Command declared-work starts a node whose work package declares clustered
// work; the runtime runs it once per cluster at boot.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/website/snippets/declared-work/work"
)

func main() {
	log.Printf("declared %s with replication count %d",
		work.AddDeclaration.RuntimeName, work.AddDeclaration.ReplicationCount)

	if _, err := mesh.StartFromEnv(); err != nil {
		log.Fatalf("mesh bootstrap: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mesh.Shutdown(shutdownCtx)
}
