// Command fencing shows the promotion epoch used as a fencing token: a store
// that refuses writes from a node whose epoch is lower than one it has seen.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"

	"meshgo.dev/mesh"
)

// #region store
// ErrFenced means the write came from a superseded primary.
var ErrFenced = errors.New("write fenced: a newer promotion epoch has been seen")

// Ledger is a downstream system that accepts writes tagged with a fencing
// token. A real one would keep highest in the same transaction as the write,
// for example: UPDATE ... WHERE fencing_epoch <= $1.
type Ledger struct {
	mu      sync.Mutex // guards highest and entries
	highest uint64
	entries []string
}

// Append stores entry unless epoch is older than the highest epoch seen.
func (l *Ledger) Append(epoch uint64, entry string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if epoch < l.highest {
		return fmt.Errorf("append %q at epoch %d (highest %d): %w", entry, epoch, l.highest, ErrFenced)
	}
	l.highest = epoch
	l.entries = append(l.entries, entry)
	return nil
}

// #endregion store

// #region use
// Settle is declared work. It forwards the epoch from its continuity identity
// with every downstream write.
func Settle(ctx context.Context) (int, error) {
	id, ok := mesh.IdentityFrom(ctx)
	if !ok {
		return 0, errors.New("settle: no continuity identity in context")
	}
	if err := ledger.Append(id.Epoch, id.RequestKey+"/"+id.AttemptID); err != nil {
		return 0, err // the record completes as rejected, with this reason
	}
	return 1, nil
}

var _ = mesh.Work(Settle)

// #endregion use

var ledger = &Ledger{}

func main() {
	// A primary at epoch 1 writes; the old primary, still at epoch 0, is refused.
	fmt.Println(ledger.Append(1, "settle after promotion"))
	fmt.Println(ledger.Append(0, "late write from the old primary"))
	if _, err := mesh.StartFromEnv(); err != nil {
		log.Printf("mesh bootstrap: %v", err)
	}
}
