// Command typedwork measures the typed submit→result round trip of declared
// work on real node processes: mesh.SubmitWork with a fresh request key,
// then the handle's Result, for a tiny work function that adds two numbers.
//
// It starts itself three times as a node (TYPEDWORK_NODE=1): one standalone
// node, and a primary (127.0.0.1) and a standby ([::1]) on one cluster port.
// Each node serves GET /run, which runs a closed loop inside the node process
// (-c clients, each submitting and waiting back to back, a warm-up, then a
// measured window) and answers ops/s, p50 and p99. The scenarios:
//
//	one            standalone node, count 1 (a lone node has no mirror)
//	two-owner      pair, count 2 (the default): submit on the primary, keys placed on the primary
//	two-nonowner   pair, count 2: submit on the primary, keys placed on the standby,
//	               so the work runs there and Result waits for the output across the link
//	two-owner-c1   pair, count 1: submit on the primary, keys placed on the primary
//
// Scenarios run in rounds, the order rotated by one each round, and the
// table shows the median of the rounds. The load generator runs in the node
// process, as an application calling SubmitWork would; no HTTP is on the
// measured path. Each round also reports the median of SubmitWork's share of
// the round trip; the rest is the wait in Result.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"meshgo.dev/mesh/bench/internal/clusterkit"
	"meshgo.dev/mesh/bench/internal/stats"
)

type options struct {
	clients   int
	warmup    time.Duration
	window    time.Duration
	rounds    int
	scenarios string
	out       string
	bin       string
	nodeEnv   string
}

var allScenarios = []string{"one", "two-owner", "two-nonowner", "two-owner-c1"}

func main() {
	if os.Getenv("TYPEDWORK_NODE") == "1" {
		os.Exit(nodeMain())
	}
	var o options
	flag.IntVar(&o.clients, "c", 16, "concurrent clients in each node's closed loop")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "warm-up before each window")
	flag.DurationVar(&o.window, "d", 2*time.Second, "measured window per scenario per round")
	flag.IntVar(&o.rounds, "rounds", 2, "rounds (each runs every scenario once)")
	flag.StringVar(&o.scenarios, "scenarios", strings.Join(allScenarios, ","), "scenarios to run")
	flag.StringVar(&o.out, "out", "", "directory for node logs and results.json (default: a temporary one)")
	flag.StringVar(&o.nodeEnv, "node-env", "", "extra environment for every node, space-separated KEY=VALUE")
	flag.Parse()
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "typedwork:", err)
		os.Exit(1)
	}
	o.bin = exe
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	if err := run(o, os.Stdout, sigs); err != nil {
		fmt.Fprintln(os.Stderr, "typedwork:", err)
		os.Exit(1)
	}
}

// row is one scenario's rounds.
type row struct {
	Scenario string   `json:"scenario"`
	Rounds   []result `json:"rounds"`
}

// run starts the nodes, runs the rounds and writes the table to w. A signal
// on sigs stops the nodes and ends the run.
func run(o options, w io.Writer, sigs <-chan os.Signal) error {
	scen := strings.Split(o.scenarios, ",")
	for _, s := range scen {
		if !slices.Contains(allScenarios, s) {
			return fmt.Errorf("unknown scenario %q (have %s)", s, strings.Join(allScenarios, ","))
		}
	}
	if o.out == "" {
		d, err := os.MkdirTemp("", "typedwork-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.out = d
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	port, err := clusterkit.FreePair()
	if err != nil {
		return err
	}
	c := &clusterkit.Cluster{Bin: o.bin, Dir: o.out, Port: port}
	defer c.Close()
	go func() {
		if _, ok := <-sigs; ok {
			c.Close()
			os.Exit(130)
		}
	}()
	env := append([]string{"TYPEDWORK_NODE=1"}, strings.Fields(o.nodeEnv)...)
	needPair := slices.ContainsFunc(scen, func(s string) bool { return strings.HasPrefix(s, "two") })
	var alone, pri, sby *clusterkit.Node
	if slices.Contains(scen, "one") {
		if alone, err = startNode(c, "standalone", env); err != nil {
			return err
		}
	}
	if needPair {
		if pri, err = startNode(c, "primary", env); err != nil {
			return err
		}
		if sby, err = startNode(c, "standby", env); err != nil {
			return err
		}
		if err := clusterkit.WaitPaired(pri, sby, 30*time.Second); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "typed submit→result round trip: %d clients in the node process, warm-up %v, window %v, %d rounds\n",
		o.clients, o.warmup, o.window, o.rounds)
	rows := make([]row, len(scen))
	for i, s := range scen {
		rows[i].Scenario = s
	}
	for r := range o.rounds {
		for j := range scen {
			i := (j + r) % len(scen)
			s := scen[i]
			q := url.Values{
				"c": {fmt.Sprint(o.clients)}, "warmup": {o.warmup.String()}, "d": {o.window.String()},
				"prefix": {fmt.Sprintf("bench:%s:%d:", s, r)}, "count": {"2"},
			}
			node := pri
			switch s {
			case "one":
				node = alone
				q.Set("count", "1")
			case "two-owner":
				q.Set("owner", pri.Name)
			case "two-nonowner":
				q.Set("owner", sby.Name)
			case "two-owner-c1":
				q.Set("owner", pri.Name)
				q.Set("count", "1")
			}
			if node != alone {
				q.Set("members", pri.Name+","+sby.Name)
			}
			res, err := runWindow(node, q, o.warmup+o.window+30*time.Second)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", s, r+1, err)
			}
			rows[i].Rounds = append(rows[i].Rounds, res)
			fmt.Fprintf(w, "  round %d %-13s %8.0f ops/s  p50 %7.0f µs  p99 %7.0f µs  (submit p50 %6.0f µs)  errors %d%s\n",
				r+1, s, res.OpsPerSec, res.P50us, res.P99us, res.SubmitP50us, res.Errors, firstErr(res))
		}
	}
	fmt.Fprintf(w, "\n| scenario | ops/s | p50 | p99 | submit p50 | errors |\n|---|---:|---:|---:|---:|---:|\n")
	failed := 0
	for _, rw := range rows {
		ops, p50, p99, sub, errs := medians(rw.Rounds)
		failed += errs
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %d |\n", rw.Scenario, ops, ms(p50), ms(p99), ms(sub), errs)
	}
	fmt.Fprintln(w, "(median of the rounds; p50/p99 of each round's successful round trips, nearest rank; submit p50: SubmitWork's share, the rest is the wait in Result)")
	b, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "results.json"), b, 0o644); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d round trips failed (see the rounds above and the node logs in %s)", failed, o.out)
	}
	return nil
}

// startNode starts one node with an HTTP listener and waits for it.
func startNode(c *clusterkit.Cluster, role string, env []string) (*clusterkit.Node, error) {
	port, err := clusterkit.FreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var n *clusterkit.Node
	if role == "standalone" {
		n, err = c.StartStandalone(addr, env...)
	} else {
		n, err = c.Start(role, addr, env...)
	}
	if err != nil {
		return nil, err
	}
	if err := clusterkit.WaitLog(n, "[typedwork] HTTP listening", 30*time.Second); err != nil {
		return nil, err
	}
	return n, nil
}

// runWindow asks node to run one window and decodes its answer.
func runWindow(n *clusterkit.Node, q url.Values, timeout time.Duration) (result, error) {
	client := &http.Client{Timeout: timeout}
	resp, err := client.Get("http://" + n.HTTP + "/run?" + q.Encode())
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return result{}, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var r result
	if err := json.Unmarshal(body, &r); err != nil {
		return result{}, err
	}
	if r.Ops == 0 && r.Errors == 0 {
		return r, fmt.Errorf("no round trip completed in the window")
	}
	return r, nil
}

// medians returns the median ops/s, p50, p99 and submit p50 over rounds, and
// the total errors.
func medians(rounds []result) (ops, p50, p99, submit float64, errs int) {
	var a, b, c, d []float64
	for _, r := range rounds {
		a, b, c, d = append(a, r.OpsPerSec), append(b, r.P50us), append(c, r.P99us), append(d, r.SubmitP50us)
		errs += r.Errors
	}
	return stats.Median(a), stats.Median(b), stats.Median(c), stats.Median(d), errs
}

// ms renders microseconds as milliseconds.
func ms(us float64) string { return fmt.Sprintf("%.2f ms", us/1000) }

func firstErr(r result) string {
	if r.FirstErr == "" {
		return ""
	}
	return "  first error: " + r.FirstErr
}
