package work

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"meshgo.dev/mesh"
	"meshgo.dev/mesh/meshtest/clustertest"

	"todo-postgres/storage"
)

func TestSyncTodos(t *testing.T) {
	got, err := SyncTodos(t.Context())
	if err != nil || got != 2 {
		t.Fatalf("SyncTodos() = %d, %v; want 2, nil", got, err)
	}
}

// fakeStore counts its calls and reports fixed counts.
type fakeStore struct {
	calls  int
	cutoff time.Time
	err    error
}

func (f *fakeStore) ClearCompleted(_ context.Context, cutoff time.Time) (int64, int64, error) {
	f.calls++
	f.cutoff = cutoff
	return 3, 4, f.err
}

// useStore sets the store for one test and restores the previous one.
func useStore(t *testing.T, s Store) {
	storeMu.RLock()
	prev := store
	storeMu.RUnlock()
	Use(s)
	t.Cleanup(func() { Use(prev) })
}

func TestClearCompleted(t *testing.T) {
	cutoff := time.Date(2026, 4, 2, 12, 0, 0, 0, time.UTC)
	fake := &fakeStore{}
	useStore(t, fake)
	got, err := ClearCompleted(t.Context(), ClearInput{Before: cutoff})
	if want := (ClearReport{Before: cutoff, Deleted: 3, Remaining: 4}); err != nil || got != want || !fake.cutoff.Equal(cutoff) {
		t.Fatalf("ClearCompleted = %+v, %v (store saw %v); want %+v", got, err, fake.cutoff, want)
	}
	if _, err := ClearCompleted(t.Context(), ClearInput{}); err == nil || fake.calls != 1 {
		t.Fatalf("ClearCompleted without a cut-off = %v after %d store calls; want an error and no call", err, fake.calls)
	}
	fake.err = storage.ErrNotMigrated
	if _, err := ClearCompleted(t.Context(), ClearInput{Before: cutoff}); !errors.Is(err, storage.ErrNotMigrated) {
		t.Fatalf("ClearCompleted on a failing store: %v, want the store's error", err)
	}
	useStore(t, nil)
	if _, err := ClearCompleted(t.Context(), ClearInput{Before: cutoff}); !errors.Is(err, ErrNoStore) {
		t.Fatalf("ClearCompleted before Use: %v, want ErrNoStore", err)
	}
}

// TestClearCompletedOnAPair runs ClearCompleted as typed work on an
// in-process primary/standby pair (meshtest/clustertest) over a real
// database: submitted on the standby, its report is stored on the record and
// read on both nodes, and a resubmission with the same input returns the
// stored report without deleting again.
func TestClearCompletedOnAPair(t *testing.T) {
	s := storage.New(testPool(t))
	useStore(t, s)
	ctx := t.Context()
	for _, title := range []string{"done", "also done", "open"} {
		todo, err := s.Create(ctx, title)
		if err != nil {
			t.Fatal(err)
		}
		if title != "open" {
			if _, err := s.Toggle(ctx, todo.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	pair := clustertest.StartPair(t)
	in := ClearInput{Before: time.Now().UTC()}
	const key = "clear-completed::pair-test"
	want := ClearReport{Before: in.Before, Deleted: 2, Remaining: 1}

	h, err := mesh.SubmitWork(ctx, pair.Standby.Mesh(), ClearCompleted, key, in)
	if err != nil || h.Outcome() != mesh.OutcomeCreated {
		t.Fatalf("SubmitWork on the standby: %v, %v", h, err)
	}
	got, err := h.Result(ctx)
	if err != nil || !sameReport(got, want) {
		t.Fatalf("Result = %+v, %v; want %+v", got, err, want)
	}
	rec := pair.Primary.WaitRecord(key, mesh.PhaseCompleted)
	if rec.RuntimeName != "work.ClearCompleted" {
		t.Fatalf("record on the primary: %+v", rec)
	}
	// A todo completed since: a duplicate submission does not run again, so
	// it stays.
	todo, err := s.Create(ctx, "done later")
	if err == nil {
		_, err = s.Toggle(ctx, todo.ID)
	}
	if err != nil {
		t.Fatal(err)
	}
	again, err := mesh.SubmitWork(ctx, pair.Primary.Mesh(), ClearCompleted, key, in)
	if err != nil || again.Outcome() != mesh.OutcomeDuplicate {
		t.Fatalf("resubmission on the primary: outcome %v, %v; want duplicate", again, err)
	}
	if got, err := again.Result(ctx); err != nil || !sameReport(got, want) {
		t.Fatalf("duplicate's Result = %+v, %v; want the stored %+v", got, err, want)
	}
	if todos, err := s.List(ctx); err != nil || len(todos) != 2 {
		t.Fatalf("todos after the duplicate = %d, %v; want 2 (the duplicate must not run)", len(todos), err)
	}
	looked, err := mesh.Lookup[ClearReport](ctx, pair.Standby.Mesh(), Clear, key)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := looked.Result(ctx); err != nil || !sameReport(got, want) {
		t.Fatalf("Lookup's Result = %+v, %v; want %+v", got, err, want)
	}
}

func sameReport(a, b ClearReport) bool {
	return a.Before.Equal(b.Before) && a.Deleted == b.Deleted && a.Remaining == b.Remaining
}

// testPool returns a pool on a fresh, migrated schema of the database at
// DATABASE_URL, dropped when the test ends. The test is skipped when
// DATABASE_URL is not set.
func testPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		t.Skip("DATABASE_URL is not set; skipping the PostgreSQL work tests")
	}
	ctx := t.Context()
	admin, err := storage.Connect(ctx, url)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(admin.Close)
	schema := "todo_work_test_" + strings.ReplaceAll(time.Now().UTC().Format("150405.000000"), ".", "_")
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
		if err := applyLocked(ctx, pool, up); err != nil {
			t.Fatalf("apply %s: %v", file, err)
		}
	}
	return pool
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
