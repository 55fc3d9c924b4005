package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"todo-postgres/config"
	"todo-postgres/ratelimit"
	"todo-postgres/storage"
)

// memStore is an in-memory Store. err, when set, is returned by every call.
type memStore struct {
	mu     sync.Mutex
	todos  []storage.Todo // oldest first
	next   int
	err    error
	clears int // ClearCompleted calls
}

func (m *memStore) List(context.Context) ([]storage.Todo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	out := slices.Clone(m.todos)
	slices.Reverse(out)
	return out, nil
}

func (m *memStore) Get(_ context.Context, id string) (storage.Todo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return storage.Todo{}, m.err
	}
	if i := m.find(id); i >= 0 {
		return m.todos[i], nil
	}
	return storage.Todo{}, fmt.Errorf("get todo %s: %w", id, storage.ErrNotFound)
}

func (m *memStore) Create(_ context.Context, title string) (storage.Todo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return storage.Todo{}, m.err
	}
	m.next++
	t := storage.Todo{
		ID:        fmt.Sprintf("00000000-0000-4000-8000-%012d", m.next),
		Title:     title,
		CreatedAt: time.Date(2026, 4, 2, 12, 0, m.next, 0, time.UTC),
	}
	m.todos = append(m.todos, t)
	return t, nil
}

func (m *memStore) Toggle(_ context.Context, id string) (storage.Todo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return storage.Todo{}, m.err
	}
	i := m.find(id)
	if i < 0 {
		return storage.Todo{}, storage.ErrNotFound
	}
	m.todos[i].Completed = !m.todos[i].Completed
	return m.todos[i], nil
}

func (m *memStore) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	i := m.find(id)
	if i < 0 {
		return storage.ErrNotFound
	}
	m.todos = slices.Delete(m.todos, i, i+1)
	return nil
}

// ClearCompleted makes memStore the store of package work too.
func (m *memStore) ClearCompleted(_ context.Context, cutoff time.Time) (int64, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return 0, 0, m.err
	}
	m.clears++
	before := len(m.todos)
	m.todos = slices.DeleteFunc(m.todos, func(t storage.Todo) bool { return t.Completed && !t.CreatedAt.After(cutoff) })
	return int64(before - len(m.todos)), int64(len(m.todos)), nil
}

func (m *memStore) find(id string) int {
	return slices.IndexFunc(m.todos, func(t storage.Todo) bool { return t.ID == id })
}

// local stands in for mesh.Clustered: unit tests run without a Mesh runtime.
func local(_ int, h func(http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(h)
}

var testConfig = config.Config{DatabaseURL: "postgres://todo:s3cret-pw@db:5432/todo", Port: 8080, RateLimitWindowSeconds: 60, RateLimitMaxRequests: 20}

const wantHealth = `{"status":"ok","db_backend":"postgres","migration_strategy":"meshc migrate","clustered_handler":"work.SyncTodos","rate_limit_window_seconds":60,"rate_limit_max_requests":20}`

func newServer(store Store, max int, logs io.Writer) http.Handler {
	todos := NewTodos(store, log.New(logs, "", 0))
	return newRouter(todos, Health(testConfig), ratelimit.New(time.Hour, max), local)
}

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
	h := newServer(&memStore{err: errors.New("health must not touch storage")}, 5, io.Discard)
	expect(t, h, "GET", "/health", "", http.StatusOK, wantHealth)
}

func TestMetricsAreServed(t *testing.T) {
	h := newServer(&memStore{err: errors.New("metrics must not touch storage")}, 5, io.Discard)
	status, body := do(t, h, "GET", MetricsPath, "")
	if status != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("GET %s = %d, want 200 with the Prometheus text format:\n%.300s", MetricsPath, status, body)
	}
}

func TestReadsAreClusteredWithCountOne(t *testing.T) {
	var wrapped []string
	record := func(n int, h func(http.ResponseWriter, *http.Request)) http.Handler {
		name := runtime.FuncForPC(reflect.ValueOf(h).Pointer()).Name()
		wrapped = append(wrapped, fmt.Sprintf("%d %s", n, name[strings.LastIndex(name, ".(")+1:]))
		return http.HandlerFunc(h)
	}
	newRouter(NewTodos(&memStore{}, log.New(io.Discard, "", 0)), Health(testConfig), ratelimit.New(time.Hour, 1), record)
	want := []string{"1 (*Todos).List-fm", "1 (*Todos).Get-fm"}
	if !slices.Equal(wrapped, want) {
		t.Fatalf("clustered routes = %q, want %q", wrapped, want)
	}
}

func TestCRUD(t *testing.T) {
	h := newServer(&memStore{}, 100, io.Discard)
	expect(t, h, "GET", "/todos", "", http.StatusOK, `[]`)

	status, body := do(t, h, "POST", "/todos", `{"title":"  buy milk  "}`)
	if status != http.StatusCreated {
		t.Fatalf("POST /todos = %d %s, want 201", status, body)
	}
	created := decode[todoJSON](t, body)
	if created.Title != "buy milk" || created.Completed || created.CreatedAt != "2026-04-02T12:00:01Z" {
		t.Fatalf("created todo = %+v, want the trimmed title, not completed, RFC 3339 UTC time", created)
	}
	id := created.ID

	status, body = do(t, h, "GET", "/todos/"+strings.ToUpper(id), "")
	if status != http.StatusOK || decode[todoJSON](t, body) != created {
		t.Fatalf("GET /todos/{upper-case id} = %d %s, want the created todo", status, body)
	}
	status, body = do(t, h, "PUT", "/todos/"+id, `ignored`)
	if toggled := decode[todoJSON](t, body); status != http.StatusOK || !toggled.Completed {
		t.Fatalf("PUT = %d %s, want completed", status, body)
	}
	if status, body := do(t, h, "POST", "/todos", `{"title":"second"}`); status != http.StatusCreated {
		t.Fatalf("POST = %d %s", status, body)
	}
	status, body = do(t, h, "GET", "/todos", "")
	if list := decode[[]todoJSON](t, body); status != http.StatusOK || len(list) != 2 || list[0].Title != "second" || !list[1].Completed {
		t.Fatalf("GET /todos = %d %s, want both todos, newest first", status, body)
	}
	expect(t, h, "DELETE", "/todos/"+id, "", http.StatusOK, `{"status":"deleted","id":"`+id+`"}`)
	expect(t, h, "GET", "/todos/"+id, "", http.StatusNotFound, `{"error":"todo not found"}`)
}

func TestInvalidIDs(t *testing.T) {
	store := &memStore{err: errors.New("invalid ids must not reach storage")}
	h := newServer(store, 100, io.Discard)
	for _, id := range []string{
		"abc", "1", "not-a-uuid",
		"00000000-0000-4000-8000-00000000000",   // too short
		"00000000-0000-4000-8000-0000000000000", // too long
		"00000000x0000-4000-8000-000000000000",  // wrong separator
		"0000000g-0000-4000-8000-000000000000",  // not hexadecimal
		"{00000000-0000-4000-8000-000000000000}",
	} {
		for _, method := range []string{"GET", "PUT", "DELETE"} {
			expect(t, h, method, "/todos/"+id, "", http.StatusBadRequest, `{"error":"invalid todo id"}`)
		}
	}
}

func TestUnknownTodo(t *testing.T) {
	h := newServer(&memStore{}, 100, io.Discard)
	for _, method := range []string{"GET", "PUT", "DELETE"} {
		expect(t, h, method, "/todos/11111111-2222-4333-8444-555555555555", "", http.StatusNotFound, `{"error":"todo not found"}`)
	}
}

func TestTitleRequired(t *testing.T) {
	h := newServer(&memStore{}, 100, io.Discard)
	for _, body := range []string{"", "{}", `{"title":"  "}`, `{"title":null}`, `{"title":true}`, "{", "title=x"} {
		expect(t, h, "POST", "/todos", body, http.StatusBadRequest, `{"error":"title is required"}`)
	}
	expect(t, h, "GET", "/todos", "", http.StatusOK, `[]`)
}

func TestWriteLimit(t *testing.T) {
	h := newServer(&memStore{}, 3, io.Discard)
	expect(t, h, "POST", "/todos", `{}`, http.StatusBadRequest, `{"error":"title is required"}`)
	expect(t, h, "DELETE", "/todos/bad", "", http.StatusBadRequest, `{"error":"invalid todo id"}`)
	if status, body := do(t, h, "POST", "/todos", `{"title":"allowed"}`); status != http.StatusCreated {
		t.Fatalf("third write = %d %s, want 201", status, body)
	}
	for _, method := range []string{"POST", "PUT", "DELETE"} {
		target := "/todos"
		if method != "POST" {
			target = "/todos/00000000-0000-4000-8000-000000000001"
		}
		expect(t, h, method, target, `{"title":"denied"}`, http.StatusTooManyRequests, `{"error":"rate limited"}`)
	}
	for range 5 {
		expect(t, h, "GET", "/health", "", http.StatusOK, wantHealth)
	}
	status, body := do(t, h, "GET", "/todos", "")
	if list := decode[[]todoJSON](t, body); status != http.StatusOK || len(list) != 1 || list[0].Completed {
		t.Fatalf("GET /todos = %d %s, want the one allowed todo, untouched", status, body)
	}
}

func TestStorageErrors(t *testing.T) {
	const secret = "s3cret-pw"
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantBody   string
	}{
		{
			name:       "unmigrated schema",
			err:        fmt.Errorf("list todos: %w: %w", storage.ErrNotMigrated, errors.New(`ERROR: relation "todos" does not exist (SQLSTATE 42P01)`)),
			wantStatus: http.StatusServiceUnavailable,
			wantBody:   `{"error":"database schema is not migrated; run meshc migrate . up"}`,
		},
		{
			name:       "other failure",
			err:        errors.New("failed to connect to postgres://todo:" + secret + "@db:5432/todo"),
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"error":"internal error"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := newServer(&memStore{err: tt.err}, 100, &logs)
			requests := [][3]string{
				{"GET", "/todos", ""},
				{"GET", "/todos/00000000-0000-4000-8000-000000000001", ""},
				{"POST", "/todos", `{"title":"x"}`},
				{"PUT", "/todos/00000000-0000-4000-8000-000000000001", ""},
				{"DELETE", "/todos/00000000-0000-4000-8000-000000000001", ""},
			}
			for _, req := range requests {
				status, body := do(t, h, req[0], req[1], req[2])
				if status != tt.wantStatus || strings.TrimSpace(body) != tt.wantBody || strings.Contains(body, secret) {
					t.Fatalf("%s %s = %d %s, want %d %s", req[0], req[1], status, body, tt.wantStatus, tt.wantBody)
				}
			}
			if got := strings.Count(logs.String(), "storage error"); got != len(requests) {
				t.Fatalf("logged %d storage errors, want %d:\n%s", got, len(requests), logs.String())
			}
		})
	}
}
