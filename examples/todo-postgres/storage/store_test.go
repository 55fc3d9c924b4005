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
		if _, err := pool.Exec(t.Context(), up); err != nil {
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
}
