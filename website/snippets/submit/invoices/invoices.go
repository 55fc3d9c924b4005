// Package invoices settles invoices as declared work, once per invoice.
package invoices

import (
	"context"
	"log/slog"
	"strings"

	"meshgo.dev/mesh"
)

// #region declare
// keyPrefix starts the request key of every settlement: one key per invoice.
const keyPrefix = "invoice-settlement::"

// Settle is the declaration Submit needs.
var Settle = mesh.Work(SettleInvoice)

// SettleInvoice settles the invoice named by its request key. Like all
// declared work it also runs once per cluster at boot, under the key
// startup::invoices.SettleInvoice, where there is nothing to settle.
func SettleInvoice(ctx context.Context) (string, error) {
	id, _ := mesh.IdentityFrom(ctx)
	invoice, ok := strings.CutPrefix(id.RequestKey, keyPrefix)
	if !ok {
		return "", nil // the boot-time run
	}
	slog.InfoContext(ctx, "settling invoice", "invoice", invoice,
		"attempt_id", id.AttemptID, "promotion_epoch", id.Epoch)
	return "settled " + invoice, nil
}

// #endregion declare
