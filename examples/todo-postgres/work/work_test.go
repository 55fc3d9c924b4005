package work

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/meshtest/clustertest"

	"todo-postgres/storage"
	"todo-postgres/storage/storagetest"
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
	s := storage.New(storagetest.MigratedPool(t, filepath.Join("..", "migrations")))
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
