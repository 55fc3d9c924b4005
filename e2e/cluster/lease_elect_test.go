package cluster_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The primary is killed (SIGKILL) running acknowledged work, and its
// address comes back at once under another name, before the dead node's
// lease expires: the standby, linked to a peer again, may not promote on
// the loss, so the two standbys elect a primary once the lease is free
// (no_primary_under_lease). The work the dead node owned has no owner
// among the members; the elected primary re-runs it, so every acknowledged
// submission completes on both nodes, and the dead node's work runs to its
// end exactly once (a killed run leaves no effect).
//
// The surviving standby's own work may run twice: its runs end while no
// primary is linked, so their completions wait, and the election raises the
// standby's epoch, which supersedes them (fenced_attempt_resumed). That is
// the at-least-once of a fencing, logged here, not checked.
func TestLeaseElectedPrimaryRecoversDeadOwnersWork(t *testing.T) {
	eachLeaseStore(t, testLeaseElectedRecovers)
}

func testLeaseElectedRecovers(t *testing.T, ls *leaseStore) {
	h := newHarness(t)
	effects := filepath.Join(h.dir, "effects")
	work := []string{"TESTAPP_DECLARE_SLOW=1", "TESTAPP_SLOW_MS=3000", "TESTAPP_EFFECT_LOG=" + effects}
	p, s, epoch := leasePair(t, h, ls, work...)

	client := &http.Client{Timeout: 10 * time.Second}
	var acked []string
	for i := range 8 {
		key := fmt.Sprintf("elect-%d", i)
		resp, err := client.Post(p.http+"/submit?key="+key, "text/plain", nil)
		if err != nil {
			t.Fatalf("submit %s: %v", key, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != "created" {
			t.Fatalf("submit %s: %d %s", key, resp.StatusCode, b)
		}
		acked = append(acked, key)
	}
	deadOwned := map[string]bool{}
	for _, k := range acked {
		if r, err := h.record(s, k); err == nil && r.OwnerNode == p.name && r.Phase == "submitted" {
			deadOwned[k] = true
		}
	}
	if len(deadOwned) == 0 {
		t.Fatal("the primary owns none of the pending work at the kill: the scenario tests nothing")
	}
	p.proc.Kill()
	extra := append([]string{"TESTAPP_HTTP_ADDR=" + httpAddr(t), "MESH_ARBITER=" + ls.value, "MESH_DIAGNOSTICS_CAPACITY=20000"}, work...)
	r := h.start("renamed", "127.0.0.1", "standby", extra...)

	primary, _ := waitOnePrimary(t, h, r, s, epoch+1, 20*time.Second)
	d, err := h.diagnostics(primary)
	if err != nil {
		t.Fatal(err)
	}
	elected := false
	for _, e := range d.find("automatic_promotion", "") {
		elected = elected || str(e.Reason) == "no_primary_under_lease"
	}
	if !elected {
		t.Fatalf("%s became primary without an election (the standby won the lease before the renamed node linked): the scenario tests nothing", primary.name)
	}
	for _, n := range []*node{r, s} {
		for _, k := range acked {
			h.waitRecord(n, k, 20*time.Second, completed)
		}
	}
	b, err := os.ReadFile(effects)
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		key, _, _ := strings.Cut(line, " ")
		runs[key]++
	}
	twice := 0
	for _, k := range acked {
		switch {
		case deadOwned[k] && runs[k] != 1:
			t.Errorf("work %s of the killed primary ran to its end %d times, want once (by the elected primary)", k, runs[k])
		case runs[k] == 0:
			t.Errorf("work %s never ran to its end", k)
		case runs[k] > 1:
			twice++
		}
	}
	t.Logf("%d submissions, %d owned by the killed primary, all completed after %s was elected; %d of the standby's own ran again after the election fenced it",
		len(acked), len(deadOwned), primary.name, twice)
}
