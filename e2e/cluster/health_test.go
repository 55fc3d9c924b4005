package cluster_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/meshtest"
)

// healthDoc is the body of the liveness and readiness handlers.
type healthDoc struct {
	Role   string `json:"cluster_role"`
	Live   bool   `json:"live"`
	Mode   string `json:"mode"`
	Node   string `json:"node"`
	Epoch  uint64 `json:"promotion_epoch"`
	Ready  bool   `json:"ready"`
	Reason string `json:"reason"`
	Health string `json:"replication_health"`
}

// probeHTTP GETs path on n with a client timeout and returns the status code
// and body; an error means no answer within the timeout.
func probeHTTP(n *node, path string, timeout time.Duration) (int, healthDoc, error) {
	c := http.Client{Timeout: timeout}
	resp, err := c.Get(n.http + path)
	if err != nil {
		return 0, healthDoc{}, err
	}
	defer resp.Body.Close()
	return decodeHealth(resp)
}

func decodeHealth(resp *http.Response) (int, healthDoc, error) {
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, healthDoc{}, err
	}
	var d healthDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return 0, healthDoc{}, fmt.Errorf("probe body %q: %v", b, err)
	}
	return resp.StatusCode, d, nil
}

// queueProbe connects to n and sends a GET for path without waiting for the
// answer: against a frozen process the kernel accepts the connection and
// buffers the request, which the process serves first thing when resumed.
func queueProbe(t *testing.T, n *node, path string) func() (int, healthDoc) {
	t.Helper()
	addr := strings.TrimPrefix(n.http, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr); err != nil {
		t.Fatal(err)
	}
	return func() (int, healthDoc) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("queued %s probe: %v", path, err)
		}
		defer resp.Body.Close()
		code, d, err := decodeHealth(resp)
		if err != nil {
			t.Fatal(err)
		}
		return code, d
	}
}

// waitProbe polls path on n until check accepts the answer.
func (h *harness) waitProbe(n *node, path string, timeout time.Duration, check func(int, healthDoc) error) healthDoc {
	h.t.Helper()
	var d healthDoc
	h.eventually(timeout, func() error {
		code, doc, err := probeHTTP(n, path, time.Second)
		if err != nil {
			return err
		}
		d = doc
		return check(code, doc)
	})
	return d
}

func readyAs(role string, epoch uint64) func(int, healthDoc) error {
	return func(code int, d healthDoc) error {
		if code != http.StatusOK || !d.Ready || d.Role != role || d.Epoch != epoch || d.Reason != "" {
			return fmt.Errorf("readiness %d %+v, want ready as %s at epoch %d", code, d, role, epoch)
		}
		return nil
	}
}

// waitFrozen waits until every thread of n's process is stopped: SIGSTOP
// takes effect asynchronously on threads running on other CPUs.
func waitFrozen(t *testing.T, n *node) {
	t.Helper()
	meshtest.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", n.proc.Pid()))
		if err != nil || len(tasks) == 0 {
			return fmt.Errorf("no threads of pid %d: %v", n.proc.Pid(), err)
		}
		for _, task := range tasks {
			b, err := os.ReadFile(task)
			if err != nil {
				return err
			}
			// The state follows the parenthesised command name.
			_, rest, _ := strings.Cut(string(b), ") ")
			if !strings.HasPrefix(rest, "T") && !strings.HasPrefix(rest, "t") {
				return fmt.Errorf("%s: state %.1s", task, rest)
			}
		}
		return nil
	})
}

func mustLive(t *testing.T, n *node) {
	t.Helper()
	code, d, err := probeHTTP(n, "/livez", 2*time.Second)
	if err != nil || code != http.StatusOK || !d.Live {
		t.Fatalf("%s liveness: %d %+v %v", n.name, code, d, err)
	}
}

// TestHealthAndReadinessThroughFreezeAndFencing runs a real pair and follows
// both probes and `meshc cluster status A B` through a freeze of the primary,
// the standby's promotion and the old primary's fenced rejoin.
func TestHealthAndReadinessThroughFreezeAndFencing(t *testing.T) {
	const peerTimeout = 1500 * time.Millisecond
	h := newHarness(t)
	timing := fmt.Sprintf("MESH_PEER_TIMEOUT_MS=%d", peerTimeout.Milliseconds())
	p := h.start("primary", "127.0.0.1", "primary", timing, "TESTAPP_HTTP_ADDR="+httpAddr(t))
	s := h.start("standby", "::1", "standby", timing, "TESTAPP_HTTP_ADDR="+httpAddr(t))
	// A joining pair settles within a discovery interval (1 s here) and a
	// snapshot exchange; promotion needs the peer timeout plus a probe of
	// the lost peer (at most 1 s) and a rejoin one more discovery round.
	settle := 2*time.Second + 4*peerTimeout

	h.waitProbe(p, "/readyz", settle, readyAs("primary", 0))
	h.waitProbe(s, "/readyz", settle, readyAs("standby", 0))
	mustLive(t, p)
	mustLive(t, s)
	h.eventually(settle, func() error {
		out, errs, code := h.meshc("cluster", "status", p.name, s.name)
		if code != 0 || !strings.Contains(out, "pair: agrees") {
			return fmt.Errorf("healthy pair: exit %d\n%s%s", code, out, errs)
		}
		return nil
	})
	st, err := h.status(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Peers) != 1 || st.Peers[0].Node != s.name || st.Peers[0].LinkState != "connected" ||
		st.Peers[0].Role == nil || *st.Peers[0].Role != "standby" || st.Peers[0].AgeMS == nil ||
		time.Duration(*st.Peers[0].AgeMS)*time.Millisecond > peerTimeout || st.Readiness == nil || !st.Readiness.Ready {
		t.Fatalf("primary's status view of the pair: %+v", st)
	}

	p.proc.Stop()
	frozen := time.Now()
	waitFrozen(t, p)
	// A frozen process answers no probe: readiness (and liveness) time out.
	if _, _, err := probeHTTP(p, "/readyz", peerTimeout); err == nil {
		t.Fatal("a frozen node answered its readiness probe")
	}
	h.waitProbe(s, "/readyz", settle, readyAs("primary", 1))
	t.Logf("standby ready as primary %v after SIGSTOP", time.Since(frozen).Round(10*time.Millisecond))
	mustLive(t, s)

	// While one node is frozen the pair check names it, prints both views
	// and exits 6.
	out, errs, code := h.meshc("cluster", "status", p.name, s.name, "--timeout-ms", fmt.Sprint(peerTimeout.Milliseconds()))
	if code != 6 || !strings.Contains(out, "== "+p.name+" ==\nerror: ") || !strings.Contains(out, "== "+s.name+" ==\n") ||
		!strings.Contains(out, "  - unreachable:"+p.name+"\n") || !strings.Contains(errs, "the pair disagrees") {
		t.Fatalf("pair check with a frozen node: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}

	// Queued while frozen, answered first thing after SIGCONT: the old
	// primary is alive but not ready — its authority is in doubt until the
	// new primary fences it.
	readyz := queueProbe(t, p, "/readyz")
	livez := queueProbe(t, p, "/livez")
	p.proc.Cont()
	if code, d := readyz(); code != http.StatusServiceUnavailable || d.Ready || d.Reason != "quarantined" || !d.Live {
		t.Fatalf("old primary's first readiness after SIGCONT: %d %+v, want 503 quarantined", code, d)
	}
	if code, d := livez(); code != http.StatusOK || !d.Live {
		t.Fatalf("old primary's first liveness after SIGCONT: %d %+v", code, d)
	}
	// Fenced and rejoined: ready again, as the standby of epoch 1.
	h.waitProbe(p, "/readyz", settle, readyAs("standby", 1))
	mustLive(t, p)
	mustLive(t, s)
	h.eventually(settle, func() error {
		out, errs, code := h.meshc("cluster", "status", s.name, p.name, "--json")
		if code != 0 {
			return fmt.Errorf("pair after rejoin: exit %d\n%s%s", code, out, errs)
		}
		return nil
	})
	d, err := h.diagnostics(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.find("authority_quarantined", "")) == 0 || len(d.find("fenced_rejoin", "")) == 0 {
		t.Fatalf("old primary's diagnostics lack authority_quarantined or fenced_rejoin: %+v", d.Entries)
	}
	for _, n := range []*node{p, s} {
		if strings.Contains(n.proc.Log(), cookie) {
			t.Fatalf("%s logged the cluster cookie", n.name)
		}
	}
}
