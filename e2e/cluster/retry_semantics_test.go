package cluster_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// transferRan matches the line the test app logs for every execution of a
// transfer route.
var transferRan = regexp.MustCompile(`\[testapp\] transfer ran handler=(\S+) node=(\S+) request_key=(\S+) attempt_id=(\S+) epoch=(\d+)`)

// The node running a count-2 route request is SIGKILLed after the handler's
// side effect and before any client heard back (the handler holds on a file
// the test removes before the kill). The survivor closes the record
// outcome_unknown, and a retry of the same Idempotency-Key there answers 503
// {"error":"outcome_unknown"} without running the handler again; for a route
// declared mesh.Rerunnable, the retry runs the handler again under a new
// attempt and answers 200.
func TestRouteRetryAfterOwnerKilled(t *testing.T) {
	for _, tc := range []struct {
		name, path, handler string
		rerun               bool
	}{
		{"default", "/transfer", "api.Transfer", false},
		{"rerunnable", "/transfer-rerun", "api.TransferRerun", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			hold := filepath.Join(h.dir, "hold-"+tc.name)
			if err := os.WriteFile(hold, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			p, s := readyPair(t, h, "TESTAPP_HOLD_FILE="+hold)
			const clientKey = "transfer-7"

			type answer struct {
				code int
				body string
				err  error
			}
			send := func(n *node) answer {
				req, err := http.NewRequest(http.MethodGet, n.http+tc.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Idempotency-Key", clientKey)
				resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
				if err != nil {
					return answer{err: err}
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return answer{code: resp.StatusCode, body: strings.TrimSpace(string(b))}
			}
			runs := func() [][]string {
				var out [][]string
				for _, n := range []*node{p, s} {
					for _, m := range transferRan.FindAllStringSubmatch(n.proc.Log(), -1) {
						if m[1] == tc.handler {
							out = append(out, m)
						}
					}
				}
				return out
			}

			first := make(chan answer, 1)
			go func() { first <- send(p) }()
			var ran []string
			h.eventually(15*time.Second, func() error {
				r := runs()
				if len(r) != 1 || !strings.Contains(p.proc.Log()+s.proc.Log(), "[testapp] transfer held handler="+tc.handler) {
					return fmt.Errorf("%d executions, none held yet", len(r))
				}
				ran = r[0]
				return nil
			})
			owner, survivor := p, s
			if ran[2] == s.name {
				owner, survivor = s, p
			}
			key := ran[3]
			t.Logf("request %s ran on %s (ingress %s)", key, owner.name, p.name)
			h.waitRecord(survivor, key, 10*time.Second, pendingMirrored)

			if err := os.Remove(hold); err != nil {
				t.Fatal(err)
			}
			owner.proc.Kill()
			closed := h.waitRecord(survivor, key, 15*time.Second, func(r recordDoc) error {
				if r.Phase != "rejected" {
					return fmt.Errorf("survivor record %s/%s", r.Phase, r.Error)
				}
				return nil
			})
			if closed.Error != "outcome_unknown" {
				t.Fatalf("survivor closed %s with %q, want outcome_unknown", key, closed.Error)
			}
			// The first client never had a 200: its connection died with the
			// owner, or (the owner being the other node) the ingress told it
			// outcome_unknown.
			a := <-first
			if a.err == nil && (a.code != http.StatusServiceUnavailable || a.body != `{"error":"outcome_unknown"}`) {
				t.Fatalf("first request answered %d %s", a.code, a.body)
			}
			epoch := uint64(0)
			if owner == p {
				epoch = 1
			}
			h.waitAuthority(survivor, "primary", epoch, 0, 10*time.Second)

			retry := send(survivor)
			if retry.err != nil {
				t.Fatalf("retry on the survivor: %v", retry.err)
			}
			if !tc.rerun {
				if retry.code != http.StatusServiceUnavailable || retry.body != `{"error":"outcome_unknown"}` {
					t.Fatalf("retry on the survivor: %d %s, want 503 outcome_unknown", retry.code, retry.body)
				}
				if r := runs(); len(r) != 1 {
					t.Fatalf("handler ran %d times, want once", len(r))
				}
				return
			}
			if retry.code != http.StatusOK {
				t.Fatalf("retry on the survivor: %d %s, want 200 from a re-run", retry.code, retry.body)
			}
			r := runs()
			var rerun []string
			for _, m := range r {
				if m[4] != ran[4] {
					rerun = m
				}
			}
			if len(r) != 2 || rerun == nil || rerun[2] != survivor.name || rerun[3] != key || rerun[5] != fmt.Sprint(epoch) {
				t.Fatalf("executions %v, want a second one on %s under a new attempt at epoch %d", r, survivor.name, epoch)
			}
			want := fmt.Sprintf(`{"handler":%q,"node":%q,"attempt_id":%q,"epoch":%d}`, tc.handler, survivor.name, rerun[4], epoch)
			if retry.body != want {
				t.Fatalf("retry body %s, want %s", retry.body, want)
			}
			h.waitRecord(survivor, key, 5*time.Second, completed)
			again := send(survivor)
			if again.err != nil || again.code != http.StatusOK || again.body != retry.body || len(runs()) != 2 {
				t.Fatalf("retry after the re-run: %+v, want the stored response", again)
			}
		})
	}
}
