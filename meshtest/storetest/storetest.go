// Package storetest is the conformance suite every continuity.Store must
// pass: the in-memory store today, a durable one later. A test of an
// implementation calls Run with a function that opens an empty store within
// the given retention budget:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, limit continuity.Retention) continuity.Store {
//			return continuity.NewMemoryStore(limit)
//		})
//	}
//
// open is called once per subtest, and may register cleanups with t (close
// the store, remove its directory). The suite checks what the Store
// interface documents and nothing more: every field survives a round trip,
// a key holds one version, pending records are never evicted, terminal ones
// are evicted oldest first within the count and byte budgets, iteration
// orders, and Sync running concurrently with the serialized calls.
//
// It imports the standard library and internal/continuity only.
package storetest

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// Opener opens an empty store that keeps terminal records within limit.
type Opener func(t *testing.T, limit continuity.Retention) continuity.Store

// Run runs the conformance suite against the stores open returns, one
// subtest per property.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"RoundTrip", testRoundTrip},
		{"GetMissing", testGetMissing},
		{"CopyOnPut", testCopyOnPut},
		{"Overwrite", testOverwrite},
		{"ListOrder", testListOrder},
		{"IterationStops", testIterationStops},
		{"PendingNeverEvicted", testPendingNeverEvicted},
		{"CountBudget", testCountBudget},
		{"RepeatedUpdatesStayBounded", testRepeatedUpdates},
		{"ByteBudget", testByteBudget},
		{"RecordLargerThanBudget", testLargerThanBudget},
		{"Model", testModel},
		{"Concurrency", testConcurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// ---- records ------------------------------------------------------------------------------

var base = time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC)

// Full returns a version of key with every field set to a value that
// differs from its zero value and from the other fields, in phase. i makes
// versions of one key differ.
func Full(key string, i int, phase continuity.Phase) continuity.Record {
	r := continuity.Record{
		RequestKey: key, PayloadHash: "hash-" + key, Attempt: uint64(1000 + i), Phase: phase,
		IngressNode: fmt.Sprintf("ingress-%d@h:1", i), OwnerNode: "owner@h:2", ReplicaNode: "replica@h:3",
		ReplicationCount: 2, ReplicaStatus: continuity.ReplicaMirrored, Role: continuity.RoleStandby,
		Epoch: uint64(7 + i), Health: continuity.HealthHealthy, RoutedRemotely: true, FellBackLocally: true,
		RuntimeName: "api.Handler", Kind: continuity.KindRoute,
		SubmittedAt: base.Add(time.Duration(i) * time.Second),
		Response:    []byte(fmt.Sprintf("response of %s #%d", key, i)),
	}
	switch phase {
	case continuity.PhaseSubmitted:
		r.Result = continuity.ResultPending
	case continuity.PhaseCompleted:
		r.Result = continuity.ResultSucceeded
		r.ExecutionNode = "owner@h:2"
		r.CompletedAt = r.SubmittedAt.Add(1500 * time.Millisecond)
	case continuity.PhaseRejected:
		r.Result = continuity.ResultRejected
		r.ReplicaStatus = continuity.ReplicaRejected
		r.Health = continuity.HealthUnavailable
		r.Error = "owner_lost:owner@h:2"
		r.Refused = true
		r.CompletedAt = r.SubmittedAt.Add(time.Millisecond)
	}
	return r
}

func pending(key string, i int) continuity.Record { return Full(key, i, continuity.PhaseSubmitted) }
func done(key string, i int) continuity.Record    { return Full(key, i, continuity.PhaseCompleted) }

// ---- assertions ---------------------------------------------------------------------------

func put(t *testing.T, s continuity.Store, recs ...continuity.Record) {
	t.Helper()
	for _, r := range recs {
		if err := s.Put(r); err != nil {
			t.Fatalf("Put %s: %v", r.RequestKey, err)
		}
	}
}

func get(t *testing.T, s continuity.Store, want continuity.Record) {
	t.Helper()
	got, ok := s.Get(want.RequestKey)
	if !ok {
		t.Fatalf("Get %s: not found", want.RequestKey)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Get %s:\n got %+v\nwant %+v", want.RequestKey, got, want)
	}
}

func missing(t *testing.T, s continuity.Store, key string) {
	t.Helper()
	if got, ok := s.Get(key); ok || !reflect.DeepEqual(got, continuity.Record{}) {
		t.Fatalf("Get %s = %+v, %v; want the zero record, false", key, got, ok)
	}
}

func collect(seq func(func(continuity.Record) bool)) []continuity.Record {
	var out []continuity.Record
	for r := range seq {
		out = append(out, r)
	}
	return out
}

func keys(recs []continuity.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.RequestKey
	}
	return out
}

// holds checks the store's whole content: Len, Pending and List, in their
// documented orders, and Get of every record. wantPending is in key order,
// wantKept oldest first.
func holds(t *testing.T, s continuity.Store, wantPending, wantKept []continuity.Record) {
	t.Helper()
	if p, k := s.Len(); p != len(wantPending) || k != len(wantKept) {
		t.Fatalf("Len = %d pending, %d retained; want %d, %d (pending %q, retained %q)",
			p, k, len(wantPending), len(wantKept), keys(collect(s.Pending())), keys(collect(s.List()))[p:])
	}
	if got := collect(s.Pending()); !equal(got, wantPending) {
		t.Fatalf("Pending = %q, want %q", keys(got), keys(wantPending))
	}
	want := append(slices.Clone(wantPending), wantKept...)
	if got := collect(s.List()); !equal(got, want) {
		t.Fatalf("List = %q, want %q", keys(got), keys(want))
	}
	for _, r := range want {
		get(t, s, r)
	}
}

func equal(a, b []continuity.Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !reflect.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

// ---- the properties -------------------------------------------------------------------------

// Every field of a record comes back as it was put, pending or terminal,
// including a nil response apart from an empty one, enum values outside the
// known sets, zero times and the largest integers.
func testRoundTrip(t *testing.T, open Opener) {
	var cases []continuity.Record
	for i, phase := range []continuity.Phase{continuity.PhaseSubmitted, continuity.PhaseCompleted, continuity.PhaseRejected} {
		cases = append(cases, Full(fmt.Sprintf("full-%s", phase), i, phase))
		bare := continuity.Record{RequestKey: fmt.Sprintf("bare-%s", phase), Phase: phase}
		cases = append(cases, bare)
		empty := Full(fmt.Sprintf("empty-response-%s", phase), i, phase)
		empty.Response = []byte{}
		cases = append(cases, empty)
		odd := Full(fmt.Sprintf("odd-%s", phase), i, phase)
		odd.ReplicaStatus, odd.Health, odd.Role = "status-from-a-newer-node", "health-from-a-newer-node", "role-from-a-newer-node"
		odd.Attempt, odd.Epoch, odd.ReplicationCount = ^uint64(0), ^uint64(0)-1, 1<<40
		odd.Kind = continuity.KindWork
		odd.RoutedRemotely, odd.FellBackLocally, odd.Refused = false, false, false
		odd.Response = make([]byte, 100<<10)
		for j := range odd.Response {
			odd.Response[j] = byte(j * 7)
		}
		odd.RequestKey = "odd::" + strings.Repeat("é", 300) + string(phase)
		cases = append(cases, odd)
		typed := Full(fmt.Sprintf("typed-work-%s", phase), i, phase)
		typed.Kind, typed.Response = continuity.KindWork, nil
		typed.Input, typed.Output = []byte(`{"invoice":42}`), []byte{0, 0xff, '"'}
		cases = append(cases, typed)
		inputOnly := Full(fmt.Sprintf("typed-empty-input-%s", phase), i, phase)
		inputOnly.Input = []byte{} // kept apart from nil
		cases = append(cases, inputOnly)
	}
	s := open(t, continuity.Retention{})
	put(t, s, cases...)
	for _, want := range cases {
		get(t, s, want)
	}
}

func testGetMissing(t *testing.T, open Opener) {
	s := open(t, continuity.Retention{})
	missing(t, s, "never-stored")
	missing(t, s, "")
	holds(t, s, nil, nil)
	put(t, s, done("a", 1))
	missing(t, s, "b")
	missing(t, s, "a ")
}

// The store keeps its own copy: changing the caller's record after Put, or a
// record Get returned, changes nothing stored.
func testCopyOnPut(t *testing.T, open Opener) {
	s := open(t, continuity.Retention{})
	for _, rec := range []continuity.Record{pending("p", 1), done("t", 1)} {
		want := rec
		put(t, s, rec)
		rec.Attempt, rec.OwnerNode, rec.Response = 99, "changed", []byte("changed")
		get(t, s, want)
		got, _ := s.Get(want.RequestKey)
		got.Epoch, got.Error = 99, "changed"
		get(t, s, want)
	}
}

// A key holds one version: the last one put, pending or terminal, and moving
// between the two leaves no trace of the other.
func testOverwrite(t *testing.T, open Opener) {
	s := open(t, continuity.Retention{})
	put(t, s, pending("k", 1), pending("k", 2))
	holds(t, s, []continuity.Record{pending("k", 2)}, nil)
	put(t, s, done("k", 3))
	holds(t, s, nil, []continuity.Record{done("k", 3)})
	rejected := Full("k", 4, continuity.PhaseRejected)
	put(t, s, rejected)
	holds(t, s, nil, []continuity.Record{rejected})
	put(t, s, pending("k", 5)) // a newer attempt, pending again
	holds(t, s, []continuity.Record{pending("k", 5)}, nil)
	put(t, s, done("k", 6))
	holds(t, s, nil, []continuity.Record{done("k", 6)})

	// The same after a lookup that missed (what a submission does first).
	missing(t, s, "j")
	put(t, s, pending("j", 1))
	missing(t, s, "i")
	put(t, s, done("i", 1), pending("i", 2))
	missing(t, s, "h")
	put(t, s, pending("j", 2))
	holds(t, s, []continuity.Record{pending("i", 2), pending("j", 2)}, []continuity.Record{done("k", 6)})
}

// Pending records come in key order whatever order they were put in;
// retained ones in the order they became terminal, a key stored again
// moving to the newest place.
func testListOrder(t *testing.T, open Opener) {
	s := open(t, continuity.Retention{})
	put(t, s, pending("p3", 1), done("t2", 1), pending("p1", 1), done("t9", 1), pending("p2", 1), done("t1", 1))
	put(t, s, done("t2", 2)) // t2 again: now the newest
	put(t, s, pending("t9", 3), done("p3", 3))
	holds(t, s,
		[]continuity.Record{pending("p1", 1), pending("p2", 1), pending("t9", 3)},
		[]continuity.Record{done("t1", 1), done("t2", 2), done("p3", 3)})
}

// An iteration stops when the loop body breaks.
func testIterationStops(t *testing.T, open Opener) {
	s := open(t, continuity.Retention{})
	put(t, s, pending("a", 1), pending("b", 1), done("c", 1), done("d", 1))
	for name, seq := range map[string]func(func(continuity.Record) bool){"Pending": s.Pending(), "List": s.List()} {
		n := 0
		for range seq {
			n++
			if n == 1 {
				break
			}
		}
		if n != 1 {
			t.Fatalf("%s yielded %d records after the loop broke at the first", name, n)
		}
	}
	n := 0
	for r := range s.List() {
		n++
		if r.RequestKey == "c" {
			break
		}
	}
	if n != 3 {
		t.Fatalf("List yielded %d records up to c, want 3", n)
	}
}

// However many terminal records go through, no pending record is evicted,
// and pending records do not count against the budget.
func testPendingNeverEvicted(t *testing.T, open Opener) {
	s := open(t, continuity.Retention{Records: 3, Bytes: 1})
	var want []continuity.Record
	for i := range 50 {
		r := pending(fmt.Sprintf("pending-%02d", i), i)
		r.Response = make([]byte, 10<<10)
		want = append(want, r)
	}
	put(t, s, want...)
	for i := range 200 {
		put(t, s, done(fmt.Sprintf("done-%03d", i), i))
	}
	for _, r := range want {
		get(t, s, r)
	}
	if got := collect(s.Pending()); !equal(got, want) {
		t.Fatalf("Pending = %q, want every pending record", keys(got))
	}
	if p, k := s.Len(); p != 50 || k < 1 || k > 3 {
		t.Fatalf("Len = %d pending, %d retained; want 50 and 1 to 3", p, k)
	}
}

// Beyond the count budget the oldest terminal records go first; within it,
// distinct keys stored once are all kept.
func testCountBudget(t *testing.T, open Opener) {
	const bound = 10
	s := open(t, continuity.Retention{Records: bound})
	var all []continuity.Record
	for i := range 5 * bound {
		all = append(all, done(fmt.Sprintf("k-%03d", i), i))
		put(t, s, all[i])
		from := max(0, len(all)-bound)
		holds(t, s, nil, all[from:])
		for _, old := range all[:from] {
			missing(t, s, old.RequestKey)
		}
	}
	// A key evicted and stored again is new: it is the newest.
	again := done("k-000", 99)
	put(t, s, again)
	holds(t, s, nil, append(slices.Clone(all[len(all)-bound+1:]), again))
}

// Storing one key over and over neither evicts it nor lets the store keep
// more than the budget; the oldest of the others go first.
func testRepeatedUpdates(t *testing.T, open Opener) {
	const bound = 4
	s := open(t, continuity.Retention{Records: bound})
	put(t, s, done("a", 0), done("b", 0), done("c", 0))
	for i := range 1000 {
		last := done("hot", i)
		put(t, s, last)
		get(t, s, last)
		kept := keys(collect(s.List()))
		if len(kept) > bound || kept[len(kept)-1] != "hot" {
			t.Fatalf("after %d updates: retained %q", i+1, kept)
		}
		// What is left of a, b, c is a suffix of them: oldest evicted first.
		others := kept[:len(kept)-1]
		if !slices.Equal(others, []string{"a", "b", "c"}[3-len(others):]) {
			t.Fatalf("after %d updates: retained %q, want a suffix of [a b c] then hot", i+1, kept)
		}
	}
}

// Beyond the byte budget the oldest terminal records go first; the store
// never holds more than the budget plus the slack, nor evicts the newest.
func testByteBudget(t *testing.T, open Opener) {
	const budget = 256 << 10
	for _, size := range []int{100, 10 << 10, continuity.RetainSlack/2 + 1, continuity.RetainSlack} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			s := open(t, continuity.Retention{Records: 1 << 20, Bytes: budget})
			n := 4 * budget / size
			var order []string
			for i := range n {
				r := done(fmt.Sprintf("r-%05d", i), i)
				r.Response = make([]byte, size)
				put(t, s, r)
				order = append(order, r.RequestKey)
				if i%max(1, n/64) != 0 && i != n-1 {
					continue // reading everything back after every put is quadratic
				}
				held := collect(s.List())
				var bytes int
				for _, h := range held {
					bytes += len(h.Response)
				}
				if limit := budget + max(continuity.RetainSlack, size+1024); bytes > limit {
					t.Fatalf("after %d records of %d bytes: %d response bytes held, limit %d", i+1, size, bytes, limit)
				}
				if k := keys(held); !slices.Equal(k, order[len(order)-len(k):]) {
					t.Fatalf("after %d records: retained %q, not the newest in order", i+1, k)
				}
			}
			p, k := s.Len()
			if p != 0 || k == 0 || k >= n {
				t.Fatalf("Len = %d pending, %d retained of %d", p, k, n)
			}
			if k*size < budget/4 { // the budget is used, not only the slack
				t.Fatalf("%d records of %d bytes retained: under a quarter of the %d byte budget", k, size, budget)
			}
		})
	}
}

// A record larger than the whole budget is still kept while it is the
// newest.
func testLargerThanBudget(t *testing.T, open Opener) {
	s := open(t, continuity.Retention{Bytes: 1})
	for i := range 3 {
		r := done(fmt.Sprint("big-", i), i)
		r.Response = make([]byte, 3*continuity.RetainSlack)
		put(t, s, r)
		get(t, s, r)
		if _, k := s.Len(); k != 1 {
			t.Fatalf("after big record %d: %d retained, want 1", i, k)
		}
	}
}

// A random sequence of puts over a few keys, within budgets large enough
// that nothing is evicted, leaves exactly what a map and an ordered list
// would hold.
func testModel(t *testing.T, open Opener) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 15))
			s := open(t, continuity.Retention{Records: 1 << 20})
			model := map[string]continuity.Record{}
			var kept []string // terminal keys, oldest first
			for i := range 600 {
				key := fmt.Sprint("key-", rng.IntN(25))
				phase := []continuity.Phase{continuity.PhaseSubmitted, continuity.PhaseCompleted, continuity.PhaseRejected}[rng.IntN(3)]
				r := Full(key, i, phase)
				if rng.IntN(4) == 0 {
					r.Response = nil
				}
				put(t, s, r)
				model[key] = r
				kept = slices.DeleteFunc(kept, func(k string) bool { return k == key })
				if phase.Terminal() {
					kept = append(kept, key)
				}
				if i%50 != 49 {
					continue
				}
				var wantPending, wantKept []continuity.Record
				for _, k := range slices.Sorted(maps.Keys(model)) {
					if !model[k].Phase.Terminal() {
						wantPending = append(wantPending, model[k])
					}
				}
				for _, k := range kept {
					wantKept = append(wantKept, model[k])
				}
				holds(t, s, wantPending, wantKept)
			}
		})
	}
}

// Calls other than Sync come from several goroutines one at a time (as the
// registry makes them, under its lock), while Sync runs concurrently with
// them and with itself. Every record put before a Sync began is readable
// after it returns. Run it under -race.
func testConcurrency(t *testing.T, open Opener) {
	s := open(t, continuity.Retention{Records: 1000}) // nothing is evicted
	var (
		mu   sync.Mutex // the caller's serialization of every call but Sync
		wg   sync.WaitGroup
		stop = make(chan struct{})
	)
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.Sync(); err != nil {
					t.Errorf("Sync: %v", err)
					return
				}
			}
		})
	}
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for i := range 200 {
				key := fmt.Sprintf("w%d-%03d", w, i)
				mu.Lock()
				err := s.Put(pending(key, i))
				if err == nil {
					_, _ = s.Get(key)
					for range s.Pending() {
						break
					}
					err = s.Put(done(key, i))
				}
				s.Len()
				mu.Unlock()
				if err != nil {
					t.Errorf("Put %s: %v", key, err)
					return
				}
				if i%50 == 0 {
					if err := s.Sync(); err != nil {
						t.Errorf("Sync: %v", err)
						return
					}
					mu.Lock()
					_, ok := s.Get(key)
					mu.Unlock()
					if !ok {
						t.Errorf("%s missing after Sync", key)
						return
					}
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	if p, k := s.Len(); p != 0 || k != 800 {
		t.Fatalf("Len = %d pending, %d retained; want 0, 800", p, k)
	}
}
