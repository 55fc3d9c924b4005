package cluster_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ackedRoute is a keyed count-2 route request the client got a 200 for.
type ackedRoute struct {
	key    string // the Idempotency-Key sent
	record string // the record's request key (X-Mesh-Continuity-Request-Key)
	node   *node  // where it was sent
	body   string
}

// sendKeyed sends GET path with Idempotency-Key key to each node of targets
// (keys[i] to targets[i]) from a client with at most workers requests in
// flight, and returns the answers in the order of keys.
func sendKeyed(t *testing.T, path string, keys []string, targets []*node, workers int) []ackedRoute {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer c.CloseIdleConnections()
	out := make([]ackedRoute, len(keys))
	status := make([]int, len(keys))
	errs := make([]error, len(keys))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				req, err := http.NewRequest(http.MethodGet, targets[i].http+path, nil)
				if err != nil {
					errs[i] = err
					continue
				}
				req.Header.Set("Idempotency-Key", keys[i])
				resp, err := c.Do(req)
				if err != nil {
					errs[i] = err
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				status[i], errs[i] = resp.StatusCode, err
				out[i] = ackedRoute{key: keys[i], record: resp.Header.Get("X-Mesh-Continuity-Request-Key"), node: targets[i], body: string(b)}
			}
		})
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()
	for i := range keys {
		if errs[i] != nil || status[i] != http.StatusOK || out[i].record == "" {
			t.Fatalf("GET %s key %s on %s: %d %v %q (record key %q)", path, keys[i], targets[i].name, status[i], errs[i], out[i].body, out[i].record)
		}
	}
	return out
}

// transferAttempt is the attempt a /transfer body names.
func transferAttempt(t *testing.T, body string) string {
	t.Helper()
	var doc struct {
		AttemptID string `json:"attempt_id"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.AttemptID == "" {
		t.Fatalf("transfer body %q: %v", body, err)
	}
	return doc.AttemptID
}

// transferRuns counts the "[testapp] transfer ran" lines of a run's log per
// request key.
func transferRuns(log string) map[string]int {
	runs := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "[testapp] transfer ran") {
			continue
		}
		_, rest, ok := strings.Cut(line, "request_key=")
		if !ok {
			continue
		}
		key, _, _ := strings.Cut(rest, " ")
		runs[key]++
	}
	return runs
}

// recordsByKey lists every record a node holds, by request key.
func (h *harness) recordsByKey(n *node) map[string]recordDoc {
	h.t.Helper()
	var l listDoc
	if err := h.query(&l, "cluster", "continuity", n.name, "--limit", "100000"); err != nil {
		h.t.Fatal(err)
	}
	if l.Truncated {
		h.t.Fatalf("%s: record list truncated at %d of %d", n.name, len(l.Records), l.TotalRecords)
	}
	out := make(map[string]recordDoc, len(l.Records))
	for _, r := range l.Records {
		out[r.RequestKey] = r
	}
	return out
}

// storeRecovered returns the single store_recovered entry of a node's run.
func (h *harness) storeRecovered(n *node) entryDoc {
	h.t.Helper()
	d, err := h.diagnostics(n)
	if err != nil {
		h.t.Fatal(err)
	}
	rec := d.find("store_recovered", "")
	if len(rec) != 1 {
		h.t.Fatalf("%s: %d store_recovered entries", n.name, len(rec))
	}
	return rec[0]
}

// onePrimary waits until the pair has one primary and one standby at one
// epoch, each seeing the other.
func (h *harness) onePrimary(p, s *node, timeout time.Duration) {
	h.t.Helper()
	h.eventually(timeout, func() error {
		var roles []string
		var epochs []uint64
		for _, n := range []*node{p, s} {
			st, err := h.status(n)
			if err != nil {
				return err
			}
			if len(st.Membership.PeerNodes) != 1 {
				return fmt.Errorf("%s: peers %v", n.name, st.Membership.PeerNodes)
			}
			roles, epochs = append(roles, st.Authority.Role), append(epochs, st.Authority.Epoch)
		}
		slices.Sort(roles)
		if roles[0] != "primary" || roles[1] != "standby" || epochs[0] != epochs[1] || epochs[0] > 1 {
			return fmt.Errorf("roles %v, epochs %v: want one primary and one standby at one epoch (0 or 1)", roles, epochs)
		}
		return nil
	})
}

// TestLogStoreFullPairCrashAtScale is the acceptance's full-pair crash at its
// scale: 1,000 acknowledged count-2 keyed route requests, sent concurrently
// by a bounded client to both nodes, and count-2 declared work acknowledged
// and still running; then both nodes are SIGKILLed together and restarted
// with their original environment. Every acknowledged record is back on both
// nodes and the two agree on it; each route key's retry, on either node,
// answers the stored status and body without running the handler again; the
// pending work completes exactly once, under a new attempt; one primary.
func TestLogStoreFullPairCrashAtScale(t *testing.T) {
	h := newHarness(t)
	effects := filepath.Join(h.dir, "effects")
	extra := []string{"MESH_CONTINUITY_STORE=log", "TESTAPP_DECLARE_SLOW=1", "TESTAPP_SLOW_MS=6000",
		"TESTAPP_EFFECT_LOG=" + effects}
	p, s := readyPair(t, h, extra...)

	const routes, works, workers = 1000, 8, 16
	keys := make([]string, routes)
	targets := make([]*node, routes)
	for i := range keys {
		keys[i] = fmt.Sprintf("scale-route-%04d", i)
		targets[i] = []*node{p, s}[i%2]
	}
	start := time.Now()
	acked := sendKeyed(t, "/transfer", keys, targets, workers)
	t.Logf("%d keyed count-2 route requests acknowledged in %v", routes, time.Since(start).Round(time.Millisecond))

	var workKeys []string
	for i := range works {
		key := fmt.Sprintf("scale-work-%d", i)
		resp, err := http.Post([]*node{p, s}[i%2].http+"/submit?key="+key, "text/plain", nil)
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
	// The attempts the work was acknowledged under, from the node that
	// submitted it (its record is pending there, running or dispatched).
	before := h.recordsByKey(p)
	for key, r := range h.recordsByKey(s) {
		if _, ok := before[key]; !ok {
			before[key] = r
		}
	}
	// Both nodes die together while every Slow execution still runs.
	var kill sync.WaitGroup
	kill.Go(p.proc.Kill)
	kill.Go(s.proc.Kill)
	kill.Wait()
	if b, _ := os.ReadFile(effects); len(b) != 0 {
		t.Fatalf("work finished before the kill; the test needs it pending: %s", b)
	}
	for _, key := range workKeys {
		if r, ok := before[key]; !ok || r.Phase == "completed" || r.AttemptID == "" {
			t.Fatalf("work %s before the kill: %+v (found %v), want pending with an attempt", key, r, ok)
		}
	}

	h.restart(p)
	h.restart(s)
	for _, n := range []*node{p, s} {
		rec := h.storeRecovered(n)
		pending, _ := strconv.Atoi(rec.meta("pending"))
		retained, _ := strconv.Atoi(rec.meta("retained"))
		t.Logf("%s recovered %d pending and %d retained records (%s segments, %s entries, %s bytes)", n.name,
			pending, retained, rec.meta("segments"), rec.meta("entries"), rec.meta("bytes"))
		if pending < works || retained < routes {
			t.Fatalf("%s recovered %d pending and %d retained records, want at least %d and %d", n.name, pending, retained, works, routes)
		}
	}
	h.onePrimary(p, s, 15*time.Second)

	final := map[string]string{} // work key: the attempt both nodes completed it under
	for _, key := range workKeys {
		var attempts []string
		for _, n := range []*node{p, s} {
			r := h.waitRecord(n, key, 30*time.Second, completed)
			if r.AttemptID == "" || r.AttemptID == before[key].AttemptID {
				t.Fatalf("%s: work %s completed under attempt %q, want a new attempt after %q", n.name, key, r.AttemptID, before[key].AttemptID)
			}
			attempts = append(attempts, r.AttemptID)
		}
		if attempts[0] != attempts[1] {
			t.Fatalf("nodes disagree on work %s: completed under %v", key, attempts)
		}
		final[key] = attempts[0]
	}
	b, err := os.ReadFile(effects)
	if err != nil {
		t.Fatal(err)
	}
	ran := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		key, attempt, _ := strings.Cut(line, " ")
		ran[key]++
		if want, ok := final[key]; ok && attempt != want {
			t.Errorf("work %s ran to its end under attempt %s, its record completed under %s", key, attempt, want)
		}
	}
	for _, key := range workKeys {
		if ran[key] != 1 {
			t.Errorf("work %s completed %d times, want once (effects: %s)", key, ran[key], b)
		}
	}

	// Both nodes hold every acknowledged route record, completed under the
	// attempt its body names, and agree on it.
	recs := []map[string]recordDoc{h.recordsByKey(p), h.recordsByKey(s)}
	for _, a := range acked {
		attempt := transferAttempt(t, a.body)
		for i, n := range []*node{p, s} {
			r, ok := recs[i][a.record]
			if !ok || completed(r) != nil || r.AttemptID != attempt {
				t.Fatalf("%s: acknowledged route %s (record %s, attempt %s): %+v (found %v)", n.name, a.key, a.record, attempt, r, ok)
			}
		}
		if a, b := recs[0][a.record], recs[1][a.record]; a.AttemptID != b.AttemptID || a.Phase != b.Phase || a.Result != b.Result || a.OwnerNode != b.OwnerNode {
			t.Fatalf("nodes disagree on %s: %+v and %+v", a.RequestKey, a, b)
		}
	}
	// A retry of every key, on either node, is the stored answer.
	for _, n := range []*node{p, s} {
		same := make([]*node, routes)
		for i := range same {
			same[i] = n
		}
		again := sendKeyed(t, "/transfer", keys, same, workers)
		for i, a := range acked {
			if again[i].body != a.body || again[i].record != a.record {
				t.Fatalf("retry of %s on %s: record %s %q, want record %s %q", a.key, n.name, again[i].record, again[i].body, a.record, a.body)
			}
		}
	}
	for _, n := range []*node{p, s} {
		if runs := transferRuns(n.proc.Log()); len(runs) != 0 {
			t.Fatalf("%s ran the transfer handler again after the restart for %d keys", n.name, len(runs))
		}
	}
}

// lastFrameEnd is where a segment file's frames end: the active segment is
// preallocated ahead of the writes with filler bytes (0xA5), which Open reads
// as unused space. (A frame that happens to end in that byte ends a little
// later; cutting from here is inside it all the same.)
func lastFrameEnd(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := len(bytes.TrimRight(b, "\xa5"))
	return int64(end)
}

// lastSegment is the newest segment file (not a compacted one) of a log.
func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment under %s: %v", dir, err)
	}
	slices.Sort(segs)
	return segs[len(segs)-1]
}

// TestLogStoreTornTailWithRealProcesses: a node's last segment is cut in the
// middle of its last record between runs. The node starts and reports
// store_recovered with the cut bytes. Started alone, its own log still holds
// every acknowledged record except at most the last one (the cut reaches
// only the last group commit, and the client sent one request at a time, so
// that commit is the last request's); once its peer is back, it holds every
// one of them, a retry of each answers the stored body and no handler runs
// again.
func TestLogStoreTornTailWithRealProcesses(t *testing.T) {
	h := newHarness(t)
	p, s := readyPair(t, h, "MESH_CONTINUITY_STORE=log")

	const routes = 40
	keys := make([]string, routes)
	targets := make([]*node, routes)
	for i := range keys {
		keys[i] = fmt.Sprintf("torn-route-%02d", i)
		targets[i] = p
	}
	acked := sendKeyed(t, "/transfer", keys, targets, 1) // one at a time: acks in log order

	p.proc.Kill()
	s.proc.Kill()
	seg := lastSegment(t, filepath.Join(h.dir, "state-primary", "records"))
	end := lastFrameEnd(t, seg)
	const cut = 9 // well inside the last record's frame
	if end <= cut {
		t.Fatalf("segment %s ends at %d", seg, end)
	}
	if err := os.Truncate(seg, end-cut); err != nil {
		t.Fatal(err)
	}
	t.Logf("cut %s at %d (its last frame ended at %d)", filepath.Base(seg), end-cut, end)

	// The node alone: what its own log kept.
	h.restart(p)
	rec := h.storeRecovered(p)
	truncated, _ := strconv.ParseInt(rec.meta("truncated_bytes"), 10, 64)
	if truncated <= 0 || rec.meta("truncated_file") == "" {
		t.Fatalf("store_recovered after a torn tail: truncated_bytes %q, truncated_file %q", rec.meta("truncated_bytes"), rec.meta("truncated_file"))
	}
	t.Logf("store_recovered: truncated %d bytes of %s at %s (retained %s, pending %s)", truncated,
		rec.meta("truncated_file"), rec.meta("truncated_at"), rec.meta("retained"), rec.meta("pending"))
	own := h.recordsByKey(p)
	var lost []string
	for i, a := range acked {
		r, ok := own[a.record]
		if ok && completed(r) == nil && r.AttemptID == transferAttempt(t, a.body) {
			continue
		}
		if i != routes-1 {
			t.Fatalf("own log lost acknowledged route %s (#%d of %d, not the last): %+v (found %v)", a.key, i, routes, r, ok)
		}
		// The record was made durable before its handler ran, in an
		// earlier group commit: the cut takes only its completion.
		if !ok || r.Phase == "completed" {
			t.Fatalf("own log holds the last route %s as %+v (found %v), want its pending version", a.key, r, ok)
		}
		lost = append(lost, a.key)
	}
	t.Logf("own log of %s alone: %d of %d acknowledged records, missing %v", p.name, routes-len(lost), routes, lost)

	// With the peer back: all of them, on both nodes.
	h.restart(s)
	h.onePrimary(p, s, 15*time.Second)
	for _, n := range []*node{p, s} {
		for _, a := range acked {
			attempt := transferAttempt(t, a.body)
			r := h.waitRecord(n, a.record, 10*time.Second, completed)
			if r.AttemptID != attempt {
				t.Fatalf("%s: route %s completed under %s, acknowledged under %s", n.name, a.key, r.AttemptID, attempt)
			}
			status, _, body := httpGetKey(t, n.http+"/transfer", a.key)
			if status != http.StatusOK || body != a.body {
				t.Fatalf("retry of %s on %s: %d %q, want 200 %q", a.key, n.name, status, body, a.body)
			}
		}
	}
	for _, n := range []*node{p, s} {
		if runs := transferRuns(n.proc.Log()); len(runs) != 0 {
			t.Fatalf("%s ran the transfer handler again after the restart: %v", n.name, runs)
		}
	}
}
