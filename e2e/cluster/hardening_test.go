package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/handshake"
	"meshgo.dev/mesh/meshtest"
)

// Limits the node applies before authentication (admission.go); the tests
// derive their bounds from them.
const (
	maxPendingHandshakes = 64
	reservedHandshakes   = 16
	preTLSTimeout        = time.Second
	failureBurst         = 10
)

// TestWeakCookiesRefusedAtBootstrap: a short cookie and a known placeholder
// stop the node before it listens, with the remedy in the message and the
// cookie nowhere in the output.
func TestWeakCookiesRefusedAtBootstrap(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ name, cookie, why string }{
		{"short", "c", "it must be at least 32 characters long"},
		{"placeholder", "change-me-in-production-0123456789abcdef", "it is a known placeholder value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, env := h.nodeEnv("primary", "127.0.0.1", "primary", "MESH_CLUSTER_COOKIE="+tc.cookie)
			p := meshtest.StartProcess(t, "weak-"+tc.name, h.app, env, "")
			if code, err := p.Wait(10 * time.Second); err != nil || code == 0 {
				t.Fatalf("node with a weak cookie: exit %d %v", code, err)
			}
			log := p.Log()
			want := "Invalid MESH_CLUSTER_COOKIE: " + tc.why + "; generate a random cookie with `meshc cluster cookie`"
			if !strings.Contains(log, want) {
				t.Fatalf("log lacks %q:\n%s", want, log)
			}
			if len(tc.cookie) > 1 && strings.Contains(log, tc.cookie) {
				t.Fatalf("log contains the cookie:\n%s", log)
			}
			if strings.Contains(log, "listening") {
				t.Fatalf("node listened with a weak cookie:\n%s", log)
			}
		})
	}
}

// dialFrom connects to addr from the loopback address src.
func dialFrom(ctx context.Context, src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	return d.DialContext(ctx, "tcp", addr)
}

// badHandshake runs one handshake with a wrong cookie from src and returns
// its error (nil would mean the node accepted the wrong cookie).
func badHandshake(ctx context.Context, src, addr string) error {
	raw, err := dialFrom(ctx, src, addr)
	if err != nil {
		return err
	}
	res, err := handshake.Client(ctx, raw, handshake.Config{LocalName: "guesser@" + src + ":1",
		Kind: handshake.KindOperator, Cookie: []byte("a-wrong-guess-Lr4Kc8Nw3Tb6Hp1Zs5Jd0Fg2"), Timeout: 2 * time.Second})
	if err == nil {
		res.Conn.Close()
	}
	return err
}

// TestFailedHandshakesKeepDiagnostics: 300 handshakes with a wrong cookie
// from 30 sources, then 50 from one source, leave every real diagnostics
// entry in place: the failures are one coalesced entry with their counts,
// the source over its failure budget is refused before any TLS work, and
// the log has one warning line, not 350.
func TestFailedHandshakesKeepDiagnostics(t *testing.T) {
	h := newHarness(t)
	p := h.start("primary", "127.0.0.1", "primary")
	s := h.start("standby", "::1", "standby")
	h.waitRecord(s, addKey, 15*time.Second, completed)
	before, err := h.diagnostics(p)
	if err != nil {
		t.Fatal(err)
	}
	startup := 0
	for _, e := range before.Entries {
		if strings.HasPrefix(e.Transition, "startup_") {
			startup++
		}
	}
	if startup < 2 {
		t.Fatalf("the primary has %d startup entries before the attack, want its real transitions to check: %+v", startup, before.Entries)
	}
	addr := strings.TrimPrefix(p.name, "primary@")

	start := time.Now()
	var authFailed, other atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	// Round robin over the sources: a source never has more than one
	// handshake in flight, so only the failure budget is tested here.
	for range failureBurst {
		for src := range 30 {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				err := badHandshake(t.Context(), fmt.Sprintf("127.0.0.%d", 2+src), addr)
				switch {
				case errors.Is(err, handshake.ErrAuthFailed):
					authFailed.Add(1)
				case err == nil:
					t.Error("the node accepted a wrong cookie")
				default:
					other.Add(1)
					t.Logf("handshake from 127.0.0.%d: %v", 2+src, err)
				}
			}()
		}
	}
	wg.Wait()
	if authFailed.Load() != 300 {
		t.Fatalf("%d of 300 guesses were answered authentication failed (%d other errors); want all 300 (under the per-source budget)", authFailed.Load(), other.Load())
	}
	// One source past its budget: the first failureBurst guesses are
	// answered, the rest are closed before TLS, except one a second as the
	// budget refills.
	reached, refused := 0, 0
	lastReason := ""
	start99 := time.Now()
	for i := range 50 {
		err := badHandshake(t.Context(), "127.0.0.99", addr)
		switch {
		case i < failureBurst && !errors.Is(err, handshake.ErrAuthFailed):
			t.Fatalf("guess %d from one source: %v, want authentication failed", i, err)
		case errors.Is(err, handshake.ErrAuthFailed):
			reached++
			lastReason = "authentication_failed"
		default:
			refused++
			lastReason = "handshake_rate_limited"
		}
	}
	// Slack: a refill a second, and the client may see its refusal a moment
	// before the node has counted the failure against the next connection.
	if refill := int(time.Since(start99)/time.Second) + 2; reached > failureBurst+refill || refused == 0 {
		t.Fatalf("one source reached the proof %d times in 50 guesses over %v; want at most %d (a budget of %d, one more a second)",
			reached, time.Since(start99).Round(time.Millisecond), failureBurst+refill, failureBurst)
	}
	elapsed := time.Since(start)

	// The node counts a failure just after the client sees it: wait for
	// the last one.
	var after diagDoc
	h.eventually(5*time.Second, func() error {
		var err error
		if after, err = h.diagnostics(p); err != nil {
			return err
		}
		for _, e := range after.find("handshake_rejected", "") {
			if e.meta("handshake_failures") == "350" {
				return nil
			}
		}
		return fmt.Errorf("handshake_rejected entries %+v, want 350 failures counted", after.find("handshake_rejected", ""))
	})
	seqs := map[uint64]string{}
	for _, e := range after.Entries {
		seqs[e.Sequence] = e.Transition
	}
	for _, e := range before.Entries {
		if e.Transition == "handshake_rejected" {
			continue
		}
		if seqs[e.Sequence] != e.Transition {
			t.Errorf("entry %d %s is gone after the failed handshakes", e.Sequence, e.Transition)
		}
	}
	if after.Dropped != before.Dropped {
		t.Errorf("dropped_entries went from %d to %d", before.Dropped, after.Dropped)
	}
	rejected := after.find("handshake_rejected", "")
	if len(rejected) != 1 {
		t.Fatalf("%d handshake_rejected entries, want one coalesced entry", len(rejected))
	}
	e := rejected[0]
	want := map[string]string{
		"handshake_failures":      "350",
		"authentication_failures": strconv.Itoa(300 + reached),
		"refused_connections":     strconv.Itoa(refused),
	}
	for k, v := range want {
		if e.meta(k) != v {
			t.Errorf("handshake_rejected %s = %q, want %s (entry %+v)", k, e.meta(k), v, e)
		}
	}
	if !strings.HasPrefix(e.meta("remote_addr"), "127.0.0.99:") || str(e.Reason) != lastReason {
		t.Errorf("last remote %q reason %q, want 127.0.0.99 and %s", e.meta("remote_addr"), str(e.Reason), lastReason)
	}
	lines := strings.Count(p.proc.Log(), "[mesh-rt transport] handshake failed")
	if maxLines := 1 + int(elapsed/(10*time.Second)); lines > maxLines || lines == 0 {
		t.Errorf("%d warning lines for 350 failures in %v, want 1 to %d", lines, elapsed.Round(time.Millisecond), maxLines)
	}
	// The pair is unaffected.
	h.waitAuthority(p, "primary", 0, 1, 5*time.Second)
}

// fdCount is the number of open descriptors of pid.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("read descriptors of %d: %v", pid, err)
	}
	return len(ents)
}

// idleFlood opens n TCP connections to addr from 200 loopback sources and
// sends nothing. closed counts those the node has closed; the returned
// function closes the rest.
func idleFlood(t *testing.T, addr string, n int, closed *atomic.Int64) func() {
	t.Helper()
	var conns []net.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialFrom(t.Context(), fmt.Sprintf("127.0.%d.%d", 1+i/200, 1+i%200), addr)
			if err != nil {
				t.Errorf("idle connection %d: %v", i, err)
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				_, err := c.Read(make([]byte, 1))
				if err != nil && !errors.Is(err, net.ErrClosed) {
					closed.Add(1)
				}
			}()
		}()
	}
	wg.Wait()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
}

// TestIdleConnectionsDoNotStopFailover: 1,000 idle TCP connections to the
// standby's cluster port, from 200 sources, are closed at once past the
// limits or when the pre-TLS deadline ends; the standby (run with a limit
// of 256 descriptors) never holds more than the limits allow, and when the
// primary is killed during a second wave it still promotes within the
// bound of the plain failover test.
func TestIdleConnectionsDoNotStopFailover(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("prlimit (util-linux) is needed to run the standby with few descriptors: %v", err)
	}
	h := newHarness(t)
	// The standby, the one attacked, listens on IPv4 loopback so that the
	// flood can come from many source addresses (127.0.x.y).
	p := h.start("primary", "::1", "primary")
	full, env := h.nodeEnv("standby", "127.0.0.1", "standby")
	s := &node{name: full, env: env}
	s.proc = meshtest.StartProcess(t, "standby", prlimit, env, "", "--nofile=256:256", "--", h.app)
	s.proc.WaitLog(t, "[testapp] runtime bootstrap mode=cluster", 10*time.Second)
	h.waitRecord(s, addKey, 15*time.Second, completed)
	h.waitAuthority(s, "standby", 0, 1, 5*time.Second)
	addr := strings.TrimPrefix(s.name, "standby@")
	pid := s.proc.Pid()
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil || !regexp.MustCompile(`(?m)^Max open files\s+256\s+256\s`).Match(limits) {
		t.Fatalf("the standby does not run with 256 descriptors (%v):\n%s", err, limits)
	}
	baseline := fdCount(t, pid)
	bound := baseline + maxPendingHandshakes + reservedHandshakes + 8

	var closed atomic.Int64
	release := idleFlood(t, addr, 1000, &closed)
	defer release()
	// Excess connections are closed at once, well within the pre-TLS
	// deadline of the ones held; those are closed when it ends.
	opened := time.Now()
	meshtest.Eventually(t, preTLSTimeout/2, 10*time.Millisecond, func() error {
		if c := closed.Load(); c < 1000-maxPendingHandshakes {
			return fmt.Errorf("%d of 1000 idle connections closed by the node %v after the last one opened", c, time.Since(opened).Round(time.Millisecond))
		}
		return nil
	})
	if n := fdCount(t, pid); n > bound {
		t.Fatalf("standby holds %d descriptors with 1000 idle connections open, want at most %d", n, bound)
	}
	meshtest.Eventually(t, preTLSTimeout+2*time.Second, 50*time.Millisecond, func() error {
		if c := closed.Load(); c < 1000 {
			return fmt.Errorf("%d of 1000 idle connections closed", c)
		}
		return nil
	})
	release()

	// A second wave, and the primary dies while it lasts.
	var closed2 atomic.Int64
	release2 := idleFlood(t, addr, 1000, &closed2)
	defer release2()
	p.proc.Kill()
	h.waitAuthority(s, "primary", 1, 0, 2*time.Second)
	if n := fdCount(t, pid); n > bound {
		t.Fatalf("standby holds %d descriptors after promotion under the flood, want at most %d", n, bound)
	}
	if !s.proc.Running() {
		t.Fatal("the standby exited under the flood")
	}
}

// TestStateDirFallbackIsPrivate: with no HOME and no MESH_STATE_DIR a node
// keeps its state under $TMPDIR/mesh-<uid>, created 0700; a pre-created one
// that others can write is refused at bootstrap.
func TestStateDirFallbackIsPrivate(t *testing.T) {
	h := newHarness(t)
	envWithout := func(tmp string) []string {
		_, env := h.nodeEnv("primary", "127.0.0.1", "primary")
		out := []string{"TMPDIR=" + tmp}
		for _, kv := range env {
			if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "MESH_STATE_DIR=") {
				out = append(out, kv)
			}
		}
		return out
	}
	tmp := t.TempDir()
	base := fmt.Sprintf("%s/mesh-%d", tmp, os.Getuid())
	p := meshtest.StartProcess(t, "fallback", h.app, envWithout(tmp), "")
	p.WaitLog(t, "[testapp] runtime bootstrap mode=cluster", 10*time.Second)
	st, err := os.Stat(base)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("state base %s: %v; want a 0700 directory", base, err)
	}
	if _, err := os.Stat(base + "/primary_127.0.0.1_" + strconv.Itoa(h.port) + "/authority.json"); err != nil {
		t.Fatalf("no authority state under the fallback: %v", err)
	}
	p.Kill()

	planted := t.TempDir()
	if err := os.Mkdir(fmt.Sprintf("%s/mesh-%d", planted, os.Getuid()), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(fmt.Sprintf("%s/mesh-%d", planted, os.Getuid()), 0o777); err != nil {
		t.Fatal(err)
	}
	q := meshtest.StartProcess(t, "planted", h.app, envWithout(planted), "")
	if code, err := q.Wait(10 * time.Second); err != nil || code == 0 {
		t.Fatalf("node with a world-writable state base: exit %d %v", code, err)
	}
	if want := "is writable by other users (mode 0777); remove it or set MESH_STATE_DIR"; !strings.Contains(q.Log(), want) {
		t.Fatalf("log lacks %q:\n%s", want, q.Log())
	}
}
