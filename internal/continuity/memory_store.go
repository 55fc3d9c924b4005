package continuity

import (
	"iter"
	"maps"
	"slices"

	"meshgo.dev/mesh/internal/mapsize"
)

// MemoryStore is the Store that keeps records in memory only, for as long as
// the process lives: pending records as Go values in a map, since every step
// of a request changes them, and terminal ones encoded in the retained log
// (retained.go), which bounds them by count and bytes and keeps the garbage
// collector off them. Like every Store it is used by one goroutine at a time
// (Sync excepted, which touches nothing); the zero value is not usable, call
// NewMemoryStore.
type MemoryStore struct {
	pending     map[string]*Record
	pendingPeak int // for mapsize: pending is rebuilt after a burst drains
	kept        *retained

	// missed is the key the last Get did not find, if no Put came since:
	// a submission looks its key up, misses, and stores it, and Put then
	// knows there is no older version to look for.
	missed string

	// spare holds emptied records of keys that went from pending to
	// terminal, for the next new pending keys: under load every request
	// would otherwise allocate one. Nothing outside the store points into
	// pending (every read copies), so a record is free once its key leaves
	// the map. At most maxSpareRecords are kept.
	spare []*Record
}

// maxSpareRecords bounds MemoryStore.spare.
const maxSpareRecords = 256

// NewMemoryStore returns an empty store that keeps terminal records within
// limit.
func NewMemoryStore(limit Retention) *MemoryStore {
	limit = limit.withDefaults()
	return &MemoryStore{pending: map[string]*Record{}, kept: newRetained(limit.Records, limit.Bytes)}
}

// Get returns a copy of the record stored under key: the pending record, or
// the retained one decoded.
func (m *MemoryStore) Get(key string) (Record, bool) {
	var rec Record
	ok := m.get(key, &rec)
	return rec, ok
}

// get is Get into *rec, which it leaves zero when key is not stored (rec
// must be zero on the call). The Registry calls it, and put, directly, so
// that a transition does not copy the record through the Store interface.
func (m *MemoryStore) get(key string, rec *Record) bool {
	if p, ok := m.pending[key]; ok {
		m.missed = ""
		*rec = *p
		return true
	}
	ok := m.kept.get(key, rec)
	m.missed = ""
	if !ok {
		m.missed = key
	}
	return ok
}

// Put stores rec under its key: a pending record in the map (in place of the
// stored one, so an update allocates nothing), a terminal one encoded among
// the retained records, which evicts the oldest beyond the bound. It never
// fails.
func (m *MemoryStore) Put(rec Record) error {
	m.put(&rec)
	return nil
}

// put is Put of *rec, whose fields it copies (it keeps no pointer to rec).
func (m *MemoryStore) put(rec *Record) {
	fresh := m.missed != "" && m.missed == rec.RequestKey // no version of the key is stored
	m.missed = ""
	if rec.Phase.Terminal() {
		if !fresh {
			if p, ok := m.pending[rec.RequestKey]; ok {
				delete(m.pending, rec.RequestKey)
				if len(m.spare) < maxSpareRecords {
					*p = Record{} // holds on to nothing while it waits
					m.spare = append(m.spare, p)
				}
			}
			m.pending = mapsize.Rebuilt(m.pending, &m.pendingPeak)
		}
		m.kept.put(rec)
		return
	}
	if !fresh {
		m.kept.remove(rec.RequestKey)
		if p, ok := m.pending[rec.RequestKey]; ok {
			*p = *rec
			return
		}
	}
	var p *Record
	if n := len(m.spare); n > 0 {
		p = m.spare[n-1]
		m.spare[n-1] = nil
		m.spare = m.spare[:n-1]
	} else {
		p = new(Record)
	}
	*p = *rec
	m.pending[rec.RequestKey] = p
	mapsize.Grew(m.pending, &m.pendingPeak)
}

// Pending yields every pending record in request key order.
func (m *MemoryStore) Pending() iter.Seq[Record] {
	return func(yield func(Record) bool) {
		for _, k := range m.pendingKeys() {
			if !yield(*m.pending[k]) {
				return
			}
		}
	}
}

// List yields the pending records in request key order, then the retained
// ones oldest first.
func (m *MemoryStore) List() iter.Seq[Record] {
	return func(yield func(Record) bool) {
		for _, k := range m.pendingKeys() {
			if !yield(*m.pending[k]) {
				return
			}
		}
		m.kept.each(func(rec *Record) bool { return yield(*rec) })
	}
}

// Holds returns a snapshot of the keys the store holds now, pending or
// retained, as a predicate that another goroutine may call while the store
// moves on (a compaction of a durable log asks it about every key it
// folds). Taking it copies two maps, not a key or a record: it runs with the
// registry's lock held, and decoding ten thousand retained records there to
// list their keys stalled every request for milliseconds. A retained key is
// matched by its 64-bit hash, as the retained index finds it; another key of
// the same hash (for a random seed, practically never) would be reported
// held as well, which can only keep a version that was not needed.
func (m *MemoryStore) Holds() func(key string) bool {
	pending := maps.Clone(m.pending) // its values are never read
	kept := maps.Clone(m.kept.index)
	hash := m.kept.hash
	return func(key string) bool {
		if _, ok := pending[key]; ok {
			return true
		}
		_, ok := kept[hash(key)]
		return ok
	}
}

func (m *MemoryStore) pendingKeys() []string {
	keys := make([]string, 0, len(m.pending))
	for k := range m.pending {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Len returns the number of pending and of retained records.
func (m *MemoryStore) Len() (pending, retained int) { return len(m.pending), m.kept.live }

// Sync returns nil: a memory store has nothing to make durable.
func (m *MemoryStore) Sync() error { return nil }
