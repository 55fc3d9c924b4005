package cluster_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type switchoverDoc struct {
	Target        string `json:"target"`
	From          string `json:"from"`
	To            string `json:"to"`
	SafetyMode    string `json:"safety_mode"`
	PreviousEpoch uint64 `json:"previous_epoch"`
	Epoch         uint64 `json:"epoch"`
	DurationMS    int64  `json:"duration_ms"`
	Steps         []struct {
		Step      string `json:"step"`
		ElapsedMS int64  `json:"elapsed_ms"`
		Detail    string `json:"detail"`
	} `json:"steps"`
}

// keyedLoad sends keyed count-2 route requests (GET /todos with an
// Idempotency-Key) and count-2 Submits (POST /submit) to both nodes, each
// key once, until stop is closed. It records every acknowledged key and
// every failure.
type keyedLoad struct {
	prefix   string // of every key this load sends
	mu       sync.Mutex
	routes   []string // keys answered 200
	works    []string // keys answered 200 created
	failures []string
	wg       sync.WaitGroup
}

func (l *keyedLoad) run(t *testing.T, nodes []*node, stop <-chan struct{}) {
	client := &http.Client{Timeout: 20 * time.Second}
	for ni, n := range nodes {
		for kind := range 2 {
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					var req *http.Request
					key := fmt.Sprintf("%s-%d-%d-%d", l.prefix, ni, kind, i)
					if kind == 0 {
						req, _ = http.NewRequest(http.MethodGet, n.http+"/todos", nil)
						req.Header.Set("Idempotency-Key", key)
					} else {
						req, _ = http.NewRequest(http.MethodPost, n.http+"/submit?key="+key, nil)
					}
					resp, err := client.Do(req)
					if err != nil {
						l.fail("%s %s: %v", n.name, key, err)
						continue
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case resp.StatusCode != http.StatusOK:
						l.fail("%s %s: %d %s", n.name, key, resp.StatusCode, strings.TrimSpace(string(b)))
					case kind == 0:
						l.add(&l.routes, key)
					case strings.TrimSpace(string(b)) == "created":
						l.add(&l.works, key)
					default:
						l.fail("%s %s: %s", n.name, key, strings.TrimSpace(string(b)))
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
		}
	}
}

func (l *keyedLoad) add(to *[]string, key string) {
	l.mu.Lock()
	*to = append(*to, key)
	l.mu.Unlock()
}

func (l *keyedLoad) fail(format string, args ...any) {
	l.mu.Lock()
	l.failures = append(l.failures, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

// checkLoad asserts that every acknowledged key completed on both nodes
// and that no work key ran twice (the effect log has one line per run).
func checkLoad(t *testing.T, h *harness, l *keyedLoad, effects string, nodes ...*node) {
	t.Helper()
	if len(l.failures) > 0 {
		t.Fatalf("%d requests failed, first: %v", len(l.failures), l.failures[:min(5, len(l.failures))])
	}
	if len(l.routes) == 0 || len(l.works) == 0 {
		t.Fatalf("load acknowledged %d routes and %d works", len(l.routes), len(l.works))
	}
	for _, n := range nodes {
		h.eventually(20*time.Second, func() error {
			ls, err := h.list(n)
			if err != nil {
				return err
			}
			byKey := map[string]recordDoc{}
			for _, r := range ls.Records {
				k := r.RequestKey
				if strings.HasPrefix(k, "http-route::") {
					k = k[strings.LastIndex(k, "::")+2:] // the client's key
				}
				byKey[k] = r
			}
			for _, k := range append(append([]string(nil), l.works...), l.routes...) {
				r, ok := byKey[k]
				if !ok {
					return fmt.Errorf("%s holds no record for %s", n.name, k)
				}
				if err := completed(r); err != nil {
					return fmt.Errorf("%s: %v", n.name, err)
				}
			}
			return nil
		})
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
	for _, k := range l.works {
		if runs[k] != 1 {
			t.Errorf("work %s ran %d times", k, runs[k])
		}
	}
	t.Logf("%d routes and %d works acknowledged, none failed", len(l.routes), len(l.works))
}

// A keyed client load of count-2 routes and Submits runs on both nodes
// while meshc cluster switchover hands the primary role over, and then
// while the old primary restarts: no request fails, every acknowledged key
// completes on both nodes, no work runs twice; the roles swap at epoch 1
// without a failure-driven promotion or a fencing.
func TestSwitchoverUnderLoadThenRestartOldPrimary(t *testing.T) {
	h := newHarness(t)
	effects := filepath.Join(h.dir, "effects")
	p, s := readyPair(t, h, "TESTAPP_DECLARE_SLOW=1", "TESTAPP_SLOW_MS=200", "TESTAPP_EFFECT_LOG="+effects)

	stop := make(chan struct{})
	l := keyedLoad{prefix: "during"}
	l.run(t, []*node{p, s}, stop)
	time.Sleep(time.Second)
	out, errs, code := h.meshc("cluster", "switchover", p.name, "--to", s.name, "--json")
	if code != 0 {
		close(stop)
		l.wg.Wait()
		t.Fatalf("meshc cluster switchover: exit %d: %s", code, errs)
	}
	var sw switchoverDoc
	if err := json.Unmarshal([]byte(out), &sw); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("switchover took %d ms: %+v", sw.DurationMS, sw.Steps)
	if sw.From != p.name || sw.To != s.name || sw.PreviousEpoch != 0 || sw.Epoch != 1 || sw.SafetyMode != "peer" || len(sw.Steps) != 6 {
		t.Errorf("switchover document %+v", sw)
	}
	time.Sleep(time.Second)
	close(stop)
	l.wg.Wait()
	h.waitAuthority(s, "primary", 1, 1, 5*time.Second)
	h.waitAuthority(p, "standby", 1, 1, 5*time.Second)
	checkLoad(t, h, &l, effects, p, s)

	// The old primary restarts (gracefully: it is a standby now) under load
	// sent to the new primary; it comes back as the standby at epoch 1.
	stop = make(chan struct{})
	l2 := keyedLoad{prefix: "after"}
	if err := p.proc.Terminate(); err != nil {
		t.Fatal(err)
	}
	h.restart(p)
	h.waitAuthority(p, "standby", 1, 1, 10*time.Second)
	l2.run(t, []*node{p, s}, stop)
	time.Sleep(time.Second)
	close(stop)
	l2.wg.Wait()
	h.waitAuthority(s, "primary", 1, 1, 5*time.Second)
	checkLoad(t, h, &l2, effects, p, s)

	for _, n := range []*node{p, s} {
		d, err := h.diagnostics(n)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"automatic_promotion", "fenced_rejoin", "stale_epoch_rejected", "completion_rejected"} {
			if len(d.find(bad, "")) > 0 {
				t.Errorf("%s recorded %s", n.name, bad)
			}
		}
	}
	for _, want := range []struct {
		n    *node
		line string
	}{{s, "transition=switchover_promoted"}, {p, "transition=switchover_completed"}} {
		if !strings.Contains(allLogs(want.n), want.line) {
			t.Errorf("%s never logged %s", want.n.name, want.line)
		}
	}
}

// allLogs is every run's log of n.
func allLogs(n *node) string {
	dir := filepath.Dir(n.proc.LogPath())
	matches, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	var b strings.Builder
	for _, m := range matches {
		if c, err := os.ReadFile(m); err == nil {
			b.Write(c)
		}
	}
	return b.String() + n.proc.Log()
}

// SIGTERM of a primary with a connected standby: the standby becomes the
// primary through a switchover, not a failure-driven promotion, and the old
// primary restarts as the standby.
func TestGracefulShutdownOfPrimaryHandsOver(t *testing.T) {
	h := newHarness(t)
	p, s := readyPair(t, h)
	if err := p.proc.Terminate(); err != nil {
		t.Fatal(err)
	}
	h.waitAuthority(s, "primary", 1, 0, 5*time.Second)
	time.Sleep(2 * time.Second) // past the loss handling
	d, err := h.diagnostics(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.find("switchover_promoted", "")) != 1 {
		t.Errorf("standby diagnostics lack switchover_promoted: %+v", d.Entries)
	}
	if n := len(d.find("automatic_promotion", "")); n != 0 {
		t.Errorf("standby recorded %d automatic_promotion after a graceful shutdown", n)
	}
	if !strings.Contains(p.proc.Log(), "transition=switchover_completed") {
		t.Error("the stopped primary did not log switchover_completed")
	}
	h.restart(p)
	h.waitAuthority(p, "standby", 1, 1, 10*time.Second)
	h.waitAuthority(s, "primary", 1, 1, 5*time.Second)
}

// The operator's errors: a switchover asked of the standby names the
// primary and the next step; the roles stay as they were.
func TestSwitchoverRefusedOnStandby(t *testing.T) {
	h := newHarness(t)
	p, s := readyPair(t, h)
	_, errs, code := h.meshc("cluster", "switchover", s.name)
	if code != 1 || !strings.Contains(errs, "rejected: switchover_rejected:not_primary:"+p.name) ||
		!strings.Contains(errs, "run meshc cluster switchover <primary>") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	h.waitAuthority(p, "primary", 0, 1, time.Second)
	h.waitAuthority(s, "standby", 0, 1, time.Second)
}

// The same switchover under load with a lease arbiter, once under
// PostgreSQL and once under etcd: the old primary releases its lease once
// the standby is caught up, the standby wins it at the next epoch, and no
// request fails meanwhile. Then the old primary restarts under load sent to
// both nodes and comes back as the standby at that epoch: still no request
// fails, no work runs twice, nothing is fenced and the lease stays put.
func TestSwitchoverUnderLoadWithLease(t *testing.T) {
	eachLeaseStore(t, testSwitchoverWithLease)
}

func testSwitchoverWithLease(t *testing.T, ls *leaseStore) {
	h := newHarness(t)
	effects := filepath.Join(h.dir, "effects")
	// The primary acts under the lease epoch it won, the standby at it.
	p, s, epoch := leasePair(t, h, ls, "TESTAPP_DECLARE_SLOW=1", "TESTAPP_SLOW_MS=200", "TESTAPP_EFFECT_LOG="+effects)
	// What the nodes recorded before the switchover: the standby was
	// raised to the primary's lease epoch at start (a fenced_rejoin).
	failureDriven := []string{"automatic_promotion", "fenced_rejoin", "stale_epoch_rejected", "completion_rejected", "arbiter_lease_lost"}
	before := map[string]int{}
	for _, n := range []*node{p, s} {
		d, err := h.diagnostics(n)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range failureDriven {
			before[n.name+" "+bad] = len(d.find(bad, ""))
		}
	}

	stop := make(chan struct{})
	l := keyedLoad{prefix: "lease"}
	l.run(t, []*node{p, s}, stop)
	time.Sleep(time.Second)
	out, errs, code := h.meshc("cluster", "switchover", p.name, "--json")
	if code != 0 {
		close(stop)
		l.wg.Wait()
		t.Fatalf("meshc cluster switchover: exit %d: %s", code, errs)
	}
	var sw switchoverDoc
	if err := json.Unmarshal([]byte(out), &sw); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("switchover took %d ms: %+v", sw.DurationMS, sw.Steps)
	if sw.To != s.name || sw.Epoch != epoch+1 || sw.SafetyMode != ls.kind || len(sw.Steps) != 7 || sw.Steps[3].Step != "lease_released" {
		t.Errorf("switchover document %+v, want epoch %d under %s", sw, epoch+1, ls.kind)
	}
	time.Sleep(time.Second)
	close(stop)
	l.wg.Wait()
	h.waitAuthority(s, "primary", epoch+1, 1, 5*time.Second)
	h.waitAuthority(p, "standby", epoch+1, 1, 5*time.Second)
	checkLoad(t, h, &l, effects, p, s)

	// The old primary, a standby now, restarts (gracefully) while load
	// goes on; it comes back as the standby at the new epoch.
	stop = make(chan struct{})
	l2 := keyedLoad{prefix: "lease-after"}
	if err := p.proc.Terminate(); err != nil {
		t.Fatal(err)
	}
	h.restart(p)
	h.waitAuthority(p, "standby", epoch+1, 1, 10*time.Second)
	l2.run(t, []*node{p, s}, stop)
	time.Sleep(time.Second)
	close(stop)
	l2.wg.Wait()
	h.waitAuthority(s, "primary", epoch+1, 1, 5*time.Second)
	checkLoad(t, h, &l2, effects, p, s)

	// Several TTLs later the new primary still holds the lease.
	time.Sleep(2 * leaseTTL)
	st, err := h.leaseStatus(s)
	if err != nil || st.Authority.Lease == nil || st.Authority.Lease.Holder != s.name || st.Authority.Lease.Epoch != epoch+1 {
		t.Fatalf("lease after the switchover and the restart %+v, %v", st.Authority.Lease, err)
	}
	for _, n := range []*node{p, s} {
		d, err := h.diagnostics(n)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range failureDriven {
			// The restarted node's diagnostics begin with its new run.
			if got := len(d.find(bad, "")); n == s && got > before[n.name+" "+bad] || n == p && got > 0 {
				t.Errorf("%s recorded %s during the switchover or the restart (%d before, %d after)", n.name, bad, before[n.name+" "+bad], got)
			}
		}
	}
}
