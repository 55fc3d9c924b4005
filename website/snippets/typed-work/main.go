// Command typed-work submits typed declared work and waits for its result.
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/website/snippets/typed-work/invoices"
)

// #region submit
// settle settles one invoice once, however often it is asked, and returns the
// stored output. The request key names the invoice; the input's encoding is
// its payload, so the same invoice with another amount is a conflict.
func settle(ctx context.Context, invoice string, cents int64) (invoices.SettleOutput, error) {
	h, err := mesh.SubmitWork(ctx, nil, invoices.SettleInvoice,
		"invoice-settlement::"+invoice, invoices.SettleInput{Invoice: invoice, Cents: cents})
	if err != nil {
		return invoices.SettleOutput{}, err
	}
	// Result waits for the work on whichever node runs it, and follows it
	// to the survivor if its owner dies.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := h.Result(ctx)
	if err != nil {
		return out, fmt.Errorf("invoice %s (%s): %w", invoice, h.Outcome(), err)
	}
	log.Printf("invoice %s: %s, reference %s", invoice, h.Outcome(), out.Reference)
	return out, nil
}

// #endregion submit

// #region lookup
// reference reads a settlement made earlier, by any process of the cluster.
func reference(ctx context.Context, invoice string) (string, error) {
	h, err := mesh.Lookup[invoices.SettleOutput](ctx, nil, invoices.Settle,
		"invoice-settlement::"+invoice)
	if err != nil {
		return "", err // request_key_not_found: never submitted
	}
	out, err := h.Result(ctx)
	return out.Reference, err
}

// #endregion lookup

func main() {
	if _, err := mesh.StartFromEnv(); err != nil {
		log.Fatalf("mesh bootstrap: %v", err)
	}
	ctx := context.Background()
	for _, cents := range []int64{4200, 4200, 1700} {
		if _, err := settle(ctx, "INV-1001", cents); err != nil {
			log.Print(err)
		}
	}
	ref, err := reference(ctx, "INV-1001")
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("looked up INV-1001: reference %s", ref)
}
