package meshtest

import (
	"strconv"
	"testing"

	"meshgo.dev/mesh/internal/continuity"
)

// KeyOwnedBy returns a request key (for an Idempotency-Key header or
// Node.Submit) that starts with prefix and whose placement owner among
// members is owner, so a test can send work to a chosen node. It fails t if
// none of 1000 suffixes lands on owner (owner is not a member, say).
func KeyOwnedBy(t testing.TB, prefix string, members []string, owner string) string {
	t.Helper()
	if key, ok := keyOwnedBy(prefix, members, owner); ok {
		return key
	}
	t.Fatalf("no key of %s owned by %s among %v", prefix, owner, members)
	return ""
}

// ClientKeyOwnedBy returns an Idempotency-Key that starts with prefix and
// whose request key, scope followed by the client key, is placed on owner
// among members. scope is what a clustered route puts before a client's key
// (http-route::<name>::caller-<tag>::): a test learns it from the
// X-Mesh-Continuity-Request-Key of a keyed request, which is scope + key.
func ClientKeyOwnedBy(t testing.TB, scope, prefix string, members []string, owner string) string {
	t.Helper()
	if key, ok := scopedKeyOwnedBy(scope, prefix, members, owner); ok {
		return key
	}
	t.Fatalf("no key of %s under %s owned by %s among %v", prefix, scope, owner, members)
	return ""
}

func keyOwnedBy(prefix string, members []string, owner string) (string, bool) {
	return scopedKeyOwnedBy("", prefix, members, owner)
}

func scopedKeyOwnedBy(scope, prefix string, members []string, owner string) (string, bool) {
	m := continuity.CanonicalMembership(members)
	for i := range 1000 {
		key := prefix + "-" + strconv.Itoa(i)
		if continuity.PlaceCanonical(scope+key, m).Owner == owner {
			return key, true
		}
	}
	return "", false
}
