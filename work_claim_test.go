package mesh_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"meshgo.dev/mesh"
)

// Double is typed work for the handle tests.
func Double(_ context.Context, in int) (int, error) { return 2 * in, nil }

var doubleDecl = mesh.Work(Double, mesh.ReplicationCount(1))

// startRetaining starts a standalone node that retains at most records
// ended records.
func startRetaining(t *testing.T, records int) *mesh.Node {
	t.Helper()
	n, err := mesh.Start(mesh.Config{RetainedRecords: records, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	return n
}

// A handle's Result returns its work's output even when the node's retention
// evicted the record before Result was called: the caller submitted, was
// descheduled, and the node completed more records than it retains
// meanwhile. The handle claimed the outcome before submitting, so the ended
// version was handed to it when the record ended; handles made after it ended
// (a duplicate submission, a Lookup) answer from the record they read.
func TestResultAfterRetentionEvictedTheRecord(t *testing.T) {
	n := startRetaining(t, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	first, err := mesh.SubmitWork(ctx, n, Double, "double:first", 21)
	if err != nil || first.Outcome() != mesh.OutcomeCreated {
		t.Fatalf("submit: %v, %v", first, err)
	}
	// Ended, while the node holds no more records than it retains (the
	// first and this package's few startup records).
	waitPhase(t, n, "double:first", mesh.PhaseCompleted)
	// Handles made once it had ended keep the record they read.
	dup, err := mesh.SubmitWork(ctx, n, Double, "double:first", 21)
	if err != nil || dup.Outcome() != mesh.OutcomeDuplicate {
		t.Fatalf("submit again: %v, %v", dup, err)
	}
	looked, err := mesh.Lookup[int](ctx, n, doubleDecl, "double:first")
	if err != nil {
		t.Fatal(err)
	}
	// Later records, each read through its own handle, push it out of the
	// eight retained.
	for i := range 20 {
		h, err := mesh.SubmitWork(ctx, n, Double, fmt.Sprintf("double:%d", i), i)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(ctx); err != nil || got != 2*i {
			t.Fatalf("later work %d: %d, %v", i, got, err)
		}
	}
	if rec, ok := n.Record("double:first"); ok {
		t.Fatalf("the first record is still retained (%s): the test evicts nothing", rec.Phase)
	}
	got, err := first.Result(ctx)
	if err != nil || got != 42 {
		t.Fatalf("Result after eviction: %d, %v; want 42", got, err)
	}
	// Asked again, the handle answers the same.
	if again, err := first.Result(ctx); err != nil || again != 42 {
		t.Fatalf("second Result: %d, %v", again, err)
	}
	for what, h := range map[string]*mesh.WorkHandle[int]{"duplicate": dup, "lookup": looked} {
		if got, err := h.Result(ctx); err != nil || got != 42 {
			t.Fatalf("%s handle's Result after eviction: %d, %v; want 42", what, got, err)
		}
	}
	// A handle made after the eviction has nothing to claim: the key is
	// unknown to the node.
	if _, err := mesh.Lookup[int](ctx, n, doubleDecl, "double:first"); mesh.RefusalReason(err) != "request_key_not_found" {
		t.Fatalf("lookup of the evicted key: %v", err)
	}
}

// waitPhase polls n until the record of key is in phase.
func waitPhase(t *testing.T, n *mesh.Node, key string, phase mesh.Phase) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		rec, ok := n.Record(key)
		if ok && rec.Phase == phase {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not %s: held %v, %s", key, phase, ok, rec.Phase)
		}
	}
}
