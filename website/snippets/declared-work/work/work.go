// Package work holds the service's declared work.
package work

import (
	"context"
	"log/slog"

	"meshgo.dev/mesh"
)

// #region declare
// Add is declared as clustered work under the runtime name "work.Add", with the
// default replication count of 2: its continuity record is mirrored to the
// peer before it runs.
var AddDeclaration = mesh.Work(Add)

// Add runs once per cluster when the service boots.
func Add(ctx context.Context) (int, error) {
	id, _ := mesh.IdentityFrom(ctx)
	slog.InfoContext(ctx, "work.Add running",
		"request_key", id.RequestKey, // startup::work.Add
		"attempt_id", id.AttemptID,
		"promotion_epoch", id.Epoch)
	return 1 + 1, nil
}

// #endregion declare

// #region count
// WarmCache does not need a mirror: replication count 1 keeps its record on the
// owner only, so it also runs when no peer is connected.
var _ = mesh.Work(WarmCache, mesh.ReplicationCount(1))

// WarmCache runs once per cluster when the service boots.
func WarmCache(ctx context.Context) (struct{}, error) {
	return struct{}{}, nil
}

// #endregion count
