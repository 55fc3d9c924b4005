package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/pgserver"
)

// TestRunShort runs the benchmark for a fraction of a second against a
// throwaway PostgreSQL server, so the program keeps building and measuring.
func TestRunShort(t *testing.T) {
	if _, err := pgserver.BinDir(); err != nil {
		if os.Getenv("MESH_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("no PostgreSQL server binaries, and MESH_REQUIRE_POSTGRES=1: %v", err)
		}
		t.Skipf("no PostgreSQL server binaries: %v", err)
	}
	var buf bytes.Buffer
	o := options{clients: 2, warmup: 100 * time.Millisecond, window: 300 * time.Millisecond, rounds: 1, fastPG: true}
	if err := run(context.Background(), o, &buf); err != nil {
		t.Fatalf("run: %v\n%s", err, buf.String())
	}
	if !strings.Contains(buf.String(), "| dbos | ") || strings.Contains(buf.String(), "| dbos | 0 |") {
		t.Fatalf("no measured row:\n%s", buf.String())
	}
}
