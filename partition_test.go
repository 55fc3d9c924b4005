package mesh_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/meshtest"
)

var jobRuns atomic.Int64

// Job is count-1 declared work submitted under caller keys.
func Job(ctx context.Context) (int, error) { jobRuns.Add(1); return 0, nil }

// Mirrored is count-2 declared work submitted under caller keys.
func Mirrored(ctx context.Context) (int, error) { jobRuns.Add(1); return 0, nil }

var (
	jobDecl      = mesh.Work(Job, mesh.ReplicationCount(1))
	mirroredDecl = mesh.Work(Mirrored)
)

func observe(h *meshtest.History, n *mesh.Node) {
	role, epoch := n.Authority()
	obs := meshtest.Observation{Node: n.Name(), Role: string(role), Epoch: epoch}
	for _, r := range n.Records() {
		obs.Records = append(obs.Records, meshtest.RecordObs{RequestKey: r.RequestKey, AttemptID: r.AttemptID(),
			Phase: string(r.Phase), ExecutionNode: r.ExecutionNode, Epoch: r.Epoch})
	}
	h.Observe(obs)
}

// A partition between the pair, then a heal: exactly one primary remains,
// the higher epoch wins, no key ends with two completed attempts, and every
// acknowledged record survives.
func TestPartitionAndHeal(t *testing.T) {
	fn := meshtest.New()
	t.Cleanup(fn.Close)
	port := meshtest.FreePort(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := func(name, host string, role mesh.Role) mesh.Config {
		return mesh.Config{Mode: mesh.ModeCluster, Cookie: "partition-unit-4Hs8Kq2Wn6Yt9Bv3Mx7Cz1Pd5R", DiscoverySeed: "localhost", ClusterPort: port,
			NodeName: mesh.NodeName{Name: name, Host: host, Port: port}, Role: role,
			DiscoveryInterval: 150 * time.Millisecond, StartupWorkDelay: 100 * time.Millisecond,
			HeartbeatInterval: 50 * time.Millisecond, PeerTimeout: 400 * time.Millisecond, StateDir: t.TempDir(), Logger: logger}
	}
	start := func(c mesh.Config) *mesh.Node {
		n, err := mesh.Start(c, mesh.WithNetwork(fn.Node(c.NodeName.String())))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
		return n
	}
	p := start(cfg("primary", "127.0.0.1", mesh.RolePrimary))
	s := start(cfg("standby", "::1", mesh.RoleStandby))
	h := &meshtest.History{}
	wait := func(what string, f func() error) {
		t.Helper()
		meshtest.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
			observe(h, p)
			observe(h, s)
			if err := f(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		})
	}
	wait("converge", func() error {
		if len(p.Peers()) != 1 || len(s.Peers()) != 1 {
			return fmt.Errorf("peers %v / %v", p.Peers(), s.Peers())
		}
		return nil
	})

	ctx := context.Background()
	var acked []string
	submit := func(n *mesh.Node, d mesh.Declaration, key string) {
		t.Helper()
		res, err := n.Submit(ctx, d, key, "payload-"+key)
		if err != nil || res.Outcome != mesh.OutcomeCreated {
			t.Fatalf("submit %s on %s: %+v %v", key, n.Name(), res, err)
		}
		acked = append(acked, key)
	}
	for i := range 6 {
		submit(p, mirroredDecl, fmt.Sprintf("before-%d", i))
	}
	wait("mirrored before cut", func() error {
		for _, k := range acked {
			for _, n := range []*mesh.Node{p, s} {
				if r, ok := n.Record(k); !ok || r.Phase != continuity.PhaseCompleted {
					return fmt.Errorf("%s on %s: %+v", k, n.Name(), r)
				}
			}
		}
		return nil
	})

	fn.Partition(p.Name(), s.Name())
	wait("standby promotes", func() error {
		if r, e := s.Authority(); r != mesh.RolePrimary || e != 1 {
			return fmt.Errorf("standby %s/%d", r, e)
		}
		if len(p.Peers()) != 0 {
			return fmt.Errorf("primary still sees %v", p.Peers())
		}
		return nil
	})
	// Both sides accept unmirrored work while cut off from each other.
	for i := range 3 {
		submit(p, jobDecl, fmt.Sprintf("cut-primary-%d", i))
		submit(s, jobDecl, fmt.Sprintf("cut-standby-%d", i))
	}

	fn.Heal()
	wait("heal settles on one primary", func() error {
		pr, pe := p.Authority()
		sr, se := s.Authority()
		if len(p.Peers()) != 1 || len(s.Peers()) != 1 {
			return fmt.Errorf("not reconnected")
		}
		if pe != se || pe != 1 || (pr == mesh.RolePrimary) == (sr == mesh.RolePrimary) {
			return fmt.Errorf("authorities %s/%d and %s/%d", pr, pe, sr, se)
		}
		for _, k := range acked {
			for _, n := range []*mesh.Node{p, s} {
				if r, ok := n.Record(k); !ok || r.Phase != continuity.PhaseCompleted {
					return fmt.Errorf("%s on %s: %+v", k, n.Name(), r)
				}
			}
		}
		return nil
	})
	if r, _ := s.Authority(); r != mesh.RolePrimary {
		t.Fatalf("the higher epoch (the promoted standby) lost: standby is %s", r)
	}
	h.RequireAcknowledged(acked...)
	if err := h.Check(); err != nil {
		t.Fatal(err)
	}
}
