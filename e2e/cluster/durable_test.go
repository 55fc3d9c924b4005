package cluster_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLogStoreSurvivesLosingBothNodes: with MESH_CONTINUITY_STORE=log, a pair
// acknowledges count-2 Submits of slow work and count-2 keyed route
// requests, then both nodes are SIGKILLed while the work runs. Restarted with
// their original environment, both report store_recovered, hold every
// acknowledged record, complete the pending work exactly once (under a new
// attempt) and answer the route retries with the stored responses.
func TestLogStoreSurvivesLosingBothNodes(t *testing.T) {
	h := newHarness(t)
	effects := filepath.Join(h.dir, "effects")
	extra := []string{"MESH_CONTINUITY_STORE=log", "TESTAPP_DECLARE_SLOW=1", "TESTAPP_SLOW_MS=4000",
		"TESTAPP_EFFECT_LOG=" + effects}
	p, s := readyPair(t, h, extra...)

	const works, routes = 12, 10
	var workKeys []string
	for i := range works {
		key := fmt.Sprintf("durable-work-%d", i)
		node := p
		if i%2 == 1 {
			node = s
		}
		resp, err := http.Post(node.http+"/submit?key="+key, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != "created" {
			t.Fatalf("submit %s: %d %s", key, resp.StatusCode, b)
		}
		workKeys = append(workKeys, key)
	}
	bodies := map[string]string{}
	for i := range routes {
		key := fmt.Sprintf("durable-route-%d", i)
		status, _, body := httpGetKey(t, p.http+"/todos", key)
		if status != http.StatusOK {
			t.Fatalf("route %s: %d %s", key, status, body)
		}
		bodies[key] = body
	}
	// Both nodes die at once, while every Slow execution is still running.
	p.proc.Kill()
	s.proc.Kill()
	if b, _ := os.ReadFile(effects); len(b) != 0 {
		t.Fatalf("work finished before the kill; the test needs it pending: %s", b)
	}

	h.restart(p)
	h.restart(s)
	for _, n := range []*node{p, s} {
		d, err := h.diagnostics(n)
		if err != nil {
			t.Fatal(err)
		}
		rec := d.find("store_recovered", "")
		if len(rec) != 1 {
			t.Fatalf("%s: %d store_recovered entries", n.name, len(rec))
		}
		pending, _ := strconv.Atoi(rec[0].meta("pending"))
		retained, _ := strconv.Atoi(rec[0].meta("retained"))
		t.Logf("%s recovered %d pending and %d retained records", n.name, pending, retained)
		if pending < works || retained < routes {
			t.Fatalf("%s recovered %d pending and %d retained records, want at least %d and %d", n.name, pending, retained, works, routes)
		}
	}
	// One primary and one standby at one epoch. Which node is primary
	// depends on the kills: they are not simultaneous, and a standby that
	// saw its primary die first may have promoted (epoch 1) before its own
	// kill, and then comes back as the primary.
	h.onePrimary(p, s, 15*time.Second)
	for _, key := range workKeys {
		for _, n := range []*node{p, s} {
			r := h.waitRecord(n, key, 30*time.Second, completed)
			if r.AttemptID == "" {
				t.Fatalf("%s: record %s without attempt", n.name, key)
			}
		}
	}
	// Exactly one execution of each key ran to its end.
	b, err := os.ReadFile(effects)
	if err != nil {
		t.Fatal(err)
	}
	ran := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		key, _, _ := strings.Cut(line, " ")
		ran[key]++
	}
	for _, key := range workKeys {
		if ran[key] != 1 {
			t.Errorf("work %s completed %d times, want once (effects: %s)", key, ran[key], b)
		}
	}
	for key, want := range bodies {
		for _, n := range []*node{p, s} {
			status, _, body := httpGetKey(t, n.http+"/todos", key)
			if status != http.StatusOK || body != want {
				t.Errorf("retry of %s on %s: %d %q, want 200 %q", key, n.name, status, body, want)
			}
		}
	}
}
