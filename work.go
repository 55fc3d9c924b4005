package mesh

import (
	"context"

	"meshgo.dev/mesh/internal/cluster"
)

// DefaultReplicationCount is the replication count of declared work and of
// clustered routes unless an option or argument says otherwise: the owner plus
// one mirrored replica.
const DefaultReplicationCount = cluster.DefaultReplicationCount

// ReplicationCount sets the number of copies of the work's continuity record,
// owner included. 1 runs without a mirror; 2 (the default) mirrors the record
// to the peer before the work runs. Counts of 3 or more register, and every
// submission is then durably rejected as unsupported_replication_count:<n>.
func ReplicationCount(n int) WorkOption { return cluster.ReplicationCount(n) }

// Work declares fn as clustered work under the runtime name <package>.<Func>.
// Declared work runs once per cluster at boot (request key
// startup::<runtime name>) on the placement owner; a standby skips it.
//
// Work panics when fn is not a named top-level function, when the name is
// already declared or when the replication count is below 1: these are
// programming errors that must stop the program at start-up.
func Work[R any](fn func(context.Context) (R, error), opts ...WorkOption) Declaration {
	return cluster.Work(fn, opts...)
}

// Submission outcomes returned by Node.Submit.
const (
	OutcomeCreated   = cluster.OutcomeCreated
	OutcomeDuplicate = cluster.OutcomeDuplicate
	OutcomeConflict  = cluster.OutcomeConflict
	OutcomeRejected  = cluster.OutcomeRejected
)

// RefusalReason returns the reason carried by an error from Submit that
// refused the request without storing it (node_shutting_down,
// record_state_unconfirmed, ...), or "" when err carries none.
func RefusalReason(err error) string { return cluster.RefusalReason(err) }

// IdentityFrom returns the continuity identity carried by ctx. It is present
// in the context of every declared work function and clustered route handler.
func IdentityFrom(ctx context.Context) (Identity, bool) { return cluster.IdentityFrom(ctx) }
