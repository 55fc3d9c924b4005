package require

import (
	"errors"
	"strings"
	"testing"
)

// The messages name the kit, the server, the cause and, on a skip, the
// variable that turns it into a failure; fatal fails whatever the variable.
func TestUnavailable(t *testing.T) {
	down := errors.New("no server binary on PATH")
	t.Setenv("MESH_REQUIRE_X", "")
	r := &Recorder{TB: t}
	Unavailable(r, "xtest", "X", "MESH_REQUIRE_X", down, false)
	if want := "skip: xtest: X unavailable, skipping: no server binary on PATH (set MESH_REQUIRE_X=1 to fail instead)"; r.First != want {
		t.Errorf("skip message %q, want %q", r.First, want)
	}
	r = &Recorder{TB: t}
	Unavailable(r, "xtest", "X", "MESH_REQUIRE_X", down, true)
	if want := "fatal: xtest: X unavailable: no server binary on PATH"; r.First != want {
		t.Errorf("fatal message %q, want %q", r.First, want)
	}
	CheckRequired(t, "MESH_REQUIRE_X", func(tb testing.TB, err error) {
		Unavailable(tb, "xtest", "X", "MESH_REQUIRE_X", err, false)
	}, down)
	// Only the first of several calls is kept.
	r = &Recorder{TB: t}
	r.Skipf("one")
	r.Fatalf("two")
	if !strings.HasSuffix(r.First, "one") {
		t.Errorf("recorded %q, want the first call", r.First)
	}
}
