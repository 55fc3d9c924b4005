package continuity

import (
	"cmp"
	"slices"
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
	// coalesced holds the entries kept outside the ring, one per
	// transition (see Coalesce), in the order they were first stored.
	coalesced []Entry
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

// Coalesce stores e as the one entry of its transition that lives outside
// the ring: it replaces the previous such entry and takes the next sequence
// number, so it reads as the most recent. It never evicts a ring entry and
// ring entries never evict it. It is for events that can arrive in floods,
// such as failed handshakes: the caller keeps the count in e's metadata, so
// a flood is one entry instead of a flushed ring.
func (d *Diagnostics) Coalesce(e Entry) Entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	e.Sequence = d.next
	d.next++
	for i := range d.coalesced {
		if d.coalesced[i].Transition == e.Transition {
			d.coalesced[i] = e
			return e
		}
	}
	d.coalesced = append(d.coalesced, e)
	return e
}

// Snapshot is a copy of the ring at one moment.
type Snapshot struct {
	Entries  []Entry // oldest first
	Dropped  uint64
	Capacity int
}

// Snapshot copies the retained entries and the coalesced ones, in sequence
// order (oldest first).
func (d *Diagnostics) Snapshot() Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Entry, 0, len(d.entries)+len(d.coalesced))
	for i := range d.entries {
		out = append(out, d.entries[(d.start+i)%len(d.entries)])
	}
	if len(d.coalesced) > 0 {
		out = append(out, d.coalesced...)
		slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.Sequence, b.Sequence) })
	}
	return Snapshot{Entries: out, Dropped: d.dropped, Capacity: d.capacity}
}
