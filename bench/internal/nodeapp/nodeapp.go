// Package nodeapp is the process skeleton of the benchmark node programs
// (bench/routeapp, and bench/typedwork in its node mode): the Mesh runtime
// from the MESH_* environment, one HTTP listener, and a graceful shutdown of
// both on SIGINT or SIGTERM. Its log lines ("[app] runtime bootstrap
// mode=...", "[app] HTTP listening on ...") are the ones clusterkit waits
// for.
package nodeapp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"meshgo.dev/mesh"
)

// shutdownTimeout bounds the HTTP server's and the runtime's shutdown.
const shutdownTimeout = 5 * time.Second

// Run starts the runtime, serves handler on the address in the environment
// variable addrEnv until SIGINT or SIGTERM, shuts both down and returns the
// process's exit code: 0, 1 when the runtime or the listener fails, 2 when
// addrEnv is not set. app begins every log line, in brackets, on stderr.
// Handlers are registered (and declared work declared) before Run, since
// the runtime starts in it.
func Run(app, addrEnv string, handler http.Handler) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "["+app+"] "+format+"\n", args...) }
	st, err := mesh.StartFromEnv()
	if err != nil {
		logf("runtime bootstrap failed reason=%v", err)
		return 1
	}
	logf("runtime bootstrap mode=%s node=%s cluster_port=%d", st.Mode, st.NodeName, st.ClusterPort)
	addr := os.Getenv(addrEnv)
	if addr == "" {
		logf("%s is not set", addrEnv)
		return 2
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logf("http: %v", err)
		return 1
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("http: %v", err)
			os.Exit(1)
		}
	}()
	logf("HTTP listening on %s", addr)
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	_ = mesh.Shutdown(shutdown)
	return 0
}
