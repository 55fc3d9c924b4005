package cluster

// Regression tests for acknowledged work under faults (issue 23). Each test
// replays, over the in-process fault network, a sequence a chaos run found
// losing or misreporting acknowledged work, and checks the rule that now
// holds:
//
//   - a duplicate is answered only from a record the node knows at its
//     current epoch (TestStaleCopyIsNotAcknowledgedAfterPause);
//   - acknowledged work is never discarded for a refused attempt at heal,
//     and it runs (TestAcknowledgedAttemptSurvivesRefusalAtHeal,
//     TestFencedAcknowledgedWorkRunsAfterHeal);
//   - every refusal carries a documented reason
//     (TestRefusalAfterReplacedRecordCarriesReason,
//     TestRouteRefusalAfterReplacedRecordCarriesReason,
//     TestEmptyRefusalNeverLeavesTheNode);
//   - both nodes agree on every record after heal
//     (TestRecordsAgreeAfterHealWithEqualAttemptIDs).

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/meshtest"
)

// ackCookie is long enough for the cookie rules every cluster must meet.
const ackCookie = "acknowledged-work-regression-cookie-0123456789"

// gatedWork is declared work whose executions are counted and, for request
// keys (not startup work), held until the gate opens.
type gatedWork struct {
	mu    sync.Mutex
	runs  []Identity // every execution that started, in order
	open  chan struct{}
	once  sync.Once
	start chan Identity // one send per held execution, for waiting on it
}

func newGatedWork() *gatedWork {
	return &gatedWork{open: make(chan struct{}), start: make(chan Identity, 64)}
}

func (g *gatedWork) release() { g.once.Do(func() { close(g.open) }) }

func (g *gatedWork) run(ctx context.Context) error {
	id, _ := IdentityFrom(ctx)
	if strings.HasPrefix(id.RequestKey, continuity.StartupKeyPrefix) {
		return nil
	}
	g.mu.Lock()
	g.runs = append(g.runs, id)
	g.mu.Unlock()
	g.start <- id
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// executions returns the executions of key that started.
func (g *gatedWork) executions(key string) []Identity {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Identity
	for _, id := range g.runs {
		if id.RequestKey == key {
			out = append(out, id)
		}
	}
	return out
}

// Runtime names of the gated work in the tests' private handler registry,
// and of a clustered route (count 2) that answers 200 at once.
const (
	gatedMirrored = "acktest.Mirrored" // replication count 2
	gatedSingle   = "acktest.Single"   // replication count 1
	mirroredRoute = "acktest.Route"
)

// ackCluster is a pair of nodes on one fault network, sharing one private
// handler registry.
type ackCluster struct {
	t        *testing.T
	fn       *meshtest.FaultNet
	port     int
	handlers *registry
	work     *gatedWork
}

func newAckCluster(t *testing.T) *ackCluster {
	fn := meshtest.New()
	t.Cleanup(fn.Close)
	c := &ackCluster{t: t, fn: fn, port: freePort(t), handlers: &registry{handlers: map[string]*handler{}}, work: newGatedWork()}
	for name, count := range map[string]int{gatedMirrored: 2, gatedSingle: 1} {
		c.handlers.handlers[name] = &handler{name: name, count: count, kind: continuity.KindWork, run: c.work.run}
	}
	c.handlers.handlers[mirroredRoute] = &handler{name: mirroredRoute, count: 2, kind: continuity.KindRoute,
		http: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })}
	t.Cleanup(c.work.release) // never leave a handler blocked behind a failed test
	return c
}

func (c *ackCluster) config(name, host string, role Role) Config {
	cfg := testConfig(c.t, name, host, c.port, role)
	cfg.Cookie = ackCookie
	return cfg
}

func (c *ackCluster) start(cfg Config) *Node {
	return startNode(c.t, cfg, WithNetwork(c.fn.Node(cfg.NodeName.String())), withHandlers(c.handlers))
}

// pair starts a primary and a standby and waits until each has merged the
// other's snapshot.
func (c *ackCluster) pair() (p, s *Node, pcfg, scfg Config) {
	pcfg, scfg = c.config("primary", "127.0.0.1", RolePrimary), c.config("standby", "::1", RoleStandby)
	p, s = c.start(pcfg), c.start(scfg)
	waitLinked(c.t, p, s)
	return p, s, pcfg, scfg
}

// waitLinked waits until a and b each hold a session to the other whose
// first snapshot was applied.
func waitLinked(t *testing.T, a, b *Node) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		for _, pair := range [][2]*Node{{a, b}, {b, a}} {
			s := pair[0].session(pair[1].Name())
			if s == nil || !s.isSynced() {
				return fmt.Errorf("%s has no synchronised link to %s", pair[0].Name(), pair[1].Name())
			}
		}
		return nil
	})
}

// keyPlaced returns a request key whose placement over {a, b} puts the owner
// on owner.
func keyPlaced(t *testing.T, prefix, owner string, a, b *Node) string {
	t.Helper()
	members := continuity.CanonicalMembership([]string{a.Name(), b.Name()})
	for i := range 1000 {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if continuity.PlaceCanonical(k, members).Owner == owner {
			return k
		}
	}
	t.Fatalf("no key places its owner on %s", owner)
	return ""
}

// clientKeyPlaced returns an Idempotency-Key, and the request key a route
// named route makes of it for a caller without credentials, such that
// placement over {a, b} puts the request key's owner on owner.
func clientKeyPlaced(t *testing.T, route, prefix, owner string, a, b *Node) (clientKey, key string) {
	t.Helper()
	members := continuity.CanonicalMembership([]string{a.Name(), b.Name()})
	for i := range 1000 {
		ck := fmt.Sprintf("%s-%d", prefix, i)
		if k := a.scopedRouteKey(route, defaultKeyScope, http.Header{}, ck); continuity.PlaceCanonical(k, members).Owner == owner {
			return ck, k
		}
	}
	t.Fatalf("no client key places its request key on %s", owner)
	return "", ""
}

// waitRecordOf waits until n's record of key satisfies want and returns it.
func waitRecordOf(t *testing.T, n *Node, key string, want func(continuity.Record) error) continuity.Record {
	t.Helper()
	var rec continuity.Record
	eventually(t, 10*time.Second, func() error {
		r, ok := n.Record(key)
		if !ok {
			return fmt.Errorf("%s has no record of %s", n.Name(), key)
		}
		rec = r
		return want(r)
	})
	return rec
}

// waitAgreement waits until a and b hold the same records, equal in every
// field but the local cluster role.
func waitAgreement(t *testing.T, a, b *Node) {
	t.Helper()
	strip := func(recs []continuity.Record) []continuity.Record {
		for i := range recs {
			recs[i].Role = ""
		}
		return recs
	}
	eventually(t, 10*time.Second, func() error {
		ra, rb := strip(a.Records()), strip(b.Records())
		if len(ra) != len(rb) {
			return fmt.Errorf("%s holds %d records, %s holds %d", a.Name(), len(ra), b.Name(), len(rb))
		}
		for i := range ra {
			if !reflect.DeepEqual(ra[i], rb[i]) {
				return fmt.Errorf("records disagree:\n %s %+v\n %s %+v", a.Name(), ra[i], b.Name(), rb[i])
			}
		}
		return nil
	})
}

// waitAlone waits until n has no peer. A test waits for it after crashing
// the peer and before cutting the network: the crashed node's links close
// with a TLS alert, which a partition in place would hold back.
func waitAlone(t *testing.T, n *Node) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		if peers := n.Peers(); len(peers) != 0 {
			return fmt.Errorf("%s still linked to %v", n.Name(), peers)
		}
		return nil
	})
}

// awaitStart waits for the next held execution.
func (c *ackCluster) awaitStart() Identity {
	c.t.Helper()
	select {
	case id := <-c.work.start:
		return id
	case <-time.After(10 * time.Second):
		c.t.Fatal("no execution started")
		return Identity{}
	}
}

func ackDecl(name string) Declaration {
	count := 2
	if name == gatedSingle {
		count = 1
	}
	return Declaration{RuntimeName: name, ReplicationCount: count}
}

// backdatePause makes n's pause detector see a gap longer than its
// threshold at its next check, as after SIGSTOP/SIGCONT.
func backdatePause(n *Node) {
	n.lastTick.Store(n.mono() - int64(3*n.pauseThreshold()))
}

// Issue 23, sequence 1. The replica stores a mirrored copy of K; its
// acknowledgement never reaches the ingress, which refuses K
// (replica_required_unavailable) and promotes. The replica was paused
// meanwhile; asked for K right after it resumes, it used to answer
// duplicate/submitted from its copy — an acknowledgement of work nobody ran.
// A paused node does not know the state of its copy at the current epoch,
// so the duplicate is refused with a reason instead.
func TestStaleCopyIsNotAcknowledgedAfterPause(t *testing.T) {
	c := newAckCluster(t)
	p, s, _, _ := c.pair()
	key := keyPlaced(t, "stale", s.Name(), p, s) // ingress and owner: the standby; replica: the primary

	c.fn.Blackhole(p.Name(), s.Name()) // the replica's acknowledgement never arrives
	refusal := make(chan SubmitResult, 1)
	go func() {
		res, err := s.Submit(context.Background(), ackDecl(gatedMirrored), key, "payload")
		if err != nil {
			t.Errorf("submit on the ingress: %v", err)
		}
		refusal <- res
	}()
	copyHeld := waitRecordOf(t, p, key, func(r continuity.Record) error {
		if !r.Pending() || r.ReplicaStatus != continuity.ReplicaMirrored {
			return fmt.Errorf("replica copy %+v", r)
		}
		return nil
	})

	backdatePause(p) // the replica was frozen and resumes now
	res, err := p.Submit(context.Background(), ackDecl(gatedMirrored), key, "payload")
	if err == nil && res.Outcome == OutcomeDuplicate && res.Record.Pending() {
		t.Fatalf("paused replica acknowledged its unconfirmed copy (attempt %s) as in progress: %+v", copyHeld.AttemptID(), res.Record)
	}
	if RefusalReason(err) != string(continuity.ReasonRecordUnconfirmed) {
		t.Fatalf("duplicate on the paused replica = %+v, %v; want a %s refusal", res, err, continuity.ReasonRecordUnconfirmed)
	}

	refused := <-refusal
	if refused.Outcome != OutcomeRejected || refused.Record.Error != string(continuity.ReasonReplicaRequiredUnavailable) || !refused.Record.Refused {
		t.Fatalf("ingress answered %+v, want a refusal for replica_required_unavailable", refused)
	}
	eventually(t, 10*time.Second, func() error {
		if r, e := s.Authority(); r != RolePrimary || e != 1 {
			return fmt.Errorf("standby %s/%d", r, e)
		}
		return nil
	})

	c.fn.Heal()
	waitLinked(t, p, s)
	c.work.release()
	// Nobody was told K was accepted. Whether it ends rejected or, recovered
	// from the replica's copy, completed, it ends, and both nodes agree.
	for _, n := range []*Node{p, s} {
		waitRecordOf(t, n, key, func(r continuity.Record) error {
			if r.Pending() {
				return fmt.Errorf("%s holds %s pending: %+v", n.Name(), key, r)
			}
			return nil
		})
	}
	waitAgreement(t, p, s)
}

// Issue 23, sequence 2. K was accepted on the primary (attempt Z, created)
// and is running there. The standby restarts with no records behind a
// partition and, asked for K, refuses it (attempt Y > Z,
// replica_required_unavailable). At heal both nodes used to keep the refused
// Y (higher attempt, terminal), and Z, acknowledged, never completed. Merge
// now never discards acknowledged work for a refused attempt: both nodes
// keep Z and it completes, once.
func TestAcknowledgedAttemptSurvivesRefusalAtHeal(t *testing.T) {
	c := newAckCluster(t)
	p, s, _, scfg := c.pair()
	key := keyPlaced(t, "acked", p.Name(), p, s)

	res, err := p.Submit(context.Background(), ackDecl(gatedMirrored), key, "payload")
	if err != nil || res.Outcome != OutcomeCreated {
		t.Fatalf("submit: %+v %v", res, err)
	}
	acked := res.Record
	c.awaitStart()

	s.crash()
	waitAlone(t, p)
	c.fn.Partition(p.Name(), s.Name())
	waitRecordOf(t, p, key, func(r continuity.Record) error {
		if r.ReplicaStatus != continuity.ReplicaDegradedContinuing {
			return fmt.Errorf("primary view %+v", r)
		}
		return nil
	})
	s2 := c.start(scfg) // same state dir, no records
	// Number the standby's attempts past the acknowledged one, as its own
	// traffic would during the partition.
	for i := 0; s2.reg.Watermark() <= acked.Attempt+1; i++ {
		if _, err := s2.Submit(context.Background(), ackDecl(gatedMirrored), fmt.Sprintf("filler-%d", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	ref, err := s2.Submit(context.Background(), ackDecl(gatedMirrored), key, "payload")
	if err != nil || ref.Outcome != OutcomeRejected || !ref.Record.Refused || ref.Record.Attempt <= acked.Attempt {
		t.Fatalf("standby alone answered %+v %v, want a refusal numbered above %s", ref, err, acked.AttemptID())
	}

	c.fn.Heal()
	waitLinked(t, p, s2)
	c.work.release()
	for _, n := range []*Node{p, s2} {
		waitRecordOf(t, n, key, func(r continuity.Record) error {
			if r.Phase != continuity.PhaseCompleted || r.Attempt != acked.Attempt || r.ExecutionNode != p.Name() {
				return fmt.Errorf("%s holds %+v, want %s completed on %s", n.Name(), r, acked.AttemptID(), p.Name())
			}
			return nil
		})
	}
	waitAgreement(t, p, s2)
	if runs := c.work.executions(key); len(runs) != 1 {
		t.Fatalf("%s ran %d times: %+v", key, len(runs), runs)
	}
}

// Work acknowledged by the old primary during a partition, which the
// promoted standby never saw, was still running when the heal fenced the old
// primary: its attempt can no longer complete, and nothing re-ran it. The
// fenced node now re-runs it under a new attempt, numbered above every
// attempt seen, once the new primary's snapshot shows nobody else carrying it.
func TestFencedAcknowledgedWorkRunsAfterHeal(t *testing.T) {
	c := newAckCluster(t)
	p, s, _, _ := c.pair()

	c.fn.Partition(p.Name(), s.Name())
	eventually(t, 10*time.Second, func() error {
		if r, e := s.Authority(); r != RolePrimary || e != 1 {
			return fmt.Errorf("standby %s/%d", r, e)
		}
		if len(p.Peers()) != 0 {
			return fmt.Errorf("primary still linked")
		}
		return nil
	})
	const key = "fenced-work"
	res, err := p.Submit(context.Background(), ackDecl(gatedSingle), key, "payload")
	if err != nil || res.Outcome != OutcomeCreated {
		t.Fatalf("submit on the cut-off primary: %+v %v", res, err)
	}
	first := c.awaitStart()

	c.fn.Heal()
	eventually(t, 10*time.Second, func() error {
		if r, e := p.Authority(); r != RoleStandby || e != 1 {
			return fmt.Errorf("old primary %s/%d", r, e)
		}
		return nil
	})
	waitLinked(t, p, s)
	c.work.release()
	var done continuity.Record
	for _, n := range []*Node{p, s} {
		done = waitRecordOf(t, n, key, func(r continuity.Record) error {
			if r.Phase != continuity.PhaseCompleted {
				return fmt.Errorf("%s holds %+v", n.Name(), r)
			}
			return nil
		})
	}
	waitAgreement(t, p, s)
	if done.Attempt <= res.Record.Attempt || done.Epoch != 1 {
		t.Fatalf("completed under %s at epoch %d, want a new attempt above %s at epoch 1", done.AttemptID(), done.Epoch, first.AttemptID)
	}
	if runs := c.work.executions(key); len(runs) != 2 || runs[1].AttemptID != done.AttemptID() {
		t.Fatalf("executions %+v, want the fenced attempt and its re-run %s", runs, done.AttemptID())
	}
}

// Issue 23, sequence 3. The primary's prepare of K is stuck (its link to the
// standby is blackholed one way) while the standby submits K itself under a
// higher attempt, which replaces the primary's record. When the prepare
// fails, rejecting the primary's attempt finds another attempt stored, and
// Submit used to return OutcomeRejected with an empty Record.Error (a route
// answered 503 {"error":""}). The refusal now carries its reason.
func TestRefusalAfterReplacedRecordCarriesReason(t *testing.T) {
	c := newAckCluster(t)
	p, s, _, _ := c.pair()
	key := keyPlaced(t, "replaced", p.Name(), p, s) // replica: the standby

	c.fn.Blackhole(p.Name(), s.Name())
	answer := make(chan SubmitResult, 1)
	go func() {
		res, err := p.Submit(context.Background(), ackDecl(gatedMirrored), key, "payload")
		if err != nil {
			t.Errorf("submit on the primary: %v", err)
		}
		answer <- res
	}()
	mine := waitRecordOf(t, p, key, func(r continuity.Record) error { return nil })
	for i := 0; s.reg.Watermark() <= mine.Attempt+1; i++ {
		if _, err := s.Submit(context.Background(), ackDecl(gatedSingle), keyPlaced(t, fmt.Sprintf("filler%d", i), s.Name(), p, s), "x"); err != nil {
			t.Fatal(err)
		}
	}
	go func() { _, _ = s.Submit(context.Background(), ackDecl(gatedMirrored), key, "payload") }()
	waitRecordOf(t, p, key, func(r continuity.Record) error {
		if r.Attempt <= mine.Attempt {
			return fmt.Errorf("primary still holds its own attempt %+v", r)
		}
		return nil
	})

	res := <-answer
	if res.Outcome != OutcomeRejected || res.Record.Error == "" || !continuity.Documented(res.Record.Error) {
		t.Fatalf("primary answered %+v, want a refusal with a documented reason", res)
	}
	if res.Record.Attempt != mine.Attempt || !res.Record.Refused {
		t.Fatalf("refusal describes %+v, want the refused attempt %s", res.Record, mine.AttemptID())
	}
	c.fn.Heal()
	c.work.release()
	waitLinked(t, p, s)
	waitAgreement(t, p, s)
}

// The same sequence through a clustered route: the primary's request with
// an Idempotency-Key is stuck in its prepare while the standby serves the
// same key under a higher attempt. The primary used to answer 503
// {"error":""}; it now names the reason.
func TestRouteRefusalAfterReplacedRecordCarriesReason(t *testing.T) {
	c := newAckCluster(t)
	p, s, _, _ := c.pair()
	// The request key is scoped by route and caller (here one without
	// credentials); the primary owns it and the standby mirrors it.
	clientKey, key := clientKeyPlaced(t, mirroredRoute, "route", p.Name(), p, s)
	serve := func(n *Node) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader("{}"))
		req.Header.Set(HeaderIdempotencyKey, clientKey)
		(&routeHandler{name: mirroredRoute, count: 2, node: n}).ServeHTTP(w, req)
		return w
	}

	c.fn.Blackhole(p.Name(), s.Name())
	answer := make(chan *httptest.ResponseRecorder, 1)
	go func() { answer <- serve(p) }()
	mine := waitRecordOf(t, p, key, func(r continuity.Record) error { return nil })
	for i := 0; s.reg.Watermark() <= mine.Attempt+1; i++ {
		if _, err := s.Submit(context.Background(), ackDecl(gatedSingle), keyPlaced(t, fmt.Sprintf("filler%d", i), s.Name(), p, s), "x"); err != nil {
			t.Fatal(err)
		}
	}
	go serve(s)
	waitRecordOf(t, p, key, func(r continuity.Record) error {
		if r.Attempt <= mine.Attempt {
			return fmt.Errorf("primary still holds its own attempt %+v", r)
		}
		return nil
	})

	w := <-answer
	body := w.Body.String()
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(body, `"error":"`+string(continuity.ReasonReplicaRequiredUnavailable)+`"`) {
		t.Fatalf("primary answered %d %s, want 503 naming replica_required_unavailable", w.Code, body)
	}
	c.fn.Heal()
	c.work.release()
	waitLinked(t, p, s)
	waitAgreement(t, p, s)
}

// The single writer of refusals never lets an empty reason leave the node.
func TestEmptyRefusalNeverLeavesTheNode(t *testing.T) {
	n := startNode(t, testConfig(t, "solo", "127.0.0.1", freePort(t), RolePrimary), withHandlers(privateRegistry(t)))
	w := httptest.NewRecorder()
	n.writeRefusal(w, http.StatusServiceUnavailable, "")
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"error":"`+string(continuity.ReasonUnspecified)+`"`) {
		t.Fatalf("refusal = %d %s", w.Code, w.Body.String())
	}
}

// Issue 23, sequence 4. Cut off from each other at one epoch, both nodes
// refuse K under the same attempt number, each as its own owner. At heal
// neither version outranked the other, so each node kept its own and the
// records disagreed for good. Merge now breaks every tie the same way on
// both nodes.
func TestRecordsAgreeAfterHealWithEqualAttemptIDs(t *testing.T) {
	c := newAckCluster(t)
	p, s, _, scfg := c.pair()
	s.crash()
	waitAlone(t, p)
	c.fn.Partition(p.Name(), s.Name())
	s2 := c.start(scfg) // alone at epoch 0, like the primary: neither promotes
	// Nodes cut off from each other allocate from different slots, so equal
	// attempt ids come only from a node that restarted and counts again
	// from where it stands; both are put in one slot to make the tie here.
	p.reg.SetAloneSlot(0)
	s2.reg.SetAloneSlot(0)
	// Bring both attempt counters to the same number.
	for i := 0; s2.reg.Watermark() != p.reg.Watermark(); i++ {
		lower := s2
		if p.reg.Watermark() < s2.reg.Watermark() {
			lower = p
		}
		if _, err := lower.Submit(context.Background(), ackDecl(gatedMirrored), fmt.Sprintf("filler-%s-%d", lower.Name(), i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	const key = "both-refused"
	var refusals []continuity.Record
	for _, n := range []*Node{p, s2} {
		res, err := n.Submit(context.Background(), ackDecl(gatedMirrored), key, "payload")
		if err != nil || res.Outcome != OutcomeRejected {
			t.Fatalf("%s: %+v %v", n.Name(), res, err)
		}
		refusals = append(refusals, res.Record)
	}
	if a, b := refusals[0], refusals[1]; a.Attempt != b.Attempt || a.OwnerNode == b.OwnerNode || a.Epoch != b.Epoch {
		t.Fatalf("want one attempt id at one epoch with two owners:\n %+v\n %+v", a, b)
	}

	c.fn.Heal()
	waitLinked(t, p, s2)
	waitAgreement(t, p, s2)
}
