package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/authority"
	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/operator"
	"meshgo.dev/mesh/meshtest"
)

// probe runs h for one GET and returns the status code and decoded body.
func probe(t *testing.T, h http.Handler) (int, Health) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var body Health
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("probe body %q: %v", rec.Body.String(), err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	return rec.Code, body
}

// wantReady waits until n's readiness handler answers ready (or, with a
// reason, not ready for that reason) and returns the body.
func wantReady(t *testing.T, n *Node, reason string, timeout time.Duration) Health {
	t.Helper()
	var body Health
	eventually(t, timeout, func() error {
		var code int
		code, body = probe(t, n.ReadinessHandler())
		wantCode := http.StatusOK
		if reason != "" {
			wantCode = http.StatusServiceUnavailable
		}
		if code != wantCode || body.Reason != reason || body.Ready != (reason == "") {
			return fmt.Errorf("%s readiness %d %+v, want %d reason %q", n.Name(), code, body, wantCode, reason)
		}
		return nil
	})
	return body
}

func TestHealthStandaloneIsLiveAndReady(t *testing.T) {
	n := startNode(t, Config{Logger: testLogger(t)})
	for name, h := range map[string]http.Handler{"liveness": n.LivenessHandler(), "readiness": n.ReadinessHandler()} {
		code, body := probe(t, h)
		want := Health{ClusterRole: RolePrimary, Live: true, Mode: ModeStandalone, Node: StandaloneNodeName,
			Ready: true, ReplicationHealth: continuity.HealthLocalOnly}
		if code != http.StatusOK || body != want {
			t.Fatalf("%s: %d %+v, want 200 %+v", name, code, body, want)
		}
	}
	rec := httptest.NewRecorder()
	n.ReadinessHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/readyz", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	rec = httptest.NewRecorder()
	n.ReadinessHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/readyz", nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Fatalf("HEAD: %d body %q", rec.Code, rec.Body.String())
	}
}

func TestHealthAfterShutdown(t *testing.T) {
	n := startNode(t, testConfig(t, "primary", "127.0.0.1", freePort(t), RolePrimary))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]http.Handler{"liveness": n.LivenessHandler(), "readiness": n.ReadinessHandler()} {
		code, body := probe(t, h)
		if code != http.StatusServiceUnavailable || body.Live || body.Ready || body.Reason != ReadinessStopped {
			t.Fatalf("%s after shutdown: %d %+v", name, code, body)
		}
	}
}

// A pair: both ready, each sees the other in the peer view; a primary that
// loses its standby stays ready (local_only); a standby with no primary is
// not ready.
func TestHealthPairAndLoneNodes(t *testing.T) {
	port := freePort(t)
	scfg := testConfig(t, "standby", "::1", port, RoleStandby)
	s := startNode(t, scfg)
	// A standby that has never met its primary cannot serve or forward.
	body := wantReady(t, s, ReadinessNoPrimary, 5*time.Second)
	if body.ClusterRole != RoleStandby || !body.Live {
		t.Fatalf("lone standby %+v", body)
	}

	p := startNode(t, testConfig(t, "primary", "127.0.0.1", port, RolePrimary))
	wantReady(t, p, "", 10*time.Second)
	body = wantReady(t, s, "", 10*time.Second)
	if body.ClusterRole != RoleStandby || body.ReplicationHealth != continuity.HealthHealthy {
		t.Fatalf("standby with primary %+v", body)
	}

	// Both are ready once each side has its link; the primary's view of
	// the link reads connected once the standby's first snapshot is
	// applied, which may come a moment after.
	var st operator.StatusView
	eventually(t, 5*time.Second, func() error {
		st = operatorSource{p}.Status()
		if len(st.Peers) != 1 {
			return fmt.Errorf("primary peer view %+v", st.Peers)
		}
		if pv := st.Peers[0]; pv.Link != operator.LinkConnected {
			return fmt.Errorf("primary's view of the standby %+v", pv)
		}
		return nil
	})
	pv := st.Peers[0]
	if pv.Node != s.Name() || !pv.Heard || pv.Role != RoleStandby || pv.Epoch != 0 ||
		pv.HeartbeatAge < 0 || pv.HeartbeatAge > scfg.PeerTimeout {
		t.Fatalf("primary's view of the standby %+v", pv)
	}
	if !st.Ready || st.NotReadyReason != "" {
		t.Fatalf("primary status readiness %v %q", st.Ready, st.NotReadyReason)
	}

	// The standby goes away for good: the primary is alone and still ready;
	// its view keeps the standby's last known authority.
	s.crash()
	eventually(t, 5*time.Second, func() error {
		if len(p.Peers()) != 0 {
			return fmt.Errorf("primary still connected to %v", p.Peers())
		}
		return nil
	})
	body = wantReady(t, p, "", 5*time.Second)
	if body.ClusterRole != RolePrimary || body.ReplicationHealth != continuity.HealthLocalOnly {
		t.Fatalf("lone primary %+v", body)
	}
	st = operatorSource{p}.Status()
	if len(st.Peers) != 1 || st.Peers[0].Link != operator.LinkDisconnected || !st.Peers[0].Heard || st.Peers[0].Role != RoleStandby {
		t.Fatalf("primary's view of the lost standby %+v", st.Peers)
	}
}

// A node whose pause detector sees a freeze is quarantined: not ready (but
// live) until its peer confirms its authority.
func TestHealthQuarantinedNodeIsNotReady(t *testing.T) {
	fn := meshtest.New()
	t.Cleanup(fn.Close)
	port := freePort(t)
	pcfg := testConfig(t, "primary", "127.0.0.1", port, RolePrimary)
	scfg := testConfig(t, "standby", "::1", port, RoleStandby)
	p := startNode(t, pcfg, WithNetwork(fn.Node(pcfg.NodeName.String())))
	s := startNode(t, scfg, WithNetwork(fn.Node(scfg.NodeName.String())))
	wantReady(t, p, "", 10*time.Second)
	wantReady(t, s, "", 10*time.Second)

	// The standby's answers take half the peer timeout to arrive, so the
	// quarantine outlasts the probe below without the link being lost.
	fn.Delay(s.Name(), p.Name(), pcfg.PeerTimeout/2)
	// Replays a freeze shorter than the peer timeout: the gap is seen by the
	// first check, which the readiness probe makes itself.
	p.lastTick.Store(p.mono() - int64(pcfg.PeerTimeout))
	code, body := probe(t, p.ReadinessHandler())
	if code != http.StatusServiceUnavailable || body.Reason != ReadinessQuarantined || !body.Live {
		t.Fatalf("readiness after a pause: %d %+v", code, body)
	}
	if code, body := probe(t, p.LivenessHandler()); code != http.StatusOK || !body.Live {
		t.Fatalf("liveness after a pause: %d %+v", code, body)
	}
	// The standby answers the quarantine ping: ready again, same authority.
	fn.Heal()
	body = wantReady(t, p, "", 5*time.Second)
	if body.ClusterRole != RolePrimary || body.PromotionEpoch != 0 {
		t.Fatalf("after release %+v", body)
	}
}

// A restarted node that was part of a pair does not act on its persisted
// authority until it hears from a peer or the rejoin wait has passed.
func TestHealthRestartedNodeAwaitsPeer(t *testing.T) {
	port := freePort(t)
	cfg := testConfig(t, "primary", "127.0.0.1", port, RolePrimary)
	missing := fmt.Sprintf("standby@[::1]:%d", port)
	if err := authority.SavePeers(cfg.StateDir, []string{missing}); err != nil {
		t.Fatal(err)
	}
	p := startNode(t, cfg)
	code, body := probe(t, p.ReadinessHandler())
	if code != http.StatusServiceUnavailable || body.Reason != ReadinessAwaitingPeer {
		t.Fatalf("restarted node readiness %d %+v", code, body)
	}
	st := operatorSource{p}.Status()
	if len(st.Peers) != 1 || st.Peers[0].Node != missing || st.Peers[0].Link != operator.LinkDisconnected || st.Peers[0].Heard {
		t.Fatalf("restarted node's view %+v", st.Peers)
	}
	// Nobody answers: after the rejoin wait it carries on alone.
	wantReady(t, p, "", p.rejoinWait()+5*time.Second)
}

// A node that learns of a higher epoch from its peer is fenced to standby and
// is ready again as a standby of the new primary.
func TestHealthFencedNodeIsReadyAsStandby(t *testing.T) {
	fn := meshtest.New()
	t.Cleanup(fn.Close)
	port := freePort(t)
	pcfg := testConfig(t, "primary", "127.0.0.1", port, RolePrimary)
	scfg := testConfig(t, "standby", "::1", port, RoleStandby)
	p := startNode(t, pcfg, WithNetwork(fn.Node(pcfg.NodeName.String())))
	s := startNode(t, scfg, WithNetwork(fn.Node(scfg.NodeName.String())))
	wantReady(t, s, "", 10*time.Second)

	// Cut the link: the standby promotes; the old primary, alone, stays a
	// ready primary at epoch 0 (the two-node rule cannot tell a partition
	// from a crash).
	fn.Partition(p.Name(), s.Name())
	eventually(t, 10*time.Second, func() error {
		if r, e := s.Authority(); r != RolePrimary || e != 1 {
			return fmt.Errorf("standby authority %s/%d", r, e)
		}
		return nil
	})
	wantReady(t, s, "", 5*time.Second)

	// Heal: the old primary meets epoch 1, is fenced, and is ready as the
	// standby of the new primary.
	fn.Heal()
	eventually(t, 10*time.Second, func() error {
		code, body := probe(t, p.ReadinessHandler())
		if code != http.StatusOK || body.ClusterRole != RoleStandby || body.PromotionEpoch != 1 {
			return fmt.Errorf("old primary after heal %d %+v", code, body)
		}
		return nil
	})
}
