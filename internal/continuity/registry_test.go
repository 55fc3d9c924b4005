package continuity

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// ---- helpers -------------------------------------------------------------------

// fakeClock ticks one second per reading, in a non-UTC zone so tests see that
// the registry stores UTC. Safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("UTC+1", 3600))}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// Last is the most recent reading.
func (c *fakeClock) Last() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func newReg(self string, role Role, epoch uint64) (*Registry, *fakeClock) {
	clk := newClock()
	return NewRegistry(Options{Self: self, Role: role, Epoch: epoch, Diag: NewDiagnostics(1000), Now: clk.Now, RoutineRoutes: true}), clk
}

func submitOK(t *testing.T, r *Registry, req SubmitRequest) Decision {
	t.Helper()
	d, err := r.Submit(req)
	if err != nil {
		t.Fatalf("Submit(%+v): %v", req, err)
	}
	return d
}

// ok fails the test on a non-nil error: ok(t)(r.Prepared(k, a)).
func ok(t *testing.T) func(Record, error) Record {
	return func(rec Record, err error) Record {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return rec
	}
}

// wantReason checks that err carries reason (through wrapping).
func wantReason(t *testing.T, err error, reason Reason) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *Error with reason %s", err, err, reason)
	}
	if e.Reason != reason {
		t.Fatalf("reason = %q, want %q", e.Reason, reason)
	}
	if ReasonOf(err) != string(reason) {
		t.Fatalf("ReasonOf = %q, want %q", ReasonOf(err), reason)
	}
}

// mkRecord is a valid pending record of key owned by a, mirrored on b, at
// attempt 1 and epoch 0.
func mkRecord(key string, mods ...func(*Record)) Record {
	rec := Record{
		RequestKey: key, PayloadHash: "h-" + key, Attempt: 1,
		Phase: PhaseSubmitted, Result: ResultPending,
		IngressNode: "a", OwnerNode: "a", ReplicaNode: "b", ReplicationCount: 2,
		ReplicaStatus: ReplicaMirrored, Role: RolePrimary, Epoch: 0, Health: HealthHealthy,
		FellBackLocally: true, RuntimeName: "Work.run",
		SubmittedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for _, m := range mods {
		m(&rec)
	}
	return rec
}

func completed(node string) func(*Record) {
	return func(r *Record) {
		r.Phase, r.Result, r.ExecutionNode = PhaseCompleted, ResultSucceeded, node
		r.CompletedAt = time.Date(2025, 1, 1, 0, 1, 0, 0, time.UTC)
	}
}

func rejected(reason string) func(*Record) {
	return func(r *Record) {
		r.Phase, r.Result, r.Error = PhaseRejected, ResultRejected, reason
		r.ReplicaStatus, r.Health = ReplicaRejected, HealthUnavailable
		r.CompletedAt = time.Date(2025, 1, 1, 0, 1, 0, 0, time.UTC)
	}
}

// refused ends the record as refused at submission with reason.
func refused(reason string) func(*Record) {
	return func(r *Record) {
		rejected(reason)(r)
		r.Refused = true
	}
}

func at(epoch, attempt uint64) func(*Record) {
	return func(r *Record) { r.Epoch, r.Attempt = epoch, attempt }
}

func status(s ReplicaStatus, h Health) func(*Record) {
	return func(r *Record) { r.ReplicaStatus, r.Health = s, h }
}

func entries(r *Registry) []Entry { return r.Diagnostics().Snapshot().Entries }

func transitions(r *Registry) []string {
	var out []string
	for _, e := range entries(r) {
		out = append(out, e.Transition)
	}
	return out
}

func lastEntry(t *testing.T, r *Registry) Entry {
	t.Helper()
	es := entries(r)
	if len(es) == 0 {
		t.Fatal("no diagnostic entries")
	}
	return es[len(es)-1]
}

func metaValue(e Entry, key string) (string, bool) {
	for _, kv := range e.Metadata {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

func wantMeta(t *testing.T, e Entry, pairs ...string) {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		got, ok := metaValue(e, pairs[i])
		if !ok || got != pairs[i+1] {
			t.Fatalf("%s entry metadata %s = %q (present %v), want %q; metadata %v", e.Transition, pairs[i], got, ok, pairs[i+1], e.Metadata)
		}
	}
}

func mustGet(t *testing.T, r *Registry, key string) Record {
	t.Helper()
	rec, ok := r.Get(key)
	if !ok {
		t.Fatalf("Get(%q): not found", key)
	}
	return rec
}

// mirrored submits key on r (self "a", owner a, replica b, count 2) and acks
// the prepare.
func mirrored(t *testing.T, r *Registry, key string) Record {
	t.Helper()
	replica := "b"
	if r.Self() == replica {
		replica = "c"
	}
	d := submitOK(t, r, SubmitRequest{Key: key, Hash: "h-" + key, Count: 2, Ingress: r.Self(), RuntimeName: "Work.run",
		Placement: Placement{Owner: r.Self(), Replica: replica}})
	return ok(t)(r.Prepared(key, d.Record.Attempt))
}

// ---- record helpers ---------------------------------------------------------

func TestAttemptFormatting(t *testing.T) {
	for _, n := range []uint64{0, 1, 9, 10, 12345, 1<<64 - 1} {
		s := FormatAttempt(n)
		if s != "attempt-"+strconv.FormatUint(n, 10) {
			t.Fatalf("FormatAttempt(%d) = %q", n, s)
		}
		if got := (Record{Attempt: n}).AttemptID(); got != s {
			t.Fatalf("AttemptID = %q, want %q", got, s)
		}
	}
}

func TestUnsupportedReplicationCountReason(t *testing.T) {
	for n, want := range map[uint64]string{0: "unsupported_replication_count:0", 3: "unsupported_replication_count:3",
		10: "unsupported_replication_count:10", 1<<64 - 1: "unsupported_replication_count:18446744073709551615"} {
		if got := string(UnsupportedReplicationCount(n)); got != want {
			t.Fatalf("UnsupportedReplicationCount(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestReasonOf(t *testing.T) {
	if ReasonOf(nil) != "" {
		t.Fatal("ReasonOf(nil) not empty")
	}
	if got := ReasonOf(errors.New("plain")); got != "plain" {
		t.Fatalf("ReasonOf(plain) = %q", got)
	}
	if got := ReasonOf(reasonError(ReasonStaleEpoch)); got != "stale_epoch_rejected" {
		t.Fatalf("ReasonOf = %q", got)
	}
	wrapped := fmt.Errorf("merge: %w", reasonError(ReasonRequestKeyConflict))
	var e *Error
	if !errors.As(wrapped, &e) || e.Reason != ReasonRequestKeyConflict {
		t.Fatalf("errors.As through wrapping failed: %v", wrapped)
	}
}

func TestPhaseAndKind(t *testing.T) {
	for p, want := range map[Phase]bool{PhaseSubmitted: false, PhaseCompleted: true, PhaseRejected: true, "": false} {
		if p.Terminal() != want {
			t.Fatalf("%q.Terminal() = %v", p, !want)
		}
		if (Record{Phase: p}).Pending() != (p == PhaseSubmitted) {
			t.Fatalf("Pending wrong for %q", p)
		}
	}
}

func TestRecordValidate(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Record)
		reason Reason // "" with wantErr: a phase error
		ok     bool
	}{
		{"valid pending", func(*Record) {}, "", true},
		{"valid completed", completed("a"), "", true},
		{"valid rejected", rejected("x"), "", true},
		{"valid no replica", func(r *Record) { r.ReplicaNode = "" }, "", true},
		{"missing key", func(r *Record) { r.RequestKey = "" }, ReasonRequestKeyMissing, false},
		{"missing hash", func(r *Record) { r.PayloadHash = "" }, ReasonPayloadHashMissing, false},
		{"missing owner", func(r *Record) { r.OwnerNode = "" }, ReasonOwnerNodeMissing, false},
		{"count 0", func(r *Record) { r.ReplicationCount = 0 }, ReasonInvalidReplicationCount, false},
		{"replica is owner", func(r *Record) { r.ReplicaNode = "a" }, ReasonReplicaMatchesOwner, false},
		{"submitted succeeded", func(r *Record) { r.Result = ResultSucceeded }, "", false},
		{"completed pending", func(r *Record) { r.Phase = PhaseCompleted }, "", false},
		{"rejected succeeded", func(r *Record) { r.Phase, r.Result = PhaseRejected, ResultSucceeded }, "", false},
		{"unknown phase", func(r *Record) { r.Phase = "running" }, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mkRecord("k", tt.mod).Validate()
			switch {
			case tt.ok && err != nil:
				t.Fatalf("Validate: %v", err)
			case !tt.ok && err == nil:
				t.Fatal("Validate succeeded")
			case tt.reason != "":
				wantReason(t, err, tt.reason)
			}
		})
	}
}

// ---- Submit -------------------------------------------------------------------

func TestSubmitCreated(t *testing.T) {
	tests := []struct {
		name        string
		role        Role
		epoch       uint64
		req         SubmitRequest
		wantReplica string
		wantStatus  ReplicaStatus
		wantRemote  bool
	}{
		{"count 1 owned locally", RolePrimary, 0,
			SubmitRequest{Key: "k", Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a", Replica: "b"}},
			"", ReplicaUnassigned, false},
		{"count 1 owned remotely", RolePrimary, 0,
			SubmitRequest{Key: "k", Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "b", Replica: "a"}},
			"", ReplicaUnassigned, true},
		{"count 1 single member", RolePrimary, 0,
			SubmitRequest{Key: "k", Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}},
			"", ReplicaUnassigned, false},
		{"count 2 with replica", RolePrimary, 0,
			SubmitRequest{Key: "k", Hash: "h", Count: 2, Ingress: "a", Placement: Placement{Owner: "a", Replica: "b"}},
			"b", ReplicaPreparing, false},
		{"count 2 owned remotely", RolePrimary, 0,
			SubmitRequest{Key: "k", Hash: "h", Count: 2, Ingress: "a", Placement: Placement{Owner: "b", Replica: "a"}},
			"a", ReplicaPreparing, true},
		{"relaxed count 2 alone", RolePrimary, 0,
			SubmitRequest{Key: "startup::W", Hash: "startup-payload::W", Count: 2, Ingress: "a", Relaxed: true, Placement: Placement{Owner: "a"}},
			"", ReplicaUnassigned, false},
		{"relaxed count 2 with replica still prepares", RolePrimary, 0,
			SubmitRequest{Key: "k", Hash: "h", Count: 2, Ingress: "a", Relaxed: true, Placement: Placement{Owner: "a", Replica: "b"}},
			"b", ReplicaPreparing, false},
		{"standby ingress at epoch 3", RoleStandby, 3,
			SubmitRequest{Key: "k", Hash: "h", Count: 2, Ingress: "a", Kind: KindRoute, Placement: Placement{Owner: "b", Replica: "a"}},
			"a", ReplicaPreparing, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, clk := newReg("a", tt.role, tt.epoch)
			r.RaiseWatermark(41)
			tt.req.RuntimeName = "Work.add"
			d := submitOK(t, r, tt.req)
			if d.Outcome != OutcomeCreated {
				t.Fatalf("Outcome = %s, want created (record %+v)", d.Outcome, d.Record)
			}
			rec := d.Record
			want := Record{
				RequestKey: tt.req.Key, PayloadHash: tt.req.Hash, Attempt: 41,
				Phase: PhaseSubmitted, Result: ResultPending,
				IngressNode: "a", OwnerNode: tt.req.Placement.Owner, ReplicaNode: tt.wantReplica,
				ReplicationCount: tt.req.Count, ReplicaStatus: tt.wantStatus,
				Role: tt.role, Epoch: tt.epoch, Health: HealthLocalOnly,
				RoutedRemotely: tt.wantRemote, FellBackLocally: !tt.wantRemote,
				RuntimeName: "Work.add", Kind: tt.req.Kind,
				SubmittedAt: rec.SubmittedAt,
			}
			if !reflect.DeepEqual(rec, want) {
				t.Fatalf("record =\n %+v\nwant\n %+v", rec, want)
			}
			if rec.SubmittedAt.IsZero() || rec.SubmittedAt.Location() != time.UTC || rec.SubmittedAt.After(clk.Last()) {
				t.Fatalf("SubmittedAt = %v, want a UTC clock reading", rec.SubmittedAt)
			}
			if err := rec.Validate(); err != nil {
				t.Fatalf("created record invalid: %v", err)
			}
			if got := mustGet(t, r, tt.req.Key); !reflect.DeepEqual(got, rec) {
				t.Fatalf("stored %+v, returned %+v", got, rec)
			}
			if r.Watermark() != 42 || r.Len() != 1 {
				t.Fatalf("watermark %d len %d, want 42 and 1", r.Watermark(), r.Len())
			}
			if got := transitions(r); !slices.Equal(got, []string{TransitionSubmit}) {
				t.Fatalf("transitions = %q", got)
			}
			e := lastEntry(t, r)
			wantMeta(t, e, "required_replicas", strconv.FormatUint(tt.req.Count-1, 10), "phase", "submitted",
				"result", "pending", "replication_count", strconv.FormatUint(tt.req.Count, 10), "declared_handler_runtime_name", "Work.add")
			if e.Metadata[0].Key != "required_replicas" {
				t.Fatalf("required_replicas is not the first metadata pair: %v", e.Metadata)
			}
			if e.RequestKey != tt.req.Key || e.AttemptID != "attempt-41" || e.ClusterRole != tt.role || e.PromotionEpoch != tt.epoch {
				t.Fatalf("submit entry = %+v", e)
			}
		})
	}
}

func TestSubmitRejectedDurably(t *testing.T) {
	tests := []struct {
		name   string
		req    SubmitRequest
		reason string
	}{
		{"count 3", SubmitRequest{Key: "k", Hash: "h", Count: 3, Ingress: "a", Placement: Placement{Owner: "a", Replica: "b"}},
			"unsupported_replication_count:3"},
		{"count 7", SubmitRequest{Key: "k", Hash: "h", Count: 7, Ingress: "a", Placement: Placement{Owner: "b", Replica: "a"}},
			"unsupported_replication_count:7"},
		{"count 3 relaxed alone", SubmitRequest{Key: "k", Hash: "h", Count: 3, Ingress: "a", Relaxed: true, Placement: Placement{Owner: "a"}},
			"unsupported_replication_count:3"},
		{"count 2 without replica", SubmitRequest{Key: "k", Hash: "h", Count: 2, Ingress: "a", Placement: Placement{Owner: "a"}},
			string(ReasonReplicaRequiredUnavailable)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newReg("a", RolePrimary, 2)
			d := submitOK(t, r, tt.req)
			if d.Outcome != OutcomeRejected {
				t.Fatalf("Outcome = %s, want rejected", d.Outcome)
			}
			rec := d.Record
			if rec.Phase != PhaseRejected || rec.Result != ResultRejected || rec.ReplicaStatus != ReplicaRejected ||
				rec.Health != HealthUnavailable || rec.Error != tt.reason || rec.Attempt != 0 || rec.Epoch != 2 ||
				rec.ExecutionNode != "" || rec.ReplicationCount != tt.req.Count {
				t.Fatalf("record = %+v", rec)
			}
			if rec.CompletedAt.IsZero() || rec.CompletedAt.Location() != time.UTC || rec.CompletedAt.Before(rec.SubmittedAt) {
				t.Fatalf("CompletedAt = %v (submitted %v)", rec.CompletedAt, rec.SubmittedAt)
			}
			if err := rec.Validate(); err != nil {
				t.Fatalf("rejected record invalid: %v", err)
			}
			// Durable: stored, consumed an attempt, replayed as a duplicate.
			if got := mustGet(t, r, "k"); !reflect.DeepEqual(got, rec) {
				t.Fatalf("stored %+v", got)
			}
			if r.Watermark() != 1 || r.Health() != HealthUnavailable {
				t.Fatalf("watermark %d health %s", r.Watermark(), r.Health())
			}
			if got := transitions(r); !slices.Equal(got, []string{TransitionSubmit, TransitionRejected}) {
				t.Fatalf("transitions = %q", got)
			}
			if e := lastEntry(t, r); e.Reason != tt.reason || e.ReplicaStatus != ReplicaRejected {
				t.Fatalf("rejected entry = %+v", e)
			}
			again := submitOK(t, r, tt.req)
			if again.Outcome != OutcomeDuplicate || !reflect.DeepEqual(again.Record, rec) {
				t.Fatalf("resubmission = %s %+v, want duplicate of the rejection", again.Outcome, again.Record)
			}
			if r.Watermark() != 1 {
				t.Fatalf("duplicate consumed an attempt: watermark %d", r.Watermark())
			}
		})
	}
}

func TestSubmitValidation(t *testing.T) {
	good := SubmitRequest{Key: "k", Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}}
	tests := []struct {
		name   string
		mod    func(*SubmitRequest)
		reason Reason
	}{
		{"missing key", func(q *SubmitRequest) { q.Key = "" }, ReasonRequestKeyMissing},
		{"missing hash", func(q *SubmitRequest) { q.Hash = "" }, ReasonPayloadHashMissing},
		{"missing owner", func(q *SubmitRequest) { q.Placement = Placement{} }, ReasonOwnerNodeMissing},
		{"missing owner with replica", func(q *SubmitRequest) { q.Placement = Placement{Replica: "b"} }, ReasonOwnerNodeMissing},
		{"count 0", func(q *SubmitRequest) { q.Count = 0 }, ReasonInvalidReplicationCount},
		{"key reported first", func(q *SubmitRequest) { *q = SubmitRequest{} }, ReasonRequestKeyMissing},
		{"hash before owner", func(q *SubmitRequest) { q.Hash, q.Placement, q.Count = "", Placement{}, 0 }, ReasonPayloadHashMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newReg("a", RolePrimary, 0)
			req := good
			tt.mod(&req)
			d, err := r.Submit(req)
			wantReason(t, err, tt.reason)
			if d.Outcome != "" || d.Record.RequestKey != "" {
				t.Fatalf("decision = %+v, want zero", d)
			}
			if r.Len() != 0 || r.Watermark() != 0 || len(entries(r)) != 0 {
				t.Fatalf("validation failure left state: len %d watermark %d entries %d", r.Len(), r.Watermark(), len(entries(r)))
			}
		})
	}
}

func TestSubmitDuplicate(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, r *Registry) // leaves key "k" stored
	}{
		{"pending", func(t *testing.T, r *Registry) { mirrored(t, r, "k") }},
		{"completed", func(t *testing.T, r *Registry) {
			rec := mirrored(t, r, "k")
			ok(t)(r.Complete("k", rec.Attempt, "a", r.FenceGeneration()))
		}},
		{"rejected", func(t *testing.T, r *Registry) {
			rec := mirrored(t, r, "k")
			ok(t)(r.Reject("k", rec.Attempt, "handler_error: boom"))
		}},
		{"owner lost", func(t *testing.T, r *Registry) {
			d := submitOK(t, r, SubmitRequest{Key: "k", Hash: "h-k", Count: 2, Ingress: "a", Placement: Placement{Owner: "b", Replica: "a"}})
			ok(t)(r.Prepared("k", d.Record.Attempt))
			r.NodeLost("b")
		}},
		{"merged from peer", func(t *testing.T, r *Registry) {
			if _, _, err := r.Merge(mkRecord("k", at(0, 17), completed("b")), "b"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newReg("a", RolePrimary, 0)
			tt.setup(t, r)
			stored := mustGet(t, r, "k")
			wm, n := r.Watermark(), len(entries(r))
			// Everything but the key, hash, kind and runtime name may
			// differ on a retry.
			d := submitOK(t, r, SubmitRequest{Key: "k", Hash: "h-k", Count: 1, Ingress: "z", RuntimeName: stored.RuntimeName,
				Kind: stored.Kind, Placement: Placement{Owner: "z"}})
			if d.Outcome != OutcomeDuplicate || !reflect.DeepEqual(d.Record, stored) {
				t.Fatalf("Submit = %s %+v, want duplicate of %+v", d.Outcome, d.Record, stored)
			}
			if got := mustGet(t, r, "k"); !reflect.DeepEqual(got, stored) {
				t.Fatalf("duplicate changed the record: %+v", got)
			}
			if r.Watermark() != wm || r.Len() != 1 {
				t.Fatalf("duplicate allocated an attempt: watermark %d -> %d", wm, r.Watermark())
			}
			es := entries(r)
			if len(es) != n+1 || es[n].Transition != TransitionDuplicate || es[n].AttemptID != stored.AttemptID() {
				t.Fatalf("want one duplicate entry for %s, got %+v", stored.AttemptID(), es[n:])
			}
		})
	}
}

func TestSubmitConflict(t *testing.T) {
	for _, terminal := range []bool{false, true} {
		t.Run(fmt.Sprintf("terminal=%v", terminal), func(t *testing.T) {
			r, _ := newReg("a", RolePrimary, 0)
			rec := mirrored(t, r, "k")
			if terminal {
				ok(t)(r.Complete("k", rec.Attempt, "a", 0))
			}
			stored := mustGet(t, r, "k")
			wm := r.Watermark()
			d := submitOK(t, r, SubmitRequest{Key: "k", Hash: "different", Count: 2, Ingress: "a", Placement: Placement{Owner: "a", Replica: "b"}})
			if d.Outcome != OutcomeConflict || !reflect.DeepEqual(d.Record, stored) {
				t.Fatalf("Submit = %s %+v, want conflict with the stored record", d.Outcome, d.Record)
			}
			if got := mustGet(t, r, "k"); !reflect.DeepEqual(got, stored) || got.PayloadHash != "h-k" {
				t.Fatalf("conflict changed the record: %+v", got)
			}
			if r.Watermark() != wm {
				t.Fatal("conflict allocated an attempt")
			}
			if e := lastEntry(t, r); e.Transition != TransitionConflict || e.Reason != string(ReasonRequestKeyConflict) {
				t.Fatalf("entry = %+v", e)
			}
		})
	}
}

// A key known for one kind or declared handler is never a duplicate of a
// submission of another: the same key and hash from another key space is a
// conflict, and the stored record is untouched.
func TestSubmitOtherKeySpaceConflicts(t *testing.T) {
	r, _ := newReg("a", RolePrimary, 0)
	d := submitOK(t, r, SubmitRequest{Key: "k", Hash: "h", Count: 1, Ingress: "a", RuntimeName: "work.Add", Kind: KindWork,
		Placement: Placement{Owner: "a"}})
	ok(t)(r.Complete("k", d.Record.Attempt, "a", 0))
	stored := mustGet(t, r, "k")
	for _, other := range []struct {
		kind Kind
		name string
	}{{KindRoute, "work.Add"}, {KindWork, "work.Other"}, {KindRoute, "api.List"}} {
		d := submitOK(t, r, SubmitRequest{Key: "k", Hash: "h", Count: 1, Ingress: "a", RuntimeName: other.name, Kind: other.kind,
			Placement: Placement{Owner: "a"}})
		if d.Outcome != OutcomeConflict {
			t.Fatalf("kind %d %s: Submit = %s, want conflict", other.kind, other.name, d.Outcome)
		}
		if e := lastEntry(t, r); e.Transition != TransitionConflict || e.Reason != string(ReasonRequestKeyConflict) {
			t.Fatalf("entry = %+v", e)
		}
	}
	if got := mustGet(t, r, "k"); !reflect.DeepEqual(got, stored) {
		t.Fatalf("refused submissions changed the record: %+v", got)
	}
	if d := submitOK(t, r, SubmitRequest{Key: "k", Hash: "h", Count: 1, Ingress: "a", RuntimeName: "work.Add", Kind: KindWork,
		Placement: Placement{Owner: "a"}}); d.Outcome != OutcomeDuplicate {
		t.Fatalf("same key space: Submit = %s, want duplicate", d.Outcome)
	}
}

func TestReservedKey(t *testing.T) {
	for key, want := range map[string]bool{
		"http-route::api.List::x": true, "startup::work.Add": true, "request::k": true,
		"order-42": false, "": false, "http-route:": false, "Startup::work.Add": false, "x-startup::": false,
	} {
		if got := ReservedKey(key); got != want {
			t.Errorf("ReservedKey(%q) = %v, want %v", key, got, want)
		}
	}
}

// ---- attempts and watermark -----------------------------------------------------

func TestAttemptNumbering(t *testing.T) {
	r, _ := newReg("a", RolePrimary, 0)
	sub := func(key string) uint64 {
		t.Helper()
		return submitOK(t, r, SubmitRequest{Key: key, Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}}).Record.Attempt
	}
	steps := []struct {
		name string
		do   func()
		want uint64 // watermark after
	}{
		{"first submit is attempt 0", func() {
			if a := sub("k0"); a != 0 {
				t.Fatalf("attempt %d", a)
			}
		}, 1},
		{"counter is shared by keys", func() {
			if a := sub("k1"); a != 1 {
				t.Fatalf("attempt %d", a)
			}
		}, 2},
		{"duplicate allocates nothing", func() { sub("k1") }, 2},
		{"rejection consumes one", func() {
			submitOK(t, r, SubmitRequest{Key: "k2", Hash: "h", Count: 3, Ingress: "a", Placement: Placement{Owner: "a"}})
		}, 3},
		{"raise", func() { r.RaiseWatermark(10) }, 10},
		{"raise never lowers", func() { r.RaiseWatermark(4) }, 10},
		{"raise to same", func() { r.RaiseWatermark(10) }, 10},
		{"submit after raise", func() {
			if a := sub("k3"); a != 10 {
				t.Fatalf("attempt %d", a)
			}
		}, 11},
		{"merge raises above incoming attempt", func() {
			if _, _, err := r.Merge(mkRecord("m1", at(0, 20)), "b"); err != nil {
				t.Fatal(err)
			}
		}, 21},
		{"merge of a lower attempt does not lower", func() {
			if _, _, err := r.Merge(mkRecord("m2", at(0, 3)), "b"); err != nil {
				t.Fatal(err)
			}
		}, 21},
		{"losing merge still raises", func() {
			// An older-epoch version loses, but its attempt number is burnt.
			if _, _, err := r.Merge(mkRecord("m1", at(9, 21)), "b"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := r.Merge(mkRecord("m1", at(0, 30)), "b"); err != nil {
				t.Fatal(err)
			}
		}, 31},
		{"conflicting merge still raises", func() {
			_, _, err := r.Merge(mkRecord("m1", at(9, 40), func(x *Record) { x.PayloadHash = "other" }), "b")
			wantReason(t, err, ReasonRequestKeyConflict)
		}, 41},
		{"invalid merge does not raise", func() {
			_, _, err := r.Merge(mkRecord("m3", at(0, 90), func(x *Record) { x.OwnerNode = "" }), "b")
			wantReason(t, err, ReasonOwnerNodeMissing)
		}, 41},
		{"next submit follows the merged watermark", func() {
			if a := sub("k4"); a != 41 {
				t.Fatalf("attempt %d", a)
			}
		}, 42},
	}
	for _, s := range steps {
		s.do()
		if got := r.Watermark(); got != s.want {
			t.Fatalf("%s: watermark = %d, want %d", s.name, got, s.want)
		}
	}
}

func TestMirrorPrepareRaisesWatermark(t *testing.T) {
	r, _ := newReg("b", RoleStandby, 0)
	ok(t)(r.MirrorPrepare(mkRecord("k", at(0, 55))))
	if r.Watermark() != 56 {
		t.Fatalf("watermark = %d, want 56", r.Watermark())
	}
	r.RaiseWatermark(100)
	ok(t)(r.MirrorPrepare(mkRecord("k2", at(0, 60))))
	if r.Watermark() != 100 {
		t.Fatalf("watermark = %d, want 100", r.Watermark())
	}
}

// ---- Prepared ----------------------------------------------------------------------

func TestPrepared(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, r *Registry) Record // returns the record before Prepared
		apply bool                                   // Prepared mirrors it
	}{
		{"preparing becomes mirrored", func(t *testing.T, r *Registry) Record {
			return submitOK(t, r, SubmitRequest{Key: "k", Hash: "h", Count: 2, Ingress: "a", Placement: Placement{Owner: "a", Replica: "b"}}).Record
		}, true},
		{"remote owner preparing on local replica", func(t *testing.T, r *Registry) Record {
			return submitOK(t, r, SubmitRequest{Key: "k", Hash: "h", Count: 2, Ingress: "a", Placement: Placement{Owner: "b", Replica: "a"}}).Record
		}, true},
		{"already mirrored is re-acked", func(t *testing.T, r *Registry) Record { return mirrored(t, r, "k") }, true},
		{"completed record with replica", func(t *testing.T, r *Registry) Record {
			d := submitOK(t, r, SubmitRequest{Key: "k", Hash: "h", Count: 2, Ingress: "a", Placement: Placement{Owner: "a", Replica: "b"}})
			return ok(t)(r.Complete("k", d.Record.Attempt, "a", 0))
		}, true},
		{"no replica (count 1)", func(t *testing.T, r *Registry) Record {
			return submitOK(t, r, SubmitRequest{Key: "k", Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a", Replica: "b"}}).Record
		}, false},
		{"no replica (relaxed)", func(t *testing.T, r *Registry) Record {
			return submitOK(t, r, SubmitRequest{Key: "k", Hash: "h", Count: 2, Relaxed: true, Ingress: "a", Placement: Placement{Owner: "a"}}).Record
		}, false},
		{"rejected", func(t *testing.T, r *Registry) Record {
			d := submitOK(t, r, SubmitRequest{Key: "k", Hash: "h", Count: 2, Ingress: "a", Placement: Placement{Owner: "a", Replica: "b"}})
			return ok(t)(r.Reject("k", d.Record.Attempt, string(ReasonReplicaPrepareTimeout)))
		}, false},
		{"degraded continuing", func(t *testing.T, r *Registry) Record {
			mirrored(t, r, "k")
			r.NodeLost("b")
			return mustGet(t, r, "k")
		}, false},
		{"owner lost", func(t *testing.T, r *Registry) Record {
			d := submitOK(t, r, SubmitRequest{Key: "k", Hash: "h", Count: 2, Ingress: "a", Placement: Placement{Owner: "b", Replica: "a"}})
			ok(t)(r.Prepared("k", d.Record.Attempt))
			r.NodeLost("b")
			return mustGet(t, r, "k")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newReg("a", RolePrimary, 0)
			before := tt.setup(t, r)
			n := len(entries(r))
			got, err := r.Prepared("k", before.Attempt)
			if err != nil {
				t.Fatalf("Prepared: %v", err)
			}
			if !tt.apply {
				if !reflect.DeepEqual(got, before) || !reflect.DeepEqual(mustGet(t, r, "k"), before) {
					t.Fatalf("Prepared changed a record it must leave alone:\n %+v\nwas\n %+v", got, before)
				}
				if len(entries(r)) != n {
					t.Fatalf("no-op Prepared emitted %q", transitions(r)[n:])
				}
				return
			}
			want := before
			want.ReplicaStatus, want.Health, want.Error = ReplicaMirrored, HealthHealthy, ""
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(mustGet(t, r, "k"), want) {
				t.Fatalf("Prepared =\n %+v\nwant\n %+v", got, want)
			}
			if e := lastEntry(t, r); e.Transition != TransitionReplicaAck || e.ReplicaStatus != ReplicaMirrored || e.ReplicationHealth != HealthHealthy {
				t.Fatalf("entry = %+v", e)
			}
		})
	}
}

func TestPreparedErrors(t *testing.T) {
	r, _ := newReg("a", RolePrimary, 0)
	rec := submitOK(t, r, SubmitRequest{Key: "k", Hash: "h", Count: 2, Ingress: "a", Placement: Placement{Owner: "a", Replica: "b"}}).Record
	_, err := r.Prepared("missing", 0)
	wantReason(t, err, ReasonRequestKeyNotFound)
	_, err = r.Prepared("k", rec.Attempt+1)
	wantReason(t, err, ReasonAttemptMismatch)
	if got := mustGet(t, r, "k"); got.ReplicaStatus != ReplicaPreparing {
		t.Fatalf("failed Prepared changed status to %s", got.ReplicaStatus)
	}
}

// ---- MirrorPrepare -------------------------------------------------------------------

func TestMirrorPrepare(t *testing.T) {
	incoming := mkRecord("k", at(1, 5), status(ReplicaPreparing, HealthLocalOnly), func(x *Record) { x.Error = "" })
	tests := []struct {
		name   string
		self   string
		setup  []Record // stored first via Merge
		in     Record
		reason Reason // "" = accepted
	}{
		{"new key stored mirrored", "b", nil, incoming, ""},
		{"target mismatch", "c", nil, incoming, ReasonReplicaTargetMismatch},
		{"target mismatch on owner", "a", nil, incoming, ReasonReplicaTargetMismatch},
		{"no replica is a mismatch", "b", nil, mkRecord("k", func(x *Record) { x.ReplicaNode = "" }), ReasonReplicaTargetMismatch},
		{"invalid record", "b", nil, mkRecord("k", func(x *Record) { x.PayloadHash = "" }), ReasonPayloadHashMissing},
		{"conflicting hash", "b", []Record{mkRecord("k", at(1, 5), func(x *Record) { x.PayloadHash = "other" })}, incoming, ReasonRequestKeyConflict},
		{"older attempt refused", "b", []Record{mkRecord("k", at(1, 6))}, incoming, ReasonAttemptMismatch},
		{"older epoch refused", "b", []Record{mkRecord("k", at(2, 1))}, incoming, ReasonAttemptMismatch},
		{"same attempt re-prepare accepted", "b", []Record{mkRecord("k", at(1, 5), status(ReplicaPreparing, HealthLocalOnly))}, incoming, ""},
		{"newer attempt accepted", "b", []Record{mkRecord("k", at(1, 2))}, incoming, ""},
		{"newer epoch accepted", "b", []Record{mkRecord("k", at(0, 4))}, incoming, ""},
		// MirrorPrepare compares attempts on their own, before epochs: a
		// higher-epoch prepare with a lower attempt number is taken, as Merge
		// would take it: the epoch orders attempts before their numbers do.
		{"newer epoch lower attempt accepted", "b", []Record{mkRecord("k", at(0, 9))}, incoming, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newReg(tt.self, RoleStandby, 0)
			for _, s := range tt.setup {
				if _, _, err := r.Merge(s, "a"); err != nil {
					t.Fatal(err)
				}
			}
			before := r.Records()
			wm := r.Watermark()
			n := len(entries(r))
			got, err := r.MirrorPrepare(tt.in)
			if tt.reason != "" {
				wantReason(t, err, tt.reason)
				if !reflect.DeepEqual(r.Records(), before) || r.Watermark() != wm || len(entries(r)) != n {
					t.Fatal("refused prepare changed state")
				}
				return
			}
			if err != nil {
				t.Fatalf("MirrorPrepare: %v", err)
			}
			want := tt.in
			want.ReplicaStatus, want.Health = ReplicaMirrored, HealthHealthy
			want.Role = RoleStandby // the local role in the copy
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(mustGet(t, r, "k"), want) {
				t.Fatalf("stored =\n %+v\nwant\n %+v", got, want)
			}
			if got.Epoch != tt.in.Epoch {
				t.Fatalf("Epoch re-projected to %d, want the record's %d", got.Epoch, tt.in.Epoch)
			}
			if r.Watermark() != max(wm, tt.in.Attempt+1) {
				t.Fatalf("watermark = %d", r.Watermark())
			}
			if e := lastEntry(t, r); e.Transition != TransitionReplicaPrepare || e.AttemptID != tt.in.AttemptID() || e.ReplicaStatus != ReplicaMirrored {
				t.Fatalf("entry = %+v", e)
			}
			if r.Len() != 1 {
				t.Fatalf("Len = %d", r.Len())
			}
		})
	}
}

// ---- Complete ---------------------------------------------------------------------

func TestComplete(t *testing.T) {
	type setup func(t *testing.T, r *Registry) Record
	pending := func(t *testing.T, r *Registry) Record { return mirrored(t, r, "k") }
	tests := []struct {
		name    string
		setup   setup
		attempt func(Record) uint64
		node    string
		gen     func(r *Registry) uint64
		reason  Reason // "" = success
		diag    bool   // a completion_rejected entry is expected
	}{
		{"happy path", pending, same, "a", curGen, "", false},
		{"remote execution node", pending, same, "b", curGen, "", false},
		{"attempt mismatch", pending, next, "a", curGen, ReasonAttemptMismatch, true},
		{"older attempt after rollover", func(t *testing.T, r *Registry) Record {
			d := submitOK(t, r, SubmitRequest{Key: "k", Hash: "h-k", Count: 2, Ingress: "a", Placement: Placement{Owner: "b", Replica: "a"}})
			ok(t)(r.Prepared("k", d.Record.Attempt))
			r.NodeLost("b")
			ok(t)(r.Rollover("k", d.Record.Attempt))
			return d.Record
		}, same, "b", curGen, ReasonAttemptMismatch, true},
		{"missing execution node", pending, same, "", curGen, ReasonExecutionNodeMissing, true},
		{"stale fence generation", pending, same, "a", func(r *Registry) uint64 {
			gen := r.FenceGeneration()
			if _, err := r.ObserveAuthority("0", RolePrimary, 1, nil); err != nil {
				panic(err)
			}
			return gen
		}, ReasonFenced, true},
		{"future fence generation", pending, same, "a", func(r *Registry) uint64 { return r.FenceGeneration() + 1 }, ReasonFenced, true},
		{"idempotent on the same node", func(t *testing.T, r *Registry) Record {
			rec := mirrored(t, r, "k")
			return ok(t)(r.Complete("k", rec.Attempt, "a", 0))
		}, same, "a", curGen, "", false},
		{"already completed by another node", func(t *testing.T, r *Registry) Record {
			rec := mirrored(t, r, "k")
			return ok(t)(r.Complete("k", rec.Attempt, "b", 0))
		}, same, "a", curGen, ReasonAlreadyCompleted, true},
		{"rejected phase", func(t *testing.T, r *Registry) Record {
			rec := mirrored(t, r, "k")
			return ok(t)(r.Reject("k", rec.Attempt, "handler_error: x"))
		}, same, "a", curGen, ReasonPhase, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, clk := newReg("a", RolePrimary, 0)
			before := tt.setup(t, r)
			attempt := tt.attempt(before)
			gen := tt.gen(r)
			stored := mustGet(t, r, "k")
			n := len(entries(r))
			got, err := r.Complete("k", attempt, tt.node, gen)
			if tt.reason != "" {
				wantReason(t, err, tt.reason)
				if !reflect.DeepEqual(got, stored) || !reflect.DeepEqual(mustGet(t, r, "k"), stored) {
					t.Fatalf("refused completion changed the record:\n %+v\nwas\n %+v", got, stored)
				}
			} else if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			es := entries(r)[n:]
			if tt.diag {
				if len(es) != 1 || es[0].Transition != TransitionCompletionRejected || es[0].Reason != string(tt.reason) {
					t.Fatalf("entries = %+v, want one completion_rejected %s", es, tt.reason)
				}
				wantMeta(t, es[0], "attempted_attempt_id", FormatAttempt(attempt), "active_attempt_id", stored.AttemptID())
				if es[0].AttemptID != stored.AttemptID() {
					t.Fatalf("entry attempt = %s, want the active %s", es[0].AttemptID, stored.AttemptID())
				}
				return
			}
			if tt.reason != "" {
				return
			}
			if stored.Phase == PhaseCompleted { // idempotent retry
				if !reflect.DeepEqual(got, stored) || len(es) != 0 {
					t.Fatalf("idempotent retry changed %+v or emitted %+v", got, es)
				}
				return
			}
			want := stored
			want.Phase, want.Result, want.ExecutionNode, want.Error = PhaseCompleted, ResultSucceeded, tt.node, ""
			want.CompletedAt = got.CompletedAt
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(mustGet(t, r, "k"), want) {
				t.Fatalf("Complete =\n %+v\nwant\n %+v", got, want)
			}
			if got.CompletedAt.IsZero() || got.CompletedAt.Location() != time.UTC || !got.CompletedAt.After(got.SubmittedAt) ||
				got.CompletedAt.After(clk.Last()) {
				t.Fatalf("CompletedAt = %v", got.CompletedAt)
			}
			if len(es) != 1 || es[0].Transition != TransitionCompleted || es[0].ExecutionNode != tt.node {
				t.Fatalf("entries = %+v", es)
			}
		})
	}
}

func same(r Record) uint64 { return r.Attempt }
func next(r Record) uint64 { return r.Attempt + 1 }
func curGen(r *Registry) uint64 {
	return r.FenceGeneration()
}

func TestCompleteUnknownKey(t *testing.T) {
	r, _ := newReg("a", RolePrimary, 0)
	_, err := r.Complete("nope", 0, "a", 0)
	wantReason(t, err, ReasonRequestKeyNotFound)
	if len(entries(r)) != 0 {
		t.Fatal("unknown key emitted a diagnostic")
	}
}

func TestCompleteAfterFenceWithNewGeneration(t *testing.T) {
	r, _ := newReg("b", RolePrimary, 0)
	rec := mirrored(t, r, "k")
	old := r.FenceGeneration()
	if changed, err := r.ObserveAuthority("a", RolePrimary, 0, nil); err != nil || !changed {
		t.Fatalf("tie: changed %v err %v", changed, err)
	}
	if r.FenceGeneration() != old+1 {
		t.Fatalf("generation %d, want %d", r.FenceGeneration(), old+1)
	}
	_, err := r.Complete("k", rec.Attempt, "b", old)
	wantReason(t, err, ReasonFenced)
	if mustGet(t, r, "k").Pending() != true {
		t.Fatal("fenced completion changed the record")
	}
	// Work dispatched under the new generation may complete.
	got := ok(t)(r.Complete("k", rec.Attempt, "b", r.FenceGeneration()))
	if got.Phase != PhaseCompleted || got.Role != RoleStandby {
		t.Fatalf("record = %+v", got)
	}
}

// ---- Reject ---------------------------------------------------------------------------

func TestReject(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, r *Registry) Record
		delta  uint64
		reason Reason // "" = success
		change bool
	}{
		{"pending", func(t *testing.T, r *Registry) Record { return mirrored(t, r, "k") }, 0, "", true},
		{"preparing", func(t *testing.T, r *Registry) Record {
			return submitOK(t, r, SubmitRequest{Key: "k", Hash: "h", Count: 2, Ingress: "a", Placement: Placement{Owner: "a", Replica: "b"}}).Record
		}, 0, "", true},
		{"completed", func(t *testing.T, r *Registry) Record {
			rec := mirrored(t, r, "k")
			return ok(t)(r.Complete("k", rec.Attempt, "a", 0))
		}, 0, ReasonAlreadyCompleted, false},
		{"already rejected is a no-op", func(t *testing.T, r *Registry) Record {
			rec := mirrored(t, r, "k")
			return ok(t)(r.Reject("k", rec.Attempt, "first"))
		}, 0, "", false},
		{"attempt mismatch", func(t *testing.T, r *Registry) Record { return mirrored(t, r, "k") }, 1, ReasonAttemptMismatch, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newReg("a", RolePrimary, 0)
			before := tt.setup(t, r)
			n := len(entries(r))
			got, err := r.Reject("k", before.Attempt+tt.delta, "handler_error: boom")
			if tt.reason != "" {
				wantReason(t, err, tt.reason)
			} else if err != nil {
				t.Fatalf("Reject: %v", err)
			}
			if !tt.change {
				if !reflect.DeepEqual(mustGet(t, r, "k"), before) || len(entries(r)) != n {
					t.Fatalf("Reject changed %+v", mustGet(t, r, "k"))
				}
				if err == nil || tt.reason == ReasonAlreadyCompleted {
					if !reflect.DeepEqual(got, before) {
						t.Fatalf("returned %+v, want the stored record", got)
					}
				}
				return
			}
			want := before
			want.Phase, want.Result, want.ReplicaStatus, want.Health, want.Error =
				PhaseRejected, ResultRejected, ReplicaRejected, HealthUnavailable, "handler_error: boom"
			want.CompletedAt = got.CompletedAt
			if !reflect.DeepEqual(got, want) || got.CompletedAt.IsZero() {
				t.Fatalf("Reject =\n %+v\nwant\n %+v", got, want)
			}
			if e := lastEntry(t, r); e.Transition != TransitionRejected || e.Reason != "handler_error: boom" {
				t.Fatalf("entry = %+v", e)
			}
		})
	}
	r, _ := newReg("a", RolePrimary, 0)
	_, err := r.Reject("nope", 0, "x")
	wantReason(t, err, ReasonRequestKeyNotFound)
}

// ---- Merge -----------------------------------------------------------------------------

func TestMergePreference(t *testing.T) {
	base := func(mods ...func(*Record)) Record {
		return mkRecord("k", append([]func(*Record){at(1, 5)}, mods...)...)
	}
	tests := []struct {
		name     string
		local    Record
		incoming Record
		replace  bool
		stale    bool // a stale_epoch_rejected entry is expected
	}{
		{"higher epoch wins over higher attempt", base(), base(at(2, 1)), true, false},
		{"completed kept over a higher-epoch pending attempt", base(completed("a")), base(at(2, 5)), false, false},
		{"higher epoch pending wins over a rejection", base(rejected("x")), base(at(2, 5)), true, false},
		{"lower epoch loses to pending", base(), base(at(0, 9), rejected("b")), false, true},
		{"a completed attempt replaces a pending one from a higher epoch", base(), base(at(0, 9), completed("b")), true, false},
		{"lower epoch same attempt same phase loses quietly", base(), base(at(0, 5), status(ReplicaRejected, HealthHealthy)), false, false},
		{"lower epoch same attempt other phase is stale", base(), base(at(0, 5), rejected("b")), false, true},
		{"higher attempt wins", base(), base(at(1, 6)), true, false},
		{"higher attempt pending wins over a rejection", base(rejected("x")), base(at(1, 6)), true, false},
		{"completed kept over a higher pending attempt", base(completed("a")), base(at(1, 6)), false, false},
		{"lower attempt loses (same epoch, not stale)", base(), base(at(1, 4), rejected("b")), false, false},
		{"a completed lower attempt replaces a pending one", base(), base(at(1, 4), completed("b")), true, false},
		{"completed over pending", base(), base(completed("a")), true, false},
		{"rejected over pending", base(), base(rejected("x")), true, false},
		{"pending loses to completed", base(completed("a")), base(status(ReplicaDegradedContinuing, HealthHealthy)), false, false},
		{"completed kept over a late rejection of the same attempt", base(completed("a")), base(rejected("x")), false, false},
		{"completed replaces a rejection of the same attempt", base(rejected("x")), base(completed("a")), true, false},
		{"preparing over unassigned", base(status(ReplicaUnassigned, HealthLocalOnly)), base(status(ReplicaPreparing, HealthLocalOnly)), true, false},
		{"mirrored over preparing", base(status(ReplicaPreparing, HealthHealthy)), base(status(ReplicaMirrored, HealthLocalOnly)), true, false},
		{"owner_lost over mirrored", base(status(ReplicaMirrored, HealthHealthy)), base(status(ReplicaOwnerLost, HealthUnavailable)), true, false},
		{"degraded_continuing over owner_lost", base(status(ReplicaOwnerLost, HealthHealthy)), base(status(ReplicaDegradedContinuing, HealthUnavailable)), true, false},
		{"mirrored loses to owner_lost", base(status(ReplicaOwnerLost, HealthUnavailable)), base(status(ReplicaMirrored, HealthHealthy)), false, false},
		{"unavailable over local_only", base(status(ReplicaMirrored, HealthLocalOnly)), base(status(ReplicaMirrored, HealthUnavailable)), true, false},
		{"degraded over unavailable", base(status(ReplicaMirrored, HealthUnavailable)), base(status(ReplicaMirrored, HealthDegraded)), true, false},
		{"healthy over degraded", base(status(ReplicaMirrored, HealthDegraded)), base(status(ReplicaMirrored, HealthHealthy)), true, false},
		{"degraded loses to healthy", base(status(ReplicaMirrored, HealthHealthy)), base(status(ReplicaMirrored, HealthDegraded)), false, false},
		{"exact tie keeps existing", base(), base(), false, false},
		{"tie on the ranks is broken on the other fields", base(completed("a")), base(completed("b"), func(x *Record) {
			x.IngressNode, x.Error, x.RuntimeName = "b", "e", "Other"
		}), true, false},
		{"tie on the ranks is broken the same way from the other side", base(completed("b"), func(x *Record) {
			x.IngressNode, x.Error, x.RuntimeName = "b", "e", "Other"
		}), base(completed("a")), false, false},
		{"same attempt number from two ingresses, both refused: owner decides", base(refused("replica_required_unavailable")),
			base(refused("replica_required_unavailable"), func(x *Record) { x.IngressNode, x.OwnerNode, x.ReplicaNode = "b", "b", "a" }), true, false},
		{"acknowledged lower attempt beats a refused higher one", base(at(1, 9), refused("replica_required_unavailable")), base(), true, false},
		{"acknowledged lower epoch beats a refused higher one", base(at(2, 9), refused("replica_required_unavailable")), base(completed("a")), true, false},
		{"refused higher epoch loses to acknowledged work", base(), base(at(2, 9), refused("replica_required_unavailable")), false, false},
		{"the refusal of one attempt beats its mirrored copy", base(), base(refused("replica_prepare_timeout")), true, false},
		{"a restarted ingress reusing an attempt number does not refuse the acknowledged one", base(),
			base(refused("replica_required_unavailable"), func(x *Record) { x.SubmittedAt = x.SubmittedAt.Add(time.Hour) }), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newReg("c", RolePrimary, 1)
			if _, changed, err := r.Merge(tt.local, "x"); err != nil || !changed {
				t.Fatalf("seed merge: changed %v err %v", changed, err)
			}
			localView := mustGet(t, r, "k")
			n := len(entries(r))
			got, changed, err := r.Merge(tt.incoming, "peer")
			if err != nil {
				t.Fatalf("Merge: %v", err)
			}
			if changed != tt.replace {
				t.Fatalf("changed = %v, want %v", changed, tt.replace)
			}
			want := localView
			if tt.replace {
				want = tt.incoming
				want.Role = RolePrimary
			}
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(mustGet(t, r, "k"), want) {
				t.Fatalf("after merge =\n %+v\nwant\n %+v", mustGet(t, r, "k"), want)
			}
			es := entries(r)[n:]
			if !tt.stale {
				if len(es) != 0 {
					t.Fatalf("merge emitted %+v", es)
				}
				return
			}
			if len(es) != 1 || es[0].Transition != TransitionStaleEpochRejected || es[0].Reason != string(ReasonStaleEpoch) {
				t.Fatalf("entries = %+v, want one stale_epoch_rejected", es)
			}
			wantMeta(t, es[0], "incoming_attempt_id", tt.incoming.AttemptID(), "incoming_epoch", strconv.FormatUint(tt.incoming.Epoch, 10),
				"local_epoch", strconv.FormatUint(tt.local.Epoch, 10), "from_node", "peer")
			if es[0].AttemptID != tt.local.AttemptID() {
				t.Fatalf("stale entry names %s, want the kept %s", es[0].AttemptID, tt.local.AttemptID())
			}
		})
	}
}

func TestMergePreferenceIsAStrictOrder(t *testing.T) {
	// Over a grid of versions of one key, prefer is irreflexive, asymmetric
	// and transitive, and two versions neither of which is preferred agree on
	// every ranked field. Merging them in any order converges on the ranks.
	var versions []Record
	for _, ep := range []uint64{0, 1} {
		for _, att := range []uint64{1, 2} {
			for _, ph := range []func(*Record){func(*Record) {}, completed("a"), rejected("x")} {
				for _, st := range []ReplicaStatus{ReplicaUnassigned, ReplicaMirrored, ReplicaDegradedContinuing} {
					for _, h := range []Health{HealthLocalOnly, HealthDegraded, HealthHealthy} {
						rec := mkRecord("k", at(ep, att), ph)
						if rec.Phase != PhaseRejected {
							rec.ReplicaStatus, rec.Health = st, h
						}
						versions = append(versions, rec)
					}
				}
			}
		}
	}
	for i, a := range versions {
		if prefer(&a, &a) {
			t.Fatalf("prefer(%d, %d) is reflexive", i, i)
		}
		for j, b := range versions {
			ab, ba := prefer(&a, &b), prefer(&b, &a)
			if ab && ba {
				t.Fatalf("prefer is symmetric for %d and %d", i, j)
			}
			if !ab && !ba && (a.Epoch != b.Epoch || a.Attempt != b.Attempt || a.Phase.Terminal() != b.Phase.Terminal() ||
				a.ReplicaStatus != b.ReplicaStatus || a.Health != b.Health) {
				t.Fatalf("incomparable but different ranks: %+v vs %+v", a, b)
			}
			for k := 0; k < len(versions); k += 7 {
				if c := versions[k]; ab && prefer(&b, &c) && !prefer(&a, &c) {
					t.Fatalf("prefer not transitive over %d > %d > %d", i, j, k)
				}
			}
		}
	}
}

func TestMergeConflictAndInvalid(t *testing.T) {
	r, _ := newReg("a", RolePrimary, 0)
	local := mkRecord("k", at(0, 3))
	ok(t)(func() (Record, error) { rec, _, err := r.Merge(local, "b"); return rec, err }())
	n := len(entries(r))

	got, changed, err := r.Merge(mkRecord("k", at(5, 9), completed("b"), func(x *Record) { x.PayloadHash = "other" }), "b")
	wantReason(t, err, ReasonRequestKeyConflict)
	if changed || got.PayloadHash != local.PayloadHash || mustGet(t, r, "k").Attempt != 3 {
		t.Fatalf("conflicting merge changed the record: %+v", mustGet(t, r, "k"))
	}

	invalid := []Record{
		mkRecord("", at(0, 1)),
		mkRecord("k", func(x *Record) { x.ReplicaNode = x.OwnerNode }),
		mkRecord("k", func(x *Record) { x.Phase = PhaseCompleted }),
		mkRecord("k2", func(x *Record) { x.ReplicationCount = 0 }),
	}
	for _, in := range invalid {
		if _, changed, err := r.Merge(in, "b"); err == nil || changed {
			t.Fatalf("Merge(%+v) = changed %v err %v, want a validation error", in, changed, err)
		}
	}
	if r.Len() != 1 || len(entries(r)) != n {
		t.Fatalf("invalid merges left state: len %d entries %q", r.Len(), transitions(r)[n:])
	}
}

func TestMergeStoresAsReceivedButViewsLocalRole(t *testing.T) {
	r, _ := newReg("b", RoleStandby, 4)
	in := mkRecord("k", at(1, 2), completed("a"), func(x *Record) { x.Role = RolePrimary; x.Response = []byte("resp") })
	got, changed, err := r.Merge(in, "a")
	if err != nil || !changed {
		t.Fatalf("Merge: %v %v", changed, err)
	}
	want := in
	want.Role = RoleStandby
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merged =\n %+v\nwant\n %+v", got, want)
	}
	if got.Epoch != 1 || got.Health != HealthHealthy {
		t.Fatalf("record re-projected: epoch %d health %s", got.Epoch, got.Health)
	}
	if role, epoch := r.Authority(); role != RoleStandby || epoch != 4 {
		t.Fatalf("Merge changed authority to %s@%d (fencing is ObserveAuthority's job)", role, epoch)
	}
}

func TestMergeTerminalBookkeeping(t *testing.T) {
	r := NewRegistry(Options{Self: "c", Retain: 2, Now: newClock().Now})
	merge := func(rec Record) {
		t.Helper()
		if _, _, err := r.Merge(rec, "a"); err != nil {
			t.Fatal(err)
		}
	}
	keys := func() []string {
		var out []string
		for _, rec := range r.Records() {
			out = append(out, fmt.Sprintf("%s/%s", rec.RequestKey, rec.Phase))
		}
		return out
	}
	steps := []struct {
		name string
		rec  Record
		want []string
	}{
		{"pending k1", mkRecord("k1"), []string{"k1/submitted"}},
		{"k1 completes", mkRecord("k1", completed("a")), []string{"k1/completed"}},
		{"k2 arrives terminal", mkRecord("k2", rejected("x")), []string{"k1/completed", "k2/rejected"}},
		{"k3 evicts the oldest terminal", mkRecord("k3", rejected("x")), []string{"k2/rejected", "k3/rejected"}},
		{"terminal to terminal is not counted twice", mkRecord("k3", rejected("late")), []string{"k2/rejected", "k3/rejected"}},
		{"k4 evicts k2 only", mkRecord("k4", completed("a")), []string{"k3/rejected", "k4/completed"}},
		{"k3 back to pending under a new attempt", mkRecord("k3", at(0, 7)), []string{"k3/submitted", "k4/completed"}},
		{"k5 fits: k3 is no longer terminal", mkRecord("k5", completed("a")), []string{"k3/submitted", "k4/completed", "k5/completed"}},
		{"k6 evicts k4, never pending k3", mkRecord("k6", completed("a")), []string{"k3/submitted", "k5/completed", "k6/completed"}},
		{"pending p1 is kept", mkRecord("p1"), []string{"k3/submitted", "k5/completed", "k6/completed", "p1/submitted"}},
		{"k7 evicts k5", mkRecord("k7", completed("a")), []string{"k3/submitted", "k6/completed", "k7/completed", "p1/submitted"}},
	}
	for _, s := range steps {
		merge(s.rec)
		if got := keys(); !slices.Equal(got, s.want) {
			t.Fatalf("%s: records = %q, want %q", s.name, got, s.want)
		}
	}
}

// ---- authority --------------------------------------------------------------------------

type persistLog struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (p *persistLog) persist(role Role, epoch uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, fmt.Sprintf("%s@%d", role, epoch))
	return p.err
}

func TestObserveAuthority(t *testing.T) {
	tests := []struct {
		name       string
		self       string
		role       Role
		epoch      uint64
		peer       string
		peerRole   Role
		peerEpoch  uint64
		persistErr error
		changed    bool
		reason     string
	}{
		{"higher epoch primary fences primary", "b", RolePrimary, 0, "a", RolePrimary, 1, nil, true, "higher_epoch_observed"},
		{"higher epoch standby still fences", "b", RolePrimary, 2, "a", RoleStandby, 5, nil, true, "higher_epoch_observed"},
		{"higher epoch re-fences a standby", "b", RoleStandby, 1, "a", RolePrimary, 3, nil, true, "higher_epoch_observed"},
		{"equal epoch primaries: later name steps down", "standby@h", RolePrimary, 2, "primary@h", RolePrimary, 2, nil, true, "primary_tie"},
		{"equal epoch primaries: first name stays", "a", RolePrimary, 2, "b", RolePrimary, 2, nil, false, ""},
		{"equal epoch, peer standby", "b", RolePrimary, 2, "a", RoleStandby, 2, nil, false, ""},
		{"equal epoch, local standby", "b", RoleStandby, 2, "a", RolePrimary, 2, nil, false, ""},
		{"equal epoch, both standby", "b", RoleStandby, 2, "a", RoleStandby, 2, nil, false, ""},
		{"lower epoch primary is ignored", "b", RolePrimary, 3, "a", RolePrimary, 2, nil, false, ""},
		{"lower epoch ignored by standby", "b", RoleStandby, 3, "a", RolePrimary, 0, nil, false, ""},
		{"persist failure leaves authority", "b", RolePrimary, 0, "a", RolePrimary, 1, errors.New("disk full"), false, ""},
		{"persist failure on tie", "b", RolePrimary, 0, "a", RolePrimary, 0, errors.New("disk full"), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &persistLog{err: tt.persistErr}
			r := NewRegistry(Options{Self: tt.self, Role: tt.role, Epoch: tt.epoch, Persist: p.persist, Now: newClock().Now})
			rec := mirrored(t, r, "k")
			gen := r.FenceGeneration()
			n := len(entries(r))
			changed, err := r.ObserveAuthority(tt.peer, tt.peerRole, tt.peerEpoch, nil)
			if tt.persistErr != nil {
				if !errors.Is(err, tt.persistErr) {
					t.Fatalf("err = %v, want it to wrap %v", err, tt.persistErr)
				}
				if len(p.calls) != 1 {
					t.Fatalf("persist calls = %q", p.calls)
				}
			} else if err != nil {
				t.Fatalf("ObserveAuthority: %v", err)
			}
			if changed != tt.changed {
				t.Fatalf("changed = %v, want %v", changed, tt.changed)
			}
			role, epoch := r.Authority()
			if !tt.changed {
				if role != tt.role || epoch != tt.epoch || r.FenceGeneration() != gen || len(entries(r)) != n {
					t.Fatalf("authority %s@%d gen %d entries %q, want unchanged", role, epoch, r.FenceGeneration(), transitions(r)[n:])
				}
				if tt.persistErr == nil && len(p.calls) != 0 {
					t.Fatalf("persist called without a change: %q", p.calls)
				}
				return
			}
			if role != RoleStandby || epoch != tt.peerEpoch {
				t.Fatalf("authority = %s@%d, want standby@%d", role, epoch, tt.peerEpoch)
			}
			if want := []string{fmt.Sprintf("standby@%d", tt.peerEpoch)}; !slices.Equal(p.calls, want) {
				t.Fatalf("persist calls = %q, want %q", p.calls, want)
			}
			if r.FenceGeneration() != gen+1 {
				t.Fatalf("fence generation %d, want %d", r.FenceGeneration(), gen+1)
			}
			es := entries(r)[n:]
			if len(es) != 1 || es[0].Transition != TransitionFencedRejoin || es[0].Reason != tt.reason ||
				es[0].ClusterRole != RoleStandby || es[0].PromotionEpoch != tt.peerEpoch || es[0].RequestKey != "" {
				t.Fatalf("entries = %+v", es)
			}
			wantKV := []KV{{"previous_role", string(tt.role)}, {"previous_epoch", strconv.FormatUint(tt.epoch, 10)},
				{"next_role", "standby"}, {"next_epoch", strconv.FormatUint(tt.peerEpoch, 10)}, {"fenced_by", tt.peer}}
			if !slices.Equal(es[0].Metadata, wantKV) {
				t.Fatalf("metadata = %v, want %v", es[0].Metadata, wantKV)
			}
			// Records keep the epoch of their attempt; copies show the new local role.
			got := mustGet(t, r, "k")
			if got.Epoch != rec.Epoch || got.Role != RoleStandby {
				t.Fatalf("record after fence: epoch %d role %s", got.Epoch, got.Role)
			}
		})
	}
}

func TestObserveAuthorityTrigger(t *testing.T) {
	r, _ := newReg("b", RolePrimary, 0)
	trigger := mkRecord("startup::Work.add", at(1, 7), completed("a"))
	if changed, err := r.ObserveAuthority("a", RolePrimary, 1, &trigger); err != nil || !changed {
		t.Fatalf("changed %v err %v", changed, err)
	}
	e := lastEntry(t, r)
	if e.Transition != TransitionFencedRejoin || e.RequestKey != "startup::Work.add" || e.AttemptID != "attempt-7" ||
		e.ExecutionNode != "a" || e.ClusterRole != RoleStandby || e.PromotionEpoch != 1 || e.Reason != "higher_epoch_observed" {
		t.Fatalf("entry = %+v", e)
	}
	wantKeys := []string{"previous_role", "previous_epoch", "next_role", "next_epoch", "fenced_by", "phase", "result", "replication_count", "declared_handler_runtime_name"}
	var keys []string
	for _, kv := range e.Metadata {
		keys = append(keys, kv.Key)
	}
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("metadata keys = %q, want %q", keys, wantKeys)
	}
	wantMeta(t, e, "previous_role", "primary", "previous_epoch", "0", "next_epoch", "1", "fenced_by", "a", "phase", "completed")
	// The trigger is only described, never stored.
	if r.Len() != 0 {
		t.Fatal("trigger record was stored")
	}
}

func TestFenceGenerationCountsEveryFence(t *testing.T) {
	r, _ := newReg("z", RolePrimary, 0)
	for i, step := range []struct {
		role  Role
		epoch uint64
		fence bool
	}{
		{RolePrimary, 0, true}, // tie, z sorts after a
		{RolePrimary, 0, false},
		{RoleStandby, 1, true},
		{RolePrimary, 1, false},
		{RolePrimary, 4, true},
		{RolePrimary, 2, false},
	} {
		before := r.FenceGeneration()
		changed, err := r.ObserveAuthority("a", step.role, step.epoch, nil)
		if err != nil || changed != step.fence {
			t.Fatalf("step %d: changed %v err %v", i, changed, err)
		}
		want := before
		if step.fence {
			want++
		}
		if r.FenceGeneration() != want {
			t.Fatalf("step %d: generation %d, want %d", i, r.FenceGeneration(), want)
		}
	}
	if _, err := r.Promote("a"); err != nil {
		t.Fatal(err)
	}
	if r.FenceGeneration() != 3 {
		t.Fatalf("promotion changed the fence generation to %d", r.FenceGeneration())
	}
}

func TestPromote(t *testing.T) {
	tests := []struct {
		name       string
		role       Role
		epoch      uint64
		persistErr error
		wantEpoch  uint64
		wantErr    bool
	}{
		{"standby at 0", RoleStandby, 0, nil, 1, false},
		{"standby at 6", RoleStandby, 6, nil, 7, false},
		{"primary refuses", RolePrimary, 2, nil, 2, true},
		{"persist failure", RoleStandby, 3, errors.New("read-only fs"), 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &persistLog{err: tt.persistErr}
			r := NewRegistry(Options{Self: "b", Role: tt.role, Epoch: tt.epoch, Persist: p.persist, Now: newClock().Now})
			gen := r.FenceGeneration()
			epoch, err := r.Promote("a")
			if (err != nil) != tt.wantErr {
				t.Fatalf("Promote err = %v, want error %v", err, tt.wantErr)
			}
			if tt.persistErr != nil && !errors.Is(err, tt.persistErr) {
				t.Fatalf("err = %v, want it to wrap %v", err, tt.persistErr)
			}
			if epoch != tt.wantEpoch {
				t.Fatalf("epoch = %d, want %d", epoch, tt.wantEpoch)
			}
			role, cur := r.Authority()
			if r.FenceGeneration() != gen {
				t.Fatal("Promote changed the fence generation")
			}
			if tt.wantErr {
				if role != tt.role || cur != tt.epoch || len(entries(r)) != 0 {
					t.Fatalf("failed promotion left %s@%d and %q", role, cur, transitions(r))
				}
				if tt.role == RolePrimary && len(p.calls) != 0 {
					t.Fatalf("persist called for a primary: %q", p.calls)
				}
				return
			}
			if role != RolePrimary || cur != tt.wantEpoch {
				t.Fatalf("authority = %s@%d", role, cur)
			}
			if want := []string{fmt.Sprintf("primary@%d", tt.wantEpoch)}; !slices.Equal(p.calls, want) {
				t.Fatalf("persist = %q, want %q", p.calls, want)
			}
			e := lastEntry(t, r)
			if e.Transition != TransitionPromote || e.ClusterRole != RolePrimary || e.PromotionEpoch != tt.wantEpoch {
				t.Fatalf("entry = %+v", e)
			}
			wantKV := []KV{{"previous_role", "standby"}, {"previous_epoch", strconv.FormatUint(tt.epoch, 10)},
				{"next_epoch", strconv.FormatUint(tt.wantEpoch, 10)}, {"disconnected_node", "a"}}
			if !slices.Equal(e.Metadata, wantKV) {
				t.Fatalf("metadata = %v, want %v", e.Metadata, wantKV)
			}
			// Only once: the promoted node is primary now.
			if _, err := r.Promote("a"); err == nil {
				t.Fatal("second Promote succeeded")
			}
		})
	}
}

func TestDefaultRoleIsPrimary(t *testing.T) {
	r := NewRegistry(Options{Self: "a"})
	if role, epoch := r.Authority(); role != RolePrimary || epoch != 0 || r.Self() != "a" {
		t.Fatalf("defaults = %s@%d self %q", role, epoch, r.Self())
	}
	if r.Len() != 0 || r.Health() != HealthLocalOnly || r.Watermark() != 0 || r.FenceGeneration() != 0 {
		t.Fatal("fresh registry not empty")
	}
}

// ---- NodeLost --------------------------------------------------------------------------

func TestNodeLost(t *testing.T) {
	type want struct {
		status   ReplicaStatus
		health   Health
		err      string
		orphaned bool
		diag     string // "" = untouched
	}
	tests := []struct {
		name  string
		self  string
		role  Role
		rec   Record // merged or mirror-prepared
		lost  string
		want  want
		setup string // "merge" or "mirror"
	}{
		{"owner lost on primary", "a", RolePrimary, mkRecord("k", func(x *Record) { x.OwnerNode, x.ReplicaNode = "b", "a" }), "b",
			want{ReplicaOwnerLost, HealthUnavailable, "owner_lost:b", true, TransitionOwnerLost}, "merge"},
		{"owner lost on primary, count 1", "a", RolePrimary, mkRecord("k", func(x *Record) {
			x.OwnerNode, x.ReplicaNode, x.ReplicationCount, x.ReplicaStatus, x.Health = "b", "", 1, ReplicaUnassigned, HealthLocalOnly
		}), "b", want{ReplicaOwnerLost, HealthUnavailable, "owner_lost:b", true, TransitionOwnerLost}, "merge"},
		{"owner lost on standby", "b", RoleStandby, mkRecord("k"), "a",
			want{ReplicaMirrored, HealthDegraded, "replication_source_lost:a", true, TransitionReplicationSourceLost}, "mirror"},
		{"replica lost on owner", "a", RolePrimary, mkRecord("k"), "b",
			want{ReplicaDegradedContinuing, HealthDegraded, "replica_lost:b", false, TransitionDegraded}, "merge"},
		{"replica lost on standby owner", "a", RoleStandby, mkRecord("k"), "b",
			want{ReplicaDegradedContinuing, HealthDegraded, "replica_lost:b", false, TransitionDegraded}, "merge"},
		{"replica lost while preparing", "a", RolePrimary, mkRecord("k", status(ReplicaPreparing, HealthLocalOnly)), "b",
			want{ReplicaDegradedContinuing, HealthDegraded, "replica_lost:b", false, TransitionDegraded}, "merge"},
		{"replica lost but owner is a third node", "a", RolePrimary, mkRecord("k", func(x *Record) { x.OwnerNode = "c" }), "b",
			want{ReplicaMirrored, HealthHealthy, "", false, ""}, "merge"},
		{"unrelated node", "a", RolePrimary, mkRecord("k"), "z",
			want{ReplicaMirrored, HealthHealthy, "", false, ""}, "merge"},
		{"completed owned by lost node", "a", RolePrimary, mkRecord("k", completed("b"), func(x *Record) { x.OwnerNode, x.ReplicaNode = "b", "a" }), "b",
			want{ReplicaMirrored, HealthHealthy, "", false, ""}, "merge"},
		{"rejected owned by lost node", "a", RolePrimary, mkRecord("k", rejected("x"), func(x *Record) { x.OwnerNode, x.ReplicaNode = "b", "a" }), "b",
			want{ReplicaRejected, HealthUnavailable, "x", false, ""}, "merge"},
		{"completed mirrored on lost replica", "a", RolePrimary, mkRecord("k", completed("a")), "b",
			want{ReplicaMirrored, HealthHealthy, "", false, ""}, "merge"},
		{"completed on standby", "b", RoleStandby, mkRecord("k", completed("a")), "a",
			want{ReplicaMirrored, HealthHealthy, "", false, ""}, "mirror"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newReg(tt.self, tt.role, 0)
			switch tt.setup {
			case "merge":
				if _, _, err := r.Merge(tt.rec, "x"); err != nil {
					t.Fatal(err)
				}
			case "mirror":
				ok(t)(r.MirrorPrepare(tt.rec))
			}
			before := mustGet(t, r, "k")
			n := len(entries(r))
			orphaned := r.NodeLost(tt.lost)
			got := mustGet(t, r, "k")
			if tt.want.diag == "" {
				if !reflect.DeepEqual(got, before) || len(orphaned) != 0 || len(entries(r)) != n {
					t.Fatalf("NodeLost touched %+v (orphaned %d, entries %q)", got, len(orphaned), transitions(r)[n:])
				}
				return
			}
			wantRec := before
			wantRec.ReplicaStatus, wantRec.Health, wantRec.Error = tt.want.status, tt.want.health, tt.want.err
			if !reflect.DeepEqual(got, wantRec) {
				t.Fatalf("after NodeLost =\n %+v\nwant\n %+v", got, wantRec)
			}
			if tt.want.orphaned {
				if len(orphaned) != 1 || !reflect.DeepEqual(orphaned[0], got) {
					t.Fatalf("orphaned = %+v, want [%+v]", orphaned, got)
				}
			} else if len(orphaned) != 0 {
				t.Fatalf("orphaned = %+v, want none", orphaned)
			}
			es := entries(r)[n:]
			if len(es) != 1 || es[0].Transition != tt.want.diag || es[0].Reason != tt.want.err || es[0].RequestKey != "k" {
				t.Fatalf("entries = %+v, want one %s", es, tt.want.diag)
			}
		})
	}
}

func TestNodeLostMany(t *testing.T) {
	r, _ := newReg("a", RolePrimary, 0)
	merge := func(rec Record) {
		t.Helper()
		if _, _, err := r.Merge(rec, "b"); err != nil {
			t.Fatal(err)
		}
	}
	remote := func(x *Record) { x.OwnerNode, x.ReplicaNode = "b", "a" }
	merge(mkRecord("r3", remote))
	merge(mkRecord("r1", remote))
	merge(mkRecord("r2", remote, completed("b")))
	merge(mkRecord("l1"))
	merge(mkRecord("r0", remote, at(0, 9)))
	orphaned := r.NodeLost("b")
	var keys []string
	for _, o := range orphaned {
		keys = append(keys, o.RequestKey)
	}
	if !slices.Equal(keys, []string{"r0", "r1", "r3"}) {
		t.Fatalf("orphaned = %q, want pending records owned by b sorted by key", keys)
	}
	if got := mustGet(t, r, "l1"); got.ReplicaStatus != ReplicaDegradedContinuing {
		t.Fatalf("l1 = %s", got.ReplicaStatus)
	}
	if r.Health() != HealthUnavailable {
		t.Fatalf("health = %s", r.Health())
	}
	// Losing the node again re-reports the same orphans, unchanged.
	before := r.Records()
	again := r.NodeLost("b")
	if len(again) != 3 || !reflect.DeepEqual(r.Records(), before) {
		t.Fatalf("second NodeLost: %d orphans, records changed %v", len(again), !reflect.DeepEqual(r.Records(), before))
	}
}

// ---- Rollover -----------------------------------------------------------------------------

func TestRollover(t *testing.T) {
	r, clk := newReg("b", RoleStandby, 0)
	in := mkRecord("k", at(0, 4), func(x *Record) { x.IngressNode, x.RoutedRemotely, x.FellBackLocally = "b", true, false })
	ok(t)(r.MirrorPrepare(in))
	r.RaiseWatermark(10)
	orphaned := r.NodeLost("a")
	if len(orphaned) != 1 {
		t.Fatalf("orphaned = %d", len(orphaned))
	}
	if _, err := r.Promote("a"); err != nil {
		t.Fatal(err)
	}
	n := len(entries(r))
	got := ok(t)(r.Rollover("k", 4))
	want := mustGet(t, r, "k")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("returned %+v, stored %+v", got, want)
	}
	if got.Attempt != 10 || got.Epoch != 1 || got.OwnerNode != "b" || got.ReplicaNode != "" || got.IngressNode != "b" ||
		got.ReplicaStatus != ReplicaUnassigned || got.Health != HealthLocalOnly || got.Error != "" ||
		got.RoutedRemotely || !got.FellBackLocally || got.ExecutionNode != "" || !got.Pending() ||
		got.Role != RolePrimary || got.PayloadHash != in.PayloadHash || got.RuntimeName != in.RuntimeName ||
		got.ReplicationCount != in.ReplicationCount {
		t.Fatalf("rolled over = %+v", got)
	}
	if !got.SubmittedAt.Before(clk.Last()) || got.SubmittedAt.Equal(in.SubmittedAt) || got.SubmittedAt.Location() != time.UTC {
		t.Fatalf("SubmittedAt = %v", got.SubmittedAt)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("rolled-over record invalid: %v", err)
	}
	if r.Watermark() != 11 {
		t.Fatalf("watermark = %d", r.Watermark())
	}
	es := entries(r)[n:]
	if len(es) != 1 || es[0].Transition != TransitionRecoveryRollover || es[0].AttemptID != "attempt-10" ||
		es[0].ClusterRole != RolePrimary || es[0].PromotionEpoch != 1 {
		t.Fatalf("entries = %+v", es)
	}
	wantMeta(t, es[0], "previous_attempt_id", "attempt-4", "next_attempt_id", "attempt-10",
		"previous_owner", "a", "next_owner", "b", "next_replica", "")

	// The superseded attempt can neither roll over again nor complete.
	_, err := r.Rollover("k", 4)
	wantReason(t, err, ReasonAttemptMismatch)
	_, err = r.Complete("k", 4, "a", r.FenceGeneration())
	wantReason(t, err, ReasonAttemptMismatch)
	if e := lastEntry(t, r); e.Transition != TransitionCompletionRejected {
		t.Fatalf("late completion entry = %+v", e)
	} else {
		wantMeta(t, e, "attempted_attempt_id", "attempt-4", "active_attempt_id", "attempt-10")
	}
	done := ok(t)(r.Complete("k", 10, "b", r.FenceGeneration()))
	if done.ExecutionNode != "b" || done.Phase != PhaseCompleted {
		t.Fatalf("completed = %+v", done)
	}
	// Terminal records are not rolled over.
	_, err = r.Rollover("k", 10)
	wantReason(t, err, ReasonAlreadyCompleted)
	if mustGet(t, r, "k").Attempt != 10 || r.Watermark() != 11 {
		t.Fatal("refused rollover changed state")
	}
}

func TestRolloverRefusals(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, r *Registry) uint64
		reason Reason
	}{
		{"unknown key", func(*testing.T, *Registry) uint64 { return 0 }, ReasonRequestKeyNotFound},
		{"wrong previous attempt", func(t *testing.T, r *Registry) uint64 { return mirrored(t, r, "k").Attempt + 1 }, ReasonAttemptMismatch},
		{"completed", func(t *testing.T, r *Registry) uint64 {
			a := mirrored(t, r, "k").Attempt
			ok(t)(r.Complete("k", a, "a", 0))
			return a
		}, ReasonAlreadyCompleted},
		{"rejected", func(t *testing.T, r *Registry) uint64 {
			a := mirrored(t, r, "k").Attempt
			ok(t)(r.Reject("k", a, "x"))
			return a
		}, ReasonAlreadyCompleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newReg("a", RolePrimary, 0)
			prev := tt.setup(t, r)
			before, wm, n := r.Records(), r.Watermark(), len(entries(r))
			_, err := r.Rollover("k", prev)
			wantReason(t, err, tt.reason)
			if !reflect.DeepEqual(r.Records(), before) || r.Watermark() != wm || len(entries(r)) != n {
				t.Fatal("refused rollover changed state")
			}
		})
	}
}

func TestRolloverOnPrimaryKeepsEpoch(t *testing.T) {
	// A primary that lost the owner re-runs the work itself at its own epoch.
	r, _ := newReg("a", RolePrimary, 3)
	if _, _, err := r.Merge(mkRecord("k", at(1, 2), func(x *Record) { x.OwnerNode, x.ReplicaNode = "b", "a" }), "b"); err != nil {
		t.Fatal(err)
	}
	r.NodeLost("b")
	got := ok(t)(r.Rollover("k", 2))
	if got.Epoch != 3 || got.Attempt != 3 || got.OwnerNode != "a" || got.ReplicaStatus != ReplicaUnassigned {
		t.Fatalf("rolled over = %+v", got)
	}
}

// ---- Health ------------------------------------------------------------------------------

func TestHealthAggregation(t *testing.T) {
	tests := []struct {
		healths []Health
		want    Health
	}{
		{nil, HealthLocalOnly},
		{[]Health{HealthLocalOnly}, HealthLocalOnly},
		{[]Health{HealthLocalOnly, HealthLocalOnly}, HealthLocalOnly},
		{[]Health{HealthHealthy}, HealthHealthy},
		{[]Health{HealthLocalOnly, HealthHealthy}, HealthHealthy},
		{[]Health{HealthHealthy, HealthDegraded}, HealthDegraded},
		{[]Health{HealthDegraded, HealthLocalOnly}, HealthDegraded},
		{[]Health{HealthHealthy, HealthDegraded, HealthUnavailable}, HealthUnavailable},
		{[]Health{HealthUnavailable, HealthLocalOnly}, HealthUnavailable},
		{[]Health{HealthLocalOnly, HealthHealthy, HealthHealthy, HealthUnavailable, HealthDegraded}, HealthUnavailable},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.healths), func(t *testing.T) {
			r, _ := newReg("a", RolePrimary, 0)
			for i, h := range tt.healths {
				if _, _, err := r.Merge(mkRecord(fmt.Sprintf("k%d", i), status(ReplicaMirrored, h)), "b"); err != nil {
					t.Fatal(err)
				}
			}
			if got := r.Health(); got != tt.want {
				t.Fatalf("Health = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestHealthFollowsTransitions(t *testing.T) {
	r, _ := newReg("a", RolePrimary, 0)
	steps := []struct {
		name string
		do   func()
		want Health
	}{
		{"empty", func() {}, HealthLocalOnly},
		{"count 1 record", func() {
			submitOK(t, r, SubmitRequest{Key: "one", Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}})
		}, HealthLocalOnly},
		{"mirrored record", func() { mirrored(t, r, "two") }, HealthHealthy},
		{"replica lost", func() { r.NodeLost("b") }, HealthDegraded},
		{"durable rejection", func() {
			submitOK(t, r, SubmitRequest{Key: "three", Hash: "h", Count: 3, Ingress: "a", Placement: Placement{Owner: "a"}})
		}, HealthUnavailable},
	}
	for _, s := range steps {
		s.do()
		if got := r.Health(); got != s.want {
			t.Fatalf("%s: Health = %s, want %s", s.name, got, s.want)
		}
	}
}

func TestPendingHealth(t *testing.T) {
	type rs = []Record
	tests := []struct {
		name string
		recs rs
		want Health
	}{
		{"empty", nil, HealthLocalOnly},
		{"pending healthy is local_only", rs{mkRecord("k0")}, HealthLocalOnly},
		{"pending local_only", rs{mkRecord("k0", status(ReplicaUnassigned, HealthLocalOnly))}, HealthLocalOnly},
		{"pending degraded", rs{mkRecord("k0"), mkRecord("k1", status(ReplicaDegradedContinuing, HealthDegraded))}, HealthDegraded},
		{"pending unavailable wins", rs{mkRecord("k0", status(ReplicaDegradedContinuing, HealthDegraded)),
			mkRecord("k1", status(ReplicaOwnerLost, HealthUnavailable))}, HealthUnavailable},
		{"terminal records are ignored", rs{mkRecord("k0", rejected("x")),
			mkRecord("k1", completed("a"), status(ReplicaDegradedContinuing, HealthDegraded))}, HealthLocalOnly},
		{"terminal ignored, pending counted", rs{mkRecord("k0", rejected("x")),
			mkRecord("k1", status(ReplicaMirrored, HealthDegraded))}, HealthDegraded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newReg("a", RolePrimary, 0)
			for _, rec := range tt.recs {
				if _, _, err := r.Merge(rec, "b"); err != nil {
					t.Fatal(err)
				}
			}
			if got := r.PendingHealth(); got != tt.want {
				t.Fatalf("PendingHealth = %s, want %s", got, tt.want)
			}
		})
	}
	// A past outage stops counting once the affected work is done.
	r, _ := newReg("a", RolePrimary, 0)
	rec := mirrored(t, r, "k")
	r.NodeLost("b")
	if r.PendingHealth() != HealthDegraded || r.Health() != HealthDegraded {
		t.Fatalf("after replica loss: pending %s, all %s", r.PendingHealth(), r.Health())
	}
	ok(t)(r.Complete("k", rec.Attempt, "a", r.FenceGeneration()))
	if r.PendingHealth() != HealthLocalOnly || r.Health() != HealthDegraded {
		t.Fatalf("after completion: pending %s, all %s", r.PendingHealth(), r.Health())
	}
}

// ---- retention -----------------------------------------------------------------------------

func TestRetention(t *testing.T) {
	for _, retain := range []int{1, 2, 5, 16} {
		t.Run(fmt.Sprint(retain), func(t *testing.T) {
			r := NewRegistry(Options{Self: "a", Retain: retain, Now: newClock().Now})
			var pending, done []string
			for i := range 3 * retain {
				key := fmt.Sprintf("k%03d", i)
				d := submitOK(t, r, SubmitRequest{Key: key, Hash: "h-" + key, Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}})
				switch {
				case i%4 == 3:
					pending = append(pending, key) // never completed
				case i%4 == 2:
					ok(t)(r.Reject(key, d.Record.Attempt, "handler_error"))
					done = append(done, key)
				default:
					ok(t)(r.Complete(key, d.Record.Attempt, "a", 0))
					done = append(done, key)
				}
				if r.Len() > retain+len(pending) {
					t.Fatalf("after %s: Len %d > retain %d + pending %d", key, r.Len(), retain, len(pending))
				}
			}
			for _, key := range pending {
				if rec, ok := r.Get(key); !ok || !rec.Pending() {
					t.Fatalf("pending %s evicted", key)
				}
			}
			// Exactly the newest Retain terminal records survive.
			kept := done[max(0, len(done)-retain):]
			for _, key := range done {
				_, ok := r.Get(key)
				if want := slices.Contains(kept, key); ok != want {
					t.Fatalf("terminal %s retained=%v, want %v (kept %q)", key, ok, want, kept)
				}
			}
			if r.Len() != len(kept)+len(pending) {
				t.Fatalf("Len = %d, want %d", r.Len(), len(kept)+len(pending))
			}
			// An evicted key is new again: it gets a fresh attempt.
			if evicted := done[0]; len(done) > retain {
				wm := r.Watermark()
				d := submitOK(t, r, SubmitRequest{Key: evicted, Hash: "h-" + evicted, Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}})
				if d.Outcome != OutcomeCreated || d.Record.Attempt != wm || !d.Record.Pending() {
					t.Fatalf("resubmitted evicted key: %s %+v", d.Outcome, d.Record)
				}
			}
		})
	}
}

func TestRetentionPendingNeverEvicted(t *testing.T) {
	r := NewRegistry(Options{Self: "a", Retain: 2, Now: newClock().Now})
	for i := range 50 {
		submitOK(t, r, SubmitRequest{Key: fmt.Sprintf("p%02d", i), Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}})
	}
	for i := range 20 {
		key := fmt.Sprintf("t%02d", i)
		d := submitOK(t, r, SubmitRequest{Key: key, Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}})
		ok(t)(r.Complete(key, d.Record.Attempt, "a", 0))
	}
	if r.Len() != 52 {
		t.Fatalf("Len = %d, want 50 pending + 2 terminal", r.Len())
	}
	// Once the pending ones finish, retention brings the total back down.
	for i := range 50 {
		key := fmt.Sprintf("p%02d", i)
		ok(t)(r.Complete(key, mustGet(t, r, key).Attempt, "a", 0))
	}
	if r.Len() != 2 {
		t.Fatalf("Len = %d, want 2", r.Len())
	}
	for _, key := range []string{"p48", "p49"} {
		if _, ok := r.Get(key); !ok {
			t.Fatalf("newest terminal %s evicted", key)
		}
	}
}

func TestRetentionDefaultBound(t *testing.T) {
	r := NewRegistry(Options{Self: "a", Retain: -1})
	for i := range 10050 {
		key := strconv.Itoa(i)
		d := submitOK(t, r, SubmitRequest{Key: key, Hash: "h", Count: 1, Ingress: "a", Placement: Placement{Owner: "a"}})
		ok(t)(r.Complete(key, d.Record.Attempt, "a", 0))
	}
	if r.Len() != 10000 {
		t.Fatalf("Len = %d, want the default bound 10000", r.Len())
	}
	if _, ok := r.Get("49"); ok {
		t.Fatal("oldest record not evicted")
	}
	if _, ok := r.Get("50"); !ok {
		t.Fatal("record 50 evicted too early")
	}
}

// ---- copies, responses ------------------------------------------------------------------------

func TestRecordsAreSortedCopies(t *testing.T) {
	r, _ := newReg("a", RolePrimary, 0)
	for _, k := range []string{"m", "a", "z", "b"} {
		mirrored(t, r, k)
	}
	recs := r.Records()
	var keys []string
	for _, rec := range recs {
		keys = append(keys, rec.RequestKey)
	}
	if !slices.Equal(keys, []string{"a", "b", "m", "z"}) {
		t.Fatalf("keys = %q", keys)
	}
	recs[0].Phase, recs[0].OwnerNode = PhaseCompleted, "mutated"
	got := mustGet(t, r, "a")
	got.Error = "mutated"
	if again := mustGet(t, r, "a"); again.Phase != PhaseSubmitted || again.OwnerNode != "a" || again.Error != "" {
		t.Fatalf("stored record changed through a copy: %+v", again)
	}
	if _, ok := r.Get("missing"); ok {
		t.Fatal("Get(missing) found something")
	}
	if empty := NewRegistry(Options{}).Records(); empty == nil || len(empty) != 0 {
		t.Fatalf("Records() of empty registry = %#v", empty)
	}
}

func TestCompleteWithResponse(t *testing.T) {
	r, _ := newReg("a", RolePrimary, 0)
	rec := mirrored(t, r, "k")
	if _, err := r.CompleteWithResponse("k", rec.Attempt+1, "a", 0, []byte("stale")); err == nil {
		t.Fatal("completion of a wrong attempt accepted")
	}
	if got := mustGet(t, r, "k").Response; got != nil {
		t.Fatalf("response of a refused completion stored: %q", got)
	}
	if _, err := r.CompleteWithResponse("missing", 0, "a", 0, []byte("x")); err == nil || r.Len() != 1 {
		t.Fatalf("completion of an unknown key: err %v, %d records", err, r.Len())
	}
	out, err := r.CompleteWithResponse("k", rec.Attempt, "a", 0, []byte(`{"ok":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Response) != `{"ok":true}` || out.Phase != PhaseCompleted {
		t.Fatalf("returned record: phase %s response %q", out.Phase, out.Response)
	}
	if got := string(mustGet(t, r, "k").Response); got != `{"ok":true}` {
		t.Fatalf("stored response = %q", got)
	}
}

// ---- concurrency -----------------------------------------------------------------------------

func TestRegistryConcurrentUse(t *testing.T) {
	r := NewRegistry(Options{Self: "a", Retain: 64, Diag: NewDiagnostics(32), Now: newClock().Now})
	const workers, ops = 6, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range ops {
				key := fmt.Sprintf("k%d", rng.IntN(40))
				switch rng.IntN(8) {
				case 0, 1:
					d, err := r.Submit(SubmitRequest{Key: key, Hash: "h-" + key, Count: uint64(1 + rng.IntN(2)), Ingress: "a",
						Placement: Placement{Owner: "a", Replica: "b"}})
					if err != nil {
						t.Error(err)
						return
					}
					if d.Outcome == OutcomeCreated && rng.IntN(2) == 0 {
						_, _ = r.Prepared(key, d.Record.Attempt)
					}
				case 2:
					if rec, ok := r.Get(key); ok {
						_, _ = r.Complete(key, rec.Attempt, "a", r.FenceGeneration())
					}
				case 3:
					if rec, ok := r.Get(key); ok {
						_, _ = r.Reject(key, rec.Attempt, "x")
					}
				case 4:
					_, _, _ = r.Merge(mkRecord(key, at(0, uint64(rng.IntN(50))), func(x *Record) {
						x.OwnerNode, x.ReplicaNode = "b", "a"
					}), "b")
				case 5:
					r.NodeLost("b")
				case 6:
					_ = r.Records()
					_ = r.Health()
					_ = r.Diagnostics().Snapshot()
				case 7:
					if i%50 == 0 {
						_, _ = r.ObserveAuthority("0", RolePrimary, uint64(i), nil)
					}
					_ = r.Len()
				}
			}
		})
	}
	wg.Wait()
	pending := 0
	for _, rec := range r.Records() {
		if err := rec.Validate(); err != nil {
			t.Fatalf("invalid record %+v: %v", rec, err)
		}
		if rec.Pending() {
			pending++
		}
	}
	if r.Len() > 64+pending {
		t.Fatalf("Len %d > retain 64 + pending %d", r.Len(), pending)
	}
}

// ---- two-registry property ----------------------------------------------------------------------

// simNode is one node of a simulated pair.
type simNode struct {
	name string
	reg  *Registry
	// running is the work dispatched on this node: key -> attempt and the
	// fence generation it was dispatched under.
	running map[string][2]uint64
}

// simMsg is an upsert in flight, with the sender's authority at send time.
type simMsg struct {
	from, to int
	role     Role
	epoch    uint64
	rec      Record
}

type sim struct {
	t         *testing.T
	rng       *rand.Rand
	nodes     [2]*simNode
	connected bool
	inflight  []simMsg
	// primaries records which node was primary at each epoch.
	primaries map[uint64]string
	lastEpoch [2]uint64
	log       []string
}

func newSim(t *testing.T, seed uint64, retain int) *sim {
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, seed*31+1)), connected: true, primaries: map[uint64]string{}}
	for i, name := range []string{"a", "b"} {
		role := RolePrimary
		if i == 1 {
			role = RoleStandby
		}
		s.nodes[i] = &simNode{name: name, running: map[string][2]uint64{},
			reg: NewRegistry(Options{Self: name, Role: role, Retain: retain, Diag: NewDiagnostics(16), Now: newClock().Now})}
	}
	return s
}

func (s *sim) logf(format string, args ...any) { s.log = append(s.log, fmt.Sprintf(format, args...)) }

func (s *sim) members(i int) []string {
	if s.connected {
		return []string{"a", "b"}
	}
	return []string{s.nodes[i].name}
}

// send queues rec from node i to its peer when connected.
func (s *sim) send(i int, rec Record) {
	if !s.connected {
		return
	}
	role, epoch := s.nodes[i].reg.Authority()
	s.inflight = append(s.inflight, simMsg{from: i, to: 1 - i, role: role, epoch: epoch, rec: rec})
}

// deliver applies an upsert as the runtime does: authority first, then merge.
func (s *sim) deliver(m simMsg) {
	to := s.nodes[m.to]
	changed, err := to.reg.ObserveAuthority(s.nodes[m.from].name, m.role, m.epoch, &m.rec)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, _, err := to.reg.Merge(m.rec, s.nodes[m.from].name); err != nil {
		s.t.Fatalf("merge %+v: %v\n%s", m.rec, err, s.history())
	}
	if changed {
		s.sync(m.to)
	}
}

// sync sends node i's whole state to its peer and applies it at once.
func (s *sim) sync(i int) {
	if !s.connected {
		return
	}
	from, to := s.nodes[i], s.nodes[1-i]
	role, epoch := from.reg.Authority()
	recs := from.reg.Records()
	to.reg.RaiseWatermark(from.reg.Watermark())
	var trigger *Record
	for j := range recs {
		if trigger == nil || recs[j].Epoch > trigger.Epoch {
			trigger = &recs[j]
		}
	}
	changed, err := to.reg.ObserveAuthority(from.name, role, epoch, trigger)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, rec := range recs {
		if _, _, err := to.reg.Merge(rec, from.name); err != nil {
			s.t.Fatalf("sync merge %+v: %v\n%s", rec, err, s.history())
		}
	}
	if changed {
		s.sync(1 - i)
	}
}

func (s *sim) submit(i int, key string) {
	n := s.nodes[i]
	count := uint64(1 + s.rng.IntN(2))
	pl := Place(key, s.members(i))
	d, err := n.reg.Submit(SubmitRequest{Key: key, Hash: "h-" + key, RuntimeName: "Work.run", Count: count,
		Ingress: n.name, Placement: pl, Relaxed: s.rng.IntN(4) == 0})
	if err != nil {
		s.t.Fatal(err)
	}
	s.logf("%s submit %s count %d -> %s %s", n.name, key, count, d.Outcome, d.Record.AttemptID())
	if d.Outcome != OutcomeCreated {
		if d.Outcome == OutcomeRejected {
			s.send(i, d.Record)
		}
		return
	}
	rec := d.Record
	if rec.ReplicaNode != "" {
		if rec.ReplicaNode == n.name {
			rec, err = n.reg.Prepared(key, rec.Attempt)
		} else if !s.connected {
			err = reasonError(ReasonReplicaRequiredUnavailable)
		} else {
			peer := s.nodes[1-i]
			role, epoch := n.reg.Authority()
			_, pepoch := peer.reg.Authority()
			if epoch < pepoch {
				err = reasonError(ReasonStaleEpoch)
			} else {
				if _, oerr := peer.reg.ObserveAuthority(n.name, role, epoch, &rec); oerr != nil {
					s.t.Fatal(oerr)
				}
				if _, err = peer.reg.MirrorPrepare(rec); err == nil {
					rec, err = n.reg.Prepared(key, rec.Attempt)
				}
			}
			prole, pepoch := peer.reg.Authority()
			if _, oerr := n.reg.ObserveAuthority(peer.name, prole, pepoch, nil); oerr != nil {
				s.t.Fatal(oerr)
			}
		}
		if err != nil {
			s.logf("  prepare failed: %v", err)
			if rej, rerr := n.reg.Reject(key, rec.Attempt, ReasonOf(err)); rerr == nil {
				s.send(i, rej)
			}
			return
		}
	}
	s.send(i, rec)
	s.dispatch(i, rec)
}

// dispatch starts rec on its owner, as dispatchWork/handleDispatch do.
func (s *sim) dispatch(i int, rec Record) {
	owner := i
	if rec.OwnerNode != s.nodes[i].name {
		if !s.connected {
			return
		}
		owner = 1 - i
		cur, ok := s.nodes[owner].reg.Get(rec.RequestKey)
		if !ok || cur.Attempt != rec.Attempt || !cur.Pending() {
			return
		}
	}
	n := s.nodes[owner]
	n.running[rec.RequestKey] = [2]uint64{rec.Attempt, n.reg.FenceGeneration()}
}

// finish completes (or rejects) one running piece of work on node i.
func (s *sim) finish(i int) {
	n := s.nodes[i]
	keys := make([]string, 0, len(n.running))
	for k := range n.running {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return
	}
	slices.Sort(keys)
	key := keys[s.rng.IntN(len(keys))]
	run := n.running[key]
	delete(n.running, key)
	var out Record
	var err error
	if s.rng.IntN(5) == 0 {
		out, err = n.reg.Reject(key, run[0], "handler_error: boom")
	} else {
		out, err = n.reg.Complete(key, run[0], n.name, run[1])
	}
	s.logf("%s finish %s %s -> %v", n.name, key, FormatAttempt(run[0]), err)
	if err == nil {
		s.send(i, out)
	}
}

// partition cuts the link; both nodes see the other lost.
func (s *sim) partition() {
	if !s.connected {
		return
	}
	s.connected = false
	s.inflight = nil
	s.logf("partition")
	for i, n := range s.nodes {
		lost := s.nodes[1-i].name
		n.reg.NodeLost(lost)
		if role, _ := n.reg.Authority(); role == RoleStandby {
			if _, err := n.reg.Promote(lost); err != nil {
				s.t.Fatal(err)
			}
		}
		for _, rec := range n.reg.Records() {
			if !rec.Pending() || rec.OwnerNode == n.name {
				continue
			}
			next, err := n.reg.Rollover(rec.RequestKey, rec.Attempt)
			if err != nil {
				continue
			}
			s.logf("  %s rollover %s %s -> %s", n.name, rec.RequestKey, rec.AttemptID(), next.AttemptID())
			n.running[next.RequestKey] = [2]uint64{next.Attempt, n.reg.FenceGeneration()}
		}
	}
}

func (s *sim) heal() {
	if s.connected {
		return
	}
	s.connected = true
	s.logf("heal")
	first := s.rng.IntN(2)
	s.sync(first)
	s.sync(1 - first)
}

func (s *sim) history() string {
	out := ""
	for _, l := range s.log[max(0, len(s.log)-60):] {
		out += l + "\n"
	}
	return out
}

// checkStep asserts the invariants that hold after every operation.
func (s *sim) checkStep() {
	for i, n := range s.nodes {
		role, epoch := n.reg.Authority()
		if epoch < s.lastEpoch[i] {
			s.t.Fatalf("%s epoch went down %d -> %d\n%s", n.name, s.lastEpoch[i], epoch, s.history())
		}
		s.lastEpoch[i] = epoch
		if role == RolePrimary {
			if other, ok := s.primaries[epoch]; ok && other != n.name {
				s.t.Fatalf("two primaries at epoch %d: %s and %s\n%s", epoch, other, n.name, s.history())
			}
			s.primaries[epoch] = n.name
		}
		pending := 0
		for _, rec := range n.reg.Records() {
			if err := rec.Validate(); err != nil {
				s.t.Fatalf("%s holds invalid %+v: %v", n.name, rec, err)
			}
			if rec.Pending() {
				pending++
			}
		}
		if n.reg.Len() > n.reg.memory().kept.bound+pending {
			s.t.Fatalf("%s: Len %d > retain %d + pending %d", n.name, n.reg.Len(), n.reg.memory().kept.bound, pending)
		}
	}
}

func TestTwoRegistriesNeverKeepTwoCompletedAttempts(t *testing.T) {
	keys := []string{"startup::Work.run"}
	for i := range 15 {
		keys = append(keys, fmt.Sprintf("k%02d", i))
	}
	for seed := range uint64(120) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			retain := 4 + int(seed%3)*50 // some runs evict, some never do
			s := newSim(t, seed, retain)
			for range 250 {
				switch op := s.rng.IntN(20); {
				case op < 6:
					s.submit(s.rng.IntN(2), keys[s.rng.IntN(len(keys))])
				case op < 10:
					s.finish(s.rng.IntN(2))
				case op < 16:
					if len(s.inflight) > 0 {
						j := s.rng.IntN(len(s.inflight)) // out of order
						m := s.inflight[j]
						s.inflight = slices.Delete(s.inflight, j, j+1)
						s.deliver(m)
					}
				case op < 17:
					s.sync(s.rng.IntN(2))
				case op < 18:
					s.partition()
				default:
					s.heal()
				}
				s.checkStep()
			}
			// Let everything in flight land, finish what runs, then exchange fully.
			s.heal()
			for range 3 {
				for len(s.inflight) > 0 {
					m := s.inflight[0]
					s.inflight = s.inflight[1:]
					s.deliver(m)
				}
				for i := range s.nodes {
					for len(s.nodes[i].running) > 0 {
						s.finish(i)
					}
				}
			}
			for len(s.inflight) > 0 {
				m := s.inflight[0]
				s.inflight = s.inflight[1:]
				s.deliver(m)
			}
			s.sync(0)
			s.sync(1)
			s.sync(0)
			s.checkStep()

			a, b := s.nodes[0].reg, s.nodes[1].reg
			if ra, _ := a.Authority(); ra == RolePrimary {
				if rb, _ := b.Authority(); rb == RolePrimary {
					t.Fatalf("both nodes primary after a full exchange\n%s", s.history())
				}
			}
			for _, ra := range a.Records() {
				rb, ok := b.Get(ra.RequestKey)
				if !ok {
					continue // evicted on one side
				}
				if ra.Phase == PhaseCompleted && rb.Phase == PhaseCompleted && (ra.Attempt != rb.Attempt || ra.Epoch != rb.Epoch) {
					t.Fatalf("key %s completed as %s@%d on a and %s@%d on b\n%s",
						ra.RequestKey, ra.AttemptID(), ra.Epoch, rb.AttemptID(), rb.Epoch, s.history())
				}
				// Stronger: after a full exchange both sides hold the same version.
				if ra.Epoch != rb.Epoch || ra.Attempt != rb.Attempt || ra.Phase != rb.Phase ||
					ra.ReplicaStatus != rb.ReplicaStatus || ra.Health != rb.Health {
					t.Fatalf("key %s did not converge:\n a %+v\n b %+v\n%s", ra.RequestKey, ra, rb, s.history())
				}
			}
		})
	}
}

// Two registries cut off from each other at one watermark allocate disjoint
// attempt numbers once each has its alone slot; linked, numbering is
// sequential again.
func TestAloneSlotsKeepAttemptsApart(t *testing.T) {
	a, _ := newReg("a", RolePrimary, 0)
	b, _ := newReg("b", RoleStandby, 0)
	a.RaiseWatermark(7)
	b.RaiseWatermark(7)
	a.SetAloneSlot(0)
	b.SetAloneSlot(1)
	seen := map[uint64]string{}
	for i := range 5 {
		for _, r := range []*Registry{a, b} {
			key := fmt.Sprintf("k%d", i)
			d := submitOK(t, r, SubmitRequest{Key: key, Hash: "h", Count: 1, Ingress: r.Self(), RuntimeName: "W.run",
				Placement: Placement{Owner: r.Self()}})
			if other, dup := seen[d.Record.Attempt]; dup {
				t.Fatalf("attempt %d allocated by %s and %s", d.Record.Attempt, other, r.Self())
			}
			seen[d.Record.Attempt] = r.Self()
			if want := map[string]uint64{"a": 0, "b": 1}[r.Self()]; d.Record.Attempt%2 != want {
				t.Fatalf("%s allocated attempt %d outside its slot", r.Self(), d.Record.Attempt)
			}
		}
	}
	a.SetAloneSlot(-1)
	w := a.Watermark()
	d := submitOK(t, a, SubmitRequest{Key: "linked", Hash: "h", Count: 1, Ingress: "a", RuntimeName: "W.run", Placement: Placement{Owner: "a"}})
	if d.Record.Attempt != w {
		t.Fatalf("linked allocation %d, want the watermark %d", d.Record.Attempt, w)
	}
}

// Found by the 10-minute chaos soak (seed 1207): an undecided attempt (its
// prepare not yet answered), the same attempt refused, and another node's
// refusal of the key at a higher epoch. Merged in different orders, the
// nodes ended on different versions, one of them the undecided attempt that
// nobody would ever close: an attempt still preparing was never
// acknowledged, so it must not outrank a refusal. Whatever order the three
// versions arrive in, the kept one is the same.
func TestMergeOrderOfThreeVersionsDoesNotMatter(t *testing.T) {
	undecided := mkRecord("k", at(49, 1), status(ReplicaPreparing, HealthLocalOnly))
	refusedX := mkRecord("k", at(49, 1), refused("attempt_id_mismatch"))
	refusedY := mkRecord("k", at(50, 56354), refused("replica_required_unavailable"), func(r *Record) {
		r.IngressNode, r.OwnerNode, r.ReplicaNode = "b", "b", ""
		r.SubmittedAt = r.SubmittedAt.Add(-time.Second)
	})
	versions := []Record{undecided, refusedX, refusedY}
	orders := [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	var first Record
	for i, order := range orders {
		r, _ := newReg("c", RoleStandby, 50)
		for _, v := range order {
			if _, _, err := r.Merge(versions[v], "peer"); err != nil {
				t.Fatal(err)
			}
		}
		got := mustGet(t, r, "k")
		if i == 0 {
			first = got
			continue
		}
		if !SameVersion(got, first) {
			t.Fatalf("order %v kept attempt %d %s (refused %v), order %v kept attempt %d %s (refused %v)",
				order, got.Attempt, got.Phase, got.Refused, orders[0], first.Attempt, first.Phase, first.Refused)
		}
	}
	if first.Attempt != refusedY.Attempt {
		t.Fatalf("kept attempt %d, want the higher-epoch refusal %d", first.Attempt, refusedY.Attempt)
	}
}

// SubmitTo fills the decision it is given whatever that held before, and
// leaves it zero when it refuses the request; it decides as Submit does.
func TestSubmitToOverwritesTheDecision(t *testing.T) {
	stale := func() Decision {
		return Decision{Outcome: OutcomeConflict, Record: Record{RequestKey: "old", Error: "old_reason",
			Response: []byte("old"), Output: []byte("old"), ExecutionNode: "x", Refused: true}}
	}
	r, _ := newReg("a", RolePrimary, 1)
	twin, _ := newReg("a", RolePrimary, 1)
	req := SubmitRequest{Key: "k", Hash: "h", RuntimeName: "Route.get", Kind: KindRoute, Count: 1, Ingress: "a",
		Placement: Placement{Owner: "a", Replica: "b"}}
	// A duplicate of a pending record, then of a retained (completed) one,
	// which is decoded into the decision.
	for _, step := range []string{"created", "duplicate of pending", "completed", "duplicate of retained"} {
		if step == "completed" {
			for _, reg := range []*Registry{r, twin} {
				rec, _ := reg.Get("k")
				if _, err := reg.CompleteWithResponse("k", rec.Attempt, "a", reg.FenceGeneration(), []byte("resp")); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		dec := stale()
		if err := r.SubmitTo(&req, &dec); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		want, err := twin.Submit(req)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if dec.Outcome != want.Outcome || !SameVersion(dec.Record, want.Record) {
			t.Fatalf("%s: SubmitTo decided %+v, Submit %+v", step, dec, want)
		}
	}
	bad := req
	bad.Hash = ""
	dec := stale()
	if err := r.SubmitTo(&bad, &dec); err == nil {
		t.Fatal("a request without a payload hash was recorded")
	}
	if dec.Outcome != "" || !SameVersion(dec.Record, Record{}) {
		t.Fatalf("a refused request left %+v in the decision", dec)
	}
}
