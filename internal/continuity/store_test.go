package continuity

import (
	"errors"
	"reflect"
	"testing"
)

// recordingStore is a MemoryStore that notes every Put, and fails them
// while err is set.
type recordingStore struct {
	*MemoryStore
	puts []Record
	err  error
}

func (s *recordingStore) Put(rec Record) error {
	if s.err != nil {
		return s.err
	}
	s.puts = append(s.puts, rec)
	return s.MemoryStore.Put(rec)
}

// A registry over a store that already holds records (a durable store
// recovered on start) never numbers an attempt it holds again.
func TestRegistryNumbersAttemptsAboveItsStore(t *testing.T) {
	s := NewMemoryStore(Retention{})
	held := Record{RequestKey: "old", PayloadHash: "h", Attempt: 41, Phase: PhaseCompleted, Result: ResultSucceeded,
		OwnerNode: "a", ReplicationCount: 1}
	pend := Record{RequestKey: "pending", PayloadHash: "h", Attempt: 17, Phase: PhaseSubmitted, Result: ResultPending,
		OwnerNode: "a", ReplicationCount: 1}
	for _, rec := range []Record{held, pend} {
		if err := s.Put(rec); err != nil {
			t.Fatal(err)
		}
	}
	r := NewRegistry(Options{Self: "a", Store: s, Now: newClock().Now})
	if w := r.Watermark(); w != 42 {
		t.Fatalf("watermark %d, want 42", w)
	}
	d := submitOK(t, r, SubmitRequest{Key: "new", Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}})
	if d.Record.Attempt != 42 {
		t.Fatalf("new attempt %d, want 42", d.Record.Attempt)
	}
	if got := r.PendingRecords(); len(got) != 2 || got[0].RequestKey != "new" || got[1].RequestKey != "pending" {
		t.Fatalf("pending records %+v", got)
	}
	if fresh := NewRegistry(Options{Self: "a"}); fresh.Watermark() != 0 {
		t.Fatalf("empty store: watermark %d", fresh.Watermark())
	}
}

// Every transition reaches the store as a Put of the changed record,
// pending ones included (a durable store must see each step), and what the
// store holds is what the registry answers.
func TestRegistryStoresEveryTransition(t *testing.T) {
	s := &recordingStore{MemoryStore: NewMemoryStore(Retention{})}
	r := NewRegistry(Options{Self: "a", Store: s, Now: newClock().Now})
	step := func(what string, want func(Record) bool) {
		t.Helper()
		if len(s.puts) == 0 {
			t.Fatalf("%s: nothing stored", what)
		}
		last := s.puts[len(s.puts)-1]
		if !want(last) {
			t.Fatalf("%s: stored %+v", what, last)
		}
		got, ok := r.Get(last.RequestKey)
		if !ok || !SameVersion(got, last) {
			t.Fatalf("%s: registry answers %+v, store holds %+v", what, got, last)
		}
		s.puts = s.puts[:0]
	}
	d := submitOK(t, r, SubmitRequest{Key: "w", Hash: "h", Count: 2, Ingress: "a", Placement: Placement{Owner: "a", Replica: "b"}})
	step("submit", func(rec Record) bool { return rec.Pending() && rec.ReplicaStatus == ReplicaPreparing })
	ok(t)(r.Prepared("w", d.Record.Attempt))
	step("prepared", func(rec Record) bool { return rec.Pending() && rec.ReplicaStatus == ReplicaMirrored })
	r.NodeLost("b")
	step("replica lost", func(rec Record) bool { return rec.ReplicaStatus == ReplicaDegradedContinuing })
	ok(t)(r.Complete("w", d.Record.Attempt, "a", r.FenceGeneration()))
	step("completed", func(rec Record) bool { return rec.Phase == PhaseCompleted })

	in := Record{RequestKey: "m", PayloadHash: "h", Attempt: 9, Phase: PhaseSubmitted, Result: ResultPending,
		IngressNode: "b", OwnerNode: "b", ReplicationCount: 1, ReplicaStatus: ReplicaUnassigned, Health: HealthLocalOnly}
	if _, _, err := r.Merge(in, "b"); err != nil {
		t.Fatal(err)
	}
	step("merged", func(rec Record) bool { return rec.Attempt == 9 })
	orphaned := r.NodeLost("b")
	step("owner lost", func(rec Record) bool { return rec.ReplicaStatus == ReplicaOwnerLost })
	if len(orphaned) != 1 {
		t.Fatalf("orphaned %+v", orphaned)
	}
	rolled := ok(t)(r.Rollover("m", 9))
	step("rollover", func(rec Record) bool { return rec.Attempt == rolled.Attempt && rec.OwnerNode == "a" })
	ok(t)(r.Refuse("m", rolled.Attempt, "dispatch_failed"))
	step("refused", func(rec Record) bool { return rec.Refused && rec.Phase == PhaseRejected })
}

// A change the store cannot take is reported and leaves the stored record
// as it was.
func TestRegistryReportsWhatItsStoreRefuses(t *testing.T) {
	diskFull := errors.New("disk full")
	s := &recordingStore{MemoryStore: NewMemoryStore(Retention{})}
	r := NewRegistry(Options{Self: "a", Store: s, Now: newClock().Now})
	d := submitOK(t, r, SubmitRequest{Key: "k", Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}})
	before, _ := r.Get("k")
	s.err = diskFull
	for name, call := range map[string]func() error{
		"Submit": func() error {
			_, err := r.Submit(SubmitRequest{Key: "k2", Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}})
			return err
		},
		"Complete": func() error { _, err := r.Complete("k", d.Record.Attempt, "a", r.FenceGeneration()); return err },
		"Reject":   func() error { _, err := r.Reject("k", d.Record.Attempt, "x"); return err },
		"Merge": func() error {
			_, _, err := r.Merge(Record{RequestKey: "k3", PayloadHash: "h", Attempt: 1, Phase: PhaseCompleted,
				Result: ResultSucceeded, OwnerNode: "b", ReplicationCount: 1}, "b")
			return err
		},
	} {
		if err := call(); !errors.Is(err, diskFull) {
			t.Fatalf("%s: err = %v, want it to wrap %v", name, err, diskFull)
		}
	}
	if got, _ := r.Get("k"); !reflect.DeepEqual(got, before) {
		t.Fatalf("record changed by refused puts:\n got %+v\nwant %+v", got, before)
	}
	if orphaned := r.NodeLost("a"); len(orphaned) != 0 {
		t.Fatalf("NodeLost returned records the store did not take: %+v", orphaned)
	}
	for _, k := range []string{"k2", "k3"} {
		if _, ok := r.Get(k); ok {
			t.Fatalf("%s stored although the store refused it", k)
		}
	}
}
