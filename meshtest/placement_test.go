package meshtest

import (
	"strings"
	"testing"

	"meshgo.dev/mesh/internal/continuity"
)

func TestKeyOwnedBy(t *testing.T) {
	members := []string{"primary@127.0.0.1:4370", "standby@[::1]:4370"}
	for _, owner := range members {
		key := KeyOwnedBy(t, "order", members, owner)
		if !strings.HasPrefix(key, "order-") || continuity.Place(key, members).Owner != owner {
			t.Fatalf("KeyOwnedBy(%s) = %q", owner, key)
		}
	}
	if key, ok := keyOwnedBy("order", members, "elsewhere@h:1"); ok {
		t.Fatalf("a key owned by a non-member: %q", key)
	}
}
