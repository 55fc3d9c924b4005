// Package work holds the application's declared work. The runtime runs every
// declared function once per cluster at boot, under the request key
// startup::<runtime name>, on the placement owner, and mirrors its continuity
// record to the peer.
package work

import (
	"context"

	"meshgo.dev/mesh"
)

// Declared as runtime name work.Add with the default replication count, 2:
// its continuity record is mirrored to the peer before Add runs.
var _ = mesh.Work(Add)

// Add returns 1 + 1.
func Add(ctx context.Context) (int, error) { return 1 + 1, nil }
