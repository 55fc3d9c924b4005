package main

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"meshgo.dev/mesh/bench/internal/stats"
	"meshgo.dev/mesh/internal/continuity"
)

// window is one closed-loop measurement on the node: clients goroutines
// each run op back to back, first for warmup (not recorded), then for window
// (every round trip's duration recorded).
type window struct {
	clients int
	warmup  time.Duration
	window  time.Duration
	prefix  string   // request keys are prefix + a sequence number
	members []string // both node names on a pair; nil standalone
	owner   string   // the node every key is placed on; "" standalone
	// op is one round trip; it returns how long its submission took.
	op func(ctx context.Context, key, owner string, i int) (time.Duration, error)
}

// result is what GET /run answers.
type result struct {
	Ops       int     `json:"ops"`    // round trips completed in the window
	Errors    int     `json:"errors"` // failed round trips in the window
	FirstErr  string  `json:"first_error,omitempty"`
	Seconds   float64 `json:"seconds"`   // the window as measured
	OpsPerSec float64 `json:"ops_per_s"` // Ops / Seconds
	P50us     float64 `json:"p50_us"`    // nearest-rank percentiles of the
	P99us     float64 `json:"p99_us"`    // window's successful round trips
	MaxUs     float64 `json:"max_us"`
	// SubmitP50us is the median of SubmitWork's share of the round trips
	// (the rest is the wait in Result).
	SubmitP50us float64 `json:"submit_p50_us"`
}

// keys hands out unique request keys placed on the wanted owner.
type keys struct {
	prefix  string
	members []string // canonical order
	owner   string
	seq     atomic.Uint64
}

func (k *keys) next() string {
	for {
		key := k.prefix + strconv.FormatUint(k.seq.Add(1), 10)
		if k.owner == "" || continuity.OwnerOf([]byte(key), k.members) == k.owner {
			return key
		}
	}
}

// run measures the window. Every loop is bounded by the warm-up and window
// deadlines; each round trip has its own 10 s timeout.
func (o window) run(ctx context.Context) result {
	ks := &keys{prefix: o.prefix, owner: o.owner}
	if o.owner != "" {
		ks.members = continuity.CanonicalMembership(o.members)
	}
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	end := measureFrom.Add(o.window)
	var (
		mu       sync.Mutex
		lat      []time.Duration
		sub      []time.Duration
		errs     int
		firstErr string
		wg       sync.WaitGroup
	)
	for c := range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 4096)
			mySub := make([]time.Duration, 0, 4096)
			var myErrs int
			var myFirst string
			for i := c; ctx.Err() == nil; i += o.clients {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				opCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				submit, err := o.op(opCtx, ks.next(), o.owner, i)
				cancel()
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					myErrs++
					if myFirst == "" {
						myFirst = err.Error()
					}
					continue
				}
				mine = append(mine, time.Since(t0))
				mySub = append(mySub, submit)
			}
			mu.Lock()
			lat = append(lat, mine...)
			sub = append(sub, mySub...)
			errs += myErrs
			if firstErr == "" {
				firstErr = myFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(measureFrom).Seconds()
	slices.Sort(lat)
	slices.Sort(sub)
	r := result{Ops: len(lat), Errors: errs, FirstErr: firstErr, Seconds: secs}
	if secs > 0 {
		r.OpsPerSec = float64(len(lat)) / secs
	}
	if len(lat) > 0 {
		r.P50us = us(stats.Percentile(lat, 0.50))
		r.P99us = us(stats.Percentile(lat, 0.99))
		r.MaxUs = us(lat[len(lat)-1])
		r.SubmitP50us = us(stats.Percentile(sub, 0.50))
	}
	return r
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
