package continuity

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"
	"strings"
)

// Placement is where a request key's work runs and where its record is
// mirrored.
type Placement struct {
	Owner   string
	Replica string // "" with a single member
}

// placementHash is the first 8 bytes of SHA-256(s), big-endian.
func placementHash(s string) uint64 { return placementHash2("", s) }

// placementHash2 is placementHash(a+b) without building the string.
func placementHash2[T string | []byte](a string, b T) uint64 {
	var stack [192]byte
	buf := append(append(stack[:0], a...), b...)
	sum := sha256.Sum256(buf)
	return binary.BigEndian.Uint64(sum[:8])
}

// CanonicalMembership trims, drops blanks, deduplicates and orders members by
// (hash(name), name), so every node computes the same order.
func CanonicalMembership(members []string) []string {
	seen := make(map[string]bool, len(members))
	out := make([]string, 0, len(members))
	for _, m := range members {
		m = strings.TrimSpace(m)
		if m == "" || seen[m] {
			continue
		}
		seen[m] = true
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		hi, hj := placementHash(out[i]), placementHash(out[j])
		if hi != hj {
			return hi < hj
		}
		return out[i] < out[j]
	})
	return out
}

// Place computes the deterministic placement of key over members: the owner
// is hash("request::"+key) mod len, the replica the next member. Roles play no
// part. An empty membership places nothing.
func Place(key string, members []string) Placement {
	return PlaceCanonical(key, CanonicalMembership(members))
}

// PlaceCanonical is Place over a membership already in canonical order (as
// returned by CanonicalMembership), for callers that cache it.
func PlaceCanonical(key string, m []string) Placement {
	return placeCanonical(key, m)
}

// PlaceCanonicalBytes is PlaceCanonical without converting key. It is not
// generic, so escape analysis sees that key does not outlive the call and a
// caller may build key on its stack.
func PlaceCanonicalBytes(key []byte, m []string) Placement {
	if len(m) < 2 {
		return placeCanonical("", m) // no hash with fewer than two members
	}
	var stack [192]byte
	sum := sha256.Sum256(append(append(stack[:0], PlacementKeyPrefix...), key...))
	i := binary.BigEndian.Uint64(sum[:8]) % uint64(len(m))
	return Placement{Owner: m[i], Replica: m[(i+1)%uint64(len(m))]}
}

func placeCanonical[T string | []byte](key T, m []string) Placement {
	switch len(m) {
	case 0:
		return Placement{}
	case 1:
		return Placement{Owner: m[0]} // any hash picks the only member
	}
	i := placementHash2(PlacementKeyPrefix, key) % uint64(len(m))
	return Placement{Owner: m[i], Replica: m[(i+1)%uint64(len(m))]}
}

// OwnerOf is PlaceCanonical(string(key), m).Owner without converting key.
func OwnerOf(key []byte, m []string) string {
	return placeCanonical(key, m).Owner
}
