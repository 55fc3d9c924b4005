package continuity

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestNewDiagnosticsCapacity(t *testing.T) {
	tests := []struct {
		capacity, want int
	}{
		{-5, DefaultDiagnosticsCapacity},
		{0, DefaultDiagnosticsCapacity},
		{1, 1},
		{7, 7},
		{128, 128},
		{1000, 1000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.capacity), func(t *testing.T) {
			s := NewDiagnostics(tt.capacity).Snapshot()
			if s.Capacity != tt.want {
				t.Fatalf("Capacity = %d, want %d", s.Capacity, tt.want)
			}
			if len(s.Entries) != 0 || s.Dropped != 0 {
				t.Fatalf("fresh ring has %d entries, %d dropped", len(s.Entries), s.Dropped)
			}
			if s.Entries == nil {
				t.Fatal("Snapshot().Entries is nil, want empty")
			}
		})
	}
	if DefaultDiagnosticsCapacity != 128 {
		t.Fatalf("DefaultDiagnosticsCapacity = %d, DESIGN.md §5.9 says 128", DefaultDiagnosticsCapacity)
	}
}

func TestDiagnosticsRing(t *testing.T) {
	tests := []struct {
		capacity, adds int
	}{
		{1, 0}, {1, 1}, {1, 2}, {1, 10},
		{3, 2}, {3, 3}, {3, 4}, {3, 7}, {3, 9},
		{5, 23},
		{128, 300},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("cap%d/adds%d", tt.capacity, tt.adds), func(t *testing.T) {
			d := NewDiagnostics(tt.capacity)
			for i := range tt.adds {
				got := d.Add(Entry{Transition: fmt.Sprintf("t%d", i), Sequence: 999})
				if got.Sequence != uint64(i+1) {
					t.Fatalf("Add #%d returned sequence %d, want %d (sequence starts at 1 and ignores the caller's)", i, got.Sequence, i+1)
				}
				if got.Transition != fmt.Sprintf("t%d", i) {
					t.Fatalf("Add #%d returned transition %q", i, got.Transition)
				}
			}
			s := d.Snapshot()
			kept := min(tt.adds, tt.capacity)
			if len(s.Entries) != kept {
				t.Fatalf("len(Entries) = %d, want %d", len(s.Entries), kept)
			}
			if want := uint64(tt.adds - kept); s.Dropped != want {
				t.Fatalf("Dropped = %d, want %d", s.Dropped, want)
			}
			// Oldest first, contiguous, ending with the newest.
			first := tt.adds - kept
			for i, e := range s.Entries {
				if e.Sequence != uint64(first+i+1) || e.Transition != fmt.Sprintf("t%d", first+i) {
					t.Fatalf("Entries[%d] = seq %d %q, want seq %d t%d", i, e.Sequence, e.Transition, first+i+1, first+i)
				}
			}
		})
	}
}

func TestDiagnosticsSnapshotIsACopy(t *testing.T) {
	d := NewDiagnostics(3)
	for i := range 5 {
		d.Add(Entry{Transition: fmt.Sprintf("t%d", i)})
	}
	s := d.Snapshot()
	s.Entries[0].Transition = "mutated"
	s.Entries = append(s.Entries[:0], Entry{Transition: "replaced"})
	again := d.Snapshot()
	want := []string{"t2", "t3", "t4"}
	var got []string
	for _, e := range again.Entries {
		got = append(got, e.Transition)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ring changed through a snapshot: %q, want %q", got, want)
	}
	// A snapshot taken earlier does not see later additions.
	d.Add(Entry{Transition: "t5"})
	if len(again.Entries) != 3 || again.Entries[2].Transition != "t4" || again.Dropped != 2 {
		t.Fatalf("older snapshot changed: %+v", again)
	}
	if now := d.Snapshot(); now.Dropped != 3 || now.Entries[2].Transition != "t5" {
		t.Fatalf("snapshot after add: dropped %d last %q", now.Dropped, now.Entries[2].Transition)
	}
}

func TestDiagnosticsConcurrentAdd(t *testing.T) {
	const writers, perWriter, capacity = 8, 250, 64
	d := NewDiagnostics(capacity)
	var wg sync.WaitGroup
	seqs := make([][]uint64, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				e := d.Add(Entry{Transition: fmt.Sprintf("w%d-%d", w, i)})
				seqs[w] = append(seqs[w], e.Sequence)
				if i%50 == 0 {
					_ = d.Snapshot()
				}
			}
		})
	}
	wg.Wait()
	var all []uint64
	for w := range writers {
		if !slices.IsSorted(seqs[w]) {
			t.Fatalf("writer %d saw sequences out of order", w)
		}
		all = append(all, seqs[w]...)
	}
	slices.Sort(all)
	for i, s := range all {
		if s != uint64(i+1) {
			t.Fatalf("sequences not exactly 1..%d: position %d holds %d", writers*perWriter, i, s)
		}
	}
	s := d.Snapshot()
	if len(s.Entries) != capacity || s.Dropped != writers*perWriter-capacity {
		t.Fatalf("len %d dropped %d, want %d and %d", len(s.Entries), s.Dropped, capacity, writers*perWriter-capacity)
	}
	for i, e := range s.Entries {
		if want := uint64(writers*perWriter - capacity + i + 1); e.Sequence != want {
			t.Fatalf("Entries[%d].Sequence = %d, want %d", i, e.Sequence, want)
		}
	}
}

func TestRegistryDiagnosticsDefaultsAndSharing(t *testing.T) {
	r := NewRegistry(Options{Self: "a"})
	if got := r.Diagnostics().Snapshot().Capacity; got != DefaultDiagnosticsCapacity {
		t.Fatalf("default ring capacity = %d", got)
	}
	d := NewDiagnostics(4)
	r = NewRegistry(Options{Self: "a", Diag: d})
	if r.Diagnostics() != d {
		t.Fatal("Diagnostics() does not return the configured ring")
	}
	submitOK(t, r, SubmitRequest{Key: "k", Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}})
	if n := len(d.Snapshot().Entries); n != 1 {
		t.Fatalf("configured ring holds %d entries, want 1", n)
	}
}

func TestRegistryEmitStampsAuthorityAndTime(t *testing.T) {
	clk := newClock()
	r := NewRegistry(Options{Self: "b", Role: RoleStandby, Epoch: 4, Now: clk.Now})
	e := r.Emit(Entry{Transition: "startup_registered", RequestKey: "startup::W", Metadata: []KV{{"runtime_name", "W"}}})
	if e.Sequence != 1 || e.ClusterRole != RoleStandby || e.PromotionEpoch != 4 {
		t.Fatalf("Emit = seq %d role %q epoch %d, want 1 standby 4", e.Sequence, e.ClusterRole, e.PromotionEpoch)
	}
	if !e.Time.Equal(clk.Last()) || e.Time.Location() != time.UTC {
		t.Fatalf("Emit time = %v, want %v in UTC", e.Time, clk.Last())
	}
	// An entry that names its own authority keeps it.
	e = r.Emit(Entry{Transition: "x", ClusterRole: RolePrimary, PromotionEpoch: 9})
	if e.Sequence != 2 || e.ClusterRole != RolePrimary || e.PromotionEpoch != 9 {
		t.Fatalf("Emit with authority = seq %d %q %d, want 2 primary 9", e.Sequence, e.ClusterRole, e.PromotionEpoch)
	}
	s := r.Diagnostics().Snapshot()
	if len(s.Entries) != 2 || s.Entries[0].Transition != "startup_registered" || s.Entries[1].Transition != "x" {
		t.Fatalf("ring = %+v", s.Entries)
	}
}

func TestRegistryEmitRecordDerivesFields(t *testing.T) {
	r := NewRegistry(Options{Self: "a", Role: RolePrimary, Epoch: 2, Now: newClock().Now})
	rec := mkRecord("k", func(x *Record) {
		x.Attempt = 7
		x.ExecutionNode = "a"
		x.Phase, x.Result = PhaseCompleted, ResultSucceeded
		x.RuntimeName = "Work.add"
		x.Error = "stored_error"
	})
	r.EmitRecord("startup_completed", rec, "", KV{"runtime_name", "Work.add"})
	e := lastEntry(t, r)
	if e.Transition != "startup_completed" || e.RequestKey != "k" || e.AttemptID != "attempt-7" ||
		e.OwnerNode != "a" || e.ReplicaNode != "b" || e.ExecutionNode != "a" ||
		e.ClusterRole != RolePrimary || e.PromotionEpoch != 2 ||
		e.ReplicationHealth != HealthHealthy || e.ReplicaStatus != ReplicaMirrored {
		t.Fatalf("entry = %+v", e)
	}
	if e.Reason != "stored_error" {
		t.Fatalf("Reason = %q, want the record's error when no reason is given", e.Reason)
	}
	wantMeta := []KV{{"runtime_name", "Work.add"}, {"phase", "completed"}, {"result", "succeeded"},
		{"replication_count", "2"}, {"declared_handler_runtime_name", "Work.add"}}
	if !slices.Equal(e.Metadata, wantMeta) {
		t.Fatalf("Metadata = %v, want %v (caller's pairs first, in order)", e.Metadata, wantMeta)
	}
	r.EmitRecord("x", rec, "explicit")
	if e := lastEntry(t, r); e.Reason != "explicit" {
		t.Fatalf("Reason = %q, want explicit", e.Reason)
	}
	// No runtime name: no declared_handler_runtime_name pair.
	rec.RuntimeName = ""
	r.EmitRecord("y", rec, "")
	if _, ok := metaValue(lastEntry(t, r), "declared_handler_runtime_name"); ok {
		t.Fatal("declared_handler_runtime_name present for a record without one")
	}
}

// sinkRecorder collects sink entries; safe for concurrent use.
type sinkRecorder struct {
	mu      sync.Mutex
	entries []Entry
}

func (s *sinkRecorder) sink(e Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, e)
}

func (s *sinkRecorder) got() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.entries)
}

func TestSinkReceivesEveryEntryInOrder(t *testing.T) {
	var rec sinkRecorder
	r := NewRegistry(Options{Self: "a", Role: RolePrimary, Sink: rec.sink, Diag: NewDiagnostics(1000), Now: newClock().Now})
	// A mix of operations, some of which emit several entries under one lock.
	runScript(t, r)
	ring := r.Diagnostics().Snapshot().Entries
	got := rec.got()
	if len(got) != len(ring) || len(got) < 10 {
		t.Fatalf("sink saw %d entries, ring holds %d", len(got), len(ring))
	}
	for i := range got {
		if got[i].Sequence != uint64(i+1) {
			t.Fatalf("sink entry %d has sequence %d, want %d", i, got[i].Sequence, i+1)
		}
		if got[i].Transition != ring[i].Transition || got[i].RequestKey != ring[i].RequestKey || got[i].Reason != ring[i].Reason {
			t.Fatalf("sink entry %d = %+v, ring entry = %+v", i, got[i], ring[i])
		}
	}
}

// runScript drives a registry named "a" through most transitions.
func runScript(t *testing.T, r *Registry) {
	t.Helper()
	two := Placement{Owner: "a", Replica: "b"}
	d := submitOK(t, r, SubmitRequest{Key: "k1", Hash: "h1", Count: 2, Ingress: "a", Placement: two})
	ok(t)(r.Prepared("k1", d.Record.Attempt))
	ok(t)(r.Complete("k1", d.Record.Attempt, "a", r.FenceGeneration()))
	submitOK(t, r, SubmitRequest{Key: "k1", Hash: "h1", Count: 2, Ingress: "a", Placement: two})    // duplicate
	submitOK(t, r, SubmitRequest{Key: "k1", Hash: "other", Count: 2, Ingress: "a", Placement: two}) // conflict
	submitOK(t, r, SubmitRequest{Key: "k3", Hash: "h3", Count: 3, Ingress: "a", Placement: two})    // submit+rejected
	d = submitOK(t, r, SubmitRequest{Key: "k4", Hash: "h4", Count: 2, Ingress: "a", Placement: two})
	ok(t)(r.Prepared("k4", d.Record.Attempt))
	d = submitOK(t, r, SubmitRequest{Key: "k5", Hash: "h5", Count: 2, Ingress: "a", Placement: Placement{Owner: "b", Replica: "a"}})
	ok(t)(r.Prepared("k5", d.Record.Attempt))
	_, _ = r.Complete("k4", 999, "a", r.FenceGeneration()) // completion_rejected
	r.NodeLost("b")                                        // degraded k4, owner_lost k5
	ok(t)(r.Rollover("k5", d.Record.Attempt))
	if _, err := r.ObserveAuthority("0-first", RolePrimary, 3, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Promote("0-first"); err != nil {
		t.Fatal(err)
	}
	r.Emit(Entry{Transition: "custom"})
}

func TestSinkMayCallBackIntoRegistry(t *testing.T) {
	var (
		r     *Registry
		mu    sync.Mutex
		seen  []Entry
		depth int
	)
	sink := func(e Entry) {
		mu.Lock()
		seen = append(seen, e)
		depth++
		d := depth
		mu.Unlock()
		// Every read and write method, from inside the sink.
		_, _ = r.Get(e.RequestKey)
		_ = r.Records()
		_ = r.Len()
		_ = r.Health()
		_, _ = r.Authority()
		_ = r.FenceGeneration()
		_ = r.Watermark()
		_ = r.Diagnostics().Snapshot()
		if e.Transition == TransitionSubmit && d < 50 {
			r.Emit(Entry{Transition: "sink_echo", RequestKey: e.RequestKey})
		}
		if e.Transition == TransitionCompleted {
			if _, err := r.Submit(SubmitRequest{Key: e.RequestKey + "-next", Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}}); err != nil {
				t.Error(err)
			}
		}
	}
	r = NewRegistry(Options{Self: "a", Sink: sink, Diag: NewDiagnostics(1000), Now: newClock().Now})
	done := make(chan struct{})
	go func() {
		defer close(done)
		d, err := r.Submit(SubmitRequest{Key: "k", Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}})
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := r.Complete("k", d.Record.Attempt, "a", r.FenceGeneration()); err != nil {
			t.Error(err)
		}
		if _, err := r.Submit(SubmitRequest{Key: "x", Hash: "h", Count: 3, Ingress: "a", Placement: Placement{Owner: "a", Replica: "b"}}); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deadlock: a sink calling back into the registry never returned")
	}
	ring := r.Diagnostics().Snapshot().Entries
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(ring) {
		t.Fatalf("sink saw %d entries, ring holds %d", len(seen), len(ring))
	}
	// Every entry reaches the sink exactly once. (Entries emitted from inside
	// the sink are delivered before the rest of the outer batch, so the sink
	// order is not the sequence order here; only in the absence of callbacks.)
	seqs := make([]uint64, 0, len(seen))
	for _, e := range seen {
		seqs = append(seqs, e.Sequence)
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("sink sequences %v are not exactly 1..%d", seqs, len(ring))
		}
	}
	var transitions []string
	for _, e := range ring {
		transitions = append(transitions, e.Transition)
	}
	want := []string{TransitionSubmit, "sink_echo", TransitionCompleted, TransitionSubmit, "sink_echo",
		TransitionSubmit, TransitionRejected, "sink_echo"}
	if !slices.Equal(transitions, want) {
		t.Fatalf("ring transitions = %q, want %q", transitions, want)
	}
	if _, ok := r.Get("k-next"); !ok {
		t.Fatal("submit made from inside the sink was lost")
	}
}

func TestSinkConcurrentDeliveryExactlyOnce(t *testing.T) {
	var rec sinkRecorder
	r := NewRegistry(Options{Self: "a", Sink: rec.sink, Diag: NewDiagnostics(8), Now: newClock().Now})
	const workers, perWorker = 4, 100
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				key := fmt.Sprintf("w%d-%d", w, i)
				d, err := r.Submit(SubmitRequest{Key: key, Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := r.Complete(key, d.Record.Attempt, "a", 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := rec.got()
	if len(got) != 2*workers*perWorker {
		t.Fatalf("sink saw %d entries, want %d", len(got), 2*workers*perWorker)
	}
	seen := map[uint64]bool{}
	perKey := map[string][]string{}
	for _, e := range got {
		if seen[e.Sequence] {
			t.Fatalf("sequence %d delivered twice", e.Sequence)
		}
		seen[e.Sequence] = true
		perKey[e.RequestKey] = append(perKey[e.RequestKey], e.Transition)
	}
	for k, ts := range perKey {
		if !slices.Equal(ts, []string{TransitionSubmit, TransitionCompleted}) {
			t.Fatalf("key %s: sink saw %q", k, ts)
		}
	}
	// The ring kept only its capacity and counted the rest.
	s := r.Diagnostics().Snapshot()
	if len(s.Entries) != 8 || s.Dropped != uint64(len(got)-8) {
		t.Fatalf("ring holds %d, dropped %d", len(s.Entries), s.Dropped)
	}
}

func TestRegistryDiagnosticsSequenceAcrossTransitions(t *testing.T) {
	r := NewRegistry(Options{Self: "a", Diag: NewDiagnostics(4), Now: newClock().Now})
	runScript(t, r)
	s := r.Diagnostics().Snapshot()
	if len(s.Entries) != 4 {
		t.Fatalf("ring holds %d entries, want 4", len(s.Entries))
	}
	total := s.Dropped + uint64(len(s.Entries))
	for i, e := range s.Entries {
		if want := s.Dropped + uint64(i) + 1; e.Sequence != want {
			t.Fatalf("Entries[%d].Sequence = %d, want %d", i, e.Sequence, want)
		}
	}
	if last := s.Entries[3]; last.Sequence != total || last.Transition != "custom" {
		t.Fatalf("last entry = seq %d %q, want seq %d custom", last.Sequence, last.Transition, total)
	}
}

func TestEntryKindFollowsRecord(t *testing.T) {
	r := NewRegistry(Options{Self: "a", Now: newClock().Now, RoutineRoutes: true})
	submitOK(t, r, SubmitRequest{Key: "http-route::R::1", Hash: "h", Count: 1, Kind: KindRoute, Ingress: "a", Placement: Placement{Owner: "a"}})
	submitOK(t, r, SubmitRequest{Key: "w", Hash: "h", Count: 1, Kind: KindWork, Ingress: "a", Placement: Placement{Owner: "a"}})
	r.EmitRecord("route_note", mkRecord("x", func(x *Record) { x.Kind = KindRoute }), "")
	r.Emit(Entry{Transition: "node_level"})
	var got []Kind
	for _, e := range entries(r) {
		got = append(got, e.Kind)
	}
	if want := []Kind{KindRoute, KindWork, KindRoute, KindWork}; !slices.Equal(got, want) {
		t.Fatalf("entry kinds = %v, want %v", got, want)
	}
}

func TestRoutineRouteTransitionsStayOutOfTheRingByDefault(t *testing.T) {
	r := NewRegistry(Options{Self: "a", Now: newClock().Now})
	d := submitOK(t, r, SubmitRequest{Key: "http-route::R::1", Hash: "h", Count: 1, Kind: KindRoute, Ingress: "a", Placement: Placement{Owner: "a"}})
	if _, err := r.Complete(d.Record.RequestKey, d.Record.Attempt, "a", r.FenceGeneration()); err != nil {
		t.Fatal(err)
	}
	if got := entries(r); len(got) != 0 {
		t.Fatalf("routine route transitions recorded: %+v", got)
	}
	submitOK(t, r, SubmitRequest{Key: "http-route::R::2", Hash: "h", Count: 3, Kind: KindRoute, Ingress: "a", Placement: Placement{Owner: "a"}})
	got := entries(r)
	if len(got) != 1 || got[0].Transition != TransitionRejected {
		t.Fatalf("a refused route request must stay visible: %+v", got)
	}
}

// TestCoalescedEntryKeepsTheRing: a flood of coalesced entries is one entry
// that never evicts ring entries, reads as the most recent, and keeps the
// sequence order of the snapshot.
func TestCoalescedEntryKeepsTheRing(t *testing.T) {
	d := NewDiagnostics(4)
	d.Add(Entry{Transition: "startup_triggered"})
	d.Add(Entry{Transition: "automatic_promotion"})
	for i := range 300 {
		d.Coalesce(Entry{Transition: "handshake_rejected", Metadata: []KV{{Key: "count", Value: fmt.Sprint(i + 1)}}})
	}
	s := d.Snapshot()
	if s.Dropped != 0 || len(s.Entries) != 3 {
		t.Fatalf("snapshot %+v: want the 2 ring entries and 1 coalesced entry, nothing dropped", s)
	}
	if s.Entries[0].Transition != "startup_triggered" || s.Entries[1].Transition != "automatic_promotion" {
		t.Fatalf("ring entries lost: %+v", s.Entries)
	}
	last := s.Entries[2]
	if last.Transition != "handshake_rejected" || last.Metadata[0].Value != "300" || last.Sequence != 302 {
		t.Fatalf("coalesced entry %+v, want the 300th with sequence 302", last)
	}
	// A later ring entry sorts after it; the ring still evicts only its own.
	for range 5 {
		d.Add(Entry{Transition: "x"})
	}
	s = d.Snapshot()
	if len(s.Entries) != 5 || s.Dropped != 3 || s.Entries[0].Transition != "handshake_rejected" {
		t.Fatalf("after 5 more: %+v dropped %d", s.Entries, s.Dropped)
	}
	for i := 1; i < len(s.Entries); i++ {
		if s.Entries[i-1].Sequence >= s.Entries[i].Sequence {
			t.Fatalf("snapshot not in sequence order: %+v", s.Entries)
		}
	}
}
