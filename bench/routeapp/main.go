// Command routeapp is the application the route step of `make bench` runs as
// real node processes: one small handler writing a ~100-byte JSON body,
// mounted as a plain net/http route and as clustered routes of count 1 and
// 2, on the public API only. Every route answers the same bytes, so the
// scenarios differ only in what the runtime adds.
//
// It is configured through the MESH_* environment plus ROUTEAPP_HTTP_ADDR
// (the HTTP listener) and ROUTEAPP_PPROF=1 (serve /debug/pprof/profile, for
// CPU profiles of a node under load; off by default).
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"meshgo.dev/mesh"
)

// item is the body every route answers: 97 bytes with the newline.
var item = []byte(`{"id":1024,"name":"route benchmark item","status":"active","owner":"bench","tags":["a","b","c"]}` + "\n")

// write answers item as JSON.
func write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(item)
}

// Each route has its own handler function: the runtime names a clustered
// route after its function and takes each function once.

// Plain is the baseline: an ordinary net/http handler.
func Plain(w http.ResponseWriter, r *http.Request) { write(w) }

// One runs as Clustered(1).
func One(w http.ResponseWriter, r *http.Request) { write(w) }

// Two runs as Clustered(2).
func Two(w http.ResponseWriter, r *http.Request) { write(w) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := mesh.StartFromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "[routeapp] runtime bootstrap failed reason=%v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "[routeapp] runtime bootstrap mode=%s node=%s cluster_port=%d\n", st.Mode, st.NodeName, st.ClusterPort)

	addr := os.Getenv("ROUTEAPP_HTTP_ADDR")
	if addr == "" {
		fmt.Fprintln(os.Stderr, "[routeapp] ROUTEAPP_HTTP_ADDR is not set")
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /plain", Plain)
	mux.Handle("GET /one", mesh.Clustered(1, One))
	mux.Handle("GET /two", mesh.Clustered(2, Two))
	if os.Getenv("ROUTEAPP_PPROF") == "1" {
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "[routeapp] http: %v\n", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "[routeapp] http: %v\n", err)
			os.Exit(1)
		}
	}()
	fmt.Fprintf(os.Stderr, "[routeapp] HTTP listening on %s\n", addr)
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	_ = mesh.Shutdown(shutdown)
}
