package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// TestMain lets the test binary serve as the node processes the tool starts
// (it starts its own executable with TYPEDWORK_NODE=1).
func TestMain(m *testing.M) {
	if os.Getenv("TYPEDWORK_NODE") == "1" {
		os.Exit(nodeMain())
	}
	os.Exit(m.Run())
}

// TestRunShort runs every scenario once on real node processes with tiny
// settings, so the tool keeps building and measuring.
func TestRunShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three node processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	o := options{clients: 2, warmup: 100 * time.Millisecond, window: 300 * time.Millisecond, rounds: 1,
		scenarios: strings.Join(allScenarios, ","), out: out, bin: exe}
	var buf bytes.Buffer
	if err := run(o, &buf, nil); err != nil {
		t.Fatalf("run: %v\n%s", err, buf.String())
	}
	for _, s := range allScenarios {
		if !strings.Contains(buf.String(), "| "+s+" | ") {
			t.Errorf("no table row for %s:\n%s", s, buf.String())
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []row
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(allScenarios) {
		t.Fatalf("results.json has %d rows, want %d", len(rows), len(allScenarios))
	}
	for _, r := range rows {
		if len(r.Rounds) != 1 || r.Rounds[0].Ops == 0 || r.Rounds[0].Errors != 0 || r.Rounds[0].P99us < r.Rounds[0].P50us ||
			r.Rounds[0].SubmitP50us <= 0 || r.Rounds[0].SubmitP50us > r.Rounds[0].MaxUs {
			t.Errorf("%s: %+v", r.Scenario, r.Rounds)
		}
	}
}

func TestKeysArePlacedOnOwner(t *testing.T) {
	members := []string{"primary@127.0.0.1:4370", "standby@[::1]:4370"}
	k := &keys{prefix: "p:", owner: members[1], members: continuity.CanonicalMembership(members)}
	seen := map[string]bool{}
	for range 200 {
		key := k.next()
		if seen[key] {
			t.Fatalf("key %s handed out twice", key)
		}
		seen[key] = true
		if got := continuity.Place(key, members).Owner; got != members[1] {
			t.Fatalf("key %s placed on %s, want %s", key, got, members[1])
		}
	}
}
