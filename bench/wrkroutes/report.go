package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"meshgo.dev/mesh/bench/internal/procstat"
	"meshgo.dev/mesh/bench/internal/stats"
)

// setRatios sets each window's ratio to plain's req/s in the same round.
func setRatios(rows []*window) {
	plain := map[int]float64{}
	for _, w := range rows {
		if w.Scenario == "plain" {
			plain[w.Round] = w.RPS
		}
	}
	for _, w := range rows {
		if p := plain[w.Round]; p > 0 {
			w.Ratio = w.RPS / p
		}
	}
}

// summary is one scenario over all rounds.
type summary struct {
	Scenario string `json:"scenario"`
	What     string `json:"what"`
	Windows  int    `json:"windows"`
	Requests int64  `json:"requests"`
	Errors   int64  `json:"errors"`
	// Median and range over rounds.
	RPS   spread `json:"rps"`
	Ratio spread `json:"ratio_to_plain"` // zero when plain did not run
	// Medians over rounds of each window's percentiles.
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p999_ms"`
	// Median over rounds of this p99 minus plain's p99 in the same round.
	P99MinusPlainMs float64 `json:"p99_minus_plain_ms"`
	HasPlain        bool    `json:"has_plain"`
	// Pooled: CPU time over all windows / requests over all windows.
	CPUPrimary float64 `json:"cpu_us_primary"`
	CPUStandby float64 `json:"cpu_us_standby"`
	CPUWrk     float64 `json:"cpu_us_wrk"`
	// Pooled likewise: system calls and context switches per request.
	ActPrimary perRequest `json:"activity_primary"`
	ActStandby perRequest `json:"activity_standby"`
}

// spread is a median with the range it came from.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return spread{Median: stats.Median(s), Min: s[0], Max: s[len(s)-1]}
}

func summarize(order []*scenario, rows []*window) []summary {
	plainP99 := map[int]float64{}
	for _, w := range rows {
		if w.Scenario == "plain" {
			plainP99[w.Round] = w.P99ms
		}
	}
	var out []summary
	for _, s := range order {
		sum := summary{Scenario: s.Name, What: s.What}
		var rps, ratio, p50, p99, p999, dp99 []float64
		var cpu [3]time.Duration
		var act [2]procstat.Activity
		for _, w := range rows {
			if w.Scenario != s.Name {
				continue
			}
			sum.Windows++
			sum.Requests += w.Requests
			sum.Errors += w.Errors
			rps = append(rps, w.RPS)
			if w.Ratio > 0 {
				ratio = append(ratio, w.Ratio)
			}
			p50, p99, p999 = append(p50, w.P50ms), append(p99, w.P99ms), append(p999, w.P999ms)
			if p, ok := plainP99[w.Round]; ok {
				dp99 = append(dp99, w.P99ms-p)
				sum.HasPlain = true
			}
			for i := range cpu {
				cpu[i] += w.cpu[i]
			}
			for i := range act {
				act[i] = act[i].Add(w.act[i])
			}
		}
		sum.RPS, sum.Ratio = spreadOf(rps), spreadOf(ratio)
		sum.P50ms, sum.P99ms, sum.P999ms, sum.P99MinusPlainMs = stats.Median(p50), stats.Median(p99), stats.Median(p999), stats.Median(dp99)
		if sum.Requests > 0 {
			per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(sum.Requests) }
			sum.CPUPrimary, sum.CPUStandby, sum.CPUWrk = per(cpu[0]), per(cpu[1]), per(cpu[2])
			sum.ActPrimary, sum.ActStandby = activityPer(act[0], sum.Requests), activityPer(act[1], sum.Requests)
		}
		out = append(out, sum)
	}
	return out
}

// printTable writes the scenario table (Markdown) and the CPU each scenario
// adds to plain's.
func printTable(w io.Writer, sums []summary) {
	fmt.Fprintln(w, "| scenario | req/s, median [range] | ratio to plain, median [range] | p50 ms | p99 ms | p99.9 ms | p99 − plain's, ms | CPU µs/req primary | standby | wrk | errors |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var plain *summary
	for i, s := range sums {
		if s.Scenario == "plain" {
			plain = &sums[i]
		}
	}
	for _, s := range sums {
		ratio, dp99 := "-", "-"
		if s.Ratio.Median > 0 {
			ratio = fmt.Sprintf("%.1f %% [%.1f–%.1f]", 100*s.Ratio.Median, 100*s.Ratio.Min, 100*s.Ratio.Max)
		}
		if s.HasPlain && s.Scenario != "plain" {
			dp99 = fmt.Sprintf("%+.3f", s.P99MinusPlainMs)
		}
		fmt.Fprintf(w, "| %s (%s) | %.0f [%.0f–%.0f] | %s | %.3f | %.3f | %.3f | %s | %.1f | %.1f | %.1f | %d |\n",
			s.Scenario, s.What, s.RPS.Median, s.RPS.Min, s.RPS.Max, ratio, s.P50ms, s.P99ms, s.P999ms, dp99,
			s.CPUPrimary, s.CPUStandby, s.CPUWrk, s.Errors)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Per request, from /proc (pooled over the windows): read- and write-family system calls (EAGAIN reads included), thread sleeps (voluntary context switches) and preemptions.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | primary reads | writes | sleeps | preempted | standby reads | writes | sleeps | preempted |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, s := range sums {
		p, q := s.ActPrimary, s.ActStandby
		fmt.Fprintf(w, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
			s.Scenario, p.Reads, p.Writes, p.Sleeps, p.Preempted, q.Reads, q.Writes, q.Sleeps, q.Preempted)
	}
	if plain == nil {
		return
	}
	fmt.Fprintln(w)
	for _, s := range sums {
		if s.Scenario == "plain" {
			continue
		}
		fmt.Fprintf(w, "CPU per request above plain: %-12s primary %+.1f µs, standby %+.1f µs\n",
			s.Scenario, s.CPUPrimary-plain.CPUPrimary, s.CPUStandby-plain.CPUStandby)
	}
}
