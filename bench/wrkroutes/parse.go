package main

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// wrkRun is what one wrk invocation reported: its standard output with
// --latency, and the "meshbench" line routes.lua's done() prints.
type wrkRun struct {
	// From wrk's own report.
	Threads, Connections int
	Requests             int64         // "N requests in D, B read"
	Elapsed              time.Duration // the D of that line
	RPS                  float64       // "Requests/sec:"
	Dist                 map[string]time.Duration
	Non2xx               int64 // "Non-2xx or 3xx responses:"
	SocketErrors         [4]int64

	// From the meshbench line (exact counts, latencies in µs).
	Bench meshbenchLine
}

// meshbenchLine is the line routes.lua's done() prints.
type meshbenchLine struct {
	Requests, DurationUS, Bytes                          int64
	ErrStatus, ErrConnect, ErrRead, ErrWrite, ErrTimeout int64
	P50US, P90US, P99US, P999US, MaxUS                   int64
	MeanUS                                               float64
	KeysUsed, KeysSpilled                                int64
	KeysUsedByThread                                     []int64 // in thread order
}

// Errors counts non-2xx/3xx answers and socket errors.
func (r wrkRun) Errors() int64 {
	b := r.Bench
	return b.ErrStatus + b.ErrConnect + b.ErrRead + b.ErrWrite + b.ErrTimeout
}

// OK is the number of requests answered 2xx or 3xx.
func (r wrkRun) OK() int64 { return r.Bench.Requests - r.Bench.ErrStatus }

// parseWrk reads wrk's output. It fails when the report or the meshbench
// line is missing or the two disagree on the request count.
func parseWrk(out string) (wrkRun, error) {
	r := wrkRun{Dist: map[string]time.Duration{}}
	var haveReport, haveBench, inDist bool
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "meshbench "):
			b, err := parseMeshbench(f[1:])
			if err != nil {
				return r, err
			}
			r.Bench, haveBench = b, true
		case len(f) == 5 && f[1] == "threads" && f[2] == "and" && f[4] == "connections":
			r.Threads, _ = strconv.Atoi(f[0])
			r.Connections, _ = strconv.Atoi(f[3])
		case line == "Latency Distribution":
			inDist = true
			continue
		case inDist && len(f) == 2 && strings.HasSuffix(f[0], "%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("latency distribution %q: %w", line, err)
			}
			r.Dist[strings.TrimSuffix(f[0], "%")] = d
			continue
		case len(f) >= 6 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("request count %q: %w", line, err)
			}
			d, err := parseWrkDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return r, fmt.Errorf("elapsed %q: %w", line, err)
			}
			r.Requests, r.Elapsed = n, d
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")), 10, 64)
			if err != nil {
				return r, fmt.Errorf("%q: %w", line, err)
			}
			r.Non2xx = n
		case strings.HasPrefix(line, "Socket errors:"):
			// Socket errors: connect 0, read 0, write 0, timeout 4
			for i, name := range []string{"connect", "read", "write", "timeout"} {
				j := strings.Index(line, name+" ")
				if j < 0 {
					return r, fmt.Errorf("%q: no %s count", line, name)
				}
				v := strings.TrimSuffix(strings.Fields(line[j+len(name)+1:])[0], ",")
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return r, fmt.Errorf("%q: %w", line, err)
				}
				r.SocketErrors[i] = n
			}
		case strings.HasPrefix(line, "Requests/sec:"):
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")), 64)
			if err != nil {
				return r, fmt.Errorf("%q: %w", line, err)
			}
			r.RPS, haveReport = v, true
		}
		inDist = false
	}
	switch {
	case !haveReport:
		return r, errors.New("no Requests/sec line in wrk's output")
	case !haveBench:
		return r, errors.New("no meshbench line in wrk's output (was it run with routes.lua?)")
	case r.Requests != r.Bench.Requests:
		return r, fmt.Errorf("wrk reports %d requests, routes.lua %d", r.Requests, r.Bench.Requests)
	case r.Non2xx != r.Bench.ErrStatus:
		return r, fmt.Errorf("wrk reports %d non-2xx answers, routes.lua %d", r.Non2xx, r.Bench.ErrStatus)
	}
	return r, nil
}

func parseMeshbench(fields []string) (meshbenchLine, error) {
	var b meshbenchLine
	ints := map[string]*int64{
		"requests": &b.Requests, "duration_us": &b.DurationUS, "bytes": &b.Bytes,
		"errors_status": &b.ErrStatus, "errors_connect": &b.ErrConnect, "errors_read": &b.ErrRead,
		"errors_write": &b.ErrWrite, "errors_timeout": &b.ErrTimeout,
		"p50_us": &b.P50US, "p90_us": &b.P90US, "p99_us": &b.P99US, "p999_us": &b.P999US, "max_us": &b.MaxUS,
		"keys_used": &b.KeysUsed, "keys_spilled": &b.KeysSpilled,
	}
	seen := map[string]bool{}
	for _, kv := range fields {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return b, fmt.Errorf("meshbench field %q", kv)
		}
		seen[k] = true
		if k == "keys_used_by_thread" {
			b.KeysUsedByThread = nil
			for _, p := range strings.Split(v, ",") {
				n, err := strconv.ParseInt(p, 10, 64)
				if err != nil {
					return b, fmt.Errorf("meshbench %s: %w", k, err)
				}
				b.KeysUsedByThread = append(b.KeysUsedByThread, n)
			}
			continue
		}
		if k == "mean_us" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return b, fmt.Errorf("meshbench %s: %w", k, err)
			}
			b.MeanUS = f
			continue
		}
		p, ok := ints[k]
		if !ok {
			return b, fmt.Errorf("meshbench: unknown field %q", k)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return b, fmt.Errorf("meshbench %s: %w", k, err)
		}
		*p = n
	}
	for k := range ints {
		if !seen[k] {
			return b, fmt.Errorf("meshbench: no %s", k)
		}
	}
	for _, k := range []string{"mean_us", "keys_used_by_thread"} {
		if !seen[k] {
			return b, fmt.Errorf("meshbench: no %s", k)
		}
	}
	var sum int64
	for _, n := range b.KeysUsedByThread {
		sum += n
	}
	if sum != b.KeysUsed {
		return b, fmt.Errorf("meshbench: keys_used %d but the threads' counts add up to %d", b.KeysUsed, sum)
	}
	return b, nil
}

// parseWrkDuration reads wrk's time format: 63.00us, 0.96ms, 1.10s, 2.00m, 1.00h.
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, err
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("duration %q has no unit", s)
}
