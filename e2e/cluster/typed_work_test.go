package cluster_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

type settleDoc struct {
	Outcome   string `json:"outcome"`
	AttemptID string `json:"attempt_id"`
	Error     string `json:"error"`
	Reason    string `json:"reason"`
	Output    *struct {
		ID      int    `json:"id"`
		Node    string `json:"node"`
		Attempt string `json:"attempt"`
	} `json:"output"`
}

// settle calls the test app's typed work endpoint on n.
func settle(t *testing.T, n *node, query string) settleDoc {
	t.Helper()
	resp, err := http.Post(n.http+"/work/settle?"+query, "application/json", nil)
	if err != nil {
		t.Fatalf("settle %s: %v", query, err)
	}
	defer resp.Body.Close()
	var d settleDoc
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatalf("settle %s: %v", query, err)
	}
	return d
}

// keyOwnedBy returns a request key the pair places on owner.
func keyOwnedBy(t *testing.T, prefix string, owner *node, members ...*node) string {
	t.Helper()
	var names []string
	for _, m := range members {
		names = append(names, m.name)
	}
	canonical := continuity.CanonicalMembership(names)
	for i := range 1000 {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if continuity.PlaceCanonical(k, canonical).Owner == owner.name {
			return k
		}
	}
	t.Fatalf("no key placed on %s", owner.name)
	return ""
}

// Typed work submitted on the standby and owned by the primary: the handle
// on the standby returns the primary's output; the same input again is a
// duplicate answered from the stored output, another input a conflict; meshc
// shows the stored output inline.
func TestTypedWorkResultFromTheOwner(t *testing.T) {
	h := newHarness(t)
	p := h.start("primary", "127.0.0.1", "primary", longWindow, "TESTAPP_HTTP_ADDR="+httpAddr(t))
	s := h.start("standby", "::1", "standby", longWindow, "TESTAPP_HTTP_ADDR="+httpAddr(t))
	h.waitAuthority(s, "standby", 0, 1, 10*time.Second)
	h.waitAuthority(p, "primary", 0, 1, 10*time.Second)
	key := keyOwnedBy(t, "settle", p, p, s)

	d := settle(t, s, "key="+key+"&id=42&wait=1")
	if d.Outcome != "created" || d.Output == nil || d.Output.ID != 42 || d.Output.Node != p.name || d.Output.Attempt != d.AttemptID {
		t.Fatalf("first submission %+v (output %+v), want the primary's output", d, d.Output)
	}
	dup := settle(t, s, "key="+key+"&id=42&wait=1")
	if dup.Outcome != "duplicate" || dup.Output == nil || *dup.Output != *d.Output {
		t.Fatalf("duplicate %+v, want the stored output %+v", dup, d.Output)
	}
	conflict := settle(t, p, "key="+key+"&id=43&wait=1")
	if conflict.Outcome != "conflict" || conflict.Output != nil || conflict.Error == "" {
		t.Fatalf("conflict %+v", conflict)
	}
	if n := strings.Count(p.proc.Log(), "[testapp] settle started request_key="+key+" "); n != 1 {
		t.Fatalf("the work ran %d times on the primary, want 1", n)
	}
	lookup := settle(t, p, "key="+key+"&lookup=1&wait=1")
	if lookup.Output == nil || *lookup.Output != *d.Output {
		t.Fatalf("lookup on the primary %+v", lookup)
	}

	for _, n := range []*node{p, s} {
		var doc struct {
			Record         recordDoc       `json:"record"`
			ResultEncoding string          `json:"result_encoding"`
			ResultValue    json.RawMessage `json:"result_value"`
		}
		if err := h.query(&doc, "cluster", "continuity", n.name, key); err != nil {
			t.Fatal(err)
		}
		var out struct {
			ID   int    `json:"id"`
			Node string `json:"node"`
		}
		if err := json.Unmarshal(doc.ResultValue, &out); err != nil || doc.ResultEncoding != "json" || out.ID != 42 || out.Node != p.name ||
			doc.Record.ExecutionNode != p.name || doc.Record.Phase != "completed" {
			t.Fatalf("meshc on %s: %+v %s (%v)", n.name, doc.Record, doc.ResultValue, err)
		}
		text, errs, code := h.meshc("cluster", "continuity", n.name, key)
		if code != 0 || !strings.Contains(text, "result_encoding:") || !strings.Contains(text, `"node":"`+p.name+`"`) {
			t.Fatalf("meshc text on %s: exit %d %s %s", n.name, code, text, errs)
		}
	}
}

// SIGKILL the owner while typed work runs: the handle on the survivor
// returns the output of the re-run there, under a new attempt.
func TestTypedWorkResultFollowsFailover(t *testing.T) {
	h := newHarness(t)
	p := h.start("primary", "127.0.0.1", "primary", longWindow, "TESTAPP_HTTP_ADDR="+httpAddr(t))
	s := h.start("standby", "::1", "standby", longWindow, "TESTAPP_HTTP_ADDR="+httpAddr(t))
	h.waitAuthority(s, "standby", 0, 1, 10*time.Second)
	h.waitAuthority(p, "primary", 0, 1, 10*time.Second)
	key := keyOwnedBy(t, "settle-failover", p, p, s)

	const workMS = 1500
	done := make(chan settleDoc, 1)
	go func() {
		resp, err := http.Post(fmt.Sprintf("%s/work/settle?key=%s&id=7&sleep_ms=%d&wait=1", s.http, key, workMS), "application/json", nil)
		if err != nil {
			done <- settleDoc{Error: err.Error()}
			return
		}
		defer resp.Body.Close()
		var d settleDoc
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
			d.Error = err.Error()
		}
		done <- d
	}()
	p.proc.WaitLog(t, "[testapp] settle started request_key="+key+" ", 10*time.Second)
	p.proc.Kill()
	killed := time.Now()

	var d settleDoc
	select {
	case d = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Result did not return after the owner was killed")
	}
	took := time.Since(killed)
	t.Logf("Result returned %v after SIGKILL", took.Round(10*time.Millisecond))
	if d.Error != "" || d.Output == nil || d.Output.Node != s.name || d.Output.ID != 7 || d.Output.Attempt == d.AttemptID {
		t.Fatalf("result after failover %+v (output %+v), want the survivor's re-run under a new attempt", d, d.Output)
	}
	// Failover (peer timeout 1.5 s plus promotion) plus the re-run.
	if limit := 5*time.Second + workMS*time.Millisecond; took > limit {
		t.Fatalf("Result took %v after the kill, more than %v", took, limit)
	}
	rec := h.waitRecord(s, key, 5*time.Second, completed)
	if rec.ExecutionNode != s.name || rec.AttemptID != d.Output.Attempt {
		t.Fatalf("survivor record %+v", rec)
	}
}
