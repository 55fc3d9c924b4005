package cluster

import (
	"context"
	"errors"
	"fmt"

	"meshgo.dev/mesh/internal/continuity"
)

// Submission outcomes returned by Node.Submit.
const (
	OutcomeCreated   = string(continuity.OutcomeCreated)
	OutcomeDuplicate = string(continuity.OutcomeDuplicate)
	OutcomeConflict  = string(continuity.OutcomeConflict)
	OutcomeRejected  = string(continuity.OutcomeRejected)
)

// SubmitResult describes what Submit did with a request.
type SubmitResult struct {
	Outcome string // OutcomeCreated, OutcomeDuplicate, OutcomeConflict or OutcomeRejected
	Record  Record // the stored record (for a duplicate or conflict, the earlier one)
}

// Submit runs declared work under a caller-chosen request key, once per key:
// the same key with the same payload is a duplicate (the stored record, the
// work does not run again); the same key with another payload is a conflict.
// A created request runs on its placement owner; with replication count 2 its
// record is mirrored to the replica before the work starts, so it survives the
// loss of either node and is re-run under a new attempt if its owner dies.
// Submit returns once the record is stored, not when the work finishes.
//
// Keys with a runtime prefix (http-route::, startup::, request::) belong to
// the runtime's own records and are refused with request_key_reserved; a key
// already used by another declared function or by a route is a conflict.
//
// For typed work (func(context.Context, In) (Out, error)) payload is the
// encoded input, exactly as SubmitTyped would store it.
func (n *Node) Submit(ctx context.Context, d Declaration, requestKey, payload string) (SubmitResult, error) {
	h, ok := n.handlers.get(d.RuntimeName)
	if !ok || h.kind != continuity.KindWork {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", d.RuntimeName, ErrNotDeclared)
	}
	if h.typed != nil {
		return n.submitInput(ctx, h, requestKey, []byte(payload))
	}
	return n.submitWork(ctx, h, requestKey, payload, nil)
}

// submitWork submits work under requestKey with payload hash hash and, for
// typed work, its encoded input.
func (n *Node) submitWork(ctx context.Context, h *handler, requestKey, hash string, input []byte) (SubmitResult, error) {
	if continuity.ReservedKey(requestKey) {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", requestKey, &continuity.Error{Reason: continuity.ReasonRequestKeyReserved})
	}
	if err := n.admitWork(ctx, requestKey); err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", requestKey, err)
	}
	dec, err := n.submit(ctx, submission{h: h, key: requestKey, hash: hash, input: input, count: uint64(h.count)})
	if err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", requestKey, err)
	}
	if dec.Outcome == continuity.OutcomeDuplicate {
		if err := n.answerDuplicate(dec.Record); err != nil {
			return SubmitResult{}, fmt.Errorf("submit %s: %w", requestKey, err)
		}
	}
	res := SubmitResult{Outcome: string(dec.Outcome), Record: dec.Record}
	if dec.Outcome == continuity.OutcomeCreated {
		if err := n.dispatchWork(ctx, h, dec.Record); err != nil {
			out, ran := n.refuse(dec.Record, continuity.ReasonPrefixDispatchFailed+err.Error())
			res.Record = out
			if !ran {
				res.Outcome = OutcomeRejected
			}
		}
	}
	return res, nil
}

// RefusalReason returns the reason carried by an error from Submit that
// refused the request without storing it (node_shutting_down,
// record_state_unconfirmed, ...), or "" when err carries none.
func RefusalReason(err error) string {
	var ce *continuity.Error
	if errors.As(err, &ce) {
		return string(ce.Reason)
	}
	return ""
}

// withHandlers makes a node use its own handler registry (tests).
func withHandlers(r *registry) Option { return func(n *Node) { n.handlers = r } }
