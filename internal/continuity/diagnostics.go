package continuity

import (
	"sync"
	"time"
)

// KV is one ordered metadata pair of a diagnostic entry.
type KV struct{ Key, Value string }

// Entry is one diagnostic transition. Empty string fields are absent (rendered
// as null by the operator JSON).
type Entry struct {
	Sequence          uint64
	Transition        string
	RequestKey        string
	AttemptID         string
	OwnerNode         string
	ReplicaNode       string
	ExecutionNode     string
	ClusterRole       Role
	PromotionEpoch    uint64
	ReplicationHealth Health
	ReplicaStatus     ReplicaStatus
	Reason            string
	Metadata          []KV
	Time              time.Time
	// Kind is the kind of the record the entry is about (KindWork for
	// node-level entries). It is not shown to operators; logging uses it to
	// keep per-request route transitions out of the default log level.
	Kind Kind
}

// DefaultDiagnosticsCapacity is the ring size when none is configured.
const DefaultDiagnosticsCapacity = 128

// Diagnostics is a bounded ring of the most recent entries. It is safe for
// concurrent use.
type Diagnostics struct {
	mu       sync.Mutex // guards all fields
	capacity int
	entries  []Entry // ring storage, len <= capacity
	start    int     // index of the oldest entry
	next     uint64  // next sequence number
	dropped  uint64
}

// NewDiagnostics returns a ring holding at most capacity entries (default 128
// when capacity < 1).
func NewDiagnostics(capacity int) *Diagnostics {
	if capacity < 1 {
		capacity = DefaultDiagnosticsCapacity
	}
	return &Diagnostics{capacity: capacity, next: 1}
}

// Add stamps e with the next sequence number, stores it and returns the stamped
// entry. When the ring is full the oldest entry is dropped and counted.
func (d *Diagnostics) Add(e Entry) Entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	e.Sequence = d.next
	d.next++
	if len(d.entries) < d.capacity {
		d.entries = append(d.entries, e)
	} else {
		d.entries[d.start] = e
		d.start = (d.start + 1) % d.capacity
		d.dropped++
	}
	return e
}

// Snapshot is a copy of the ring at one moment.
type Snapshot struct {
	Entries  []Entry // oldest first
	Dropped  uint64
	Capacity int
}

// Snapshot copies the retained entries, oldest first.
func (d *Diagnostics) Snapshot() Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Entry, 0, len(d.entries))
	for i := range d.entries {
		out = append(out, d.entries[(d.start+i)%len(d.entries)])
	}
	return Snapshot{Entries: out, Dropped: d.dropped, Capacity: d.capacity}
}
