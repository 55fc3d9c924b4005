package cluster

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/cputime"
	"meshgo.dev/mesh/meshtest"
)

// PlainTwo is the handler of the count-2 route benchmarks.
func PlainTwo(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) }

var routeBenchTwo = Clustered(2, PlainTwo)

// benchPair starts a linked primary and standby in this process for the
// route benchmarks and returns the primary.
func benchPair(b *testing.B) *Node {
	b.Helper()
	port := meshtest.FreePort(b)
	start := func(name, host string, role Role) *Node {
		n, err := Start(Config{
			Mode: ModeCluster, Cookie: "cluster-unit-7Qm2Vx9Lr4Kc8Nw3Tb6Hp1Zs5J", DiscoverySeed: "localhost", ClusterPort: port,
			NodeName: NodeName{Name: name, Host: host, Port: port}, Role: role,
			DiscoveryInterval: 200 * time.Millisecond, StartupWorkDelay: 300 * time.Millisecond,
			HeartbeatInterval: 50 * time.Millisecond, PeerTimeout: 2 * time.Second,
			StateDir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n.Shutdown(ctx)
		})
		return n
	}
	p := start("primary", "127.0.0.1", RolePrimary)
	s := start("standby", "::1", RoleStandby)
	for deadline := time.Now().Add(10 * time.Second); len(p.Peers()) != 1 || len(s.Peers()) != 1; {
		if time.Now().After(deadline) {
			b.Fatal("pair did not link")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// BenchmarkRoutePair is the cost per request of clustered routes on the
// primary of a linked pair (the standby's share runs in this process too):
// a count-1 route owned by the ingress, a count-2 route mirrored to the
// standby, and a count-2 route with a fresh Idempotency-Key per request.
func BenchmarkRoutePair(b *testing.B) {
	p := benchPair(b)
	for _, c := range []struct {
		name  string
		h     http.Handler
		keyed bool
	}{{"plain", http.HandlerFunc(PlainThing), false}, {"one", p.For(routeBenchOne), false},
		{"two", p.For(routeBenchTwo), false}, {"two-keyed", p.For(routeBenchTwo), true}} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/bench", nil)
			b.ReportAllocs()
			i := 0
			cpu0 := cputime.Process()
			for b.Loop() {
				if c.keyed {
					i++
					req.Header.Set(HeaderIdempotencyKey, "bench-"+strconv.Itoa(i)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
				}
				w := httptest.NewRecorder()
				c.h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkRoutePairParallel is BenchmarkRoutePair with many requests in
// flight (b.SetParallelism(16) per CPU), as under a load generator: frames
// of concurrent requests share the link's writes, so its cpu-ns/op shows
// costs a one-at-a-time run cannot.
func BenchmarkRoutePairParallel(b *testing.B) {
	p := benchPair(b)
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"plain", http.HandlerFunc(PlainThing)}, {"one", p.For(routeBenchOne)}, {"two", p.For(routeBenchTwo)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(16)
			cpu0 := cputime.Process()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, "/bench", nil)
				for pb.Next() {
					w := httptest.NewRecorder()
					c.h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Errorf("status %d: %s", w.Code, w.Body)
						return
					}
				}
			})
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
