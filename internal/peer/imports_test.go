package peer

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPeerDoesNotImportEngine: the link hands what it reads to a Handler;
// it never reaches into the engine or the public package, directly or
// through another package, in its code or its tests.
func TestPeerDoesNotImportEngine(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	found := false
	for _, d := range deps {
		switch {
		case d == "meshgo.dev/mesh/internal/wire":
			found = true
		case d == "meshgo.dev/mesh", d == "meshgo.dev/mesh/internal/cluster", strings.HasPrefix(d, "meshgo.dev/mesh/internal/cluster/"):
			t.Errorf("internal/peer depends on %s", d)
		}
	}
	if !found {
		t.Fatalf("internal/wire missing from the dependencies listed (%d): the listing is not peer's", len(deps))
	}
}
