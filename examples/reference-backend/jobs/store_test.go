package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"meshgo.dev/mesh/meshtest/pgtest"
)

// The store tests run on a fresh database per test: DATABASE_URL's server
// when it is set, a throwaway server otherwise (see meshtest/pgtest). With
// MESH_REQUIRE_POSTGRES=1 a missing PostgreSQL fails them instead of
// skipping.

func TestMain(m *testing.M) { pgtest.Main(m) }

// migratedStore returns a Store on a new database with the Up section of
// every migration applied, as meshc migrate . up would.
func migratedStore(t *testing.T) (*Store, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.New(t)
	pool, err := Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(pool.Close)
	files, _ := filepath.Glob("../migrations/*.sql")
	if len(files) == 0 {
		t.Fatal("no migrations found")
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		up := string(src)
		up = up[strings.Index(up, "-- +goose Up"):strings.Index(up, "-- +goose Down")]
		if _, err := pool.Exec(t.Context(), up); err != nil {
			t.Fatalf("apply %s: %v", f, err)
		}
	}
	return NewStore(pool), pool
}

const (
	jobA = "00000000-0000-4000-8000-00000000000a"
	jobB = "00000000-0000-4000-8000-00000000000b"
)

func TestCreateIsIdempotentByKey(t *testing.T) {
	s, _ := migratedStore(t)
	ctx := t.Context()
	j, created, err := s.Create(ctx, jobA, KindEcho, json.RawMessage(`{"a":1,"b":[2]}`), "key-1")
	if err != nil || !created || j.State != StateQueued || j.ID != jobA {
		t.Fatalf("first create: %+v created=%v err=%v", j, created, err)
	}
	// Same key, same job (key order differs): the first job, not a new one.
	j, created, err = s.Create(ctx, jobB, KindEcho, json.RawMessage(`{"b":[2],"a":1}`), "key-1")
	if err != nil || created || j.ID != jobA {
		t.Fatalf("retried create: %+v created=%v err=%v", j, created, err)
	}
	if _, _, err := s.Create(ctx, jobB, KindEcho, json.RawMessage(`{"a":2}`), "key-1"); !errors.Is(err, ErrIdempotencyConflict) {
		t.Fatalf("same key, other payload: err=%v, want ErrIdempotencyConflict", err)
	}
	if _, _, err := s.Create(ctx, jobB, KindSleep, json.RawMessage(`{"ms":1}`), ""); err != nil {
		t.Fatalf("create without key: %v", err)
	}
	list, err := s.List(ctx, "", 10)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %d jobs, err=%v; want 2", len(list), err)
	}
	if _, err := s.Get(ctx, "00000000-0000-4000-8000-0000000000ff"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
}

func TestRunSucceedsOnceAndReRunIsNoOp(t *testing.T) {
	s, _ := migratedStore(t)
	ctx := t.Context()
	if _, _, err := s.Create(ctx, jobA, KindEcho, json.RawMessage(`"hi"`), ""); err != nil {
		t.Fatal(err)
	}
	r := NewRunner(s, nil)
	a1 := Attempt{JobID: jobA, AttemptID: "attempt-1", Epoch: 0, Node: "a@127.0.0.1:1"}
	if state, err := r.Run(ctx, a1); err != nil || state != StateSucceeded {
		t.Fatalf("run: %q %v", state, err)
	}
	// The runtime may run the job again under a new attempt (its record was
	// not complete when the owner died): the job must not run twice.
	a2 := Attempt{JobID: jobA, AttemptID: "attempt-2", Epoch: 1, Node: "b@127.0.0.1:1"}
	if state, err := r.Run(ctx, a2); err != nil || state != StateSucceeded {
		t.Fatalf("re-run: %q %v", state, err)
	}
	j, _ := s.Get(ctx, jobA)
	if j.Completions != 1 || j.Attempts != 1 || string(j.Result) != `{"echo": "hi"}` || j.AttemptID != "attempt-1" {
		t.Fatalf("job after re-run: %+v result=%s", j, j.Result)
	}
}

func TestFailJobEndsFailed(t *testing.T) {
	s, _ := migratedStore(t)
	ctx := t.Context()
	if _, _, err := s.Create(ctx, jobA, KindFail, json.RawMessage(`{"message":"boom"}`), ""); err != nil {
		t.Fatal(err)
	}
	state, err := NewRunner(s, nil).Run(ctx, Attempt{JobID: jobA, AttemptID: "attempt-1", Node: "a"})
	if err != nil || state != StateFailed {
		t.Fatalf("run: %q %v", state, err)
	}
	j, _ := s.Get(ctx, jobA)
	if j.State != StateFailed || j.Error != "boom" || j.FinishedAt == nil {
		t.Fatalf("failed job: %+v", j)
	}
}

// TestZombieWriteIsRefused plays a superseded primary: its attempt claimed
// the job at epoch 0, the promoted peer took it over at epoch 1, then the
// old attempt finishes. The database refuses its write and counts it; the
// take-over is a recovery signal.
func TestZombieWriteIsRefused(t *testing.T) {
	s, _ := migratedStore(t)
	ctx := t.Context()
	if _, _, err := s.Create(ctx, jobA, KindEcho, json.RawMessage(`1`), ""); err != nil {
		t.Fatal(err)
	}
	old := Attempt{JobID: jobA, AttemptID: "attempt-3", Epoch: 0, Node: "primary@127.0.0.1:1"}
	next := Attempt{JobID: jobA, AttemptID: "attempt-7", Epoch: 1, Node: "standby@[::1]:1"}
	if _, done, err := s.Claim(ctx, old); err != nil || done {
		t.Fatalf("old claim: done=%v %v", done, err)
	}
	if _, done, err := s.Claim(ctx, next); err != nil || done {
		t.Fatalf("take-over claim: done=%v %v", done, err)
	}
	if err := s.Finish(ctx, old, json.RawMessage(`"zombie"`), ""); !errors.Is(err, ErrFenced) {
		t.Fatalf("zombie finish: %v, want ErrFenced", err)
	}
	if _, _, err := s.Claim(ctx, old); !errors.Is(err, ErrFenced) {
		t.Fatalf("zombie re-claim: %v, want ErrFenced", err)
	}
	if err := s.Finish(ctx, next, json.RawMessage(`"kept"`), ""); err != nil {
		t.Fatalf("new finish: %v", err)
	}
	j, _ := s.Get(ctx, jobA)
	if j.State != StateSucceeded || string(j.Result) != `"kept"` || j.Completions != 1 || j.FencedWritesRefused != 2 || j.FenceEpoch != 1 || j.Attempts != 2 {
		t.Fatalf("job: %+v result=%s", j, j.Result)
	}
	sig, err := s.Signals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sig.RestartCount != 1 || sig.RecoveredJobs != 1 || sig.FencedWritesRefused != 2 ||
		sig.LastRecoveryJobID != jobA || sig.LastExitReason != "owner_lost:primary@127.0.0.1:1" || sig.LastRecoveryAt == nil {
		t.Fatalf("signals: %+v", sig)
	}
}

// TestConcurrentAttemptsSucceedOnce runs many attempts of one job at once,
// at two epochs: exactly one write finishes it.
func TestConcurrentAttemptsSucceedOnce(t *testing.T) {
	s, _ := migratedStore(t)
	ctx := t.Context()
	if _, _, err := s.Create(ctx, jobA, KindEcho, json.RawMessage(`null`), ""); err != nil {
		t.Fatal(err)
	}
	r := NewRunner(s, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Run(context.Background(), Attempt{JobID: jobA, AttemptID: "attempt-" + string(rune('1'+i)), Epoch: uint64(i % 2), Node: "n"})
		}()
	}
	wg.Wait()
	j, _ := s.Get(ctx, jobA)
	if j.State != StateSucceeded || j.Completions != 1 {
		t.Fatalf("job: %+v", j)
	}
}

func TestRefuseOnlyQueued(t *testing.T) {
	s, _ := migratedStore(t)
	ctx := t.Context()
	s.Create(ctx, jobA, KindEcho, json.RawMessage(`1`), "")
	s.Create(ctx, jobB, KindEcho, json.RawMessage(`1`), "")
	if _, _, err := s.Claim(ctx, Attempt{JobID: jobB, AttemptID: "attempt-1", Node: "n"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{jobA, jobB} {
		if err := s.Refuse(ctx, id, "replica_required_unavailable"); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := s.Get(ctx, jobA)
	b, _ := s.Get(ctx, jobB)
	if a.State != StateFailed || !strings.Contains(a.Error, "replica_required_unavailable") || b.State != StateRunning {
		t.Fatalf("after refuse: a=%s %q b=%s", a.State, a.Error, b.State)
	}
	if list, _ := s.List(ctx, StateFailed, 5); len(list) != 1 || list[0].ID != jobA {
		t.Fatalf("list failed: %+v", list)
	}
}

func TestNotMigrated(t *testing.T) {
	url := pgtest.New(t)
	pool, err := Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := NewStore(pool).Get(t.Context(), jobA); !errors.Is(err, ErrNotMigrated) {
		t.Fatalf("get on an empty database: %v", err)
	}
}
