package continuity

import (
	"bytes"
	"cmp"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"meshgo.dev/mesh/internal/authority"
)

// Transition names recorded in diagnostics and log lines. Operators and
// scripts grep for them; they never change.
const (
	TransitionSubmit                     = "submit"
	TransitionDuplicate                  = "duplicate"
	TransitionConflict                   = "conflict"
	TransitionRejected                   = "rejected"
	TransitionReplicaPrepare             = "replica_prepare"
	TransitionReplicaAck                 = "replica_ack"
	TransitionCompleted                  = "completed"
	TransitionCompletionRejected         = "completion_rejected"
	TransitionOwnerLost                  = "owner_lost"
	TransitionDegraded                   = "degraded"
	TransitionReplicationSourceLost      = "replication_source_lost"
	TransitionRecoveryRollover           = "recovery_rollover"
	TransitionPromote                    = "promote"
	TransitionFencedRejoin               = "fenced_rejoin"
	TransitionStaleEpochRejected         = "stale_epoch_rejected"
	TransitionAutomaticPromotion         = "automatic_promotion"
	TransitionAutomaticPromotionRejected = "automatic_promotion_rejected"
	TransitionAutomaticRecovery          = "automatic_recovery"
	TransitionAutomaticRecoveryRejected  = "automatic_recovery_rejected"
	TransitionPrepareFailed              = "prepare_failed"
	TransitionQuarantined                = "authority_quarantined"
	TransitionQuarantineReleased         = "authority_confirmed"

	// A planned switchover (meshc cluster switchover, or the graceful
	// shutdown of a primary with a connected standby).
	TransitionSwitchoverStarted     = "switchover_started"
	TransitionSwitchoverPromoted    = "switchover_promoted"
	TransitionSwitchoverSteppedDown = "switchover_stepped_down"
	TransitionSwitchoverCompleted   = "switchover_completed"
	TransitionSwitchoverRejected    = "switchover_rejected"
	// TransitionWorkRetry: declared work with a retry option returned an
	// error and runs again under a new attempt.
	TransitionWorkRetry = "work_retry"
)

// Outcome is the result of a submission.
type Outcome string

// Submission outcomes.
const (
	OutcomeCreated   Outcome = "created"
	OutcomeDuplicate Outcome = "duplicate"
	OutcomeConflict  Outcome = "conflict"
	OutcomeRejected  Outcome = "rejected"
)

// Decision is what Submit decided, with the stored record.
type Decision struct {
	Outcome Outcome
	Record  Record
}

// SubmitRequest asks the registry to record one request.
type SubmitRequest struct {
	Key         string
	Hash        string
	RuntimeName string
	Kind        Kind
	Count       uint64
	Ingress     string
	Placement   Placement
	// Relaxed lets a count-2 record run unmirrored when there is no replica
	// to place it on (startup work on a node that is alone).
	Relaxed bool
	// Input is the encoded input of typed work, stored on the record.
	Input []byte
}

// Options configure a Registry.
type Options struct {
	Self   string // the local node name
	Role   Role
	Epoch  uint64
	Retain int // terminal records kept (when Store is nil); pending records are never evicted
	Diag   *Diagnostics
	Sink   func(Entry) // called for every entry, outside the lock
	// Persist is called before an authority change takes effect, and the
	// change is given up if it fails. It runs without the registry lock,
	// one call at a time (authority changes are serialized), so it may
	// write and sync a file while requests go on.
	Persist func(role Role, epoch uint64) error
	Now     func() time.Time
	// RoutineRoutes records the routine transitions of route records
	// (submit, replica_prepare, replica_ack, completed, duplicate) in the
	// diagnostics ring. Off, one request per transition would push every
	// failover event out of the ring within milliseconds under traffic;
	// refusals, rejections and every failover transition are always kept.
	RoutineRoutes bool

	// RetainBytes bounds the memory of the terminal records kept (their
	// stored responses above all), oldest evicted first; 0 means
	// DefaultRetainBytes. Pending records are never evicted.
	RetainBytes int64

	// Store holds the records. Nil means a MemoryStore within Retain and
	// RetainBytes. A store that already holds records (recovered on start)
	// is read once, and new attempts are numbered above its highest.
	Store Store
}

// Routine reports whether transition is a step every successful request
// goes through (as opposed to a refusal, a failure or a failover event).
func Routine(transition string) bool {
	switch transition {
	case TransitionSubmit, TransitionReplicaPrepare, TransitionReplicaAck, TransitionCompleted, TransitionDuplicate:
		return true
	}
	return false
}

// Registry is a node's continuity state: its records, its authority (role and
// promotion epoch) and the attempt counter. It holds the rules — placement,
// merge, transitions — and keeps the records in a Store. It never touches the
// network or the disk itself (Persist and the Store are the caller's), so
// every rule is testable in isolation. It is safe for concurrent use.
//
// Lock order: authMu, then mu, then deliverMu (and Diagnostics.mu). authMu
// serializes authority changes and is held while Persist runs; mu is not, so
// no disk or network I/O happens under mu.
type Registry struct {
	// authMu serializes authority changes (StepAuthority: fencing,
	// promotion, quarantine): the decision, the Persist call and the change
	// itself. Held
	// alone while Persist runs, so role and epoch cannot change between the
	// decision and the change. Taken before mu, never after.
	authMu sync.Mutex

	mu          sync.Mutex // guards every field below, and every call into store but Sync
	self        string
	auth        authority.Machine // role, epoch, fence generation, quarantine: written with authMu and mu held, by StepAuthority only
	role        Role              // mirrors auth's role; role, epoch and fenceGen are written with authMu held too
	epoch       uint64            // mirrors auth's promotion epoch
	fenceGen    uint64            // mirrors auth's fence generation
	store       Store             // the records: pending ones and the retained terminal ones
	mem         *MemoryStore      // store, when it is a MemoryStore: called without copying records through the interface
	nextAttempt atomic.Uint64     // written with mu held; Watermark reads it without
	aloneSlot   int               // -1, or the parity of attempts allocated while no peer is linked
	diag        *Diagnostics
	sink        func(Entry)
	persist     func(Role, uint64) error // called with authMu held, mu not held
	now         func() time.Time
	quietRoutes bool    // skip routine transitions of route records
	outbox      []Entry // entries to hand to sink after unlock

	// published mirrors role, epoch, fenceGen and the quarantine for the
	// lock-free reads of the request path; it is stored, with mu held,
	// whenever one changes.
	published atomic.Pointer[published]

	deliverMu  sync.Mutex // guards deliverQ, delivering and drained; taken after mu, never before
	deliverQ   []Entry
	delivering bool
	drained    chan struct{} // closed when the deliverer takes the queue; nil when nobody waits
}

// Backpressure on the sink. Entries wait in deliverQ while one goroutine
// hands them to the sink; when transitions outpace the sink (a slow log
// writer, a starved CPU) the queue would grow without bound. A goroutine
// whose unlock finds more than maxDeliverQueue entries waiting waits until
// the deliverer takes them, so producers slow to the sink's pace. The wait
// is bounded by deliverWaitMax, so a sink that calls back into the registry
// (allowed) while the queue is long stalls once, never deadlocks.
const (
	maxDeliverQueue = 4096
	deliverWaitMax  = 100 * time.Millisecond
)

// published is a consistent snapshot of a registry's role, epoch, fence
// generation and quarantine.
type published struct {
	role        Role
	epoch       uint64
	fenceGen    uint64
	quarantined bool
}

// publishLocked makes the current authority visible to lock-free readers.
func (r *Registry) publishLocked() {
	r.published.Store(&published{role: r.role, epoch: r.epoch, fenceGen: r.fenceGen, quarantined: r.auth.Quarantined()})
}

// NewRegistry returns a registry with the given authority over the records
// of o.Store (none, for a new MemoryStore).
func NewRegistry(o Options) *Registry {
	if o.Role == "" {
		o.Role = RolePrimary
	}
	if o.Diag == nil {
		o.Diag = NewDiagnostics(0)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Store == nil {
		o.Store = NewMemoryStore(Retention{Records: o.Retain, Bytes: o.RetainBytes})
	}
	r := &Registry{
		self: o.Self, role: o.Role, epoch: o.Epoch, store: o.Store,
		auth: authority.NewMachine(o.Self, authority.State{Role: string(o.Role), Epoch: o.Epoch}),
		diag: o.Diag, sink: o.Sink, persist: o.Persist, now: o.Now, quietRoutes: !o.RoutineRoutes,
		aloneSlot: -1,
	}
	if p, k := o.Store.Len(); p+k > 0 {
		// Records recovered on start: an attempt they hold is never
		// allocated again.
		for rec := range o.Store.List() {
			r.raiseAttemptLocked(rec.Attempt + 1)
		}
	}
	r.mem, _ = o.Store.(*MemoryStore)
	r.publishLocked()
	return r
}

func (r *Registry) lock() { r.mu.Lock() }

// unlock releases the lock and then hands queued entries to the sink, so the
// sink may log (or call back into the registry) without deadlock. Entries are
// queued for delivery before mu is released and delivered by one goroutine at
// a time, so the sink sees them in sequence order even when it calls back in.
func (r *Registry) unlock() {
	if len(r.outbox) == 0 || r.sink == nil {
		r.outbox = r.outbox[:0]
		r.mu.Unlock()
		return
	}
	r.deliverMu.Lock()
	r.deliverQ = append(r.deliverQ, r.outbox...)
	r.outbox = r.outbox[:0]
	r.mu.Unlock()
	if r.delivering {
		if len(r.deliverQ) <= maxDeliverQueue {
			r.deliverMu.Unlock()
			return
		}
		if r.drained == nil {
			r.drained = make(chan struct{})
		}
		drained := r.drained
		r.deliverMu.Unlock()
		t := time.NewTimer(deliverWaitMax)
		select {
		case <-drained:
		case <-t.C:
		}
		t.Stop()
		return
	}
	r.delivering = true
	for len(r.deliverQ) > 0 {
		batch := r.deliverQ
		r.deliverQ = nil
		if r.drained != nil {
			close(r.drained)
			r.drained = nil
		}
		r.deliverMu.Unlock()
		for _, e := range batch {
			r.sink(e)
		}
		r.deliverMu.Lock()
	}
	r.delivering = false
	r.deliverMu.Unlock()
}

// Self is the local node name.
func (r *Registry) Self() string { return r.self }

// Diagnostics returns the registry's diagnostic ring.
func (r *Registry) Diagnostics() *Diagnostics { return r.diag }

// Authority returns the local role and promotion epoch.
func (r *Registry) Authority() (Role, uint64) {
	a := r.published.Load()
	return a.role, a.epoch
}

// FenceGeneration changes every time another node's higher authority lowered
// ours. Work dispatched under one generation must not complete under another.
func (r *Registry) FenceGeneration() uint64 {
	return r.published.Load().fenceGen
}

// Quarantined reports whether the node's authority is in doubt after a
// pause (authority.Machine.Quarantined).
func (r *Registry) Quarantined() bool {
	return r.published.Load().quarantined
}

// Watermark is the next attempt number this registry would allocate.
func (r *Registry) Watermark() uint64 {
	return r.nextAttempt.Load()
}

// RaiseWatermark makes sure future attempts are numbered above w.
func (r *Registry) RaiseWatermark(w uint64) {
	if w <= r.nextAttempt.Load() {
		return // the common case, every upsert from the peer: nothing to raise
	}
	r.lock()
	defer r.unlock()
	r.raiseAttemptLocked(w)
}

// Get returns a copy of the record for key, projected into the local role.
func (r *Registry) Get(key string) (rec Record, ok bool) {
	r.lock()
	defer r.unlock()
	if !r.loadLocked(key, &rec) {
		return Record{}, false
	}
	rec.Role = r.role // as view does, without another copy
	return rec, true
}

// Records returns copies of every record sorted by request key.
func (r *Registry) Records() []Record {
	r.lock()
	defer r.unlock()
	pending, kept := r.store.Len()
	out := make([]Record, 0, pending+kept)
	for rec := range r.store.List() {
		out = append(out, r.view(&rec))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RequestKey < out[j].RequestKey })
	return out
}

// PendingRecords returns copies of the pending records sorted by request
// key: what recovery looks at, without decoding the retained ones.
func (r *Registry) PendingRecords() []Record {
	r.lock()
	defer r.unlock()
	pending, _ := r.store.Len()
	out := make([]Record, 0, pending)
	for rec := range r.store.Pending() { // in key order
		out = append(out, r.view(&rec))
	}
	return out
}

// PendingHealth aggregates replication health over pending records only:
// unavailable if any in-flight record lost its owner, degraded if any lost its
// mirror, otherwise local_only. Terminal records no longer need a mirror, so a
// past outage does not mark the node degraded forever.
func (r *Registry) PendingHealth() Health {
	r.lock()
	defer r.unlock()
	degraded := false
	for rec := range r.store.Pending() {
		switch rec.Health {
		case HealthUnavailable:
			return HealthUnavailable
		case HealthDegraded:
			degraded = true
		}
	}
	if degraded {
		return HealthDegraded
	}
	return HealthLocalOnly
}

func (r *Registry) view(rec *Record) Record {
	v := *rec
	v.Role = r.role
	return v
}

// getLocked returns a copy of the record stored under key. A change to it
// takes effect when it is stored again with putLocked.
func (r *Registry) getLocked(key string) (Record, bool) {
	var rec Record
	ok := r.loadLocked(key, &rec)
	return rec, ok
}

// loadLocked is getLocked into *rec, which must be zero, and is left zero
// when key is not stored. Transitions use it: a record is several hundred
// bytes, and every copy of it on the request path costs time and stack.
func (r *Registry) loadLocked(key string, rec *Record) bool {
	if r.mem != nil {
		return r.mem.get(key, rec)
	}
	return r.loadStoreLocked(key, rec)
}

// loadStoreLocked is loadLocked through the Store interface. It is kept out
// of line so that its copy of the record does not enlarge the stack frame of
// every transition when the store is a MemoryStore.
//
//go:noinline
func (r *Registry) loadStoreLocked(key string, rec *Record) bool {
	var ok bool
	*rec, ok = r.store.Get(key)
	return ok
}

// putLocked stores rec under its key, in place of whatever was stored; the
// store evicts the oldest terminal records beyond its budget. Pending records
// are never evicted. rec is copied: the caller may keep changing it.
func (r *Registry) putLocked(rec *Record) error {
	if r.mem != nil {
		r.mem.put(rec) // never fails
		return nil
	}
	return r.putStoreLocked(rec)
}

// putStoreLocked is putLocked through the Store interface, kept out of line
// as loadStoreLocked is.
//
//go:noinline
func (r *Registry) putStoreLocked(rec *Record) error {
	if err := r.store.Put(*rec); err != nil {
		return fmt.Errorf("store record %s: %w", rec.RequestKey, err)
	}
	return nil
}

// Submit records a new request, or reports a duplicate or conflict for a known
// key. A created record of count 2 still needs its replica's prepare (the
// caller sends it and reports with Prepared or Reject); counts of 3 or more and
// count 2 without a replica are rejected durably here.
func (r *Registry) Submit(req SubmitRequest) (dec Decision, err error) {
	err = r.SubmitTo(&req, &dec)
	return dec, err
}

// SubmitTo is Submit writing the decision to *dec (the zero Decision when it
// returns an error). The request path uses it: a decision holds a record of
// several hundred bytes, which every return by value through the layers
// above would copy again.
func (r *Registry) SubmitTo(req *SubmitRequest, dec *Decision) error {
	*dec = Decision{}
	switch {
	case req.Key == "":
		return reasonError(ReasonRequestKeyMissing)
	case req.Hash == "":
		return reasonError(ReasonPayloadHashMissing)
	case req.Placement.Owner == "":
		return reasonError(ReasonOwnerNodeMissing)
	case req.Count == 0:
		return reasonError(ReasonInvalidReplicationCount)
	case req.Placement.Replica != "" && req.Placement.Replica == req.Placement.Owner:
		return reasonError(ReasonReplicaMatchesOwner)
	}
	r.lock()
	defer r.unlock()
	// The record is worked on in place in the result, as in complete.
	rec := &dec.Record
	if r.loadLocked(req.Key, rec) {
		dec.Outcome = OutcomeDuplicate
		if rec.PayloadHash != req.Hash || !SameKeySpace(rec, req.Kind, req.RuntimeName) {
			r.emitRecord(TransitionConflict, rec, string(ReasonRequestKeyConflict))
			dec.Outcome = OutcomeConflict
		} else {
			r.emitRecord(TransitionDuplicate, rec, "")
		}
		rec.Role = r.role
		return nil
	}
	replica := req.Placement.Replica
	if req.Count < 2 {
		replica = "" // an unmirrored record has no replica to wait for
	}
	*rec = Record{
		RequestKey: req.Key, PayloadHash: req.Hash, Attempt: r.allocateAttemptLocked(),
		Phase: PhaseSubmitted, Result: ResultPending,
		IngressNode: req.Ingress, OwnerNode: req.Placement.Owner, ReplicaNode: replica,
		ReplicationCount: req.Count, ReplicaStatus: ReplicaUnassigned,
		Epoch: r.epoch, Health: HealthLocalOnly,
		RoutedRemotely: req.Placement.Owner != req.Ingress, RuntimeName: req.RuntimeName,
		Kind: req.Kind, SubmittedAt: r.now().UTC(), Input: req.Input,
	}
	rec.FellBackLocally = !rec.RoutedRemotely
	if replica != "" {
		rec.ReplicaStatus = ReplicaPreparing
	}
	if err := r.putLocked(rec); err != nil {
		*dec = Decision{}
		return err
	}
	r.emitRecord(TransitionSubmit, rec, "", KV{"required_replicas", strconv.FormatUint(req.Count-1, 10)})
	var refusal Reason
	switch {
	case req.Count > 2:
		refusal = UnsupportedReplicationCount(req.Count)
	case req.Count == 2 && replica == "" && !req.Relaxed:
		refusal = ReasonReplicaRequiredUnavailable
	default:
		dec.Outcome = OutcomeCreated
		rec.Role = r.role
		return nil
	}
	if err := r.rejectLocked(rec, string(refusal), true); err != nil {
		*dec = Decision{}
		return err
	}
	dec.Outcome = OutcomeRejected
	rec.Role = r.role
	return nil
}

// Prepared records the replica's acknowledgement of a prepare: the record is
// mirrored and healthy.
func (r *Registry) Prepared(key string, attempt uint64) (kept Record, err error) {
	r.lock()
	defer r.unlock()
	rec := &kept // worked on in place, as in complete
	if !r.loadLocked(key, rec) {
		return Record{}, reasonError(ReasonRequestKeyNotFound)
	}
	if rec.Attempt != attempt {
		return Record{}, reasonError(ReasonAttemptMismatch)
	}
	if rec.ReplicaNode == "" || rec.Phase == PhaseRejected ||
		rec.ReplicaStatus == ReplicaDegradedContinuing || rec.ReplicaStatus == ReplicaOwnerLost {
		rec.Role = r.role
		return kept, nil
	}
	rec.ReplicaStatus = ReplicaMirrored
	rec.Health = HealthHealthy
	rec.Error = ""
	if err := r.putLocked(rec); err != nil {
		return Record{}, err
	}
	r.emitRecord(TransitionReplicaAck, rec, "")
	rec.Role = r.role
	return kept, nil
}

// MirrorPrepare stores a record the owner asks this node to mirror. The local
// node must be the record's replica, and a known key must agree on hash,
// attempt and owner.
func (r *Registry) MirrorPrepare(in Record) (kept Record, err error) {
	if err := validate(&in); err != nil {
		return Record{}, err
	}
	r.lock()
	defer r.unlock()
	if in.ReplicaNode != r.self {
		return Record{}, reasonError(ReasonReplicaTargetMismatch)
	}
	old := &kept // loaded in place in the result, as in complete
	if r.loadLocked(in.RequestKey, old) {
		switch {
		case old.PayloadHash != in.PayloadHash:
			return Record{}, reasonError(ReasonRequestKeyConflict)
		case old.Phase == PhaseCompleted && !sameAttempt(old, &in):
			// The request already completed here: a new attempt of it comes
			// from an ingress that has not seen the outcome yet, and must
			// not run it again (merge keeps the completed attempt anyway).
			old.Role = r.role
			return kept, reasonError(ReasonAlreadyCompleted)
		case old.Epoch > in.Epoch || (old.Epoch == in.Epoch && old.Attempt > in.Attempt):
			return Record{}, reasonError(ReasonAttemptMismatch)
		case old.Epoch == in.Epoch && old.Attempt == in.Attempt && old.OwnerNode != in.OwnerNode:
			return Record{}, reasonError(ReasonOwnerNodeMismatch)
		case old.Epoch == in.Epoch && old.Attempt == in.Attempt && old.Phase.Terminal():
			// Already mirrored and finished: a repeated prepare changes nothing.
			old.Role = r.role
			return kept, nil
		}
	}
	rec := &in // in is this call's own copy
	rec.ReplicaStatus = ReplicaMirrored
	rec.Health = HealthHealthy
	r.raiseAttemptLocked(in.Attempt + 1)
	if err := r.putLocked(rec); err != nil {
		return Record{}, err
	}
	r.emitRecord(TransitionReplicaPrepare, rec, "")
	kept = *rec
	kept.Role = r.role
	return kept, nil
}

// Complete ends the current attempt of key as completed on node. gen is the
// fence generation the work was dispatched under: if another node's authority
// has lowered ours since, the attempt is superseded and completion is refused.
func (r *Registry) Complete(key string, attempt uint64, node string, gen uint64) (Record, error) {
	return r.CompleteWithResponse(key, attempt, node, gen, nil)
}

// CompleteWithResponse is Complete that also keeps resp, the encoded
// response of a clustered route, on the record for idempotent replay. A
// completion that is refused stores nothing.
func (r *Registry) CompleteWithResponse(key string, attempt uint64, node string, gen uint64, resp []byte) (Record, error) {
	return r.complete(key, attempt, node, gen, resp, nil)
}

// CompleteWithOutput is Complete that also keeps out, the encoded output of
// typed declared work, on the record. A completion that is refused stores
// nothing.
func (r *Registry) CompleteWithOutput(key string, attempt uint64, node string, gen uint64, out []byte) (Record, error) {
	return r.complete(key, attempt, node, gen, nil, out)
}

func (r *Registry) complete(key string, attempt uint64, node string, gen uint64, resp, out []byte) (kept Record, err error) {
	r.lock()
	defer r.unlock()
	// The record is worked on in place in the result: a record is several
	// hundred bytes, and copies of it cost time and stack on the request
	// path. Its role is projected (as view does) once nothing stores it.
	rec := &kept
	if !r.loadLocked(key, rec) {
		return Record{}, reasonError(ReasonRequestKeyNotFound)
	}
	var refusal Reason
	switch {
	case node == "":
		refusal = ReasonExecutionNodeMissing
	case rec.Attempt != attempt:
		refusal = ReasonAttemptMismatch
	case gen != r.fenceGen:
		refusal = ReasonFenced
	case rec.Phase == PhaseCompleted && rec.ExecutionNode == node:
		rec.Role = r.role
		return kept, nil
	case rec.Phase == PhaseCompleted:
		refusal = ReasonAlreadyCompleted
	case rec.Phase == PhaseRejected:
		refusal = ReasonPhase
	}
	if refusal != "" {
		r.emitRecord(TransitionCompletionRejected, rec, string(refusal),
			KV{"attempted_attempt_id", FormatAttempt(attempt)}, KV{"active_attempt_id", rec.AttemptID()})
		rec.Role = r.role
		return kept, reasonError(refusal)
	}
	rec.Phase, rec.Result = PhaseCompleted, ResultSucceeded
	rec.ExecutionNode = node
	rec.Error = ""
	if resp != nil {
		rec.Response = resp
	}
	if out != nil {
		rec.Output = out
	}
	rec.CompletedAt = r.now().UTC()
	if err := r.putLocked(rec); err != nil {
		return Record{}, err
	}
	r.emitRecord(TransitionCompleted, rec, "")
	rec.Role = r.role
	return kept, nil
}

// Reject ends the current attempt of key as rejected with reason: the
// attempt ran, or was acknowledged and cannot run any more.
func (r *Registry) Reject(key string, attempt uint64, reason string) (Record, error) {
	return r.reject(key, attempt, reason, false)
}

// Refuse ends the current attempt of key as rejected with reason, marked
// Refused: the ingress is refusing it before any client was told it was
// accepted, and it never ran (a failed prepare or dispatch, a route request
// the ingress could not serve).
func (r *Registry) Refuse(key string, attempt uint64, reason string) (Record, error) {
	return r.reject(key, attempt, reason, true)
}

func (r *Registry) reject(key string, attempt uint64, reason string, refused bool) (Record, error) {
	r.lock()
	defer r.unlock()
	rec, err := r.lookupLocked(key, attempt)
	if err != nil {
		return Record{}, err
	}
	switch rec.Phase {
	case PhaseCompleted:
		return r.view(&rec), reasonError(ReasonAlreadyCompleted)
	case PhaseRejected:
		return r.view(&rec), nil
	}
	if err := r.rejectLocked(&rec, reason, refused); err != nil {
		return Record{}, err
	}
	return r.view(&rec), nil
}

// lookupLocked returns a copy of the record stored under key, which must be
// at attempt.
func (r *Registry) lookupLocked(key string, attempt uint64) (rec Record, err error) {
	if !r.loadLocked(key, &rec) {
		return Record{}, reasonError(ReasonRequestKeyNotFound)
	}
	if rec.Attempt != attempt {
		return Record{}, reasonError(ReasonAttemptMismatch)
	}
	return rec, nil
}

// rejectLocked ends rec as rejected and stores it. Every rejection carries a
// reason: one that arrives empty is a defect, stored as reason_unspecified so
// that no record or refusal ever leaves the node without one.
func (r *Registry) rejectLocked(rec *Record, reason string, refused bool) error {
	if reason == "" {
		reason = string(ReasonUnspecified)
	}
	rec.Phase, rec.Result = PhaseRejected, ResultRejected
	rec.ReplicaStatus = ReplicaRejected
	rec.Health = HealthUnavailable
	rec.Error = reason
	rec.Refused = refused
	rec.CompletedAt = r.now().UTC()
	if err := r.putLocked(rec); err != nil {
		return err
	}
	r.emitRecord(TransitionRejected, rec, reason)
	return nil
}

// Merge folds a record received from a peer into the local state and reports
// whether the stored record changed. Which of two versions of a key is kept
// is decided by prefer, a deterministic choice over every field but the
// local role: both nodes keep the same version whichever way the two meet,
// so exchanging snapshots converges. A version that loses on epoch comes
// from a superseded primary and is recorded as stale_epoch_rejected.
func (r *Registry) Merge(in Record, from string) (Record, bool, error) {
	m, err := r.MergeOutcome(in, from)
	return m.Kept, m.Changed, err
}

// MergeResult is what MergeOutcome did with a peer's record.
type MergeResult struct {
	Kept    Record // the version now stored, projected into the local role
	Changed bool   // the peer's version replaced the local one (or was new)
	// ReplacedOther is set when the peer's version replaced a local version
	// of another attempt. Versions of one key are not totally ordered over
	// time (a pending attempt outranks a refused one, and is outranked once
	// it is refused itself), so a node that switches attempts tells its peer,
	// which may have given up the version it now keeps.
	ReplacedOther bool
}

// MergeOutcome is Merge, reporting also whether another attempt was
// replaced.
func (r *Registry) MergeOutcome(in Record, from string) (m MergeResult, err error) {
	if err := validate(&in); err != nil {
		return MergeResult{}, err
	}
	r.lock()
	defer r.unlock()
	r.raiseAttemptLocked(in.Attempt + 1)
	old := &m.Kept // loaded in place in the result, as in complete
	if !r.loadLocked(in.RequestKey, old) {
		if err := r.putLocked(&in); err != nil {
			return MergeResult{}, err
		}
		*old = in
		old.Role = r.role
		m.Changed = true
		return m, nil
	}
	if old.PayloadHash != in.PayloadHash {
		old.Role = r.role
		return m, reasonError(ReasonRequestKeyConflict)
	}
	if !prefer(&in, old) {
		if in.Epoch < old.Epoch && (in.Attempt != old.Attempt || in.Phase != old.Phase) {
			r.emitRecord(TransitionStaleEpochRejected, old, string(ReasonStaleEpoch),
				KV{"incoming_attempt_id", in.AttemptID()}, KV{"incoming_epoch", strconv.FormatUint(in.Epoch, 10)},
				KV{"local_epoch", strconv.FormatUint(old.Epoch, 10)}, KV{"from_node", from})
		}
		old.Role = r.role
		return m, nil
	}
	other := !sameAttempt(old, &in)
	if err := r.putLocked(&in); err != nil {
		return MergeResult{}, err
	}
	*old = in
	old.Role = r.role
	m.Changed, m.ReplacedOther = true, other
	return m, nil
}

// prefer reports whether a should replace b, two versions of one key. The
// order, first difference decides:
//
//  1. Acknowledged work over a refusal: between two different attempts, one
//     of them refused at submission (Record.Refused), the other is kept,
//     whatever their epochs and attempt numbers, unless it is still
//     undecided (its prepare unanswered: nothing was acknowledged yet). A refused attempt never ran
//     and nobody was told it was accepted; the other one may have been
//     acknowledged to a client, and must not be lost for it. (For one
//     attempt seen twice, the refusal is the fact: a replica's mirrored copy
//     of an attempt whose prepare the ingress then refused is not work.)
//  2. A completed attempt over a different attempt that did not complete.
//     A request completes at most once per key: its first completed
//     outcome is the one clients were given and the one replays must
//     repeat. A later attempt of a completed request only ever comes from a
//     node that did not yet know the outcome (a retry that reached the
//     other node before the completion did, or a recovery of a copy whose
//     completion was still on its way); it must not replace the outcome and
//     run the request again.
//  3. The higher epoch.
//  4. The higher attempt.
//  5. A terminal phase over a pending one; completed over rejected.
//  6. The further replica status, then the better health.
//  7. Otherwise the greater canonical encoding (compareRecords), so that
//     two different versions are never left as a tie each node resolves
//     its own way. Only the local role is ignored.
//
// For any two versions a and b that differ in more than the role, exactly
// one of prefer(a, b) and prefer(b, a) holds, so both nodes keep the same one.
func prefer(a, b *Record) bool {
	if a.Refused != b.Refused && !sameAttempt(a, b) && !undecided(a) && !undecided(b) {
		return !a.Refused
	}
	if ca, cb := a.Phase == PhaseCompleted, b.Phase == PhaseCompleted; ca != cb && !sameAttempt(a, b) {
		return ca
	}
	if a.Epoch != b.Epoch {
		return a.Epoch > b.Epoch
	}
	if a.Attempt != b.Attempt {
		return a.Attempt > b.Attempt
	}
	if a.Phase.Terminal() != b.Phase.Terminal() {
		return a.Phase.Terminal()
	}
	if a.Phase != b.Phase && a.Phase.Terminal() {
		// Both ended, differently: the attempt ran to completion on its
		// owner, which is the fact to keep (an ingress may have given up on
		// it first).
		return a.Phase == PhaseCompleted
	}
	if ra, rb := statusRank(a.ReplicaStatus), statusRank(b.ReplicaStatus); ra != rb {
		return ra > rb
	}
	if ha, hb := healthRank(a.Health), healthRank(b.Health); ha != hb {
		return ha > hb
	}
	return compareRecords(a, b) > 0
}

// undecided reports whether r is an attempt whose ingress has not yet heard
// its replica's answer to the prepare: nobody has been told it was accepted,
// so it has no acknowledged work for rule 1 of prefer to protect. (Given that
// protection, an undecided attempt would outrank a refusal that in turn
// outranks the same attempt once refused, and the order in which versions
// arrive would decide what a node keeps.)
func undecided(r *Record) bool {
	return r.Phase == PhaseSubmitted && r.ReplicaStatus == ReplicaPreparing
}

// sameAttempt reports whether a and b are two copies of one attempt: the
// same number, allocated by the same ingress at the same epoch and instant
// (SubmittedAt travels with every copy). Two nodes cut off from each other
// number their attempts independently, and a node restarted without its
// records may number one again, so equal numbers alone do not make one
// attempt.
func sameAttempt(a, b *Record) bool {
	return a.Attempt == b.Attempt && a.Epoch == b.Epoch && a.IngressNode == b.IngressNode &&
		a.SubmittedAt.Equal(b.SubmittedAt)
}

// SameVersion reports whether a and b are the same version of a record:
// equal in every field but the local role.
func SameVersion(a, b Record) bool { return compareRecords(&a, &b) == 0 }

// compareRecords is a total order over every field of a record except the
// local role: 0 only for records equal in all of them.
func compareRecords(a, b *Record) int {
	return cmp.Or(
		cmp.Compare(a.RequestKey, b.RequestKey),
		cmp.Compare(a.PayloadHash, b.PayloadHash),
		cmp.Compare(a.Attempt, b.Attempt),
		cmp.Compare(a.Epoch, b.Epoch),
		cmp.Compare(a.Phase, b.Phase),
		cmp.Compare(a.Result, b.Result),
		cmp.Compare(a.IngressNode, b.IngressNode),
		cmp.Compare(a.OwnerNode, b.OwnerNode),
		cmp.Compare(a.ReplicaNode, b.ReplicaNode),
		cmp.Compare(a.ReplicationCount, b.ReplicationCount),
		cmp.Compare(a.ReplicaStatus, b.ReplicaStatus),
		cmp.Compare(a.Health, b.Health),
		cmp.Compare(a.ExecutionNode, b.ExecutionNode),
		compareBool(a.RoutedRemotely, b.RoutedRemotely),
		compareBool(a.FellBackLocally, b.FellBackLocally),
		cmp.Compare(a.Error, b.Error),
		cmp.Compare(a.RuntimeName, b.RuntimeName),
		cmp.Compare(a.Kind, b.Kind),
		a.SubmittedAt.Compare(b.SubmittedAt),
		a.CompletedAt.Compare(b.CompletedAt),
		bytes.Compare(a.Response, b.Response), // nil and empty alike, as on the wire
		compareBool(a.Refused, b.Refused),
		bytes.Compare(a.Input, b.Input), // nil and empty alike, as on the wire
		bytes.Compare(a.Output, b.Output),
	)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func statusRank(s ReplicaStatus) int {
	switch s {
	case ReplicaPreparing:
		return 1
	case ReplicaMirrored:
		return 2
	case ReplicaOwnerLost:
		return 3
	case ReplicaDegradedContinuing:
		return 4
	case ReplicaRejected:
		return 5
	}
	return 0
}

func healthRank(h Health) int {
	switch h {
	case HealthUnavailable:
		return 1
	case HealthDegraded:
		return 2
	case HealthHealthy:
		return 3
	}
	return 0
}

// ObserveAuthority applies a peer's authority. A higher epoch fences the local
// node to standby at that epoch; two primaries at one epoch resolve to the
// node whose name sorts first, so a pair always settles on one primary. It
// reports whether the local authority changed. trigger, when known, names the
// record that carried the higher epoch.
func (r *Registry) ObserveAuthority(peer string, peerRole Role, peerEpoch uint64, trigger *Record) (bool, error) {
	eff, err := r.StepAuthority(authority.Observed{Peer: peer, Role: string(peerRole), Epoch: peerEpoch}, trigger)
	return eff.Fenced != nil, err
}

// FencedBy reports whether observing peer's role and epoch would fence the
// local node (authority.FencedBy over the published authority), without a
// lock: every message from a peer carries its authority, and almost none of
// them changes anything. When it reports false, an authority.Observed step
// with the same values changes nothing and has no effects.
func (r *Registry) FencedBy(peer string, peerRole Role, peerEpoch uint64) bool {
	a := r.published.Load()
	return authority.FencedBy(r.self, authority.State{Role: string(a.role), Epoch: a.epoch}, peer, string(peerRole), peerEpoch)
}

// Promote makes the local standby the primary at epoch+1 and returns the new
// epoch. The caller decides whether promotion is safe.
func (r *Registry) Promote(lost string) (uint64, error) {
	_, epoch := r.Authority()
	return r.PromoteAt(lost, epoch+1)
}

// PromoteAt makes the local standby the primary at epoch, an epoch an
// arbiter granted, and returns it. It fails when the node is not a standby,
// is quarantined (the loss is then deferred), or epoch is not above the
// local one.
func (r *Registry) PromoteAt(lost string, epoch uint64) (uint64, error) {
	eff, err := r.StepAuthority(authority.Promote{Lost: lost, Epoch: epoch}, nil)
	if err == nil {
		err = eff.Err
	}
	_, now := r.Authority()
	return now, err
}

// StepAuthority applies one event to the node's authority machine and
// returns its effects for the engine to carry out (wake waiters, ping peers,
// act on a deferred loss). Steps are serialized by authMu; a change of role
// or epoch is persisted (Options.Persist) with authMu held and mu not held,
// before it takes effect, so the write and sync of the authority file never
// hold up the requests going through the registry. When the persist fails
// the machine is left as it was and the error returned. The diagnostics of
// a fencing, promotion, quarantine or release are recorded here, stamped
// with the authority after the step. trigger, when known, names the record
// that carried a peer's higher epoch.
func (r *Registry) StepAuthority(ev authority.Event, trigger *Record) (authority.Effects, error) {
	if o, ok := ev.(authority.Observed); ok && !r.FencedBy(o.Peer, Role(o.Role), o.Epoch) {
		return authority.Effects{}, nil // the common case, decided without the locks
	}
	r.authMu.Lock()
	next, eff := r.auth.Step(ev) // auth changes only under authMu: the decision holds until it is applied
	if eff.Persist != nil {
		if err := r.persistAuthority(Role(eff.Persist.Role), eff.Persist.Epoch); err != nil {
			r.authMu.Unlock()
			return authority.Effects{}, err
		}
	}
	r.lock()
	defer r.unlock()
	r.auth = next
	st := next.State()
	r.role, r.epoch, r.fenceGen = Role(st.Role), st.Epoch, next.FenceGen()
	r.publishLocked()
	r.authMu.Unlock() // published: the next change may be decided; entries are delivered without it
	if c := eff.Fenced; c != nil {
		e := Entry{Transition: TransitionFencedRejoin, Reason: c.Reason}
		if trigger != nil {
			e = r.recordEntry(TransitionFencedRejoin, trigger, c.Reason)
		}
		e.Metadata = append([]KV{{"previous_role", c.Prev.Role}, {"previous_epoch", strconv.FormatUint(c.Prev.Epoch, 10)},
			{"next_role", c.Next.Role}, {"next_epoch", strconv.FormatUint(c.Next.Epoch, 10)}, {"fenced_by", c.Peer}}, e.Metadata...)
		r.emit(e)
	}
	if c := eff.Promoted; c != nil && c.Reason == authority.ReasonSwitchover {
		r.emit(Entry{Transition: TransitionSwitchoverPromoted, Reason: authority.ReasonSwitchover, Metadata: []KV{
			{"previous_role", c.Prev.Role}, {"previous_epoch", strconv.FormatUint(c.Prev.Epoch, 10)},
			{"next_epoch", strconv.FormatUint(c.Next.Epoch, 10)}, {"previous_primary", c.Peer}}})
	} else if c != nil {
		r.emit(Entry{Transition: TransitionPromote, Metadata: []KV{
			{"previous_role", c.Prev.Role}, {"previous_epoch", strconv.FormatUint(c.Prev.Epoch, 10)},
			{"next_epoch", strconv.FormatUint(c.Next.Epoch, 10)}, {"disconnected_node", c.Peer}}})
	}
	if c := eff.SteppedDown; c != nil {
		r.emit(Entry{Transition: TransitionSwitchoverSteppedDown, Reason: authority.ReasonSwitchover, Metadata: []KV{
			{"previous_role", c.Prev.Role}, {"previous_epoch", strconv.FormatUint(c.Prev.Epoch, 10)},
			{"next_role", c.Next.Role}, {"next_epoch", strconv.FormatUint(c.Next.Epoch, 10)}, {"next_primary", c.Peer}}})
	}
	if q := eff.Quarantined; q != nil {
		r.emit(Entry{Transition: TransitionQuarantined, Reason: string(ReasonQuarantined),
			Metadata: []KV{{"pause_ms", strconv.FormatInt(q.Gap.Milliseconds(), 10)}}})
	}
	if eff.Released != "" {
		r.emit(Entry{Transition: TransitionQuarantineReleased, Metadata: []KV{{"confirmed_by", eff.Released}}})
	}
	return eff, nil
}

// persistAuthority hands a new authority to Persist before it takes effect.
// It is called with authMu held and mu not held.
func (r *Registry) persistAuthority(role Role, epoch uint64) error {
	if r.persist == nil {
		return nil
	}
	if err := r.persist(role, epoch); err != nil {
		return fmt.Errorf("persist authority %s@%d: %w", role, epoch, err)
	}
	return nil
}

// SetAloneSlot tells the registry whether its node has a linked peer. While
// slot is 0 or 1 (no peer is linked) attempts are allocated only with that
// parity; -1 (linked) allocates the next number. Two nodes cut off from each
// other start from the same watermark and would hand out the same numbers,
// so one request retried on both sides of a cut would run twice under one
// attempt id: with a slot each (the node whose name sorts first takes 0),
// the two sides' numbers never meet. Linked nodes see each other's
// watermarks and need no slot.
func (r *Registry) SetAloneSlot(slot int) {
	r.lock()
	defer r.unlock()
	r.aloneSlot = slot
}

// allocateAttemptLocked returns the next attempt number and moves the
// watermark past it, keeping the parity of the alone slot if one is set.
func (r *Registry) allocateAttemptLocked() uint64 {
	n := r.nextAttempt.Load()
	if r.aloneSlot >= 0 && n%2 != uint64(r.aloneSlot) {
		n++
	}
	r.nextAttempt.Store(n + 1)
	return n
}

// raiseAttemptLocked makes sure the next attempt allocated is at least w.
func (r *Registry) raiseAttemptLocked(w uint64) {
	if w > r.nextAttempt.Load() {
		r.nextAttempt.Store(w)
	}
}

// NodeLost applies the loss of node to every pending record, in key order,
// and returns the pending work records the lost node owned, which must be
// re-run elsewhere. Records it mirrored for us continue degraded. A record
// the store cannot take is left as it was and not returned.
func (r *Registry) NodeLost(node string) []Record {
	r.lock()
	defer r.unlock()
	var orphaned, pending []Record
	for rec := range r.store.Pending() {
		if rec.OwnerNode == node || rec.ReplicaNode == node && rec.OwnerNode == r.self {
			pending = append(pending, rec)
		}
	}
	for i := range pending {
		rec := &pending[i]
		var transition string
		switch {
		case rec.OwnerNode == node && r.role == RoleStandby:
			rec.Health = HealthDegraded
			rec.Error = "replication_source_lost:" + node
			transition = TransitionReplicationSourceLost
		case rec.OwnerNode == node:
			rec.ReplicaStatus = ReplicaOwnerLost
			rec.Health = HealthUnavailable
			rec.Error = "owner_lost:" + node
			transition = TransitionOwnerLost
		default: // the lost node was the replica of a record this node owns
			rec.ReplicaStatus = ReplicaDegradedContinuing
			rec.Health = HealthDegraded
			rec.Error = "replica_lost:" + node
			transition = TransitionDegraded
		}
		if r.putLocked(rec) != nil {
			continue
		}
		r.emitRecord(transition, rec, rec.Error)
		if rec.OwnerNode == node {
			orphaned = append(orphaned, r.view(rec))
		}
	}
	return orphaned
}

// Rollover re-assigns the pending record key, whose owner was lost, to the
// local node under a new attempt at the current epoch. prev must be the attempt
// the caller saw, so two recoveries of one record cannot both roll it over.
func (r *Registry) Rollover(key string, prev uint64) (Record, error) {
	r.lock()
	defer r.unlock()
	rec, err := r.lookupLocked(key, prev)
	if err != nil {
		return Record{}, err
	}
	if !rec.Pending() {
		return r.view(&rec), reasonError(ReasonAlreadyCompleted)
	}
	prevOwner := rec.OwnerNode
	rec.Attempt = r.allocateAttemptLocked()
	rec.Epoch = r.epoch
	rec.OwnerNode, rec.ReplicaNode, rec.IngressNode = r.self, "", r.self
	rec.ReplicaStatus, rec.Health, rec.Error = ReplicaUnassigned, HealthLocalOnly, ""
	rec.RoutedRemotely, rec.FellBackLocally = false, true
	rec.ExecutionNode = ""
	rec.SubmittedAt = r.now().UTC()
	if err := r.putLocked(&rec); err != nil {
		return Record{}, err
	}
	r.emitRecord(TransitionRecoveryRollover, &rec, "",
		KV{"previous_attempt_id", FormatAttempt(prev)}, KV{"next_attempt_id", rec.AttemptID()},
		KV{"previous_owner", prevOwner}, KV{"next_owner", r.self}, KV{"next_replica", ""})
	return r.view(&rec), nil
}

// RetryAttempt moves the pending record key, whose attempt prev this node
// ran and which returned an error, to a new attempt at the current epoch
// that this node runs again: declared work with a retry option. Owner and
// replica stay; the node is the new attempt's ingress, as it allocated it.
// meta is added to the work_retry diagnostic.
func (r *Registry) RetryAttempt(key string, prev uint64, meta ...KV) (Record, error) {
	r.lock()
	defer r.unlock()
	rec, err := r.lookupLocked(key, prev)
	if err != nil {
		return Record{}, err
	}
	if !rec.Pending() {
		return r.view(&rec), reasonError(ReasonAlreadyCompleted)
	}
	if rec.OwnerNode != r.self {
		return r.view(&rec), reasonError(ReasonOwnerNodeMismatch)
	}
	rec.Attempt = r.allocateAttemptLocked()
	rec.Epoch = r.epoch
	rec.IngressNode = r.self
	rec.ExecutionNode, rec.Error = "", ""
	rec.SubmittedAt = r.now().UTC()
	if err := r.putLocked(&rec); err != nil {
		return Record{}, err
	}
	r.emitRecord(TransitionWorkRetry, &rec, "",
		append([]KV{{"previous_attempt_id", FormatAttempt(prev)}, {"next_attempt_id", rec.AttemptID()}}, meta...)...)
	return r.view(&rec), nil
}

// Emit records a node-level diagnostic, stamping it with the local authority
// when the entry does not carry one.
func (r *Registry) Emit(e Entry) Entry {
	r.lock()
	defer r.unlock()
	return r.emit(e)
}

// EmitRecord records a diagnostic derived from rec.
func (r *Registry) EmitRecord(transition string, rec Record, reason string, meta ...KV) {
	r.lock()
	defer r.unlock()
	r.emitRecord(transition, &rec, reason, meta...)
}

func (r *Registry) emit(e Entry) Entry {
	if e.ClusterRole == "" {
		e.ClusterRole = r.role
		e.PromotionEpoch = r.epoch
	}
	e.Time = r.now().UTC()
	e = r.diag.Add(e)
	r.outbox = append(r.outbox, e)
	return e
}

func (r *Registry) emitRecord(transition string, rec *Record, reason string, meta ...KV) {
	if r.quietRoutes && rec.Kind == KindRoute && Routine(transition) && reason == "" { // a routine step with a reason is a refusal: kept
		return
	}
	e := r.recordEntry(transition, rec, reason)
	e.Metadata = append(append(make([]KV, 0, len(meta)+len(e.Metadata)), meta...), e.Metadata...)
	r.emit(e)
}

func (r *Registry) recordEntry(transition string, rec *Record, reason string) Entry {
	if reason == "" {
		reason = rec.Error
	}
	e := Entry{
		Transition: transition, RequestKey: rec.RequestKey, AttemptID: rec.AttemptID(),
		OwnerNode: rec.OwnerNode, ReplicaNode: rec.ReplicaNode, ExecutionNode: rec.ExecutionNode,
		ClusterRole: r.role, PromotionEpoch: r.epoch,
		ReplicationHealth: rec.Health, ReplicaStatus: rec.ReplicaStatus, Reason: reason, Kind: rec.Kind,
		Metadata: []KV{
			{"phase", string(rec.Phase)}, {"result", string(rec.Result)},
			{"replication_count", strconv.FormatUint(rec.ReplicationCount, 10)},
		},
	}
	if rec.RuntimeName != "" {
		e.Metadata = append(e.Metadata, KV{"declared_handler_runtime_name", rec.RuntimeName})
	}
	return e
}
