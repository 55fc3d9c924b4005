package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"meshgo.dev/mesh/bench/internal/stats"
)

// keySource hands out unique Idempotency-Key values; nil means no header.
type keySource interface {
	// Next returns a fresh key; it is safe for concurrent use.
	Next() string
}

// scenario is one load target.
type scenario struct {
	Name      string
	URL       string
	Keys      keySource // nil: no Idempotency-Key
	Clustered bool      // responses must carry X-Mesh-Continuity-Request-Key
	Auth      string    // Authorization header of every request ("" for none)
}

// result is one measured run of one scenario.
type result struct {
	Scenario     string
	Requests     int // successful (2xx) requests in the measured window
	Errors       int // transport errors and non-2xx answers
	StatusCounts map[int]int
	FirstError   string
	MissingKey   int // clustered responses without the request-key header
	Elapsed      time.Duration
	Latencies    []time.Duration // every successful request, unsorted
	ExecutedBy   map[string]int  // X-Executed-By values, when the route sets it
	LastKeys     []string        // the last key each worker sent (keyed runs)
}

func (r result) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// newTransport returns a keep-alive HTTP/1.1 transport with room for c idle
// connections, no proxy and no compression. The workers call its RoundTrip
// directly: an http.Client would add, per request, a copy of the request
// headers (kept for redirects, which never happen here) and a timeout timer,
// and that copy costs a keyed request more than a plain one, which would
// charge load-generator work to the runtime under test.
func newTransport(c int) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          c * 2,
		MaxIdleConnsPerHost:   c * 2,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: requestTimeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
}

// requestTimeout bounds one request beyond its window's end.
const requestTimeout = 10 * time.Second

// drive runs workers goroutines against s until d has passed or maxRequests
// requests were started (0: no cap), and returns what they measured. Every
// loop is bounded by the deadline, and every request by the window's end
// plus requestTimeout.
//
// With rate 0 each worker sends its next request as soon as the last one is
// answered (closed loop: the server's speed sets the rate). With rate > 0
// the workers together start requests on a fixed schedule of rate per
// second: worker w takes slots w, w+workers, … of the schedule, waits for its
// slot, and a request's latency counts from its slot, so a server that falls
// behind is charged the time requests spent waiting for a worker too (open
// loop, free of coordinated omission while the workers keep up).
func drive(ctx context.Context, tr http.RoundTripper, s scenario, workers int, d time.Duration, maxRequests int64, record bool, rate float64) result {
	// Requests run under reqCtx, not ctx: one still in flight when the
	// window closes is let finish (and not counted), so its keep-alive
	// connection serves the next window instead of being torn down.
	reqCtx, cancelReqs := context.WithTimeout(ctx, d+requestTimeout)
	defer cancelReqs()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var started atomic.Int64
	type workerOut struct {
		ok, errs, missing int
		status            map[int]int
		firstErr          string
		lat               []time.Duration
		execBy            map[string]int
		lastKey           string
	}
	outs := make([]workerOut, workers)
	var wg sync.WaitGroup
	begin := time.Now()
	deadline, _ := ctx.Deadline()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &outs[w]
			o.status = map[int]int{}
			o.execBy = map[string]int{}
			if record {
				o.lat = make([]time.Duration, 0, 1<<14)
			}
			for slot := w; ctx.Err() == nil; slot += workers {
				if maxRequests > 0 && started.Add(1) > maxRequests {
					return
				}
				var due time.Time
				if rate > 0 {
					due = begin.Add(time.Duration(float64(slot) / rate * float64(time.Second)))
					if !due.Before(deadline) {
						return
					}
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
					}
				}
				req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, s.URL, nil)
				if err != nil {
					panic(err)
				}
				if s.Keys != nil {
					o.lastKey = s.Keys.Next()
					req.Header.Set("Idempotency-Key", o.lastKey)
				}
				if s.Auth != "" {
					req.Header.Set("Authorization", s.Auth)
				}
				t0 := time.Now()
				if rate > 0 {
					t0 = due
				}
				resp, err := tr.RoundTrip(req)
				if err != nil {
					if ctx.Err() != nil {
						return // the window closed during the request: not counted
					}
					o.errs++
					if o.firstErr == "" {
						o.firstErr = err.Error()
					}
					continue
				}
				_, cerr := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat := time.Since(t0)
				o.status[resp.StatusCode]++
				switch {
				case cerr != nil:
					o.errs++
					if o.firstErr == "" {
						o.firstErr = "read body: " + cerr.Error()
					}
				case resp.StatusCode < 200 || resp.StatusCode > 299:
					o.errs++
					if o.firstErr == "" {
						o.firstErr = fmt.Sprintf("HTTP %d", resp.StatusCode)
					}
				default:
					o.ok++
					if record {
						o.lat = append(o.lat, lat)
					}
					if s.Clustered && resp.Header.Get("X-Mesh-Continuity-Request-Key") == "" {
						o.missing++
					}
					if v := resp.Header.Get("X-Executed-By"); v != "" {
						o.execBy[v]++
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := min(time.Since(begin), d)
	r := result{Scenario: s.Name, Elapsed: elapsed, StatusCounts: map[int]int{}, ExecutedBy: map[string]int{}}
	for _, o := range outs {
		r.Requests += o.ok
		r.Errors += o.errs
		r.MissingKey += o.missing
		if r.FirstError == "" {
			r.FirstError = o.firstErr
		}
		for k, v := range o.status {
			r.StatusCounts[k] += v
		}
		for k, v := range o.execBy {
			r.ExecutedBy[k] += v
		}
		r.Latencies = append(r.Latencies, o.lat...)
		if o.lastKey != "" {
			r.LastKeys = append(r.LastKeys, o.lastKey)
		}
	}
	return r
}

// summary is the aggregate of one scenario over every round.
type summary struct {
	Scenario   string
	Requests   int
	Errors     int
	Elapsed    time.Duration
	P50, P90   time.Duration
	P99, P999  time.Duration
	Max        time.Duration
	Mean       time.Duration
	RoundRPS   []float64
	MissingKey int
	ExecutedBy map[string]int
	Status     map[int]int
	FirstError string
}

func (s summary) RPS() float64 { return float64(s.Requests) / s.Elapsed.Seconds() }

func summarize(name string, rs []result) summary {
	s := summary{Scenario: name, ExecutedBy: map[string]int{}, Status: map[int]int{}}
	var all []time.Duration
	for _, r := range rs {
		s.Requests += r.Requests
		s.Errors += r.Errors
		s.Elapsed += r.Elapsed
		s.MissingKey += r.MissingKey
		s.RoundRPS = append(s.RoundRPS, r.RPS())
		for k, v := range r.ExecutedBy {
			s.ExecutedBy[k] += v
		}
		for k, v := range r.StatusCounts {
			s.Status[k] += v
		}
		if s.FirstError == "" {
			s.FirstError = r.FirstError
		}
		all = append(all, r.Latencies...)
	}
	slices.Sort(all)
	s.P50, s.P90 = stats.Percentile(all, 0.50), stats.Percentile(all, 0.90)
	s.P99, s.P999 = stats.Percentile(all, 0.99), stats.Percentile(all, 0.999)
	if len(all) > 0 {
		s.Max = all[len(all)-1]
		var sum time.Duration
		for _, d := range all {
			sum += d
		}
		s.Mean = sum / time.Duration(len(all))
	}
	return s
}
