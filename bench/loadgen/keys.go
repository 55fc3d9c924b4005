package main

import (
	"strconv"
	"sync/atomic"
	"unsafe"

	"meshgo.dev/mesh/internal/continuity"
)

// placedKeys produces unique Idempotency-Key values whose placement owner,
// over members, is want: every request of a (b) or (c) run then runs on a
// known node. Keys are never reused (a reused key would replay).
//
// Computing placement costs a few SHA-256 hashes per candidate, so keys are
// generated into a pool before each warm-up (fillKeys); if the pool runs dry
// the remaining keys are generated inline (counted in Inline).
//
// The pool is one byte arena plus end offsets, neither holding pointers: a
// pool of a million separate strings would be a live heap the load
// generator's garbage collector marks over and over during the window, CPU
// that a keyed scenario would pay and the plain baseline would not.
type placedKeys struct {
	scope   string // what the route puts before a client key in the request key
	prefix  string
	members []string
	want    string

	seq    atomic.Uint64
	arena  []byte   // the pooled keys, back to back
	ends   []uint32 // ends[i] is where key i ends in arena
	idx    atomic.Int64
	inline atomic.Int64
}

// newPlacedKeys returns keys starting with prefix whose request key (scope
// followed by the key, see routeScope) is placed on want.
func newPlacedKeys(scope, prefix string, members []string, want string) *placedKeys {
	return &placedKeys{scope: scope, prefix: prefix, members: continuity.CanonicalMembership(members), want: want}
}

// appendNext appends the next key whose owner is want to dst.
func (k *placedKeys) appendNext(dst []byte) []byte {
	base := len(dst)
	for {
		dst = strconv.AppendUint(append(append(dst[:base], k.scope...), k.prefix...), k.seq.Add(1), 10)
		if continuity.OwnerOf(dst[base:], k.members) == k.want {
			return append(dst[:base], dst[base+len(k.scope):]...) // the client key alone
		}
	}
}

func (k *placedKeys) generate() string { return string(k.appendNext(nil)) }

// Fill replaces the pool with n fresh keys. It must not run concurrently
// with Next.
func (k *placedKeys) Fill(n int) {
	arena := make([]byte, 0, n*(len(k.scope)+len(k.prefix)+8))
	ends := make([]uint32, n)
	for i := range ends {
		arena = k.appendNext(arena)
		ends[i] = uint32(len(arena))
	}
	k.arena, k.ends = arena, ends
	k.idx.Store(0)
	k.inline.Store(0)
}

// Next returns the next unused key. Pooled keys share the arena, which is
// never written after Fill; a key outlives a later Fill because it keeps its
// own arena alive.
func (k *placedKeys) Next() string {
	if i := k.idx.Add(1) - 1; i < int64(len(k.ends)) {
		start := uint32(0)
		if i > 0 {
			start = k.ends[i-1]
		}
		return unsafe.String(&k.arena[start], int(k.ends[i]-start))
	}
	k.inline.Add(1)
	return k.generate()
}

// Inline is how many keys Next generated since the last Fill.
func (k *placedKeys) Inline() int64 { return k.inline.Load() }
