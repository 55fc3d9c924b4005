package mesh

import (
	"context"
	"fmt"
	"runtime"
	"time"

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
// fn has one of two shapes:
//
//   - func(context.Context) (R, error): runs once per cluster at boot
//     (request key startup::<runtime name>) on the placement owner; a
//     standby skips it. Node.Submit runs it again under a caller's key.
//   - func(context.Context, In) (Out, error): typed work. It runs when
//     submitted with its input (SubmitWork), never at boot; its input and
//     output are encoded with encoding/json (or the WorkCodec option's
//     codec), stored on its record, replicated and retained, so Result and
//     Lookup read the output on any node.
//
// Work panics when fn is not a named top-level function of one of those
// shapes, when the name is already declared, when the replication count is
// below 1, or when In or Out cannot be encoded as JSON (a channel, a function,
// a complex number, ...): these are programming errors that must stop the
// program at start-up, and the message names the function.
func Work(fn any, opts ...WorkOption) Declaration {
	return cluster.Work(fn, opts...)
}

// Retry makes declared work run again when it returns an error: up to max
// more times, waiting initial before the first retry and doubling the wait up
// to maxDelay. Each retry is a new attempt of the same record, recorded as a
// work_retry diagnostic naming both attempts; once the retries are spent the
// record is rejected with the last error. Panics are never retried (nor an
// input typed work cannot decode). The retry count lives on the node running
// the work: after a failover the survivor's re-run starts counting again.
// Work panics when max is negative, initial is not positive or maxDelay is
// below initial.
func Retry(max int, initial, maxDelay time.Duration) WorkOption {
	return cluster.WorkRetry(max, initial, maxDelay)
}

// WorkCodec makes typed work encode its input and output with c instead of
// encoding/json. c.Marshal must encode equal values to equal bytes: the
// payload hash of a submission is the hash of its encoded input.
func WorkCodec(c Codec) WorkOption { return cluster.WorkCodec(c) }

// WorkHandle is a typed work submission: its request key, what Submit did
// with it, and its output once the work has run.
type WorkHandle[Out any] struct {
	n       *Node
	d       Declaration
	key     string
	outcome string
	rec     Record
	output  *cluster.TypedOutcome // where Result reads the output; its claim, if any, was taken before the submission or lookup
}

// RequestKey returns the handle's request key.
func (h *WorkHandle[Out]) RequestKey() string { return h.key }

// Outcome returns what the submission did: OutcomeCreated, OutcomeDuplicate
// (the key already ran or runs with the same input), OutcomeConflict (the key
// holds another input, or another function's record) or OutcomeRejected
// (refused while submitting; Result returns the reason). A handle from Lookup
// reports OutcomeDuplicate.
func (h *WorkHandle[Out]) Outcome() string { return h.outcome }

// Record returns the record as it stood when the handle was made.
func (h *WorkHandle[Out]) Record() Record { return h.rec }

// Result waits until the work has ended and returns its output, decoded. It
// waits on the handle's node whichever node runs the work: the owner's
// outcome reaches it with replication, and if the owner dies while the work
// runs the survivor re-runs it under a new attempt and Result returns that
// attempt's output. A rejected attempt returns a *WorkError carrying the
// record's error text (handler_error:<text>, handler_panicked:<value>,
// result_too_large, ...). For a conflict it returns an error at once, without
// reading the other submission's output. It returns ctx's error if ctx ends
// first. A handle made while its record was pending is handed the outcome
// when the record ends on its node, so the node's retention evicting the
// record (MESH_CONTINUITY_RETAIN_RECORDS, under a high submission rate)
// before Result is called does not take the output from the handle.
func (h *WorkHandle[Out]) Result(ctx context.Context) (Out, error) {
	var out Out
	if h.outcome == OutcomeConflict {
		return out, fmt.Errorf("work %s: %s", h.key, OutcomeConflict)
	}
	data, err := h.output.Output(ctx)
	// h must stay reachable while it waits: its cleanup gives the claim up,
	// and the wait reads only the claim.
	runtime.KeepAlive(h)
	if err != nil {
		return out, err
	}
	if err := cluster.DecodeOutput(h.n, h.d, data, &out); err != nil {
		return out, err
	}
	return out, nil
}

// SubmitWork submits the typed work function fn with input in under
// requestKey on n, once per key like
// Node.Submit: the payload hash is the hash of the encoded input, so the
// same input again is a duplicate whose Result is the stored output (the work
// does not run again), and another input is a conflict. fn must have been
// declared with Work. It returns once the record is stored; Result waits for
// the output. An encoded input above MESH_WORK_MAX_RESULT_BYTES is refused
// with input_too_large and nothing is stored.
//
// When n is nil the work is submitted on the node serving ctx: inside a
// clustered route or declared work, the node running it; on a request served
// through one node of a meshtest/clustertest pair, that node; otherwise the
// process's default node.
func SubmitWork[In, Out any](ctx context.Context, n *Node, fn func(context.Context, In) (Out, error), requestKey string, in In) (*WorkHandle[Out], error) {
	if n == nil {
		n = cluster.NodeFor(ctx)
	}
	d, err := cluster.TypedDeclaration(fn)
	if err != nil {
		return nil, fmt.Errorf("submit %s: %w", requestKey, err)
	}
	// Claimed before the submission, so the outcome is handed to this
	// handle when the record ends, however soon: Result then has it even if
	// the node's retention evicts the record before Result is called.
	res, output, err := cluster.SubmitClaimed(ctx, n, d, requestKey, in)
	if err != nil {
		return nil, err
	}
	return newHandle[Out](n, d, requestKey, res.Outcome, res.Record, output), nil
}

// Lookup returns a handle on the typed work d stored under requestKey on n
// (when nil, the node serving ctx, as for SubmitWork), for a process that
// did not submit it:
// its Result returns the stored output, or waits for it. Out must be d's
// output type. A key n does not know is refused with request_key_not_found,
// one that belongs to another function with request_key_conflict
// (RefusalReason reads either).
func Lookup[Out any](ctx context.Context, n *Node, d Declaration, requestKey string) (*WorkHandle[Out], error) {
	if n == nil {
		n = cluster.NodeFor(ctx)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec, output, err := cluster.LookupClaimed(n, d, requestKey) // claimed before the read: see SubmitWork
	if err != nil {
		return nil, err
	}
	if err := cluster.CheckOutput(n, d, new(Out)); err != nil {
		output.Release()
		return nil, fmt.Errorf("lookup %s: %w", requestKey, err)
	}
	return newHandle[Out](n, d, requestKey, OutcomeDuplicate, rec, output), nil
}

// newHandle makes the handle of a submission or lookup of requestKey: while
// the record was pending, output holds a claim on its outcome, which the
// handle gives up when it becomes unreachable.
func newHandle[Out any](n *Node, d Declaration, requestKey, outcome string, rec Record, output *cluster.TypedOutcome) *WorkHandle[Out] {
	h := &WorkHandle[Out]{n: n, d: d, key: requestKey, outcome: outcome, rec: rec, output: output}
	if c := output.Claim(); c != nil {
		runtime.AddCleanup(h, func(c *cluster.Claim) { c.Release() }, c)
	}
	return h
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
