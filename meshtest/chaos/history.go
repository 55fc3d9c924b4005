// Package chaos checks the recorded history of a chaos soak: what clients
// were told, what really ran (the side-effect log), what the nodes reported
// while faults were injected, and the continuity records both nodes hold
// once the pair has healed. It is pure: it reads a History value and returns
// a Report, so every class of violation can be shown to be caught by
// injecting it into a recorded history.
//
// "How to break it" lives in the soak runner (e2e/chaos); this package only
// answers "is it still correct".
package chaos

import (
	"encoding/json"
	"time"
)

// Kinds of request a soak client sends; the side-effect log uses the same
// names.
const (
	KindRoute2 = "route2" // a Clustered(2) route, keyed by Idempotency-Key
	KindRoute1 = "route1" // a Clustered(1) route, keyed by Idempotency-Key
	KindWork   = "work"   // Node.Submit of declared work under a client key
)

// Submission outcomes and record phases as the chaos app reports them.
const (
	outcomeCreated   = "created"
	outcomeDuplicate = "duplicate"
	outcomeRejected  = "rejected"
	phaseSubmitted   = "submitted"
	phaseCompleted   = "completed"
)

// Op is one client request and what the client saw. Status 0 means no HTTP
// answer: Timeout says the client gave up after History.HungBound, Err holds
// a transport error (connection refused or reset, typically a killed node).
type Op struct {
	Client  int       `json:"client"`
	Node    string    `json:"node"` // the node asked
	Kind    string    `json:"kind"`
	Key     string    `json:"key"`
	Payload string    `json:"payload"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Status  int       `json:"status"`
	// Body is the answer's body, BodyHash its SHA-256 (hex).
	Body     string `json:"body,omitempty"`
	BodyHash string `json:"body_hash,omitempty"`
	// Outcome and Phase are set for work (Submit); Attempt for work and for
	// a route's 2xx (the attempt the handler ran under); Reason for any
	// refusal (the "error" of the JSON body).
	Outcome string `json:"outcome,omitempty"`
	Phase   string `json:"phase,omitempty"`
	Attempt string `json:"attempt,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Timeout bool   `json:"timeout,omitempty"`
	Err     string `json:"err,omitempty"`
}

// Answered reports whether the client got an HTTP answer.
func (o Op) Answered() bool { return o.Status != 0 }

// Acknowledged reports whether the answer told the client its request was
// accepted: a 2xx from a route (a first execution or a replay), or a Submit
// answered created or duplicate while the record was submitted or completed.
// A duplicate of a rejected record, a conflict and every refusal are not.
func (o Op) Acknowledged() bool {
	if o.Status < 200 || o.Status > 299 {
		return false
	}
	if o.Kind != KindWork {
		return true
	}
	return (o.Outcome == outcomeCreated || o.Outcome == outcomeDuplicate) &&
		(o.Phase == phaseSubmitted || o.Phase == phaseCompleted)
}

// refusal reports whether the answer refused the request (any non-2xx HTTP
// answer, or a Submit rejection).
func (o Op) refusal() bool {
	return o.Answered() && (o.Status >= 300 || o.Outcome == outcomeRejected)
}

// Effect is one line of the side-effect log: one execution of a route
// handler or of declared work.
type Effect struct {
	Kind    string    `json:"kind"`
	Key     string    `json:"key"`
	Attempt string    `json:"attempt"`
	Epoch   uint64    `json:"epoch"`
	Node    string    `json:"node"`
	Time    time.Time `json:"time"`
}

// StatusObs is one successful `meshc cluster status` of a node: asked at
// Asked, answered by Time. Queries of one node may overlap, so only a query
// asked after another was answered is known to have seen a later state.
type StatusObs struct {
	Asked time.Time `json:"asked"`
	Time  time.Time `json:"time"`
	Node  string    `json:"node"`
	Role  string    `json:"role"`
	Epoch uint64    `json:"epoch"`
	Peers int       `json:"peers"`
}

// Fault kinds the runner injects.
const (
	FaultKillPrimary   = "kill-primary"
	FaultKillStandby   = "kill-standby"
	FaultFreezePrimary = "freeze-primary"
	FaultPartition     = "partition"
)

// Fault is one injected fault: Node was killed (and restarted), frozen (and
// resumed) or cut off, from Start to End. Reformed says the pair re-formed
// (both nodes answer, see each other, one primary at one epoch) within the
// runner's bound afterwards.
type Fault struct {
	Kind     string    `json:"kind"`
	Node     string    `json:"node"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Reformed bool      `json:"reformed"`
	// Formed is when the runner saw the pair formed again after End (zero
	// when it did not within its bound).
	Formed time.Time `json:"formed,omitzero"`
	Detail string    `json:"detail,omitempty"`
}

// Record is one continuity record as `meshc cluster continuity <node>
// --json` printed it: JSON keys to decoded values, so that every field the
// operator JSON carries takes part in the agreement check.
type Record map[string]any

// Str returns the string field k, or "".
func (r Record) Str(k string) string {
	s, _ := r[k].(string)
	return s
}

// History is everything a soak recorded.
type History struct {
	Ops     []Op        `json:"ops"`
	Effects []Effect    `json:"effects"`
	Status  []StatusObs `json:"status"`
	Faults  []Fault     `json:"faults"`
	// Final holds each node's records after the quiesce: node name →
	// records. Quiesced says the runner saw both nodes connected to each
	// other with no pending record before its bound ran out; when it did
	// not, Final is what the nodes held at that bound.
	Final    map[string][]Record `json:"final"`
	Quiesced bool                `json:"quiesced"`
	// QuiesceNote says why the pair had not settled at the bound.
	QuiesceNote string `json:"quiesce_note,omitempty"`
	// HungBound is the longest a request may go unanswered, derived from
	// the configured peer and route timeouts.
	HungBound time.Duration `json:"hung_bound_ns"`
}

// DecodeRecords decodes the records of a `meshc cluster continuity --json`
// document.
func DecodeRecords(doc []byte) ([]Record, error) {
	var list struct {
		Records []Record `json:"records"`
	}
	if err := json.Unmarshal(doc, &list); err != nil {
		return nil, err
	}
	return list.Records, nil
}
