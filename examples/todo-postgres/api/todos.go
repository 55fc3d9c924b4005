package api

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"strings"
	"time"

	"todo-postgres/storage"
)

// maxBodyBytes bounds a request body; a todo is a short title.
const maxBodyBytes = 64 << 10

// Store is the storage the todo handlers need. *storage.Store implements it.
// Methods return storage.ErrNotFound for a missing todo and
// storage.ErrNotMigrated when the schema is missing, possibly wrapped.
type Store interface {
	List(ctx context.Context) ([]storage.Todo, error)
	Get(ctx context.Context, id string) (storage.Todo, error)
	Create(ctx context.Context, title string) (storage.Todo, error)
	Toggle(ctx context.Context, id string) (storage.Todo, error)
	Delete(ctx context.Context, id string) error
}

// Todos serves the /todos routes. Its List and Get methods are the clustered
// routes api.Todos.List and api.Todos.Get.
type Todos struct {
	store Store
	log   *log.Logger
}

// NewTodos returns the todo handlers over store. Storage failures are logged
// to logger and answered without their details.
func NewTodos(store Store, logger *log.Logger) *Todos {
	return &Todos{store: store, log: logger}
}

// todoJSON is the wire form of a todo.
type todoJSON struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Completed bool   `json:"completed"`
	CreatedAt string `json:"created_at"`
}

func toJSON(t storage.Todo) todoJSON {
	return todoJSON{
		ID:        t.ID,
		Title:     t.Title,
		Completed: t.Completed,
		CreatedAt: t.CreatedAt.UTC().Format(time.RFC3339Nano),
	}
}

// List answers GET /todos: every todo, newest first.
func (t *Todos) List(w http.ResponseWriter, r *http.Request) {
	todos, err := t.store.List(r.Context())
	if err != nil {
		t.fail(w, "list", err)
		return
	}
	out := make([]todoJSON, 0, len(todos))
	for _, todo := range todos {
		out = append(out, toJSON(todo))
	}
	writeJSON(w, http.StatusOK, out)
}

// Get answers GET /todos/{id}.
func (t *Todos) Get(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(r)
	if !ok {
		writeError(w, http.StatusBadRequest, msgInvalidID)
		return
	}
	todo, err := t.store.Get(r.Context(), id)
	if err != nil {
		t.fail(w, "get", err)
		return
	}
	writeJSON(w, http.StatusOK, toJSON(todo))
}

// Create answers POST /todos with body {"title":"..."}: 201 and the new todo.
// The title is trimmed; a missing, blank or non-string title, or a body that
// is not JSON, is a 400.
func (t *Todos) Create(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Title string `json:"title"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, msgTitleRequired)
		return
	}
	title := strings.TrimSpace(body.Title)
	if title == "" {
		writeError(w, http.StatusBadRequest, msgTitleRequired)
		return
	}
	todo, err := t.store.Create(r.Context(), title)
	if err != nil {
		t.fail(w, "create", err)
		return
	}
	writeJSON(w, http.StatusCreated, toJSON(todo))
}

// Toggle answers PUT /todos/{id}: it flips completed and returns the todo.
// The request body is ignored.
func (t *Todos) Toggle(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(r)
	if !ok {
		writeError(w, http.StatusBadRequest, msgInvalidID)
		return
	}
	todo, err := t.store.Toggle(r.Context(), id)
	if err != nil {
		t.fail(w, "toggle", err)
		return
	}
	writeJSON(w, http.StatusOK, toJSON(todo))
}

// Delete answers DELETE /todos/{id} with {"status":"deleted","id":"<id>"}.
func (t *Todos) Delete(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(r)
	if !ok {
		writeError(w, http.StatusBadRequest, msgInvalidID)
		return
	}
	if err := t.store.Delete(r.Context(), id); err != nil {
		t.fail(w, "delete", err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Status string `json:"status"`
		ID     string `json:"id"`
	}{"deleted", id})
}

// parseID reads the {id} path value: a UUID in the canonical 8-4-4-4-12
// hexadecimal form, surrounding spaces allowed. It returns the id in lower
// case. Validating here keeps malformed ids away from the database.
func parseID(r *http.Request) (string, bool) {
	id := strings.ToLower(strings.TrimSpace(r.PathValue("id")))
	if len(id) != 36 {
		return "", false
	}
	for i := range len(id) {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return "", false
			}
		}
	}
	return id, true
}

// fail answers a storage error: 404 for a missing todo, 503 while the schema
// is not migrated, otherwise a generic 500. Details go only to the log, on
// one line.
func (t *Todos) fail(w http.ResponseWriter, op string, err error) {
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusNotFound, msgNotFound)
		return
	}
	t.log.Printf("storage error op=%s: %s", op, strings.Join(strings.Fields(err.Error()), " "))
	if errors.Is(err, storage.ErrNotMigrated) {
		writeError(w, http.StatusServiceUnavailable, msgNotMigrated)
		return
	}
	writeError(w, http.StatusInternalServerError, msgInternal)
}
