package main

import (
	"strconv"
	"sync/atomic"

	"meshgo.dev/mesh/internal/continuity"
)

// placedKeys produces unique Idempotency-Key values whose placement owner,
// over members, is want: every request of a (b) or (c) run then runs on a
// known node. Keys are never reused (a reused key would replay).
//
// Computing placement costs a few SHA-256 hashes per candidate, so keys are
// generated into a pool between the warm-up and the measured window; if the
// pool runs dry the remaining keys are generated inline (counted in Inline).
type placedKeys struct {
	prefix  string
	members []string
	want    string

	seq    atomic.Uint64
	pool   []string
	idx    atomic.Int64
	inline atomic.Int64
}

func newPlacedKeys(prefix string, members []string, want string) *placedKeys {
	return &placedKeys{prefix: prefix, members: members, want: want}
}

func (k *placedKeys) generate() string {
	for {
		key := k.prefix + strconv.FormatUint(k.seq.Add(1), 10)
		if continuity.Place(key, k.members).Owner == k.want {
			return key
		}
	}
}

// Fill replaces the pool with n fresh keys. It must not run concurrently
// with Next.
func (k *placedKeys) Fill(n int) {
	pool := make([]string, n)
	for i := range pool {
		pool[i] = k.generate()
	}
	k.pool = pool
	k.idx.Store(0)
	k.inline.Store(0)
}

// Next returns the next unused key.
func (k *placedKeys) Next() string {
	if i := k.idx.Add(1) - 1; i < int64(len(k.pool)) {
		return k.pool[i]
	}
	k.inline.Add(1)
	return k.generate()
}

// Inline is how many keys Next generated since the last Fill.
func (k *placedKeys) Inline() int64 { return k.inline.Load() }
