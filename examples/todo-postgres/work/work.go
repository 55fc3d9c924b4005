// Package work holds the service's declared work: functions the Mesh runtime
// runs once per cluster at start-up, each with a continuity record operators
// can inspect through meshc cluster continuity.
package work

import (
	"context"

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
