// Package chaos_test is the chaos soak: a primary/standby pair of real node
// processes (e2e/chaos/app) under twelve concurrent keyed clients, with
// seeded random faults — SIGKILL of the primary or the standby (each
// restarted from its original environment), SIGSTOP/SIGCONT of the primary,
// or cuts of the cluster link between two network namespaces — and, at the
// end, the checker of meshtest/chaos over everything that was recorded.
//
// The soak runs only when MESH_CHAOS=1 (make chaos-short, make chaos), so
// a plain go test ./... stays short. SEED=<n> repeats a run's choices,
// CHAOS_DURATION=<d> sets how long faults are injected (default 10m). The
// last line printed is the summary of figures.
package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/meshtest"
	"meshgo.dev/mesh/meshtest/chaos"
)

func TestMain(m *testing.M) {
	code := m.Run()
	_ = meshtest.RemoveBuiltBinaries()
	os.Exit(code)
}

// soakConfig is read from the environment.
type soakConfig struct {
	seed     int64
	duration time.Duration
}

func config(t *testing.T) soakConfig {
	t.Helper()
	if os.Getenv("MESH_CHAOS") != "1" {
		t.Skip("chaos soak: set MESH_CHAOS=1 to run it (make chaos-short, make chaos)")
	}
	c := soakConfig{seed: time.Now().UnixNano() % 1_000_000_000, duration: 10 * time.Minute}
	if s := os.Getenv("SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("SEED=%q: %v", s, err)
		}
		c.seed = v
	}
	if s := os.Getenv("CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("CHAOS_DURATION=%q: want a positive Go duration such as 90s or 10m", s)
		}
		c.duration = d
	}
	return c
}

// TestChaosCrash soaks the pair on loopback (127.0.0.1 and [::1]) under
// SIGKILL of the primary, SIGKILL of the standby and SIGSTOP/SIGCONT of the
// primary.
func TestChaosCrash(t *testing.T) {
	cfg := config(t)
	s := newSoak(t, cfg, "crash")
	app, meshc := meshtest.BuildBinary(t, "./e2e/chaos/app"), meshtest.BuildBinary(t, "./cmd/meshc")
	s.p.meshc = meshc
	port := meshtest.FreePort(t)
	a := nodeSpec{label: "a", role: "primary", name: fmt.Sprintf("primary@127.0.0.1:%d", port), peerHost: "::1",
		clusterPort: port, httpAddr: fmt.Sprintf("127.0.0.1:%d", meshtest.FreePort(t))}
	b := nodeSpec{label: "b", role: "standby", name: fmt.Sprintf("standby@[::1]:%d", port), peerHost: "127.0.0.1",
		clusterPort: port, httpAddr: fmt.Sprintf("[::1]:%d", meshtest.FreePort(t))}
	s.p.nodes = [2]*node{s.p.start(app, a), s.p.start(app, b)}
	s.run([]string{chaos.FaultKillPrimary, chaos.FaultKillStandby, chaos.FaultFreezePrimary}, nil)
}

// TestChaosPartition soaks the pair in two network namespaces under cuts of
// the cluster link, while clients reach both nodes. It needs root.
func TestChaosPartition(t *testing.T) {
	cfg := config(t)
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root for network namespaces")
	}
	s := newSoak(t, cfg, "partition")
	app, meshc := meshtest.BuildBinary(t, "./e2e/chaos/app"), meshtest.BuildBinary(t, "./cmd/meshc")
	s.p.meshc = meshc
	nw := newNetns(t)
	const port = 4370 // each node has its namespace to itself
	a := nodeSpec{label: "a", role: "primary", name: fmt.Sprintf("primary@%s:%d", nw.addr[0], port), peerHost: nw.addr[1],
		clusterPort: port, httpAddr: nw.http[0] + ":8080", prefix: nw.prefix(0)}
	b := nodeSpec{label: "b", role: "standby", name: fmt.Sprintf("standby@%s:%d", nw.addr[1], port), peerHost: nw.addr[0],
		clusterPort: port, httpAddr: nw.http[1] + ":8080", prefix: nw.prefix(1)}
	s.p.nodes = [2]*node{s.p.start(app, a), s.p.start(app, b)}
	t.Logf("partition: %s", nw.describe())
	s.checkIsolation(nw)
	s.run([]string{chaos.FaultPartition}, nw)
}

// soak is one run: the pair, the clients' history, the status observations
// and the faults.
type soak struct {
	t    *testing.T
	cfg  soakConfig
	mode string
	rng  *rand.Rand // fault choices; clients have their own streams
	p    *pair
	hist history

	quiesceNote string // why the pair has not settled, at the last look

	mu     sync.Mutex // guards status and faults
	status []chaos.StatusObs
	faults []chaos.Fault
}

func newSoak(t *testing.T, cfg soakConfig, mode string) *soak {
	fmt.Printf("chaos %s soak: seed %d (repeat with SEED=%d), faults for %v\n", mode, cfg.seed, cfg.seed, cfg.duration)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, ".tmp", "chaos", time.Now().UTC().Format("20060102T150405Z")+"-"+mode)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &soak{t: t, cfg: cfg, mode: mode, rng: rand.New(rand.NewPCG(uint64(cfg.seed), 0)),
		p: &pair{t: t, cookie: newCookie(t), dir: dir}}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("MESH_KEEP_ARTIFACTS") == "1" {
			fmt.Printf("chaos %s soak: artifacts kept in %s\n", mode, dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return s
}

func (s *soak) observe(o chaos.StatusObs) {
	s.mu.Lock()
	s.status = append(s.status, o)
	s.mu.Unlock()
}

func (s *soak) fault(f chaos.Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
	fmt.Printf("chaos %s soak: %s %s held %v, pair re-formed=%v %s\n", s.mode, f.Kind, f.Node,
		f.End.Sub(f.Start).Round(time.Millisecond), f.Reformed, f.Detail)
}

// checkIsolation proves the partition is real before the soak relies on
// it: with the link cut, node a's namespace cannot reach node b's cluster
// port by any route, while meshc in the root namespace still reaches both.
func (s *soak) checkIsolation(nw *netns) {
	t := s.t
	nw.cut()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err := s.p.meshcRun(ctx, nw.prefix(0), "cluster", "status", s.p.nodes[1].name, "--timeout-ms=1000")
	cancel()
	if err == nil {
		nw.heal()
		t.Fatalf("partition is not real: node a's namespace reaches %s with the cluster link cut", s.p.nodes[1].name)
	}
	for _, n := range s.p.nodes {
		if _, err := s.p.status(n); err != nil {
			nw.heal()
			t.Fatalf("root namespace cannot reach %s during a cut: %v", n.name, err)
		}
	}
	nw.heal()
	s.waitFormed("isolation check")
}

// waitFormed polls until the pair has re-formed or reformBound ran out, and
// returns when it saw the pair formed (zero if it did not) or why not.
func (s *soak) waitFormed(after string) (time.Time, string) {
	deadline := time.Now().Add(reformBound)
	for {
		obs, err := s.p.formed()
		for _, o := range obs {
			s.observe(o)
		}
		if err == nil {
			return time.Now(), ""
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Sprintf("after %s: %v", after, err)
		}
		pause(context.Background(), 200*time.Millisecond)
	}
}

// primary returns the node that reports primary at the highest epoch, and
// the other one.
func (s *soak) roles() (primary, standby *node) {
	best := -1
	var epoch uint64
	for i, n := range s.p.nodes {
		o, err := s.p.status(n)
		if err != nil {
			continue
		}
		s.observe(o)
		if o.Role == "primary" && (best < 0 || o.Epoch > epoch) {
			best, epoch = i, o.Epoch
		}
	}
	if best < 0 {
		best = 0
	}
	return s.p.nodes[best], s.p.nodes[1-best]
}

func (s *soak) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)))
}

// inject runs one fault of kind and waits for the pair to re-form.
func (s *soak) inject(kind string, nw *netns) {
	primary, standby := s.roles()
	f := chaos.Fault{Kind: kind, Start: time.Now()}
	switch kind {
	case chaos.FaultKillPrimary, chaos.FaultKillStandby:
		victim := primary
		if kind == chaos.FaultKillStandby {
			victim = standby
		}
		f.Node = victim.name
		victim.proc.Kill()
		pause(context.Background(), s.between(300*time.Millisecond, 3*time.Second))
		s.p.restart(victim)
	case chaos.FaultFreezePrimary:
		f.Node = primary.name
		primary.proc.Stop()
		pause(context.Background(), s.between(500*time.Millisecond, 4*time.Second))
		primary.proc.Cont()
	case chaos.FaultPartition:
		f.Detail = "cluster link cut"
		nw.cut()
		pause(context.Background(), s.between(time.Second, 6*time.Second))
		nw.heal()
	}
	f.End = time.Now()
	f.Formed, f.Detail = s.waitFormed(kind)
	f.Reformed = !f.Formed.IsZero()
	if kind == chaos.FaultPartition && f.Detail == "" {
		f.Detail = "cluster link cut"
	}
	s.fault(f)
}

// pollStatus records both nodes' authority every 300 ms until ctx is done.
func (s *soak) pollStatus(ctx context.Context) {
	for ctx.Err() == nil {
		var wg sync.WaitGroup
		for _, n := range s.p.nodes {
			wg.Go(func() {
				if o, err := s.p.status(n); err == nil {
					s.observe(o)
				}
			})
		}
		wg.Wait()
		pause(ctx, 300*time.Millisecond)
	}
}

// run drives the soak: clients and the status poller for cfg.duration
// while faults of the given kinds are injected, then the quiesce, the final
// records, the checker and the summary.
func (s *soak) run(kinds []string, nw *netns) {
	t := s.t
	if formed, detail := s.waitFormed("start"); formed.IsZero() {
		t.Fatalf("the pair never formed: %s", detail)
	}
	ctx, stop := context.WithTimeout(context.Background(), s.cfg.duration)
	defer stop()
	pollCtx, stopPoll := context.WithCancel(context.Background())
	var pollWG, clientWG sync.WaitGroup
	pollWG.Go(func() { s.pollStatus(pollCtx) })
	for i := range clients {
		c := newClient(i+1, s.cfg.seed, s.p.nodes, &s.hist)
		clientWG.Go(func() { c.run(ctx) })
	}
	for {
		pause(ctx, s.between(2*time.Second, 6*time.Second))
		if ctx.Err() != nil {
			break
		}
		s.inject(kinds[s.rng.IntN(len(kinds))], nw)
	}
	clientWG.Wait() // each client ends within hungBound of the deadline
	final, quiesced := s.quiesce()
	stopPoll()
	pollWG.Wait()

	effects := s.readEffects()
	s.mu.Lock()
	h := chaos.History{Ops: s.hist.snapshot(), Effects: effects, Status: s.status, Faults: s.faults,
		Final: final, Quiesced: quiesced, QuiesceNote: s.quiesceNote, HungBound: hungBound}
	s.mu.Unlock()
	rep := chaos.Check(h)
	s.report(h, rep)
}

// quiesce waits until both nodes see each other and hold no pending
// record, then reads their records until they agree (a transition may
// still be on its way) or a few reads have passed. It returns the records
// of the last read and whether the pair settled within quiesceBound.
func (s *soak) quiesce() (map[string][]chaos.Record, bool) {
	deadline := time.Now().Add(quiesceBound)
	read := func() (map[string][]chaos.Record, error) {
		out := map[string][]chaos.Record{}
		for _, n := range s.p.nodes {
			recs, raw, err := s.p.records(n)
			if err != nil {
				return out, err
			}
			_ = os.WriteFile(filepath.Join(s.p.dir, "final-"+n.label+".json"), raw, 0o644)
			out[n.name] = recs
		}
		return out, nil
	}
	settled := false
	var final map[string][]chaos.Record
	for !settled && time.Now().Before(deadline) {
		_, ferr := s.p.formed()
		recs, rerr := read()
		if rerr == nil {
			final = recs
		}
		pending := pendingCount(recs)
		settled = ferr == nil && rerr == nil && pending == 0
		switch {
		case ferr != nil:
			s.quiesceNote = ferr.Error()
		case rerr != nil:
			s.quiesceNote = rerr.Error()
		default:
			s.quiesceNote = fmt.Sprintf("%d records pending", pending)
		}
		if !settled {
			pause(context.Background(), time.Second)
		}
	}
	for range 5 {
		if !settled || len(chaos.Check(chaos.History{Final: final, Quiesced: true}).Violations) == 0 {
			break
		}
		pause(context.Background(), 500*time.Millisecond)
		if recs, err := read(); err == nil {
			final = recs
		}
	}
	for _, n := range s.p.nodes {
		if raw, err := s.p.query(n, "diagnostics", 5*time.Second); err == nil {
			_ = os.WriteFile(filepath.Join(s.p.dir, "diagnostics-"+n.label+".json"), raw, 0o644)
		}
	}
	return final, settled
}

func pendingCount(final map[string][]chaos.Record) int {
	n := 0
	for _, recs := range final {
		for _, r := range recs {
			if r.Str("phase") == "submitted" {
				n++
			}
		}
	}
	return n
}

// readEffects parses the side-effect log. A line that does not parse is a
// harness failure: the app writes each line with one append.
func (s *soak) readEffects() []chaos.Effect {
	data, err := os.ReadFile(filepath.Join(s.p.dir, "effects.jsonl"))
	if err != nil {
		s.t.Fatalf("read side-effect log: %v", err)
	}
	var out []chaos.Effect
	for i, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		var e chaos.Effect
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			s.t.Fatalf("side-effect log line %d is torn: %q: %v", i+1, line, err)
		}
		out = append(out, e)
	}
	return out
}

// report prints the violations, keeps the evidence and prints the summary
// as the last line.
func (s *soak) report(h chaos.History, rep chaos.Report) {
	t := s.t
	hist, _ := json.MarshalIndent(struct {
		Seed int64 `json:"seed"`
		chaos.History
	}{s.cfg.seed, h}, "", " ")
	_ = os.WriteFile(filepath.Join(s.p.dir, "history.json"), hist, 0o644)
	var lines []string
	for _, v := range rep.Violations {
		lines = append(lines, v.String())
	}
	_ = os.WriteFile(filepath.Join(s.p.dir, "violations.txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	summary := rep.Summary(s.cfg.seed)
	_ = os.WriteFile(filepath.Join(s.p.dir, "summary.txt"), []byte(summary+"\n"), 0o644)
	// At most a few violations of each class on the console; all of them
	// are in violations.txt.
	const perClass = 8
	shown := map[string]int{}
	for _, v := range rep.Violations {
		if shown[v.Class]++; shown[v.Class] <= perClass {
			t.Error(v.String())
		}
	}
	for class, n := range shown {
		if n > perClass {
			t.Errorf("... and %d more %s violations in %s", n-perClass, class, filepath.Join(s.p.dir, "violations.txt"))
		}
	}
	if !rep.OK() {
		// Keep every node log with the rest of the evidence.
		logs, _ := filepath.Glob(filepath.Join(meshtest.ArtifactDir(t), "*.log"))
		for _, l := range logs {
			if data, err := os.ReadFile(l); err == nil {
				_ = os.WriteFile(filepath.Join(s.p.dir, filepath.Base(l)), data, 0o644)
			}
		}
	}
	fmt.Printf("chaos %s soak: %d ops, %d executions, %d acknowledged keys %v, %d refusals with a reason, %d transport errors\n",
		s.mode, rep.Ops, rep.Executions, rep.AckedKeys[chaos.KindRoute2]+rep.AckedKeys[chaos.KindRoute1]+rep.AckedKeys[chaos.KindWork],
		rep.AckedKeys, rep.Refusals, rep.TransportErrors)
	fmt.Println(summary)
}
