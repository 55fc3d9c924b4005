// Package work holds the service's declared work: functions the Mesh runtime
// runs with a continuity record operators can inspect through
// meshc cluster continuity, mirrored to the peer node before they run.
package work

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"meshgo.dev/mesh"
)

// The declaration registers SyncTodos under the runtime name work.SyncTodos
// with the default replication count, 2: in a two-node cluster its record is
// mirrored to the peer before the function runs.
var _ = mesh.Work(SyncTodos)

// SyncTodos is the service's start-up work. The runtime runs it once per
// cluster at boot under the request key startup::work.SyncTodos.
//
// This one is a placeholder that returns 2. Put your own start-up job here
// and keep it safe to run twice: the runtime may run it again under a new
// attempt.
func SyncTodos(ctx context.Context) (int, error) {
	return 1 + 1, nil
}

// Store is the storage ClearCompleted works on. *storage.Store implements
// it.
type Store interface {
	// ClearCompleted deletes the completed todos created at or before
	// cutoff and returns how many it deleted and how many todos remain.
	ClearCompleted(ctx context.Context, cutoff time.Time) (deleted, remaining int64, err error)
}

var (
	storeMu sync.RWMutex // guards store
	store   Store
)

// Use sets the store the declared work runs on. Call it before the runtime
// starts (mesh.StartFromEnv): after a failover the surviving node may re-run
// work as soon as it takes over.
func Use(s Store) {
	storeMu.Lock()
	defer storeMu.Unlock()
	store = s
}

// ErrNoStore is the error of work that runs before Use.
var ErrNoStore = errors.New("work: no store; call work.Use before the runtime starts")

// ClearInput is the input of ClearCompleted, stored on its record: the node
// that runs it, the peer after a failover included, reads it from there.
type ClearInput struct {
	// Before: completed todos created at or before this time are deleted.
	Before time.Time `json:"before"`
}

// ClearReport is what ClearCompleted did, stored on its completed record:
// a retry under the same request key, and meshc cluster continuity, read it
// back without running the work again.
type ClearReport struct {
	Before    time.Time `json:"before"`
	Deleted   int64     `json:"deleted"`
	Remaining int64     `json:"remaining"`
}

// Clear is the declaration of ClearCompleted, typed work under the runtime
// name work.ClearCompleted. Typed work never runs at boot; api submits it on
// POST /todos/clear-completed.
//
// Its replication count is 1: the service also runs standalone, where
// count-2 work is refused for want of a replica, and clearing is safe to
// redo, so a run lost with its node is simply asked for again (the client
// retries with its Idempotency-Key). Work that must not be lost with a node
// keeps the default, 2: its record and input are mirrored to the peer
// before it runs, and the survivor re-runs it after a failover.
var Clear = mesh.Work(ClearCompleted, mesh.ReplicationCount(1))

// ClearCompleted deletes the completed todos created at or before in.Before
// and reports the counts. It is safe to run twice: a second run with the same
// input finds nothing more to delete.
func ClearCompleted(ctx context.Context, in ClearInput) (ClearReport, error) {
	storeMu.RLock()
	s := store
	storeMu.RUnlock()
	if s == nil {
		return ClearReport{}, ErrNoStore
	}
	if in.Before.IsZero() {
		return ClearReport{}, errors.New("clear completed todos: no cut-off time")
	}
	deleted, remaining, err := s.ClearCompleted(ctx, in.Before)
	if err != nil {
		return ClearReport{}, fmt.Errorf("clear completed todos: %w", err)
	}
	return ClearReport{Before: in.Before, Deleted: deleted, Remaining: remaining}, nil
}
