package operator

import (
	"encoding/base64"
	"encoding/json"
	"time"
	"unicode/utf8"

	"meshgo.dev/mesh/internal/continuity"
)

// The reply documents. Fields are declared in alphabetical order of their JSON
// keys so encoding/json writes sorted keys; a test walks every document to
// keep it that way. Target is left empty by the node and filled in by meshc
// with the node name the operator typed.

// Status is the reply to a status query: who the node is, whom it is connected
// to, its authority, what it knows of each peer and whether it is ready to
// serve clustered requests. Peers and Readiness were added after the first
// version of the document: a node from before them sends neither, and
// DecodeStatus then leaves Peers nil and Readiness nil.
type Status struct {
	Authority  Authority  `json:"authority"`
	Membership Membership `json:"membership"`
	Peers      []Peer     `json:"peers"`
	Readiness  *Readiness `json:"readiness"`
	Target     string     `json:"target"`
}

// LinkState is the state of a node's cluster link to one peer.
type LinkState string

// Link states.
const (
	// LinkConnected: an authenticated session is up and the peer's first
	// snapshot has been merged.
	LinkConnected LinkState = "connected"
	// LinkSyncing: a session is up but the peer's first snapshot has not
	// been merged yet.
	LinkSyncing LinkState = "syncing"
	// LinkDisconnected: no session; the peer is known from an earlier
	// session (this run or a previous one).
	LinkDisconnected LinkState = "disconnected"
)

// Peer is what a node knows of one peer. ClusterRole and PromotionEpoch are
// the authority the peer last reported (in a heartbeat or a snapshot), and
// HeartbeatAgeMS is how long ago that was, in milliseconds; all three are
// null when the node has not heard from the peer since it started.
// ProtocolVersion is the cluster protocol version the link to the peer
// settled on (below the node's own while the peer runs an older build),
// null when there is no link; a node from before the field sends none.
type Peer struct {
	ClusterRole     *continuity.Role `json:"cluster_role"`
	HeartbeatAgeMS  *int64           `json:"heartbeat_age_ms"`
	LinkState       LinkState        `json:"link_state"`
	Node            string           `json:"node"`
	PromotionEpoch  *uint64          `json:"promotion_epoch"`
	ProtocolVersion *uint8           `json:"protocol_version"`
}

// Readiness says whether the node can serve clustered requests with the
// configured guarantees now; Reason is null when it can and names the cause
// (for example quarantined) when it cannot. It is the same answer the
// node's readiness handler gives.
type Readiness struct {
	Ready  bool    `json:"ready"`
	Reason *string `json:"reason"`
}

// Authority is a node's role, promotion epoch, aggregated replication
// health and safety mode: the kind of arbiter that decides its promotions
// (peer, postgres or etcd). A node from before safety_mode sends none, and
// DecodeStatus then leaves SafetyMode empty.
type Authority struct {
	ClusterRole continuity.Role `json:"cluster_role"`
	// LastPromotionRefusal is the reason the arbiter last refused to
	// promote this node (lease_held_by:<node>, arbiter_unavailable); null
	// when it never did.
	LastPromotionRefusal *string `json:"last_promotion_refusal"`
	// Lease is the arbiter's lease; null with the peer rule, when no node
	// holds it, or when the node cannot reach the arbiter.
	Lease             *Lease            `json:"lease"`
	PromotionEpoch    uint64            `json:"promotion_epoch"`
	ReplicationHealth continuity.Health `json:"replication_health"`
	SafetyMode        string            `json:"safety_mode"`
}

// Lease is the arbiter's lease: who holds it, at which epoch (the fencing
// token of the primary role), and how long it has left, as the answering
// node measured it.
type Lease struct {
	Epoch       uint64 `json:"epoch"`
	ExpiresInMS int64  `json:"expires_in_ms"`
	Holder      string `json:"holder"`
}

// Membership is the node's own name and its connected peers. Nodes is the
// local node plus the peers; both lists are sorted, without duplicates, and
// never null. Operator clients never appear in either.
type Membership struct {
	LocalNode string   `json:"local_node"`
	Nodes     []string `json:"nodes"`
	PeerNodes []string `json:"peer_nodes"`
}

// Record is the JSON form of one continuity record as the answering node
// sees it (cluster_role and promotion_epoch are that node's). Times are UTC
// RFC 3339 with nanoseconds; CompletedAt is null until the record is terminal
// and SubmittedAt is null only for records that carry no submission time.
type Record struct {
	AttemptID                  string                   `json:"attempt_id"`
	ClusterRole                continuity.Role          `json:"cluster_role"`
	CompletedAt                *time.Time               `json:"completed_at"`
	DeclaredHandlerRuntimeName string                   `json:"declared_handler_runtime_name"`
	Error                      string                   `json:"error"`
	ExecutionNode              string                   `json:"execution_node"`
	FellBackLocally            bool                     `json:"fell_back_locally"`
	IngressNode                string                   `json:"ingress_node"`
	OwnerNode                  string                   `json:"owner_node"`
	PayloadHash                string                   `json:"payload_hash"`
	Phase                      continuity.Phase         `json:"phase"`
	PromotionEpoch             uint64                   `json:"promotion_epoch"`
	ReplicaNode                string                   `json:"replica_node"`
	ReplicaStatus              continuity.ReplicaStatus `json:"replica_status"`
	ReplicationCount           uint64                   `json:"replication_count"`
	ReplicationHealth          continuity.Health        `json:"replication_health"`
	RequestKey                 string                   `json:"request_key"`
	Result                     continuity.Result        `json:"result"`
	RoutedRemotely             bool                     `json:"routed_remotely"`
	SubmittedAt                *time.Time               `json:"submitted_at"`
}

// ContinuityRecord is the reply to a continuity lookup: one record, and the
// stored output of typed declared work when the record carries one.
// ResultValue is that output inline when it is valid JSON (ResultEncoding
// "json"), else a base64 string (ResultEncoding "base64"); both are null for
// a record without an output. Nodes from before typed work send neither key.
type ContinuityRecord struct {
	Record         Record          `json:"record"`
	ResultEncoding *string         `json:"result_encoding"`
	ResultValue    json.RawMessage `json:"result_value"`
	Target         string          `json:"target"`
}

// Result encodings of ContinuityRecord.ResultValue.
const (
	ResultEncodingJSON   = "json"
	ResultEncodingBase64 = "base64"
)

// newContinuityRecord converts a stored record to its lookup document.
func newContinuityRecord(r continuity.Record) ContinuityRecord {
	c := ContinuityRecord{Record: newRecord(r)}
	if r.Output != nil {
		c.ResultEncoding, c.ResultValue = resultValue(r.Output)
	}
	return c
}

// resultValue renders a stored output: inline when it is JSON in UTF-8 (so
// the document carries it unchanged), else base64.
func resultValue(out []byte) (*string, json.RawMessage) {
	enc := ResultEncodingJSON
	if json.Valid(out) && utf8.Valid(out) {
		return &enc, append(json.RawMessage(nil), out...)
	}
	enc = ResultEncodingBase64
	b, _ := json.Marshal(base64.StdEncoding.EncodeToString(out))
	return &enc, b
}

// ContinuityList is the reply to a continuity list query. Records are sorted
// by request key, then attempt id; TotalRecords counts them before any limit
// and Truncated says a limit cut the list short.
type ContinuityList struct {
	Records      []Record `json:"records"`
	Target       string   `json:"target"`
	TotalRecords int      `json:"total_records"`
	Truncated    bool     `json:"truncated"`
}

// Diagnostics is the reply to a diagnostics query. Entries are oldest first;
// TotalEntries counts the entries the ring retains before any limit;
// Truncated says entries were dropped from the ring or cut by a limit.
type Diagnostics struct {
	BufferCapacity int               `json:"buffer_capacity"`
	DroppedEntries uint64            `json:"dropped_entries"`
	Entries        []DiagnosticEntry `json:"entries"`
	Target         string            `json:"target"`
	TotalEntries   int               `json:"total_entries"`
	Truncated      bool              `json:"truncated"`
}

// DiagnosticEntry is one recorded transition. Optional string fields are null
// when the transition did not set them; Metadata keeps insertion order and is
// never null.
type DiagnosticEntry struct {
	AttemptID         *string        `json:"attempt_id"`
	ClusterRole       *string        `json:"cluster_role"`
	ExecutionNode     *string        `json:"execution_node"`
	Metadata          []MetadataPair `json:"metadata"`
	OwnerNode         *string        `json:"owner_node"`
	PromotionEpoch    uint64         `json:"promotion_epoch"`
	Reason            *string        `json:"reason"`
	ReplicaNode       *string        `json:"replica_node"`
	ReplicaStatus     *string        `json:"replica_status"`
	ReplicationHealth *string        `json:"replication_health"`
	RequestKey        *string        `json:"request_key"`
	Sequence          uint64         `json:"sequence"`
	Time              *time.Time     `json:"time"`
	Transition        string         `json:"transition"`
}

// MetadataPair is one ordered key/value pair of a diagnostic entry.
type MetadataPair struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// newRecord converts a stored record to its JSON form.
func newRecord(r continuity.Record) Record {
	return Record{
		AttemptID:                  r.AttemptID(),
		ClusterRole:                r.Role,
		CompletedAt:                optionalTime(r.CompletedAt),
		DeclaredHandlerRuntimeName: r.RuntimeName,
		Error:                      r.Error,
		ExecutionNode:              r.ExecutionNode,
		FellBackLocally:            r.FellBackLocally,
		IngressNode:                r.IngressNode,
		OwnerNode:                  r.OwnerNode,
		PayloadHash:                r.PayloadHash,
		Phase:                      r.Phase,
		PromotionEpoch:             r.Epoch,
		ReplicaNode:                r.ReplicaNode,
		ReplicaStatus:              r.ReplicaStatus,
		ReplicationCount:           r.ReplicationCount,
		ReplicationHealth:          r.Health,
		RequestKey:                 r.RequestKey,
		Result:                     r.Result,
		RoutedRemotely:             r.RoutedRemotely,
		SubmittedAt:                optionalTime(r.SubmittedAt),
	}
}

// newEntry converts a diagnostic entry to its JSON form; empty strings become
// null.
func newEntry(e continuity.Entry) DiagnosticEntry {
	meta := make([]MetadataPair, 0, len(e.Metadata))
	for _, kv := range e.Metadata {
		meta = append(meta, MetadataPair{Key: kv.Key, Value: kv.Value})
	}
	return DiagnosticEntry{
		AttemptID:         optionalString(e.AttemptID),
		ClusterRole:       optionalString(string(e.ClusterRole)),
		ExecutionNode:     optionalString(e.ExecutionNode),
		Metadata:          meta,
		OwnerNode:         optionalString(e.OwnerNode),
		PromotionEpoch:    e.PromotionEpoch,
		Reason:            optionalString(e.Reason),
		ReplicaNode:       optionalString(e.ReplicaNode),
		ReplicaStatus:     optionalString(string(e.ReplicaStatus)),
		ReplicationHealth: optionalString(string(e.ReplicationHealth)),
		RequestKey:        optionalString(e.RequestKey),
		Sequence:          e.Sequence,
		Time:              optionalTime(e.Time),
		Transition:        e.Transition,
	}
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// optionalTime returns nil for the zero time and otherwise t in UTC without
// its monotonic reading, so documents compare and print the same everywhere.
func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC().Round(0)
	return &u
}
