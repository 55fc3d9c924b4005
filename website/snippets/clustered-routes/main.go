// Command clustered-routes serves a todo list whose reads are clustered routes.
package main

import (
	"log"
	"net/http"
	"os"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/website/snippets/clustered-routes/todos"
)

func main() {
	if _, err := mesh.StartFromEnv(); err != nil {
		log.Fatalf("mesh bootstrap: %v", err)
	}

	// #region mux
	store := &todos.Store{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("GET /todos", mesh.Clustered(1, store.List))              // one copy of the record, on the owner
	mux.Handle("GET /todos/export", mesh.ClusteredDefault(todos.Export)) // count 2: mirrored before it runs
	mux.HandleFunc("POST /todos", store.Add)                             // plain local handler
	// #endregion mux

	addr := os.Getenv("HTTP_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	log.Fatal(http.ListenAndServe(addr, mux))
}
