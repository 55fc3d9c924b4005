package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/meshtest"
)

var addCalls atomic.Int64

// Add is the declared work every in-process test node runs at start-up.
func Add(ctx context.Context) (int, error) {
	addCalls.Add(1)
	return 1 + 1, nil
}

var _ = Work(Add)

func freePort(t *testing.T) int { return meshtest.FreePort(t) }

// testLogger is the log of a test's nodes. With MESH_TEST_LOG set it goes
// to standard error as it happens; otherwise the nodes of one test share a
// buffer of their last lines, printed with the test's output when the test
// fails, so a failure that shows up once in a stress run can be read.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("MESH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test_node", t.Name())
	}
	v, loaded := testLogs.LoadOrStore(t, &tailBuffer{keep: 256 << 10})
	b := v.(*tailBuffer)
	if !loaded {
		t.Cleanup(func() { // after the nodes' own cleanups: their shutdown is in it
			testLogs.Delete(t)
			if t.Failed() {
				t.Logf("the test's nodes logged (the last %d KiB at most):\n%s", b.keep>>10, b.String())
			}
		})
	}
	return slog.New(slog.NewTextHandler(b, nil))
}

// testLogs holds the log buffer of each running test (testLogger).
var testLogs sync.Map

// tailBuffer keeps about the last keep bytes written to it.
type tailBuffer struct {
	keep int
	mu   sync.Mutex
	b    []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	if len(b.b) > 2*b.keep {
		b.b = append(b.b[:0], b.b[len(b.b)-b.keep:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.b) > b.keep {
		return string(b.b[len(b.b)-b.keep:])
	}
	return string(b.b)
}

func testConfig(t *testing.T, name, host string, port int, role Role) Config {
	return Config{
		Mode: ModeCluster, Cookie: "cluster-unit-7Qm2Vx9Lr4Kc8Nw3Tb6Hp1Zs5J", DiscoverySeed: "localhost", ClusterPort: port,
		NodeName: NodeName{Name: name, Host: host, Port: port}, Role: role,
		DiscoveryInterval: 200 * time.Millisecond, StartupWorkDelay: 300 * time.Millisecond,
		HeartbeatInterval: 50 * time.Millisecond, PeerTimeout: 400 * time.Millisecond,
		StateDir: t.TempDir(), Logger: testLogger(t),
	}
}

func startNode(t *testing.T, cfg Config, opts ...Option) *Node {
	t.Helper()
	n, err := Start(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	return n
}

func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("condition not met within %v: %v", timeout, err)
}

func TestTwoNodesStartupWorkRunsOnce(t *testing.T) {
	port := freePort(t)
	before := addCalls.Load()
	p := startNode(t, testConfig(t, "primary", "127.0.0.1", port, RolePrimary))
	s := startNode(t, testConfig(t, "standby", "::1", port, RoleStandby))
	key := continuity.StartupKeyPrefix + "cluster.Add"
	eventually(t, 10*time.Second, func() error {
		for _, n := range []*Node{p, s} {
			if len(n.Peers()) != 1 {
				return fmt.Errorf("%s peers %v", n.Name(), n.Peers())
			}
			rec, ok := n.Record(key)
			if !ok || rec.Phase != continuity.PhaseCompleted {
				return fmt.Errorf("%s record %+v", n.Name(), rec)
			}
		}
		return nil
	})
	pr, _ := p.Record(key)
	sr, _ := s.Record(key)
	if pr.Attempt != sr.Attempt || pr.OwnerNode != sr.OwnerNode || pr.ExecutionNode != pr.OwnerNode ||
		pr.ReplicaStatus != continuity.ReplicaMirrored || pr.OwnerNode == pr.ReplicaNode {
		t.Fatalf("records disagree or wrong:\nprimary %+v\nstandby %+v", pr, sr)
	}
	if got := addCalls.Load() - before; got != 1 {
		t.Fatalf("Add ran %d times, want 1", got)
	}
	if r, e := s.Authority(); r != RoleStandby || e != 0 {
		t.Fatalf("standby authority %s/%d", r, e)
	}
}

// pairWithEvents starts a primary and a standby, and returns the standby and
// the membership events the primary reports from before the standby starts.
func pairWithEvents(t *testing.T) (*Node, <-chan MembershipEvent) {
	t.Helper()
	port := freePort(t)
	p := startNode(t, testConfig(t, "primary", "127.0.0.1", port, RolePrimary))
	events := make(chan MembershipEvent, 8)
	p.OnMembership(func(e MembershipEvent) { events <- e })
	return startNode(t, testConfig(t, "standby", "::1", port, RoleStandby)), events
}

func TestMembershipEvents(t *testing.T) {
	s, events := pairWithEvents(t)
	want := func(up bool) {
		t.Helper()
		select {
		case e := <-events:
			if e.Node != s.Name() || e.Up != up {
				t.Fatalf("event %+v, want node %s up=%v", e, s.Name(), up)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no membership event (up=%v)", up)
		}
	}
	want(true)
	s.crash()
	want(false)
}

// Shutdown of a node that crashed (a killed node, in tests) waits for the
// goroutines the node still had running, so none of them runs, or writes
// under its state directory, once Shutdown returns: a test's temporary
// directory is removed right after.
func TestShutdownAfterCrashWaitsForTheNodesGoroutines(t *testing.T) {
	s, events := pairWithEvents(t)
	select {
	case <-events:
	case <-time.After(5 * time.Second):
		t.Fatal("the pair did not link")
	}
	s.crash()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.wg.closeAndWait():
	default:
		t.Fatal("Shutdown returned while goroutines of the crashed node still ran")
	}
}
