// Command dbos measures DBOS Transact Go's nearest equivalent of Mesh's typed
// submit→result round trip, for bench/run.sh's typed step: a one-step
// workflow that adds two numbers, started with a fresh workflow ID
// (RunWorkflow with WithWorkflowID), then its handle's GetResult, in the same
// closed-loop shape as bench/typedwork (-c clients in one process, a warm-up,
// a measured window, rounds; the median of the rounds).
//
// Its system database is a throwaway PostgreSQL server that it starts from
// the machine's initdb and pg_ctl on a free 127.0.0.1 port and removes at the
// end (internal/pgserver, shared with the test kit's meshtest/pgtest), with PostgreSQL's default durability (fsync and synchronous_commit on)
// unless -fast-pg; or an existing database given with -db.
//
// This is a module of its own so that the Mesh module never depends on DBOS;
// it requires the Mesh module from this checkout (the replace directive in
// go.mod) for internal/pgserver, which it may import as it lies under
// meshgo.dev/mesh.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dbos-inc/dbos-transact-golang/dbos"

	"meshgo.dev/mesh/bench/internal/stats"
	"meshgo.dev/mesh/internal/pgserver"
)

// Numbers is the workflow's input.
type Numbers struct {
	A int `json:"a"`
	B int `json:"b"`
}

// Sum is the workflow's output.
type Sum struct {
	Sum int `json:"sum"`
}

// AddWorkflow is the benchmarked workflow: one step that adds the numbers.
func AddWorkflow(ctx dbos.Context, in Numbers) (Sum, error) {
	return dbos.RunAsStep(ctx, func(context.Context) (Sum, error) { return Sum{Sum: in.A + in.B}, nil },
		dbos.WithStepName("add"))
}

type options struct {
	clients int
	warmup  time.Duration
	window  time.Duration
	rounds  int
	db      string
	fastPG  bool
}

func main() {
	var o options
	flag.IntVar(&o.clients, "c", 16, "concurrent clients")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "warm-up before each window")
	flag.DurationVar(&o.window, "d", 2*time.Second, "measured window per round")
	flag.IntVar(&o.rounds, "rounds", 2, "rounds")
	flag.StringVar(&o.db, "db", "", "PostgreSQL URL of the system database (default: a throwaway server)")
	flag.BoolVar(&o.fastPG, "fast-pg", false, "run the throwaway server with fsync and synchronous_commit off")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dbos bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, w io.Writer) error {
	if o.clients < 1 || o.window <= 0 || o.rounds < 1 {
		return errors.New("need -c >= 1, -d > 0 and -rounds >= 1")
	}
	dbURL := o.db
	if dbURL == "" {
		pg, err := pgserver.Start(pgserver.Options{DirPrefix: "mesh-bench-dbos-pg-", Durable: !o.fastPG, MaxConnections: 200})
		if err != nil {
			return fmt.Errorf("throwaway PostgreSQL: %w", err)
		}
		defer pg.Remove()
		dbURL = pg.URL
		durability := "fsync and synchronous_commit on (PostgreSQL's defaults)"
		if o.fastPG {
			durability = "fsync and synchronous_commit off"
		}
		fmt.Fprintf(w, "PostgreSQL %s, throwaway server on 127.0.0.1, %s\n", pg.Version(), durability)
	}
	dctx, err := dbos.NewContext(ctx, dbos.Config{
		AppName:     "mesh-typed-bench",
		DatabaseURL: dbURL,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	dbos.RegisterWorkflow(dctx, AddWorkflow)
	if err := dbos.Launch(dctx); err != nil {
		return err
	}
	defer dbos.Shutdown(dctx, 5*time.Second)

	fmt.Fprintf(w, "DBOS Transact Go one-step workflow with a workflow ID, RunWorkflow→GetResult: %d clients, warm-up %v, window %v, %d rounds\n",
		o.clients, o.warmup, o.window, o.rounds)
	var seq atomic.Uint64
	op := func(i int) error {
		id := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatUint(seq.Add(1), 10)
		in := Numbers{A: i, B: 7}
		h, err := dbos.RunWorkflow(dctx, AddWorkflow, in, dbos.WithWorkflowID(id))
		if err != nil {
			return err
		}
		out, err := h.GetResult()
		if err != nil {
			return err
		}
		if out.Sum != in.A+in.B {
			return fmt.Errorf("%s: sum %d, want %d", id, out.Sum, in.A+in.B)
		}
		return nil
	}
	var rs []result
	for r := range o.rounds {
		res := measure(ctx, o, op)
		rs = append(rs, res)
		fe := ""
		if res.firstErr != "" {
			fe = "  first error: " + res.firstErr
		}
		fmt.Fprintf(w, "  round %d dbos          %8.0f ops/s  p50 %7.0f µs  p99 %7.0f µs  errors %d%s\n",
			r+1, res.opsPerSec, res.p50us, res.p99us, res.errors, fe)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	var a, b, c []float64
	errs := 0
	for _, r := range rs {
		a, b, c = append(a, r.opsPerSec), append(b, r.p50us), append(c, r.p99us)
		errs += r.errors
	}
	fmt.Fprintf(w, "\n| scenario | ops/s | p50 | p99 | errors |\n|---|---:|---:|---:|---:|\n")
	fmt.Fprintf(w, "| dbos | %.0f | %.2f ms | %.2f ms | %d |\n", stats.Median(a), stats.Median(b)/1000, stats.Median(c)/1000, errs)
	fmt.Fprintln(w, "(median of the rounds; p50/p99 of each round's successful round trips, nearest rank)")
	if errs > 0 {
		return fmt.Errorf("%d round trips failed", errs)
	}
	return nil
}

type result struct {
	ops, errors             int
	firstErr                string
	opsPerSec, p50us, p99us float64
}

// measure runs op from o.clients goroutines back to back for the warm-up
// (not recorded) and the window (every duration recorded).
func measure(ctx context.Context, o options, op func(i int) error) result {
	start := time.Now()
	from := start.Add(o.warmup)
	end := from.Add(o.window)
	var (
		mu  sync.Mutex
		lat []time.Duration
		res result
		wg  sync.WaitGroup
	)
	for c := range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			errs, first := 0, ""
			for i := c; ctx.Err() == nil; i += o.clients {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				err := op(i)
				if t0.Before(from) {
					continue
				}
				if err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			res.errors += errs
			if res.firstErr == "" {
				res.firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(from).Seconds()
	slices.Sort(lat)
	res.ops = len(lat)
	if secs > 0 {
		res.opsPerSec = float64(len(lat)) / secs
	}
	if len(lat) > 0 {
		res.p50us = float64(stats.Percentile(lat, 0.50)) / 1e3
		res.p99us = float64(stats.Percentile(lat, 0.99)) / 1e3
	}
	return res
}
