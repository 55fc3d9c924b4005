package continuity

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"time"
)

// retained holds a registry's terminal records, encoded, in the order they
// became terminal, and evicts the oldest beyond its bound.
//
// A terminal record is only read again for an operator query, a duplicate
// submission or a late update, so it is kept in the form that costs least
// while it waits: its encoding, appended to a log of pointer-free chunks, and
// found through a pointer-free index from its key's hash to its place in the
// log. Ten thousand retained records are then a few dozen byte slices the
// garbage collector marks without scanning, instead of ten thousand records
// and their strings it walks on every cycle (under route load that walk made
// each mark phase several milliseconds long).
//
// An entry stops being live when its key is stored again (a newer version
// went to the log, or the record went back to pending) or is evicted. Dead
// entries stay in the log until they reach its head. Eviction pops from the
// head while more than bound entries are live, more than twice bound entries
// are in the log at all, or the log's chunks take more than budget bytes, so
// the log is bounded in entries and in memory. The byte count is of the
// chunks' capacity, unused tails included, so it is what the log really
// holds; the newest chunk is never given up, so a budget below one chunk
// keeps one chunk.
type retained struct {
	hash   func(key string) uint64
	index  map[uint64]uint64 // key hash → position of the key's live entry
	chunks [][]byte          // the log; chunks[0] is the oldest
	first  uint64            // sequence number of chunks[0]
	head   int               // offset of the oldest entry in chunks[0]
	live   int               // live entries
	total  int               // entries in the log, live or dead
	bound  int
	budget int64  // bytes the log's chunks may take
	bytes  int64  // capacity of the chunks in the log
	spare  []byte // the last chunk popped off the head, emptied for reuse

	// order repeats the hash and size of every entry in the log, oldest
	// at orderHead, so eviction never reads the log itself: its head was
	// written thousands of records ago and is cold in the cache by then,
	// while order is dense and read front to back.
	order     []orderEntry
	orderHead int
}

type orderEntry struct {
	hash uint64
	size uint32 // the payload's length
}

// DefaultRetainBytes is the default byte budget of a registry's retained
// records: 64 MiB.
const DefaultRetainBytes = 64 << 20

// retainedChunk is the usual size of a log chunk; a larger record gets a
// chunk of its own size.
const retainedChunk = 64 << 10

// entryHeader is an entry's payload length (uint32) and key hash (uint64).
const entryHeader = 12

func newRetained(bound int, budget int64) *retained {
	seed := maphash.MakeSeed()
	return &retained{hash: func(key string) uint64 { return maphash.String(seed, key) }, index: map[uint64]uint64{},
		bound: bound, budget: budget}
}

// pos packs a chunk sequence number and an offset into a position.
func pos(seq uint64, off int) uint64 { return seq<<32 | uint64(off) }

// entryAt returns the key hash and the payload of the entry at p.
func (t *retained) entryAt(p uint64) (uint64, []byte) {
	c := t.chunks[p>>32-t.first]
	off := int(uint32(p))
	n := binary.LittleEndian.Uint32(c[off:])
	h := binary.LittleEndian.Uint64(c[off+4:])
	return h, c[off+entryHeader : off+entryHeader+int(n)]
}

// get decodes the live entry of key into *rec, or reports false (and leaves
// *rec zero).
func (t *retained) get(key string, rec *Record) bool {
	p, ok := t.index[t.hash(key)]
	if !ok {
		return false
	}
	_, b := t.entryAt(p)
	if err := decodeRetainedInto(b, rec); err != nil || rec.RequestKey != key {
		*rec = Record{}
		return false // another key of the same hash (see put)
	}
	return true
}

// remove makes key's entry, if any, dead.
func (t *retained) remove(key string) {
	h := t.hash(key)
	p, ok := t.index[h]
	if !ok {
		return
	}
	if _, b := t.entryAt(p); !retainedKeyIs(b, key) {
		return
	}
	delete(t.index, h)
	t.live--
}

// put stores rec, a terminal record, as the live entry of its key and evicts
// what the bound no longer allows. Two keys whose 64-bit hashes agree cannot
// both be retained: the newer one replaces the older, which is forgotten as
// if evicted early (and for a random seed, practically never).
func (t *retained) put(rec *Record) {
	h := t.hash(rec.RequestKey)
	size := entryHeader + retainedSize(rec)
	last := len(t.chunks) - 1
	if last >= 0 && t.total == 0 && cap(t.chunks[last])-len(t.chunks[last]) < size {
		// An empty log whose one chunk is too small: drop it rather than
		// leave an empty chunk at the head.
		t.bytes -= int64(cap(t.chunks[last]))
		t.chunks[last] = nil
		t.chunks, t.head, last = t.chunks[:0], 0, -1
	}
	if last < 0 || cap(t.chunks[last])-len(t.chunks[last]) < size {
		c := t.spare
		if cap(c) < size {
			c = make([]byte, 0, max(retainedChunk, size))
		}
		t.spare = nil
		t.chunks = append(t.chunks, c[:0])
		t.bytes += int64(cap(c))
		last++
	}
	c := t.chunks[last]
	off := len(c)
	c = binary.LittleEndian.AppendUint32(c, 0)
	c = binary.LittleEndian.AppendUint64(c, h)
	c = appendRetained(c, rec)
	binary.LittleEndian.PutUint32(c[off:], uint32(len(c)-off-entryHeader))
	t.chunks[last] = c
	t.order = append(t.order, orderEntry{hash: h, size: uint32(len(c) - off - entryHeader)})
	before := len(t.index)
	t.index[h] = pos(t.first+uint64(last), off)
	t.live += len(t.index) - before // one map operation for insert-or-replace
	t.total++
	for t.live > t.bound || t.total > 2*t.bound || t.bytes > t.budget && len(t.chunks) > 1 {
		t.popHead()
	}
}

// popHead drops the oldest entry of the log, evicting it if it is live.
func (t *retained) popHead() {
	c := t.chunks[0]
	p := pos(t.first, t.head)
	e := t.order[t.orderHead]
	t.orderHead++
	if t.orderHead >= 1024 && 2*t.orderHead >= len(t.order) {
		t.order = t.order[:copy(t.order, t.order[t.orderHead:])]
		t.orderHead = 0
	}
	if q, ok := t.index[e.hash]; ok && q == p {
		delete(t.index, e.hash)
		t.live--
	}
	t.total--
	t.head += entryHeader + int(e.size)
	if t.head == len(c) && len(t.chunks) > 1 {
		if cap(c) == retainedChunk {
			// Under steady churn one chunk empties for every one that
			// fills: reusing it spares allocating (and zeroing) 64 KiB
			// every few hundred records, and the collector the pace.
			t.spare = c[:0]
		}
		t.bytes -= int64(cap(c))
		t.chunks[0] = nil
		t.chunks = t.chunks[1:]
		t.first++
		t.head = 0
	} else if t.head == len(c) && t.total == 0 {
		t.chunks[0] = c[:0] // empty log: reuse the chunk from its start
		t.head = 0
		t.order, t.orderHead = t.order[:0], 0
	}
}

// each calls fn with every live record, decoded, oldest first, until fn
// returns false.
func (t *retained) each(fn func(*Record) bool) {
	var rec Record
	for i, c := range t.chunks {
		off := 0
		if i == 0 {
			off = t.head
		}
		for off < len(c) {
			p := pos(t.first+uint64(i), off)
			h, b := t.entryAt(p)
			off += entryHeader + len(b)
			if q, ok := t.index[h]; !ok || q != p {
				continue
			}
			if err := decodeRetainedInto(b, &rec); err == nil && !fn(&rec) {
				return
			}
		}
	}
}

// ---- the entry encoding --------------------------------------------------------------------------

// A record is encoded as its strings and integers in a fixed order; each
// string is length-prefixed (uvarint), enum values are one byte when known,
// and times are Unix nanoseconds in UTC. The request key comes first so an
// entry's key can be read without decoding the rest.

var (
	phaseNames  = []Phase{PhaseSubmitted, PhaseCompleted, PhaseRejected}
	resultNames = []Result{ResultPending, ResultSucceeded, ResultRejected}
	statusNames = []ReplicaStatus{ReplicaUnassigned, ReplicaPreparing, ReplicaMirrored, ReplicaOwnerLost,
		ReplicaRejected, ReplicaDegradedContinuing}
	roleNames   = []Role{RolePrimary, RoleStandby}
	healthNames = []Health{HealthLocalOnly, HealthHealthy, HealthDegraded, HealthUnavailable}
)

// otherEnum marks an enum value outside its known set, stored as a string.
const otherEnum = 0xff

const (
	flagRoutedRemotely = 1 << iota
	flagFellBackLocally
	flagResponse // Response is non-nil (it may be empty)
	flagSubmittedAt
	flagCompletedAt
	flagRefused
	// flagWork: the entry ends with the typed work section (a version byte,
	// then Input and Output, each with a presence byte and length-prefixed),
	// after Response. Entries without it predate typed work or carry none.
	flagWork
)

// retainedWorkVersion is the layout of the typed work section.
const retainedWorkVersion = 1

func retainedSize(r *Record) int {
	n := 3*binary.MaxVarintLen64 + 2*12 + 2
	for _, s := range [...]string{r.RequestKey, r.PayloadHash, r.IngressNode, r.OwnerNode, r.ReplicaNode,
		r.ExecutionNode, r.Error, r.RuntimeName, string(r.Phase), string(r.Result), string(r.ReplicaStatus),
		string(r.Role), string(r.Health)} {
		n += binary.MaxVarintLen64 + len(s) + 1
	}
	n += binary.MaxVarintLen64 + len(r.Response)
	if r.Input != nil || r.Output != nil {
		n += 3 + 2*binary.MaxVarintLen64 + len(r.Input) + len(r.Output)
	}
	return n
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendEnum[E ~string](b []byte, known []E, v E) []byte {
	for i, k := range known {
		if k == v {
			return append(b, byte(i))
		}
	}
	return appendString(append(b, otherEnum), string(v))
}

func appendRetained(b []byte, r *Record) []byte {
	var flags byte
	if r.RoutedRemotely {
		flags |= flagRoutedRemotely
	}
	if r.FellBackLocally {
		flags |= flagFellBackLocally
	}
	if r.Response != nil {
		flags |= flagResponse
	}
	if !r.SubmittedAt.IsZero() {
		flags |= flagSubmittedAt
	}
	if !r.CompletedAt.IsZero() {
		flags |= flagCompletedAt
	}
	if r.Refused {
		flags |= flagRefused
	}
	work := r.Input != nil || r.Output != nil
	if work {
		flags |= flagWork
	}
	b = appendString(b, r.RequestKey)
	b = appendString(b, r.PayloadHash)
	b = appendString(b, r.IngressNode)
	b = appendString(b, r.OwnerNode)
	b = appendString(b, r.ReplicaNode)
	b = appendString(b, r.ExecutionNode)
	b = appendString(b, r.Error)
	b = appendString(b, r.RuntimeName)
	b = binary.AppendUvarint(b, r.Attempt)
	b = binary.AppendUvarint(b, r.ReplicationCount)
	b = binary.AppendUvarint(b, r.Epoch)
	b = appendEnum(b, phaseNames, r.Phase)
	b = appendEnum(b, resultNames, r.Result)
	b = appendEnum(b, statusNames, r.ReplicaStatus)
	b = appendEnum(b, roleNames, r.Role)
	b = appendEnum(b, healthNames, r.Health)
	b = append(b, byte(r.Kind), flags)
	b = appendTime(b, r.SubmittedAt)
	b = appendTime(b, r.CompletedAt)
	b = append(binary.AppendUvarint(b, uint64(len(r.Response))), r.Response...)
	if work {
		b = append(b, retainedWorkVersion)
		b = appendOptionalBytes(b, r.Input)
		b = appendOptionalBytes(b, r.Output)
	}
	return b
}

// appendOptionalBytes appends a presence byte (so nil and empty stay apart)
// and, when present, v length-prefixed.
func appendOptionalBytes(b, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	return append(binary.AppendUvarint(append(b, 1), uint64(len(v))), v...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(t.Unix()))
	return binary.LittleEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

var errRetained = errors.New("continuity: malformed retained record")

// retainedReader reads an entry; the first error sticks.
type retainedReader struct {
	b   []byte
	err error
}

func (d *retainedReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = errRetained, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *retainedReader) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err, d.b = errRetained, nil
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// optionalBytes reads what appendOptionalBytes wrote, as a copy.
func (d *retainedReader) optionalBytes() []byte {
	switch d.byte() {
	case 0:
		return nil
	case 1:
		v := d.bytes()
		return append(make([]byte, 0, len(v)), v...)
	default:
		d.err, d.b = errRetained, nil
		return nil
	}
}

func (d *retainedReader) string() string { return string(d.bytes()) }

func (d *retainedReader) byte() byte {
	if len(d.b) == 0 {
		d.err = errRetained
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *retainedReader) time() time.Time {
	if len(d.b) < 12 {
		d.err, d.b = errRetained, nil
		return time.Time{}
	}
	sec, nsec := binary.LittleEndian.Uint64(d.b), binary.LittleEndian.Uint32(d.b[8:])
	d.b = d.b[12:]
	return time.Unix(int64(sec), int64(nsec)).UTC()
}

func readEnum[E ~string](d *retainedReader, known []E) E {
	c := d.byte()
	if c == otherEnum {
		return E(d.string())
	}
	if int(c) >= len(known) {
		d.err = errRetained
		return ""
	}
	return known[c]
}

// retainedKeyIs reports whether the encoded entry b is key's, without
// decoding the rest.
func retainedKeyIs(b []byte, key string) bool {
	d := retainedReader{b: b}
	k := d.bytes()
	return d.err == nil && string(k) == key
}

func decodeRetained(b []byte) (*Record, error) {
	r := new(Record)
	if err := decodeRetainedInto(b, r); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeRetainedInto decodes the entry b into *r, every field of which it
// sets.
func decodeRetainedInto(b []byte, r *Record) error {
	d := retainedReader{b: b}
	*r = Record{}
	r.RequestKey = d.string()
	r.PayloadHash = d.string()
	r.IngressNode = d.string()
	r.OwnerNode = d.string()
	r.ReplicaNode = d.string()
	r.ExecutionNode = d.string()
	r.Error = d.string()
	r.RuntimeName = d.string()
	r.Attempt = d.uvarint()
	r.ReplicationCount = d.uvarint()
	r.Epoch = d.uvarint()
	r.Phase = readEnum(&d, phaseNames)
	r.Result = readEnum(&d, resultNames)
	r.ReplicaStatus = readEnum(&d, statusNames)
	r.Role = readEnum(&d, roleNames)
	r.Health = readEnum(&d, healthNames)
	r.Kind = Kind(d.byte())
	flags := d.byte()
	submitted, completed := d.time(), d.time()
	resp := d.bytes()
	if flags&flagWork != 0 {
		if d.byte() != retainedWorkVersion {
			*r = Record{}
			return errRetained
		}
		r.Input, r.Output = d.optionalBytes(), d.optionalBytes()
	}
	if d.err != nil || len(d.b) != 0 {
		return errRetained
	}
	r.RoutedRemotely = flags&flagRoutedRemotely != 0
	r.FellBackLocally = flags&flagFellBackLocally != 0
	r.Refused = flags&flagRefused != 0
	if flags&flagSubmittedAt != 0 {
		r.SubmittedAt = submitted
	}
	if flags&flagCompletedAt != 0 {
		r.CompletedAt = completed
	}
	if flags&flagResponse != 0 {
		r.Response = append(make([]byte, 0, len(resp)), resp...)
	}
	return nil
}
