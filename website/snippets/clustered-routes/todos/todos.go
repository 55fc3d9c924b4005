// Package todos serves a small todo list over HTTP.
package todos

import (
	"encoding/json"
	"net/http"
	"sync"

	"meshgo.dev/mesh"
)

// Todo is one item of the list.
type Todo struct {
	ID    int    `json:"id"`
	Title string `json:"title"`
}

// Store keeps todos in memory. Its exported methods are handlers, so a Store
// method value can be wrapped with mesh.Clustered: its runtime name is
// "todos.Store.List", the same on every node of the binary.
type Store struct {
	mu    sync.Mutex // guards todos
	todos []Todo
}

// #region handler
// List writes every todo. Behind mesh.Clustered it runs on the placement
// owner of the request, and its context carries the continuity identity.
func (s *Store) List(w http.ResponseWriter, r *http.Request) {
	if id, ok := mesh.IdentityFrom(r.Context()); ok {
		// The same key is sent back to the client in the
		// X-Mesh-Continuity-Request-Key response header.
		w.Header().Set("X-Served-Attempt", id.AttemptID)
	}
	s.mu.Lock()
	list := append(make([]Todo, 0, len(s.todos)), s.todos...)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}

// #endregion handler

// Add appends a todo. It stays a plain local handler: writes are not routed.
func (s *Store) Add(w http.ResponseWriter, r *http.Request) {
	var t Todo
	if err := json.NewDecoder(r.Body).Decode(&t); err != nil || t.Title == "" {
		http.Error(w, `{"error":"title is required"}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	t.ID = len(s.todos) + 1
	s.todos = append(s.todos, t)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(t)
}

// Export writes the list as a download. It is wrapped with the default
// replication count of 2.
func Export(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Disposition", `attachment; filename="todos.json"`)
	w.Write([]byte("[]\n"))
}
