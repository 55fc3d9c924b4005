// Package work holds the declared work of the end-to-end test application.
package work

import (
	"context"
	"errors"

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
