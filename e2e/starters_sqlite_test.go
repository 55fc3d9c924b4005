package e2e

// End-to-end tests of the SQLite Todo starter (examples/todo-sqlite), run as
// a real process: CRUD, validation and the write limiter; persistence across
// a restart; start-up failures that must never serve; the limiter window
// reset.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/scaffold"
	"meshgo.dev/mesh/meshtest"
)

// sqliteTodo is the wire form of a todo of the SQLite starter.
type sqliteTodo struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Completed bool   `json:"completed"`
	CreatedAt string `json:"created_at"`
}

func decodeJSON[T any](t *testing.T, what, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%s: decode %q: %v", what, body, err)
	}
	return v
}

// sqliteEnv is the environment of a SQLite starter run.
func sqliteEnv(dbPath string, window, max int) []string {
	return []string{
		"TODO_DB_PATH=" + dbPath,
		fmt.Sprintf("TODO_RATE_LIMIT_WINDOW_SECONDS=%d", window),
		fmt.Sprintf("TODO_RATE_LIMIT_MAX_REQUESTS=%d", max),
	}
}

// sqliteNeverLogs are markers of the clustered and PostgreSQL paths that the
// local starter must never print.
var sqliteNeverLogs = []string{"runtime bootstrap", "cluster_port=", "db_backend=postgres", "mesh-rt"}

func TestStarterSQLiteCRUDValidationAndLimiter(t *testing.T) {
	bin := exampleBinary(t, "todo-sqlite")
	dbPath := filepath.Join(t.TempDir(), "todo.sqlite3")
	app, base := startStarter(t, "todo-sqlite", bin, "", sqliteEnv(dbPath, 60, 3)...)
	port := strings.TrimPrefix(base, "http://127.0.0.1:")

	starterExpect(t, "GET", base+"/health", "", http.StatusOK, fmt.Sprintf(
		`{"status":"ok","mode":"local","db_backend":"sqlite","db_path":%q,"storage_mode":"single-node","rate_limit_window_seconds":60,"rate_limit_max_requests":3}`, dbPath))
	starterExpect(t, "GET", base+"/todos", "", http.StatusOK, `[]`)
	starterExpect(t, "GET", base+"/todos/abc", "", http.StatusBadRequest, `{"error":"invalid todo id"}`)
	starterExpect(t, "GET", base+"/todos/0", "", http.StatusBadRequest, `{"error":"invalid todo id"}`)
	starterExpect(t, "GET", base+"/todos/999999", "", http.StatusNotFound, `{"error":"todo not found"}`)

	// Write 1 of 3: rejected by validation, but it spends budget.
	starterExpect(t, "POST", base+"/todos", `{"title":"   "}`, http.StatusBadRequest, `{"error":"title is required"}`)
	// Write 2 of 3.
	created := decodeJSON[sqliteTodo](t, "create", starterExpectStatus(t, "POST", base+"/todos", `{"title":"buy milk"}`, http.StatusCreated).body)
	if created.ID != "1" || created.Title != "buy milk" || created.Completed {
		t.Fatalf("created todo = %+v, want id 1, title buy milk, not completed", created)
	}
	if at, err := time.Parse(time.RFC3339, created.CreatedAt); err != nil || !strings.HasSuffix(created.CreatedAt, "Z") || time.Since(at) > time.Hour {
		t.Fatalf("created_at = %q, want a recent RFC 3339 UTC time", created.CreatedAt)
	}
	got := decodeJSON[sqliteTodo](t, "get", starterExpectStatus(t, "GET", base+"/todos/1", "", http.StatusOK).body)
	if got != created {
		t.Fatalf("GET /todos/1 = %+v, want %+v", got, created)
	}
	// Write 3 of 3.
	toggled := decodeJSON[sqliteTodo](t, "toggle", starterExpectStatus(t, "PUT", base+"/todos/1", "", http.StatusOK).body)
	if !toggled.Completed || toggled.ID != "1" {
		t.Fatalf("PUT /todos/1 = %+v, want todo 1 completed", toggled)
	}
	// Budget spent: every write is refused and changes nothing; reads still work.
	starterExpect(t, "POST", base+"/todos", `{"title":"one too many"}`, http.StatusTooManyRequests, `{"error":"rate limited"}`)
	starterExpect(t, "PUT", base+"/todos/1", "", http.StatusTooManyRequests, `{"error":"rate limited"}`)
	starterExpect(t, "DELETE", base+"/todos/1", "", http.StatusTooManyRequests, `{"error":"rate limited"}`)
	list := decodeJSON[[]sqliteTodo](t, "list", starterExpectStatus(t, "GET", base+"/todos", "", http.StatusOK).body)
	if len(list) != 1 || list[0].ID != "1" || !list[0].Completed {
		t.Fatalf("GET /todos = %+v, want only todo 1, completed", list)
	}

	log := app.Log()
	starterInOrder(t, "log", log,
		fmt.Sprintf("[todo-api] local config loaded port=%s db_path=%s write_limit_window_seconds=60 write_limit_max=3\n", port, dbPath),
		fmt.Sprintf("[todo-api] SQLite schema ready path=%s\n", dbPath),
		fmt.Sprintf("[todo-api] local runtime ready port=%s db_backend=sqlite storage_mode=single-node db_path=%s write_limit_window_seconds=60 write_limit_max=3\n", port, dbPath),
		fmt.Sprintf("[todo-api] HTTP server starting on :%s\n", port),
	)
	starterAbsent(t, "log", log, sqliteNeverLogs...)
}

func TestStarterSQLiteRestartKeepsData(t *testing.T) {
	bin := exampleBinary(t, "todo-sqlite")
	dbPath := filepath.Join(t.TempDir(), "todo.sqlite3")
	first, base := startStarter(t, "todo-sqlite-first", bin, "", sqliteEnv(dbPath, 60, 10)...)
	created := decodeJSON[sqliteTodo](t, "create", starterExpectStatus(t, "POST", base+"/todos", `{"title":"survive a restart"}`, http.StatusCreated).body)
	starterExpectStatus(t, "PUT", base+"/todos/"+created.ID, "", http.StatusOK)

	// SIGTERM is a graceful stop: exit 0 after draining.
	if err := first.Terminate(); err != nil {
		t.Fatal(err)
	}
	if code, err := first.Wait(time.Second); err != nil || code != 0 {
		t.Fatalf("exit after SIGTERM = %d, %v; want 0", code, err)
	}
	starterContains(t, "first run's log", first.Log(), "[todo-api] Shutting down")

	// A new process on a new port over the same file sees the todo as it was.
	_, base = startStarter(t, "todo-sqlite-second", bin, "", sqliteEnv(dbPath, 60, 10)...)
	list := decodeJSON[[]sqliteTodo](t, "list", starterExpectStatus(t, "GET", base+"/todos", "", http.StatusOK).body)
	if len(list) != 1 || list[0] != (sqliteTodo{ID: created.ID, Title: "survive a restart", Completed: true, CreatedAt: created.CreatedAt}) {
		t.Fatalf("GET /todos after restart = %+v, want the completed todo %s", list, created.ID)
	}
	starterExpect(t, "DELETE", base+"/todos/"+created.ID, "", http.StatusOK, fmt.Sprintf(`{"status":"deleted","id":%q}`, created.ID))
	starterExpect(t, "GET", base+"/todos", "", http.StatusOK, `[]`)
	starterExpect(t, "GET", base+"/todos/"+created.ID, "", http.StatusNotFound, `{"error":"todo not found"}`)
}

// startFailing starts a starter binary that must exit with status 1 within
// 5 s without serving, and returns its log. PORT is a free port unless env
// sets it (the last value of a variable wins).
func startFailing(t *testing.T, name, binary string, env ...string) string {
	t.Helper()
	port := meshtest.FreePort(t)
	env = append(append(starterEnv(), fmt.Sprintf("PORT=%d", port)), env...)
	p := meshtest.StartProcess(t, name, binary, env, "")
	code, err := p.Wait(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code != 1 {
		t.Fatalf("exit code %d, want 1; log:\n%s", code, p.Log())
	}
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("port %d accepts connections after a failed start", port)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial port %d after a failed start: %v, want connection refused", port, err)
	}
	return p.Log()
}

func TestStarterSQLiteBadDatabasePathNeverServes(t *testing.T) {
	bin := exampleBinary(t, "todo-sqlite")
	dir := t.TempDir() // a directory is not a database file
	log := startFailing(t, "todo-sqlite-bad-db", bin, sqliteEnv(dir, 60, 5)...)
	starterInOrder(t, "log", log,
		"[todo-api] local config loaded port=",
		fmt.Sprintf(" db_path=%s ", dir),
		"[todo-api] Database init failed: ",
	)
	starterAbsent(t, "log", log, append([]string{"SQLite schema ready", "local runtime ready", "HTTP server starting"}, sqliteNeverLogs...)...)
}

func TestStarterSQLiteConfigErrorsNeverServe(t *testing.T) {
	bin := exampleBinary(t, "todo-sqlite")
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{
			name: "blank db path",
			env:  []string{"TODO_DB_PATH=  "},
			want: []string{"[todo-api] Config error: Invalid TODO_DB_PATH: expected a non-empty path\n"},
		},
		{
			name: "non-numeric port",
			env:  []string{"PORT=eighty"},
			want: []string{"[todo-api] Config error: Invalid PORT: expected a positive integer\n"},
		},
		{
			name: "bad limiter",
			env:  []string{"TODO_RATE_LIMIT_WINDOW_SECONDS=soon", "TODO_RATE_LIMIT_MAX_REQUESTS=0"},
			want: []string{
				"[todo-api] Config error: Invalid TODO_RATE_LIMIT_WINDOW_SECONDS: expected a positive integer\n",
				"[todo-api] Config error: Invalid TODO_RATE_LIMIT_MAX_REQUESTS: expected a positive integer\n",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := startFailing(t, "todo-sqlite-config", bin, append([]string{"TODO_DB_PATH=" + filepath.Join(t.TempDir(), "todo.sqlite3")}, tt.env...)...)
			starterInOrder(t, "log", log, tt.want...)
			starterAbsent(t, "log", log, "local config loaded", "HTTP server starting")
		})
	}
}

func TestStarterSQLiteLimiterWindowResets(t *testing.T) {
	bin := exampleBinary(t, "todo-sqlite")
	_, base := startStarter(t, "todo-sqlite-window", bin, "", sqliteEnv(filepath.Join(t.TempDir(), "todo.sqlite3"), 1, 2)...)
	starterExpectStatus(t, "POST", base+"/todos", `{"title":"first"}`, http.StatusCreated)
	starterExpectStatus(t, "POST", base+"/todos", `{"title":"second"}`, http.StatusCreated)
	refusedAt := time.Now()
	starterExpect(t, "POST", base+"/todos", `{"title":"third"}`, http.StatusTooManyRequests, `{"error":"rate limited"}`)

	// The window is 1 s, anchored at start-up, so a write fits again within
	// about a second. Refused attempts spend nothing, so polling is safe.
	meshtest.Eventually(t, 3*time.Second, 50*time.Millisecond, func() error {
		got := starterCall(t, "POST", base+"/todos", `{"title":"after the window"}`)
		if got.status != http.StatusCreated {
			return fmt.Errorf("POST /todos = %d %s", got.status, got.body)
		}
		return nil
	})
	t.Logf("write allowed again %v after the first refusal", time.Since(refusedAt).Round(time.Millisecond))
	list := decodeJSON[[]sqliteTodo](t, "list", starterExpectStatus(t, "GET", base+"/todos", "", http.StatusOK).body)
	if len(list) != 3 || list[2].Title != "after the window" {
		t.Fatalf("GET /todos = %+v, want first, second and the write after the window", list)
	}
}

// TestStarterSQLiteExampleTestsAndBuild runs the example's own tests through
// meshc test and builds it elsewhere with meshc build --output; neither may
// write into the example.
func TestStarterSQLiteExampleTestsAndBuild(t *testing.T) {
	meshc := starterMeshc(t)
	example := filepath.Join(starterRoot(t), "examples", "todo-sqlite")
	before, err := scaffold.Manifest(example)
	if err != nil {
		t.Fatal(err)
	}
	out := starterMustCmd(t, "meshc-test", example, starterGoEnv(), meshc, "test", ".", "--", "-count=1")
	for _, pkg := range []string{"api", "config", "ratelimit", "storage"} {
		starterContains(t, "meshc test output", out, "ok  \ttodo-sqlite/"+pkg)
	}
	bin := filepath.Join(t.TempDir(), "todo-sqlite")
	starterMustCmd(t, "meshc-build", example, starterGoEnv(), meshc, "build", ".", "--output", bin)
	if info, err := os.Stat(bin); err != nil || info.Mode()&0o111 == 0 {
		t.Fatalf("meshc build --output %s: no executable (%v)", bin, err)
	}
	after, err := scaffold.Manifest(example)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) {
		t.Fatalf("meshc test or build wrote into %s:\nbefore %v\nafter  %v", example, before, after)
	}
}
