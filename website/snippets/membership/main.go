// Command membership starts the node from the MESH_* environment and logs
// peers joining and leaving.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"meshgo.dev/mesh"
)

func main() {
	if _, err := mesh.StartFromEnv(); err != nil {
		log.Fatalf("mesh bootstrap: %v", err)
	}

	// #region events
	node := mesh.Default() // the node StartFromEnv started
	node.OnMembership(func(ev mesh.MembershipEvent) {
		role, epoch := node.Authority()
		state := "down"
		if ev.Up {
			state = "up"
		}
		log.Printf("peer %s: %s (local role=%s epoch=%d, members now %v)",
			state, ev.Node, role, epoch, node.Members())
	})
	log.Printf("node %s started; peers: %v", node.Name(), node.Peers())
	// #endregion events

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mesh.Shutdown(shutdownCtx)
}
