// Command routeapp is the application the route step of `make bench` runs as
// real node processes: one small handler writing a ~100-byte JSON body,
// mounted as a plain net/http route and as clustered routes of count 1 and
// 2, on the public API only. Every route answers the same bytes, so the
// scenarios differ only in what the runtime adds.
//
// It is configured through the MESH_* environment plus ROUTEAPP_HTTP_ADDR
// (the HTTP listener) and ROUTEAPP_PPROF=1 (serve /debug/pprof/profile and
// /debug/pprof/trace, for CPU profiles and execution traces of a node under
// load; off by default).
package main

import (
	"net/http"
	"net/http/pprof"
	"os"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/bench/internal/nodeapp"
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
	mux := http.NewServeMux()
	mux.HandleFunc("GET /plain", Plain)
	mux.Handle("GET /one", mesh.Clustered(1, One))
	mux.Handle("GET /two", mesh.Clustered(2, Two))
	if os.Getenv("ROUTEAPP_PPROF") == "1" {
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	os.Exit(nodeapp.Run("routeapp", "ROUTEAPP_HTTP_ADDR", mux))
}
