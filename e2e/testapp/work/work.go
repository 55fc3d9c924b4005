// Package work holds the declared work of the end-to-end test application.
package work

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"meshgo.dev/mesh"
)

var _ = mesh.Work(Add)

// Add is the canonical declared work: runtime name work.Add, count 2.
func Add(ctx context.Context) (int, error) { return 1 + 1, nil }

// Retry is declared with replication count 3 only when the test asks
// (TESTAPP_DECLARE_RETRY=1): every submission is durably rejected.
func Retry(ctx context.Context) (int, error) { return 0, errors.New("count 3 work must never run") }

// Explode panics; declared when TESTAPP_DECLARE_EXPLODE=1.
func Explode(ctx context.Context) (int, error) { panic("explode: deliberate crash") }

// SettleInput is the input of the typed work Settle.
type SettleInput struct {
	ID      int `json:"id"`
	SleepMS int `json:"sleep_ms,omitempty"` // how long the work runs
}

// SettleOutput is the output of Settle: which node ran which attempt.
type SettleOutput struct {
	ID      int    `json:"id"`
	Node    string `json:"node"`
	Attempt string `json:"attempt"`
}

// SettleDecl declares the typed work Settle (runtime name work.Settle, count 2).
var SettleDecl = mesh.Work(Settle)

// Settle is typed declared work: it sleeps for its input's SleepMS and
// reports the node and attempt it ran under. It logs when it starts, so a
// test can kill its node while it runs.
func Settle(ctx context.Context, in SettleInput) (SettleOutput, error) {
	id, _ := mesh.IdentityFrom(ctx)
	node := mesh.Default().Name()
	fmt.Fprintf(os.Stderr, "[testapp] settle started request_key=%s attempt_id=%s node=%s\n", id.RequestKey, id.AttemptID, node)
	select {
	case <-ctx.Done():
		return SettleOutput{}, ctx.Err()
	case <-time.After(time.Duration(in.SleepMS) * time.Millisecond):
	}
	return SettleOutput{ID: in.ID, Node: node, Attempt: id.AttemptID}, nil
}
