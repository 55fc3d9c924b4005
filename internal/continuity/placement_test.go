package continuity

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// oracleHash is the placement hash written straight from DESIGN.md §5.2 and
// runtime.md §3.3: the first 8 bytes of SHA-256, big-endian.
func oracleHash(s string) uint64 {
	sum := sha256.Sum256([]byte(s))
	return binary.BigEndian.Uint64(sum[:8])
}

func TestPlacementHashIsBigEndianSHA256Prefix(t *testing.T) {
	for _, s := range []string{"", "abc", "request::k1", "primary@127.0.0.1:4370", "standby@[::1]:4370"} {
		t.Run(fmt.Sprintf("%q", s), func(t *testing.T) {
			if got, want := placementHash(s), oracleHash(s); got != want {
				t.Fatalf("placementHash(%q) = %#x, want %#x", s, got, want)
			}
		})
	}
	// A fixed vector: SHA-256("abc") starts ba7816bf8f01cfea.
	if got := placementHash("abc"); got != 0xba7816bf8f01cfea {
		t.Fatalf("placementHash(abc) = %#x, want 0xba7816bf8f01cfea", got)
	}
}

func TestCanonicalMembership(t *testing.T) {
	tests := []struct {
		name    string
		members []string
		want    []string
	}{
		{"nil", nil, []string{}},
		{"empty", []string{}, []string{}},
		{"only blanks", []string{"", " ", "\t\n"}, []string{}},
		{"single", []string{"a@h"}, []string{"a@h"}},
		{"trims", []string{"  a@h ", "\tb@h\n"}, []string{"a@h", "b@h"}},
		{"dedupes", []string{"a@h", "a@h", " a@h", "b@h", "b@h "}, []string{"a@h", "b@h"}},
		{"drops blanks", []string{"", "c@h", " ", "a@h"}, []string{"a@h", "c@h"}},
		// Ordered by (hash(name), name), not by name: d@h hashes below b@h.
		{"hash order", []string{"a@h", "b@h", "c@h", "d@h"}, []string{"a@h", "d@h", "b@h", "c@h"}},
		{"hash order five", []string{"n1", "n2", "n3", "n4", "n5"}, []string{"n2", "n5", "n1", "n3", "n4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.members)
			got := CanonicalMembership(tt.members)
			if got == nil {
				t.Fatalf("CanonicalMembership(%q) = nil, want a non-nil slice", tt.members)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("CanonicalMembership(%q) = %q, want %q", tt.members, got, tt.want)
			}
			if !slices.Equal(in, tt.members) {
				t.Fatalf("CanonicalMembership modified its input: %q, was %q", tt.members, in)
			}
		})
	}
}

func TestCanonicalMembershipSortedByHashThenName(t *testing.T) {
	var members []string
	for i := range 50 {
		members = append(members, fmt.Sprintf("node-%02d@10.0.0.%d:4370", i, i))
	}
	got := CanonicalMembership(members)
	if len(got) != len(members) {
		t.Fatalf("len = %d, want %d", len(got), len(members))
	}
	for i := 1; i < len(got); i++ {
		hp, hi := oracleHash(got[i-1]), oracleHash(got[i])
		if hp > hi || (hp == hi && got[i-1] >= got[i]) {
			t.Fatalf("order broken at %d: %q (%#x) before %q (%#x)", i, got[i-1], hp, got[i], hi)
		}
	}
}

func TestCanonicalMembershipOrderIndependent(t *testing.T) {
	base := []string{"n1", "n2", "n3", "n4", "n5", " n3", "", "n1 "}
	want := CanonicalMembership(base)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 100 {
		perm := slices.Clone(base)
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		if got := CanonicalMembership(perm); !slices.Equal(got, want) {
			t.Fatalf("permutation %d %q: got %q, want %q", i, perm, got, want)
		}
	}
}

func TestPlaceGoldenVectors(t *testing.T) {
	// Placement must never change between releases: two nodes of different
	// versions have to agree on every owner. These vectors pin the algorithm.
	pair := []string{"primary@127.0.0.1:4370", "standby@[::1]:4370"}
	four := []string{"a@h", "b@h", "c@h", "d@h"}
	five := []string{"n1", "n2", "n3", "n4", "n5"}
	tests := []struct {
		key     string
		members []string
		want    Placement
	}{
		{"startup::Work.add", pair, Placement{Owner: "primary@127.0.0.1:4370", Replica: "standby@[::1]:4370"}},
		{"k1", pair, Placement{Owner: "standby@[::1]:4370", Replica: "primary@127.0.0.1:4370"}},
		{"order-42", pair, Placement{Owner: "standby@[::1]:4370", Replica: "primary@127.0.0.1:4370"}},
		{"", pair, Placement{Owner: "primary@127.0.0.1:4370", Replica: "standby@[::1]:4370"}},
		// The replica wraps around to the first member.
		{"k1", four, Placement{Owner: "c@h", Replica: "a@h"}},
		{"k3", four, Placement{Owner: "d@h", Replica: "b@h"}},
		{"startup::Work.add", four, Placement{Owner: "b@h", Replica: "c@h"}},
		{"k1", five, Placement{Owner: "n5", Replica: "n1"}},
		{"k2", five, Placement{Owner: "n1", Replica: "n3"}},
		{"order-42", five, Placement{Owner: "n2", Replica: "n5"}},
		{"startup::Work.add", five, Placement{Owner: "n4", Replica: "n2"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.key, len(tt.members)), func(t *testing.T) {
			if got := Place(tt.key, tt.members); got != tt.want {
				t.Fatalf("Place(%q, %q) = %+v, want %+v", tt.key, tt.members, got, tt.want)
			}
		})
	}
}

func TestPlaceMatchesSpecOracle(t *testing.T) {
	memberSets := [][]string{
		{"a"},
		{"a", "b"},
		{"primary@127.0.0.1:4370", "standby@[::1]:4370"},
		{"n1", "n2", "n3"},
		{"n1", "n2", "n3", "n4", "n5", "n6", "n7"},
	}
	for _, members := range memberSets {
		canon := CanonicalMembership(members)
		for i := range 200 {
			key := fmt.Sprintf("key-%d", i)
			idx := oracleHash("request::"+key) % uint64(len(canon))
			want := Placement{Owner: canon[idx]}
			if len(canon) > 1 {
				want.Replica = canon[(idx+1)%uint64(len(canon))]
			}
			if got := Place(key, members); got != want {
				t.Fatalf("Place(%q, %q) = %+v, want %+v", key, members, got, want)
			}
		}
	}
}

func TestPlaceEdgeCases(t *testing.T) {
	tests := []struct {
		name    string
		key     string
		members []string
		want    Placement
	}{
		{"nil membership", "k", nil, Placement{}},
		{"blank membership", "k", []string{"", "  "}, Placement{}},
		{"single member has no replica", "k", []string{"solo@h"}, Placement{Owner: "solo@h"}},
		{"single member after dedupe", "k", []string{"solo@h", " solo@h", "solo@h "}, Placement{Owner: "solo@h"}},
		{"single member among blanks", "k", []string{"", "solo@h", ""}, Placement{Owner: "solo@h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Place(tt.key, tt.members); got != tt.want {
				t.Fatalf("Place(%q, %q) = %+v, want %+v", tt.key, tt.members, got, tt.want)
			}
		})
	}
}

func TestPlaceDeterministicAndOrderIndependent(t *testing.T) {
	members := []string{"n1", "n2", "n3", "n4"}
	noisy := []string{" n4", "n2", "", "n1", "n3 ", "n2", "n4"}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 300 {
		key := fmt.Sprintf("request-%d", i)
		want := Place(key, members)
		if want.Owner == "" || want.Replica == "" || want.Owner == want.Replica {
			t.Fatalf("Place(%q) = %+v: want distinct owner and replica", key, want)
		}
		if again := Place(key, members); again != want {
			t.Fatalf("Place(%q) not deterministic: %+v then %+v", key, want, again)
		}
		perm := slices.Clone(noisy)
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		if got := Place(key, perm); got != want {
			t.Fatalf("Place(%q, %q) = %+v, want %+v (same membership)", key, perm, got, want)
		}
	}
}

func TestPlaceTwoMembersReplicaIsTheOther(t *testing.T) {
	members := []string{"primary@h", "standby@h"}
	owners := map[string]int{}
	for i := range 500 {
		key := fmt.Sprintf("k-%d", i)
		p := Place(key, members)
		owners[p.Owner]++
		switch p {
		case Placement{Owner: "primary@h", Replica: "standby@h"}, Placement{Owner: "standby@h", Replica: "primary@h"}:
		default:
			t.Fatalf("Place(%q) = %+v, want the two members", key, p)
		}
	}
	// Placement ignores roles: either node owns a fair share of keys.
	for _, m := range members {
		if owners[m] < 150 {
			t.Fatalf("owner distribution %v: %s owns too few of 500 keys", owners, m)
		}
	}
}

func TestPlaceKeyUsesRequestPrefix(t *testing.T) {
	// The owner index hashes "request::"+key, not the bare key. Find a key
	// for which the two differ and check Place follows the prefixed one.
	members := []string{"n1", "n2", "n3", "n4", "n5"}
	canon := CanonicalMembership(members)
	n := uint64(len(canon))
	for i := range 100 {
		key := fmt.Sprintf("x%d", i)
		prefixed, bare := oracleHash(PlacementKeyPrefix+key)%n, oracleHash(key)%n
		if prefixed == bare {
			continue
		}
		if got := Place(key, members).Owner; got != canon[prefixed] {
			t.Fatalf("Place(%q).Owner = %q, want %q (bare-key hash would give %q)", key, got, canon[prefixed], canon[bare])
		}
		return
	}
	t.Fatal("no key distinguishes prefixed from bare hashing")
}

func TestOwnerOfAgreesWithPlaceCanonical(t *testing.T) {
	for _, members := range [][]string{{"a@h:1"}, {"a@h:1", "b@h:1"}, {"n1", "n2", "n3"}} {
		m := CanonicalMembership(members)
		for i := range 200 {
			key := fmt.Sprintf("http-route::api.List::%d-%s", i, strings.Repeat("x", i))
			if got, want := OwnerOf([]byte(key), m), PlaceCanonical(key, m).Owner; got != want {
				t.Fatalf("OwnerOf(%q, %v) = %q, PlaceCanonical says %q", key, m, got, want)
			}
		}
	}
	if got := OwnerOf([]byte("k"), nil); got != "" {
		t.Fatalf("OwnerOf over no members = %q", got)
	}
}

// PlaceCanonicalBytes places a key exactly as PlaceCanonical does, for every
// membership size and for keys longer than its stack buffer.
func TestPlaceCanonicalBytesMatchesPlaceCanonical(t *testing.T) {
	members := CanonicalMembership([]string{"a@h1:1", "b@h2:1", "c@h3:1", "d@h4:1"})
	keys := []string{"", "k", "http-route::cluster.Thing::0123456789abcdef0123456789abcdef", strings.Repeat("x", 400)}
	for size := 0; size <= len(members); size++ {
		for i := range 200 {
			for _, k := range keys {
				k += fmt.Sprint(i)
				want, got := PlaceCanonical(k, members[:size]), PlaceCanonicalBytes([]byte(k), members[:size])
				if got != want {
					t.Fatalf("%d members, key %q: bytes %+v, string %+v", size, k, got, want)
				}
			}
		}
	}
}
