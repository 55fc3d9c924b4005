package main

import (
	"bytes"
	"flag"
	"strconv"
	"strings"
	"testing"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/handshake"
	"meshgo.dev/mesh/internal/operator"
)

// startPair runs two fake nodes that answer status as a healthy pair would
// and returns them with their names.
func startPair(t *testing.T) (pSrc, sSrc *clusterSource, p, s string) {
	t.Helper()
	pSrc, sSrc = &clusterSource{}, &clusterSource{}
	p, s = startClusterNode(t, pSrc), startClusterNode(t, sSrc)
	pSrc.setView(pairView(p, s, continuity.RolePrimary, 2))
	sSrc.setView(pairView(s, p, continuity.RoleStandby, 2))
	return pSrc, sSrc, p, s
}

func pairView(self, peer string, role continuity.Role, epoch uint64) operator.StatusView {
	other := continuity.RoleStandby
	if role == continuity.RoleStandby {
		other = continuity.RolePrimary
	}
	return operator.StatusView{
		LocalNode: self, PeerNodes: []string{peer}, Role: role, Epoch: epoch, Health: continuity.HealthHealthy,
		Peers: []operator.PeerView{{Node: peer, Link: operator.LinkConnected, Protocol: handshake.Version, Heard: true, Role: other, Epoch: epoch}},
		Ready: true,
	}
}

func TestClusterStatusPairAgrees(t *testing.T) {
	_, _, p, s := startPair(t)
	var rep PairReport
	decodeJSON(t, mustRun(t, cookieEnv, "status", p, s, "--json"), &rep)
	if !rep.Agree || len(rep.Problems) != 0 || rep.Problems == nil || len(rep.Views) != 2 ||
		rep.Views[0].Target != p || rep.Views[1].Target != s || rep.Views[0].Status == nil || rep.Views[1].Error != nil {
		t.Fatalf("pair report %+v", rep)
	}
	if v := rep.Views[0].Status; v.Target != p || len(v.Peers) != 1 || v.Peers[0].Node != s || v.Readiness == nil || !v.Readiness.Ready {
		t.Fatalf("primary view %+v", v)
	}
	text := mustRun(t, cookieEnv, "status", p, s)
	for _, want := range []string{"== " + p + " ==\n", "== " + s + " ==\n", "cluster_role:       standby\n",
		"- node=" + s + " link_state=connected cluster_role=standby promotion_epoch=2 heartbeat_age_ms=0 protocol_version=" + strconv.Itoa(handshake.Version) + "\n", "pair: agrees\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("pair text lacks %q:\n%s", want, text)
		}
	}
}

func TestClusterStatusPairDisagrees(t *testing.T) {
	silent := silentNode(t)
	closed := closedNode(t)
	tests := []struct {
		name   string
		change func(pSrc, sSrc *clusterSource, p, s string)
		second func(s string) string // the second node to query; nil: s
		want   []string
	}{
		{"two primaries", func(pSrc, sSrc *clusterSource, p, s string) {
			sSrc.setView(pairView(s, p, continuity.RolePrimary, 2))
		}, nil, []string{"two_primaries"}},
		{"no primary, epochs differ", func(pSrc, sSrc *clusterSource, p, s string) {
			pSrc.setView(pairView(p, s, continuity.RoleStandby, 2))
			sSrc.setView(pairView(s, p, continuity.RoleStandby, 3))
		}, nil, []string{"no_primary", "epoch_mismatch:" + "P=2,S=3"}},
		{"not connected, degraded, not ready", func(pSrc, sSrc *clusterSource, p, s string) {
			v := pairView(s, p, continuity.RoleStandby, 2)
			v.PeerNodes, v.Health, v.Ready, v.NotReadyReason = nil, continuity.HealthLocalOnly, false, "no_primary"
			sSrc.setView(v)
		}, nil, []string{"not_connected:S->P", "replication_health:S=local_only", "not_ready:S=no_primary"}},
		{"second node frozen", nil, func(string) string { return silent }, []string{"unreachable:" + silent}},
		{"second node down", nil, func(string) string { return closed }, []string{"unreachable:" + closed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pSrc, sSrc, p, s := startPair(t)
			if tc.change != nil {
				tc.change(pSrc, sSrc, p, s)
			}
			second := s
			if tc.second != nil {
				second = tc.second(s)
			}
			var stdout, stderr bytes.Buffer
			err := runClusterEnv(t.Context(), []string{"status", p, second, "--timeout-ms", "300"}, &stdout, &stderr, cookieEnv.lookup)
			if code := exitCode(err); code != exitDisagree {
				t.Fatalf("exit code %d (error %v), want %d", code, err, exitDisagree)
			}
			out := stdout.String()
			if !strings.Contains(out, "== "+p+" ==\n") || !strings.Contains(out, "== "+second+" ==\n") || !strings.Contains(out, "pair: disagrees\n") {
				t.Fatalf("both views and the verdict are not printed:\n%s", out)
			}
			for _, w := range tc.want {
				w = strings.NewReplacer("P", p, "S", s).Replace(w)
				if !strings.Contains(err.Error(), w) || !strings.Contains(out, "  - "+w+"\n") {
					t.Errorf("problem %q missing from error %q or output:\n%s", w, err, out)
				}
			}
		})
	}
}

func TestClusterStatusPairBothUnreachable(t *testing.T) {
	a, b := closedNode(t), closedNode(t)
	_, err := meshcCluster(t, cookieEnv, "status", a, b)
	if code := exitCode(err); code != exitUnreachable || !strings.Contains(err.Error(), a) {
		t.Fatalf("exit code %d, error %v; want %d naming %s", code, err, exitUnreachable, a)
	}
	_, err = meshcCluster(t, cookieEnv, "status", a, a)
	if code := exitCode(err); code != exitUsage {
		t.Fatalf("same node twice: exit code %d, error %v", code, err)
	}
}

// Every documented code appears in --help, and the dispatcher's own usage
// errors exit 2.
func TestExitCodesInHelpAndDispatcher(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"cluster", "--help"}, {"cluster", "status", "--help"}} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), args, &stdout, &stderr)
		if err != nil && err != flag.ErrHelp {
			t.Fatalf("%v: %v", args, err)
		}
		for _, c := range exitCodes {
			line := "  " + string(rune('0'+c.code)) + "  " + c.meaning + "\n"
			if !strings.Contains(stdout.String(), "Exit codes:\n") || !strings.Contains(stdout.String(), line) {
				t.Errorf("%v help lacks %q:\n%s", args, line, stdout.String())
			}
		}
	}
	for _, args := range [][]string{nil, {"frobnicate"}} {
		var stdout, stderr bytes.Buffer
		if code := exitCode(run(t.Context(), args, &stdout, &stderr)); code != exitUsage {
			t.Errorf("meshc %v: exit code %d, want %d", args, code, exitUsage)
		}
	}
	if code := exitCode(errFake("boom")); code != exitFailure {
		t.Errorf("plain error: exit code %d", code)
	}
}

type errFake string

func (e errFake) Error() string { return string(e) }
