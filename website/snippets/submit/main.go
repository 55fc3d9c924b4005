// Command submit submits declared work under a caller-chosen request key, so
// that each invoice is settled once however often the request is repeated.
package main

import (
	"context"
	"fmt"
	"log"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/website/snippets/submit/invoices"
)

// #region submit
// settle asks the cluster to settle one invoice. The request key names the
// invoice; the payload stands for what is asked, so the same key with a
// different payload is a conflict rather than a second settlement.
func settle(ctx context.Context, invoice, amount string) error {
	res, err := mesh.Default().Submit(ctx, invoices.Settle,
		"invoice-settlement::"+invoice, "amount="+amount)
	if err != nil {
		return err
	}
	switch res.Outcome {
	case mesh.OutcomeCreated:
		log.Printf("invoice %s: settling as %s", invoice, res.Record.AttemptID())
	case mesh.OutcomeDuplicate:
		log.Printf("invoice %s: already submitted, phase %s", invoice, res.Record.Phase)
	case mesh.OutcomeConflict:
		return fmt.Errorf("invoice %s was submitted before with another amount", invoice)
	case mesh.OutcomeRejected:
		return fmt.Errorf("invoice %s refused: %s", invoice, res.Record.Error)
	}
	return nil
}

// #endregion submit

func main() {
	if _, err := mesh.StartFromEnv(); err != nil {
		log.Fatalf("mesh bootstrap: %v", err)
	}
	ctx := context.Background()
	for _, amount := range []string{"42.00", "42.00", "17.00"} {
		if err := settle(ctx, "INV-1001", amount); err != nil {
			log.Print(err)
		}
	}
}
