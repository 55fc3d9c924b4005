package cluster

// Failover scenarios under testing/synctest. Each scenario runs a primary
// and a standby in one bubble over the in-memory fault network
// (meshtest.NewMemory), breaks the pair (kill, freeze, partition...) while
// keyed work is submitted, lets it recover, and then asks meshtest.History,
// fed by an observer that sampled both nodes all along, whether the four
// safety invariants held: one primary per epoch, epochs never decrease, no
// request key completes under two attempts, no acknowledged record is lost.
//
// Time in the bubble is the bubble's clock: heartbeats, peer timeouts,
// discovery ticks and the pause detector all run on it, so a scenario that
// spans seconds of cluster time takes milliseconds of real time and does not
// depend on the machine's load. Waiting is time.Sleep on that clock, never
// on the real one. Every goroutine a node started must end before the bubble
// does: synctest fails the test otherwise, so these scenarios also check
// that Shutdown leaves nothing running.

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/meshtest"
)

// Runtime names of the work the scenarios submit, in their private registry.
const (
	syncMirrored = "synctest.Mirrored" // replication count 2
	syncSingle   = "synctest.Single"   // replication count 1
)

// syncWorkTime is how long one execution of the scenarios' work takes on the
// bubble's clock.
const syncWorkTime = 30 * time.Millisecond

// syncPort is the cluster port of both nodes; the memory network has no
// other users, so any port will do.
const syncPort = 4370

// syncCluster is a pair of nodes on one memory fault network inside a
// synctest bubble, with an observer feeding a History.
type syncCluster struct {
	t        *testing.T
	fn       *meshtest.FaultNet
	handlers *registry
	history  *meshtest.History

	mu    sync.Mutex       // guards nodes and acked
	nodes map[string]*Node // running nodes by name; a killed node is absent
	acked []string         // request keys whose submission was acknowledged

	stopObserver chan struct{}
	observerDone chan struct{}

	opts []Option // more options for every node started (a lease arbiter)
}

// newSyncCluster must run inside the bubble; it stops its observer and
// every node it started at the end of the test.
func newSyncCluster(t *testing.T) *syncCluster {
	c := &syncCluster{
		t: t, fn: meshtest.NewMemory(), history: &meshtest.History{},
		handlers: &registry{handlers: map[string]*handler{}},
		nodes:    map[string]*Node{},
	}
	for name, count := range map[string]int{syncMirrored: 2, syncSingle: 1} {
		c.handlers.handlers[name] = &handler{name: name, count: count, kind: continuity.KindWork, run: syncWork}
	}
	t.Cleanup(c.fn.Close)
	t.Cleanup(c.stopAll) // before the network closes
	return c
}

// syncWork takes syncWorkTime, or stops with its context.
func syncWork(ctx context.Context) error {
	select {
	case <-time.After(syncWorkTime):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *syncCluster) config(name, host string, role Role) Config {
	cfg := testConfig(c.t, name, host, syncPort, role)
	cfg.StartupWorkDelay = 100 * time.Millisecond
	return cfg
}

// pairConfigs returns the configurations of the primary and the standby.
func (c *syncCluster) pairConfigs() (pcfg, scfg Config) {
	return c.config("primary", "127.0.0.1", RolePrimary), c.config("standby", "::1", RoleStandby)
}

// start starts a node on the memory network; the seed resolves to both
// loopback addresses without a resolver.
func (c *syncCluster) start(cfg Config) *Node {
	c.t.Helper()
	return c.startOn(cfg, c.fn.Node(cfg.NodeName.String()))
}

// startOn is start with the node listening and dialing through nw.
func (c *syncCluster) startOn(cfg Config, nw Network) *Node {
	c.t.Helper()
	n, err := Start(cfg, append([]Option{WithNetwork(nw), withHandlers(c.handlers),
		WithLookupHost(func(context.Context, string) ([]string, error) { return []string{"127.0.0.1", "::1"}, nil })}, c.opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.nodes[n.Name()] = n
	c.mu.Unlock()
	return n
}

func (c *syncCluster) running() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Node, 0, len(c.nodes))
	for _, name := range slices.Sorted(maps.Keys(c.nodes)) {
		out = append(out, c.nodes[name])
	}
	return out
}

// observe records what every running node reports now.
func (c *syncCluster) observe() {
	for _, n := range c.running() {
		role, epoch := n.Authority()
		o := meshtest.Observation{Node: n.Name(), Role: string(role), Epoch: epoch}
		for _, r := range n.Records() {
			o.Records = append(o.Records, meshtest.RecordObs{RequestKey: r.RequestKey, AttemptID: r.AttemptID(),
				Phase: string(r.Phase), ExecutionNode: r.ExecutionNode, Epoch: r.Epoch})
		}
		c.history.Observe(o)
	}
}

// startObserver samples every running node each observeEvery until stopped.
func (c *syncCluster) startObserver() {
	c.stopObserver, c.observerDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(c.observerDone)
		t := time.NewTicker(observeEvery)
		defer t.Stop()
		for {
			c.observe()
			select {
			case <-c.stopObserver:
				return
			case <-t.C:
			}
		}
	}()
}

const observeEvery = 10 * time.Millisecond

// check stops the observer, takes a last observation of every node and
// fails the test on any invariant violation.
func (c *syncCluster) check() {
	c.t.Helper()
	if c.stopObserver != nil {
		close(c.stopObserver)
		<-c.observerDone
		c.stopObserver = nil
	}
	c.observe()
	c.mu.Lock()
	c.history.RequireAcknowledged(c.acked...)
	c.mu.Unlock()
	if err := c.history.Check(); err != nil {
		c.t.Fatalf("history of %d observations violates the invariants:\n%v", len(c.history.Observations()), err)
	}
	// Stronger than the History's presence check, and true of every
	// scenario here: no node that held acknowledged work died for good, so
	// all of it ran to completion and every running node knows it.
	for _, n := range c.running() {
		for _, key := range c.acked {
			if r, ok := n.Record(key); !ok || r.Phase != continuity.PhaseCompleted {
				c.t.Errorf("acknowledged %s on %s: %+v, %v; want completed", key, n.Name(), r, ok)
			}
		}
	}
}

// kill stops n abruptly, as SIGKILL would: no goodbye to the peer, nothing
// flushed, and the node is gone from the cluster. crash closes its listener
// and links at once; the test then waits on the bubble's clock for the
// goroutines the node had started to end, so none of them can touch the
// state dir once a new process starts on it.
func (c *syncCluster) kill(n *Node) {
	c.mu.Lock()
	delete(c.nodes, n.Name())
	c.mu.Unlock()
	n.crash()
	waitGone(c.t, n)
}

// waitGone waits until every goroutine n started has returned.
func waitGone(t *testing.T, n *Node) {
	t.Helper()
	select {
	case <-n.gone():
	case <-time.After(time.Minute):
		t.Fatalf("goroutines of %s still running a minute after it stopped", n.Name())
	}
}

// drained reports, without waiting, whether every goroutine group of n is
// empty.
func drained(n *Node) bool {
	for _, ch := range []<-chan struct{}{n.wg.closeAndWait(), n.running.closeAndWait()} {
		select {
		case <-ch:
		default:
			return false
		}
	}
	return true
}

// stopAll shuts every running node down gracefully and waits for all of
// their goroutines.
func (c *syncCluster) stopAll() {
	if c.stopObserver != nil {
		close(c.stopObserver)
		<-c.observerDone
		c.stopObserver = nil
	}
	for _, n := range c.running() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := n.Shutdown(ctx)
		cancel()
		if err != nil {
			c.t.Errorf("shutdown of %s: %v", n.Name(), err)
		} else if !drained(n) {
			c.t.Errorf("Shutdown of %s returned with goroutines of the node still running", n.Name())
		}
		waitGone(c.t, n)
	}
	c.mu.Lock()
	clear(c.nodes)
	c.mu.Unlock()
}

// await polls cond on the bubble's clock until it holds, for at most limit.
func (c *syncCluster) await(limit time.Duration, what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if !time.Now().Before(deadline) {
			c.t.Fatalf("%s: not within %v of cluster time: %v", what, limit, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// awaitLinked waits until a and b each hold a synchronised link to the other.
func (c *syncCluster) awaitLinked(a, b *Node) {
	c.t.Helper()
	c.await(10*time.Second, "link", func() error {
		for _, pair := range [][2]*Node{{a, b}, {b, a}} {
			s := pair[0].session(pair[1].Name())
			if s == nil || !s.isSynced() {
				return fmt.Errorf("%s has no synchronised link to %s", pair[0].Name(), pair[1].Name())
			}
		}
		return nil
	})
}

// awaitAuthority waits until n is role at epoch, for at most limit of
// cluster time.
func (c *syncCluster) awaitAuthority(n *Node, role Role, epoch uint64, limit time.Duration) {
	c.t.Helper()
	c.await(limit, n.Name()+" authority", func() error {
		if r, e := n.Authority(); r != role || e != epoch {
			return fmt.Errorf("%s is %s/%d, want %s/%d", n.Name(), r, e, role, epoch)
		}
		return nil
	})
}

// awaitSettled waits until no running node holds a pending record and both
// nodes agree on the attempt and phase of every key.
func (c *syncCluster) awaitSettled(a, b *Node) {
	c.t.Helper()
	c.await(20*time.Second, "settle", func() error {
		view := func(n *Node) map[string]string {
			m := map[string]string{}
			for _, r := range n.Records() {
				m[r.RequestKey] = r.AttemptID() + "/" + string(r.Phase)
			}
			return m
		}
		for _, n := range []*Node{a, b} {
			for _, r := range n.Records() {
				if r.Pending() {
					return fmt.Errorf("%s holds %s pending (%s)", n.Name(), r.RequestKey, r.AttemptID())
				}
			}
		}
		va, vb := view(a), view(b)
		for _, k := range slices.Sorted(maps.Keys(va)) {
			if va[k] != vb[k] {
				return fmt.Errorf("%s: %s holds %s, %s holds %q", k, a.Name(), va[k], b.Name(), vb[k])
			}
		}
		if len(va) != len(vb) {
			return fmt.Errorf("%s holds %d records, %s holds %d", a.Name(), len(va), b.Name(), len(vb))
		}
		return nil
	})
}

// submit submits keyed work on n and remembers the key if the submission
// was acknowledged (created). Refusals are allowed during a fault; they are
// not acknowledgements.
func (c *syncCluster) submit(n *Node, name, key string) bool {
	c.t.Helper()
	count := 2
	if name == syncSingle {
		count = 1
	}
	res, err := n.Submit(context.Background(), Declaration{RuntimeName: name, ReplicationCount: count}, key, "payload-"+key)
	if err != nil || res.Outcome != OutcomeCreated {
		return false
	}
	c.mu.Lock()
	c.acked = append(c.acked, key)
	c.mu.Unlock()
	return true
}

// syncMixed asks submitBatch to alternate between mirrored and count-1
// work: a node without its peer refuses the former
// (replica_required_unavailable) and accepts the latter.
const syncMixed = ""

// submitBatch submits count keys named prefix-i of the work named name (or
// syncMixed) on n, one every gap, and returns how many were acknowledged.
func (c *syncCluster) submitBatch(n *Node, name, prefix string, count int, gap time.Duration) int {
	c.t.Helper()
	ok := 0
	for i := range count {
		work := name
		if work == syncMixed {
			work = []string{syncMirrored, syncSingle}[i%2]
		}
		if c.submit(n, work, fmt.Sprintf("%s-%d", prefix, i)) {
			ok++
		}
		time.Sleep(gap)
	}
	return ok
}

// submitAsync runs submitBatch on its own goroutine, so keyed work keeps
// arriving while the scenario waits for the cluster; the returned function
// waits for the batch to end.
func (c *syncCluster) submitAsync(n *Node, name, prefix string, count int, gap time.Duration) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.submitBatch(n, name, prefix, count, gap)
	}()
	return func() { <-done }
}

// failoverLimit is how long a standby may take, in cluster time, to promote
// after its primary is gone: the peer timeout, then loss handling.
func failoverLimit(cfg Config) time.Duration { return 2 * cfg.PeerTimeout }

// synctestScenario runs body in a bubble with a fresh cluster whose pair is
// started and linked, and reports the real time it took.
func synctestScenario(t *testing.T, body func(c *syncCluster, p, s *Node, pcfg, scfg Config)) {
	start := time.Now()
	synctest.Test(t, func(t *testing.T) {
		clusterStart := time.Now()
		c := newSyncCluster(t)
		pcfg, scfg := c.pairConfigs()
		p, s := c.start(pcfg), c.start(scfg)
		c.startObserver()
		c.awaitLinked(p, s)
		body(c, p, s, pcfg, scfg)
		c.check()
		t.Logf("cluster time %v, %d acknowledged keys, %d observations",
			time.Since(clusterStart), len(c.acked), len(c.history.Observations()))
	})
	t.Logf("real time %v", time.Since(start).Round(time.Millisecond))
}

// A pair starts, serves keyed work and shuts down: the harness itself, and
// proof that Shutdown leaves no goroutine behind.
func TestSynctestPairStartsAndStops(t *testing.T) {
	synctestScenario(t, func(c *syncCluster, p, s *Node, _, _ Config) {
		if n := c.submitBatch(p, syncMirrored, "calm", 5, 10*time.Millisecond); n != 5 {
			c.t.Fatalf("%d of 5 submissions acknowledged on a healthy pair", n)
		}
		c.awaitSettled(p, s)
		for _, n := range []*Node{p, s} {
			if r, e := n.Authority(); e != 0 || (r == RolePrimary) != (n == p) {
				c.t.Errorf("%s is %s/%d in a pair without faults", n.Name(), r, e)
			}
		}
	})
}

// Kill: the primary is killed while keyed work is in flight on it and more
// keeps arriving at the standby. The standby must promote at epoch 1 and
// carry the mirrored work on; the primary, restarted from its state dir,
// must rejoin fenced as a standby at epoch 1.
//
// The kill is Node.crash — listener and links closed at once, no goodbye,
// nothing flushed — after which the test waits for the killed node's
// goroutines to return before it starts the new process on the same state
// dir, as the process would be gone.
func TestSynctestKillPrimaryThenRestart(t *testing.T) {
	synctestScenario(t, func(c *syncCluster, p, s *Node, pcfg, _ Config) {
		if n := c.submitBatch(p, syncMirrored, "before", 5, 10*time.Millisecond); n != 5 {
			c.t.Fatalf("%d of 5 submissions acknowledged on a healthy pair", n)
		}
		c.awaitSettled(p, s)
		c.submitBatch(p, syncMirrored, "inflight", 4, 0) // still running at the kill

		c.kill(p)
		during := c.submitAsync(s, syncMixed, "during", 10, 50*time.Millisecond)
		c.awaitAuthority(s, RolePrimary, 1, failoverLimit(pcfg))
		during()
		c.submitBatch(s, syncSingle, "promoted", 3, 10*time.Millisecond)

		p2 := c.start(pcfg)
		c.awaitAuthority(p2, RoleStandby, 1, 10*time.Second)
		c.awaitLinked(p2, s)
		c.submitBatch(s, syncMirrored, "after", 3, 10*time.Millisecond)
		c.awaitSettled(p2, s)
		if !hasTransition(p2, continuity.TransitionFencedRejoin, "") {
			c.t.Error("the restarted primary did not record fenced_rejoin")
		}
	})
}

// Freeze: the primary stops making progress for several peer timeouts (as
// under SIGSTOP or a VM pause) while work arrives at the standby, then
// resumes. The standby must promote at epoch 1; the resumed primary must
// quarantine itself and end fenced as a standby at epoch 1.
//
// An in-process node cannot be stopped: its goroutines share the bubble
// with everyone else's. The freeze is emulated as the pause tests do it: a
// partition both ways for the freeze's length (the peer hears nothing, and
// the frozen node's own sends and receives go nowhere), then, at resume,
// the node's pause detector is handed a last tick as old as the freeze
// (backdatePause) before the partition heals — what it would see on
// waking. Unlike a real freeze, the node's timers run meanwhile: it sees
// its peer's silence and acts on it as a partitioned node would.
func TestSynctestFreezePrimaryThenResume(t *testing.T) {
	synctestScenario(t, func(c *syncCluster, p, s *Node, pcfg, _ Config) {
		if n := c.submitBatch(p, syncMirrored, "before", 5, 10*time.Millisecond); n != 5 {
			c.t.Fatalf("%d of 5 submissions acknowledged on a healthy pair", n)
		}
		c.awaitSettled(p, s)
		c.submitBatch(p, syncMirrored, "inflight", 4, 0)

		freeze := 3 * pcfg.PeerTimeout
		c.fn.Partition(p.Name(), s.Name())
		frozenAt := time.Now()
		during := c.submitAsync(s, syncMixed, "during", 10, 50*time.Millisecond)
		c.awaitAuthority(s, RolePrimary, 1, failoverLimit(pcfg))
		during()
		time.Sleep(freeze - time.Since(frozenAt))

		p.lastTick.Store(p.mono() - int64(freeze))
		c.fn.Heal()
		c.awaitAuthority(p, RoleStandby, 1, 10*time.Second)
		c.awaitLinked(p, s)
		c.submitBatch(s, syncMirrored, "after", 3, 10*time.Millisecond)
		c.awaitSettled(p, s)
		if !hasTransition(p, continuity.TransitionQuarantined, "") {
			c.t.Error("the resumed primary did not quarantine itself")
		}
	})
}

// Partition and heal: the pair is cut apart while both sides take keyed
// work. The standby promotes at epoch 1, the primary carries on alone at
// epoch 0; at heal the higher epoch wins, the old primary is fenced, and
// every acknowledged record — from either side of the cut — survives.
func TestSynctestPartitionThenHeal(t *testing.T) {
	synctestScenario(t, func(c *syncCluster, p, s *Node, _, _ Config) {
		if n := c.submitBatch(p, syncMirrored, "before", 5, 10*time.Millisecond); n != 5 {
			c.t.Fatalf("%d of 5 submissions acknowledged on a healthy pair", n)
		}
		c.awaitSettled(p, s)
		c.submitBatch(p, syncMirrored, "inflight", 4, 0)

		c.fn.Partition(p.Name(), s.Name())
		var during []func()
		for _, n := range []*Node{p, s} {
			during = append(during, c.submitAsync(n, syncMixed, "cut-"+n.cfg.NodeName.Name, 10, 50*time.Millisecond))
		}
		c.awaitAuthority(s, RolePrimary, 1, failoverLimit(p.cfg))
		for _, wait := range during {
			wait()
		}
		c.await(10*time.Second, "primary alone", func() error {
			if peers := p.Peers(); len(peers) != 0 {
				return fmt.Errorf("primary still linked to %v", peers)
			}
			return nil
		})
		for _, n := range []*Node{p, s} {
			if got := c.submitBatch(n, syncSingle, "alone-"+n.cfg.NodeName.Name, 3, 10*time.Millisecond); got != 3 {
				c.t.Errorf("%d of 3 count-1 submissions acknowledged on %s alone", got, n.Name())
			}
		}

		c.fn.Heal()
		c.awaitAuthority(p, RoleStandby, 1, 10*time.Second)
		c.awaitLinked(p, s)
		c.awaitSettled(p, s)
		if r, e := s.Authority(); r != RolePrimary || e != 1 {
			c.t.Errorf("the higher epoch lost: standby is %s/%d", r, e)
		}
	})
}

// Kill the standby: it is killed while running mirrored work it owns, and
// restarted from its state dir. The primary must re-run that work under new
// attempts and stay primary at epoch 0; the restarted standby rejoins at
// epoch 0 and agrees on every record. The kill is as in
// TestSynctestKillPrimaryThenRestart.
func TestSynctestKillStandbyThenRestart(t *testing.T) {
	synctestScenario(t, func(c *syncCluster, p, s *Node, _, scfg Config) {
		var owned []string
		for i := range 4 {
			key := keyPlaced(c.t, fmt.Sprintf("owned-by-standby-%d", i), s.Name(), p, s)
			if !c.submit(p, syncMirrored, key) {
				c.t.Fatalf("submission of %s refused on a healthy pair", key)
			}
			owned = append(owned, key)
		}
		c.kill(s)
		c.submitBatch(p, syncMixed, "during", 10, 50*time.Millisecond)

		s2 := c.start(scfg)
		c.awaitLinked(p, s2)
		c.awaitSettled(p, s2)
		for _, n := range []*Node{p, s2} {
			if r, e := n.Authority(); e != 0 || (r == RolePrimary) != (n == p) {
				c.t.Errorf("%s is %s/%d after the standby's restart", n.Name(), r, e)
			}
		}
		for _, key := range owned {
			if r, _ := p.Record(key); r.Phase != continuity.PhaseCompleted || r.ExecutionNode != p.Name() {
				c.t.Errorf("work the killed standby owned was not re-run by the primary: %+v", r)
			}
		}
	})
}

// A short freeze: the primary stalls for less than the peer timeout but
// more than its pause threshold (half the peer timeout). Nobody may
// promote; the primary must quarantine itself on resuming and be released
// once its peer confirms its authority; work submitted meanwhile at the
// standby completes. The freeze is emulated as in
// TestSynctestFreezePrimaryThenResume.
func TestSynctestShortFreezeIsNoFailover(t *testing.T) {
	synctestScenario(t, func(c *syncCluster, p, s *Node, pcfg, _ Config) {
		c.submitBatch(p, syncMirrored, "before", 5, 10*time.Millisecond)
		c.awaitSettled(p, s)

		freeze := 3 * pcfg.PeerTimeout / 4
		c.fn.Partition(p.Name(), s.Name())
		during := c.submitAsync(s, syncMixed, "during", 4, freeze/4)
		time.Sleep(freeze)
		p.lastTick.Store(p.mono() - int64(freeze))
		c.fn.Heal()
		during()

		c.await(10*time.Second, "quarantine released", func() error {
			if !hasTransition(p, continuity.TransitionQuarantined, "") || !hasTransition(p, continuity.TransitionQuarantineReleased, "") {
				return fmt.Errorf("the primary has not been quarantined and released yet")
			}
			return nil
		})
		c.submitBatch(p, syncMirrored, "after", 3, 10*time.Millisecond)
		c.awaitSettled(p, s)
		if r, e := p.Authority(); r != RolePrimary || e != 0 {
			c.t.Errorf("primary is %s/%d after a freeze shorter than the peer timeout", r, e)
		}
		if r, e := s.Authority(); r != RoleStandby || e != 0 {
			c.t.Errorf("standby is %s/%d after a freeze of its primary shorter than the peer timeout", r, e)
		}
	})
}

// A one-way cut: nothing the standby sends reaches the primary, while the
// primary's traffic still reaches the standby until the standby's own writes
// time out. The pair must end with one primary at the higher epoch and
// every acknowledged record, as after a full partition.
func TestSynctestOneWayBlackholeThenHeal(t *testing.T) {
	synctestScenario(t, func(c *syncCluster, p, s *Node, pcfg, _ Config) {
		c.submitBatch(p, syncMirrored, "before", 5, 10*time.Millisecond)
		c.awaitSettled(p, s)

		c.fn.Blackhole(s.Name(), p.Name())
		var during []func()
		for _, n := range []*Node{p, s} {
			during = append(during, c.submitAsync(n, syncMixed, "cut-"+n.cfg.NodeName.Name, 10, 50*time.Millisecond))
		}
		c.awaitAuthority(s, RolePrimary, 1, failoverLimit(pcfg))
		for _, wait := range during {
			wait()
		}
		c.fn.Heal()
		c.awaitAuthority(p, RoleStandby, 1, 10*time.Second)
		c.awaitLinked(p, s)
		c.awaitSettled(p, s)
	})
}

// Flapping: three partitions in a row, each healed once the side cut off
// from the primary has promoted. Every round must raise the epoch by one
// and hand the primary role to the other node; epochs never go back and no
// epoch ever has two primaries.
func TestSynctestRepeatedPartitions(t *testing.T) {
	synctestScenario(t, func(c *syncCluster, p, s *Node, pcfg, _ Config) {
		primary, standby := p, s
		for round := range 3 {
			epoch := uint64(round + 1)
			c.submitBatch(primary, syncMirrored, fmt.Sprintf("round%d-before", round), 3, 10*time.Millisecond)
			c.awaitSettled(primary, standby)

			c.fn.Partition(p.Name(), s.Name())
			var during []func()
			for _, n := range []*Node{primary, standby} {
				during = append(during, c.submitAsync(n, syncMixed, fmt.Sprintf("round%d-cut-%s", round, n.cfg.NodeName.Name), 6, 50*time.Millisecond))
			}
			c.awaitAuthority(standby, RolePrimary, epoch, failoverLimit(pcfg))
			for _, wait := range during {
				wait()
			}
			c.fn.Heal()
			c.awaitAuthority(primary, RoleStandby, epoch, 10*time.Second)
			c.awaitLinked(primary, standby)
			c.awaitSettled(primary, standby)
			primary, standby = standby, primary
		}
	})
}

// Closing a link never waits on the peer: with the peer cut off and no
// write in flight, close returns without the bubble's clock moving. (Closing
// the TLS connection itself would first wait up to 5 s for a close_notify
// alert the peer cannot take, while the reader waiting on that close delays
// the loss handling and crash holds n.mu. In a bubble that wait stalls the
// clock for good, since the reader blocks on a mutex, which synctest does
// not count as durably blocked: the test then ends at the test timeout.)
func TestSynctestSessionCloseNeverWaitsOnThePeer(t *testing.T) {
	synctestScenario(t, func(c *syncCluster, p, s *Node, _, _ Config) {
		synctest.Wait() // nothing in flight: every writer is idle
		sess := p.session(s.Name())
		c.fn.Partition(p.Name(), s.Name())
		start := time.Now()
		sess.close(fmt.Errorf("test closes the link"))
		if waited := time.Since(start); waited != 0 {
			c.t.Errorf("closing a link to a cut-off peer waited %v", waited)
		}
		c.fn.Heal()
		c.awaitLinked(p, s)
	})
}

// A node that begins stopping cancels the handlers it runs; a handler that
// returns the cancellation has not failed, and its record must stay pending
// for the peer to recover rather than reach the peer as rejected. The test
// holds the stop at its first step (the node's context cancelled, links
// still open), which crash and a Shutdown past its deadline both go
// through, then kills the node and checks the peer re-ran the work.
func TestSynctestStoppingNodeLeavesCancelledWorkPending(t *testing.T) {
	synctestScenario(t, func(c *syncCluster, p, s *Node, _, scfg Config) {
		key := keyPlaced(c.t, "cancelled", s.Name(), p, s)
		if !c.submit(p, syncMirrored, key) {
			c.t.Fatalf("submission of %s refused on a healthy pair", key)
		}
		c.await(time.Second, "work running on the standby", func() error {
			if !s.inflight.has(key) {
				return fmt.Errorf("%s is not running on %s", key, s.Name())
			}
			return nil
		})
		// In flight means taken by a work slot; once every goroutine is
		// blocked, the slot's handler is running and waiting.
		synctest.Wait()

		s.cancel()
		synctest.Wait() // the handler has returned and its outcome is handled
		if r, _ := p.Record(key); !r.Pending() {
			c.t.Fatalf("the primary holds %s as %s (%s) after the standby cancelled it while stopping; want pending",
				key, r.Phase, r.Error)
		}

		c.kill(s)
		// Restarted at once: the primary re-runs the key whether it handles
		// the loss before the new standby answers or learns of the restart
		// from the new incarnation's snapshot.
		s2 := c.start(scfg)
		c.awaitLinked(p, s2)
		c.awaitSettled(p, s2)
		if r, _ := p.Record(key); r.Phase != continuity.PhaseCompleted || r.ExecutionNode != p.Name() {
			c.t.Errorf("the primary has not re-run %s: %+v", key, r)
		}
	})
}

// dialGate is a Network whose dials wait while the gate is held: a node
// behind it is slow to reach its peers, as a dial to a host whose listener
// is not up yet is when the SYN is retried.
type dialGate struct {
	Network
	mu   sync.Mutex
	open chan struct{} // closed while dials may pass
}

func newDialGate(nw Network) *dialGate {
	g := &dialGate{Network: nw, open: make(chan struct{})}
	close(g.open)
	return g
}

// hold makes later dials wait until release.
func (g *dialGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}

func (g *dialGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.open)
}

func (g *dialGate) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Network.DialContext(ctx, network, addr)
}

// Kill the standby while it runs work it owns and restart it at once, from
// its state dir, before the primary has acted on the loss: the primary's
// dials are held from the kill until the new standby has linked, so its
// probe of the lost peer finds the new process answering. The new process
// runs nothing the old one ran; the primary must still re-run that work,
// once, under a new attempt, or the acknowledged key stays pending for
// good.
func TestSynctestStandbyRestartedBeforeLossHandled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSyncCluster(t)
		const blocking = "synctest.Blocking"
		release := make(chan struct{})
		var runs atomic.Int32
		c.handlers.handlers[blocking] = &handler{name: blocking, count: 2, kind: continuity.KindWork,
			run: func(ctx context.Context) error {
				if id, ok := IdentityFrom(ctx); ok && strings.HasPrefix(id.RequestKey, "restarted-owner") {
					runs.Add(1) // not the handler's startup runs
				}
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}}
		pcfg, scfg := c.pairConfigs()
		// The log store: the restarted standby gets its previous run's
		// records back and must leave their recovery to the primary.
		pcfg.ContinuityStore, scfg.ContinuityStore = StoreLog, StoreLog
		gate := newDialGate(c.fn.Node(pcfg.NodeName.String()))
		p, s := c.startOn(pcfg, gate), c.start(scfg)
		c.startObserver()
		c.awaitLinked(p, s)

		key := keyPlaced(c.t, "restarted-owner", s.Name(), p, s)
		res, err := p.Submit(context.Background(), Declaration{RuntimeName: blocking, ReplicationCount: 2}, key, "payload")
		if err != nil || res.Outcome != OutcomeCreated {
			c.t.Fatalf("submission of %s on a healthy pair: %+v, %v", key, res, err)
		}
		c.mu.Lock()
		c.acked = append(c.acked, key)
		c.mu.Unlock()
		c.await(time.Second, "work running on the standby", func() error {
			if !s.inflight.has(key) {
				return fmt.Errorf("%s is not running on %s", key, s.Name())
			}
			return nil
		})
		// In flight means taken by a work slot; once every goroutine is
		// blocked, the slot's handler is running and waiting.
		synctest.Wait()
		before, _ := p.Record(key)

		gate.hold()
		c.kill(s)
		close(release) // from now on the work returns at once wherever it runs
		s2 := c.start(scfg)
		c.awaitLinked(p, s2)
		gate.release()

		c.awaitSettled(p, s2)
		r, _ := p.Record(key)
		if r.Phase != continuity.PhaseCompleted || r.ExecutionNode != p.Name() || r.Attempt == before.Attempt {
			c.t.Errorf("work the killed standby ran was not re-run by the primary under a new attempt: %+v", r)
		}
		for _, n := range []*Node{p, s2} {
			if role, e := n.Authority(); e != 0 || (role == RolePrimary) != (n == p) {
				c.t.Errorf("%s is %s/%d after the standby's restart", n.Name(), role, e)
			}
		}
		// Let the restarted standby's store recovery (resumeRecovered) have
		// its turn: it must leave the work to the primary, which outlived
		// the killed process, or the work runs under two new attempts.
		time.Sleep(pcfg.StartupWorkDelay + 2*pcfg.PeerTimeout)
		synctest.Wait()
		if got := runs.Load(); got != 2 {
			c.t.Errorf("the work ran %d times; want 2 (the killed process, then one re-run by the primary)", got)
		}
		c.check()
	})
}
