package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh"
)

// retentionTotal is how many records each retention benchmark pushes through
// one node; checkpoints every retentionStep.
const (
	retentionTotal = 200_000
	retentionStep  = 50_000
)

// heapAfterGC returns HeapInuse and HeapAlloc after two full collections.
func heapAfterGC() (inuse, alloc uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.HeapAlloc
}

// waitIdle waits (bounded) until node n holds no pending record.
func waitIdle(tb testing.TB, n *mesh.Node) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		pending := 0
		for _, r := range n.Records() {
			if r.Pending() {
				pending++
			}
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d records still pending after 60s", pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkpoint records one retention sample as benchmark metrics.
type checkpoint struct {
	submitted  int
	inuse      uint64
	alloc      uint64
	held       int
	goroutines int
}

func reportCheckpoints(b *testing.B, cps []checkpoint, retain int) {
	b.Helper()
	for _, cp := range cps {
		k := strconv.Itoa(cp.submitted/1000) + "k"
		b.ReportMetric(float64(cp.alloc)/(1<<20), "MB-live@"+k)
		b.ReportMetric(float64(cp.inuse)/(1<<20), "MB-heapinuse@"+k)
		b.ReportMetric(float64(cp.held), "records@"+k)
		b.Logf("after %7d: heap in use %6.2f MB, heap alloc %6.2f MB, records held %6d (retention bound %d), goroutines %d",
			cp.submitted, float64(cp.inuse)/(1<<20), float64(cp.alloc)/(1<<20), cp.held, retain, cp.goroutines)
	}
	// The bound fills within the first 10,000 records, but the retained
	// log's chunks and the maps reach their steady size later, so flatness is
	// judged from 100k, after ten times the bound has passed through, to
	// 200k.
	at := func(n int) checkpoint {
		for _, cp := range cps {
			if cp.submitted == n {
				return cp
			}
		}
		return cps[len(cps)-1]
	}
	first, mid, last := at(retentionStep), at(2*retentionStep), cps[len(cps)-1]
	b.ReportMetric(float64(int64(last.alloc)-int64(mid.alloc))/(1<<20), "MB-live-growth-100k-200k")
	b.ReportMetric(float64(int64(last.alloc)-int64(first.alloc))/(1<<20), "MB-live-growth-50k-200k")
	b.ReportMetric(float64(retain), "retain-bound")
	held := 0
	for _, cp := range cps {
		held = max(held, cp.held)
	}
	verdict := "PASS"
	if held > retain || float64(last.alloc) > 1.10*float64(mid.alloc) {
		verdict = "MISS"
	}
	b.Logf("retention: max records held %d (bound %d); live heap %.2f MB at %dk, %.2f MB at %dk, %.2f MB at %dk: %s (target: held <= bound at every checkpoint and live heap at %dk <= 1.10x %dk)",
		held, retain, float64(first.alloc)/(1<<20), first.submitted/1000, float64(mid.alloc)/(1<<20), mid.submitted/1000,
		float64(last.alloc)/(1<<20), last.submitted/1000, verdict, last.submitted/1000, mid.submitted/1000)
}

// startAlone starts one cluster-mode node on a free loopback port, alone.
func startAlone(b *testing.B) *mesh.Node {
	b.Helper()
	port := freePair(b)
	return startMesh(b, mesh.Config{
		Mode: mesh.ModeCluster, Cookie: cookie, DiscoverySeed: "127.0.0.1", ClusterPort: port,
		NodeName: mesh.NodeName{Name: "mem", Host: "127.0.0.1", Port: port},
		StateDir: b.TempDir(), Logger: quietLogger(),
	})
}

// submitBurst is how many submissions BenchmarkSubmitRetention makes
// before it waits for their work to finish.
const submitBurst = 2000

// BenchmarkSubmitRetention submits 200,000 short count-1 records through
// Node.Submit on one cluster-mode node and samples the heap (after GC) every
// 50,000: with the default retention bound (10,000 terminal records) the heap
// must stop growing once the bound is full. Run with -benchtime=1x.
func BenchmarkSubmitRetention(b *testing.B) {
	for range b.N {
		n := startAlone(b)
		retain := mesh.DefaultRetainedRecords
		ctx := context.Background()
		waitIdle(b, n)
		inuse, alloc := heapAfterGC()
		cps := []checkpoint{{0, inuse, alloc, len(n.Records()), runtime.NumGoroutine()}}
		start := time.Now()
		for i := 1; i <= retentionTotal; i++ {
			key := fmt.Sprintf("mem-%s-%d", runID, i)
			res, err := n.Submit(ctx, noopWork, key, "payload-"+strconv.Itoa(i))
			if err != nil {
				b.Fatal(err)
			}
			if res.Outcome != mesh.OutcomeCreated {
				b.Fatalf("submit %s: %s", key, res.Outcome)
			}
			if i%submitBurst == 0 && i%retentionStep != 0 {
				// Submit returns before the work runs, so a loop that never
				// waits has as many work goroutines at once as the
				// scheduler lets pile up, and Go keeps every goroutine
				// descriptor it ever made: the heap would follow that peak,
				// not the records. Bounding the burst reaches the peak early.
				waitIdle(b, n)
			}
			if i%retentionStep == 0 {
				waitIdle(b, n)
				inuse, alloc := heapAfterGC()
				cps = append(cps, checkpoint{i, inuse, alloc, len(n.Records()), runtime.NumGoroutine()})
			}
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/retentionTotal, "ns/submit")
		reportCheckpoints(b, cps, retain)
	}
}

// BenchmarkRouteRetention sends 200,000 requests through a Clustered(1)
// route (runtime keys, no Idempotency-Key) of one cluster-mode node served by
// an httptest server, and samples the heap like BenchmarkSubmitRetention. The
// HTTP client runs in the same process, so its idle connections are part of
// the heap (constant). Run with -benchtime=1x.
func BenchmarkRouteRetention(b *testing.B) {
	for range b.N {
		n := startAlone(b)
		retain := mesh.DefaultRetainedRecords
		srv := httptest.NewUnstartedServer(mux(n))
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv.Listener = l
		srv.Start()
		defer srv.Close()
		tr := &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		waitIdle(b, n)
		inuse, alloc := heapAfterGC()
		cps := []checkpoint{{0, inuse, alloc, len(n.Records()), runtime.NumGoroutine()}}
		start := time.Now()
		var failures atomic.Int64
		for sent := 0; sent < retentionTotal; sent += retentionStep {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= retentionStep {
						resp, err := client.Get(srv.URL + "/one")
						if err != nil {
							failures.Add(1)
							continue
						}
						drain(resp)
						if resp.StatusCode != http.StatusOK {
							failures.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			waitIdle(b, n)
			inuse, alloc := heapAfterGC()
			cps = append(cps, checkpoint{sent + retentionStep, inuse, alloc, len(n.Records()), runtime.NumGoroutine()})
		}
		if f := failures.Load(); f > 0 {
			b.Fatalf("%d requests failed", f)
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/retentionTotal, "ns/request")
		reportCheckpoints(b, cps, retain)
	}
}
