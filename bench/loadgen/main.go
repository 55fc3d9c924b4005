// Command loadgen measures the throughput and latency of the testapp's routes
// on loopback: a keep-alive HTTP/1.1 client with N concurrent workers, a
// warm-up, then a fixed measured window in which every request's duration is
// recorded (p50/p99 are exact, nearest rank); non-2xx answers are errors.
//
// Suite mode (-testapp BIN) starts a primary (127.0.0.1) and a standby
// ([::1]) testapp process on one cluster port, waits for the pair and for the
// startup work to finish, then runs, against the primary's HTTP listener and
// in rounds (the scenarios interleaved so that every ratio compares numbers
// from the same minute):
//
//	plain      GET /plain           ordinary net/http handler (baseline)
//	one-local  GET /one             Clustered(1); Idempotency-Key placed on the ingress node
//	one-remote GET /one             Clustered(1); Idempotency-Key placed on the peer (forwarded)
//	todos      GET /todos           Clustered(2) (ClusteredDefault), both nodes up, no key
//	one-nokey  GET /one             Clustered(1), no key: the runtime mints a key the ingress owns
//
// After the rounds, plain and one-local run again at one fixed request rate
// (-paced, a fraction of plain's closed-loop throughput), which compares their
// latency under the same offered load, then each scenario once more with a
// single worker (-light-c).
//
// Single mode (-url URL) drives one URL and prints its numbers.
//
// `make bench` takes its closed-loop route figures from wrk (bench/wrkroutes)
// and runs loadgen only for what wrk cannot do: the fixed-rate pass
// (-paced-only; Debian's wrk has no request-rate option). Failover timing is
// bench/failover.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"meshgo.dev/mesh/bench/internal/clusterkit"
	"meshgo.dev/mesh/bench/internal/procstat"
	"meshgo.dev/mesh/bench/internal/stats"
)

type options struct {
	testapp   string
	url       string
	workers   int
	warmup    time.Duration
	duration  time.Duration
	rounds    int
	maxReq    int64
	out       string
	scenarios string
	lightC    int
	lightD    time.Duration
	pacedFrac float64
	pacedN    int
	pacedC    int
	nodeEnv   string
	profile   bool
	pacedOnly bool
}

func main() {
	var o options
	flag.StringVar(&o.testapp, "testapp", "", "testapp binary: run the route suite on a local two-node cluster")
	flag.StringVar(&o.url, "url", "", "drive this one URL instead of the suite")
	flag.IntVar(&o.workers, "c", 32, "concurrent workers (one keep-alive connection each)")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before each measured window (not recorded)")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "measured window per scenario per round")
	flag.IntVar(&o.rounds, "rounds", 2, "rounds; each round runs every scenario once, in order")
	flag.Int64Var(&o.maxReq, "max-requests", 5_000_000, "hard cap on requests per window (0: none)")
	flag.StringVar(&o.out, "out", "", "directory for node logs and results.json (default: a temp dir)")
	flag.StringVar(&o.scenarios, "scenarios", "plain,one-local,one-remote,todos,one-nokey", "scenarios to run, in order")
	flag.IntVar(&o.lightC, "light-c", 1, "after the rounds, one light-load pass at this concurrency (0: skip)")
	flag.DurationVar(&o.lightD, "light-d", 5*time.Second, "measured window of each light-load scenario")
	flag.Float64Var(&o.pacedFrac, "paced", 0.5, "after the rounds, plain and one-local at one fixed request rate, this fraction of plain's closed-loop throughput (0: skip)")
	flag.IntVar(&o.pacedN, "paced-rounds", 3, "interleaved rounds of the fixed-rate pass")
	flag.IntVar(&o.pacedC, "paced-c", 128, "workers (keep-alive connections) of the fixed-rate pass; enough that a slow answer rarely holds up the next slot")
	flag.StringVar(&o.nodeEnv, "node-env", "", "extra environment for both nodes, space-separated KEY=VALUE (for example GODEBUG=gctrace=1)")
	flag.BoolVar(&o.pacedOnly, "paced-only", false, "suite: report only the fixed-rate pass (the closed-loop rounds then only set its rate; `make bench` takes closed-loop figures from wrk)")
	flag.BoolVar(&o.profile, "profile", false, "suite: record CPU profiles of both nodes and of the load generator during every measured window of round 1 (into -out)")
	flag.Parse()

	var err error
	switch {
	case o.pacedN < 1:
		err = fmt.Errorf("-paced-rounds must be at least 1, got %d", o.pacedN)
	case o.url != "":
		err = single(o)
	case o.testapp != "":
		err = suite(o)
	default:
		err = errors.New("give -testapp BIN (suite) or -url URL")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func single(o options) error {
	tr := newTransport(o.workers)
	s := scenario{Name: "url", URL: o.url}
	drive(context.Background(), tr, s, o.workers, o.warmup, o.maxReq, false, 0)
	r := drive(context.Background(), tr, s, o.workers, o.duration, o.maxReq, true, 0)
	sum := summarize(s.Name, []result{r})
	printTable(os.Stdout, []summary{sum}, nil)
	return nil
}

// procCPU returns the user+system CPU time of pid so far, 0 when it cannot
// be read.
func procCPU(pid int) time.Duration {
	d, _ := procstat.ProcessCPU(pid)
	return d
}

func procRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// systemBusy returns the CPU time all processes have used so far, 0 when it
// cannot be read.
func systemBusy() time.Duration {
	d, _ := procstat.SystemBusy()
	return d
}

// cpuCost is CPU time spent per successful request during one window.
type cpuCost struct {
	Primary, Standby, Loadgen time.Duration // total per window
}

func suite(o options) error {
	if o.out == "" {
		d, err := os.MkdirTemp("", "mesh-loadgen-")
		if err != nil {
			return err
		}
		o.out = d
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	port, err := clusterkit.PortOwnedBy("primary")
	if err != nil {
		return err
	}
	addr1, addr2, err := clusterkit.HTTPAddrs()
	if err != nil {
		return err
	}
	c := &clusterkit.Cluster{Bin: o.testapp, Dir: o.out, Port: port}
	defer c.Close()
	c.CloseOnInterrupt()
	// Every MESH_* knob at its default.
	var extra []string
	if o.profile {
		extra = append(extra, "TESTAPP_PPROF=1")
	}
	extra = append(extra, strings.Fields(o.nodeEnv)...)
	pri, sby, err := c.StartPair(addr1, addr2, extra...)
	if err != nil {
		return err
	}
	if err := clusterkit.WaitFor(30*time.Second, 100*time.Millisecond, func() error {
		rec, err := pri.Record(context.Background(), clusterkit.StartupKey, time.Second)
		if err != nil {
			return err
		}
		if rec.Phase != "completed" {
			return fmt.Errorf("startup record %s", rec.Phase)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("startup work: %w", err)
	}
	members := []string{pri.Name, sby.Name}
	fmt.Printf("cluster: %s + %s, HTTP ingress http://%s, logs in %s\n", pri.Name, sby.Name, addr1, o.out)
	fmt.Printf("workers=%d warmup=%v window=%v rounds=%d GOMAXPROCS(loadgen)=%d\n", o.workers, o.warmup, o.duration, o.rounds, runtime.GOMAXPROCS(0))

	base := "http://" + addr1
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	scope, err := routeScope(base+"/one", "bench-"+run+"-probe", "")
	if err != nil {
		return err
	}
	local := newPlacedKeys(scope, "bench-"+run+"-local-", members, pri.Name)
	// A caller with credentials: its keys are scoped by a keyed hash of them.
	const auth = "Bearer bench-caller-0123456789abcdef0123456789abcdef"
	authScope, err := routeScope(base+"/one", "bench-"+run+"-probe-auth", auth)
	if err != nil {
		return err
	}
	localAuth := newPlacedKeys(authScope, "bench-"+run+"-local-auth-", members, pri.Name)
	remote := newPlacedKeys(scope, "bench-"+run+"-remote-", members, sby.Name)
	all := map[string]scenario{
		"plain":          {Name: "plain", URL: base + "/plain"},
		"one-local":      {Name: "one-local", URL: base + "/one", Keys: local, Clustered: true},
		"one-local-auth": {Name: "one-local-auth", URL: base + "/one", Keys: localAuth, Clustered: true, Auth: auth},
		"one-remote":     {Name: "one-remote", URL: base + "/one", Keys: remote, Clustered: true},
		"todos":          {Name: "todos", URL: base + "/todos", Clustered: true},
		"one-nokey":      {Name: "one-nokey", URL: base + "/one", Clustered: true},
	}
	var order []string
	for _, name := range strings.Split(o.scenarios, ",") {
		name = strings.TrimSpace(name)
		if _, ok := all[name]; !ok {
			return fmt.Errorf("unknown scenario %q", name)
		}
		order = append(order, name)
	}

	logLinesBefore := [2]int{lines(pri.Log()), lines(sby.Log())}
	tr := newTransport(o.workers)
	results := map[string][]result{}
	costs := map[string][]cpuCost{}
	var notes []string
	type roundRow struct {
		Round    int
		Scenario string
		RPS      float64
		P50, P99 time.Duration
		Errors   int
		Load     string
		Inline   int64
		Foreign  float64 // % of all cores used by other processes during the window
	}
	var rows []roundRow
	pid := os.Getpid()
	lastRPS := map[string]float64{}
	for round := 1; round <= o.rounds; round++ {
		for _, name := range order {
			s := all[name]
			// Twice the rate this scenario reached last time (50,000/s
			// before it ran at all); keys run out only if that doubles.
			fillKeys(s, 2*cmp.Or(lastRPS[name], 50_000), o.warmup+o.duration)
			drive(context.Background(), tr, s, o.workers, o.warmup, o.maxReq, false, 0)
			loadBefore := procstat.LoadAvg()
			c0 := cpuCost{procCPU(pri.Pid()), procCPU(sby.Pid()), procCPU(pid)}
			busy0 := systemBusy()
			var profiled chan struct{}
			if o.profile && round == 1 {
				profiled = profileNodes(o, name, []string{base, "http://" + addr2})
			}
			r := drive(context.Background(), tr, s, o.workers, o.duration, o.maxReq, true, 0)
			c1 := cpuCost{procCPU(pri.Pid()), procCPU(sby.Pid()), procCPU(pid)}
			if profiled != nil {
				<-profiled
			}
			ours := (c1.Primary - c0.Primary) + (c1.Standby - c0.Standby) + (c1.Loadgen - c0.Loadgen)
			foreign := max(0, systemBusy()-busy0-ours)
			foreignPct := 100 * foreign.Seconds() / (r.Elapsed.Seconds() * float64(runtime.NumCPU()))
			results[name] = append(results[name], r)
			lastRPS[name] = r.RPS()
			costs[name] = append(costs[name], cpuCost{c1.Primary - c0.Primary, c1.Standby - c0.Standby, c1.Loadgen - c0.Loadgen})
			sorted := slices.Clone(r.Latencies)
			slices.Sort(sorted)
			var inline int64
			if pk, ok := s.Keys.(*placedKeys); ok {
				inline = pk.Inline()
				if n := verifyPlacement(pri, pk.scope, r.LastKeys, pk.want); n != "" {
					notes = append(notes, fmt.Sprintf("round %d %s: %s", round, name, n))
				}
			}
			rows = append(rows, roundRow{round, name, r.RPS(), stats.Percentile(sorted, 0.5), stats.Percentile(sorted, 0.99), r.Errors, loadBefore + " -> " + procstat.LoadAvg(), inline, foreignPct})
			fmt.Printf("round %d %-10s %9.0f req/s  p50 %-9v p99 %-9v errors %d  other processes %4.1f%% of the CPUs  load %s -> %s\n",
				round, name, r.RPS(), stats.Percentile(sorted, 0.5), stats.Percentile(sorted, 0.99), r.Errors, foreignPct, loadBefore, procstat.LoadAvg())
		}
	}
	logLinesAfter := [2]int{lines(pri.Log()), lines(sby.Log())}

	// Light load: the latency a single client sees when nothing queues.
	var light []summary
	if o.lightC > 0 {
		lc := newTransport(o.lightC)
		for _, name := range order {
			s := all[name]
			fillKeys(s, 2*cmp.Or(lastRPS[name], 50_000)/float64(o.workers)*float64(o.lightC), o.warmup/2+o.lightD)
			drive(context.Background(), lc, s, o.lightC, o.warmup/2, o.maxReq, false, 0)
			r := drive(context.Background(), lc, s, o.lightC, o.lightD, o.maxReq, true, 0)
			light = append(light, summarize(name, []result{r}))
			fmt.Printf("light c=%d %-10s %9.0f req/s  load %s\n", o.lightC, name, r.RPS(), procstat.LoadAvg())
		}
	}

	paced, pacedRounds, pacedRate := pacedPass(o, newTransport(o.pacedC), all, order, results)

	var sums []summary
	for _, name := range order {
		sums = append(sums, summarize(name, results[name]))
	}
	if o.pacedOnly {
		if len(sums) > 0 && sums[0].Scenario == "plain" {
			fmt.Printf("\nclosed-loop rounds (rate calibration only): plain %.0f req/s pooled\n", sums[0].RPS())
		}
	} else {
		fmt.Println()
		printTable(os.Stdout, sums, costs)
		fmt.Println()
		printRatios(os.Stdout, sums, results, o.rounds)
	}
	if len(light) > 0 {
		fmt.Printf("\nlight load, %d worker(s), %v window per scenario:\n\n", o.lightC, o.lightD)
		printTable(os.Stdout, light, nil)
		if base := light[0]; base.Scenario == "plain" {
			for _, s := range light[1:] {
				fmt.Printf("light: %s p99 %s ms vs plain %s ms (%+.3f ms); p50 %+.3f ms\n", s.Scenario, ms(s.P99), ms(base.P99),
					float64(s.P99-base.P99)/1e6, float64(s.P50-base.P50)/1e6)
			}
		}
	}
	if len(paced) > 0 {
		fmt.Printf("\nfixed rate: %.0f req/s (%.0f%% of plain's closed-loop throughput), %d workers, %d rounds × %v per scenario:\n\n",
			pacedRate, 100*o.pacedFrac, o.pacedC, o.pacedN, o.duration)
		printTable(os.Stdout, paced, nil)
		if len(paced) == 2 {
			a, b := paced[0], paced[1]
			var diffs []time.Duration
			var per []string
			for i := range min(len(pacedRounds["plain"]), len(pacedRounds["one-local"])) {
				d := p99Of(pacedRounds["one-local"][i]) - p99Of(pacedRounds["plain"][i])
				diffs = append(diffs, d)
				per = append(per, fmt.Sprintf("%+.3f", float64(d)/1e6))
			}
			slices.Sort(diffs)
			med := (diffs[(len(diffs)-1)/2] + diffs[len(diffs)/2]) / 2
			fmt.Printf("\n| (b) p99 − (a) p99 at one request rate, %.0f req/s (information, no target) | pooled | median of rounds | per round (ms) |\n|---|---:|---:|---|\n", pacedRate)
			fmt.Printf("| one-local vs plain | %+.3f ms (%s vs %s) | %+.3f ms | %s |\n",
				float64(b.P99-a.P99)/1e6, ms(b.P99), ms(a.P99), float64(med)/1e6, strings.Join(per, " / "))
		}
	}
	fmt.Println()
	fmt.Printf("node stderr lines during the measured rounds: primary %d, standby %d (before: %d, %d)\n",
		logLinesAfter[0]-logLinesBefore[0], logLinesAfter[1]-logLinesBefore[1], logLinesBefore[0], logLinesBefore[1])
	fmt.Printf("transition log lines in node output: primary %d, standby %d\n",
		strings.Count(pri.Log(), "transition="), strings.Count(sby.Log(), "transition="))
	fmt.Printf("RSS after the run: primary %s, standby %s\n", procRSS(pri.Pid()), procRSS(sby.Pid()))
	for _, n := range notes {
		fmt.Println("placement check:", n)
	}
	if len(notes) == 0 {
		fmt.Println("placement check: the last key of every worker of every keyed window was executed where intended")
	}

	doc := map[string]any{"summaries": sums, "rounds": rows, "notes": notes, "light": light, "paced": paced, "paced_rate": pacedRate}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return os.WriteFile(filepath.Join(o.out, "results.json"), b, 0o644)
}

// fillKeys gives a keyed scenario a fresh pool for a warm-up and the window
// after it at up to rps requests per second. It runs before the warm-up, so
// no pause separates the warm-up from the measured window (generating keys
// takes a while, and a server that was left idle meanwhile starts the window
// cold).
func fillKeys(s scenario, rps float64, d time.Duration) {
	if pk, ok := s.Keys.(*placedKeys); ok {
		pk.Fill(min(int(rps*d.Seconds())+10000, 3_000_000))
	}
}

func lines(s string) int { return strings.Count(s, "\n") }

// pacedPass drives plain and one-local, interleaved, at one fixed request
// rate: o.pacedFrac of plain's pooled closed-loop throughput. In the closed
// loop each scenario runs at its own saturation, so its latency is mostly
// the time requests queue (Little's law: 32 workers over the throughput);
// at one rate both face the same offered load, and the difference in p99 is
// what the runtime adds to a request, its own work and the longer queues
// that work causes on shared cores.
func pacedPass(o options, tr http.RoundTripper, all map[string]scenario, order []string, results map[string][]result) ([]summary, map[string][]result, float64) {
	if o.pacedFrac <= 0 || !slices.Contains(order, "plain") || !slices.Contains(order, "one-local") {
		return nil, nil, 0
	}
	rate := o.pacedFrac * summarize("plain", results["plain"]).RPS()
	names := []string{"plain", "one-local"}
	got := map[string][]result{}
	for round := 1; round <= o.pacedN; round++ {
		for _, name := range names {
			s := all[name]
			fillKeys(s, 1.2*rate, o.warmup+o.duration)
			drive(context.Background(), tr, s, o.pacedC, o.warmup, o.maxReq, false, rate)
			r := drive(context.Background(), tr, s, o.pacedC, o.duration, o.maxReq, true, rate)
			got[name] = append(got[name], r)
			sorted := slices.Clone(r.Latencies)
			slices.Sort(sorted)
			fmt.Printf("paced %d %-10s %9.0f req/s (target %.0f)  p50 %-9v p99 %-9v errors %d  load %s\n",
				round, name, r.RPS(), rate, stats.Percentile(sorted, 0.5), stats.Percentile(sorted, 0.99), r.Errors, procstat.LoadAvg())
		}
	}
	var out []summary
	for _, name := range names {
		out = append(out, summarize(name, got[name]))
	}
	return out, got, rate
}

// p99Of is the p99 latency of one measured window.
func p99Of(r result) time.Duration {
	sorted := slices.Clone(r.Latencies)
	slices.Sort(sorted)
	return stats.Percentile(sorted, 0.99)
}

// verifyPlacement looks up some of the client keys on the ingress node (by
// their request key: scope followed by the key) and checks that each ran on
// want. It returns "" when all checked keys did.
func verifyPlacement(ingress *clusterkit.Node, scope string, keys []string, want string) string {
	sort.Strings(keys)
	var bad []string
	checked := 0
	for _, k := range keys {
		if checked == 8 {
			break
		}
		rec, err := ingress.Record(context.Background(), scope+k, 2*time.Second)
		if err != nil {
			bad = append(bad, k+": "+err.Error())
			continue
		}
		checked++
		if rec.OwnerNode != want || rec.ExecutionNode != want || rec.Phase != "completed" {
			bad = append(bad, fmt.Sprintf("%s: owner %s execution %s phase %s", k, rec.OwnerNode, rec.ExecutionNode, rec.Phase))
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return strings.Join(bad, "; ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

func printTable(w *os.File, sums []summary, costs map[string][]cpuCost) {
	fmt.Fprintln(w, "| scenario | requests | errors | req/s (pooled) | req/s per round | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | CPU µs/req primary | standby | loadgen |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, s := range sums {
		var per []string
		for _, r := range s.RoundRPS {
			per = append(per, fmt.Sprintf("%.0f", r))
		}
		var cp, cs, cl time.Duration
		for _, c := range costs[s.Scenario] {
			cp += c.Primary
			cs += c.Standby
			cl += c.Loadgen
		}
		perReq := func(d time.Duration) string {
			if s.Requests == 0 || costs == nil {
				return "-"
			}
			return fmt.Sprintf("%.1f", float64(d.Microseconds())/float64(s.Requests))
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			s.Scenario, s.Requests, s.Errors, s.RPS(), strings.Join(per, " / "), ms(s.P50), ms(s.P90), ms(s.P99), ms(s.P999), ms(s.Max),
			perReq(cp), perReq(cs), perReq(cl))
		if s.Errors > 0 {
			fmt.Fprintf(w, "  %s: status counts %v, first error %q\n", s.Scenario, s.Status, s.FirstError)
		}
		if s.MissingKey > 0 {
			fmt.Fprintf(w, "  %s: %d responses without X-Mesh-Continuity-Request-Key\n", s.Scenario, s.MissingKey)
		}
		if len(s.ExecutedBy) > 0 {
			fmt.Fprintf(w, "  %s: X-Executed-By %v\n", s.Scenario, s.ExecutedBy)
		}
	}
}

func printRatios(w *os.File, sums []summary, results map[string][]result, rounds int) {
	find := func(name string) (summary, bool) {
		for _, s := range sums {
			if s.Scenario == name {
				return s, true
			}
		}
		return summary{}, false
	}
	a, okA := find("plain")
	if !okA {
		return
	}
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "MISS"
	}
	perRound := func(name string, f func(x, base result) string) string {
		var out []string
		for i := 0; i < rounds && i < len(results[name]) && i < len(results["plain"]); i++ {
			out = append(out, f(results[name][i], results["plain"][i]))
		}
		return strings.Join(out, " / ")
	}
	fmt.Fprintln(w, "| target | measured (pooled) | per round | verdict |")
	fmt.Fprintln(w, "|---|---:|---|---|")
	if b, ok := find("one-local"); ok {
		r := b.RPS() / a.RPS()
		fmt.Fprintf(w, "| (b) Clustered(1) local ≥ 85%% of (a) throughput | %.1f%% | %s | %s |\n", 100*r,
			perRound("one-local", func(x, base result) string { return fmt.Sprintf("%.1f%%", 100*x.RPS()/base.RPS()) }), verdict(r >= 0.85))
		d := b.P99 - a.P99
		fmt.Fprintf(w, "| (b) p99 within 1 ms of (a) p99, closed loop (each at its own saturation) | %+.3f ms (%s vs %s) | %s | %s |\n", float64(d)/1e6, ms(b.P99), ms(a.P99),
			perRound("one-local", func(x, base result) string {
				return fmt.Sprintf("%+.3f ms", float64(p99Of(x)-p99Of(base))/1e6)
			}), verdict(d <= time.Millisecond))
	}
	if c, ok := find("one-remote"); ok {
		fmt.Fprintf(w, "| (c) Clustered(1) remote owner (no target) | %.1f%% of (a) | %s | - |\n", 100*c.RPS()/a.RPS(),
			perRound("one-remote", func(x, base result) string { return fmt.Sprintf("%.1f%%", 100*x.RPS()/base.RPS()) }))
	}
	if d, ok := find("todos"); ok {
		r := d.RPS() / a.RPS()
		fmt.Fprintf(w, "| (d) Clustered(2) mirrored ≥ 40%% of (a) throughput | %.1f%% | %s | %s |\n", 100*r,
			perRound("todos", func(x, base result) string { return fmt.Sprintf("%.1f%%", 100*x.RPS()/base.RPS()) }), verdict(r >= 0.40))
	}
	if e, ok := find("one-nokey"); ok {
		fmt.Fprintf(w, "| (e) Clustered(1) no key, runtime key owned by the ingress (no target) | %.1f%% of (a) | %s | - |\n", 100*e.RPS()/a.RPS(),
			perRound("one-nokey", func(x, base result) string { return fmt.Sprintf("%.1f%%", 100*x.RPS()/base.RPS()) }))
	}
}

// profileNodes fetches a CPU profile of each node (by HTTP base URL: primary
// first) covering most of the coming measured window, into
// <out>/cpu-<scenario>-<primary|standby>.prof. The returned channel closes
// when both are written.
func profileNodes(o options, scenario string, bases []string) chan struct{} {
	done := make(chan struct{})
	secs := max(1, int(o.duration.Seconds())-1)
	go func() {
		defer close(done)
		client := &http.Client{Timeout: time.Duration(secs+30) * time.Second}
		ch := make(chan error, len(bases)+1)
		for i, b := range bases {
			role := [...]string{"primary", "standby"}[i]
			go func() {
				resp, err := client.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", b, secs))
				if err != nil {
					ch <- err
					return
				}
				defer resp.Body.Close()
				data, err := io.ReadAll(resp.Body)
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("%s: HTTP %d", role, resp.StatusCode)
				}
				if err == nil {
					err = os.WriteFile(filepath.Join(o.out, "cpu-"+scenario+"-"+role+".prof"), data, 0o644)
				}
				ch <- err
			}()
		}
		// The load generator profiles itself over the same seconds: its CPU
		// per request differs between scenarios too.
		go func() {
			f, err := os.Create(filepath.Join(o.out, "cpu-"+scenario+"-loadgen.prof"))
			if err == nil {
				err = pprof.StartCPUProfile(f)
				if err == nil {
					time.Sleep(time.Duration(secs) * time.Second)
					pprof.StopCPUProfile()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			ch <- err
		}()
		for range len(bases) + 1 {
			if err := <-ch; err != nil {
				fmt.Fprintln(os.Stderr, "profile:", err)
			}
		}
	}()
	return done
}

// routeScope returns what the route at url puts before a client's
// Idempotency-Key in the request key (http-route::<name>::caller-<tag>::,
// the tag naming the caller: anonymous, or the one sending auth as its
// Authorization header), from one keyed request: keys are placed by the
// whole request key. A node from before key scoping puts nothing there.
func routeScope(url, probe, auth string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Idempotency-Key", probe)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("probe %s: %w", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	scope, ok := strings.CutSuffix(resp.Header.Get("X-Mesh-Continuity-Request-Key"), probe)
	if resp.StatusCode != http.StatusOK || !ok {
		return "", fmt.Errorf("probe %s: %d, request key %q", url, resp.StatusCode, resp.Header.Get("X-Mesh-Continuity-Request-Key"))
	}
	return scope, nil
}
