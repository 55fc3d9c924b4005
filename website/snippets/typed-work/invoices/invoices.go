// Package invoices settles invoices as typed declared work: the work takes
// the invoice to settle as its input and returns what it did.
package invoices

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"meshgo.dev/mesh"
)

// #region declare
// SettleInput is what to settle. It is stored, JSON-encoded, on the record,
// so the node that runs the work (the survivor after a failover) gets it.
type SettleInput struct {
	Invoice string `json:"invoice"`
	Cents   int64  `json:"cents"`
}

// SettleOutput is what settling did. It is stored on the completed record,
// so a handle on either node, or a later Lookup, reads it.
type SettleOutput struct {
	Invoice   string `json:"invoice"`
	Reference string `json:"reference"`
}

// Settle is the declaration Lookup takes. Count 1 lets this example run on
// a single node; in a pair keep the default of 2.
var Settle = mesh.Work(SettleInvoice, mesh.ReplicationCount(1),
	mesh.Retry(3, 100*time.Millisecond, 2*time.Second))

// SettleInvoice settles one invoice. An error is retried up to three times,
// each retry a new attempt; typed work never runs at boot.
func SettleInvoice(ctx context.Context, in SettleInput) (SettleOutput, error) {
	if in.Cents <= 0 {
		return SettleOutput{}, errors.New("nothing to settle")
	}
	id, _ := mesh.IdentityFrom(ctx)
	slog.InfoContext(ctx, "settling invoice", "invoice", in.Invoice,
		"attempt_id", id.AttemptID, "promotion_epoch", id.Epoch)
	return SettleOutput{Invoice: in.Invoice, Reference: "stl-" + in.Invoice}, nil
}

// #endregion declare
