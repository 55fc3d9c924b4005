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

func keyOwnedBy(prefix string, members []string, owner string) (string, bool) {
	m := continuity.CanonicalMembership(members)
	for i := range 1000 {
		key := prefix + "-" + strconv.Itoa(i)
		if continuity.PlaceCanonical(key, m).Owner == owner {
			return key, true
		}
	}
	return "", false
}
