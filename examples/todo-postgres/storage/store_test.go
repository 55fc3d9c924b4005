package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// These tests need a PostgreSQL database: set DATABASE_URL to run them. Each
// test works in a schema of its own, created and dropped by the test, so it
// never touches the tables of the database it is pointed at.

// testPool returns a pool whose search_path is a fresh, empty schema.
func testPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		t.Skip("DATABASE_URL is not set; skipping the PostgreSQL storage tests")
	}
	ctx := t.Context()
	suffix := make([]byte, 6)
	rand.Read(suffix)
	schema := "todo_test_" + hex.EncodeToString(suffix)

	admin, err := Connect(ctx, url)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(admin.Close)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// migrateUp applies the Up section of every migration in ../migrations.
func migrateUp(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		up, _, _ := strings.Cut(string(raw), "-- +goose Down")
		if err := applyLocked(t.Context(), pool, up); err != nil {
			t.Fatalf("apply %s: %v", file, err)
		}
	}
}

func TestCRUD(t *testing.T) {
	pool := testPool(t)
	migrateUp(t, pool)
	s := New(pool)
	ctx := t.Context()

	todos, err := s.List(ctx)
	if err != nil || len(todos) != 0 {
		t.Fatalf("List on an empty table = %v, %v; want an empty list", todos, err)
	}
	first, err := s.Create(ctx, "buy milk")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if len(first.ID) != 36 || first.Title != "buy milk" || first.Completed || first.CreatedAt.IsZero() {
		t.Fatalf("Create = %+v, want a UUID, the title, not completed, a creation time", first)
	}
	got, err := s.Get(ctx, first.ID)
	if err != nil || got.ID != first.ID || got.Title != first.Title || !got.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, first)
	}
	toggled, err := s.Toggle(ctx, first.ID)
	if err != nil || !toggled.Completed {
		t.Fatalf("Toggle = %+v, %v; want completed", toggled, err)
	}
	second, err := s.Create(ctx, "walk the dog")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	todos, err = s.List(ctx)
	if err != nil || len(todos) != 2 || todos[0].ID != second.ID || todos[1].ID != first.ID {
		t.Fatalf("List = %+v, %v; want both todos, newest first", todos, err)
	}
	if err := s.Delete(ctx, first.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, first.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
	}
}

func TestClearCompleted(t *testing.T) {
	pool := testPool(t)
	migrateUp(t, pool)
	s := New(pool)
	ctx := t.Context()
	var done []Todo
	for _, title := range []string{"done early", "done late", "open"} {
		todo, err := s.Create(ctx, title)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if title != "open" {
			if todo, err = s.Toggle(ctx, todo.ID); err != nil {
				t.Fatalf("Toggle: %v", err)
			}
			done = append(done, todo)
		}
	}
	// A cut-off before the second completed todo was created keeps it.
	deleted, remaining, err := s.ClearCompleted(ctx, done[0].CreatedAt)
	if err != nil || deleted != 1 || remaining != 2 {
		t.Fatalf("ClearCompleted(first's creation time) = %d, %d, %v; want 1 deleted, 2 remaining", deleted, remaining, err)
	}
	deleted, remaining, err = s.ClearCompleted(ctx, time.Now().Add(time.Hour))
	if err != nil || deleted != 1 || remaining != 1 {
		t.Fatalf("ClearCompleted(later) = %d, %d, %v; want 1 deleted, 1 remaining", deleted, remaining, err)
	}
	if todos, err := s.List(ctx); err != nil || len(todos) != 1 || todos[0].Title != "open" {
		t.Fatalf("List after clearing = %+v, %v; want the open todo only", todos, err)
	}
}

func TestMissingTodoIsNotFound(t *testing.T) {
	pool := testPool(t)
	migrateUp(t, pool)
	s := New(pool)
	const missing = "00000000-0000-4000-8000-000000000000"
	if _, err := s.Get(t.Context(), missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Toggle(t.Context(), missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Toggle: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(t.Context(), missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete: err = %v, want ErrNotFound", err)
	}
}

func TestUnmigratedSchema(t *testing.T) {
	s := New(testPool(t))
	if _, err := s.List(t.Context()); !errors.Is(err, ErrNotMigrated) {
		t.Errorf("List: err = %v, want ErrNotMigrated", err)
	}
	if _, err := s.Create(t.Context(), "x"); !errors.Is(err, ErrNotMigrated) {
		t.Errorf("Create: err = %v, want ErrNotMigrated", err)
	}
	if _, _, err := s.ClearCompleted(t.Context(), time.Now()); !errors.Is(err, ErrNotMigrated) {
		t.Errorf("ClearCompleted: err = %v, want ErrNotMigrated", err)
	}
}

// migrationLock is the advisory lock the packages' tests hold while they
// apply migrations: CREATE EXTENSION IF NOT EXISTS is not safe to run from
// two sessions at once, and go test runs packages in parallel.
const migrationLock = 74201

// applyLocked runs sql on one connection of pool while holding
// migrationLock.
func applyLocked(ctx context.Context, pool *pgxpool.Pool, sql string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", migrationLock)
	_, err = conn.Exec(ctx, sql)
	return err
}
