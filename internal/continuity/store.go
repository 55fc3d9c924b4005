package continuity

import "iter"

// Store holds a registry's continuity records: every pending record, and the
// terminal (completed or rejected) ones within a retention budget. The
// Registry owns the rules (placement, merge, transitions); a Store only keeps
// the versions the Registry hands it, one per request key.
//
// Lifetime: whoever opens a Store owns it. It is handed to one Registry
// (Options.Store) and must not be used by anything else while that Registry
// is in use; the opener closes it, if it has anything to close, after the
// Registry is no longer called. A Store that already holds records when the
// Registry is made (a durable store recovered on start) is read whole once, by
// NewRegistry, which numbers new attempts above every attempt it holds.
//
// Concurrency: Get, Put, Pending, List and Len are called by one goroutine at
// a time — the Registry calls them with its lock held — so an implementation
// needs no lock of its own for them. Sync may run concurrently with any of
// them and with itself.
//
// Blocking: the Registry calls Get, Put, Pending, List and Len with its lock
// held, so none of them may wait for a disk or a network. An implementation
// keeps what they read in memory (a durable one reads its log once, when it is
// opened), and Put only records the change: making it durable is Sync's job,
// which runs without the registry lock.
type Store interface {
	// Get returns a copy of the version stored under key, or false when key
	// is not stored (never stored, or evicted).
	Get(key string) (Record, bool)

	// Put stores rec under rec.RequestKey in place of any version stored
	// before. A pending record is kept until a terminal version of its key
	// replaces it: pending records are never evicted. A terminal record
	// joins the retained ones as the newest; storing the key again (a newer
	// terminal version, or a pending one) drops the version retained before.
	// Put then evicts the oldest retained records while the Retention
	// budget is exceeded, and never the newest. It may evict earlier, still
	// oldest first (MemoryStore does when one key is stored over and over,
	// so that its log of versions stays bounded), but a store holding
	// terminal records of distinct keys, each stored once, within both
	// budgets has evicted none of them. (MemoryStore also forgets the older
	// of two retained keys whose 64-bit hashes, under a seed random per
	// process, collide: practically never.)
	//
	// The store keeps its own copy of rec's fields, except the bytes of
	// rec.Response, which it may share: a stored response is never changed
	// in place, by the caller or by the store.
	//
	// Put fails only when the store can no longer record changes (a durable
	// store whose disk failed); what is stored under the key then stays as
	// it was before the call.
	Put(rec Record) error

	// Pending yields a copy of every pending record, in request key order.
	// Put must not be called until the iteration has ended.
	Pending() iter.Seq[Record]

	// List yields a copy of every record: the pending ones in request key
	// order, then the retained ones oldest first (in the order they became
	// terminal, which is the order they are evicted in). Put must not be
	// called until the iteration has ended.
	List() iter.Seq[Record]

	// Len returns the number of pending and of retained records.
	Len() (pending, retained int)

	// Sync returns once every change recorded by a Put that returned before
	// Sync was called is durable, or with the reason it cannot be. A store
	// kept in memory has nothing to make durable and returns nil at once. A
	// durable store shares one flush among concurrent callers; the caller
	// must not hold the registry lock. Nothing calls it while MemoryStore is
	// the only Store: with a durable one, the engine calls it before it
	// acknowledges a record.
	Sync() error
}

// Retention bounds the terminal records a Store keeps. Pending records are
// outside it: they are never evicted.
type Retention struct {
	// Records is the number of terminal records kept; 0 or less means
	// DefaultRetainRecords.
	Records int
	// Bytes bounds the memory the terminal records take (their stored
	// responses above all); 0 or less means DefaultRetainBytes. A store
	// counts its encodings with its own overhead, and may exceed Bytes by at
	// most RetainSlack or the size of one record, whichever is larger, so
	// that the newest terminal record is always kept.
	Bytes int64
}

// DefaultRetainRecords is the default number of terminal records a
// registry's store keeps.
const DefaultRetainRecords = 10000

// RetainSlack is how far a store may exceed Retention.Bytes: the unit it
// allocates retained records in, which it cannot give back while its newest
// record lives in it.
const RetainSlack = retainedChunk

// withDefaults returns r with zero fields replaced by the defaults.
func (r Retention) withDefaults() Retention {
	if r.Records <= 0 {
		r.Records = DefaultRetainRecords
	}
	if r.Bytes <= 0 {
		r.Bytes = DefaultRetainBytes
	}
	return r
}
