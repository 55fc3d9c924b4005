package main

import (
	"strings"
	"testing"

	"meshgo.dev/mesh/internal/continuity"
)

func TestPlacedKeysAreUniqueAndOwnedByWant(t *testing.T) {
	members := []string{"standby@[::1]:4370", "primary@127.0.0.1:4370"}
	const scope = "http-route::api.One::caller-00112233445566778899aabbccddeeff::"
	k := newPlacedKeys(scope, "k-", members, "primary@127.0.0.1:4370")
	k.Fill(500)
	seen := map[string]bool{}
	var keep []string
	for i := range 600 { // 100 past the pool: generated inline
		key := k.Next()
		if i == 0 {
			keep = append(keep, key)
		}
		if !strings.HasPrefix(key, "k-") || seen[key] {
			t.Fatalf("key %d %q: bad prefix or repeated", i, key)
		}
		seen[key] = true
		if got := continuity.Place(scope+key, members).Owner; got != "primary@127.0.0.1:4370" {
			t.Fatalf("key %q placed on %s", key, got)
		}
	}
	if got := k.Inline(); got != 100 {
		t.Fatalf("inline keys = %d, want 100", got)
	}
	k.Fill(10)
	if !seen[keep[0]] || !strings.HasPrefix(keep[0], "k-") {
		t.Fatalf("a key handed out before Fill changed: %q", keep[0])
	}
}
