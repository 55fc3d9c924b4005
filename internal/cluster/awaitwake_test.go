package cluster

import (
	"testing"

	"meshgo.dev/mesh/internal/continuity"
)

// A waiter is woken once by its key's work record ending, not by a pending
// version, a route record or another key, and is handed the ended version
// (its own copy of the output); a removed waiter is forgotten.
func TestAwaitWake(t *testing.T) {
	var a awaitWake
	woken := func(w *awaiter) bool {
		_, ok := w.ended()
		return ok
	}
	w1, w2, other := a.add("k"), a.add("k"), a.add("other")
	a.wake(&continuity.Record{RequestKey: "k", Kind: continuity.KindWork, Phase: continuity.PhaseSubmitted})
	a.wake(&continuity.Record{RequestKey: "k", Kind: continuity.KindRoute, Phase: continuity.PhaseCompleted})
	if woken(w1) || woken(w2) {
		t.Fatal("woken by a pending work record or an ended route record")
	}
	out := []byte("out")
	a.wake(&continuity.Record{RequestKey: "k", Kind: continuity.KindWork, Phase: continuity.PhaseCompleted, Output: out})
	if !woken(w1) || !woken(w2) || woken(other) {
		t.Fatal("the ended work record did not wake its key's waiters only")
	}
	out[0] = 'X' // the caller reuses its buffer
	for _, w := range []*awaiter{w1, w2} {
		if rec, _ := w.ended(); rec.Phase != continuity.PhaseCompleted || string(rec.Output) != "out" {
			t.Fatalf("handed %s %q, want the completed version with output %q", rec.Phase, rec.Output, "out")
		}
	}
	if got := a.waiting.Load(); got != 1 {
		t.Fatalf("%d waiters registered, want 1 (other)", got)
	}
	a.remove(w1) // already woken: nothing to forget
	a.remove(other)
	if got := a.waiting.Load(); got != 0 || len(a.by) != 0 {
		t.Fatalf("%d waiters, %d keys left", got, len(a.by))
	}
}
