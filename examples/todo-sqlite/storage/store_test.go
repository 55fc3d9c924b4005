package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "todo.sqlite3")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestCRUD(t *testing.T) {
	s, _ := openTemp(t)
	s.now = func() time.Time { return time.Date(2026, 4, 2, 14, 30, 5, 999, time.FixedZone("CEST", 2*60*60)) }
	ctx := t.Context()

	todos, err := s.List(ctx)
	if err != nil || len(todos) != 0 {
		t.Fatalf("List on a new database = %v, %v; want an empty list", todos, err)
	}

	created, err := s.Create(ctx, "buy milk")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	want := Todo{ID: created.ID, Title: "buy milk", Completed: false, CreatedAt: time.Date(2026, 4, 2, 12, 30, 5, 0, time.UTC)}
	if created.ID <= 0 || created != want {
		t.Fatalf("Create = %+v, want %+v with a positive id", created, want)
	}

	got, err := s.Get(ctx, created.ID)
	if err != nil || got != created {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, created)
	}

	toggled, err := s.Toggle(ctx, created.ID)
	if err != nil || !toggled.Completed {
		t.Fatalf("Toggle = %+v, %v; want completed", toggled, err)
	}
	toggled, err = s.Toggle(ctx, created.ID)
	if err != nil || toggled.Completed {
		t.Fatalf("second Toggle = %+v, %v; want not completed", toggled, err)
	}

	second, err := s.Create(ctx, "walk the dog")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	todos, err = s.List(ctx)
	if err != nil || len(todos) != 2 || todos[0].ID != created.ID || todos[1].ID != second.ID {
		t.Fatalf("List = %+v, %v; want both todos, oldest first", todos, err)
	}

	if err := s.Delete(ctx, created.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, created.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
	}
}

func TestMissingTodoIsNotFound(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	if _, err := s.Get(ctx, 42); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Toggle(ctx, 42); !errors.Is(err, ErrNotFound) {
		t.Errorf("Toggle: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, 42); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete: err = %v, want ErrNotFound", err)
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	s, path := openTemp(t)
	created, err := s.Create(t.Context(), "persist me")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := s.Toggle(t.Context(), created.ID); err != nil {
		t.Fatalf("Toggle: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	reopened, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer reopened.Close()
	got, err := reopened.Get(t.Context(), created.ID)
	if err != nil || got.Title != "persist me" || !got.Completed {
		t.Fatalf("Get after reopen = %+v, %v; want the completed todo", got, err)
	}
}

func TestEveryConnectionIsDurable(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	// Hold two connections at once so that the pragmas are seen to apply to
	// each connection the pool opens, not only to the first.
	for range 2 {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatalf("Conn: %v", err)
		}
		defer conn.Close()
		var mode string
		var synchronous, timeout int
		if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&synchronous); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&timeout); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || synchronous != 2 || timeout != 5000 {
			t.Fatalf("journal_mode=%s synchronous=%d busy_timeout=%d; want wal, 2 (FULL), 5000", mode, synchronous, timeout)
		}
	}
}

func TestOpenFails(t *testing.T) {
	dir := t.TempDir()
	for name, path := range map[string]string{
		"directory":      dir,
		"missing parent": filepath.Join(dir, "no", "such", "dir", "todo.sqlite3"),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Open(t.Context(), path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded, want an error", path)
			}
		})
	}
}

func TestOddFileNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "what?#100%.sqlite3")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if _, err := s.Create(t.Context(), "x"); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not created under its exact name: %v", err)
	}
}
