// Package api holds the HTTP handlers of the end-to-end test application.
package api

import (
	"fmt"
	"net/http"
	"os"

	"meshgo.dev/mesh"
)

// List answers with the node that executed it and the continuity identity.
func List(w http.ResponseWriter, r *http.Request) {
	id, _ := mesh.IdentityFrom(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Executed-By", os.Getenv("MESH_NODE_NAME"))
	fmt.Fprintf(w, `{"handler":"api.List","method":%q,"path":%q,"attempt_id":%q,"epoch":%d}`+"\n", r.Method, r.URL.Path, id.AttemptID, id.Epoch)
}

// One is a count-1 clustered route.
func One(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"handler":"api.One"}`+"\n")
}

// Retry is a count-3 clustered route: always refused.
func Retry(w http.ResponseWriter, r *http.Request) { panic("count 3 route must never run") }

// Plain is an ordinary net/http handler, the baseline of the benchmarks.
func Plain(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"handler":"api.One"}`+"\n")
}
