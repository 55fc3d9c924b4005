package cluster_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/meshtest"
)

// Two processes converge, a wrong-cookie process is refused by both and never
// becomes a member, and operator queries never join membership.
func TestTwoNodesConvergeAndRefuseWrongCookie(t *testing.T) {
	h := newHarness(t)
	p := h.start("primary", "127.0.0.1", "primary")
	s := h.start("standby", "::1", "standby")
	for _, n := range []*node{p, s} {
		role := map[*node]string{p: "primary", s: "standby"}[n]
		st := h.waitAuthority(n, role, 0, 1, 10*time.Second)
		if len(st.Membership.Nodes) != 2 || st.Membership.LocalNode != n.name {
			t.Fatalf("%s membership %+v", n.name, st.Membership)
		}
		if st.Authority.SafetyMode != "peer" {
			t.Fatalf("%s safety_mode %q with MESH_ARBITER unset, want peer", n.name, st.Authority.SafetyMode)
		}
	}

	// A third process with the wrong cookie on another loopback address.
	_, env := h.nodeEnv("intruder", "127.0.0.2", "standby")
	for i, kv := range env {
		if strings.HasPrefix(kv, "MESH_CLUSTER_COOKIE=") {
			env[i] = "MESH_CLUSTER_COOKIE=not-the-cluster-7f3a-Lr4Kc8Nw3Tb6Hp1Zs5Jd"
		}
	}
	intruder := meshtest.StartProcess(t, "intruder", h.app, env, "")
	intruder.WaitLog(t, "authentication failed", 10*time.Second)
	p.proc.WaitLog(t, "authentication failed", 10*time.Second)
	for range 5 {
		for _, n := range []*node{p, s} {
			st, err := h.status(n)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Membership.PeerNodes) != 1 {
				t.Fatalf("%s peers %v after intruder and status queries", n.name, st.Membership.PeerNodes)
			}
		}
	}
	for _, n := range []*node{p, s, {proc: intruder}} {
		if n.proc != nil && strings.Contains(n.proc.Log(), cookie) || strings.Contains(intruder.Log(), "not-the-cookie") {
			t.Fatalf("a log contains a cookie")
		}
	}
}

// SIGKILL is seen at once, SIGSTOP within the peer timeout, and a continued
// or restarted node is back after the next discovery tick.
func TestMembershipLossAndReturn(t *testing.T) {
	h := newHarness(t)
	p := h.start("primary", "127.0.0.1", "primary", "MESH_PEER_TIMEOUT_MS=1500")
	s := h.start("standby", "::1", "standby", "MESH_PEER_TIMEOUT_MS=1500")
	h.waitAuthority(p, "primary", 0, 1, 10*time.Second)
	h.waitAuthority(s, "standby", 0, 1, 10*time.Second)

	s.proc.Kill()
	h.waitAuthority(p, "primary", 0, 0, time.Second)
	h.restart(s)
	h.waitAuthority(p, "primary", 0, 1, 5*time.Second)
	h.waitAuthority(s, "standby", 0, 1, 5*time.Second)

	s.proc.Stop()
	stopped := time.Now()
	h.waitAuthority(p, "primary", 0, 0, 1500*time.Millisecond+time.Second)
	t.Logf("frozen standby dropped after %v", time.Since(stopped).Round(10*time.Millisecond))
	s.proc.Cont()
	h.waitAuthority(p, "primary", 0, 1, 5*time.Second)
	h.waitAuthority(s, "standby", 0, 1, 5*time.Second)
}

func TestOperatorErrors(t *testing.T) {
	h := newHarness(t)
	p := h.start("primary", "127.0.0.1", "primary")
	h.waitAuthority(p, "primary", 0, 0, 10*time.Second)
	unused := meshtest.FreePort(t)
	// Each case produces one documented exit code (see meshc --help).
	cases := []struct {
		name string
		args []string
		want string
		code int
	}{
		{"unreachable", []string{"cluster", "status", fmt.Sprintf("ghost@127.0.0.1:%d", unused)}, "connection refused", 3},
		{"wrong cookie", []string{"cluster", "status", p.name, "--cookie", "wrong"}, "authentication failed", 4},
		{"bad target", []string{"cluster", "status", "nodename-without-at"}, "missing '@' separator", 2},
		{"unknown key", []string{"cluster", "continuity", p.name, "no-such-key"}, "request_key_not_found", 5},
		{"limit with key", []string{"cluster", "continuity", p.name, "k", "--limit", "1"}, "does not accept --limit", 2},
		{"unknown command", []string{"clutser", "status"}, "unknown command", 2},
		{"pair without a peer", []string{"cluster", "status", p.name, fmt.Sprintf("ghost@127.0.0.1:%d", unused)}, "the pair disagrees", 6},
	}
	seen := map[string]string{}
	for _, c := range cases {
		out, errs, code := h.meshc(c.args...)
		if slices.Contains(c.args, "--cookie") {
			// A cookie on the command line draws a warning first.
			warning, rest, _ := strings.Cut(errs, "\n")
			if !strings.HasPrefix(warning, "warning: --cookie puts the cluster cookie on the command line") {
				t.Errorf("%s: stderr %q lacks the --cookie warning", c.name, errs)
			}
			errs = rest
		}
		if c.code == 6 {
			out = "" // a pair check prints both views before its verdict
		}
		if code != c.code || out != "" || !strings.HasPrefix(errs, "error: ") || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d stdout %q stderr %q; want exit %d and %q", c.name, code, out, errs, c.code, c.want)
		}
		if other, dup := seen[errs]; dup {
			t.Errorf("%s and %s print the same error", c.name, other)
		}
		seen[errs] = c.name
	}
	st, err := h.status(p)
	if err != nil || len(st.Membership.PeerNodes) != 0 {
		t.Fatalf("status after failed queries: %+v %v", st, err)
	}
}

func TestBootstrapListenerBindFailure(t *testing.T) {
	h := newHarness(t)
	h.start("primary", "127.0.0.1", "primary")
	_, env := h.nodeEnv("primary", "127.0.0.1", "primary")
	env = append(env, "MESH_STATE_DIR="+h.dir+"/state-second")
	second := meshtest.StartProcess(t, "second", h.app, env, "")
	if code, err := second.Wait(10 * time.Second); err != nil || code == 0 {
		t.Fatalf("second node on a bound port: exit %d %v", code, err)
	}
	want := fmt.Sprintf("mesh bootstrap start failed node=primary@127.0.0.1:%d: listener bind failed", h.port)
	if !strings.Contains(second.Log(), want) {
		t.Fatalf("log lacks %q:\n%s", want, second.Log())
	}
}
