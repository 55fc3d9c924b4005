// Command wrkroutes is the route step of `make bench`: it starts a real
// two-node cluster of bench/routeapp on loopback (a primary on 127.0.0.1 and
// a standby on [::1]) and drives the primary's HTTP listener with wrk, the
// load generator a user would pick, in interleaved rounds:
//
//	plain         GET /plain  ordinary net/http handler (the baseline)
//	one           GET /one    Clustered(1), no key: the runtime's key, owned by the ingress
//	two           GET /two    Clustered(2), no key: mirrored to the standby before the handler runs
//	two-key       GET /two    Clustered(2), a unique Idempotency-Key per request
//	one-key-auth  GET /one    Clustered(1), a unique Idempotency-Key and an Authorization
//	                          header per request (the key is scoped by the credential)
//
// Keyed scenarios send keys whose placement owner is the ingress node, so each
// scenario measures one path (a forwarded request is another). The keys are
// computed beforehand into one file per wrk thread; routes.lua sends each once.
//
// Every round runs every scenario once, in an order rotated by one each round,
// each as a warm-up followed by a measured window. Per window it records wrk's
// requests per second and latency percentiles (p50, p99, p99.9 from wrk's
// histogram), and the CPU time of each node process (/proc/<pid>/stat utime
// plus stime, read before and after the window) and of wrk (its rusage), per
// request. Per window it also reads, for both nodes, their read- and
// write-family system calls (/proc/<pid>/io) and their threads' voluntary and
// involuntary context switches (/proc/<pid>/task/*/status): a count-2
// request's cost is mostly in its round trips to the standby, and these say
// how many writes, reads and thread wake-ups each one took. The report gives,
// per scenario, the median and range over rounds of req/s and of its ratio to
// plain in the same round, median percentiles, and pooled CPU, system calls
// and context switches per request; results.json holds every window.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"meshgo.dev/mesh/bench/internal/clusterkit"
	"meshgo.dev/mesh/bench/internal/procstat"
)

//go:embed routes.lua
var routesLua []byte

// authorization is the credential the one-key-auth scenario sends.
const authorization = "Authorization: Bearer bench-token-7c41e9a0d2b84f63a95e1d07c3b62f48"

type options struct {
	app, wrk, out string
	conns         int
	threads       int
	rounds        int
	warmup        time.Duration
	window        time.Duration
	profile       bool
	profileOf     string
	scenarios     string
	firstRate     float64
	nodeEnv       string
}

func main() {
	var o options
	flag.StringVar(&o.app, "app", "", "routeapp binary (bench/routeapp)")
	flag.StringVar(&o.wrk, "wrk", "wrk", "wrk binary")
	flag.StringVar(&o.out, "out", "", "directory for node logs, key files and results.json")
	flag.StringVar(&o.nodeEnv, "node-env", "", "extra environment for both nodes, space-separated KEY=VALUE (for example MESH_CONTINUITY_STORE=memory)")
	flag.IntVar(&o.conns, "c", 32, "wrk connections")
	flag.IntVar(&o.threads, "t", runtime.NumCPU(), "wrk threads")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds; each runs every scenario once, in rotated order")
	flag.DurationVar(&o.warmup, "warmup", 1*time.Second, "warm-up before each window (whole seconds: wrk's unit)")
	flag.DurationVar(&o.window, "d", 5*time.Second, "measured window per scenario per round (whole seconds)")
	flag.BoolVar(&o.profile, "profile", false, "after the rounds, one more Clustered(2) window (not in the table) with CPU profiles of both nodes")
	flag.StringVar(&o.profileOf, "profile-scenarios", "two", "with -profile: the scenarios (comma-separated) that get a profiled window each")
	flag.StringVar(&o.scenarios, "scenarios", "plain,one,two,two-key,one-key-auth", "scenarios, in the first round's order")
	flag.Float64Var(&o.firstRate, "first-rate", 60000, "req/s to size the key files of a keyed scenario's first window for (later windows: twice its last rate)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// scenario is one load target.
type scenario struct {
	Name    string
	What    string
	Path    string
	Keyed   bool
	Headers []string // extra header lines, "Name: value"
	scope   string   // keyed: what the route puts before the client's key
}

func scenarios() []*scenario {
	return []*scenario{
		{Name: "plain", What: "plain net/http handler", Path: "/plain"},
		{Name: "one", What: "Clustered(1), local owner", Path: "/one"},
		{Name: "two", What: "Clustered(2)", Path: "/two"},
		{Name: "two-key", What: "Clustered(2), unique Idempotency-Key", Path: "/two", Keyed: true},
		{Name: "one-key-auth", What: "Clustered(1), unique Idempotency-Key + Authorization", Path: "/one", Keyed: true, Headers: []string{authorization}},
	}
}

// window is one measured window.
type window struct {
	Round       int     `json:"round"`
	Position    int     `json:"position"` // 1-based place in the round's order
	Scenario    string  `json:"scenario"`
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	RPS         float64 `json:"rps"`
	Ratio       float64 `json:"ratio_to_plain"` // to plain in the same round; 0 when plain did not run
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	P999ms      float64 `json:"p999_ms"`
	MaxMs       float64 `json:"max_ms"`
	CPUPrimary  float64 `json:"cpu_us_primary"` // per request
	CPUStandby  float64 `json:"cpu_us_standby"`
	CPUWrk      float64 `json:"cpu_us_wrk"`
	OtherCPU    float64 `json:"other_cpu_pct"` // % of all CPUs used by other processes
	Load        string  `json:"load"`
	KeysSpilled int64   `json:"keys_spilled"`
	Placement   string  `json:"placement,omitempty"` // "" when the checked keys ran where intended
	// Per request, of the primary and the standby: read- and write-family
	// system calls, and thread sleeps and preemptions (procstat.Activity).
	ActPrimary perRequest `json:"activity_primary"`
	ActStandby perRequest `json:"activity_standby"`

	cpu [3]time.Duration     // primary, standby, wrk
	act [2]procstat.Activity // primary, standby
}

// perRequest is a procstat.Activity divided by the requests answered.
type perRequest struct {
	Reads     float64 `json:"reads"`
	Writes    float64 `json:"writes"`
	Sleeps    float64 `json:"sleeps"`
	Preempted float64 `json:"preempted"`
}

func activityPer(a procstat.Activity, requests int64) perRequest {
	if requests <= 0 {
		return perRequest{}
	}
	n := float64(requests)
	return perRequest{float64(a.ReadCalls) / n, float64(a.WriteCalls) / n, float64(a.Sleeps) / n, float64(a.Preempted) / n}
}

type harness struct {
	o        options
	pri, sby *clusterkit.Node
	base     string
	lua      string
	members  []string
	runTag   string
	lastRPS  map[string]float64
}

func run(o options) error {
	for _, d := range []time.Duration{o.warmup, o.window} {
		if d < time.Second || d%time.Second != 0 {
			return fmt.Errorf("warm-up and window must be whole seconds (wrk's unit), got %v", d)
		}
	}
	if o.app == "" {
		return errors.New("give -app BIN (bench/routeapp)")
	}
	if o.rounds < 1 || o.conns < 1 {
		return errors.New("need at least one round and one connection")
	}
	o.threads = max(1, min(o.threads, o.conns))
	if _, err := exec.LookPath(o.wrk); err != nil {
		return fmt.Errorf("wrk: %w (Debian/Ubuntu: apt-get install wrk)", err)
	}
	all := map[string]*scenario{}
	for _, s := range scenarios() {
		all[s.Name] = s
	}
	var order []*scenario
	for _, name := range strings.Split(o.scenarios, ",") {
		s, ok := all[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("unknown scenario %q", name)
		}
		order = append(order, s)
	}
	if o.out == "" {
		d, err := os.MkdirTemp("", "mesh-wrkroutes-")
		if err != nil {
			return err
		}
		o.out = d
	}
	if err := os.MkdirAll(filepath.Join(o.out, "keys"), 0o755); err != nil {
		return err
	}
	h := &harness{o: o, lastRPS: map[string]float64{}, runTag: strconv.FormatInt(time.Now().UnixNano(), 36)}
	h.lua = filepath.Join(o.out, "routes.lua")
	if err := os.WriteFile(h.lua, routesLua, 0o644); err != nil {
		return err
	}

	port, err := clusterkit.FreePair()
	if err != nil {
		return err
	}
	addr1, addr2, err := clusterkit.HTTPAddrs()
	if err != nil {
		return err
	}
	c := &clusterkit.Cluster{Bin: o.app, Dir: o.out, Port: port, App: "routeapp"}
	defer c.Close()
	c.CloseOnInterrupt()
	extra := strings.Fields(o.nodeEnv)
	if o.profile {
		extra = append(extra, "ROUTEAPP_PPROF=1")
	}
	if h.pri, h.sby, err = c.StartPair(addr1, addr2, extra...); err != nil {
		return err
	}
	h.members = []string{h.pri.Name, h.sby.Name}
	h.base = "http://" + addr1
	if err := h.probe(order); err != nil {
		return err
	}
	fmt.Printf("cluster: %s (pid %d) + %s (pid %d), wrk against http://%s; logs in %s\n", h.pri.Name, h.pri.Pid(), h.sby.Name, h.sby.Pid(), addr1, o.out)
	fmt.Printf("wrk: %s, %d connections, %d threads; %d rounds of %v warm-up + %v window per scenario; %d CPUs\n",
		o.wrk, o.conns, o.threads, o.rounds, o.warmup, o.window, runtime.NumCPU())

	var rows []*window
	for round := 1; round <= o.rounds; round++ {
		k := (round - 1) % len(order)
		rotated := append(append([]*scenario(nil), order[k:]...), order[:k]...)
		for pos, s := range rotated {
			w, err := h.measure(s, round, pos+1)
			if err != nil {
				return fmt.Errorf("round %d %s: %w", round, s.Name, err)
			}
			rows = append(rows, w)
			fmt.Printf("round %d %-12s %9.0f req/s  p50 %7.3f  p99 %7.3f  p99.9 %7.3f ms  CPU µs/req %5.1f / %5.1f / wrk %5.1f  errors %d  other processes %4.1f%% of the CPUs  load %s\n",
				round, s.Name, w.RPS, w.P50ms, w.P99ms, w.P999ms, w.CPUPrimary, w.CPUStandby, w.CPUWrk, w.Errors, w.OtherCPU, w.Load)
		}
	}
	setRatios(rows)

	var profiled *window
	var profiledOthers []*window
	if o.profile {
		for _, name := range strings.Split(o.profileOf, ",") {
			s, ok := all[strings.TrimSpace(name)]
			if !ok {
				continue
			}
			w, err := h.profiled(s, "http://"+addr2)
			if err != nil {
				fmt.Fprintln(os.Stderr, "profile:", err)
				continue
			}
			if s.Name == "two" {
				profiled = w
			} else {
				profiledOthers = append(profiledOthers, w)
			}
		}
	}

	sums := summarize(order, rows)
	fmt.Println()
	printTable(os.Stdout, sums)
	if profiled != nil {
		fmt.Printf("\nprofiled Clustered(2) window (not in the table): %.0f req/s, CPU µs/req %.1f / %.1f; profiles in %s\n",
			profiled.RPS, profiled.CPUPrimary, profiled.CPUStandby, o.out)
	}
	for _, w := range profiledOthers {
		fmt.Printf("profiled %s window (not in the table): %.0f req/s, CPU µs/req %.1f / %.1f; profiles in %s\n",
			w.Scenario, w.RPS, w.CPUPrimary, w.CPUStandby, o.out)
	}
	var notes []string
	for _, w := range rows {
		if w.Placement != "" {
			notes = append(notes, fmt.Sprintf("round %d %s: %s", w.Round, w.Scenario, w.Placement))
		}
		if w.KeysSpilled > 0 {
			notes = append(notes, fmt.Sprintf("round %d %s: %d keys past the key files (unique, not placed)", w.Round, w.Scenario, w.KeysSpilled))
		}
		if w.Errors > 0 {
			notes = append(notes, fmt.Sprintf("round %d %s: %d errors (non-2xx answers or socket errors)", w.Round, w.Scenario, w.Errors))
		}
	}
	for _, n := range notes {
		fmt.Println("note:", n)
	}
	if len(notes) == 0 {
		fmt.Println("checks: no errors; no keyed window ran past its key files; the sampled keys of every keyed window completed on the ingress node")
	}
	doc := map[string]any{
		"connections": o.conns, "threads": o.threads, "rounds": o.rounds,
		"warmup_s": o.warmup.Seconds(), "window_s": o.window.Seconds(), "cpus": runtime.NumCPU(),
		"summaries": sums, "windows": rows, "notes": notes, "profiled": profiled,
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(o.out, "results.json"), b, 0o644)
}

// probe checks every route answers, that a clustered request without a key
// runs on the ingress node, and learns each keyed scenario's key scope.
func (h *harness) probe(order []*scenario) error {
	client := &http.Client{Timeout: 5 * time.Second}
	for i, s := range order {
		req, err := http.NewRequest(http.MethodGet, h.base+s.Path, nil)
		if err != nil {
			return err
		}
		probeKey := fmt.Sprintf("bench-%s-probe-%d", h.runTag, i)
		if s.Keyed {
			req.Header.Set("Idempotency-Key", probeKey)
		}
		for _, line := range s.Headers {
			name, value, _ := strings.Cut(line, ":")
			req.Header.Set(name, strings.TrimSpace(value))
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("probe %s: %w", s.Name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("probe %s: HTTP %d", s.Name, resp.StatusCode)
		}
		key := resp.Header.Get("X-Mesh-Continuity-Request-Key")
		if s.Path == "/plain" {
			continue
		}
		if key == "" {
			return fmt.Errorf("probe %s: no X-Mesh-Continuity-Request-Key", s.Name)
		}
		if s.Keyed {
			scope, ok := strings.CutSuffix(key, probeKey)
			if !ok {
				return fmt.Errorf("probe %s: request key %q does not end in the client's key", s.Name, key)
			}
			s.scope = scope
			continue
		}
		if msg := h.check(key); msg != "" {
			return fmt.Errorf("probe %s: %s", s.Name, msg)
		}
	}
	return nil
}

// check reports "" when the record of key completed with the ingress node as
// its owner and executor, else what it found.
func (h *harness) check(key string) string {
	var last string
	_ = clusterkit.WaitFor(5*time.Second, 50*time.Millisecond, func() error {
		rec, err := h.pri.Record(context.Background(), key, 2*time.Second)
		if err != nil {
			last = key + ": " + err.Error()
			return err
		}
		if rec.OwnerNode != h.pri.Name || rec.ExecutionNode != h.pri.Name || rec.Phase != "completed" {
			last = fmt.Sprintf("%s: owner %s, execution %s, phase %s", key, rec.OwnerNode, rec.ExecutionNode, rec.Phase)
			return errors.New(last)
		}
		last = ""
		return nil
	})
	return last
}

// measure runs one warm-up and one measured window of s.
func (h *harness) measure(s *scenario, round, pos int) (*window, error) {
	tag := fmt.Sprintf("r%d-%s", round, s.Name)
	warmKeys, winKeys := "-", "-"
	var keys [][]string
	if s.Keyed {
		// Twice the rate of this scenario's last window, for a second
		// longer than wrk is asked to run: enough that a faster window or
		// an uneven split between threads rarely runs a file dry.
		rate := h.o.firstRate
		if r, ok := h.lastRPS[s.Name]; ok {
			rate = 2 * r
		}
		var err error
		warmKeys, _, err = h.writeKeys(s, tag+"-w", int(rate*(h.o.warmup+time.Second).Seconds()))
		if err != nil {
			return nil, err
		}
		winKeys, keys, err = h.writeKeys(s, tag, int(rate*(h.o.window+time.Second).Seconds()))
		if err != nil {
			return nil, err
		}
		defer h.removeKeys(warmKeys)
		defer h.removeKeys(winKeys)
	}
	if _, _, err := h.wrk(s, h.o.warmup, warmKeys, tag+"-w"); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	load0 := procstat.LoadAvg()
	a0, err := h.nodeActivity()
	if err != nil {
		return nil, err
	}
	c0, err := h.nodeCPU()
	if err != nil {
		return nil, err
	}
	busy0, err := procstat.SystemBusy()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	res, wrkCPU, err := h.wrk(s, h.o.window, winKeys, tag)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(t0)
	c1, err := h.nodeCPU()
	if err != nil {
		return nil, err
	}
	a1, err := h.nodeActivity()
	if err != nil {
		return nil, err
	}
	busy1, err := procstat.SystemBusy()
	if err != nil {
		return nil, err
	}
	w := newWindow(round, pos, s.Name, res, [3]time.Duration{c1[0] - c0[0], c1[1] - c0[1], wrkCPU})
	w.act = [2]procstat.Activity{a1[0].Sub(a0[0]), a1[1].Sub(a0[1])}
	w.ActPrimary, w.ActStandby = activityPer(w.act[0], w.Requests), activityPer(w.act[1], w.Requests)
	ours := w.cpu[0] + w.cpu[1] + w.cpu[2]
	w.OtherCPU = 100 * max(0, (busy1-busy0-ours).Seconds()) / (elapsed.Seconds() * float64(runtime.NumCPU()))
	w.Load = load0 + " -> " + procstat.LoadAvg()
	h.lastRPS[s.Name] = w.RPS
	if s.Keyed {
		w.Placement = h.checkKeys(s.scope, keys, res.Bench.KeysUsedByThread)
	}
	return w, nil
}

// newWindow turns one parsed wrk run and the CPU each process used during it
// into a table row.
func newWindow(round, pos int, name string, r wrkRun, cpu [3]time.Duration) *window {
	b := r.Bench
	w := &window{
		Round: round, Position: pos, Scenario: name,
		Requests: b.Requests, Errors: r.Errors(),
		RPS:   float64(r.OK()) / (float64(b.DurationUS) / 1e6),
		P50ms: float64(b.P50US) / 1e3, P90ms: float64(b.P90US) / 1e3, P99ms: float64(b.P99US) / 1e3,
		P999ms: float64(b.P999US) / 1e3, MaxMs: float64(b.MaxUS) / 1e3,
		KeysSpilled: b.KeysSpilled,
		cpu:         cpu,
	}
	if b.Requests > 0 {
		per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.Requests) }
		w.CPUPrimary, w.CPUStandby, w.CPUWrk = per(cpu[0]), per(cpu[1]), per(cpu[2])
	}
	return w
}

// checkKeys looks up, for each wrk thread, a key it sent well before the
// window closed (the last ones may still have been in flight; the node keeps
// the newest records) and reports "" when each ran on the ingress node.
func (h *harness) checkKeys(scope string, keys [][]string, used []int64) string {
	if len(used) != len(keys) {
		return fmt.Sprintf("wrk reported %d threads' key counts, %d key files were written", len(used), len(keys))
	}
	var bad []string
	checked := 0
	perThread := int64(h.o.conns/h.o.threads + 1)
	for t, n := range used {
		i := min(n, int64(len(keys[t]))) - 4*perThread
		if i < 0 {
			continue
		}
		checked++
		if msg := h.check(scope + keys[t][i]); msg != "" {
			bad = append(bad, msg)
		}
	}
	if checked == 0 {
		return "no thread sent enough keys to check one"
	}
	return strings.Join(bad, "; ")
}

// writeKeys writes unique keys whose request key under s's scope is placed
// on the primary, for n requests, into one file per wrk thread (<out>/keys/<tag>.<thread>), and returns the files' common prefix
// and the keys by thread.
func (h *harness) writeKeys(s *scenario, tag string, n int) (string, [][]string, error) {
	// wrk's threads can split the load very unevenly on a busy host (one
	// did eleven times the other's requests in a trial), so each thread's
	// file holds twice its even share.
	per := max(1000, min(n, 2*((n+h.o.threads-1)/h.o.threads)))
	prefix := filepath.Join(h.o.out, "keys", tag)
	gen := newPlacedKeys(s.scope, fmt.Sprintf("bench-%s-%s-", h.runTag, tag), h.members, h.pri.Name)
	keys := make([][]string, h.o.threads)
	for t := range keys {
		var buf []byte
		keys[t] = make([]string, per)
		for i := range keys[t] {
			k := gen.next()
			keys[t][i] = k
			buf = append(append(buf, k...), '\n')
		}
		if err := os.WriteFile(fmt.Sprintf("%s.%d", prefix, t), buf, 0o644); err != nil {
			return "", nil, err
		}
	}
	return prefix, keys, nil
}

func (h *harness) removeKeys(prefix string) {
	if prefix == "-" {
		return
	}
	for t := range h.o.threads {
		_ = os.Remove(fmt.Sprintf("%s.%d", prefix, t))
	}
}

// wrk runs wrk for d against s and returns its parsed report and the CPU time
// it used (its rusage).
func (h *harness) wrk(s *scenario, d time.Duration, keyfile, tag string) (wrkRun, time.Duration, error) {
	args := []string{
		"-t", strconv.Itoa(h.o.threads), "-c", strconv.Itoa(h.o.conns),
		"-d", fmt.Sprintf("%ds", int(d.Seconds())), "--timeout", "5s", "--latency",
		"-s", h.lua, h.base + s.Path, "--", keyfile, fmt.Sprintf("bench-%s-%s-spill", h.runTag, tag),
	}
	args = append(args, s.Headers...)
	out, cpu, err := runBounded(h.o.wrk, args, d+60*time.Second)
	if err != nil {
		return wrkRun{}, 0, fmt.Errorf("%s %s: %w\n%s", h.o.wrk, strings.Join(args, " "), err, out)
	}
	r, err := parseWrk(out)
	if err != nil {
		return r, 0, fmt.Errorf("%w\n%s", err, out)
	}
	return r, cpu, nil
}

// nodeCPU returns the CPU time the primary and the standby have used so far.
func (h *harness) nodeCPU() ([2]time.Duration, error) {
	var out [2]time.Duration
	for i, n := range []*clusterkit.Node{h.pri, h.sby} {
		if n.Exited() {
			return out, fmt.Errorf("%s exited; log %s", n.Name, n.LogPath)
		}
		cpu, err := procstat.ProcessCPU(n.Pid())
		if err != nil {
			return out, err
		}
		out[i] = cpu
	}
	return out, nil
}

// nodeActivity returns the system calls and context switches of the primary
// and the standby so far.
func (h *harness) nodeActivity() ([2]procstat.Activity, error) {
	var out [2]procstat.Activity
	for i, n := range []*clusterkit.Node{h.pri, h.sby} {
		a, err := procstat.ProcessActivity(n.Pid())
		if err != nil {
			return out, fmt.Errorf("%s: %w", n.Name, err)
		}
		out[i] = a
	}
	return out, nil
}

// profiled runs one extra window of scenario s while both nodes record a CPU
// profile, into <out>/cpu-<scenario>-primary.prof and cpu-<scenario>-standby.prof.
func (h *harness) profiled(s *scenario, standbyBase string) (*window, error) {
	secs := max(1, int(h.o.window.Seconds())-1)
	type got struct {
		role string
		err  error
	}
	ch := make(chan got, 2)
	if _, _, err := h.wrk(s, h.o.warmup, "-", "profile-w"); err != nil {
		return nil, err
	}
	for _, p := range []struct{ role, base string }{{"primary", h.base}, {"standby", standbyBase}} {
		go func() {
			client := &http.Client{Timeout: time.Duration(secs+30) * time.Second}
			resp, err := client.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.base, secs))
			if err != nil {
				ch <- got{p.role, err}
				return
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(h.o.out, "cpu-"+s.Name+"-"+p.role+".prof"), data, 0o644)
			}
			ch <- got{p.role, err}
		}()
	}
	c0, err := h.nodeCPU()
	if err != nil {
		return nil, err
	}
	res, wrkCPU, err := h.wrk(s, h.o.window, "-", "profile")
	if err != nil {
		return nil, err
	}
	c1, err := h.nodeCPU()
	if err != nil {
		return nil, err
	}
	var errs []error
	for range 2 {
		g := <-ch
		if g.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", g.role, g.err))
		}
	}
	return newWindow(0, 0, s.Name, res, [3]time.Duration{c1[0] - c0[0], c1[1] - c0[1], wrkCPU}), errors.Join(errs...)
}
