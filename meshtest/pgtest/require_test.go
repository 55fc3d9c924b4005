package pgtest

import (
	"errors"
	"fmt"
	"testing"
)

// recordingTB captures the first Fatalf or Skipf instead of ending the test.
type recordingTB struct {
	testing.TB
	first string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatalf(format string, args ...any) {
	if r.first == "" {
		r.first = "fatal: " + fmt.Sprintf(format, args...)
	}
}

func (r *recordingTB) Skipf(format string, args ...any) {
	if r.first == "" {
		r.first = "skip: " + fmt.Sprintf(format, args...)
	}
}

// CI sets MESH_REQUIRE_POSTGRES=1: a missing PostgreSQL must fail the test,
// never skip it. Without the variable a developer without PostgreSQL skips.
func TestUnavailableFailsWhenRequired(t *testing.T) {
	down := errors.New("no initdb on PATH")
	for _, tt := range []struct {
		require, want string
	}{{"1", "fatal: "}, {"", "skip: "}} {
		t.Setenv(EnvRequire, tt.require)
		r := &recordingTB{TB: t}
		unavailable(r, down)
		if len(r.first) < len(tt.want) || r.first[:len(tt.want)] != tt.want {
			t.Fatalf("%s=%q: got %q, want a %s", EnvRequire, tt.require, r.first, tt.want)
		}
	}
	r := &recordingTB{TB: t}
	unavailable(r, fmt.Errorf("bad DATABASE_URL: %w", errMisconfigured))
	if r.first[:7] != "fatal: " {
		t.Fatalf("a misconfigured DATABASE_URL must fail even when not required: %q", r.first)
	}
}
