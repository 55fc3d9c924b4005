// Command failover measures how fast a standby takes over, on real testapp
// processes on loopback (primary@127.0.0.1:P, standby@[::1]:P, discovery seed
// localhost, every MESH_* timing at its default except
// MESH_STARTUP_WORK_DELAY_MS=20000).
//
// Each run starts a fresh pair at a cluster port where the placement owner of
// startup::work.Add is the primary, waits until the standby holds that
// startup record mirrored and pending (the primary sits in its 20 s dispatch
// window), then faults the primary and measures, from the instant before the
// signal is sent:
//
//   - kill: SIGKILL → the standby's automatic_promotion, and → the startup
//     record completed on the standby under a new attempt (recovery).
//   - stop: SIGSTOP (a frozen peer) → the standby's automatic_promotion.
//
// Two clocks are reported. "event" comes from the standby's own timestamps
// (the automatic_promotion diagnostic's time and the record's completed_at,
// nanosecond resolution, same host clock as the signal time). "observed" is
// when a tight operator-protocol poll of the standby (status / continuity
// lookup in-process, the queries `meshc cluster ... --json` sends, one every
// ~10 ms) first saw the change; the measured poll period is printed as its
// resolution.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"meshgo.dev/mesh/bench/internal/clusterkit"
	"meshgo.dev/mesh/bench/internal/procstat"
)

type run struct {
	Mode               string          `json:"mode"`
	Run                int             `json:"run"`
	PromotionEvent     time.Duration   `json:"promotion_event_ns"`
	PromotionObserved  time.Duration   `json:"promotion_observed_ns"`
	RecoveryEvent      time.Duration   `json:"recovery_event_ns"`
	RecoveryObserved   time.Duration   `json:"recovery_observed_ns"`
	PollPeriodMean     time.Duration   `json:"poll_period_mean_ns"`
	PollPeriodMax      time.Duration   `json:"poll_period_max_ns"`
	Polls              int             `json:"polls"`
	Periods            []time.Duration `json:"-"`
	NewAttempt         string          `json:"new_attempt"`
	Epoch              uint64          `json:"epoch"`
	Load               string          `json:"load"`
	Error              string          `json:"error,omitempty"`
	RecoveredOnStandby bool            `json:"recovered_on_standby"`
}

func main() {
	testapp := flag.String("testapp", "", "testapp binary")
	runs := flag.Int("runs", 10, "runs per mode")
	modes := flag.String("modes", "kill,stop", "fault modes: kill, stop")
	out := flag.String("out", "", "directory for node logs and failover.json (default: a temp dir)")
	poll := flag.Duration("poll", 10*time.Millisecond, "pause between two operator polls")
	arbiterURL := flag.String("arbiter", "", "MESH_ARBITER for both nodes (a postgres:// URL or etcd://host:port; default: the peer rule)")
	flag.Parse()
	arbiterEnv = *arbiterURL
	if *testapp == "" {
		fmt.Fprintln(os.Stderr, "error: -testapp is required")
		os.Exit(1)
	}
	if *out == "" {
		d, err := os.MkdirTemp("", "mesh-failover-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		*out = d
	}
	var current *clusterkit.Cluster
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		if current != nil {
			current.Close()
		}
		os.Exit(130)
	}()

	var all []run
	for _, mode := range strings.Split(*modes, ",") {
		for i := 1; i <= *runs; i++ {
			dir := filepath.Join(*out, fmt.Sprintf("%s-%02d", mode, i))
			_ = os.MkdirAll(dir, 0o755)
			if arbiterEnv != "" && len(all) > 0 {
				// Every run's pair shares one lease row (one cookie): let the
				// last run's lease expire (TTL 2 s) before the next pair boots.
				time.Sleep(3 * time.Second)
			}
			r := once(mode, i, *testapp, dir, *poll, func(c *clusterkit.Cluster) { current = c })
			all = append(all, r)
			if r.Error != "" {
				fmt.Printf("%s run %2d: ERROR %s\n", mode, i, r.Error)
				continue
			}
			fmt.Printf("%s run %2d: promotion event %7.1f ms observed %7.1f ms | recovery event %7.1f ms observed %7.1f ms | poll mean %.1f ms max %.1f ms (%d polls) | %s epoch %d | load %s\n",
				mode, i, msf(r.PromotionEvent), msf(r.PromotionObserved), msf(r.RecoveryEvent), msf(r.RecoveryObserved),
				msf(r.PollPeriodMean), msf(r.PollPeriodMax), r.Polls, r.NewAttempt, r.Epoch, r.Load)
		}
	}
	fmt.Println()
	report(all)
	b, _ := json.MarshalIndent(all, "", "  ")
	_ = os.WriteFile(filepath.Join(*out, "failover.json"), b, 0o644)
	fmt.Println("\nlogs and failover.json in", *out)
}

// arbiterEnv is the -arbiter value: "" for the peer rule.
var arbiterEnv string

// arbiterLabel names the arbiter in the report, without the URL's secrets.
func arbiterLabel() string {
	if arbiterEnv == "" {
		return "peer"
	}
	scheme, _, _ := strings.Cut(arbiterEnv, "://")
	return scheme + " lease"
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func once(mode string, i int, bin, dir string, poll time.Duration, track func(*clusterkit.Cluster)) (r run) {
	r = run{Mode: mode, Run: i, Load: procstat.LoadAvg()}
	fail := func(format string, args ...any) run {
		r.Error = fmt.Sprintf(format, args...)
		return r
	}
	port, err := clusterkit.PortOwnedBy("primary")
	if err != nil {
		return fail("%v", err)
	}
	c := &clusterkit.Cluster{Bin: bin, Dir: dir, Port: port}
	track(c)
	defer c.Close()
	extra := []string{"MESH_STARTUP_WORK_DELAY_MS=20000"}
	if arbiterEnv != "" {
		extra = append(extra, "MESH_ARBITER="+arbiterEnv)
	}
	pri, sby, err := c.StartPair("", "", extra...)
	if err != nil {
		return fail("pair: %v", err)
	}
	ctx := context.Background()
	var before string
	if err := clusterkit.WaitFor(30*time.Second, 20*time.Millisecond, func() error {
		rec, err := sby.Record(ctx, clusterkit.StartupKey, time.Second)
		if err != nil {
			return err
		}
		if rec.Phase != "submitted" || rec.ReplicaStatus != "mirrored" || rec.OwnerNode != pri.Name {
			return fmt.Errorf("startup record on standby: %s %s owner %s", rec.Phase, rec.ReplicaStatus, rec.OwnerNode)
		}
		before = rec.AttemptID
		return nil
	}); err != nil {
		return fail("startup record: %v", err)
	}

	sig := syscall.SIGKILL
	if mode == "stop" {
		sig = syscall.SIGSTOP
	} else if mode != "kill" {
		return fail("unknown mode %q", mode)
	}
	t0 := time.Now()
	pri.Signal(sig)

	limit := 30 * time.Second
	if mode == "stop" {
		limit = 120 * time.Second
	}
	deadline := t0.Add(limit)
	var periods []time.Duration
	last := t0
	tick := func() {
		now := time.Now()
		periods = append(periods, now.Sub(last))
		last = now
	}
	for r.PromotionObserved == 0 {
		if time.Now().After(deadline) {
			return fail("standby not primary %v after the signal", limit)
		}
		st, err := sby.Status(ctx, 2*time.Second)
		tick()
		if err == nil && st.Authority.ClusterRole == "primary" {
			r.PromotionObserved = time.Since(t0)
			r.Epoch = st.Authority.PromotionEpoch
			break
		}
		time.Sleep(poll)
	}
	for r.RecoveryObserved == 0 {
		if time.Now().After(deadline) {
			return fail("startup record not recovered %v after the signal", limit)
		}
		rec, err := sby.Record(ctx, clusterkit.StartupKey, 2*time.Second)
		tick()
		if err == nil && rec.Phase == "completed" {
			r.RecoveryObserved = time.Since(t0)
			r.NewAttempt = before + "->" + rec.AttemptID
			r.RecoveredOnStandby = rec.ExecutionNode == sby.Name && rec.AttemptID != before
			if rec.CompletedAt != nil {
				r.RecoveryEvent = rec.CompletedAt.Sub(t0)
			}
			break
		}
		time.Sleep(poll)
	}
	r.Polls = len(periods)
	if len(periods) > 1 {
		r.Periods = periods[1:]
	}
	var sum time.Duration
	for _, p := range periods[1:] { // the first period starts at the signal, not at a poll
		sum += p
		r.PollPeriodMax = max(r.PollPeriodMax, p)
	}
	if len(periods) > 1 {
		r.PollPeriodMean = sum / time.Duration(len(periods)-1)
	}
	d, err := sby.Diagnostics(ctx, 5*time.Second)
	if err != nil {
		return fail("diagnostics: %v", err)
	}
	for _, e := range d.Entries {
		if e.Transition == "automatic_promotion" && e.Time != nil {
			r.PromotionEvent = e.Time.Sub(t0)
		}
	}
	if r.PromotionEvent == 0 {
		return fail("no automatic_promotion entry in the standby's diagnostics")
	}
	if !r.RecoveredOnStandby {
		return fail("startup record completed but not recovered on the standby (%s)", r.NewAttempt)
	}
	return r
}

func stats(ds []time.Duration) (median, lo, hi time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		median = s[n/2]
	} else {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return median, s[0], s[n-1]
}

func report(all []run) {
	fmt.Printf("arbiter: %s\n\n", arbiterLabel())
	fmt.Println("| measurement | runs ok | median ms | min ms | max ms | reference |")
	fmt.Println("|---|---:|---:|---:|---:|---|")
	row := func(label, mode, ref string, get func(run) time.Duration) {
		var ds []time.Duration
		for _, r := range all {
			if r.Mode == mode && r.Error == "" {
				ds = append(ds, get(r))
			}
		}
		if len(ds) == 0 {
			return
		}
		m, lo, hi := stats(ds)
		fmt.Printf("| %s | %d | %.1f | %.1f | %.1f | %s |\n", label, len(ds), msf(m), msf(lo), msf(hi), ref)
	}
	row("SIGKILL → standby automatic_promotion (event time)", "kill", "~500 ms", func(r run) time.Duration { return r.PromotionEvent })
	row("SIGKILL → standby reports cluster_role=primary (observed)", "kill", "~500 ms", func(r run) time.Duration { return r.PromotionObserved })
	row("SIGKILL → startup record completed on standby (completed_at)", "kill", "-", func(r run) time.Duration { return r.RecoveryEvent })
	row("SIGKILL → startup record completed on standby (observed)", "kill", "-", func(r run) time.Duration { return r.RecoveryObserved })
	row("SIGSTOP → standby automatic_promotion (event time)", "stop", "~75 s", func(r run) time.Duration { return r.PromotionEvent })
	row("SIGSTOP → standby reports cluster_role=primary (observed)", "stop", "~75 s", func(r run) time.Duration { return r.PromotionObserved })
	row("SIGSTOP → startup record completed on standby (completed_at)", "stop", "-", func(r run) time.Duration { return r.RecoveryEvent })
	var periods []time.Duration
	for _, r := range all {
		periods = append(periods, r.Periods...)
	}
	if len(periods) > 0 {
		m, lo, hi := stats(periods)
		var sum time.Duration
		for _, p := range periods {
			sum += p
		}
		fmt.Printf("| operator poll period, all runs pooled (resolution of \"observed\"; %d polls, mean %.1f) | - | %.1f | %.1f | %.1f | - |\n",
			len(periods), msf(sum/time.Duration(len(periods))), msf(m), msf(lo), msf(hi))
	}
	failed := 0
	for _, r := range all {
		if r.Error != "" {
			failed++
		}
	}
	fmt.Printf("\nruns: %d, failed: %d\n", len(all), failed)
}
