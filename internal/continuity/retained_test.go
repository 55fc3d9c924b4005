package continuity

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func fullRecord(key string) Record {
	at := time.Date(2026, 12, 4, 15, 4, 5, 123456789, time.UTC)
	return Record{
		RequestKey: key, PayloadHash: "h-" + key, Attempt: 7, Phase: PhaseCompleted, Result: ResultSucceeded,
		IngressNode: "a@127.0.0.1:1", OwnerNode: "b@[::1]:1", ReplicaNode: "a@127.0.0.1:1", ReplicationCount: 2,
		ReplicaStatus: ReplicaDegradedContinuing, Role: RoleStandby, Epoch: 3, Health: HealthDegraded,
		ExecutionNode: "b@[::1]:1", RoutedRemotely: true, Error: "replica_lost:x", RuntimeName: "api.List",
		Kind: KindRoute, SubmittedAt: at, CompletedAt: at.Add(time.Millisecond), Response: []byte{1, 2, 3},
	}
}

func TestRetainedEncodingRoundTrips(t *testing.T) {
	full := fullRecord("k")
	bare := Record{RequestKey: "b", PayloadHash: "h", Phase: PhaseRejected, Result: ResultRejected, OwnerNode: "a", ReplicationCount: 1}
	empty := full
	empty.Response = []byte{}
	odd := full
	odd.Phase, odd.Health, odd.ReplicaStatus, odd.Role = "future_phase", "future_health", "future_status", "future_role"
	odd.FellBackLocally, odd.RoutedRemotely = true, false
	odd.SubmittedAt = time.Date(1500, 1, 1, 0, 0, 0, 1, time.UTC) // outside the UnixNano range
	refused := bare
	refused.Error, refused.Refused = string(ReasonReplicaRequiredUnavailable), true
	typed := full
	typed.Kind, typed.Response, typed.Input, typed.Output = KindWork, nil, []byte(`{"id":42}`), []byte{0, 0xff}
	inputOnly := bare
	inputOnly.Input = []byte{}
	for name, rec := range map[string]Record{"full": full, "bare": bare, "empty response": empty, "unknown enums": odd, "refused": refused,
		"typed work": typed, "empty input only": inputOnly} {
		b := appendRetained(nil, &rec)
		if len(b) > retainedSize(&rec) {
			t.Fatalf("%s: encoded %d bytes, size estimate %d", name, len(b), retainedSize(&rec))
		}
		got, err := decodeRetained(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(*got, rec) {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", name, *got, rec)
		}
		if !retainedKeyIs(b, rec.RequestKey) || retainedKeyIs(b, rec.RequestKey+"x") {
			t.Fatalf("%s: retainedKeyIs wrong", name)
		}
		for i := range len(b) {
			if _, err := decodeRetained(b[:i]); err == nil {
				t.Fatalf("%s: truncation at %d decoded", name, i)
			}
		}
	}
	// A decoded response is a copy: changing it leaves the stored entry alone.
	kept := newRetained(4, DefaultRetainBytes)
	rec := fullRecord("k")
	kept.put(&rec)
	got, _ := kept.lookup("k")
	got.Response[0] = 9
	if again, _ := kept.lookup("k"); again.Response[0] != 1 {
		t.Fatal("a decoded response aliases the log")
	}
}

func TestRetainedEvictsOldestAndBoundsTheLog(t *testing.T) {
	kept := newRetained(3, DefaultRetainBytes)
	put := func(key, errText string) {
		rec := fullRecord(key)
		rec.Error = errText
		kept.put(&rec)
	}
	for i := range 5 {
		put(fmt.Sprint(i), "")
	}
	var order []string
	kept.each(func(r *Record) bool { order = append(order, r.RequestKey); return true })
	if strings.Join(order, ",") != "2,3,4" || kept.live != 3 {
		t.Fatalf("retained %v (live %d), want the newest three oldest first", order, kept.live)
	}
	// Storing a key again makes its old entry dead and the newest version
	// wins; many updates of one key never grow the log past twice the bound.
	for i := range 100 {
		put("3", fmt.Sprint("v", i))
	}
	if got, ok := kept.lookup("3"); !ok || got.Error != "v99" {
		t.Fatalf("lookup after updates: %+v %v", got, ok)
	}
	if kept.total > 2*kept.bound || kept.live > kept.bound {
		t.Fatalf("log holds %d entries (%d live) for bound %d", kept.total, kept.live, kept.bound)
	}
	kept.remove("3")
	if _, ok := kept.lookup("3"); ok {
		t.Fatal("removed key still found")
	}
	kept.remove("never-stored") // no effect
	live := 0
	kept.each(func(*Record) bool { live++; return true })
	if live != kept.live {
		t.Fatalf("each saw %d records, live counts %d", live, kept.live)
	}
	// A response larger than a chunk gets a chunk of its own.
	big := fullRecord("big")
	big.Response = make([]byte, 3*retainedChunk)
	kept.put(&big)
	if got, ok := kept.lookup("big"); !ok || len(got.Response) != 3*retainedChunk {
		t.Fatal("large record lost")
	}
	for i := range 50 {
		put(fmt.Sprint("after-", i), "")
	}
	if len(kept.chunks) > 2 {
		t.Fatalf("%d chunks kept for %d small records", len(kept.chunks), kept.live)
	}
}

// Under steady churn the chunk that empties at the head is the next one
// filled: no new chunk is allocated, and what is retained stays right.
func TestRetainedReusesEmptiedChunks(t *testing.T) {
	kept := newRetained(500, DefaultRetainBytes)
	recs := make([]Record, 16000)
	for i := range recs {
		recs[i] = fullRecord(fmt.Sprint("churn-", i))
	}
	seq := 0
	churn := func(n int) {
		for range n {
			kept.put(&recs[seq])
			seq++
		}
	}
	churn(5000) // past the bound, so every put evicts
	allocs := testing.AllocsPerRun(20, func() { churn(500) })
	// 500 of these records (146 bytes each with the entry header) take a
	// little more than a 64 KiB chunk, so allocating fresh chunks would cost
	// one or two allocations per run.
	if allocs > 0.5 {
		t.Fatalf("%.1f allocations per 500 puts at steady state, want chunks reused", allocs)
	}
	if n := len(kept.order) - kept.orderHead; n != kept.total {
		t.Fatalf("eviction order holds %d entries, the log %d", n, kept.total)
	}
	var keys []string
	kept.each(func(r *Record) bool { keys = append(keys, r.RequestKey); return true })
	if len(keys) != 500 || keys[0] != fmt.Sprint("churn-", seq-500) || keys[499] != fmt.Sprint("churn-", seq-1) {
		t.Fatalf("after reuse: %d records, first %q, last %q", len(keys), keys[0], keys[len(keys)-1])
	}
	for _, k := range keys {
		if got, ok := kept.lookup(k); !ok || got.PayloadHash != "h-"+k {
			t.Fatalf("lookup %q after reuse: %+v %v", k, got, ok)
		}
	}
}

// Keys whose hashes collide cannot both be retained: the newer replaces the
// older, and neither is ever answered for the other.
func TestRetainedHashCollision(t *testing.T) {
	kept := newRetained(10, DefaultRetainBytes)
	kept.hash = func(string) uint64 { return 42 }
	a, b := fullRecord("a"), fullRecord("b")
	kept.put(&a)
	kept.put(&b)
	if _, ok := kept.lookup("a"); ok {
		t.Fatal("replaced key a still answered")
	}
	if got, ok := kept.lookup("b"); !ok || got.RequestKey != "b" {
		t.Fatal("key b lost")
	}
	kept.remove("a") // must not remove b
	if _, ok := kept.lookup("b"); !ok || kept.live != 1 {
		t.Fatalf("removing a removed b (live %d)", kept.live)
	}
}

// FuzzDecodeRetained: any bytes decode without panicking, and whatever
// decodes encodes back to the same bytes.
func FuzzDecodeRetained(f *testing.F) {
	full := fullRecord("k")
	f.Add(appendRetained(nil, &full))
	bare := Record{RequestKey: "b", Phase: "x"}
	f.Add(appendRetained(nil, &bare))
	f.Add([]byte{})
	typed := fullRecord("t")
	typed.Input, typed.Output = []byte(`{"id":42}`), []byte(`"ok"`)
	f.Add(appendRetained(nil, &typed))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRetained(b)
		if err != nil {
			return
		}
		again, err := decodeRetained(appendRetained(nil, rec))
		if err != nil || !reflect.DeepEqual(again, rec) {
			t.Fatalf("re-encoding changed the record: %+v / %+v (%v)", rec, again, err)
		}
	})
}

// After a burst of pending records drains, the pending map is rebuilt at
// its new size instead of keeping the burst's.
func TestPendingMapShrinksAfterBurst(t *testing.T) {
	r := NewRegistry(Options{Self: "a", Retain: 100})
	var attempts []uint64
	for i := range 5000 {
		d, err := r.Submit(SubmitRequest{Key: fmt.Sprint("k", i), Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}})
		if err != nil {
			t.Fatal(err)
		}
		attempts = append(attempts, d.Record.Attempt)
	}
	if r.memory().pendingPeak != 5000 {
		t.Fatalf("peak %d, want 5000", r.memory().pendingPeak)
	}
	for i, a := range attempts {
		if _, err := r.Complete(fmt.Sprint("k", i), a, "a", 0); err != nil {
			t.Fatal(err)
		}
	}
	if r.memory().pendingPeak >= 1024 || len(r.memory().pending) != 0 || r.Len() != 100 {
		t.Fatalf("after draining: peak %d, pending %d, Len %d", r.memory().pendingPeak, len(r.memory().pending), r.Len())
	}
}

// The byte budget bounds what the log holds whatever the record count:
// records of any size (half a chunk, a chunk, several) push the oldest out,
// the newest stay, and the log never takes more than the budget plus the one
// chunk it always keeps.
func TestRetainedByteBudget(t *testing.T) {
	const budget = 1 << 20
	for _, size := range []int{100, retainedChunk/2 + 1, retainedChunk - 200, 3 * retainedChunk} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			kept := newRetained(10000, budget)
			n := 4 * budget / size
			for i := range n {
				rec := fullRecord(fmt.Sprint("r-", i))
				rec.Response = make([]byte, size)
				kept.put(&rec)
				var held int64
				for _, c := range kept.chunks {
					held += int64(cap(c))
				}
				if held != kept.bytes {
					t.Fatalf("after %d puts: chunks hold %d bytes, the count says %d", i+1, held, kept.bytes)
				}
				if limit := int64(budget + max(retainedChunk, size+512)); held > limit {
					t.Fatalf("after %d puts of %d bytes: log holds %d bytes, limit %d", i+1, size, held, limit)
				}
			}
			if _, ok := kept.lookup(fmt.Sprint("r-", n-1)); !ok {
				t.Fatal("the newest record was evicted")
			}
			if _, ok := kept.lookup("r-0"); ok {
				t.Fatal("the oldest record survived four budgets' worth of newer ones")
			}
			if kept.live == 0 || kept.live >= n {
				t.Fatalf("%d of %d records live", kept.live, n)
			}
		})
	}
	// A budget below one chunk keeps the newest record only.
	kept := newRetained(10000, 1)
	for i := range 3 {
		rec := fullRecord(fmt.Sprint("tiny-", i))
		rec.Response = make([]byte, retainedChunk)
		kept.put(&rec)
	}
	if _, ok := kept.lookup("tiny-2"); !ok || kept.live != 1 || len(kept.chunks) != 1 {
		t.Fatalf("tiny budget: live %d, chunks %d", kept.live, len(kept.chunks))
	}
}

// The typed work section of a retained entry is versioned and its presence
// bytes are strict: anything else is a malformed entry, never a guess.
func TestRetainedWorkSectionRejected(t *testing.T) {
	rec := Record{RequestKey: "w", PayloadHash: "h", Phase: PhaseCompleted, Result: ResultSucceeded, OwnerNode: "a",
		ReplicationCount: 1, Output: []byte("out")}
	b := appendRetained(nil, &rec)
	at := len(b) - (1 + 1 + 1 + 1 + 3) // version, input presence, output presence, length, value
	for name, mutate := range map[string]func([]byte){
		"unknown version":  func(b []byte) { b[at] = 2 },
		"invalid presence": func(b []byte) { b[at+1] = 2 },
	} {
		c := append([]byte{}, b...)
		mutate(c)
		if _, err := decodeRetained(c); err == nil {
			t.Fatalf("%s: decoded", name)
		}
	}
	if got, err := decodeRetained(b); err != nil || string(got.Output) != "out" || got.Input != nil {
		t.Fatalf("valid entry: %+v, %v", got, err)
	}
}

// TestMemoryStoreHolds: the snapshot answers for the keys held when it was
// taken, pending or retained, and not for evicted or unknown keys; what the
// store does afterwards does not change its answers.
func TestMemoryStoreHolds(t *testing.T) {
	m := NewMemoryStore(Retention{Records: 2})
	put := func(key string, phase Phase) {
		t.Helper()
		if err := m.Put(Record{RequestKey: key, Phase: phase, Attempt: 1}); err != nil {
			t.Fatal(err)
		}
	}
	put("evicted", PhaseCompleted)
	put("kept-1", PhaseCompleted)
	put("kept-2", PhaseCompleted) // evicts "evicted": the bound is two
	put("pending", PhaseSubmitted)
	held := m.Holds()

	put("later", PhaseSubmitted)
	put("pending", PhaseCompleted) // evicts "kept-1"
	put("kept-2", PhaseSubmitted)

	for key, want := range map[string]bool{"pending": true, "kept-1": true, "kept-2": true,
		"evicted": false, "later": false, "unknown": false} {
		if got := held(key); got != want {
			t.Errorf("held(%q) = %v, want %v", key, got, want)
		}
	}
	if _, ok := m.Get("kept-1"); ok {
		t.Fatal("kept-1 is still retained: the test no longer evicts it after the snapshot")
	}
}
