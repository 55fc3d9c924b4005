package main

import (
	"strconv"

	"meshgo.dev/mesh/internal/continuity"
)

// placedKeys makes unique Idempotency-Key values whose request key (scope
// followed by the key) is placed on want over members, so a keyed request runs
// on a known node. Placement hashes the whole request key, so candidates are
// tried in sequence until one lands on want (two on average in a pair).
type placedKeys struct {
	scope, prefix string
	members       []string
	want          string
	seq           uint64
	buf           []byte
}

func newPlacedKeys(scope, prefix string, members []string, want string) *placedKeys {
	return &placedKeys{scope: scope, prefix: prefix, members: continuity.CanonicalMembership(members), want: want}
}

// next returns the next key placed on want.
func (k *placedKeys) next() string {
	for {
		k.seq++
		k.buf = strconv.AppendUint(append(append(k.buf[:0], k.scope...), k.prefix...), k.seq, 10)
		if continuity.OwnerOf(k.buf, k.members) == k.want {
			return string(k.buf[len(k.scope):])
		}
	}
}
