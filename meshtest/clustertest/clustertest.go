// Package clustertest runs Mesh nodes inside a Go test: a primary/standby
// pair, or one standalone node, in the test's own process, linked over the
// in-memory fault network of package meshtest (meshtest.NewMemory), with
// short heartbeat and peer timeouts so that a failover takes a fraction of a
// second. It is the supported way to test a service's clustered routes and
// declared work against the real runtime without building a binary:
//
//	pair := clustertest.StartPair(t)
//	srv := pair.Primary.Serve(api.NewRouter(...)) // an httptest.Server
//	resp, _ := http.Get(srv.URL + "/todos")
//	key := resp.Header.Get(mesh.HeaderRequestKey)
//	pair.Standby.WaitRecord(key, mesh.PhaseCompleted) // mirrored to the standby
//	pair.Primary.Kill()
//	pair.Standby.WaitRole(mesh.RolePrimary, 1) // the standby took over
//
// Every node, server and network is stopped by t.Cleanup. Waits fail the
// test after the kit's timeout (10 s unless Timeout says otherwise); when a
// test fails, the last log lines of each node are printed with it.
//
// Both nodes of a pair run the same declarations (mesh.Work and
// mesh.Clustered registrations are per process), as the two processes of
// one binary do. A request served through a Node's Handler or Serve runs its
// clustered routes on that node, and typed work submitted from it with a nil
// node (mesh.SubmitWork(ctx, nil, ...)) is submitted on that node. Code that
// calls mesh.Default() itself gets the process's default node, which is none
// of the kit's: pass it the node (Node.Mesh) instead.
//
// The faults are those of a process and of its network: Kill (SIGKILL),
// Freeze and Resume (SIGSTOP and SIGCONT), Restart (a new process on the same
// state directory), Pair.Partition and Pair.Heal, and anything the
// meshtest.FaultNet in Pair.Net can do (one-way blackholes, delays, resets).
package clustertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/internal/cluster"
	"meshgo.dev/mesh/meshtest"
)

// Timings of the nodes the kit starts: short, so a peer is declared lost
// (and a standby promotes) within about half a second.
const (
	heartbeatInterval = 50 * time.Millisecond
	peerTimeout       = 400 * time.Millisecond
	discoveryInterval = 100 * time.Millisecond
	startupWorkDelay  = 100 * time.Millisecond
	clusterPort       = mesh.DefaultClusterPort
	defaultTimeout    = 10 * time.Second
	pollInterval      = 10 * time.Millisecond
	logTailLines      = 40
)

// An Option changes how StartPair and Standalone start nodes.
type Option func(*settings)

type settings struct {
	timeout   time.Duration
	configure []func(*mesh.Config)
	logs      io.Writer
}

// Timeout sets how long the kit's waits (StartPair's own, WaitRecord,
// WaitRole, WaitLinked, Kill) last before they fail the test.
func Timeout(d time.Duration) Option { return func(s *settings) { s.timeout = d } }

// Configure edits the configuration of every node before it starts, for
// example to set ContinuityStore, RetainedRecords or StartupWorkDelay. The
// kit fills in the mode, names, cookie, timings, state directory and logger
// first; fields changed here win.
func Configure(f func(*mesh.Config)) Option {
	return func(s *settings) { s.configure = append(s.configure, f) }
}

// Logs copies every node's log lines to w as well (for example os.Stderr
// while debugging a test). They are kept by the kit either way.
func Logs(w io.Writer) Option { return func(s *settings) { s.logs = w } }

// Pair is a primary and a standby running in the test's process, linked
// over Net.
type Pair struct {
	Primary *Node
	Standby *Node
	// Net carries every byte between the two nodes; its rules fault the
	// links (Partition, Blackhole, Delay, Reset). Nodes are named on it by
	// their node names (Node.Name).
	Net *meshtest.FaultNet

	t       testing.TB
	timeout time.Duration
}

// StartPair starts a primary (primary@127.0.0.1:4370) and a standby
// (standby@[::1]:4370) on a fresh in-memory fault network and returns once
// both are ready and linked: each node holds a synchronised link to the
// other and reports replication health healthy. Declared startup work then
// runs on the primary after a 100 ms window. Both nodes are shut down when
// the test ends.
func StartPair(t testing.TB, opts ...Option) *Pair {
	t.Helper()
	s := newSettings(opts)
	cookie := newCookie(t)
	p := &Pair{Net: meshtest.NewMemory(), t: t, timeout: s.timeout}
	t.Cleanup(p.Net.Close) // runs after the nodes' cleanups
	p.Primary = newNode(t, s, p.Net, clusterConfig(t, cookie, "primary", "127.0.0.1", mesh.RolePrimary))
	p.Standby = newNode(t, s, p.Net, clusterConfig(t, cookie, "standby", "::1", mesh.RoleStandby))
	p.Primary.partners = []*Node{p.Standby}
	p.Standby.partners = []*Node{p.Primary}
	p.Primary.start()
	p.Standby.start()
	p.WaitLinked()
	return p
}

// Standalone starts one standalone node, as a service started without any
// MESH_* environment runs: records are kept but never mirrored, and declared
// startup work runs at once. It is shut down when the test ends.
func Standalone(t testing.TB, opts ...Option) *Node {
	t.Helper()
	s := newSettings(opts)
	n := newNode(t, s, nil, mesh.Config{Mode: mesh.ModeStandalone})
	n.start()
	return n
}

func newSettings(opts []Option) *settings {
	s := &settings{timeout: defaultTimeout}
	for _, o := range opts {
		o(s)
	}
	return s
}

func newCookie(t testing.TB) mesh.Cookie {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("clustertest: cookie: %v", err)
	}
	return mesh.Cookie("clustertest-" + hex.EncodeToString(b))
}

func clusterConfig(t testing.TB, cookie mesh.Cookie, name, host string, role mesh.Role) mesh.Config {
	return mesh.Config{
		Mode: mesh.ModeCluster, Cookie: cookie, DiscoverySeed: "localhost", ClusterPort: clusterPort,
		NodeName: mesh.NodeName{Name: name, Host: host, Port: clusterPort}, Role: role,
		DiscoveryInterval: discoveryInterval, StartupWorkDelay: startupWorkDelay,
		HeartbeatInterval: heartbeatInterval, PeerTimeout: peerTimeout,
		StateDir: t.TempDir(),
	}
}

// WaitLinked waits until each node of the pair holds a synchronised link
// to the other, is ready, and reports replication health healthy: records
// submitted from then on are mirrored.
func (p *Pair) WaitLinked() {
	p.t.Helper()
	meshtest.Eventually(p.t, p.timeout, pollInterval, func() error {
		for _, n := range []*Node{p.Primary, p.Standby} {
			mn := n.current()
			if mn == nil {
				return fmt.Errorf("%s is killed", n.name)
			}
			if h := mn.Health(); !h.Ready || h.ReplicationHealth != mesh.HealthHealthy {
				return fmt.Errorf("%s is not linked: ready=%t reason=%q replication_health=%s", n.name, h.Ready, h.Reason, h.ReplicationHealth)
			}
		}
		return nil
	})
}

// Partition cuts the pair's link in both directions until Heal: nothing
// either node writes reaches the other, and new connections between them
// fail. The standby promotes itself once its peer timeout (400 ms) passes,
// while the primary, alone, carries on at its epoch.
func (p *Pair) Partition() { p.Net.Partition(p.Primary.name, p.Standby.name) }

// Heal lifts every rule of Net. The nodes reconnect at their next discovery
// tick; the higher epoch fences the other node to standby.
func (p *Pair) Heal() { p.Net.Heal() }

// Node is one node started by the kit. Its runtime node changes when it is
// restarted; the Node stays the same.
type Node struct {
	t       testing.TB
	timeout time.Duration
	name    string
	net     *meshtest.FaultNet // nil for a standalone node
	cfg     mesh.Config
	logs    *logBuffer

	partners []*Node // the other nodes of its pair

	stopping     chan struct{} // closed when the test ends: frozen requests give up
	stoppingOnce sync.Once

	mu       sync.Mutex    // guards the fields below
	node     *mesh.Node    // nil while killed
	frozen   chan struct{} // non-nil while frozen; closed by Resume
	frozenAt time.Time
}

func newNode(t testing.TB, s *settings, net *meshtest.FaultNet, cfg mesh.Config) *Node {
	n := &Node{t: t, timeout: s.timeout, net: net, logs: &logBuffer{copyTo: s.logs}, stopping: make(chan struct{})}
	if cfg.Mode == mesh.ModeCluster {
		n.name = cfg.NodeName.String()
	} else {
		n.name = mesh.StandaloneNodeName
	}
	cfg.Logger = slog.New(slog.NewTextHandler(n.logs, nil)).With("node", n.name)
	for _, f := range s.configure {
		f(&cfg)
	}
	n.cfg = cfg
	t.Cleanup(n.cleanup)
	return n
}

// start starts the runtime node; the test fails if it cannot.
func (n *Node) start() {
	n.t.Helper()
	var opts []mesh.Option
	if n.net != nil {
		opts = append(opts, mesh.WithNetwork(n.net.Node(n.name)),
			// The seed names both loopback addresses: the pair finds itself
			// without a resolver.
			mesh.WithLookupHost(func(context.Context, string) ([]string, error) {
				return []string{"127.0.0.1", "::1"}, nil
			}))
	}
	mn, err := mesh.Start(n.cfg, opts...)
	if err != nil {
		n.t.Fatalf("clustertest: start %s: %v", n.name, err)
	}
	n.mu.Lock()
	n.node = mn
	n.mu.Unlock()
}

// stop makes requests waiting on a freeze give up.
func (n *Node) stop() { n.stoppingOnce.Do(func() { close(n.stopping) }) }

func (n *Node) cleanup() {
	n.stop()
	n.mu.Lock()
	mn := n.node
	n.node = nil
	n.mu.Unlock()
	if mn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
		if err := mn.Shutdown(ctx); err != nil {
			n.t.Errorf("clustertest: shut down %s: %v", n.name, err)
		}
		cancel()
	}
	if n.t.Failed() {
		n.t.Logf("clustertest: last log lines of %s:\n%s", n.name, n.logs.tail(logTailLines))
	}
}

// Name returns the node name (primary@127.0.0.1:4370, standby@[::1]:4370,
// or the standalone node's name).
func (n *Node) Name() string { return n.name }

// Config returns the configuration the node starts with.
func (n *Node) Config() mesh.Config { return n.cfg }

func (n *Node) current() *mesh.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.node
}

// Mesh returns the running runtime node, for what the kit does not wrap
// (Submit, SubmitWork, Diagnostics, Health, Records...). It fails the test
// when the node is killed.
func (n *Node) Mesh() *mesh.Node {
	n.t.Helper()
	mn := n.current()
	if mn == nil {
		n.t.Fatalf("clustertest: %s is killed", n.name)
	}
	return mn
}

// Role returns the node's role and promotion epoch.
func (n *Node) Role() (mesh.Role, uint64) { return n.Mesh().Authority() }

// Record returns the record of key as this node holds it now.
func (n *Node) Record(key string) (mesh.Record, bool) { return n.Mesh().Record(key) }

// Records returns every record this node holds.
func (n *Node) Records() []mesh.Record { return n.Mesh().Records() }

// Logs returns every line the node (each of its runs) has logged.
func (n *Node) Logs() string { return n.logs.String() }

// WaitRecord waits until the node holds the record of key in phase and
// returns it.
func (n *Node) WaitRecord(key string, phase mesh.Phase) mesh.Record {
	n.t.Helper()
	var rec mesh.Record
	meshtest.Eventually(n.t, n.timeout, pollInterval, func() error {
		mn := n.current()
		if mn == nil {
			return fmt.Errorf("%s is killed", n.name)
		}
		r, ok := mn.Record(key)
		if !ok {
			return fmt.Errorf("%s holds no record %s", n.name, key)
		}
		if r.Phase != phase {
			return fmt.Errorf("record %s on %s is %s/%s (%s), want phase %s", key, n.name, r.Phase, r.Result, r.Error, phase)
		}
		rec = r
		return nil
	})
	return rec
}

// WaitRole waits until the node has role at epoch.
func (n *Node) WaitRole(role mesh.Role, epoch uint64) {
	n.t.Helper()
	meshtest.Eventually(n.t, n.timeout, pollInterval, func() error {
		mn := n.current()
		if mn == nil {
			return fmt.Errorf("%s is killed", n.name)
		}
		if r, e := mn.Authority(); r != role || e != epoch {
			return fmt.Errorf("%s is %s at epoch %d, want %s at epoch %d", n.name, r, e, role, epoch)
		}
		return nil
	})
}

// Handler returns h served by this node: the clustered routes h reaches
// run their requests through this node (forwarded to its peer when the peer
// owns them), and typed work submitted with a nil node on the request's
// context goes to this node. While the node is frozen a request waits for
// Resume (or for its own context); while it is killed the handler aborts
// the request with http.ErrAbortHandler, so a client of Serve's server sees
// its connection drop, as a dead process's client would.
func (n *Node) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		mn, frozen := n.node, n.frozen
		n.mu.Unlock()
		if frozen != nil {
			select {
			case <-frozen:
			case <-n.stopping:
				panic(http.ErrAbortHandler)
			case <-r.Context().Done():
				panic(http.ErrAbortHandler)
			}
			mn = n.current()
		}
		if mn == nil {
			panic(http.ErrAbortHandler)
		}
		h.ServeHTTP(w, r.WithContext(cluster.WithNode(r.Context(), mn)))
	})
}

// Serve starts an httptest.Server whose handler is Handler(h), closed when
// the test ends.
func (n *Node) Serve(h http.Handler) *httptest.Server {
	srv := httptest.NewServer(n.Handler(h))
	n.t.Cleanup(func() {
		n.stop() // Close waits for requests a freeze holds
		srv.Close()
	})
	return srv
}

// Kill stops the node as SIGKILL stops a process: no goodbye to its peer,
// its links and listener closed at once, work it was running cut off. Its
// state directory stays for Restart. Kill returns once everything the node
// ran has stopped.
func (n *Node) Kill() {
	n.t.Helper()
	n.mu.Lock()
	mn := n.node
	n.node = nil
	n.mu.Unlock()
	if mn == nil {
		n.t.Fatalf("clustertest: kill %s: already killed", n.name)
	}
	if err := cluster.Crash(mn, n.timeout); err != nil {
		n.t.Fatalf("clustertest: kill %s: %v", n.name, err)
	}
}

// Restart starts the node again after Kill, on the same network, name and
// state directory, as a restarted process would: it keeps only what it
// persisted (its highest epoch, and its records when Config.ContinuityStore
// is "log"). It rejoins its peer on its own; a node that meets a
// higher epoch rejoins as standby.
func (n *Node) Restart() {
	n.t.Helper()
	if n.current() != nil {
		n.t.Fatalf("clustertest: restart %s: still running; Kill it first", n.name)
	}
	n.start()
}

// Freeze stops the node from being heard, as SIGSTOP stops a process: its
// peer hears nothing from it (and promotes after its peer timeout if the
// frozen node was its primary), and requests to its Handler wait for Resume.
// The runtime node itself keeps its timers, so unlike a stopped process it
// sees its peer fall silent too; what it does then is what a partitioned
// node does.
func (n *Node) Freeze() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.node == nil || n.frozen != nil {
		n.t.Fatalf("clustertest: freeze %s: killed or already frozen", n.name)
	}
	n.frozen, n.frozenAt = make(chan struct{}), time.Now()
	for _, p := range n.partners {
		n.net.Partition(n.name, p.name)
	}
}

// Resume ends a Freeze, as SIGCONT resumes a process: the node notices the
// time it lost (a primary frozen past half its peer timeout quarantines
// itself until its authority is confirmed), the network is healed (every
// rule of Pair.Net lifted) and waiting requests go on.
func (n *Node) Resume() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.frozen == nil {
		n.t.Fatalf("clustertest: resume %s: not frozen", n.name)
	}
	if n.node != nil {
		cluster.Paused(n.node, time.Since(n.frozenAt))
	}
	if n.net != nil {
		n.net.Heal()
	}
	close(n.frozen)
	n.frozen = nil
}

// logBuffer keeps a node's log lines; it is safe for concurrent use.
type logBuffer struct {
	mu     sync.Mutex // guards buf and writes to copyTo
	buf    bytes.Buffer
	copyTo io.Writer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.copyTo != nil {
		_, _ = b.copyTo.Write(p)
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
