package pgtest

import (
	"errors"
	"fmt"
	"testing"

	"meshgo.dev/mesh/meshtest/internal/require"
)

// CI sets MESH_REQUIRE_POSTGRES=1: a missing PostgreSQL must fail the test,
// never skip it. Without the variable a developer without PostgreSQL skips;
// a misconfigured DATABASE_URL fails either way.
func TestUnavailableFailsWhenRequired(t *testing.T) {
	require.CheckRequired(t, EnvRequire, unavailable, errors.New("no initdb on PATH"))
	t.Setenv(EnvRequire, "")
	r := &require.Recorder{TB: t}
	unavailable(r, fmt.Errorf("bad DATABASE_URL: %w", errMisconfigured))
	if len(r.First) < 7 || r.First[:7] != "fatal: " {
		t.Fatalf("a misconfigured DATABASE_URL must fail even when not required: %q", r.First)
	}
}
