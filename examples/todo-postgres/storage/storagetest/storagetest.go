// Package storagetest gives this project's PostgreSQL tests (storage/, work/)
// a schema of their own in the database at DATABASE_URL, created for one test
// and dropped when it ends, so that they never touch the tables of the
// database they are pointed at. Only tests import it.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Pool returns a pool whose search_path is a fresh, empty schema of the
// database at DATABASE_URL. The schema is dropped and the pool closed when
// the test ends. The test is skipped when DATABASE_URL is not set.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		t.Skip("DATABASE_URL is not set; skipping this PostgreSQL test")
	}
	ctx := t.Context()
	suffix := make([]byte, 6)
	rand.Read(suffix)
	schema := "todo_test_" + hex.EncodeToString(suffix)

	admin, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
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

// MigratedPool returns Pool with the Up section of every migration in dir
// (the project's migrations/, as a path from the test's package) applied.
func MigratedPool(t testing.TB, dir string) *pgxpool.Pool {
	t.Helper()
	pool := Pool(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found in %s: %v", dir, err)
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
	return pool
}

// migrationLock is the advisory lock held while migrations are applied:
// CREATE EXTENSION IF NOT EXISTS is not safe to run from two sessions at
// once, and go test runs packages in parallel.
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
