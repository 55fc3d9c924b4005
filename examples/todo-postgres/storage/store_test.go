package storage

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"todo-postgres/storage/storagetest"
)

// These tests need a PostgreSQL database: set DATABASE_URL to run them. Each
// test works in a schema of its own (storagetest), so it never touches the
// tables of the database it is pointed at.

// migrations is the project's migrations directory, seen from this package.
var migrations = filepath.Join("..", "migrations")

func TestCRUD(t *testing.T) {
	s := New(storagetest.MigratedPool(t, migrations))
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
	s := New(storagetest.MigratedPool(t, migrations))
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
	s := New(storagetest.MigratedPool(t, migrations))
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
	s := New(storagetest.Pool(t))
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
