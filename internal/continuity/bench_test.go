package continuity

import (
	"strconv"
	"testing"
)

// BenchmarkSubmitComplete is the registry's share of one count-1 route
// request on its owner, with the retention bound full: submit, complete,
// evict the oldest terminal record.
func BenchmarkSubmitComplete(b *testing.B) {
	r := NewRegistry(Options{Self: "a@h:1"})
	members := CanonicalMembership([]string{"a@h:1"})
	keys := make([]string, b.N+10000)
	for i := range keys {
		keys[i] = "http-route::api.One::0123456789abcdef-" + strconv.Itoa(i)
	}
	submit := func(key string) {
		dec, err := r.Submit(SubmitRequest{Key: key, Hash: "h", RuntimeName: "api.One", Kind: KindRoute,
			Count: 1, Ingress: "a@h:1", Placement: PlaceCanonical(key, members)})
		if err != nil || dec.Outcome != OutcomeCreated {
			b.Fatal(dec.Outcome, err)
		}
		if _, err := r.Complete(key, dec.Record.Attempt, "a@h:1", r.FenceGeneration()); err != nil {
			b.Fatal(err)
		}
	}
	for _, k := range keys[:10000] {
		submit(k)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, k := range keys[10000:] {
		submit(k)
	}
}

// BenchmarkMergeTerminal is the peer's share: one completed record arriving
// for a new key, with the retention bound full.
func BenchmarkMergeTerminal(b *testing.B) {
	r := NewRegistry(Options{Self: "b@h:1", Role: RoleStandby})
	recs := make([]Record, b.N+10000)
	for i := range recs {
		recs[i] = Record{RequestKey: "http-route::api.One::0123456789abcdef-" + strconv.Itoa(i), PayloadHash: "h",
			Attempt: uint64(i + 1), Phase: PhaseCompleted, Result: ResultSucceeded, IngressNode: "a@h:1", OwnerNode: "a@h:1",
			ReplicationCount: 1, ReplicaStatus: ReplicaUnassigned, Health: HealthLocalOnly, ExecutionNode: "a@h:1",
			FellBackLocally: true, RuntimeName: "api.One", Kind: KindRoute}
	}
	for _, rec := range recs[:10000] {
		if _, _, err := r.Merge(rec, "a@h:1"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, rec := range recs[10000:] {
		if _, _, err := r.Merge(rec, "a@h:1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRetainedPut is the retained log alone at its default bound: one
// new terminal record in, the oldest out.
func BenchmarkRetainedPut(b *testing.B) {
	const bound = 10000
	kept := newRetained(bound, DefaultRetainBytes)
	recs := make([]Record, 4*bound)
	for i := range recs {
		recs[i] = Record{RequestKey: "http-route::api.One::0123456789abcdef-" + strconv.Itoa(i), PayloadHash: "h",
			Attempt: uint64(i + 1), Phase: PhaseCompleted, Result: ResultSucceeded, IngressNode: "a@h:1", OwnerNode: "a@h:1",
			ReplicationCount: 1, ReplicaStatus: ReplicaUnassigned, Health: HealthLocalOnly, ExecutionNode: "a@h:1",
			FellBackLocally: true, RuntimeName: "api.One", Kind: KindRoute}
	}
	for i := range recs {
		kept.put(&recs[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rec := &recs[i%len(recs)]
		rec.Attempt++ // a new version of an evicted key
		kept.put(rec)
	}
}

// BenchmarkReplicaPrepareComplete is a replica's share of one count-2 route
// request owned by its peer, with the retention bound full: the prepare
// mirrors the record, then the completed version with its stored response
// replaces it.
func BenchmarkReplicaPrepareComplete(b *testing.B) {
	r := NewRegistry(Options{Self: "b@h:1", Role: RoleStandby})
	response := make([]byte, 160)
	one := func(i int) {
		rec := Record{RequestKey: "http-route::api.Two::0123456789abcdef-" + strconv.Itoa(i),
			PayloadHash: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			Attempt:     uint64(i + 1), Phase: PhaseSubmitted, Result: ResultPending, IngressNode: "a@h:1", OwnerNode: "a@h:1",
			ReplicaNode: "b@h:1", ReplicationCount: 2, ReplicaStatus: ReplicaPreparing, Health: HealthHealthy,
			RuntimeName: "api.Two", Kind: KindRoute}
		if _, err := r.MirrorPrepare(rec); err != nil {
			b.Fatal(err)
		}
		rec.Phase, rec.Result, rec.ReplicaStatus, rec.ExecutionNode, rec.Response =
			PhaseCompleted, ResultSucceeded, ReplicaMirrored, "a@h:1", response
		if m, err := r.MergeOutcome(rec, "a@h:1"); err != nil || !m.Changed {
			b.Fatal(m.Changed, err)
		}
	}
	for i := range 10000 {
		one(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		one(10000 + i)
	}
}

// BenchmarkHolds is the snapshot a durable store's compaction takes of the
// keys held, with the lock of the registry held: the default retention bound
// full and a few hundred requests pending.
func BenchmarkHolds(b *testing.B) {
	const bound, pending = DefaultRetainRecords, 256
	m := NewMemoryStore(Retention{})
	for i := range bound + pending {
		rec := Record{RequestKey: "http-route::api.One::0123456789abcdef-" + strconv.Itoa(i), PayloadHash: "h",
			Attempt: 1, Phase: PhaseCompleted, Result: ResultSucceeded, IngressNode: "a@h:1", OwnerNode: "a@h:1",
			ReplicationCount: 1, ReplicaStatus: ReplicaUnassigned, Health: HealthLocalOnly, ExecutionNode: "a@h:1",
			FellBackLocally: true, RuntimeName: "api.One", Kind: KindRoute}
		if i >= bound {
			rec.Phase, rec.Result = PhaseSubmitted, ResultPending
		}
		_ = m.Put(rec)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if !m.Holds()("http-route::api.One::0123456789abcdef-0") {
			b.Fatal("a retained key is not held")
		}
	}
}
