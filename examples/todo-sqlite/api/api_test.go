package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"todo-sqlite/config"
	"todo-sqlite/ratelimit"
	"todo-sqlite/storage"
)

var testConfig = config.Config{DBPath: "todo.sqlite3", Port: 8080, RateLimitWindowSeconds: 60, RateLimitMaxRequests: 100}

// newServer returns a router over a fresh SQLite file with a limiter of max
// writes per hour.
func newServer(t *testing.T, max int) http.Handler {
	t.Helper()
	store, err := storage.Open(t.Context(), filepath.Join(t.TempDir(), "todo.sqlite3"))
	if err != nil {
		t.Fatalf("storage.Open: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	logger := log.New(io.Discard, "", 0)
	return NewRouter(NewTodos(store, logger), Health(testConfig), ratelimit.New(time.Hour, max))
}

// do sends one request and returns the status and the raw body.
func do(t *testing.T, h http.Handler, method, target, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, r))
	return rec.Code, rec.Body.String()
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

func expect(t *testing.T, h http.Handler, method, target, body string, wantStatus int, wantBody string) {
	t.Helper()
	status, got := do(t, h, method, target, body)
	if status != wantStatus || strings.TrimSpace(got) != wantBody {
		t.Fatalf("%s %s = %d %s, want %d %s", method, target, status, got, wantStatus, wantBody)
	}
}

func TestHealth(t *testing.T) {
	h := newServer(t, 5)
	expect(t, h, "GET", "/health", "", http.StatusOK,
		`{"status":"ok","mode":"local","db_backend":"sqlite","db_path":"todo.sqlite3","storage_mode":"single-node","rate_limit_window_seconds":60,"rate_limit_max_requests":100}`)
}

func TestCRUD(t *testing.T) {
	h := newServer(t, 100)
	expect(t, h, "GET", "/todos", "", http.StatusOK, `[]`)

	status, body := do(t, h, "POST", "/todos", `{"title":"  buy milk  "}`)
	if status != http.StatusCreated {
		t.Fatalf("POST /todos = %d %s, want 201", status, body)
	}
	created := decode[todoJSON](t, body)
	if created.ID != "1" || created.Title != "buy milk" || created.Completed {
		t.Fatalf("created todo = %+v, want id 1, trimmed title, not completed", created)
	}
	if at, err := time.Parse(time.RFC3339, created.CreatedAt); err != nil || at.Location() != time.UTC {
		t.Fatalf("created_at = %q, want RFC 3339 in UTC", created.CreatedAt)
	}

	status, body = do(t, h, "GET", "/todos/1", "")
	if status != http.StatusOK || decode[todoJSON](t, body) != created {
		t.Fatalf("GET /todos/1 = %d %s, want the created todo", status, body)
	}

	status, body = do(t, h, "PUT", "/todos/1", "")
	if toggled := decode[todoJSON](t, body); status != http.StatusOK || !toggled.Completed {
		t.Fatalf("PUT /todos/1 = %d %s, want completed", status, body)
	}

	status, body = do(t, h, "GET", "/todos", "")
	if list := decode[[]todoJSON](t, body); status != http.StatusOK || len(list) != 1 || !list[0].Completed {
		t.Fatalf("GET /todos = %d %s, want the one completed todo", status, body)
	}

	expect(t, h, "DELETE", "/todos/1", "", http.StatusOK, `{"status":"deleted","id":"1"}`)
	expect(t, h, "GET", "/todos/1", "", http.StatusNotFound, `{"error":"todo not found"}`)
	expect(t, h, "GET", "/todos", "", http.StatusOK, `[]`)
}

func TestInvalidIDs(t *testing.T) {
	h := newServer(t, 100)
	for _, id := range []string{"abc", "0", "-1", "1.5", "%20", "99999999999999999999"} {
		for _, method := range []string{"GET", "PUT", "DELETE"} {
			expect(t, h, method, "/todos/"+id, "", http.StatusBadRequest, `{"error":"invalid todo id"}`)
		}
	}
}

func TestUnknownTodo(t *testing.T) {
	h := newServer(t, 100)
	for _, method := range []string{"GET", "PUT", "DELETE"} {
		expect(t, h, method, "/todos/999999", "", http.StatusNotFound, `{"error":"todo not found"}`)
	}
}

func TestTitleRequired(t *testing.T) {
	h := newServer(t, 100)
	for _, body := range []string{"", "{}", `{"title":""}`, `{"title":"   "}`, `{"title":null}`, `{"title":5}`, "not json", `["title"]`} {
		expect(t, h, "POST", "/todos", body, http.StatusBadRequest, `{"error":"title is required"}`)
	}
	expect(t, h, "GET", "/todos", "", http.StatusOK, `[]`)
}

func TestWriteLimit(t *testing.T) {
	h := newServer(t, 3)
	// Rejected writes spend budget too: the limiter runs before validation.
	expect(t, h, "POST", "/todos", `{"title":""}`, http.StatusBadRequest, `{"error":"title is required"}`)
	expect(t, h, "DELETE", "/todos/999", "", http.StatusNotFound, `{"error":"todo not found"}`)
	if status, body := do(t, h, "POST", "/todos", `{"title":"last one"}`); status != http.StatusCreated {
		t.Fatalf("third write = %d %s, want 201", status, body)
	}
	expect(t, h, "POST", "/todos", `{"title":"too many"}`, http.StatusTooManyRequests, `{"error":"rate limited"}`)
	expect(t, h, "PUT", "/todos/1", "", http.StatusTooManyRequests, `{"error":"rate limited"}`)
	expect(t, h, "DELETE", "/todos/1", "", http.StatusTooManyRequests, `{"error":"rate limited"}`)

	// Reads are never limited, and refused writes changed nothing.
	for range 5 {
		expect(t, h, "GET", "/health", "", http.StatusOK, `{"status":"ok","mode":"local","db_backend":"sqlite","db_path":"todo.sqlite3","storage_mode":"single-node","rate_limit_window_seconds":60,"rate_limit_max_requests":100}`)
	}
	status, body := do(t, h, "GET", "/todos", "")
	if list := decode[[]todoJSON](t, body); status != http.StatusOK || len(list) != 1 || list[0].Title != "last one" || list[0].Completed {
		t.Fatalf("GET /todos = %d %s, want only the one allowed todo, untouched", status, body)
	}
}

// brokenStore fails every call with an error that must not reach clients.
type brokenStore struct{}

var errBroken = errors.New("disk I/O error reading /secret/path/todo.sqlite3")

func (brokenStore) List(context.Context) ([]storage.Todo, error) { return nil, errBroken }
func (brokenStore) Get(context.Context, int64) (storage.Todo, error) {
	return storage.Todo{}, errBroken
}
func (brokenStore) Create(context.Context, string) (storage.Todo, error) {
	return storage.Todo{}, errBroken
}
func (brokenStore) Toggle(context.Context, int64) (storage.Todo, error) {
	return storage.Todo{}, errBroken
}
func (brokenStore) Delete(context.Context, int64) error { return errBroken }

func TestStorageErrorsStayInTheLog(t *testing.T) {
	var logs bytes.Buffer
	h := NewRouter(NewTodos(brokenStore{}, log.New(&logs, "", 0)), Health(testConfig), ratelimit.New(time.Hour, 100))
	requests := []struct{ method, target, body string }{
		{"GET", "/todos", ""},
		{"GET", "/todos/1", ""},
		{"POST", "/todos", `{"title":"x"}`},
		{"PUT", "/todos/1", ""},
		{"DELETE", "/todos/1", ""},
	}
	for _, req := range requests {
		expect(t, h, req.method, req.target, req.body, http.StatusInternalServerError, `{"error":"internal error"}`)
	}
	if got := strings.Count(logs.String(), errBroken.Error()); got != len(requests) {
		t.Fatalf("log has %d storage errors, want %d:\n%s", got, len(requests), logs.String())
	}
}
